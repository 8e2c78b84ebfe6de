"""Seconds numba spends compiling each kernel signature in a first run.

Usage (from the repository root)::

    python benchmarks/compile_profile.py fit     # a first default fit, 20,000 x 8, K = 4
    python benchmarks/compile_profile.py demo    # fastmix demo --no-plot
    python benchmarks/compile_profile.py fit --top 40

Runs the workload in a fresh interpreter with an empty ``NUMBA_CACHE_DIR``
and listens to numba's ``numba:compile`` events. A helper compiled while its
caller is typed is counted in the caller's time too, so the column does not
add up: read it as "what compiling this signature cost, helpers included".
Also prints, per function, how many signatures it compiled (a helper called
with different constants compiles once per constant: numba types a constant
argument as its literal value) and the seconds numba held LLVM's lock (code
generation and optimisation) against the wall time.
"""

import argparse
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import collections, json, sys, time
from numba.core import event

per_sig = collections.defaultdict(float)
starts = {}


class Listener(event.Listener):
    def on_start(self, ev):
        starts[id(ev.data["dispatcher"]), str(ev.data["args"])] = time.perf_counter()

    def on_end(self, ev):
        key = (id(ev.data["dispatcher"]), str(ev.data["args"]))
        f = ev.data["dispatcher"].py_func
        per_sig[f.__module__ + "." + f.__qualname__, str(ev.data["args"])] += (
            time.perf_counter() - starts.pop(key)
        )


event.register("numba:compile", Listener())
t0 = time.perf_counter()
with event.install_recorder("numba:llvm_lock") as llvm:
    if sys.argv[1] == "demo":
        from fastmix.cli import main

        main(["demo", "--no-plot"])
    else:
        import numpy as np

        import fastmix

        X = np.random.default_rng(0).normal(size=(20000, 8))
        fastmix.GaussianMixture(4, random_state=0).fit(X)
wall = time.perf_counter() - t0
held, depth, since = 0.0, 0, 0.0
for ts, ev in llvm.buffer:
    if ev.is_start:
        depth += 1
        since = since if depth > 1 else ts
    else:
        depth -= 1
        held += 0.0 if depth else ts - since
print(json.dumps({"wall": wall, "llvm": held,
                  "sigs": [[f, a, t] for (f, a), t in per_sig.items()]}))
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=("fit", "demo"))
    parser.add_argument("--top", type=int, default=25, help="signatures to list")
    args = parser.parse_args(argv)
    import json

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, args.workload],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    result = json.loads(out.strip().splitlines()[-1])
    sigs = sorted(result["sigs"], key=lambda s: -s[2])
    print(f"{args.workload}: wall {result['wall']:.1f} s, LLVM lock held {result['llvm']:.1f} s")
    print(f"\n{'seconds':>8}  signature (helpers compiled inside it included)")
    for f, a, t in sigs[: args.top]:
        print(f"{t:8.2f}  {f}{a[:100]}")
    counts = {}
    for f, _, t in sigs:
        n, s = counts.get(f, (0, 0.0))
        counts[f] = (n + 1, s + t)
    print(f"\n{'count':>8}  functions compiled for more than one signature")
    for f, (n, s) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
        if n > 1:
            print(f"{n:8d}  {f} ({s:.2f} s in all)")


if __name__ == "__main__":
    main()
