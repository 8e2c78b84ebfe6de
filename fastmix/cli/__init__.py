"""The ``fastmix`` command line: ``demo``, ``fit``, ``predict`` and ``bench``.

``fastmix demo`` fits a built-in synthetic mixture, sets what it found beside
the truth and draws it. ``fastmix fit DATA`` fits a mixture to a ``.npy``,
``.npz``, ``.csv``/``.tsv`` or raw binary file (streamed as a memmap where the
format allows), shows progress on stderr, prints a summary and can save the
model and a picture; ``fastmix predict MODEL DATA`` labels data with a saved
model. ``fastmix bench`` times fastmix against scikit-learn in one process, on
the same data and from the same explicit initialisation, so both do the same
work.

A user mistake (a bad option, an impossible size, a missing or malformed
file) is reported as one line on stderr with exit status 2, never as a
traceback. Nothing here sets an environment variable: ``--threads`` goes
through ``numba.set_num_threads`` (restored afterwards) and threadpoolctl.
Progress comes from the estimators' Python loop through
:func:`fastmix._progress.report_progress`; the kernels never print.

One module per job: ``_parser`` (the arguments), ``_demo``, ``_fit`` (``fit``
and ``predict``) and ``_bench`` (the commands), ``_readers`` (data files),
``_report`` (progress and warnings), ``_pictures`` (laid out here, drawn by
:mod:`fastmix.plot`), ``_warmup`` (kernels compiled before timing) and
``_usage`` (what counts as a user's mistake). The demo's and the benchmark's
data come from :mod:`fastmix._synthetic`.
"""

import sys

from .._synthetic import bench_problem, demo_mixture, explicit_init, sample_mixture
from ._bench import run_bench
from ._demo import run_demo
from ._fit import run_fit, run_predict
from ._parser import build_parser
from ._readers import read_data
from ._usage import UsageError

__all__ = [
    "main",
    "read_data",
    "demo_mixture",
    "sample_mixture",
    "bench_problem",
    "explicit_init",
    "run_demo",
    "run_fit",
    "run_predict",
    "run_bench",
    "UsageError",
]


def main(argv=None):
    """Run the ``fastmix`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` when omitted.

    Returns
    -------
    status : int
        0 on success, 2 for a usage error (a bad option, a missing, unreadable
        or malformed file; reported as one line on stderr), 1 when the
        machine ran out of memory or another system error occurred, 130 when
        interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"fastmix {args.command}"
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        # The estimators' parameter and data checks: a consequence of the options.
        message = " ".join(str(exc).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except MemoryError:
        hint = "; try a smaller --n-samples" if args.command in ("demo", "bench") else ""
        print(f"{prog}: error: out of memory{hint}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. piped into `head`): not an error of ours.
        sys.stderr.close()
        return 0
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        # A path given on the command line that cannot be read or written.
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
