"""A fitted model's per-row outputs against scikit-learn's on the same parameters.

Usage (from the repository root)::

    python benchmarks/predict_timing.py                          # 1e6 x 16, K = 16, diag
    python benchmarks/predict_timing.py -n 2e5 -d 64 -k 256 --covariance-type full
    PYTHONPATH=/tmp/base python benchmarks/predict_timing.py     # another tree's fastmix

Fits fastmix's ``GaussianMixture`` for one EM iteration from the explicit
start (``fastmix bench``'s data and start), gives scikit-learn's estimator its
fitted attributes, then prints the medians of ``score_samples``, ``predict``
and ``predict_proba`` (fastmix), scikit-learn's ``score_samples`` and
``predict_proba``, and the ratios, each library on all cores. For an A/B of
two trees, run it with each tree on ``PYTHONPATH`` in alternating processes.
"""

import argparse
import time
import warnings

import _perf_common as pc
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastmix import GaussianMixture


def median_seconds(func, repeats):
    func()  # warm: compiled or loaded kernels, page-faulted outputs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return pc.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--n-samples", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("-d", "--n-features", type=int, default=16)
    parser.add_argument("-k", "--n-components", type=int, default=16)
    parser.add_argument("--covariance-type", default="diag", choices=pc.COVARIANCE_TYPES)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    info = pc.machine()
    pc.say(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    n, d, k, cov = args.n_samples, args.n_features, args.n_components, args.covariance_type
    X = pc.make_data(n, d, k, args.dtype)
    params = pc.gmm_params(k, cov, X, iters=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GaussianMixture(**params).fit(X)
    reference = SkGaussianMixture(**params)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        setattr(reference, name, getattr(model, name))
    ours = {
        call: median_seconds(lambda call=call: getattr(model, call)(X), args.repeats)
        for call in ("score_samples", "predict", "predict_proba")
    }
    theirs = {
        call: median_seconds(lambda call=call: getattr(reference, call)(X), args.repeats)
        for call in ("score_samples", "predict_proba")
    }
    pc.say(
        f"{n:,} x {d}, K = {k}, {cov}, {args.dtype}: fastmix score_samples "
        f"{ours['score_samples'] * 1e3:.1f} ms, predict {ours['predict'] * 1e3:.1f} ms, "
        f"predict_proba {ours['predict_proba'] * 1e3:.1f} ms; scikit-learn score_samples "
        f"{theirs['score_samples'] * 1e3:.1f} ms = "
        f"{theirs['score_samples'] / ours['score_samples']:.2f}x, predict_proba "
        f"{theirs['predict_proba'] * 1e3:.1f} ms = "
        f"{theirs['predict_proba'] / ours['predict_proba']:.2f}x"
    )
    pc.say(f"load average at the end: {pc.loadavg()}")


if __name__ == "__main__":
    main()
