"""Interleaved A/B of two trees' full-covariance chunk kernels, in one process.

Usage (from the repository root)::

    git worktree add /tmp/base HEAD~1
    python benchmarks/ab_kernels.py /tmp/base .
    python benchmarks/ab_kernels.py /tmp/base . --dtype float32 --batches 60

Copies ``fastmix/_kernels`` and ``fastmix/_numba.py`` of each tree into a
temporary directory under two package names, so that both versions load side
by side, and times ``_full_logdens`` and ``_full_stats`` on one 512-row chunk
(D = K = 16, one thread) in alternating batches of 100 calls: A then B, B then
A. Reports each side's minimum and median microseconds per chunk and the median
of the per-batch ratios. On a shared, noisy machine separate processes moved
the same kernel by up to 30% (memory layout, the core a process lands on);
alternating batches in one process keeps both sides under the same conditions.
Also prints the largest difference between the two trees' log-densities.
"""

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def load(tree, name, into):
    """Import ``tree``'s kernels as package ``name`` from a copy under ``into``."""
    pkg = Path(into) / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    src = Path(tree) / "fastmix"
    shutil.copytree(
        src / "_kernels", pkg / "_kernels", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(src / "_numba.py", pkg / "_numba.py")
    return importlib.import_module(f"{name}._kernels.estep")


def problem(dtype, m=512, n_features=16, n_components=16):
    rng = np.random.default_rng(0)
    xt = rng.standard_normal((n_features, m + 16)).astype(dtype)
    lower = np.tril(rng.standard_normal((n_components, n_features, n_features)) * 0.2)
    lower += 2.0 * np.eye(n_features)
    return dict(
        m=m,
        xt=xt,
        w=np.ones(m + 16),
        shift=rng.standard_normal((n_components, n_features)).astype(dtype),
        prec=np.ascontiguousarray(np.swapaxes(lower, 1, 2)).astype(dtype),  # upper
        bias=rng.standard_normal(n_components),
        logp=np.empty((n_components, m + 16)),
        resp=np.empty((n_components, m + 16)),
        nk=np.zeros(n_components),
        s1=np.zeros((n_components, n_features)),
        s2=np.zeros((n_components, n_features, n_features)),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="tree A (a checkout's root)")
    parser.add_argument("candidate", nargs="?", default=".", help="tree B (default: .)")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--batches", type=int, default=40, help="batches per side")
    args = parser.parse_args(argv)

    import numba

    numba.set_num_threads(1)
    p = problem(np.dtype(args.dtype))
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        kernels = {
            "A": load(args.base, "_ab_base", tmp),
            "B": load(args.candidate, "_ab_cand", tmp),
        }

        def dens(E):
            E._full_logdens(p["xt"], p["m"], p["shift"], p["prec"], p["bias"], p["logp"])

        def stats(E):
            E._full_stats(
                p["xt"], p["w"], p["m"], p["shift"], p["resp"], p["nk"], p["s1"], p["s2"]
            )

        logps = {}
        for side, E in kernels.items():
            dens(E)
            logps[side] = p["logp"].copy()
        diff = np.max(np.abs(logps["A"] - logps["B"]))
        print(f"log-densities, max |A - B|: {diff:.3g}")
        la = logps["A"]
        p["resp"][:] = np.exp(la - la.max(axis=0))
        p["resp"] /= p["resp"].sum(axis=0)
        for E in kernels.values():
            stats(E)
        print(
            f"{args.dtype}, one thread, microseconds per 512-row chunk, {args.batches} x 100 calls"
        )
        for name, fn in (("densities", dens), ("stats", stats)):
            times = {"A": [], "B": []}
            for batch in range(args.batches):
                for side in ("A", "B") if batch % 2 == 0 else ("B", "A"):
                    t0 = time.perf_counter()
                    for _ in range(100):
                        fn(kernels[side])
                    times[side].append((time.perf_counter() - t0) / 100 * 1e6)
            a, b = np.array(times["A"]), np.array(times["B"])
            print(
                f"{name:<10} A min {a.min():6.1f} med {np.median(a):6.1f} | "
                f"B min {b.min():6.1f} med {np.median(b):6.1f} | "
                f"B/A min {b.min() / a.min():.3f}, median ratio {np.median(b / a):.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
