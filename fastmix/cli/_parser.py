"""The ``fastmix`` command line's arguments: one parser, its subcommands and their types.

Every type here turns a bad value into argparse's one-line error (exit status
2) that says what was expected.
"""

import argparse
import math

from ._bench import DEFAULT_SHAPE, run_bench
from ._demo import DEMO_PICTURES, DEMO_PLOT, run_demo
from ._fit import INIT_PARAMS, PRIOR_TYPES, run_fit, run_predict
from ._report import PROGRESS_MODES
from ._select import parse_k_range, run_select
from ._usage import COVARIANCE_TYPES, DTYPES, FIT_COVARIANCE_TYPES


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ----------------------------------------------------------------- arguments
def _count(text):
    """Parse a positive count; accepts ``1000000``, ``1_000_000`` and ``1e6``."""
    try:
        value = int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, got {text!r}"
            ) from None
        if not (math.isfinite(as_float) and as_float == int(as_float)):
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, got {text!r}"
            ) from None
        value = int(as_float)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value > _MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text!r} is too large: at most 2**63 - 1")
    return value


_MAX_COUNT = 2**63 - 1  # NumPy's int64: counts go into arrays


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _float_at_least(low, strict):
    """An argparse type: a finite float > ``low`` (``strict``) or >= ``low``."""
    relation = ">" if strict else ">="

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(
                f"expected a finite number {relation} {low:g}, got {text!r}"
            )
        return value

    return parse


def _fraction(text):
    """An argparse type: a float in [0, 1)."""
    value = _float_at_least(0.0, strict=False)(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _shape(text):
    """Parse ``N,D``: the rows and columns of a raw binary file."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected N,D (rows,columns), got {text!r}")
    try:
        return tuple(_count(part) for part in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected N,D with two positive integers, got {text!r}"
        ) from None


def _dims(text):
    """Parse ``I,J``: two different feature indices."""
    parts = [part.strip() for part in text.split(",")]
    try:
        i, j = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected I,J (two feature indices), got {text!r}"
        ) from None
    if i < 0 or j < 0 or i == j:
        raise argparse.ArgumentTypeError(
            f"expected two different non-negative feature indices, got {text!r}"
        )
    return i, j


def _workload_shape(text):
    """Parse ``N,D,K``: the rows, features and components of ``fastmix bench``."""
    parts = [part.strip() for part in text.split(",")]
    message = (
        "expected N,D,K (rows, features, components) as three positive integers, "
        f"e.g. --shape 100000,16,16; got {text!r}"
    )
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(message)
    try:
        return tuple(_count(part) for part in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(message) from None


def _subset_of(choices, what):
    """An argparse type: a comma-separated list of ``choices``, duplicates dropped."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}s")
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {unknown[0]!r} (choose from {', '.join(choices)})"
            )
        return list(dict.fromkeys(names))

    return parse


def _add_em_options(parser, seed_help):
    """The EM options shared by ``fit`` and ``select``, and the seed and weights."""
    parser.add_argument(
        "--max-iter",
        type=_non_negative_int,
        default=100,
        metavar="N",
        help="EM iterations at most per initialisation (default: 100)",
    )
    parser.add_argument(
        "--tol",
        type=_float_at_least(0.0, strict=False),
        default=1e-3,
        help="convergence threshold on the change of the lower bound (default: 0.001)",
    )
    parser.add_argument(
        "--reg-covar",
        type=_float_at_least(0.0, strict=False),
        default=1e-6,
        help="added to the diagonal of the covariances (default: 1e-06)",
    )
    parser.add_argument(
        "--min-responsibility",
        type=_fraction,
        default=0.0,
        metavar="R",
        help="leave responsibilities below R (at most 1/K) out of the updates: faster at "
        "hundreds of components, approximate; 'tied' ignores it (e.g. 1e-8; default: 0, "
        "every one kept)",
    )
    parser.add_argument(
        "--n-init",
        type=_count,
        default=1,
        metavar="N",
        help="initialisations; the best is kept (default: 1)",
    )
    parser.add_argument(
        "--init-params", choices=INIT_PARAMS, default="kmeans", help="(default: kmeans)"
    )
    parser.add_argument(
        "--random-state",
        type=_non_negative_int,
        default=0,
        metavar="SEED",
        help=f"{seed_help} (default: 0, so that a fit can be repeated)",
    )
    parser.add_argument(
        "--sample-weight",
        metavar="FILE",
        default=None,
        help="one non-negative weight per row of DATA: a .npy, .npz, .csv or .tsv file",
    )


def _add_data_options(parser):
    """The options that say how to read DATA (shared by ``fit`` and ``predict``)."""
    parser.add_argument(
        "--key",
        metavar="NAME",
        default=None,
        help="the array of a .npz archive to read (default: its first array)",
    )
    parser.add_argument(
        "--shape",
        type=_shape,
        default=None,
        metavar="N,D",
        help="read DATA as a raw binary file of N rows and D columns, row-major",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default=None,
        help=(
            "element type of a raw binary file (required with --shape: the bytes do not "
            "say it); for other formats, convert the data to it (in memory)"
        ),
    )


def build_parser():
    """The ``fastmix`` parser; each subcommand sets ``handler``, the function that runs it."""
    parser = _Parser(
        prog="fastmix",
        description=(
            "fastmix: Gaussian mixture models on streaming numba kernels, "
            "a drop-in replacement for scikit-learn's GaussianMixture."
        ),
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"fastmix {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="fit a built-in synthetic mixture and compare what was found with the truth",
        description=(
            "Draw points from a built-in mixture of 5 two-dimensional Gaussians with "
            "distinct weights, means and full covariances (a fixed seed: no download, "
            "no file), fit fastmix.GaussianMixture to them and print each found "
            "component beside the nearest true one, the iterations, convergence, "
            "log-likelihood and timings."
        ),
    )
    demo.add_argument(
        "--n-samples",
        type=_count,
        default=1_000_000,
        metavar="N",
        help="number of points to draw (default: 1000000)",
    )
    demo.add_argument(
        "--n-components",
        type=_count,
        default=5,
        metavar="K",
        help="components to fit (default: 5, the true number)",
    )
    demo.add_argument(
        "--covariance-type",
        choices=FIT_COVARIANCE_TYPES,
        default="full",
        help="covariance type of the fitted model (default: full)",
    )
    demo.add_argument(
        "--random-state",
        type=_non_negative_int,
        default=0,
        metavar="SEED",
        help="random_state of the fitted model, i.e. its k-means initialisation (default: 0)",
    )
    demo.add_argument(
        "--dtype",
        choices=DTYPES,
        default="float64",
        help="floating type of the data; float32 is fitted in float32 (default: float64)",
    )
    demo.add_argument(
        "--tol",
        type=_float_at_least(0.0, strict=False),
        default=1e-3,
        help=(
            "convergence threshold on the change of the log-likelihood per point; smaller "
            "runs more iterations (default: 0.001)"
        ),
    )
    demo.add_argument(
        "--plot",
        metavar="PATH",
        default=None,
        help=(
            "write the data with each component's 1/2/3-sigma ellipses and the convergence "
            f"curve, side by side, to PATH (default: {DEMO_PLOT} in the current folder when "
            "matplotlib is installed)"
        ),
    )
    demo.add_argument(
        "--plot-dir",
        metavar="DIR",
        default=None,
        help=(
            f"write the two pictures separately to DIR/{DEMO_PICTURES[0]} and "
            f"DIR/{DEMO_PICTURES[1]} (the README's pictures), creating DIR if needed; "
            f"then {DEMO_PLOT} is written only if --plot asks for it"
        ),
    )
    demo.add_argument("--no-plot", action="store_true", help="draw nothing")
    demo.set_defaults(handler=run_demo)

    fit = commands.add_parser(
        "fit",
        help="fit a mixture to a data file and print a summary",
        description=(
            "Fit fastmix.GaussianMixture (or, with --bayesian, BayesianGaussianMixture) to "
            "the rows of DATA: a .npy file (memory-mapped and streamed), a .npz archive (its "
            "first array, or --key), a .csv or .tsv file (numbers only; a first row that is "
            "not all numbers is taken as a header), or a raw binary file of --dtype values "
            "in row-major order with --shape N,D (memory-mapped and streamed). Progress goes "
            "to stderr (a tqdm bar when tqdm is installed), the summary (weights, "
            "log-likelihood per sample or ELBO, BIC, iterations, convergence, seconds) to "
            "stdout, as text or with --json as one JSON document."
        ),
    )
    fit.add_argument("data", metavar="DATA", help="the data file, one row per sample")
    _add_data_options(fit)
    fit.add_argument(
        "-k",
        "--n-components",
        type=_count,
        default=1,
        metavar="K",
        help="number of mixture components (default: 1)",
    )
    fit.add_argument(
        "--covariance-type",
        choices=FIT_COVARIANCE_TYPES,
        default="full",
        help="(default: full)",
    )
    fit.add_argument(
        "--bayesian",
        action="store_true",
        help="fit BayesianGaussianMixture (variational inference) instead of GaussianMixture",
    )
    fit.add_argument(
        "--weight-concentration-prior-type",
        choices=PRIOR_TYPES,
        default=None,
        help="with --bayesian (default: dirichlet_process)",
    )
    for option, metavar, meaning in (
        ("--weight-concentration-prior", "GAMMA",
         "the Dirichlet concentration (default: 1 / n_components)"),
        ("--mean-precision-prior", "BETA", "the precision prior of the means (default: 1)"),
        ("--degrees-of-freedom-prior", "NU",
         "degrees of freedom of the Wishart prior, more than n_features - 1 "
         "(default: n_features)"),
    ):  # fmt: skip
        fit.add_argument(
            option,
            type=_float_at_least(0.0, strict=True),
            default=None,
            metavar=metavar,
            help=f"with --bayesian: {meaning}",
        )
    _add_em_options(fit, seed_help="seed of the initialisation")
    fit.add_argument(
        "-o",
        "--out",
        metavar="MODEL",
        default=None,
        help="save the fitted model there (fastmix's .npz format; load it with fastmix.load)",
    )
    fit.add_argument(
        "--plot",
        metavar="PATH",
        default=None,
        help=(
            "draw the data with each component's 1/2/3-sigma ellipses and the convergence "
            "curve side by side, to PATH (.png, .pdf, .svg, ...; needs matplotlib)"
        ),
    )
    fit.add_argument(
        "--plot-dims",
        type=_dims,
        default=(0, 1),
        metavar="I,J",
        help="the two features the data picture shows (default: 0,1)",
    )
    fit.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help=(
            "progress on stderr: a tqdm bar, a text line every second, or none; auto is the "
            "bar when tqdm is installed, text otherwise (default: auto)"
        ),
    )
    fit.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON document and nothing else on stdout",
    )
    fit.add_argument(
        "--online",
        action="store_true",
        help=(
            "fit by partial_fit over blocks of --batch-size rows, visited in an order "
            "shuffled by --random-state (rows inside a block stay in order, so reads stay "
            "sequential): one or --passes passes over a file too big to read many times "
            "(and no BIC, which would read it once more; --max-iter and --n-init do not apply)"
        ),
    )
    fit.add_argument(
        "--batch-size",
        type=_count,
        default=65536,
        metavar="N",
        help=(
            "with --online: rows per partial_fit call (default: 65536; at least 2 and -k, "
            "since the first block initialises the fit); two blocks of N rows are in memory "
            "at a time (the next is read while this one is fitted); a block whose rows all "
            "weigh zero is skipped"
        ),
    )
    fit.add_argument(
        "--passes",
        type=_count,
        default=1,
        metavar="P",
        help="with --online: passes over the data (default: 1)",
    )
    fit.set_defaults(handler=run_fit)

    predict = commands.add_parser(
        "predict",
        help="label data with a saved model",
        description=(
            "Load MODEL (written by 'fastmix fit --out' or model.save) with fastmix.load and "
            "write the component label of each row of DATA, or with --proba the "
            "probability of each component, to --out: .npy (labels int64), .csv or .tsv "
            "(with a header row). DATA is read as by 'fastmix fit'."
        ),
    )
    predict.add_argument("model", metavar="MODEL", help="a saved fastmix model (.npz)")
    predict.add_argument("data", metavar="DATA", help="the data file, one row per sample")
    predict.add_argument(
        "-o",
        "--out",
        default=None,
        metavar="PATH",
        help=(
            "where the labels (or probabilities) go: .npy, .csv or .tsv "
            "(default: printed on stdout, one row per line)"
        ),
    )
    predict.add_argument(
        "--proba",
        action="store_true",
        help="write the (n_samples, n_components) probabilities instead of the labels",
    )
    _add_data_options(predict)
    predict.set_defaults(handler=run_predict)

    bench = commands.add_parser(
        "bench",
        help="time fastmix against scikit-learn on the same data and initialisation",
        description=(
            "Fit fastmix.GaussianMixture and sklearn.mixture.GaussianMixture in this "
            "process to the same synthetic data from the same explicit initialisation "
            "(weights_init, means_init, precisions_init built from --seed), with "
            "n_init=1, max_iter=ITERS and tol=0 so both run exactly ITERS EM "
            "iterations. fastmix's kernels are compiled (or loaded from cache) on a "
            "tiny input first. Reports seconds per iteration (fit time / iterations; "
            "scikit-learn's fit also runs one final E-step), the ratio "
            "sklearn/fastmix, the largest |difference| of lower_bound_ as a check "
            "that both did the same work, and fastmix's GFLOP/s by the dense FLOP model "
            "(full 4NKD^2, tied 2ND(D+1) + 6NKD, diag and spherical 8NKD per iteration)."
        ),
    )
    bench.add_argument(
        "--shape",
        type=_workload_shape,
        default=None,
        metavar="N,D,K",
        help=(
            "the workload in one option: N rows, D features, K components, e.g. 100000,16,16 "
            f"(default: {','.join(map(str, DEFAULT_SHAPE))}; or give -n/-d/-k)"
        ),
    )
    bench.add_argument(
        "-n",
        "--n-samples",
        type=_count,
        default=None,
        metavar="N",
        help=f"rows of data (default: {DEFAULT_SHAPE[0]})",
    )
    bench.add_argument(
        "-d",
        "--n-features",
        type=_count,
        default=None,
        metavar="D",
        help=f"columns of data (default: {DEFAULT_SHAPE[1]})",
    )
    bench.add_argument(
        "-k",
        "--n-components",
        type=_count,
        default=None,
        metavar="K",
        help=f"mixture components, true and fitted (default: {DEFAULT_SHAPE[2]})",
    )
    bench.add_argument(
        "--dtype",
        type=_subset_of(DTYPES, "dtype"),
        default=["float64"],
        metavar="DTYPE[,DTYPE]",
        help=(
            "float64, float32, or both comma-separated: each is timed on the same points "
            "(default: float64)"
        ),
    )
    bench.add_argument(
        "--iters",
        type=_count,
        default=20,
        metavar="ITERS",
        help="EM iterations per fit, max_iter with tol=0 (default: 20)",
    )
    bench.add_argument(
        "--covariance-types",
        type=_subset_of(COVARIANCE_TYPES, "covariance type"),
        default=list(COVARIANCE_TYPES),
        metavar="TYPES",
        help="comma-separated subset of full,tied,diag,spherical (default: all four)",
    )
    bench.add_argument(
        "--repeats",
        type=_count,
        default=1,
        metavar="R",
        help="fits per library and type, interleaved; the median is reported (default: 1)",
    )
    bench.add_argument(
        "--threads",
        type=_count,
        default=None,
        metavar="T",
        help=(
            "threads for fastmix (numba.set_num_threads) and for scikit-learn's BLAS "
            "(threadpoolctl) during the fits, restored afterwards (default: leave both as "
            "they are)"
        ),
    )
    bench.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="SEED",
        help="seed of the synthetic data and of the explicit initialisation (default: 0)",
    )
    bench.add_argument(
        "--json", action="store_true", help="print one JSON document and nothing else"
    )
    bench.set_defaults(handler=run_bench)
    _add_select(commands)
    return parser


def _k_values(text):
    try:
        return parse_k_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_select(commands):
    """``fastmix select``: its own function, so that the subcommands above stay as they were."""
    select = commands.add_parser(
        "select",
        help="choose the number of components and the covariance structure (BIC, AIC, ICL)",
        description=(
            "Fit fastmix.GaussianMixture for every K of -k and every structure of "
            "--covariance-types to the rows of DATA (read as by 'fastmix fit'), all "
            "candidates sharing each read of the data, and print the table of BIC, AIC and "
            "ICL with the choice (lower is better)."
        ),
    )
    select.add_argument("data", metavar="DATA", help="the data file, one row per sample")
    _add_data_options(select)
    select.add_argument(
        "-k",
        "--n-components",
        type=_k_values,
        default=list(range(1, 11)),
        metavar="KS",
        help="the K values: a range and/or a list, e.g. 1-20 or 2,4,8 (default: 1-10)",
    )
    select.add_argument(
        "--covariance-types",
        type=_subset_of(FIT_COVARIANCE_TYPES, "covariance type"),
        default=list(COVARIANCE_TYPES),
        metavar="TYPES",
        help=(
            f"comma-separated, among {','.join(FIT_COVARIANCE_TYPES)} "
            f"(default: {','.join(COVARIANCE_TYPES)})"
        ),
    )
    select.add_argument(
        "--criterion", choices=("bic", "aic", "icl"), default="bic", help="(default: bic)"
    )
    _add_em_options(select, seed_help="seed given to every candidate")
    select.add_argument(
        "-o",
        "--out",
        metavar="MODEL",
        default=None,
        help="save the chosen model there (fastmix's .npz format; load it with fastmix.load)",
    )
    select.add_argument(
        "--plot",
        metavar="PATH",
        default=None,
        help="draw the criterion against K per structure to PATH (needs matplotlib)",
    )
    select.add_argument("--json", action="store_true", help="print the table as one JSON document")
    select.set_defaults(handler=run_select)
