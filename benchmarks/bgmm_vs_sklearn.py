"""Seconds per variational iteration: fastmix's BayesianGaussianMixture vs scikit-learn's.

Usage (from the repository root)::

    python benchmarks/bgmm_vs_sklearn.py                      # 1e6 x 16, K=16, float64, 20 its
    python benchmarks/bgmm_vs_sklearn.py --repeats 3 --covariance-types full,diag
    python benchmarks/bgmm_vs_sklearn.py -n 2e5 --dtype float32 --json out.json

The same data as ``fastmix bench``. Both estimators start from the same place:
``init_params='random_from_data'`` with ``random_state=SEED`` (fastmix draws the
rows from the RandomState exactly as scikit-learn does). Each timing is a
warm-started continuation: the estimator is initialised with ``max_iter=0``
(untimed), then ``warm_start=True, max_iter=ITERS, tol=0`` runs exactly ITERS
iterations, timed. So the initialisation (a k-row responsibility matrix and
one M-step) is not in the per-iteration figure; scikit-learn's timed fit also
runs its final E-step, as in ``fastmix bench``. fastmix and scikit-learn
alternate within each repeat, and the median over repeats is reported.
Threads are left as they are (numba's default, and scikit-learn's BLAS
default): both libraries on all cores.
"""

import argparse

import _perf_common as pc
from sklearn.mixture import BayesianGaussianMixture as SkBGMM

from fastmix import BayesianGaussianMixture


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n-samples", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--covariance-types", default="full,tied,diag,spherical")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, metavar="PATH", help="also write JSON here")
    args = parser.parse_args(argv)
    cov_types = [c.strip() for c in args.covariance_types.split(",") if c.strip()]

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    pc.say(f"versions: {info['versions']}")
    X = pc.make_data(
        args.n_samples, args.n_features, args.n_components, args.dtype, seed=args.seed
    )
    pc.warm_fastmix(cov_types, X.dtype, args.n_features, args.n_components, bayesian=True)
    pc.say(
        f"BayesianGaussianMixture: {args.n_samples:,} x {args.n_features}, "
        f"K={args.n_components}, {args.dtype}, {args.iters} iterations "
        f"(warm-started from random_from_data, seed {args.seed}), median of {args.repeats}"
    )
    header = (
        f"{'covariance':<11} {'fastmix s/iter':>15} {'sklearn s/iter':>15} "
        f"{'sklearn/fastmix':>16} {'|d lower_bound_|':>17}"
    )
    pc.say(header)
    pc.say("-" * len(header))
    results = []
    for cov in cov_types:
        params = pc.bgmm_params(args.n_components, cov, args.iters, seed=args.seed)
        fm_times, sk_times, diffs = [], [], []
        for _ in range(args.repeats):
            fm_s, fm = pc.warm_continuation(BayesianGaussianMixture(**params), X, args.iters)
            sk_s, sk = pc.warm_continuation(SkBGMM(**params), X, args.iters)
            fm_times.append(fm_s)
            sk_times.append(sk_s)
            # scikit-learn's tied lower bound is a 1-element array.
            diffs.append(abs(pc.scalar(fm.lower_bound_) - pc.scalar(sk.lower_bound_)))
        row = {
            "covariance_type": cov,
            "fastmix_seconds_per_iter": pc.median(fm_times),
            "sklearn_seconds_per_iter": pc.median(sk_times),
            "ratio": pc.median(sk_times) / pc.median(fm_times),
            "max_abs_lower_bound_diff": max(diffs),
            "fastmix_seconds_per_iter_all": fm_times,
            "sklearn_seconds_per_iter_all": sk_times,
            "loadavg_after": pc.loadavg(),
        }
        results.append(row)
        pc.say(
            f"{cov:<11} {row['fastmix_seconds_per_iter']:15.4f} "
            f"{row['sklearn_seconds_per_iter']:15.4f} {row['ratio']:15.3g}x "
            f"{row['max_abs_lower_bound_diff']:17.2e}"
        )
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": results}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
