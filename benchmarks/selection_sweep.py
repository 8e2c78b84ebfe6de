"""Model selection: fastmix.MixtureSelector against scikit-learn's double loop (issue 13).

Usage (from the repository root)::

    python benchmarks/selection_sweep.py --n-samples 1000000 --max-iter 5
    python benchmarks/selection_sweep.py --n-samples 200000 --memmap /tmp/sweep.npy
    python benchmarks/selection_sweep.py --n-samples 1000000 --max-iter 100 --tol 1e-3

One process, the same data (``fastmix._synthetic.bench_problem``: N x 16, a
16-component full-covariance mixture, float64) and the same candidates: K in
``--ks`` x the four covariance types, ``n_init=1``, ``max_iter=--max-iter``,
``tol=--tol`` (default 0: every candidate runs exactly ``max_iter``
iterations; scikit-learn's default 1e-3 lets each stop where it converges, at
the same iteration in both libraries, since both compute the same numbers), the default
k-means initialisation with ``random_state=0``. scikit-learn runs the usual
loop: fit each candidate, then ``bic(X)``. fastmix runs one
``MixtureSelector`` whose candidates share every read of X. Both use every
core: scikit-learn's BLAS, fastmix's numba threads (BLAS held to one thread,
as in every fastmix fit). Prints both wall times, the ratio, whether the two
sweeps chose the same candidate, and the largest relative BIC difference.
With ``--memmap PATH`` it also fits the sweep on a memmap of the same rows
and counts the full reads of the file.
"""

import argparse
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, ".")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--ks", default="1-16", help="K range lo-hi (default: 1-16)")
    parser.add_argument("--max-iter", type=int, default=5)
    parser.add_argument("--tol", type=float, default=0.0)
    parser.add_argument("--memmap", default=None, help="also fit a memmap written here")
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args(argv)
    lo, hi = (int(v) for v in args.ks.split("-"))
    ks = list(range(lo, hi + 1))
    types = ["full", "tied", "diag", "spherical"]

    import platform

    from sklearn.mixture import GaussianMixture as SkGM
    from threadpoolctl import threadpool_info

    import fastmix
    from fastmix import GaussianMixture, MixtureSelector
    from fastmix._synthetic import bench_problem

    X = bench_problem(args.n_samples, args.n_features, 16)
    print(f"python {platform.python_version()}, fastmix {fastmix.__version__}, CPU:", end=" ")
    with open("/proc/cpuinfo") as f:
        print(next(line.split(":", 1)[1].strip() for line in f if "model name" in line))
    blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    print(
        f"data {X.shape} {X.dtype}; {len(ks) * 4} candidates; max_iter={args.max_iter}; "
        f"tol={args.tol}; "
        f"BLAS {blas}"
    )
    kw = dict(n_init=1, max_iter=args.max_iter, tol=args.tol, random_state=0)
    warnings.simplefilter("ignore")

    # Warm the kernels (serial and parallel twins) on slices, with the sweep's own
    # candidates: compilation (or loading numba's cache) is not timed.
    warm = GaussianMixture(**{**kw, "max_iter": 1})
    for rows in (2000, 200_000):
        MixtureSelector(n_components=ks, covariance_types=types, estimator=warm).fit(X[:rows])
    t = time.perf_counter()
    sel = MixtureSelector(n_components=ks, covariance_types=types, estimator=GaussianMixture(**kw))
    sel.fit(X)
    fm = time.perf_counter() - t
    print(f"fastmix MixtureSelector: {fm:8.2f} s  best {sel.best_params_}")

    if args.memmap:
        from fastmix._sources import BlockSource

        np.save(args.memmap, X)
        M = np.load(args.memmap, mmap_mode="r")
        rows = []
        read = BlockSource._read
        BlockSource._read = lambda self, a, b: rows.append(b - a) or read(self, a, b)
        t = time.perf_counter()
        on_file = MixtureSelector(
            n_components=ks, covariance_types=types, estimator=GaussianMixture(**kw)
        ).fit(M)
        mm = time.perf_counter() - t
        BlockSource._read = read
        reads = sum(rows) / len(X)
        print(
            f"fastmix on a memmap:     {mm:8.2f} s  full reads of the file: {reads:.2f} "
            f"(max n_iter {on_file.results_['n_iter'].max()}, candidates {len(ks) * 4}); "
            f"same choice: {on_file.best_params_ == sel.best_params_}"
        )

    if args.skip_sklearn:
        return
    t = time.perf_counter()
    bics = []
    for cov in types:
        for k in ks:
            bics.append(SkGM(k, covariance_type=cov, **kw).fit(X).bic(X))
    sk = time.perf_counter() - t
    best = int(np.argmin(bics))
    sk_best = {"n_components": ks[best % len(ks)], "covariance_type": types[best // len(ks)]}
    rel = np.max(np.abs(np.array(bics) - sel.results_["bic"]) / np.abs(bics))
    print(f"scikit-learn double loop: {sk:8.2f} s  best {sk_best}")
    print(
        f"ratio scikit-learn / fastmix: {sk / fm:.1f}x; same choice: "
        f"{sk_best == sel.best_params_}; max relative BIC difference {rel:.2e}"
    )


if __name__ == "__main__":
    main()
