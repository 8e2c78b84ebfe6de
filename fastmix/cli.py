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
"""

import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

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
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DTYPES = ("float64", "float32")

# The demo's truth: five 2-D components with distinct weights, drawn from a
# fixed seed so every run (and every test) sees the same mixture.
DEMO_SEED = 20240611
DEMO_WEIGHTS = (0.32, 0.25, 0.19, 0.14, 0.10)
# Where `fastmix demo` draws its picture unless told otherwise (when matplotlib
# is installed), and the names of the two pictures `--plot-dir` writes.
DEMO_PLOT = "fastmix-demo.png"
DEMO_PICTURES = ("demo-mixture.png", "demo-convergence.png")

# Data files `fit` and `predict` read, by extension; anything else is a raw
# binary file and needs --shape (and --dtype).
TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t"}
DATA_EXTENSIONS = (".npy", ".npz", *TEXT_DELIMITERS)
PROGRESS_MODES = ("auto", "bar", "text", "none")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
PLOT_EXTRA_HINT = 'install matplotlib with: pip install "fastmix[plot]"'
CLI_EXTRA_HINT = 'install tqdm with: pip install "fastmix[cli]"'


class UsageError(Exception):
    """A mistake in the command line, reported as one line with exit status 2."""


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
    return value


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


def _covariance_types(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of covariance types")
    unknown = [name for name in names if name not in COVARIANCE_TYPES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type {unknown[0]!r} (choose from {', '.join(COVARIANCE_TYPES)})"
        )
    return list(dict.fromkeys(names))


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
            "element type of a raw binary file (default: float64); for other formats, "
            "convert the data to it (in memory)"
        ),
    )


def _build_parser():
    parser = _Parser(
        prog="fastmix",
        description=(
            "fastmix: Gaussian mixture models on streaming numba kernels, "
            "a drop-in replacement for scikit-learn's GaussianMixture."
        ),
    )
    from . import __version__

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
        choices=COVARIANCE_TYPES,
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
        choices=COVARIANCE_TYPES,
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
    fit.add_argument(
        "--weight-concentration-prior",
        type=_float_at_least(0.0, strict=True),
        default=None,
        metavar="GAMMA",
        help="with --bayesian: the Dirichlet concentration (default: 1 / n_components)",
    )
    fit.add_argument(
        "--mean-precision-prior",
        type=_float_at_least(0.0, strict=True),
        default=None,
        metavar="BETA",
        help="with --bayesian: the precision prior of the means (default: 1)",
    )
    fit.add_argument(
        "--degrees-of-freedom-prior",
        type=_float_at_least(0.0, strict=True),
        default=None,
        metavar="NU",
        help=(
            "with --bayesian: degrees of freedom of the Wishart prior, more than "
            "n_features - 1 (default: n_features)"
        ),
    )
    fit.add_argument(
        "--max-iter",
        type=_non_negative_int,
        default=100,
        metavar="N",
        help="EM iterations at most per initialisation (default: 100)",
    )
    fit.add_argument(
        "--tol",
        type=_float_at_least(0.0, strict=False),
        default=1e-3,
        help="convergence threshold on the change of the lower bound (default: 0.001)",
    )
    fit.add_argument(
        "--reg-covar",
        type=_float_at_least(0.0, strict=False),
        default=1e-6,
        help="added to the diagonal of the covariances (default: 1e-06)",
    )
    fit.add_argument(
        "--n-init",
        type=_count,
        default=1,
        metavar="N",
        help="initialisations; the best is kept (default: 1)",
    )
    fit.add_argument(
        "--init-params", choices=INIT_PARAMS, default="kmeans", help="(default: kmeans)"
    )
    fit.add_argument(
        "--random-state",
        type=_non_negative_int,
        default=0,
        metavar="SEED",
        help="seed of the initialisation (default: 0, so that a fit can be repeated)",
    )
    fit.add_argument(
        "--sample-weight",
        metavar="FILE",
        default=None,
        help="one non-negative weight per row of DATA: a .npy, .npz, .csv or .tsv file",
    )
    fit.add_argument(
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
        "--out",
        required=True,
        metavar="PATH",
        help="where the labels (or probabilities) go: .npy, .csv or .tsv",
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
            "sklearn/fastmix and the largest |difference| of lower_bound_ as a check "
            "that both did the same work."
        ),
    )
    bench.add_argument(
        "-n",
        "--n-samples",
        type=_count,
        default=1_000_000,
        metavar="N",
        help="rows of data (default: 1000000)",
    )
    bench.add_argument(
        "-d",
        "--n-features",
        type=_count,
        default=16,
        metavar="D",
        help="columns of data (default: 16)",
    )
    bench.add_argument(
        "-k",
        "--n-components",
        type=_count,
        default=16,
        metavar="K",
        help="mixture components, true and fitted (default: 16)",
    )
    bench.add_argument("--dtype", choices=DTYPES, default="float64", help="(default: float64)")
    bench.add_argument(
        "--iters",
        type=_count,
        default=20,
        metavar="ITERS",
        help="EM iterations per fit, max_iter with tol=0 (default: 20)",
    )
    bench.add_argument(
        "--covariance-types",
        type=_covariance_types,
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
    return parser


# ------------------------------------------------------------------- demo data
def demo_mixture(seed=DEMO_SEED):
    """The demo's true mixture: 5 well-separated 2-D Gaussians.

    Weights are fixed and distinct; means lie near a circle of radius 6 (so
    neighbours are several standard deviations apart); each covariance has a
    random orientation and axis lengths, all drawn from ``seed``.

    Parameters
    ----------
    seed : int, default=DEMO_SEED
        Seed of the :class:`numpy.random.Generator` drawing means and covariances.

    Returns
    -------
    weights : ndarray of shape (5,)
    means : ndarray of shape (5, 2)
    covariances : ndarray of shape (5, 2, 2)
    """
    rng = np.random.default_rng(seed)
    n_components = len(DEMO_WEIGHTS)
    weights = np.array(DEMO_WEIGHTS)
    angles = 2 * np.pi * np.arange(n_components) / n_components + rng.uniform(-0.2, 0.2, 5)
    radii = 6.0 + rng.uniform(-0.5, 0.5, n_components)
    means = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1) + [1.0, -2.0]
    covariances = np.empty((n_components, 2, 2))
    for k in range(n_components):
        theta = rng.uniform(0.0, np.pi)
        major = rng.uniform(0.6, 1.4)
        minor = major * rng.uniform(0.25, 0.8)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        covariances[k] = rot @ np.diag([major**2, minor**2]) @ rot.T
    return weights, means, covariances


def sample_mixture(n_samples, weights, means, covariances, rng):
    """Draw rows from a Gaussian mixture with full covariances.

    Parameters
    ----------
    n_samples : int
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray of shape (K, D, D)
    rng : numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, D), float64
    labels : ndarray of shape (n_samples,), int64
        The component each row was drawn from.
    """
    n_components, n_features = means.shape
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = rng.standard_normal((n_samples, n_features))
    for k in range(n_components):
        rows = labels == k
        X[rows] = X[rows] @ np.linalg.cholesky(covariances[k]).T + means[k]
    return X, labels


def _full_covariances(gm):
    """The fitted covariances as a (K, D, D) stack, whatever the covariance type."""
    n_components, n_features = gm.means_.shape
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    if gm.covariance_type == "full":
        return cov
    if gm.covariance_type == "tied":
        return np.broadcast_to(cov, (n_components, n_features, n_features))
    if gm.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return cov[:, None, None] * np.eye(n_features)


def _ellipse(cov):
    """Standard deviations along the principal axes and the major axis' angle (degrees)."""
    values, vectors = np.linalg.eigh(cov)
    sd = np.sqrt(np.maximum(values[::-1], 0.0))
    major = vectors[:, -1]
    angle = math.degrees(math.atan2(major[1], major[0])) % 180.0
    return sd, angle


def _mixture_loglik(X, weights, means, covariances):
    """Mean log-likelihood of X under a full-covariance mixture (float64, NumPy only)."""
    from scipy.special import logsumexp

    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    logp = np.empty((X.shape[0], len(weights)))
    for k in range(len(weights)):
        chol = np.linalg.cholesky(covariances[k])
        z = np.linalg.solve(chol, (X - means[k]).T)
        logp[:, k] = (
            math.log(weights[k])
            - 0.5 * n_features * math.log(2 * math.pi)
            - np.log(np.diag(chol)).sum()
            - 0.5 * np.einsum("ij,ij->j", z, z)
        )
    return float(logsumexp(logp, axis=1).mean())


def _warm_kernels(
    covariance_types, dtype, n_features, n_components, seed=0, sizes=None, predict=True,
    kmeans=False,
):  # fmt: skip
    """Compile (or load from numba's cache) the kernels a fit will use, on tiny inputs.

    By default two sizes, because a fit hands a block of a few hundred rows or
    fewer to a serial kernel and larger blocks to its parallel twin: both must be
    ready before anything is timed. ``fit`` (and ``predict`` unless told not
    to) runs on each.

    Parameters
    ----------
    covariance_types : list of str
    dtype : numpy dtype
    n_features, n_components : int
    seed : int, default=0
    sizes : tuple of int, optional
        Rows of the tiny inputs; default ``(max(2 * n_components, 64), 4096)``.
    predict : bool, default=True
        Also warm the per-row kernels of ``predict``.
    kmeans : bool, default=False
        Also warm the k-means kernels of the default ``init_params='kmeans'``.
    """
    from . import GaussianMixture

    if sizes is None:
        sizes = (max(2 * n_components, 64), 4096)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_rows in sizes:
            X = rng.standard_normal((n_rows, n_features)).astype(dtype)
            init = explicit_init(X, n_components, covariance_types, seed)
            for cov_type in covariance_types:
                gm = GaussianMixture(
                    n_components, covariance_type=cov_type, max_iter=1, tol=0.0, **init[cov_type]
                )
                gm.fit(X)
                if predict:
                    gm.predict(X)
            if kmeans:
                GaussianMixture(n_components, max_iter=0, random_state=seed).fit(X)


# ------------------------------------------------------------------------ demo
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
    from . import GaussianMixture

    out = sys.stdout if out is None else out
    if args.n_samples < max(2, args.n_components):
        raise UsageError(
            f"--n-samples ({args.n_samples}) must be at least 2 and at least "
            f"--n-components ({args.n_components})"
        )
    plot_path, plot_dir, no_plot_reason = _demo_plot_targets(args)
    dtype = np.dtype(args.dtype)
    weights, means, covariances = demo_mixture()
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
    t0 = time.perf_counter()
    # Only what this fit runs: the k-means start and the statistics pass on
    # blocks of many rows.
    _warm_kernels(
        [args.covariance_type], dtype, 2, args.n_components, sizes=(4096,), predict=False,
        kmeans=True,
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

    found_cov = _full_covariances(gm)
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
        sd, angle = _ellipse(found_cov[j])
        true_sd, true_angle = _ellipse(covariances[k])
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
    true_ll = _mixture_loglik(X, weights, means, covariances)
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
        for path in _write_pictures(gm, X, path=plot_path, folder=plot_dir):
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
        if not _have("matplotlib"):
            return None, None, f"matplotlib is not installed ({PLOT_EXTRA_HINT})"
        plot_path = DEMO_PLOT
    _require_matplotlib("--plot-dir" if plot_path is None else "--plot")
    if plot_path is not None:
        _check_picture_path(plot_path, "--plot")
    if plot_dir is not None:
        if os.path.exists(plot_dir) and not os.path.isdir(plot_dir):
            raise UsageError(f"--plot-dir {plot_dir}: is a file, not a folder")
        os.makedirs(plot_dir, exist_ok=True)
    return plot_path, plot_dir, None


# ------------------------------------------------------------------- data files
def _extension(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def _check_input_file(path, what):
    if not os.path.exists(path):
        raise UsageError(f"{what} {path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{what} {path}: is a folder, not a file")


def _as_numeric(X, path):
    """Check the element type of a loaded array; non-float numbers become float64."""
    if X.dtype in (np.float32, np.float64):
        return X
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{path}: the data must be numbers, but the array holds {X.dtype} values")
    return np.asarray(X, dtype=np.float64)


def _read_npy(path):
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise UsageError(f"{path}: not a readable .npy file (it does not start as one)")
    try:
        # Memory-mapped: a file larger than memory is streamed by the estimators.
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "Python objects" in str(exc) or "pickle" in str(exc):
            raise UsageError(
                f"{path}: the array holds Python objects, not numbers (never unpickled)"
            ) from None
        raise UsageError(
            f"{path}: not a readable .npy file ({' '.join(str(exc).split())})"
        ) from None
    except (OSError, EOFError) as exc:
        raise UsageError(f"{path}: not a readable .npy file ({exc})") from None


def _read_npz(path, key):
    import zipfile

    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UsageError(f"{path}: a single .npy array, not an .npz archive (rename it .npy)")
    with archive:
        names = list(archive.files)
        if not names:
            raise UsageError(f"{path}: the .npz archive holds no array")
        if key is None:
            key = names[0]
        elif key not in names:
            raise UsageError(
                f"{path}: no array named {key!r} (its arrays: {', '.join(names[:10])}"
                f"{', ...' if len(names) > 10 else ''})"
            )
        try:
            return archive[key]
        except ValueError as exc:
            if "pickle" in str(exc) or "Object arrays" in str(exc):
                raise UsageError(
                    f"{path}: the array {key!r} holds Python objects, not numbers "
                    "(never unpickled)"
                ) from None
            raise UsageError(f"{path}: the array {key!r} is damaged ({exc})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise UsageError(f"{path}: the array {key!r} is damaged ({exc})") from None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_text(path, delimiter):
    """Read a .csv/.tsv file of numbers; a first row that is not all numbers is a header."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    header = None
    skip = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                fields = next(csv.reader([line], delimiter=delimiter))
                if not all(_is_number(field) for field in fields):
                    header = [field.strip() for field in fields]
                    skip = number
                else:
                    skip = number - 1
                break
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (it is not UTF-8)") from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data": checked below
        try:
            X = np.loadtxt(
                path,
                delimiter=delimiter,
                skiprows=skip,
                ndmin=2,
                dtype=np.float64,
                encoding="utf-8-sig",
                quotechar='"',
            )
        except ValueError as exc:
            raise UsageError(_text_error(path, kind, delimiter, header, skip, exc)) from None
    if X.shape[0] == 0:
        raise UsageError(f"{path}: malformed {kind}: no rows of numbers")
    if header is not None and len(header) != X.shape[1]:
        raise UsageError(
            f"{path}: malformed {kind}: the header has {len(header)} fields but the rows "
            f"have {X.shape[1]}"
        )
    return X


def _text_error(path, kind, delimiter, header, skip, exc):
    """One line saying which line and column of a .csv/.tsv file is wrong.

    Only on the error path: the file is scanned again line by line (``#``
    comments and blank lines skipped, as ``np.loadtxt`` does) for the first
    line whose number of fields differs from the first data line's or whose
    field is not a number.
    """
    width = None
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            content = line.split("#", 1)[0]
            if number <= skip or not content.strip():
                continue
            fields = next(csv.reader([content.rstrip("\r\n")], delimiter=delimiter))
            if width is None:
                width = len(fields)
            elif len(fields) != width:
                return (
                    f"{path}: malformed {kind}: line {number} has {len(fields)} fields, "
                    f"the lines before it {width}"
                )
            for column, value in enumerate(fields, start=1):
                if _is_number(value):
                    continue
                named = f" ({header[column - 1]!r})" if header and column <= len(header) else ""
                if not value.strip():
                    return (
                        f"{path}: malformed {kind}: line {number}, column {column}{named} is empty"
                    )
                hint = ""
                if any(sep in value for sep in ",;\t|" if sep != delimiter):
                    name = "a tab" if delimiter == "\t" else repr(delimiter)
                    hint = (
                        f" (the delimiter of a {_delimiter_extension(delimiter)} file is {name})"
                    )
                return (
                    f"{path}: column {column}{named} is not numeric: {value!r} on line {number}"
                    f"{hint}"
                )
    message = " ".join(str(exc).split()).split("; use `usecols`")[0]
    return f"{path}: malformed {kind} ({message})"


def _delimiter_extension(delimiter):
    return next(ext for ext, d in TEXT_DELIMITERS.items() if d == delimiter)


def _read_raw(path, shape, dtype):
    dtype = np.dtype(dtype)
    n_rows, n_columns = shape
    expected = n_rows * n_columns * dtype.itemsize
    size = os.path.getsize(path)
    if size != expected:
        fits = ""
        row_bytes = n_columns * dtype.itemsize
        if size % row_bytes == 0 and size:
            fits = f"; with {n_columns} columns it holds {size // row_bytes} rows"
        raise UsageError(
            f"{path}: wrong --shape: the file has {size:,} bytes but --shape "
            f"{n_rows},{n_columns} of {dtype.name} needs {expected:,}{fits}"
        )
    return np.memmap(path, dtype=dtype, mode="r", shape=(n_rows, n_columns))


def read_data(path, key=None, shape=None, dtype=None):
    """Read a data file the way ``fastmix fit`` and ``fastmix predict`` do.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (memory-mapped), ``.npz`` (one array of the archive),
        ``.csv`` or ``.tsv`` (numbers only, delimiter from the extension; a
        first row that is not all numbers is a header and skipped), or, with
        ``shape``, a raw binary file of ``dtype`` values in row-major order
        (memory-mapped), whatever its extension.
    key : str, optional
        The array of a ``.npz`` archive; its first array when omitted.
    shape : tuple of two int, optional
        ``(n_rows, n_columns)`` of a raw binary file; the file's size must be
        exactly ``n_rows * n_columns * itemsize``.
    dtype : {'float64', 'float32'}, optional
        The element type of a raw binary file (default float64); for the
        other formats the data are converted to it (in memory).

    Returns
    -------
    X : ndarray or numpy.memmap of shape (n_rows, n_columns)
        float32 or float64; a 1-d array is read as one column. ``.npy`` and
        raw files come back as read-only memmaps, which the estimators stream.

    Raises
    ------
    UsageError
        When the file is missing, its extension unknown (without ``shape``),
        its content malformed or not numeric, or ``shape`` does not match it.
    """
    path = os.fspath(path)
    _check_input_file(path, "DATA")
    ext = _extension(path)
    if shape is not None:
        if ext in DATA_EXTENSIONS:
            raise UsageError(
                f"--shape is for raw binary files; a {ext} file carries its own shape"
            )
        return _read_raw(path, shape, dtype or "float64")
    if key is not None and ext != ".npz":
        raise UsageError(f"--key is for .npz archives, not {ext or 'extension-less'} files")
    if ext == ".npy":
        X = _read_npy(path)
    elif ext == ".npz":
        X = _read_npz(path, key)
    elif ext in TEXT_DELIMITERS:
        X = _read_text(path, TEXT_DELIMITERS[ext])
    else:
        shown = f"extension {ext!r}" if ext else "a file without an extension"
        raise UsageError(
            f"{path}: unknown {shown}; expected .npy, .npz, .csv or .tsv, or a raw binary "
            "file with --shape N,D and --dtype"
        )
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise UsageError(f"{path}: expected a 2-d array (rows x features), got shape {X.shape}")
    X = _as_numeric(X, path)
    if dtype is not None and X.dtype != np.dtype(dtype):
        X = np.asarray(X, dtype=dtype)
    return X


def _read_weights(path, n_samples):
    """The --sample-weight file as a 1-d float64 array of n_samples weights."""
    _check_input_file(path, "--sample-weight")
    if _extension(path) not in DATA_EXTENSIONS:
        raise UsageError(
            f"--sample-weight {path}: unknown extension; expected .npy, .npz, .csv or .tsv"
        )
    weights = read_data(path)
    if weights.shape[1] != 1:
        raise UsageError(
            f"--sample-weight {path}: expected one column of weights, got {weights.shape[1]}"
        )
    weights = np.asarray(weights[:, 0], dtype=np.float64)
    if weights.shape[0] != n_samples:
        raise UsageError(
            f"--sample-weight {path}: {weights.shape[0]:,} weights for {n_samples:,} rows "
            "of DATA; give one weight per row"
        )
    return weights


def _check_output(path, option, extensions=None):
    """Fail before the work when an output cannot be written where asked."""
    path = os.fspath(path)
    if extensions is not None and _extension(path) not in extensions:
        raise UsageError(f"{option} {path}: unknown extension; expected {', '.join(extensions)}")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")


# ---------------------------------------------------------------------- progress
class _ProgressReporter:
    """The callback of :func:`fastmix._progress.report_progress` for the command line.

    ``bar``: one tqdm bar per initialisation (total ``max_iter``), closed when
    the initialisation converges or runs out of iterations. ``text``: one line
    on the first and the last iteration of each initialisation and at most one
    per ``interval`` seconds in between.
    """

    def __init__(self, mode, n_init, tol, stream, prog, intro=None, interval=1.0):
        self.mode = mode
        self.intro = intro
        self.n_init = n_init
        self.tol = tol
        self.stream = stream
        self.prog = prog
        self.interval = interval
        self.bar = None
        self.last_line = -math.inf

    def _label(self, init):
        return f"init {init + 1}/{self.n_init}" if self.n_init > 1 else "EM"

    def __call__(self, init, n_iter, max_iter, lower_bound, change):
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
            if last:
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


def _have(module):
    """Whether ``module`` can be imported."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _progress_mode(requested):
    if requested == "auto":
        return "bar" if _have("tqdm") else "text"
    if requested == "bar" and not _have("tqdm"):
        raise UsageError(f"--progress bar needs tqdm; {CLI_EXTRA_HINT}")
    return requested


def _warn_lines(caught, prog, stream):
    """Each distinct warning caught, as one line on ``stream``."""
    seen = set()
    for w in caught:
        message = " ".join(str(w.message).split())
        if message not in seen:
            seen.add(message)
            print(f"{prog}: warning: {message}", file=stream, flush=True)


# ---------------------------------------------------------------------- pictures
def _require_matplotlib(option):
    if not _have("matplotlib"):
        raise UsageError(f"{option} needs matplotlib; {PLOT_EXTRA_HINT}")


def _check_picture_path(path, option):
    _check_output(path, option)
    from matplotlib.figure import Figure

    ext = _extension(path).lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if ext not in supported:
        shown = f".{ext} files" if ext else "a file without an extension"
        raise UsageError(
            f"{option} {path}: matplotlib cannot write {shown}; "
            f"use one of {', '.join('.' + e for e in sorted(supported))}"
        )


def _draw_mixture(model, X, ax, dims):
    from . import plot

    n_features = model.means_.shape[1]
    if n_features < 2:
        # One feature: the data along the line, the means marked.
        values = np.asarray(X[: min(X.shape[0], 5000), 0], dtype=np.float64)
        ax.hist(values, bins=80, color="0.6")
        for mean in np.asarray(model.means_, dtype=np.float64)[:, 0]:
            ax.axvline(mean, color="black", linewidth=1)
        ax.set_xlabel("feature 0")
        ax.set_title(f"{type(model).__name__}: means over the data")
        return
    if max(dims) >= n_features:
        raise UsageError(
            f"--plot-dims {dims[0]},{dims[1]}: the data have {n_features} features "
            f"(indices 0 to {n_features - 1})"
        )
    plot.mixture(model, X, dims=dims, ax=ax)


def _write_pictures(model, X, path=None, folder=None, names=DEMO_PICTURES, dims=(0, 1)):
    """Draw a fitted model's mixture and convergence pictures to files.

    Uses :func:`fastmix.plot.mixture` and :func:`fastmix.plot.convergence` on
    matplotlib ``Figure`` objects (no pyplot, so no backend is chosen or
    changed).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model.
    X : array-like of shape (n_samples, n_features)
        The data drawn under the ellipses (subsampled to 5000 rows).
    path : str, optional
        Write both pictures side by side to this file.
    folder : str, optional
        Write each picture to its own file in this folder, named ``names``.
    names : tuple of two str, default=DEMO_PICTURES
        File names of the mixture and the convergence picture in ``folder``.
    dims : tuple of two int, default=(0, 1)
        The features of the mixture picture.

    Returns
    -------
    written : list of str
        The files written.
    """
    from matplotlib.figure import Figure

    from . import plot

    written = []
    if path is not None:
        fig = Figure(figsize=(12, 5), layout="constrained")
        left, right = fig.subplots(1, 2)
        _draw_mixture(model, X, left, dims)
        plot.convergence(model, ax=right)
        fig.savefig(path, dpi=100)
        written.append(os.fspath(path))
    if folder is not None:
        for name, draw in zip(
            names,
            (
                lambda ax: _draw_mixture(model, X, ax, dims),
                lambda ax: plot.convergence(model, ax=ax),
            ),
            strict=True,
        ):
            fig = Figure(figsize=(6, 5), layout="constrained")
            draw(fig.subplots())
            target = os.path.join(folder, name)
            fig.savefig(target, dpi=100)
            written.append(target)
    return written


# --------------------------------------------------------------------------- fit
_BAYESIAN_OPTIONS = (
    "weight_concentration_prior_type",
    "weight_concentration_prior",
    "mean_precision_prior",
    "degrees_of_freedom_prior",
)


def _build_model(args):
    from . import BayesianGaussianMixture, GaussianMixture

    params = dict(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        tol=args.tol,
        reg_covar=args.reg_covar,
        n_init=args.n_init,
        init_params=args.init_params,
        random_state=args.random_state,
    )
    given = [name for name in _BAYESIAN_OPTIONS if getattr(args, name) is not None]
    if not args.bayesian:
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --bayesian")
        return GaussianMixture(**params)
    params.update({name: getattr(args, name) for name in given})
    return BayesianGaussianMixture(**params)


def _floats(values):
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _format_mean(mean, shown=6):
    cells = ", ".join(f"{v:.4g}" for v in mean[:shown])
    return f"({cells}{', ...' if len(mean) > shown else ''})"


def run_fit(args, out=None, err=None):
    """Fit a mixture to a data file; print a summary; save the model and a picture.

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``fastmix fit``.
    out : file-like, optional
        Where the summary goes; ``sys.stdout`` when omitted.
    err : file-like, optional
        Where progress and warnings go; ``sys.stderr`` when omitted.

    Returns
    -------
    status : int
        0 on success.
    """
    from ._progress import report_progress

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    prog = "fastmix fit"
    # Every check that can fail does so before the data are read and fitted.
    model = _build_model(args)
    model._validate_params()
    mode = _progress_mode(args.progress)
    if args.out is not None:
        _check_output(args.out, "--out")
    if args.plot is not None:
        _require_matplotlib("--plot")
        _check_picture_path(args.plot, "--plot")
    X = read_data(args.data, key=args.key, shape=args.shape, dtype=args.dtype)
    n_samples, n_features = X.shape
    if args.plot is not None and n_features >= 2 and max(args.plot_dims) >= n_features:
        raise UsageError(
            f"--plot-dims {args.plot_dims[0]},{args.plot_dims[1]}: DATA has {n_features} "
            f"features (indices 0 to {n_features - 1})"
        )
    sample_weight = None
    if args.sample_weight is not None:
        sample_weight = _read_weights(args.sample_weight, n_samples)

    intro = (
        f"{prog}: {' '.join(repr(model).split())} on {n_samples:,} x {n_features} "
        f"{X.dtype.name} from {args.data}"
    )
    reporter = _ProgressReporter(mode, args.n_init, args.tol, err, prog, intro=intro)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with report_progress(None if mode == "none" else reporter):
                t0 = time.perf_counter()
                model.fit(X, sample_weight=sample_weight)
                seconds = time.perf_counter() - t0
        finally:
            reporter.close()
        bayesian = args.bayesian
        bic = None if bayesian else float(model.bic(X))
    _warn_lines(caught, prog, err)

    if args.out is not None:
        model.save(args.out)
    pictures = []
    if args.plot is not None:
        pictures = _write_pictures(model, X, path=args.plot, dims=args.plot_dims)

    summary = {
        "model": type(model).__name__,
        "data": os.fspath(args.data),
        "n_samples": n_samples,
        "n_features": n_features,
        "dtype": X.dtype.name,
        "n_components": model.n_components,
        "covariance_type": model.covariance_type,
        "sample_weight": args.sample_weight,
        "weights": _floats(model.weights_),
        "means": np.asarray(model.means_, dtype=np.float64).tolist(),
        # -inf (max_iter=0: no iteration ran) is null: JSON has no infinities.
        "lower_bound": _finite_or_none(model.lower_bound_),
        "lower_bound_kind": "elbo" if bayesian else "log_likelihood_per_sample",
        "lower_bounds": _floats(model.lower_bounds_),
        "bic": bic,
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "max_iter": model.max_iter,
        "tol": model.tol,
        "seconds": seconds,
        "out": args.out,
        "plot": args.plot,
    }
    if args.json:
        json.dump(summary, out, indent=2)
        out.write("\n")
        out.flush()
        return 0

    def say(line=""):
        print(line, file=out, flush=True)

    say(
        f"{summary['model']} ({model.covariance_type}, K={model.n_components}) fitted to "
        f"{n_samples:,} x {n_features} {X.dtype.name} from {args.data}"
        + (f", weighted by {args.sample_weight}" if args.sample_weight else "")
    )
    say()
    say(f"{'component':>9}  {'weight':>7}  mean")
    for k, (weight, mean) in enumerate(zip(summary["weights"], summary["means"], strict=True)):
        say(f"{k:>9d}  {weight:7.4f}  {_format_mean(mean)}")
    say()
    if bayesian:
        say(f"lower bound (ELBO):     {float(model.lower_bound_):.6f}")
    else:
        say(f"log-likelihood / point: {float(model.lower_bound_):.6f} (lower_bound_)")
        say(f"BIC:                    {bic:.6g}")
    say(f"iterations:             {model.n_iter_} (max_iter={model.max_iter}, tol={model.tol})")
    say(f"converged:              {model.converged_}")
    say(f"fit seconds:            {seconds:.3f}")
    if args.out is not None:
        say(f"model written to:       {args.out}")
    for path in pictures:
        say(f"plot written to:        {path}")
    return 0


# ----------------------------------------------------------------------- predict
def _write_array(path, array, header):
    ext = _extension(path)
    if ext == ".npy":
        with open(path, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        return
    # Enough digits to read the same float back.
    fmt = "%d" if array.dtype.kind in "iu" else ("%.9g" if array.dtype == np.float32 else "%.17g")
    np.savetxt(
        path,
        array,
        fmt=fmt,
        delimiter=TEXT_DELIMITERS[ext],
        header=TEXT_DELIMITERS[ext].join(header),
        comments="",
    )


def run_predict(args, out=None, err=None):
    """Label the rows of a data file with a saved model.

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``fastmix predict``.
    out : file-like, optional
        Where the one-line report goes; ``sys.stdout`` when omitted.
    err : file-like, optional
        Where warnings go; ``sys.stderr`` when omitted.

    Returns
    -------
    status : int
        0 on success.
    """
    from . import load

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    prog = "fastmix predict"
    _check_output(args.out, "--out", extensions=(".npy", *TEXT_DELIMITERS))
    _check_input_file(args.model, "MODEL")
    model = load(args.model)
    X = read_data(args.data, key=args.key, shape=args.shape, dtype=args.dtype)
    if X.shape[1] != model.n_features_in_:
        raise UsageError(
            f"{args.data} has {X.shape[1]} feature{'s' if X.shape[1] != 1 else ''} per row, "
            f"but the model {args.model} was fitted on {model.n_features_in_}"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.proba:
            result = model.predict_proba(X)
            header = [f"component_{k}" for k in range(model.n_components)]
        else:
            result = model.predict(X)
            header = ["label"]
    _warn_lines(caught, prog, err)
    _write_array(args.out, result, header)
    what = "probabilities" if args.proba else "labels"
    print(
        f"{prog}: {what} of {X.shape[0]:,} rows ({result.dtype.name}, shape "
        f"{result.shape}) written to {args.out}",
        file=out,
        flush=True,
    )
    return 0


# ------------------------------------------------------------------- bench data
def bench_problem(n_samples, n_features, n_components, dtype="float64", seed=0):
    """Synthetic data for benchmarks: a random full-covariance mixture.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    dtype : {'float64', 'float32'}, default='float64'
        The returned array's dtype (drawn in float64, then cast).
    seed : int, default=0
        Seed of the :class:`numpy.random.Generator`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), C-contiguous
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 4.0))
    means = rng.normal(scale=3.0, size=(n_components, n_features))
    a = rng.standard_normal((n_components, n_features, n_features)) / math.sqrt(n_features)
    covariances = a @ np.swapaxes(a, 1, 2) + 0.25 * np.eye(n_features)
    X, _ = sample_mixture(n_samples, weights, means, covariances, rng)
    return np.ascontiguousarray(X, dtype=dtype)


def _covariance(X, block=65536):
    """Covariance of the rows of X in float64, a block of rows at a time (no full copy)."""
    n_samples, n_features = X.shape
    centre = np.asarray(X[: min(n_samples, block)], dtype=np.float64).mean(axis=0)
    s1 = np.zeros(n_features)
    s2 = np.zeros((n_features, n_features))
    for start in range(0, n_samples, block):
        d = np.asarray(X[start : start + block], dtype=np.float64) - centre
        s1 += d.sum(axis=0)
        s2 += d.T @ d
    mean = s1 / n_samples
    return (s2 - n_samples * np.outer(mean, mean)) / max(n_samples - 1, 1)


def explicit_init(X, n_components, covariance_types=COVARIANCE_TYPES, seed=0):
    """A deterministic explicit initialisation, the same for fastmix and scikit-learn.

    Uniform weights, means at ``n_components`` distinct rows of ``X`` chosen
    with ``seed``, and precisions from the covariance of all of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    covariance_types : iterable of str, default=all four
    seed : int, default=0

    Returns
    -------
    init : dict
        ``{covariance_type: {"weights_init", "means_init", "precisions_init"}}``,
        float64 arrays, ready to pass as keyword arguments to either estimator.
    """
    n_samples, n_features = X.shape
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n_samples, size=n_components, replace=False))
    means = np.asarray(X[rows], dtype=np.float64)
    weights = np.full(n_components, 1.0 / n_components)
    cov = _covariance(X)
    cov += 1e-3 * np.trace(cov) / n_features * np.eye(n_features)
    precision = np.linalg.inv(cov)
    precision = 0.5 * (precision + precision.T)
    variances = np.diag(cov)
    precisions = {
        "full": np.broadcast_to(precision, (n_components, n_features, n_features)).copy(),
        "tied": precision,
        "diag": np.broadcast_to(1.0 / variances, (n_components, n_features)).copy(),
        "spherical": np.full(n_components, 1.0 / variances.mean()),
    }
    return {
        cov_type: {
            "weights_init": weights,
            "means_init": means,
            "precisions_init": precisions[cov_type],
        }
        for cov_type in covariance_types
    }


# ----------------------------------------------------------------------- bench
def _blas_threads():
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    return max(counts) if counts else None


def _timed_fit(estimator, X):
    with warnings.catch_warnings():
        # tol=0 never converges: the ConvergenceWarning is expected.
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        estimator.fit(X)
        return time.perf_counter() - t0, estimator


def run_bench(args, out=None):
    """Time fastmix against scikit-learn on the same data and the same initialisation.

    Parameters
    ----------
    args : argparse.Namespace
        As parsed by ``fastmix bench``.
    out : file-like, optional
        Where the table (or with ``args.json`` the JSON document) goes;
        ``sys.stdout`` when omitted.

    Returns
    -------
    status : int
        0 on success.
    """
    import numba
    import sklearn
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    from threadpoolctl import threadpool_limits

    from . import GaussianMixture, __version__

    out = sys.stdout if out is None else out
    if args.n_samples < max(2, args.n_components):
        raise UsageError(
            f"-n/--n-samples ({args.n_samples}) must be at least 2 and at least "
            f"-k/--n-components ({args.n_components})"
        )
    if args.threads is not None and args.threads > numba.config.NUMBA_NUM_THREADS:
        raise UsageError(
            f"--threads {args.threads} is more than numba's {numba.config.NUMBA_NUM_THREADS} "
            "threads on this machine"
        )

    def say(line=""):
        if not args.json:
            print(line, file=out, flush=True)

    X = bench_problem(args.n_samples, args.n_features, args.n_components, args.dtype, args.seed)
    init = explicit_init(X, args.n_components, args.covariance_types, args.seed)
    common = dict(n_components=args.n_components, n_init=1, max_iter=args.iters, tol=0.0)

    saved_threads = numba.get_num_threads()
    results = []
    try:
        if args.threads is not None:
            numba.set_num_threads(args.threads)
        blas_limit = threadpool_limits(limits=args.threads, user_api="blas")
        with blas_limit:
            threads = {"fastmix_numba": numba.get_num_threads(), "sklearn_blas": _blas_threads()}
            say(
                f"fastmix {__version__} vs scikit-learn {sklearn.__version__}: "
                f"{args.n_samples:,} x {args.n_features}, K={args.n_components}, {args.dtype}, "
                f"{args.iters} iterations per fit (tol=0, explicit init, seed {args.seed}), "
                f"median of {args.repeats}"
            )
            say(
                f"threads: fastmix (numba) {threads['fastmix_numba']}, "
                f"scikit-learn (BLAS) {threads['sklearn_blas']}"
            )
            t0 = time.perf_counter()
            _warm_kernels(args.covariance_types, X.dtype, args.n_features, args.n_components)
            say(f"fastmix kernels ready in {time.perf_counter() - t0:.2f} s")
            say()
            header = (
                f"{'covariance':<11} {'fastmix s/iter':>15} {'sklearn s/iter':>15} "
                f"{'sklearn/fastmix':>16} {'max |d lower_bound_|':>21}"
            )
            say(header)
            say("-" * len(header))
            for cov_type in args.covariance_types:
                kwargs = dict(common, covariance_type=cov_type, **init[cov_type])
                fm_times, sk_times, diffs = [], [], []
                for _ in range(args.repeats):
                    fm_seconds, fm = _timed_fit(GaussianMixture(**kwargs), X)
                    sk_seconds, sk = _timed_fit(SkGaussianMixture(**kwargs), X)
                    fm_times.append(fm_seconds / max(fm.n_iter_, 1))
                    sk_times.append(sk_seconds / max(sk.n_iter_, 1))
                    diffs.append(abs(float(fm.lower_bound_) - float(sk.lower_bound_)))
                row = {
                    "covariance_type": cov_type,
                    "fastmix_seconds_per_iter": statistics.median(fm_times),
                    "sklearn_seconds_per_iter": statistics.median(sk_times),
                    "ratio": statistics.median(sk_times) / statistics.median(fm_times),
                    "max_abs_lower_bound_diff": max(diffs),
                    "fastmix_lower_bound": float(fm.lower_bound_),
                    "sklearn_lower_bound": float(sk.lower_bound_),
                    "n_iter": {"fastmix": int(fm.n_iter_), "sklearn": int(sk.n_iter_)},
                    "fastmix_seconds_per_iter_all": fm_times,
                    "sklearn_seconds_per_iter_all": sk_times,
                }
                results.append(row)
                say(
                    f"{cov_type:<11} {row['fastmix_seconds_per_iter']:15.4f} "
                    f"{row['sklearn_seconds_per_iter']:15.4f} {row['ratio']:15.3g}x "
                    f"{row['max_abs_lower_bound_diff']:21.2e}"
                )
    finally:
        numba.set_num_threads(saved_threads)

    say()
    say("s/iter = fit seconds / iterations (scikit-learn's fit also runs one final E-step)")
    if args.json:
        document = {
            "fastmix_version": __version__,
            "sklearn_version": sklearn.__version__,
            "numpy_version": np.__version__,
            "numba_version": numba.__version__,
            "python_version": platform.python_version(),
            "n_samples": args.n_samples,
            "n_features": args.n_features,
            "n_components": args.n_components,
            "dtype": args.dtype,
            "iters": args.iters,
            "repeats": args.repeats,
            "seed": args.seed,
            "threads": threads,
            "results": results,
        }
        json.dump(document, out, indent=2)
        out.write("\n")
        out.flush()
    return 0


# ------------------------------------------------------------------------ main
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
    parser = _build_parser()
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
