"""float32 data's k-means start: scikit-learn's float32 KMeans against fastmix's float64 one.

Usage (from the repository root)::

    python benchmarks/kmeans_float32_start.py                 # 2e5 x 64, K = 256
    python benchmarks/kmeans_float32_start.py -n 1e6 -d 16 -k 16 --repeats 3

Evidence for a planning decision (issue 12's whole-fit float32 target).
For float32 data fastmix's default start runs scikit-learn's ``KMeans``
itself, in float32, whose labels fastmix's kernels cannot reproduce. The
alternative is fastmix's exact float64 k-means on the same float32 values.
It reproduces scikit-learn's *float64* labels for those values, and no
other labels.

On the benchmark data (``fastmix bench``'s mixture cast to float32), the
script times both and reports:

- the share of equal labels and the adjusted Rand index between the two
  clusterings;
- whether fastmix's float64 labels equal scikit-learn's float64
  ``KMeans`` labels.

Written as today's code would run it: on a float64 copy of X.
"""

import argparse
import time

import _perf_common as pc
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from fastmix._kmeans import kmeans


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n-samples", type=lambda s: int(float(s)), default=200_000)
    parser.add_argument("-d", "--n-features", type=int, default=64)
    parser.add_argument("-k", "--n-components", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    n, d, k = args.n_samples, args.n_features, args.n_components
    X32 = pc.make_data(n, d, k, "float32")
    X64 = np.ascontiguousarray(X32, dtype=np.float64)  # the same values, exactly
    kmeans(X64[: max(64, 20 * k)], k, np.random.RandomState(0))  # compile or load the kernels
    t64, t32 = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        lab64, _ = kmeans(X64, k, np.random.RandomState(0))
        t64.append(time.perf_counter() - t)
        t = time.perf_counter()
        lab32, _ = kmeans(X32, k, np.random.RandomState(0))  # scikit-learn's float32 KMeans
        t32.append(time.perf_counter() - t)
    sk64 = KMeans(k, n_init=1, random_state=np.random.RandomState(0)).fit(X64).labels_
    pc.say(
        f"{n:,} x {d}, K = {k}: fastmix float64 k-means {pc.median(t64):.2f} s, "
        f"scikit-learn float32 KMeans {pc.median(t32):.2f} s (medians of {args.repeats}); "
        f"labels equal {np.mean(lab64 == lab32):.2%}, adjusted Rand index "
        f"{adjusted_rand_score(lab32, lab64):.4f}; fastmix float64 labels equal to "
        f"scikit-learn's float64 KMeans: {np.array_equal(lab64, sk64)}"
    )
    pc.say(f"load average at the end: {pc.loadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
