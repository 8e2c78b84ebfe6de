"""Seconds per EM iteration against the number of rows, fastmix and scikit-learn, and the plot.

Usage (from the repository root)::

    python benchmarks/time_vs_n.py --json time_vs_n.json --plot docs/img/perf-time-vs-n.png
    python benchmarks/time_vs_n.py --from-json time_vs_n.json --plot docs/img/perf-time-vs-n.png

GaussianMixture, D=16, K=16, float64, fixed work from ``fastmix bench``'s
explicit initialisation (``n_init=1``, ``max_iter=ITERS``, ``tol=0``); s/iter =
fit seconds / iterations. fastmix at every size, scikit-learn up to
``--sklearn-max`` rows; at each size the two alternate within each repeat.
Both libraries on all cores (threads left as they are).
"""

import argparse
import json

import _perf_common as pc
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastmix import GaussianMixture


def measure(args):
    covs = args.covariance_types.split(",")
    pc.warm_fastmix(covs, "float64", args.n_features, args.n_components)
    rows = []
    for n in pc.parse_counts(args.sizes):
        X = pc.make_data(n, args.n_features, args.n_components, "float64")
        for cov in covs:
            params = pc.gmm_params(args.n_components, cov, X, args.iters)
            libs = {"fastmix": GaussianMixture}
            if n <= args.sklearn_max:
                libs["sklearn"] = SkGaussianMixture
            times = {lib: [] for lib in libs}
            for _ in range(args.repeats):
                for lib, cls in libs.items():
                    est = cls(**params)
                    times[lib].append(pc.timed_fit(est, X) / max(est.n_iter_, 1))
            for lib, ts in times.items():
                row = {
                    "library": lib,
                    "covariance_type": cov,
                    "n_samples": n,
                    "seconds_per_iter": pc.median(ts),
                    "all": ts,
                    "loadavg": pc.loadavg(),
                }
                rows.append(row)
                pc.say(
                    f"{lib:<8} {cov:<6} {n:>11,} {row['seconds_per_iter']:9.4f} s/iter  "
                    f"load {row['loadavg']}"
                )
        del X
    return rows


def plot(rows, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    styles = {
        ("fastmix", "full"): ("tab:blue", "o", "-"),
        ("fastmix", "diag"): ("tab:blue", "s", "--"),
        ("sklearn", "full"): ("tab:orange", "o", "-"),
        ("sklearn", "diag"): ("tab:orange", "s", "--"),
    }
    for (lib, cov), (color, marker, line) in styles.items():
        pts = sorted(
            (r["n_samples"], r["seconds_per_iter"])
            for r in rows
            if r["library"] == lib and r["covariance_type"] == cov
        )
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        name = "scikit-learn" if lib == "sklearn" else lib
        ax.plot(xs, ys, color=color, marker=marker, linestyle=line, label=f"{name}, {cov}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows (N)")
    ax.set_ylabel("seconds per EM iteration")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e5,3e5,1e6,3e6,1e7")
    parser.add_argument("--sklearn-max", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("--covariance-types", default="full,diag")
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=None, metavar="PATH")
    parser.add_argument("--from-json", default=None, metavar="PATH", help="plot saved results")
    parser.add_argument("--plot", default=None, metavar="PNG")
    args = parser.parse_args(argv)

    if args.from_json:
        with open(args.from_json) as f:
            doc = json.load(f)
        info, rows = doc["machine"], doc["results"]
    else:
        info = pc.machine()
        pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
        rows = measure(args)
        pc.say(f"load average at the end: {pc.loadavg()}")
        pc.dump_json({"machine": info, "args": vars(args), "results": rows}, args.json)
    if args.plot:
        a = doc["args"] if args.from_json else vars(args)
        plot(
            rows,
            args.plot,
            f"GaussianMixture, D={a['n_features']}, K={a['n_components']}, float64, "
            f"{info['cores']} cores (median of {a['repeats']}, {a['iters']} iterations)",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
