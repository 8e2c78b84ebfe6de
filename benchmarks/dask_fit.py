"""Dask fit time against the in-memory fit on the same data.

Usage::

    python benchmarks/dask_fit.py --rows 2000000 --workers 2
    python benchmarks/dask_fit.py --scheduler tcp://host:8786   # an existing cluster

Fits ``GaussianMixture(K)`` from a fixed explicit start for a fixed number of
iterations (``tol=0``) on a NumPy array, then on the same data as a dask array
(a ``LocalCluster`` of worker processes, one thread each, unless
``--scheduler`` names a cluster), and prints seconds per fit and per iteration
for both, and the largest relative difference of the fitted means.
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=2e6)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--scheduler", default=None, help="address of an existing cluster")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    # da.from_array ships the NumPy data inside the graph once (it is then persisted).
    warnings.filterwarnings("ignore", message="Sending large graph")

    import dask.array as da
    from distributed import Client, LocalCluster

    from fastmix import GaussianMixture

    n_rows, d, k = int(args.rows), args.features, args.components
    rng = np.random.RandomState(0)
    centres = 6.0 * rng.randn(k, d)
    X = centres[rng.randint(k, size=n_rows)] + rng.randn(n_rows, d)
    eye = np.eye(d)
    kw = dict(
        covariance_type=args.covariance_type,
        weights_init=np.full(k, 1.0 / k),
        means_init=X[:k].copy(),
        precisions_init={
            "full": np.tile(eye, (k, 1, 1)),
            "tied": eye,
            "diag": np.ones((k, d)),
            "spherical": np.ones(k),
        }[args.covariance_type],
        max_iter=args.iters,
        tol=0.0,
    )
    GaussianMixture(k, **dict(kw, max_iter=1)).fit(X[:20000])  # kernels loaded

    start = time.perf_counter()
    in_memory = GaussianMixture(k, **kw).fit(X)
    t_memory = time.perf_counter() - start

    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        dX = da.from_array(X, chunks=(args.chunk_rows, d))
        GaussianMixture(k, **dict(kw, max_iter=1)).fit(dX[:20000])  # kernels loaded on workers
        start = time.perf_counter()
        on_dask = GaussianMixture(k, **kw).fit(dX)
        t_dask = time.perf_counter() - start
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    diff = np.max(np.abs(on_dask.means_ - in_memory.means_) / np.abs(in_memory.means_))
    print(f"{n_rows:,} x {d} float64, K={k} {args.covariance_type}, {args.iters} iterations")
    print(f"in memory: {t_memory:.2f} s ({t_memory / args.iters:.2f} s/iter)")
    print(
        f"dask ({dX.numblocks[0]} blocks): {t_dask:.2f} s "
        f"({t_dask / args.iters:.2f} s/iter, persist and validation included)"
    )
    print(f"largest relative difference of the means: {diff:.1e}")


if __name__ == "__main__":
    main()
