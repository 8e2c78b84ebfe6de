"""Online learning on a file too big to read many times (issue 14).

Usage (from the repository root; the file is written once and kept)::

    python benchmarks/online_vs_batch.py --path /tmp/online.f32 --n-samples 100000000
    python benchmarks/online_vs_batch.py --overhead      # partial_fit's per-call overhead
    git worktree add /tmp/base HEAD~1
    python benchmarks/online_vs_batch.py --overhead --vs /tmp/base   # the same, A/B
    python benchmarks/online_vs_batch.py --overhead --seen 10000     # after 1e4 batches

Writes a float32 raw file of N x 16 rows from a 16-component diagonal mixture
(a fixed seed; 6.4 GB at N = 1e8), then times, as whole processes from the
command line, ``fastmix fit --online`` (``--passes`` passes of
``--batch-size`` rows) and the batch ``fastmix fit`` run to convergence (the
default tol, max_iter 100), both ``-k 16 --covariance-type diag``, and
compares the held-out log-likelihood per row of the two saved models on rows
drawn afresh from the same mixture. ``--overhead`` times ``partial_fit`` on
1e4 x 16 float32 batches against the E-step pass it runs (the kernel time).
With ``--vs TREE`` it times that tree's ``fastmix`` too, loaded beside this
one from a copy (``fastmix_vs``), in one process: each tree's ``partial_fit``
right after its own E-step pass, the two trees' pairs alternating in order.
``--seen N`` steps each model through N batches first: a call's cost must
not grow with the batches a stream has seen.
On a shared machine the overhead moves by half its size from one process to
the next, which hides a change of 10-30 us between runs of the two trees.
(The first such A/B timed both trees' calls after one tree's pass: the other
tree's compiled kernel, a second copy of the machine code, ran cold and
read 10-25 us worse.)
"""

import argparse
import atexit
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_FEATURES = 16
N_COMPONENTS = 16


def _mixture(seed=0, mean_scale=4.0):
    # Median distance from a mean to its nearest other mean, in units of the
    # scales (0.5-1.5): 18 at mean_scale 4 (batch EM converges in 3
    # iterations), 4.5 at 1, 2.3 at 0.5 (overlapping).
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(N_COMPONENTS, 4.0))
    means = rng.normal(scale=mean_scale, size=(N_COMPONENTS, N_FEATURES))
    scales = rng.uniform(0.5, 1.5, size=(N_COMPONENTS, N_FEATURES))
    return weights, means, scales


def _draw(n, rng, mixture):
    weights, means, scales = mixture
    labels = rng.choice(N_COMPONENTS, size=n, p=weights)
    noise = rng.standard_normal((n, N_FEATURES), dtype=np.float32)
    return (means[labels] + scales[labels] * noise).astype(np.float32)


def write_file(path, n_samples, mean_scale, block=2_000_000):
    mixture = _mixture(mean_scale=mean_scale)
    rng = np.random.default_rng(1)
    with open(path, "wb") as f:
        for start in range(0, n_samples, block):
            _draw(min(block, n_samples - start), rng, mixture).tofile(f)


def load_tree(tree, into):
    """``tree``'s fastmix package, imported beside this one as ``fastmix_vs`` from a copy.

    fastmix imports its own modules relatively, so the copy is a package of
    its own; its numba kernels compile afresh (a minute or two).
    """
    shutil.copytree(
        Path(tree) / "fastmix", Path(into) / "fastmix_vs",
        ignore=shutil.ignore_patterns("__pycache__"),
    )  # fmt: skip
    sys.path.insert(0, str(into))
    return importlib.import_module("fastmix_vs")


def overhead(vs=None, seen=0):
    """partial_fit's time over its E-step pass, 1e4 x 16 float32 batches, K = 16.

    The issue's figure first (diag, three medians, GaussianMixture then
    BayesianGaussianMixture), then one median per other covariance type of
    both estimators; with ``vs`` (another tree), each figure for both trees.
    """
    import fastmix

    rng = np.random.default_rng(2)
    X = _draw(10_000, rng, _mixture())
    packages = {"": fastmix}
    if vs is not None:
        into = tempfile.mkdtemp()
        atexit.register(shutil.rmtree, into, True)  # the copy and its numba cache
        packages = {"this tree: ": fastmix, f"{vs}: ": load_tree(vs, into)}

    def pair(package, estimator, covariance_type):
        """(E-step pass, partial_fit) of a warmed-up model of ``package``."""
        model = getattr(package, estimator)(n_components=N_COMPONENTS)
        model.set_params(covariance_type=covariance_type, random_state=0).partial_fit(X)
        params = model._stats_params(np.float32)
        source = package._sources.ArraySource(X)
        for _ in range(seen):
            model.partial_fit(X)
        for _ in range(20):
            model.partial_fit(X)
            source.estep_pass([params])
        return lambda: source.estep_pass([params]), lambda: model.partial_fit(X)

    def paired(pairs, n=300):
        """Medians of each pair's two times, the pass then the call; the pairs
        alternate in order, so the machine's drift hits every figure alike."""
        times = np.empty((n, len(pairs), 2))
        for i in range(n):
            order = range(len(pairs)) if i % 2 == 0 else reversed(range(len(pairs)))
            for j in order:
                for k, f in enumerate(pairs[j]):
                    t = time.perf_counter()
                    f()
                    times[i, j, k] = time.perf_counter() - t
        return np.median(times, axis=0)

    def measure(estimator, covariance_type, rounds):
        pairs = [pair(package, estimator, covariance_type) for package in packages.values()]
        for _ in range(rounds):
            for label, (kernel, call) in zip(packages, paired(pairs), strict=True):
                print(
                    f"{label}1e4 x 16 float32, K=16, {estimator} {covariance_type}"
                    f"{f' after {seen} batches' if seen else ''}: E-step "
                    f"pass {kernel * 1e3:.3f} ms, partial_fit {call * 1e3:.3f} ms: overhead "
                    f"{(call - kernel) * 1e6:.0f} us, "
                    f"{100 * (call / kernel - 1):.0f}% of the kernel time"
                )

    measure("GaussianMixture", "diag", 3)
    measure("BayesianGaussianMixture", "diag", 3)
    for estimator in ("GaussianMixture", "BayesianGaussianMixture"):
        for covariance_type in ("spherical", "tied-diagonal", "full", "tied"):
            measure(estimator, covariance_type, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", help="default: /tmp/fastmix-online[-S].f32, S the mean scale")
    parser.add_argument("--n-samples", type=int, default=100_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument(
        "--seen", type=int, default=0, help="with --overhead: batches each model sees first"
    )
    parser.add_argument(
        "--vs",
        metavar="TREE",
        help="with --overhead: time TREE's fastmix too (a checkout, e.g. a git worktree), "
        "interleaved in this process",
    )
    parser.add_argument(
        "--mean-scale",
        type=float,
        default=4.0,
        help="standard deviation of the component means (4: well separated; "
        "0.5: overlapping, many batch iterations)",
    )
    parser.add_argument(
        "--evict",
        action="store_true",
        help="drop the file from the page cache before each fit (POSIX_FADV_DONTNEED), "
        "so that each starts from the disk, as a file larger than memory would",
    )
    parser.add_argument(
        "--runs",
        default="online,batch",
        help="which fits to run and time, of online and batch (default: both; "
        "the held-out comparison needs both)",
    )
    args = parser.parse_args(argv)
    chosen = args.runs.split(",")
    if not chosen or not set(chosen) <= {"online", "batch"}:
        parser.error(f"--runs {args.runs}: name online, batch or both, separated by a comma")
    if args.vs and not args.overhead:
        parser.error("--vs compares partial_fit's overhead: give --overhead too")
    if args.overhead:
        overhead(args.vs, args.seen)
        return
    if args.path is None:
        tail = "" if args.mean_scale == 4.0 else f"-{args.mean_scale:g}"
        args.path = f"/tmp/fastmix-online{tail}.f32"
    expected = args.n_samples * N_FEATURES * 4
    if not os.path.exists(args.path) or os.path.getsize(args.path) != expected:
        t = time.perf_counter()
        write_file(args.path, args.n_samples, args.mean_scale)
        print(f"wrote {args.path} ({expected / 1e9:.1f} GB) in {time.perf_counter() - t:.0f} s")
    common = [
        sys.executable, "-m", "fastmix", "fit", args.path,
        "--shape", f"{args.n_samples},{N_FEATURES}", "--dtype", "float32",
        "-k", str(N_COMPONENTS), "--covariance-type", "diag", "--json", "--progress", "none",
    ]  # fmt: skip
    runs = {
        "online": [*common, "--online", "--batch-size", str(args.batch_size),
                   "--passes", str(args.passes), "--out", "/tmp/fastmix-online.npz"],
        "batch": [*common, "--out", "/tmp/fastmix-batch.npz"],
    }  # fmt: skip
    runs = {name: runs[name] for name in chosen}
    wall = {}
    if args.evict:
        # The floor of any one-pass fit: reading DATA once from the disk.
        _evict(args.path)
        t = time.perf_counter()
        n_bytes = _read_once(args.path)
        wall["read"] = time.perf_counter() - t
        print(f"  read: {wall['read']:8.1f} s wall ({n_bytes / 1e9:.1f} GB once, from the disk)")
    for name, cmd in runs.items():
        if args.evict:
            _evict(args.path)
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall[name] = time.perf_counter() - t
        summary = json.loads(done.stdout)
        print(
            f"{name:>6}: {wall[name]:8.1f} s wall (fit {summary['seconds']:.1f} s), "
            f"n_iter {summary['n_iter']}, lower bound {summary['lower_bound']:.5f}"
        )
    if len(runs) < 2:
        return
    import fastmix

    held_out = _draw(200_000, np.random.default_rng(3), _mixture(mean_scale=args.mean_scale))
    online = fastmix.load("/tmp/fastmix-online.npz").score(held_out)
    batch = fastmix.load("/tmp/fastmix-batch.npz").score(held_out)
    print(
        f"held-out log-likelihood per row: online {online:.5f}, batch {batch:.5f}, "
        f"difference {online - batch:+.5f}; "
        f"time online / batch {wall['online'] / wall['batch']:.3f}"
    )
    if "read" in wall:
        print(f"reading DATA once / batch {wall['read'] / wall['batch']:.3f}")


def _evict(path):
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def _read_once(path, chunk=64 * 2**20):
    buffer = bytearray(chunk)
    n_bytes = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            n_bytes += n
    return n_bytes


if __name__ == "__main__":
    main()
