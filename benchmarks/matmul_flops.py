"""The machine's dense matrix-product rate, and fastmix's achieved FLOP/s against it.

Usage (from the repository root)::

    python benchmarks/matmul_flops.py                          # numpy matmul, 1 and 2 BLAS threads
    python benchmarks/matmul_flops.py --bench-json gmm.json    # + fastmix's rates from a bench run
    python benchmarks/matmul_flops.py --interleave full --repeats 7   # side by side, one run

``C = A @ B`` on square matrices (2 n^3 FLOP), float64 and float32, the BLAS
limited to 1 and then 2 threads with threadpoolctl; the median of the repeats.

With ``--bench-json`` (the output of ``python -m fastmix bench --json`` or of
``benchmarks/bgmm_vs_sklearn.py --json``), the seconds per iteration are turned
into FLOP/s with the model of :func:`fastmix._synthetic.flops_per_iteration`
(the one ``fastmix bench`` prints) and set beside the float64 matmul rate on all
cores.

With ``--interleave COV[,COV]``, each repeat times the float64 matmul on all
cores and then a fixed-work fastmix fit (1e6 x 16, K = 16, explicit start,
``--iters`` iterations) of each covariance type, in turn, so that a slow phase
of a shared machine falls on both; the fraction is taken per repeat and its
median reported (alongside the ratio of the medians).
"""

import argparse
import json
import time

import _perf_common as pc
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fastmix._synthetic import flops_per_iteration


def matmul_rate(n, dtype, threads, repeats):
    """Median FLOP/s of ``a @ b`` (n x n) with the BLAS limited to ``threads``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    times = []
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, b, out=out)  # warm: page in, spin up threads
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / pc.median(times), times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=3072, help="matrix order (default 3072)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bench-json", action="append", default=[], metavar="PATH")
    parser.add_argument("--interleave", default=None, metavar="COV[,COV]")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--json", default=None, metavar="PATH")
    args = parser.parse_args(argv)

    info = pc.machine()
    blas = [
        {k: v for k, v in lib.items() if k in ("internal_api", "version", "architecture")}
        for lib in threadpool_info()
        if lib["user_api"] == "blas"
    ]
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    pc.say(f"OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']}; BLAS libraries: {blas}")
    if args.interleave:
        return interleaved(args, info, blas)
    rates = {}
    for dtype in ("float64", "float32"):
        for threads in (1, 2):
            rate, times = matmul_rate(args.size, dtype, threads, args.repeats)
            rates[f"{dtype}/{threads}"] = {"flops": rate, "seconds": times}
            pc.say(
                f"matmul {args.size}x{args.size} {dtype}, {threads} BLAS thread(s): "
                f"{rate / 1e9:7.1f} GFLOP/s (median of {args.repeats}, load {pc.loadavg()})"
            )
    peak = rates["float64/2"]["flops"]
    achieved = []
    for path in args.bench_json:
        with open(path) as f:
            doc = json.load(f)
        a = doc.get("args", doc)
        n, d, k = a["n_samples"], a["n_features"], a["n_components"]
        label = "BayesianGaussianMixture" if "machine" in doc else "GaussianMixture"
        for row in doc["results"]:
            cov = row["covariance_type"]
            dense, done = flops_per_iteration(cov, n, d, k)
            s = row["fastmix_seconds_per_iter"]
            entry = {
                "estimator": label,
                "covariance_type": cov,
                "seconds_per_iter": s,
                "gflop_dense_model": dense / 1e9,
                "gflop_done": done / 1e9,
                "gflops_dense_model": dense / s / 1e9,
                "gflops_done": done / s / 1e9,
                "fraction_of_matmul_dense_model": dense / s / peak,
                "fraction_of_matmul_done": done / s / peak,
            }
            achieved.append(entry)
            pc.say(
                f"{label} {cov:<9} {s:.4f} s/iter: {entry['gflops_dense_model']:6.1f} GFLOP/s "
                f"(dense model, {entry['fraction_of_matmul_dense_model']:.0%} of matmul), "
                f"{entry['gflops_done']:6.1f} GFLOP/s (work done, "
                f"{entry['fraction_of_matmul_done']:.0%})"
            )
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json(
        {"machine": info, "blas": blas, "size": args.size, "rates": rates, "achieved": achieved},
        args.json,
    )
    return 0


def interleaved(args, info, blas, n=1_000_000, d=16, k=16):
    """Matmul and fastmix fits in turn, per repeat; fraction of matmul per repeat."""
    from fastmix import GaussianMixture

    covs = args.interleave.split(",")
    X = pc.make_data(n, d, k, "float64")
    pc.warm_fastmix(covs, "float64", d, k)
    params = {cov: pc.gmm_params(k, cov, X, args.iters) for cov in covs}
    rows = {cov: [] for cov in covs}
    peaks = []
    for rep in range(args.repeats):
        peak, _ = matmul_rate(args.size, "float64", 2, 3)
        peaks.append(peak)
        line = f"repeat {rep}: matmul {peak / 1e9:6.1f} GFLOP/s"
        for cov in covs:
            s = pc.timed_fit(GaussianMixture(**params[cov]), X) / args.iters
            dense, done = flops_per_iteration(cov, n, d, k)
            rows[cov].append({"seconds_per_iter": s, "matmul_flops": peak,
                              "fraction_dense_model": dense / s / peak,
                              "fraction_done": done / s / peak})  # fmt: skip
            line += f"; {cov} {s:.4f} s/iter = {dense / s / peak:.1%} of it (dense model)"
        pc.say(line + f"  load {pc.loadavg()}")
    summary = {}
    for cov in covs:
        dense, done = flops_per_iteration(cov, n, d, k)
        s = pc.median([r["seconds_per_iter"] for r in rows[cov]])
        frac = pc.median([r["fraction_dense_model"] for r in rows[cov]])
        summary[cov] = {
            "median_seconds_per_iter": s,
            "median_matmul_flops": pc.median(peaks),
            "median_fraction_dense_model": frac,
            "median_fraction_done": pc.median([r["fraction_done"] for r in rows[cov]]),
            "gflop_dense_model": dense / 1e9,
            "gflop_done": done / 1e9,
        }
        pc.say(
            f"{cov}: median {s:.4f} s/iter, {dense / s / 1e9:.1f} GFLOP/s (dense model "
            f"{dense / 1e9:.1f} GFLOP); matmul median {pc.median(peaks) / 1e9:.1f} GFLOP/s; "
            f"median per-repeat fraction {frac:.1%} (dense model), "
            f"{summary[cov]['median_fraction_done']:.1%} (work done)"
        )
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json(
        {"machine": info, "blas": blas, "size": args.size, "args": vars(args),
         "repeats": rows, "summary": summary},
        args.json,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
