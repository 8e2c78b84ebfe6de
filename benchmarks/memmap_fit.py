"""Out-of-core fit of a float32 memmap: seconds per iteration, peak RSS, bandwidth.

Usage::

    python benchmarks/memmap_fit.py --rows 20000000          # 1.28 GB file
    python benchmarks/memmap_fit.py --rows 100000000 --dir /big/disk   # 6.4 GB

Writes an ``N x 16`` float32 file of K Gaussian blobs (in a child process, so
that the generator's buffers stay out of the measured peak RSS), measures the
disk's sequential read speed on it (pages evicted with
``posix_fadvise(POSIX_FADV_DONTNEED)`` first) and the page-cache read speed,
then fits ``GaussianMixture(K=16)`` from a fixed explicit start for a few
iterations (``tol=0``) on ``np.memmap(..., mode="r")`` and reports:

- seconds per iteration (scikit-learn's ``verbose=2`` iteration timings: one
  streaming E-step pass over the file plus the update);
- the achieved read bandwidth of an iteration (file bytes / seconds);
- one E-step pass with the file evicted from the page cache first (the cost
  of an iteration when the data do not fit in RAM);
- the process's peak RSS (``resource.getrusage``) next to the file size.
"""

import argparse
import contextlib
import io
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

N_FEATURES = 16
GEN_ROWS = 1 << 20  # rows written per generator step (64 MiB of float32)


def generate(path, n_rows, n_components, seed=0):
    """K blobs in 16-D, written block by block (never mapped)."""
    rng = np.random.RandomState(seed)
    centres = 6.0 * rng.randn(n_components, N_FEATURES).astype(np.float32)
    noise = rng.randn(GEN_ROWS, N_FEATURES).astype(np.float32)
    labels = rng.randint(n_components, size=GEN_ROWS)
    with open(path, "wb") as f:
        for start in range(0, n_rows, GEN_ROWS):
            m = min(GEN_ROWS, n_rows - start)
            shift = start // GEN_ROWS
            block = noise[:m] + centres[(labels[:m] + shift) % n_components]
            f.write(block.tobytes())
        f.flush()
        os.fsync(f.fileno())


def evict(path):
    """Drop the file's (clean) pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_speed(path, buffer_bytes=16 << 20):
    """Sequential read of the whole file with readinto; bytes per second."""
    buf = bytearray(buffer_bytes)
    view = memoryview(buf)
    total = 0
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(view)
            if not n:
                break
            total += n
    return total / (time.perf_counter() - start)


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=2e7)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--covariance-type", default="full")
    parser.add_argument("--dir", default=None, help="where to write the file (default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the data file")
    parser.add_argument("--generate", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    n_rows, n_components = int(args.rows), args.components
    # tol=0 and a few iterations: not converging is the point.
    warnings.simplefilter("ignore", ConvergenceWarning)

    if args.generate:
        generate(args.generate, n_rows, n_components)
        return

    workdir = tempfile.mkdtemp(prefix="fastmix-memmap-", dir=args.dir)
    path = os.path.join(workdir, "x.f32")
    file_bytes = n_rows * N_FEATURES * 4
    free = shutil.disk_usage(workdir).free
    print(f"rows {n_rows:,} x {N_FEATURES} float32 = {file_bytes / 1e9:.2f} GB in {workdir}")
    print(f"free disk there: {free / 1e9:.1f} GB")
    if file_bytes > free:
        sys.exit("not enough disk space")
    try:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--generate", path, "--rows", str(n_rows),
             "--components", str(n_components)],
            check=True,
        )  # fmt: skip
        print(f"generated in {time.perf_counter() - t:.1f} s")
        evict(path)
        cold = read_speed(path)
        warm = read_speed(path)
        print(f"disk sequential read (evicted): {cold / 1e9:.2f} GB/s")
        print(f"page-cache read:                {warm / 1e9:.2f} GB/s")

        import numba

        from fastmix import GaussianMixture
        from fastmix._sources import BlockSource

        print(f"numba threads: {numba.get_num_threads()}, cores: {os.cpu_count()}")
        # Fixed start: K rows of the file as means, unit precisions, equal weights.
        X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, N_FEATURES))
        means = np.array(X[: n_components * 997 : 997], dtype=np.float64)
        eye = np.eye(N_FEATURES)
        precisions = {
            "full": np.tile(eye, (n_components, 1, 1)),
            "tied": eye,
            "diag": np.ones((n_components, N_FEATURES)),
            "spherical": np.ones(n_components),
        }[args.covariance_type]
        kw = dict(
            covariance_type=args.covariance_type,
            weights_init=np.full(n_components, 1.0 / n_components),
            means_init=means,
            precisions_init=precisions,
            tol=0.0,
            verbose=2,
            verbose_interval=1,
        )
        # Warm-up on a small in-memory slice: kernels loaded or compiled.
        with contextlib.redirect_stdout(io.StringIO()):
            GaussianMixture(n_components, max_iter=1, **kw).fit(np.array(X[:20000]))
        rss_before = peak_rss_bytes()

        log = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(log):
            gm = GaussianMixture(n_components, max_iter=args.iters, **kw).fit(X)
        total = time.perf_counter() - start
        per_iter = [float(s) for s in re.findall(r"time lapse ([0-9.]+)s", log.getvalue())]
        per_iter = per_iter[: args.iters]
        s_iter = float(np.median(per_iter))
        print(f"fit: {args.iters} iterations in {total:.1f} s (validation pass included)")
        print(f"seconds per iteration: {', '.join(f'{s:.2f}' for s in per_iter)}")
        achieved = file_bytes / s_iter
        print(
            f"  median {s_iter:.2f} s/iter -> achieved read bandwidth {achieved / 1e9:.2f} GB/s"
            f" ({100 * achieved / cold:.0f}% of the disk's sequential read)"
        )

        evict(path)
        start = time.perf_counter()
        BlockSource(X, np.float32).estep_pass([gm._kernel_params(np.float32)])
        cold_pass = time.perf_counter() - start
        print(
            f"one E-step pass, file evicted first: {cold_pass:.2f} s"
            f" ({file_bytes / cold_pass / 1e9:.2f} GB/s)"
        )
        peak = peak_rss_bytes()
        print(
            f"peak RSS: {peak / 2**20:.0f} MiB (before the fit: {rss_before / 2**20:.0f} MiB;"
            f" file {file_bytes / 2**20:.0f} MiB)"
        )
        print(f"lower bound per iteration: {np.round(gm.lower_bounds_, 4).tolist()}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
