"""fastmix alone, several configurations side by side: dtype, size and thread count.

Usage (from the repository root)::

    # float32 vs float64 on the same points (2c)
    python benchmarks/fastmix_timing.py --sizes 1e6 --dtypes float64,float32 --repeats 3
    # per-row cost at 1e7 vs 1e6 (2e)
    python benchmarks/fastmix_timing.py --sizes 1e6,1e7 --repeats 3
    # 1 vs 2 numba threads, each in a subprocess with NUMBA_NUM_THREADS set (2e)
    python benchmarks/fastmix_timing.py --sizes 1e6 --numba-threads 1,2 --repeats 3

Every fit is fixed work from ``fastmix bench``'s explicit initialisation
(``n_init=1``, ``max_iter=ITERS``, ``tol=0``); s/iter = fit seconds /
iterations. Within a repeat every configuration runs once, in turn, so slow
phases of a shared machine fall on all of them; the median over repeats is
reported. float32 data are the float64 points cast once.

With ``--numba-threads``, each repeat runs one subprocess per thread count with
``NUMBA_NUM_THREADS`` set in that subprocess's environment only (numba reads it
at import); the subprocess draws the same data and reports its timings.
"""

import argparse
import json
import os
import subprocess
import sys

import _perf_common as pc

from fastmix import BayesianGaussianMixture, GaussianMixture

HERE = os.path.dirname(os.path.abspath(__file__))


def _configs(args):
    return [
        (n, dtype, cov)
        for n in pc.parse_counts(args.sizes)
        for dtype in args.dtypes.split(",")
        for cov in args.covariance_types.split(",")
    ]


def run_here(args):
    """All configurations in this process; returns {config: [s/iter per repeat]}."""
    import numba

    data = {}
    for n in pc.parse_counts(args.sizes):
        X = pc.make_data(n, args.n_features, args.n_components, "float64")
        for dtype in args.dtypes.split(","):
            data[n, dtype] = X.astype(dtype)
        del X
    for dtype in args.dtypes.split(","):
        pc.warm_fastmix(
            args.covariance_types.split(","),
            dtype,
            args.n_features,
            args.n_components,
            bayesian=args.estimator == "bgmm",
        )
    times = {c: [] for c in _configs(args)}
    for _ in range(args.repeats):
        for n, dtype, cov in times:
            X = data[n, dtype]
            if args.estimator == "bgmm":
                est = BayesianGaussianMixture(**pc.bgmm_params(args.n_components, cov, args.iters))
                s, _ = pc.warm_continuation(est, X, args.iters)
            else:
                est = GaussianMixture(**pc.gmm_params(args.n_components, cov, X, args.iters))
                s = pc.timed_fit(est, X) / max(est.n_iter_, 1)
            times[n, dtype, cov].append(s)
    return times, numba.get_num_threads()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6")
    parser.add_argument("--dtypes", default="float64")
    parser.add_argument("--covariance-types", default="full,tied,diag,spherical")
    parser.add_argument("--estimator", choices=("gmm", "bgmm"), default="gmm")
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--numba-threads", default=None, metavar="T1,T2")
    parser.add_argument("--json", default=None, metavar="PATH")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        times, threads = run_here(args)
        out = {"threads": threads, "times": [[list(c), t] for c, t in times.items()]}
        print(json.dumps(out), flush=True)
        return 0

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    pc.say(
        f"fastmix {args.estimator}: D={args.n_features}, K={args.n_components}, "
        f"{args.iters} iterations per fit, median of {args.repeats}"
    )
    rows = []
    if args.numba_threads:
        thread_counts = [int(t) for t in args.numba_threads.split(",")]
        times = {(t, *c): [] for t in thread_counts for c in _configs(args)}
        child_args = [a for a in (argv if argv is not None else sys.argv[1:])]
        for _ in range(args.repeats):
            for t in thread_counts:
                cmd = [sys.executable, os.path.join(HERE, "fastmix_timing.py"), *child_args]
                cmd += ["--child", "--repeats", "1", "--numba-threads", ""]
                env = dict(os.environ, NUMBA_NUM_THREADS=str(t))
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                doc = json.loads(out.stdout.strip().splitlines()[-1])
                assert doc["threads"] == t, doc["threads"]
                for c, ts in doc["times"]:
                    times[(t, *c)].extend(ts)
    else:
        here, threads = run_here(args)
        times = {(threads, *c): t for c, t in here.items()}
    header = (
        f"{'threads':>7} {'n_samples':>11} {'dtype':<8} {'cov':<9} {'s/iter':>9} {'ns/row':>8}"
    )
    pc.say(header)
    pc.say("-" * len(header))
    for (t, n, dtype, cov), ts in times.items():
        s = pc.median(ts)
        rows.append(
            {
                "threads": t,
                "n_samples": n,
                "dtype": dtype,
                "covariance_type": cov,
                "seconds_per_iter": s,
                "ns_per_row": s / n * 1e9,
                "all": ts,
            }
        )
        pc.say(f"{t:>7} {n:>11,} {dtype:<8} {cov:<9} {s:9.4f} {s / n * 1e9:8.1f}")
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
