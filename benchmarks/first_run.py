"""First-run seconds (empty numba cache) of the demo and of a first fit, for several trees.

Usage (from the repository root)::

    python benchmarks/first_run.py .                          # this tree
    git worktree add /tmp/old 8cb5660
    python benchmarks/first_run.py /tmp/old . --rounds 2      # trees alternated

Each measurement is a fresh interpreter with ``PYTHONPATH`` set to the tree
and a new empty ``NUMBA_CACHE_DIR``:

- ``demo``: the wall time of ``python -m fastmix demo --no-plot``;
- ``fit``: a default ``GaussianMixture(4, random_state=0)`` on 20,000 x 8
  float64 rows, then the same on float32 rows, then ``predict_proba``, each
  timed in the same process (each compiles what the one before did not).

Trees are alternated within each round, so machine load falls on all alike.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

_FIT = r"""
import time, numpy as np
import fastmix
X = np.random.default_rng(0).normal(size=(20000, 8))
t0 = time.perf_counter()
gm = fastmix.GaussianMixture(4, random_state=0).fit(X)
t1 = time.perf_counter()
fastmix.GaussianMixture(4, random_state=0).fit(X.astype(np.float32))
t2 = time.perf_counter()
gm.predict_proba(X)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def _run(tree, code_or_module):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.path.abspath(tree))
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, *code_or_module], env=env, cwd=tree,
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return time.perf_counter() - t, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="source trees (a checkout or worktree)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{'round':>5}  {'tree':<30} {'demo':>7} {'fit':>7} {'fit32':>7} {'proba':>7}  (s)")
    for r in range(1, args.rounds + 1):
        for tree in args.trees:
            demo, _ = _run(tree, ["-m", "fastmix", "demo", "--no-plot"])
            _, out = _run(tree, ["-c", _FIT])
            fit, fit32, proba = (float(v) for v in out.split())
            times = f"{demo:7.1f} {fit:7.1f} {fit32:7.1f} {proba:7.1f}"
            print(f"{r:>5}  {tree:<30} {times}", flush=True)


if __name__ == "__main__":
    main()
