"""What the commands print while they work: fit progress and caught warnings, on stderr.

Progress comes from the estimators' Python loop through
:func:`fastmix._progress.report_progress` (the kernels never print): a tqdm
bar when tqdm is installed, otherwise a text line at most once a second.
"""

import math
import time

from ._usage import CLI_EXTRA_HINT, UsageError, have

PROGRESS_MODES = ("auto", "bar", "text", "none")


def finite_or_none(value):
    """``value`` as a float for a JSON report, None (null) if NaN or infinite.

    JSON has no NaN or infinities; ``json.dump`` would write the non-standard
    ``NaN`` / ``-Infinity`` that strict parsers refuse.
    """
    value = float(value)
    return value if math.isfinite(value) else None


class ProgressReporter:
    """The callback of :func:`fastmix._progress.report_progress` for the command line.

    ``bar``: one tqdm bar per initialisation (total ``max_iter``), closed when
    the initialisation converges or runs out of iterations. ``text``: one line
    on the first and the last iteration of each initialisation and at most one
    per ``interval`` seconds in between. ``none``: nothing. ``online``: the
    "iterations" are the blocks of a pass (``init`` counts passes); online
    learning does not converge, so a pass ends at its last block, whatever
    the change.
    """

    def __init__(
        self, mode, n_init, tol, stream, prog, intro=None, interval=1.0, method="EM",
        online=False,
    ):  # fmt: skip
        self.mode = mode
        self.method = method  # "EM", or "VI" for a Bayesian (variational) fit
        self.intro = intro
        self.n_init = n_init
        self.online = online
        self.tol = -math.inf if online else tol
        self.stream = stream
        self.prog = prog
        self.interval = interval
        self.bar = None
        self.last_line = -math.inf

    def _label(self, init):
        return f"init {init + 1}/{self.n_init}" if self.n_init > 1 else self.method

    def __call__(self, init, n_iter, max_iter, lower_bound, change):
        if self.mode == "none":
            return  # also called directly, by ``fastmix fit --online``
        if self.intro is not None:
            # Printed with the first iteration, so that a fit that fails before
            # iterating (bad data) leaves only its one-line error on stderr.
            print(self.intro, file=self.stream, flush=True)
            self.intro = None
        last = abs(change) < self.tol or n_iter >= max_iter
        if self.mode == "bar":
            from tqdm import tqdm

            if self.bar is None:
                self.bar = tqdm(
                    total=max_iter,
                    initial=n_iter - 1,
                    desc=self._label(init),
                    unit="iter",
                    file=self.stream,
                    dynamic_ncols=True,
                    mininterval=0.2,
                )
            self.bar.set_postfix_str(
                f"lower bound {lower_bound:.6g}, change {change:.2e}", refresh=False
            )
            self.bar.update(1)
            if last:
                if abs(change) < self.tol:
                    # Converged early: the bar ends full, at the iterations run.
                    self.bar.total = n_iter
                    self.bar.set_postfix_str(f"lower bound {lower_bound:.6g}, converged")
                self.close()
            return
        now = time.perf_counter()
        if n_iter == 1 or last or now - self.last_line >= self.interval:
            self.last_line = now
            state = ""
            if last and not self.online:
                state = " (converged)" if abs(change) < self.tol else " (max_iter reached)"
            print(
                f"{self.prog}: {self._label(init)}, iteration {n_iter}/{max_iter}: lower bound "
                f"{lower_bound:.6f}, change {change:.3e}{state}",
                file=self.stream,
                flush=True,
            )

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def progress_mode(requested):
    """The progress mode to use: ``auto`` resolved, ``bar`` checked against tqdm."""
    if requested == "auto":
        return "bar" if have("tqdm") else "text"
    if requested == "bar" and not have("tqdm"):
        raise UsageError(f"--progress bar needs tqdm; {CLI_EXTRA_HINT}")
    return requested


def warn_lines(caught, prog, stream):
    """Each distinct warning caught, as one line on ``stream``."""
    seen = set()
    for w in caught:
        message = " ".join(str(w.message).split())
        if message not in seen:
            seen.add(message)
            print(f"{prog}: warning: {message}", file=stream, flush=True)
