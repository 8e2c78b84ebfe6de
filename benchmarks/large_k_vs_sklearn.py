"""Seconds per EM iteration at many components: fastmix against scikit-learn, and FLOP/s.

Usage (from the repository root)::

    python benchmarks/large_k_vs_sklearn.py                    # 2e5 rows, D x K = 64x256, 40x1024
    python benchmarks/large_k_vs_sklearn.py --shapes 16x16 --repeats 5
    # before and after: fastmix from each tree in turn (a subprocess per fit)
    python benchmarks/large_k_vs_sklearn.py --trees /tmp/base,. --no-sklearn
    # float32 against float64, side by side in every repeat
    python benchmarks/large_k_vs_sklearn.py --dtype float64,float32
    # exact against the min_responsibility opt-in, side by side
    python benchmarks/large_k_vs_sklearn.py --min-responsibility 0,1e-8
    # one core: each kernel's rate against the one-thread matmul
    python benchmarks/large_k_vs_sklearn.py --shapes 128x8 --covariance-type full --threads 1

Every repeat times, in turn, the float64 matmul on every core (the rate of
``benchmarks/matmul_flops.py``), fastmix and scikit-learn, so a slow phase of
a shared machine falls on all of them; medians are reported. Both estimators
start from the same explicit parameters (``weights_init``, ``means_init``,
``precisions_init`` of ``fastmix bench``), ``tol=0``, ``n_init=1``, and are
timed as a warm-started continuation of ``--iters`` iterations: one
iteration from the start, untimed (scikit-learn's GaussianMixture cannot stop
at ``max_iter=0``), then ``warm_start=True``. scikit-learn's timed fit also
runs its final E-step (for ``fit_predict``'s labels; fastmix's ``fit`` runs
none): it is timed alone after the fit, and the ratio is also given per EM
iteration without it, ``(fit seconds - E-step seconds) / iterations``.
Threads as the libraries leave them: numba on every core, and scikit-learn's
BLAS on every core (threadpoolctl limits it to the cores).
``--threads T`` runs all three (the matmul, numba's kernels, scikit-learn's
BLAS) on T threads instead: with T = 1 the fraction of the matmul is a
kernel's own, apart from how two threads share a machine (on a shared VM,
two threads of one process scaled by 1.1-2.0x from one pass to the next).

GFLOP/s use the dense model of issue 12, ``8 N K D`` per iteration for
diag and spherical (densities: subtract, square, scale-add; the first and
second moments: subtract, weight, two sums) and ``2 N K D^2`` for full (the
triangular solve and the symmetric outer product, ``D^2`` each; ``fastmix
bench`` counts both squares, ``4 N K D^2``), next to the matmul rate of the
same repeat.

With ``--trees A,B``, fastmix runs from each tree's ``fastmix`` package in a
subprocess (``PYTHONPATH`` set to the tree), alternating A and B within each
repeat: a before/after figure for the whole fit. With ``--dtype
float64,float32`` every repeat times each dtype in turn (the same points,
cast) and the second dtype's time over the first's is reported per repeat.
``--min-responsibility 0,R`` times fastmix exact and with
``min_responsibility=R`` (an approximation, off by default) in turn, each
against the same scikit-learn time, with R's time over the exact one's per
repeat and the lower bounds of both (one dtype, one tree).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import _perf_common as pc
from matmul_flops import matmul_rate
from threadpoolctl import threadpool_limits

HERE = os.path.dirname(os.path.abspath(__file__))


def model_flops(n, d, k, cov="diag"):
    """The dense model of one E-step pass: ``8 N K D`` (diag), ``2 N K D^2`` (full)."""
    return 2 * n * k * d * d if cov == "full" else 8 * n * k * d


def fit_params(k, cov, X, iters, min_resp=None):
    # The explicit start overrides whatever init_params computes; random_from_data
    # keeps scikit-learn's untimed start from running k-means at K = 1024.
    params = dict(pc.gmm_params(k, cov, X, iters), init_params="random_from_data")
    if min_resp:  # fastmix only; 0 or None: the default, for any fastmix tree
        params["min_responsibility"] = min_resp
    return params


def continuation(estimator, X, iters):
    """One untimed iteration from the start, then ``iters`` warm-started ones, timed."""
    estimator.set_params(max_iter=1, warm_start=False)
    pc.timed_fit(estimator, X)
    estimator.set_params(max_iter=iters, warm_start=True)
    seconds = pc.timed_fit(estimator, X)
    return seconds / max(estimator.n_iter_, 1), estimator


def time_fastmix(n, d, k, cov, dtype, iters, min_resp=0.0):
    from fastmix import GaussianMixture

    X = pc.make_data(n, d, k, dtype)
    pc.warm_fastmix([cov], dtype, d, k)
    est = GaussianMixture(**fit_params(k, cov, X, iters, min_resp))
    s, est = continuation(est, X, iters)
    return s, pc.scalar(est.lower_bound_)


def child(args):
    n, (d, k) = args.n_samples, parse_shape(args.shapes)
    mr = float(args.min_responsibility)
    s, lb = time_fastmix(n, d, k, args.covariance_type, args.dtype, args.iters, mr)
    print(json.dumps({"seconds_per_iter": s, "lower_bound": lb}), flush=True)
    return 0


def parse_shape(text):
    d, k = text.lower().split("x")
    return int(d), int(k)


def fastmix_in(tree, args, shape, dtype, min_resp):
    cmd = [sys.executable, os.path.join(HERE, "large_k_vs_sklearn.py"), "--child"]
    cmd += ["--shapes", shape, "-n", str(args.n_samples), "--iters", str(args.iters)]
    cmd += ["--min-responsibility", repr(min_resp)]
    cmd += ["--covariance-type", args.covariance_type, "--dtype", dtype]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), NUMBA_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return doc["seconds_per_iter"], doc["lower_bound"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n-samples", type=lambda s: int(float(s)), default=200_000)
    parser.add_argument("--shapes", default="64x256,40x1024", help="DxK[,DxK...]")
    parser.add_argument("--covariance-type", default="diag")
    parser.add_argument("--dtype", default="float64", help="float64, float32, or both")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trees", default=None, metavar="A,B")
    parser.add_argument(
        "--min-responsibility", default="0", metavar="R[,R]",
        help="fastmix's min_responsibility; two values time both (default: 0, exact)",
    )  # fmt: skip
    parser.add_argument("--no-sklearn", action="store_true")
    parser.add_argument("--matmul-size", type=int, default=3072)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="threads of the matmul, fastmix and scikit-learn's BLAS (default: every core)",
    )
    parser.add_argument("--json", default=None, metavar="PATH")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if not 1 <= args.threads <= os.cpu_count():
        parser.error(f"--threads takes 1 to {os.cpu_count()} (the cores), got {args.threads}")
    if not args.trees:
        import numba

        numba.set_num_threads(args.threads)

    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    pc.say(f"versions: {info['versions']}")
    trees = args.trees.split(",") if args.trees else []
    dtypes = args.dtype.split(",")
    if not set(dtypes) <= {"float64", "float32"}:
        parser.error(f"--dtype takes float64 and/or float32, got {args.dtype!r}")
    min_resps = [float(v) for v in args.min_responsibility.split(",")]
    if len(min_resps) > 1 and (len(dtypes) > 1 or len(trees) > 1):
        parser.error("several --min-responsibility values take one --dtype and one tree")
    # One side per (tree, dtype, min_resp): named by the tree, suffixed by the
    # dtype when both run and by a min_responsibility other than 0.
    sides = [(t, dt, mr) for t in trees or ["fastmix"] for dt in dtypes for mr in min_resps]
    names = [
        (t if len(dtypes) == 1 else f"{t}/{dt}") + (f"/min_resp={mr:g}" if mr else "")
        for t, dt, mr in sides
    ]
    sk_names = ["sklearn" if len(dtypes) == 1 else f"sklearn/{dt}" for dt in dtypes]
    results = []
    for shape in args.shapes.split(","):
        d, k = parse_shape(shape)
        n, cov = args.n_samples, args.covariance_type
        data = {dt: pc.make_data(n, d, k, dt) for dt in dtypes}
        if not trees:
            for dt in dtypes:
                pc.warm_fastmix([cov], dt, d, k)
        flop = model_flops(n, d, k, cov)
        pc.say(
            f"{cov}, {n:,} x {d}, K = {k}, {args.dtype}, {args.iters} iterations, "
            f"{args.threads} thread{'s' if args.threads > 1 else ''}, "
            f"{flop / 1e9:.2f} GFLOP per iteration ({'2NKD^2' if cov == 'full' else '8NKD'})"
        )
        # "<sklearn> EM": its seconds per iteration without its fit's final E-step.
        em_names = [f"{name} EM" for name in sk_names]
        times = {name: [] for name in [*names, *sk_names, *em_names, "matmul"]}
        bounds = {name: [] for name in [*names, *sk_names]}
        for rep in range(args.repeats):
            rate, _ = matmul_rate(args.matmul_size, "float64", args.threads, 3)
            times["matmul"].append(rate)
            line = f"  repeat {rep}: matmul {rate / 1e9:6.1f} GFLOP/s"
            for (tree, dt, mr), name in zip(sides, names, strict=True):
                if trees:
                    s, lb = fastmix_in(tree, args, shape, dt, mr)
                else:
                    from fastmix import GaussianMixture

                    X = data[dt]
                    est = GaussianMixture(**fit_params(k, cov, X, args.iters, mr))
                    s, est = continuation(est, X, args.iters)
                    lb = pc.scalar(est.lower_bound_)
                times[name].append(s)
                bounds[name].append(lb)
                line += f"; {name} {s:.4f} s/iter ({flop / s / 1e9:.1f} GFLOP/s)"
            for dt, name in zip(dtypes, sk_names, strict=True):
                if args.no_sklearn:
                    break
                X = data[dt]
                try:
                    with threadpool_limits(limits=args.threads, user_api="blas"):
                        est = SkGaussianMixture(**fit_params(k, cov, X, args.iters))
                        s, est = continuation(est, X, args.iters)
                        # Its fit's final E-step (for fit_predict's labels), timed
                        # alone: fastmix's fit runs none.
                        start = time.perf_counter()
                        est._e_step(X)
                        e_step = time.perf_counter() - start
                except ValueError as exc:
                    # scikit-learn's float32 covariances come from raw moments,
                    # which can cancel below zero at this many components.
                    line += f"; {name} failed ({str(exc)[:60]}...)"
                    continue
                times[name].append(s)
                n_iter = max(est.n_iter_, 1)
                times[f"{name} EM"].append((s * n_iter - e_step) / n_iter)
                bounds[name].append(pc.scalar(est.lower_bound_))
                line += f"; {name} {s:.4f} s/iter (final E-step {e_step:.4f} s)"
            pc.say(line + f"  load {pc.loadavg()}")
        peak = pc.median(times["matmul"])
        row = {"shape": shape, "n_samples": n, "n_features": d, "n_components": k,
               "covariance_type": cov, "dtype": args.dtype, "iters": args.iters,
               "threads": args.threads,
               "gflop_per_iter": flop / 1e9, "matmul_gflops_median": peak / 1e9,
               "times": times, "lower_bounds": bounds}  # fmt: skip
        for (_, dt, _), name in zip(sides, names, strict=True):
            s = pc.median(times[name])
            row[name] = {"seconds_per_iter": s, "gflops": flop / s / 1e9,
                         "fraction_of_matmul": flop / s / peak}  # fmt: skip
            msg = (
                f"  {name}: median {s:.4f} s/iter, {flop / s / 1e9:.1f} GFLOP/s = "
                f"{flop / s / peak:.1%} of the median matmul {peak / 1e9:.1f} GFLOP/s"
            )
            sk = times[sk_names[dtypes.index(dt)]]
            if sk:
                ratio = pc.median(sk) / s
                em = pc.median(times[em_names[dtypes.index(dt)]])
                row[name]["sklearn_ratio"] = ratio
                row[name]["sklearn_em_ratio"] = em / s
                msg += (
                    f"; scikit-learn {pc.median(sk):.4f} s/iter = {ratio:.2f}x (per EM "
                    f"iteration, its final E-step excluded: {em:.4f} s = {em / s:.2f}x)"
                )
            pc.say(msg)
        pairs = [names] if len(trees) == 2 and len(dtypes) == 1 else []
        if len(dtypes) == 2:
            # The second dtype's time over the first's in each repeat, per tree.
            pairs = [names[i : i + 2] for i in range(0, len(names), 2)]
        if len(min_resps) > 1:
            pairs = [(names[0], name) for name in names[1:]]
        for a_name, b_name in pairs:
            a, b = pc.median(times[a_name]), pc.median(times[b_name])
            per_rep = [tb / ta for ta, tb in zip(times[a_name], times[b_name], strict=True)]
            row[f"{b_name} / {a_name}"] = pc.median(per_rep)
            pc.say(f"  {b_name} / {a_name}: medians {b / a:.3f}, per repeat {per_rep}")
        spread = {side: max(v) - min(v) for side, v in bounds.items() if v}
        pc.say(f"  lower bounds, spread over repeats: {spread}")
        results.append(row)
    pc.say(f"load average at the end: {pc.loadavg()}")
    pc.dump_json({"machine": info, "args": vars(args), "results": results}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
