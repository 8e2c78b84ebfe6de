"""A whole ``fit`` with default parameters, fastmix vs scikit-learn (k-means init included).

Usage (from the repository root)::

    python benchmarks/default_fit.py                          # 1e6 x 16, K=16, full and diag
    python benchmarks/default_fit.py --covariance-types diag --repeats 3
    python benchmarks/default_fit.py --estimators gmm,bgmm -n 2e5 -d 64 -k 256 \
        --covariance-types diag
    python benchmarks/default_fit.py -n 2e5 -d 64 -k 256 --covariance-types diag --dtype float32

``GaussianMixture(n_components=K, covariance_type=COV, random_state=SEED)``:
every other parameter at its default (``init_params='kmeans'``, ``n_init=1``,
``tol=1e-3``, ``max_iter=100``). ``random_state`` is fixed so both libraries
start from the same k-means labels (fastmix runs scikit-learn's KMeans with the
same RandomState) and, from the same start, take the same iterations. The
time is the whole ``fit`` call; the k-means initialisation alone (``max_iter=0``
on the same estimator settings) is timed too. Both libraries on all cores.

``--estimators gmm,bgmm`` also times ``BayesianGaussianMixture`` with its
defaults (the same k-means start, then variational iterations) and prints
the two speed-ups side by side: from the same start both libraries take the
same iterations, so each ratio is per iteration, initialisation included.
Each repeat times every estimator and library in turn (the order reversed
every other repeat), and the ratio of the two speed-ups is also given per
repeat (median and range): at 1e6 x 16 a fit is 2 iterations after a k-means
start whose time alone moves by 15% between fits.
"""

import argparse
import warnings

import _perf_common as pc
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastmix import BayesianGaussianMixture, GaussianMixture

ESTIMATORS = {
    "gmm": (GaussianMixture, SkGaussianMixture),
    "bgmm": (BayesianGaussianMixture, SkBayesianGaussianMixture),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n-samples", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--covariance-types", default="diag,full")
    parser.add_argument("--estimators", default="gmm", help="gmm, bgmm or gmm,bgmm")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    X = pc.make_data(args.n_samples, args.n_features, args.n_components, args.dtype)
    covs = args.covariance_types.split(",")
    pc.warm_fastmix(covs, args.dtype, args.n_features, args.n_components)
    pc.say(
        f"GaussianMixture defaults (kmeans init, tol=1e-3, max_iter=100), random_state="
        f"{args.seed}: {args.n_samples:,} x {args.n_features} {args.dtype}, "
        f"K={args.n_components}, median of {args.repeats}"
    )
    estimators = args.estimators.split(",")
    with warnings.catch_warnings():
        # The k-means kernels and each estimator's whole default path, compiled
        # (or loaded) before anything is timed.
        warnings.simplefilter("ignore")
        small = pc.make_data(max(64, 8 * args.n_components), args.n_features, args.n_components,
                             args.dtype, seed=1)  # fmt: skip
        for name in estimators:
            for cov in covs:
                ESTIMATORS[name][0](n_components=args.n_components, covariance_type=cov,
                                    random_state=0, max_iter=2).fit(small)  # fmt: skip
    rows = []
    sides = [
        (name, lib, cls)
        for name in estimators
        for lib, cls in zip(("fastmix", "sklearn"), ESTIMATORS[name], strict=True)
    ]
    for cov in covs:
        settings = dict(
            n_components=args.n_components, covariance_type=cov, random_state=args.seed
        )
        fits = {(name, lib): [] for name, lib, _ in sides}
        inits = {(name, lib): [] for name, lib, _ in sides}
        fitted = {}
        # Every repeat times each side in turn (the order reversed every other
        # repeat), so a slow phase of a shared machine falls on all of them
        # and the ratio of speed-ups can be taken within each repeat.
        for rep in range(args.repeats):
            for name, lib, cls in sides if rep % 2 == 0 else sides[::-1]:
                est = cls(**settings)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fits[name, lib].append(pc.timed_fit(est, X))
                    inits[name, lib].append(pc.timed_fit(cls(**settings, max_iter=0), X))
                fitted[name, lib] = est
        speedups = {}
        for name, lib, _ in sides:
            est = fitted[name, lib]
            row = {
                "estimator": name,
                "library": lib,
                "covariance_type": cov,
                "fit_seconds": pc.median(fits[name, lib]),
                "init_seconds": pc.median(inits[name, lib]),
                "n_iter": int(est.n_iter_),
                "converged": bool(est.converged_),
                "lower_bound": pc.scalar(est.lower_bound_),
                "all_fit_seconds": fits[name, lib],
                "loadavg": pc.loadavg(),
            }
            rows.append(row)
            pc.say(
                f"{name:<4} {lib:<8} {cov:<5} fit {row['fit_seconds']:8.2f} s  (k-means init "
                f"alone {row['init_seconds']:6.2f} s)  n_iter={row['n_iter']:>3} "
                f"converged={row['converged']}  lower_bound={row['lower_bound']:.8f}"
            )
            if lib == "sklearn":
                fm, sk = rows[-2], rows[-1]
                speedups[name] = sk["fit_seconds"] / fm["fit_seconds"]
                pc.say(f"{name} {cov}: sklearn/fastmix = {speedups[name]:.2f}x")
        if len(speedups) == 2:
            per_repeat = [
                (bs / bf) / (gs / gf)
                for gf, gs, bf, bs in zip(
                    fits["gmm", "fastmix"], fits["gmm", "sklearn"],
                    fits["bgmm", "fastmix"], fits["bgmm", "sklearn"], strict=True,
                )
            ]  # fmt: skip
            pc.say(
                f"{cov}: BayesianGaussianMixture's speed-up / GaussianMixture's = "
                f"{speedups['bgmm'] / speedups['gmm']:.3f} (of the medians); per repeat "
                f"median {pc.median(per_repeat):.3f}, {min(per_repeat):.3f}-"
                f"{max(per_repeat):.3f} (target: within 10% of 1)"
            )
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
