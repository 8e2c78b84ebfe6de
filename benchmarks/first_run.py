"""First-run seconds (empty numba cache) of the demo and of a first fit, for several trees.

Usage (from the repository root)::

    python benchmarks/first_run.py .                          # this tree
    git worktree add /tmp/old 8cb5660
    python benchmarks/first_run.py /tmp/old . --rounds 2      # trees alternated

Each measurement is a fresh interpreter with ``PYTHONPATH`` set to the tree
and a new empty ``NUMBA_CACHE_DIR``:

- ``demo``: the wall time of ``python -m fastmix demo --no-plot``;
- ``fit``: a default ``GaussianMixture(4, random_state=0)`` on 20,000 x 8
  float64 rows, then the same on float32 rows, then ``predict_proba``, then
  the first fit again on a read-only copy of the rows (``ro``), then
  ``GaussianMixture(1, covariance_type='tied')`` (``k1tied``), each timed in
  the same process (each compiles what the ones before did not).

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
frozen = X.copy()
frozen.flags.writeable = False
fastmix.GaussianMixture(4, random_state=0).fit(frozen)
t4 = time.perf_counter()
fastmix.GaussianMixture(1, covariance_type="tied", random_state=0).fit(X)
t5 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)
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
    columns = ("demo", "fit", "fit32", "proba", "ro", "k1tied")
    print(f"{'round':>5}  {'tree':<30} " + " ".join(f"{c:>7}" for c in columns) + "  (s)")
    for r in range(1, args.rounds + 1):
        for tree in args.trees:
            demo, _ = _run(tree, ["-m", "fastmix", "demo", "--no-plot"])
            _, out = _run(tree, ["-c", _FIT])
            times = " ".join(f"{t:7.1f}" for t in (demo, *map(float, out.split())))
            print(f"{r:>5}  {tree:<30} {times}", flush=True)


if __name__ == "__main__":
    main()
