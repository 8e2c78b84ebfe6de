"""The ``fastmix`` command line: ``fastmix demo`` and ``fastmix bench``.

``fastmix demo`` fits a built-in synthetic mixture and sets what it found
beside the truth. ``fastmix bench`` times fastmix against scikit-learn in one
process, on the same data and from the same explicit initialisation, so both
do the same work.

A user mistake (a bad option, an impossible size) is reported as one line on
stderr with exit status 2, never as a traceback. Nothing here sets an
environment variable: ``--threads`` goes through ``numba.set_num_threads``
(restored afterwards) and threadpoolctl.
"""

import argparse
import json
import math
import platform
import statistics
import sys
import time
import warnings

import numpy as np

__all__ = [
    "main",
    "demo_mixture",
    "sample_mixture",
    "bench_problem",
    "explicit_init",
    "run_demo",
    "run_bench",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DTYPES = ("float64", "float32")

# The demo's truth: five 2-D components with distinct weights, drawn from a
# fixed seed so every run (and every test) sees the same mixture.
DEMO_SEED = 20240611
DEMO_WEIGHTS = (0.32, 0.25, 0.19, 0.14, 0.10)


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


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


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
        type=_seed,
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
    demo.set_defaults(handler=run_demo)

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
        type=_seed,
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
    covariance_types, dtype, n_features, n_components, seed=0, sizes=None, predict=True
):
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


# ------------------------------------------------------------------------ demo
def run_demo(args, out=None):
    """Fit the built-in synthetic mixture and print what was found against the truth.

    Parameters
    ----------
    args : argparse.Namespace
        ``n_samples``, ``n_components``, ``covariance_type``, ``random_state``
        and ``dtype``, as parsed by ``fastmix demo``.
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
    # Only what this fit runs: the statistics pass on blocks of many rows.
    _warm_kernels(
        [args.covariance_type], dtype, 2, args.n_components, sizes=(4096,), predict=False
    )
    say(f"kernels ready in {time.perf_counter() - t0:.2f} s (compiled, or loaded from cache)")

    gm = GaussianMixture(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
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
        0 on success, 2 for a usage error (reported as one line on stderr),
        1 when the machine ran out of memory, 130 when interrupted.
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
        print(f"{prog}: error: out of memory; try a smaller --n-samples", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. piped into `head`): not an error of ours.
        sys.stderr.close()
        return 0
