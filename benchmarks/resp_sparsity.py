"""How many of a row's responsibilities matter: the case for ``min_responsibility``.

Usage (from the repository root)::

    python benchmarks/resp_sparsity.py                  # D x K = 64x256 and 40x1024
    python benchmarks/resp_sparsity.py --shapes 16x16 --iters 1,4

Fits the benchmark data of ``large_k_vs_sklearn.py`` (``fastmix bench``'s
mixture, 200,000 rows) from its explicit start for each ``--iters`` count,
then, on the first ``--rows`` rows, forms the responsibilities densely in
NumPy and reports: the share that is exactly zero in float64 (what exact EM
could skip), the non-zeros per row, the responsibilities above 1e-8 per row
(what ``min_responsibility=1e-8`` keeps), and the share of (512-row chunk,
component) pairs with any non-zero (the chunks the moments cannot skip).
"""

import argparse
import warnings

import _perf_common as pc
import numpy as np
from scipy.special import logsumexp

from fastmix import GaussianMixture


def responsibilities(gm, X):
    """Dense diagonal responsibilities in float64 (NumPy, not fastmix's kernels)."""
    prec = 1.0 / gm.covariances_
    logp = (
        -0.5 * (((X[:, None, :] - gm.means_[None]) ** 2) * prec[None]).sum(-1)
        + 0.5 * np.log(prec).sum(1)
        + np.log(gm.weights_)
    )
    return np.exp(logp - logsumexp(logp, axis=1, keepdims=True))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="64x256,40x1024", help="DxK[,DxK...]")
    parser.add_argument("--iters", default="1,4,20", help="EM iterations before counting")
    parser.add_argument("-n", "--n-samples", type=lambda s: int(float(s)), default=200_000)
    parser.add_argument("--rows", type=int, default=20_480, help="rows counted (whole chunks)")
    args = parser.parse_args(argv)
    for shape in args.shapes.split(","):
        d, k = (int(v) for v in shape.lower().split("x"))
        X = pc.make_data(args.n_samples, d, k, "float64")
        rows = X[: args.rows // 512 * 512]
        for iters in (int(v) for v in args.iters.split(",")):
            gm = GaussianMixture(**pc.gmm_params(k, "diag", X, iters))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(X)
            r = responsibilities(gm, rows)
            nz = r != 0
            chunks = nz.reshape(-1, 512, k).any(axis=1)
            pc.say(
                f"{d} x {k}, {iters:>3} iterations: exactly zero {1 - nz.mean():.2%}, "
                f"non-zero per row {nz.sum(1).mean():.1f} of {k}, "
                f"above 1e-8 per row {(r > 1e-8).sum(1).mean():.2f}, "
                f"(chunk, component) pairs with a non-zero {chunks.mean():.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
