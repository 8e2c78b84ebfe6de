"""``fastmix demo``: fit a built-in synthetic mixture and set what it found beside the truth."""

import os
import sys
import time
import warnings

import numpy as np

from .._synthetic import DEMO_SEED, demo_mixture, sample_mixture
from ._pictures import check_picture_path, write_pictures
from ._usage import (
    PLOT_EXTRA_HINT,
    UsageError,
    check_writable_folder,
    have,
    require_matplotlib,
)
from ._warmup import first_run_note, warm_kernels

# Where `fastmix demo` draws its picture unless told otherwise (when matplotlib
# is installed), and the names of the two pictures `--plot-dir` writes.
DEMO_PLOT = "fastmix-demo.png"
DEMO_PICTURES = ("demo-mixture.png", "demo-convergence.png")


def run_demo(args, out=None):
    """Fit the built-in synthetic mixture and print what was found against the truth.

    Parameters
    ----------
    args : argparse.Namespace
        ``n_samples``, ``n_components``, ``covariance_type``, ``random_state``,
        ``dtype``, ``tol``, ``plot``, ``plot_dir`` and ``no_plot``, as parsed
        by ``fastmix demo`` (the last four may be absent: defaults then).
    out : file-like, optional
        Where the report goes; ``sys.stdout`` when omitted.

    Returns
    -------
    status : int
        0 on success.
    """
    from .. import GaussianMixture, plot

    out = sys.stdout if out is None else out
    weights, means, covariances = demo_mixture()
    # The report fits the true mixture's components to the data too.
    if args.n_samples < max(len(weights), args.n_components):
        raise UsageError(
            f"--n-samples ({args.n_samples}) must be at least {len(weights)} (the true "
            f"mixture's components) and at least --n-components ({args.n_components})"
        )
    plot_path, plot_dir, no_plot_reason = _demo_plot_targets(args)
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(DEMO_SEED)
    t0 = time.perf_counter()
    X, _ = sample_mixture(args.n_samples, weights, means, covariances, rng)
    X = X.astype(dtype, copy=False)
    t_data = time.perf_counter() - t0

    def say(line=""):
        print(line, file=out, flush=True)

    say(
        f"fastmix demo: {args.n_samples:,} points in 2-D from {len(weights)} Gaussian "
        f"components with full covariances ({args.dtype}, drawn in {t_data:.2f} s)"
    )
    first_run_note("fastmix demo", out)
    t0 = time.perf_counter()
    # Only what this fit runs: the k-means start and the statistics pass, on
    # as many rows as make the driver pick the kernel this fit's pass gets.
    from .._sources._driver import parallel_rows
    from .._stats import COV_CODES

    parallel = parallel_rows(args.n_components, 2, COV_CODES[args.covariance_type])
    warm_kernels(
        [args.covariance_type], dtype, 2, args.n_components,
        sizes=(min(args.n_samples, max(4096, parallel)),), predict=False, kmeans=True,
    )  # fmt: skip
    say(f"kernels ready in {time.perf_counter() - t0:.2f} s (compiled, or loaded from cache)")

    gm = GaussianMixture(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        tol=getattr(args, "tol", 1e-3),
        random_state=args.random_state,
    )
    say(f"fitting {gm!r} ...")
    # The same fit as ``gm.fit(X)``, timed in two calls so that the k-means
    # initialisation and the EM iterations are reported apart: max_iter=0
    # initialises only, and warm_start then runs the EM loop from there.
    max_iter = gm.max_iter
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        gm.set_params(max_iter=0).fit(X)
        t_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        gm.set_params(max_iter=max_iter, warm_start=True).fit(X)
        t_em = time.perf_counter() - t0
    gm.set_params(warm_start=False)
    for w in caught:
        say(f"warning: {w.message}")

    found_cov = plot._projected_covariances(gm, (0, 1))
    found_means = np.asarray(gm.means_, dtype=np.float64)
    distance = np.linalg.norm(found_means[:, None, :] - means[None, :, :], axis=2)
    nearest = distance.argmin(axis=1)
    order = np.argsort(nearest, kind="stable")

    say()
    say("each found component beside the nearest true one (by distance between means);")
    say("covariance: standard deviations along the principal axes and the major axis' angle")
    say()
    header = (
        f"{'found':>5} {'true':>4} | {'weight':>7} {'true':>7} | {'mean':>17}  {'true mean':>17}"
        f" | {'covariance (sd, sd, angle)':>26}  {'true covariance':>26}"
    )
    say(header)
    say("-" * len(header))
    for j in order:
        k = nearest[j]
        sd, angle = _sd_and_angle(found_cov[j])
        true_sd, true_angle = _sd_and_angle(covariances[k])
        say(
            f"{j:>5d} {k:>4d} | {gm.weights_[j]:7.4f} {weights[k]:7.4f} | "
            f"({found_means[j, 0]:7.3f}, {found_means[j, 1]:7.3f})  "
            f"({means[k, 0]:7.3f}, {means[k, 1]:7.3f}) | "
            f"{sd[0]:6.3f}, {sd[1]:6.3f}, {angle:5.1f} deg  "
            f"{true_sd[0]:6.3f}, {true_sd[1]:6.3f}, {true_angle:5.1f} deg"
        )
    unmatched = sorted(set(range(len(weights))) - set(nearest.tolist()))
    if unmatched:
        say(f"true components nearest to no found one: {', '.join(map(str, unmatched))}")
    say()
    true_ll = _true_log_likelihood(X, weights, means, covariances)
    say(f"iterations:             {gm.n_iter_} (max_iter={gm.max_iter}, tol={gm.tol})")
    say(f"converged:              {gm.converged_}")
    say(f"log-likelihood / point: {gm.lower_bound_:.6f} (lower_bound_)")
    say(f"  under the true model: {true_ll:.6f}")
    say(
        f"fit seconds:            {t_init + t_em:.3f} total = {t_init:.3f} k-means "
        f"initialisation + {t_em:.3f} EM"
    )
    say(f"seconds per iteration:  {t_em / max(gm.n_iter_, 1):.4f} (EM seconds / iterations)")
    if no_plot_reason:
        say(f"no plot: {no_plot_reason}")
    else:
        for path in write_pictures(gm, X, path=plot_path, folder=plot_dir, names=DEMO_PICTURES):
            say(f"plot written to:        {path}")
    return 0


def _demo_plot_targets(args):
    """Where the demo draws: (combined picture, folder of the two pictures, or why not).

    Explicit ``--plot``/``--plot-dir`` need matplotlib (a usage error
    without it); the default picture is drawn only when matplotlib is
    installed.
    """
    plot_path = getattr(args, "plot", None)
    plot_dir = getattr(args, "plot_dir", None)
    if getattr(args, "no_plot", False):
        if plot_path is not None or plot_dir is not None:
            raise UsageError("--no-plot contradicts --plot and --plot-dir")
        return None, None, "--no-plot"
    if plot_path is None and plot_dir is None:
        if not have("matplotlib"):
            return None, None, f"matplotlib is not installed ({PLOT_EXTRA_HINT})"
        plot_path = DEMO_PLOT
    require_matplotlib("--plot-dir" if plot_path is None else "--plot")
    if plot_path is not None:
        check_picture_path(plot_path, "--plot")
    if plot_dir is not None:
        if os.path.exists(plot_dir) and not os.path.isdir(plot_dir):
            raise UsageError(f"--plot-dir {plot_dir}: is a file, not a folder")
        try:
            os.makedirs(plot_dir, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--plot-dir {plot_dir}: cannot create the folder ({exc.strerror}); "
                "choose another place"
            ) from None
        check_writable_folder(plot_dir, f"--plot-dir {plot_dir}")
    return plot_path, plot_dir, None


def _sd_and_angle(covariance):
    """The standard deviations (major first) and the major axis' angle, in [0, 180) degrees."""
    from .. import plot

    major_sd, minor_sd, angle = plot._principal_axes(covariance)
    return (major_sd, minor_sd), angle % 180.0


def _true_log_likelihood(X, weights, means, covariances):
    """Mean log-likelihood of X under the true mixture, by fastmix's own density.

    A ``GaussianMixture`` started at the truth and run for one iteration: its
    ``lower_bound_`` is the mean log-likelihood at the start, as in
    scikit-learn (the E-step comes before the M-step). The fit's own
    statistics kernel computes it, so the demo compiles no per-row kernel
    for ``score`` (6 s of a first run). In float64 whatever the data's dtype.
    """
    from .. import GaussianMixture

    truth = GaussianMixture(
        len(weights),
        covariance_type="full",
        tol=0.0,
        weights_init=weights,
        means_init=means,
        precisions_init=np.linalg.inv(covariances),
        max_iter=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration does not converge: no news
        truth.fit(np.asarray(X, dtype=np.float64))
    return truth.lower_bound_
