"""Interleaved A/B of two trees' E-step chunk kernels, in one process.

Usage (from the repository root)::

    git worktree add /tmp/base HEAD~1
    python benchmarks/ab_kernels.py /tmp/base .
    python benchmarks/ab_kernels.py /tmp/base . --covariance-type diag --dtype float32

Copies ``fastmix/_kernels`` and ``fastmix/_numba.py`` of each tree into a
temporary directory under two package names, so that both versions load side
by side, and times the three stages of one 512-row chunk (``_logdens_chunk``,
``_normalise_chunk``, ``_chunk_stats``) and the whole chunk (``_stats_chunk``:
load, the three stages, the scalar sums; D = K = 16 unless ``-d``/``-k`` say
otherwise, one thread, the model of a one-iteration fit of ``fastmix bench``'s
data) in alternating batches of ``--calls`` calls: A then B, B then A.
Reports each side's minimum and median microseconds per chunk and the median
of the per-batch ratios, and checks
that both trees give the same log-densities. Buffers are 64-byte aligned, as
the kernels' own scratch is: an unaligned buffer moved the same kernel by
10-30% from one process to the next, and alternating batches in one process
keep both sides under the same conditions on a shared machine.
"""

import argparse
import functools
import importlib
import inspect
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _perf_common as pc
import numpy as np

CHUNK = 512


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


@functools.cache
def _takes(kernel, name):
    """Whether a tree's kernel has parameter ``name`` (signatures change over time)."""
    return name in inspect.signature(kernel.py_func).parameters


def chunk_stages(X64, dtype, covariance_type, n_components):
    """The four timed stages on one chunk of ``X64`` cast to ``dtype``, as functions of a tree."""
    from fastmix import GaussianMixture

    X = np.ascontiguousarray(X64.astype(dtype))
    gm = GaussianMixture(**pc.gmm_params(n_components, covariance_type, X, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    p = gm._kernel_params(X.dtype)
    m, n_features, n_components = CHUNK, X.shape[1], p.bias.shape[0]
    width = m + 64 // X.dtype.itemsize
    n4 = (n_features + 3) // 4 * 4
    xt = pc.aligned((n_features, width), X.dtype)
    xt[:, :m] = X[:m].T
    w = pc.aligned(width)
    w[:] = 1.0
    dt, y = pc.aligned((n4, width), X.dtype), pc.aligned((n4, width), X.dtype)
    acc = pc.aligned(width, X.dtype)
    # Log-densities and responsibilities in the data's dtype, as this tree's
    # kernels take them (before 2026-12-05 they were float64: compare such a
    # tree by its "chunk" stage).
    wd, logp = pc.aligned((n4, width)), pc.aligned((n_components, width), X.dtype)
    lse, rlogr, total, t, wr = (pc.aligned(width) for _ in range(5))
    scale_bits = pc.aligned(width, np.int64)
    resp = pc.aligned((n_components, width), X.dtype)
    nk = np.zeros(n_components)
    s1 = np.zeros((n_components, n_features))
    s2_mat = np.zeros((p.prec_mat.shape[0], n_features, n_features))
    s2_diag = np.zeros((p.prec_diag.shape[0], n_features))

    def dens(E):
        E._logdens_chunk(
            xt, m, p.code, p.shift, p.prec_mat, p.prec_diag, p.offset, p.bias, logp, dt, y, acc
        )
        return logp[:, :m]

    def norm(E):
        resp[:] = logp
        E._normalise_chunk(resp, m, lse, rlogr, total, t, scale_bits)
        np.multiply(w, total, out=wr)  # each row's weight over its total

    xr = np.ascontiguousarray(X[:m])

    def stats(E):
        # Trees from 2026-12-06 take the chunk's rows and min_resp (None: exact) too.
        if _takes(E._chunk_stats, "xr"):
            args = (xt, xr, w, m, p.code, p.shift, resp, nk, s1, s2_mat, s2_diag, dt, wd, wr)
            E._chunk_stats(*args, None)
        else:
            E._chunk_stats(xt, w, m, p.code, p.shift, resp, nk, s1, s2_mat, s2_diag, dt, wd, wr)

    no_weight, scal = np.empty(0), np.zeros(3)

    def chunk(E):
        model = (p.code, p.shift, p.prec_mat, p.prec_diag, p.offset, p.bias)
        extra = (None,) if _takes(E._stats_chunk, "min_resp") else ()
        E._stats_chunk(X, no_weight, 0, m, *model, *extra, nk, s1, s2_mat, s2_diag, scal)

    return {"densities": dens, "normalise": norm, "stats": stats, "chunk": chunk}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="tree A (a checkout's root)")
    parser.add_argument("candidate", nargs="?", default=".", help="tree B (default: .)")
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument(
        "--dtype-b", default=None, choices=["float64", "float32"],
        help="tree B's dtype (default: --dtype); e.g. . . --dtype-b float32",
    )  # fmt: skip
    parser.add_argument("--batches", type=int, default=40, help="batches per side")
    parser.add_argument("--calls", type=int, default=100, help="calls per batch")
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    args = parser.parse_args(argv)

    import numba

    numba.set_num_threads(1)
    X64 = pc.make_data(65536, args.n_features, args.n_components, "float64")
    stages_of = {
        "A": chunk_stages(X64, args.dtype, args.covariance_type, args.n_components),
        "B": chunk_stages(X64, args.dtype_b or args.dtype, args.covariance_type,
                          args.n_components),
    }  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        kernels = {
            "A": load(args.base, "_ab_base", tmp),
            "B": load(args.candidate, "_ab_cand", tmp),
        }
        out = {}
        for side, E in kernels.items():
            fns = stages_of[side]
            out[side] = fns["densities"](E).copy()
            for name in ("normalise", "stats", "chunk"):
                fns[name](E)
        diff = np.max(np.abs(out["A"] - out["B"]))
        print(f"log-densities, max |A - B|: {diff:.3g}")
        print(
            f"{args.covariance_type}, A {args.dtype}, B {args.dtype_b or args.dtype}, one "
            f"thread, microseconds per {CHUNK}-row chunk, D = {args.n_features}, "
            f"K = {args.n_components}, {args.batches} x {args.calls} calls"
        )
        for name in ("densities", "normalise", "stats", "chunk"):
            times = {"A": [], "B": []}
            for batch in range(args.batches):
                for side in ("A", "B") if batch % 2 == 0 else ("B", "A"):
                    t0 = time.perf_counter()
                    for _ in range(args.calls):
                        stages_of[side][name](kernels[side])
                    times[side].append((time.perf_counter() - t0) / args.calls * 1e6)
            a, b = np.array(times["A"]), np.array(times["B"])
            print(
                f"{name:<10} A min {a.min():6.1f} med {np.median(a):6.1f} | "
                f"B min {b.min():6.1f} med {np.median(b):6.1f} | "
                f"B/A min {b.min() / a.min():.3f}, median ratio {np.median(b / a):.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
