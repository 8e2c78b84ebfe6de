"""Where a chunk's time goes: densities, normalisation (exp) and statistics, float64 vs float32.

Usage (from the repository root)::

    python benchmarks/kernel_breakdown.py
    python benchmarks/kernel_breakdown.py --chunks 4000 --covariance-types full

Calls the three stages of one E-step chunk (``_logdens_chunk``,
``_normalise_chunk``, ``_chunk_stats`` in ``fastmix/_kernels/estep.py``)
directly on one 512-row chunk, many times in a row on the calling thread, in
float64 and in float32 (the same points cast), and reports microseconds per
chunk per stage. One thread, so the figures are per core. Each stage is
compiled for both dtypes before anything is timed.
"""

import argparse
import time
import warnings

import _perf_common as pc
import numpy as np

from fastmix import GaussianMixture
from fastmix._kernels import estep
from fastmix._sources import CHUNK_ROWS


def stage_times(X, gm, chunks, chunk_rows, min_resp=0.0):
    """Median microseconds per chunk of each stage, over ``chunks`` calls each.

    ``min_resp > 0`` drops the responsibilities below it in the normalise
    stage and runs the statistics' sparse path, as a fit with
    ``min_responsibility`` does.
    """
    dtype = X.dtype
    p = gm._kernel_params(dtype)
    n_features = X.shape[1]
    n_components = p.bias.shape[0]
    m = chunk_rows
    width = m + 64 // dtype.itemsize  # one spare cache line per row, as the kernels
    xt = pc.aligned((n_features, width), dtype)
    n4 = (n_features + 3) // 4 * 4
    dt = pc.aligned((n4, width), dtype)
    y = pc.aligned((n_features, width), dtype)
    acc = pc.aligned(width, dtype)
    wd = pc.aligned((n4, width))
    w = pc.aligned(width)
    lse, rlogr, total, t = (pc.aligned(width) for _ in range(4))
    scale_bits = pc.aligned(width, np.int64)
    # Log-densities and responsibilities in the data's dtype, as the kernels'.
    logp = pc.aligned((n_components, width), dtype)
    resp = pc.aligned((n_components, width), dtype)
    wr = pc.aligned(width)
    nk = np.zeros(n_components)
    s1 = np.zeros((n_components, n_features))
    s2_mat = np.zeros((p.prec_mat.shape[0], n_features, n_features))
    s2_diag = np.zeros((p.prec_diag.shape[0], n_features))
    estep._load_chunk(X, np.empty(0), 0, m, xt, w)

    def dens():
        estep._logdens_chunk(
            xt, m, p.code, p.shift, p.prec_mat, p.prec_diag, p.offset, p.bias, logp, dt, y, acc
        )

    def norm():
        resp[:] = logp
        estep._normalise_chunk(resp, m, lse, rlogr, total, t, scale_bits)
        np.multiply(w, total, out=wr)  # each row's weight over its total, as _stats_chunk
        if min_resp > 0.0:
            estep._drop_below(resp, m, total, min_resp)

    xr = np.ascontiguousarray(X[:m])

    def stats():
        estep._chunk_stats(
            xt, xr, w, m, p.code, p.shift, resp, nk, s1, s2_mat, s2_diag, dt, wd, wr,
            min_resp if min_resp > 0.0 else None,
        )  # fmt: skip

    def copy_only():
        resp[:] = logp

    out = {}
    stages = (("densities", dens), ("normalise", norm), ("stats", stats), ("copy", copy_only))
    for name, fn in stages:
        fn()
        t0 = time.perf_counter()
        for _ in range(chunks):
            fn()
        out[name] = (time.perf_counter() - t0) / chunks * 1e6
    # norm() includes the copy of logp into resp (so that it works on fresh values).
    out["normalise"] -= out.pop("copy")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--covariance-types", default="full,tied,diag")
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--min-resp", type=float, default=0.0,
        help="the estimators' min_responsibility (0: every responsibility kept)",
    )  # fmt: skip
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)

    import numba

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    numba.set_num_threads(1)
    d, k = args.n_features, args.n_components
    X64 = pc.make_data(65536, d, k, "float64")
    rows = []
    pc.say(
        f"one {CHUNK_ROWS}-row chunk, D={d}, K={k}, one thread; microseconds per chunk "
        f"(median of {args.repeats} x {args.chunks} calls)"
    )
    pc.say(f"{'cov':<6} {'stage':<10} {'float64':>9} {'float32':>9} {'f64/f32':>8}")
    for cov in args.covariance_types.split(","):
        per_dtype = {}
        for dtype in ("float64", "float32"):
            X = np.ascontiguousarray(X64.astype(dtype))
            gm = GaussianMixture(**pc.gmm_params(k, cov, X, 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(X)  # parameters in X's dtype, kernels compiled for it
            runs = [
                stage_times(X, gm, args.chunks, CHUNK_ROWS, args.min_resp)
                for _ in range(args.repeats)
            ]
            per_dtype[dtype] = {k: pc.median([r[k] for r in runs]) for k in runs[0]}
        for stage in ("densities", "normalise", "stats"):
            a, b = per_dtype["float64"][stage], per_dtype["float32"][stage]
            rows.append({"covariance_type": cov, "stage": stage, "float64_us": a, "float32_us": b})
            pc.say(f"{cov:<6} {stage:<10} {a:9.1f} {b:9.1f} {a / b:8.2f}")
        a = sum(per_dtype["float64"].values())
        b = sum(per_dtype["float32"].values())
        pc.say(f"{cov:<6} {'total':<10} {a:9.1f} {b:9.1f} {a / b:8.2f}")
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
