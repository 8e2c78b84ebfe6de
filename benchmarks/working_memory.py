"""Working memory of a fit: peak RSS during ``fit`` minus RSS with the data loaded.

Usage (from the repository root)::

    python benchmarks/working_memory.py                     # 1e5, 1e6, 1e7; full and diag
    python benchmarks/working_memory.py --libraries sklearn --sizes 1e7 --iters 1
    python benchmarks/working_memory.py --estimator bgmm --sizes 1e5,1e6

The data (as ``fastmix bench``'s) are drawn once and saved to ``.npy`` files in
a temporary folder. Each measurement runs in a fresh subprocess, which:

1. imports the library and runs a tiny fit of the same estimator, covariance
   type and dtype (compiled code, lazily imported modules and BLAS buffers are
   not working memory);
2. loads the data with ``np.load`` (one allocation of exactly the data's
   size), builds the explicit initialisation, runs ``gc.collect()`` and
   glibc's ``malloc_trim(0)`` (so that no freed heap is reused unseen), and
   resets the peak RSS (``/proc/self/clear_refs``; Linux);
3. reads ``VmRSS`` (the baseline), fits, reads ``VmHWM`` (the peak).

Working memory = peak - baseline. GaussianMixture starts from the explicit
initialisation of ``fastmix bench`` (``--init explicit``) or from the default
k-means (``--init kmeans``); BayesianGaussianMixture from
``random_from_data``. Threads are left as they are.
"""

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import _perf_common as pc
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _estimator(library, estimator, covariance_type, X, init, iters, n_components):
    if library == "fastmix":
        from fastmix import BayesianGaussianMixture, GaussianMixture
    else:
        from sklearn.mixture import BayesianGaussianMixture, GaussianMixture
    if estimator == "bgmm":
        return BayesianGaussianMixture(**pc.bgmm_params(n_components, covariance_type, iters))
    if init == "kmeans":
        return GaussianMixture(
            n_components, covariance_type=covariance_type, max_iter=iters, tol=0.0, random_state=0
        )
    return GaussianMixture(**pc.gmm_params(n_components, covariance_type, X, iters))


def child(args):
    """One measurement; prints one JSON line."""
    n_components = args.n_components
    small = pc.make_data(4096, args.n_features, n_components, args.dtype, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _estimator(args.library, args.estimator, args.cov, small, args.init, 1, n_components).fit(
            small
        )
    X = np.load(args.data)
    est = _estimator(
        args.library, args.estimator, args.cov, X, args.init, args.iters, n_components
    )
    del small
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    reset = pc.reset_peak_rss()
    rss0, hwm0 = pc.memory_kib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - t0
    rss1, hwm1 = pc.memory_kib()
    print(
        json.dumps(
            {
                "library": args.library,
                "estimator": args.estimator,
                "init": args.init,
                "covariance_type": args.cov,
                "n_samples": X.shape[0],
                "dtype": args.dtype,
                "iters": args.iters,
                "data_mib": X.nbytes / 2**20,
                "baseline_rss_mib": rss0 / 1024,
                "peak_rss_mib": hwm1 / 1024,
                "working_mib": (hwm1 - rss0) / 1024,
                "peak_reset": reset,
                "fit_seconds": seconds,
                "loadavg": pc.loadavg(),
            }
        ),
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libraries", default="fastmix,sklearn")
    parser.add_argument("--sizes", default="1e5,1e6,1e7")
    parser.add_argument("--covariance-types", default="full,diag")
    parser.add_argument("--estimator", choices=("gmm", "bgmm"), default="gmm")
    parser.add_argument("--init", choices=("explicit", "kmeans"), default="explicit")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--iters", type=int, default=2)
    parser.add_argument("--json", default=None, metavar="PATH")
    # Internal: one measurement in this process.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--library", help=argparse.SUPPRESS)
    parser.add_argument("--cov", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    pc.say(
        f"{args.estimator} ({args.init if args.estimator == 'gmm' else 'random_from_data'} "
        f"init), {args.iters} iterations, D={args.n_features}, K={args.n_components}, "
        f"{args.dtype}; working memory = peak RSS during fit - RSS with the data loaded"
    )
    header = (
        f"{'library':<8} {'cov':<9} {'n_samples':>10} {'data MiB':>9} {'baseline':>9} "
        f"{'peak':>9} {'working MiB':>12} {'fit s':>7}  load"
    )
    pc.say(header)
    pc.say("-" * len(header))
    rows = []
    with tempfile.TemporaryDirectory(prefix="fastmix-mem-") as tmp:
        for n in pc.parse_counts(args.sizes):
            path = os.path.join(tmp, f"X_{n}.npy")
            np.save(path, pc.make_data(n, args.n_features, args.n_components, args.dtype))
            for cov in [c.strip() for c in args.covariance_types.split(",") if c.strip()]:
                for library in [x.strip() for x in args.libraries.split(",") if x.strip()]:
                    cmd = [
                        sys.executable,
                        os.path.join(HERE, "working_memory.py"),
                        "--child",
                        "--library", library,
                        "--cov", cov,
                        "--data", path,
                        "--estimator", args.estimator,
                        "--init", args.init,
                        "--dtype", args.dtype,
                        "-d", str(args.n_features),
                        "-k", str(args.n_components),
                        "--iters", str(args.iters),
                    ]  # fmt: skip
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    pc.say(
                        f"{library:<8} {cov:<9} {n:>10,} {row['data_mib']:9.1f} "
                        f"{row['baseline_rss_mib']:9.1f} {row['peak_rss_mib']:9.1f} "
                        f"{row['working_mib']:12.1f} {row['fit_seconds']:7.1f}  {row['loadavg']}"
                    )
            os.remove(path)
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
