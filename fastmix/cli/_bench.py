"""``fastmix bench``: time fastmix against scikit-learn on the same data and the same start.

Both libraries fit the synthetic mixture of :func:`fastmix._synthetic.bench_problem`
from the explicit initialisation of :func:`fastmix._synthetic.explicit_init`,
with ``n_init=1``, ``max_iter=ITERS`` and ``tol=0``, so both run exactly ITERS
EM iterations of the same work; the achieved FLOP rate follows the dense model
of :func:`fastmix._synthetic.flops_per_iteration`. scikit-learn's ``fit`` also
runs one final E-step for its labels, which its seconds per iteration include
(the footer says so): with few ITERS that favours fastmix by up to
``(ITERS + 1) / ITERS`` (2 iterations: 1.5x at most; measured 1.24x at
2e5 x 8, K = 4, diag).
"""

import json
import platform
import statistics
import sys
import time
import warnings

import numpy as np

from .._synthetic import bench_problem, explicit_init, flops_per_iteration
from ._usage import UsageError
from ._warmup import warm_kernels

# Today's workload unless --shape or -n/-d/-k say otherwise: 1e6 x 16, K = 16.
DEFAULT_SHAPE = (1_000_000, 16, 16)


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


def workload_shape(args):
    """The rows, features and components to bench, from ``--shape`` or ``-n/-d/-k``.

    Parameters
    ----------
    args : argparse.Namespace
        ``shape`` (``(N, D, K)`` or None) and ``n_samples``, ``n_features``,
        ``n_components`` (each an int or None), as parsed by ``fastmix bench``.

    Returns
    -------
    shape : tuple of three int
        ``(n_samples, n_features, n_components)``; :data:`DEFAULT_SHAPE` fills
        what neither option gives.

    Raises
    ------
    UsageError
        When ``--shape`` and one of ``-n/-d/-k`` are both given, or there are
        fewer than 2 rows or fewer rows than components.
    """
    options = ("-n/--n-samples", "-d/--n-features", "-k/--n-components")
    given = [args.n_samples, args.n_features, args.n_components]
    if args.shape is not None:
        both = [option for option, value in zip(options, given, strict=True) if value is not None]
        if both:
            raise UsageError(
                f"--shape sets N,D,K and {both[0]} sets one of them again; give either "
                "--shape or -n/-d/-k"
            )
        n_samples, n_features, n_components = args.shape
        if n_samples < max(2, n_components):
            raise UsageError(
                f"--shape {n_samples},{n_features},{n_components}: N ({n_samples}) must be at "
                f"least 2 and at least K ({n_components}), e.g. --shape "
                f"{max(2, n_components)},{n_features},{n_components}"
            )
        return tuple(args.shape)
    n_samples, n_features, n_components = (
        default if value is None else value
        for value, default in zip(given, DEFAULT_SHAPE, strict=True)
    )
    if n_samples < max(2, n_components):
        raise UsageError(
            f"-n/--n-samples ({n_samples}) must be at least 2 and at least "
            f"-k/--n-components ({n_components})"
        )
    return n_samples, n_features, n_components


def _bench_one(cov_type, X, init, common, repeats, shape):
    """Interleaved fits of one covariance type on X; the row of the table and JSON."""
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    from .. import GaussianMixture

    kwargs = dict(common, covariance_type=cov_type, **init[cov_type])
    fm_times, sk_times, diffs = [], [], []
    for _ in range(repeats):
        fm_seconds, fm = _timed_fit(GaussianMixture(**kwargs), X)
        sk_seconds, sk = _timed_fit(SkGaussianMixture(**kwargs), X)
        fm_times.append(fm_seconds / max(fm.n_iter_, 1))
        sk_times.append(sk_seconds / max(sk.n_iter_, 1))
        diffs.append(abs(float(fm.lower_bound_) - float(sk.lower_bound_)))
    fm_median, sk_median = statistics.median(fm_times), statistics.median(sk_times)
    flop, _ = flops_per_iteration(cov_type, *shape)
    return {
        "covariance_type": cov_type,
        "dtype": X.dtype.name,
        "fastmix_seconds_per_iter": fm_median,
        "sklearn_seconds_per_iter": sk_median,
        "ratio": sk_median / fm_median,
        "max_abs_lower_bound_diff": max(diffs),
        "fastmix_lower_bound": float(fm.lower_bound_),
        "sklearn_lower_bound": float(sk.lower_bound_),
        "n_iter": {"fastmix": int(fm.n_iter_), "sklearn": int(sk.n_iter_)},
        "fastmix_seconds_per_iter_all": fm_times,
        "sklearn_seconds_per_iter_all": sk_times,
        # Of the dense FLOP model: what the same work would be as dense products.
        "gflop_per_iter": flop / 1e9,
        "fastmix_gflops": flop / fm_median / 1e9,
        "sklearn_gflops": flop / sk_median / 1e9,
    }


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
    from threadpoolctl import threadpool_limits

    from .. import __version__

    out = sys.stdout if out is None else out
    n_samples, n_features, n_components = shape = workload_shape(args)
    dtypes = list(args.dtype)
    if args.threads is not None and args.threads > numba.config.NUMBA_NUM_THREADS:
        raise UsageError(
            f"--threads {args.threads} is more than numba's {numba.config.NUMBA_NUM_THREADS} "
            "threads on this machine"
        )

    def say(line=""):
        if not args.json:
            print(line, file=out, flush=True)

    # Drawn once in float64; each dtype is a cast of the same points.
    X64 = bench_problem(n_samples, n_features, n_components, "float64", args.seed)
    common = dict(n_components=n_components, n_init=1, max_iter=args.iters, tol=0.0)

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
                f"{n_samples:,} x {n_features}, K={n_components}, {' and '.join(dtypes)}, "
                f"{args.iters} iterations per fit (tol=0, explicit init, seed {args.seed}), "
                f"median of {args.repeats}"
            )
            say(
                f"threads: fastmix (numba) {threads['fastmix_numba']}, "
                f"scikit-learn (BLAS) {threads['sklearn_blas']}"
            )
            t0 = time.perf_counter()
            for dtype in dtypes:
                warm_kernels(args.covariance_types, np.dtype(dtype), n_features, n_components)
            say(f"fastmix kernels ready in {time.perf_counter() - t0:.2f} s")
            header = (
                f"{'covariance':<11} {'fastmix s/iter':>15} {'sklearn s/iter':>15} "
                f"{'sklearn/fastmix':>16} {'max |d lower_bound_|':>21} {'fastmix GFLOP/s':>16}"
            )
            for dtype in dtypes:
                X = np.ascontiguousarray(X64, dtype=dtype)
                init = explicit_init(X, n_components, args.covariance_types, args.seed)
                say()
                if len(dtypes) > 1:
                    say(f"{dtype}:")
                say(header)
                say("-" * len(header))
                for cov_type in args.covariance_types:
                    row = _bench_one(cov_type, X, init, common, args.repeats, shape)
                    results.append(row)
                    say(
                        f"{cov_type:<11} {row['fastmix_seconds_per_iter']:15.4f} "
                        f"{row['sklearn_seconds_per_iter']:15.4f} {row['ratio']:15.3g}x "
                        f"{row['max_abs_lower_bound_diff']:21.2e} {row['fastmix_gflops']:16.3g}"
                    )
    finally:
        numba.set_num_threads(saved_threads)

    say()
    say("s/iter = fit seconds / iterations (scikit-learn's fit also runs one final E-step)")
    say("GFLOP/s = dense-model FLOP per iteration / fastmix s/iter; the model counts 4NKD^2")
    say("  (full), 2ND(D+1) + 6NKD (tied) and 8NKD (diag, spherical) FLOP per iteration")
    if args.json:
        document = {
            "fastmix_version": __version__,
            "sklearn_version": sklearn.__version__,
            "numpy_version": np.__version__,
            "numba_version": numba.__version__,
            "python_version": platform.python_version(),
            "n_samples": n_samples,
            "n_features": n_features,
            "n_components": n_components,
            # One dtype stays a string, as before --dtype took a list.
            "dtype": ",".join(dtypes),
            "dtypes": dtypes,
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
