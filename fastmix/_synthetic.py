"""Synthetic mixtures of the demo and the benchmarks, their explicit start and their cost.

``fastmix demo``, ``fastmix bench``, the scripts in ``benchmarks/`` and the
tests that rebuild their data all draw from here, so that one seed means the
same points everywhere. NumPy only: importing this module imports neither the
estimators nor matplotlib. (``asv_benchmarks/common.py`` keeps its own copy on
purpose, so that asv can still benchmark commits older than this module.)
"""

import math

import numpy as np

__all__ = [
    "DEMO_SEED",
    "DEMO_WEIGHTS",
    "bench_problem",
    "demo_mixture",
    "explicit_init",
    "flops_per_iteration",
    "sample_mixture",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

# The demo's truth: five 2-D components with distinct weights, drawn from a
# fixed seed so every run (and every test) sees the same mixture.
DEMO_SEED = 20240611
DEMO_WEIGHTS = (0.32, 0.25, 0.19, 0.14, 0.10)


def demo_mixture(seed=DEMO_SEED):
    """The demo's true mixture: 5 well-separated 2-D Gaussians.

    Weights are fixed and distinct; means lie near a circle of radius 6 (so
    neighbours are several standard deviations apart); each covariance has a
    random orientation and axis lengths, all drawn from ``seed``.

    Parameters
    ----------
    seed : int, default=DEMO_SEED
        Seed of the :class:`numpy.random.Generator` drawing means and covariances.

    Returns
    -------
    weights : ndarray of shape (5,)
    means : ndarray of shape (5, 2)
    covariances : ndarray of shape (5, 2, 2)
    """
    rng = np.random.default_rng(seed)
    n_components = len(DEMO_WEIGHTS)
    weights = np.array(DEMO_WEIGHTS)
    angles = 2 * np.pi * np.arange(n_components) / n_components + rng.uniform(-0.2, 0.2, 5)
    radii = 6.0 + rng.uniform(-0.5, 0.5, n_components)
    means = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1) + [1.0, -2.0]
    covariances = np.empty((n_components, 2, 2))
    for k in range(n_components):
        theta = rng.uniform(0.0, np.pi)
        major = rng.uniform(0.6, 1.4)
        minor = major * rng.uniform(0.25, 0.8)
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        covariances[k] = rot @ np.diag([major**2, minor**2]) @ rot.T
    return weights, means, covariances


def sample_mixture(n_samples, weights, means, covariances, rng):
    """Draw rows from a Gaussian mixture with full covariances.

    Parameters
    ----------
    n_samples : int
    weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    covariances : ndarray of shape (K, D, D)
    rng : numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, D), float64
    labels : ndarray of shape (n_samples,), int64
        The component each row was drawn from.
    """
    n_components, n_features = means.shape
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = rng.standard_normal((n_samples, n_features))
    for k in range(n_components):
        rows = labels == k
        X[rows] = X[rows] @ np.linalg.cholesky(covariances[k]).T + means[k]
    return X, labels


def bench_problem(n_samples, n_features, n_components, dtype="float64", seed=0):
    """Synthetic data for benchmarks: a random full-covariance mixture.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    dtype : {'float64', 'float32'}, default='float64'
        The returned array's dtype (drawn in float64, then cast, so float32
        and float64 runs see the same points).
    seed : int, default=0
        Seed of the :class:`numpy.random.Generator`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), C-contiguous
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 4.0))
    means = rng.normal(scale=3.0, size=(n_components, n_features))
    a = rng.standard_normal((n_components, n_features, n_features)) / math.sqrt(n_features)
    covariances = a @ np.swapaxes(a, 1, 2) + 0.25 * np.eye(n_features)
    X, _ = sample_mixture(n_samples, weights, means, covariances, rng)
    return np.ascontiguousarray(X, dtype=dtype)


def _covariance(X, block=65536):
    """Covariance of the rows of X in float64, a block of rows at a time (no full copy)."""
    n_samples, n_features = X.shape
    centre = np.asarray(X[: min(n_samples, block)], dtype=np.float64).mean(axis=0)
    s1 = np.zeros(n_features)
    s2 = np.zeros((n_features, n_features))
    for start in range(0, n_samples, block):
        d = np.asarray(X[start : start + block], dtype=np.float64) - centre
        s1 += d.sum(axis=0)
        s2 += d.T @ d
    mean = s1 / n_samples
    return (s2 - n_samples * np.outer(mean, mean)) / max(n_samples - 1, 1)


def explicit_init(X, n_components, covariance_types=COVARIANCE_TYPES, seed=0):
    """A deterministic explicit initialisation, the same for fastmix and scikit-learn.

    Uniform weights, means at ``n_components`` distinct rows of ``X`` chosen
    with ``seed``, and precisions from the covariance of all of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    covariance_types : iterable of str, default=scikit-learn's four
        Any of the six fastmix fits ('tied-diagonal' and 'tied-spherical' too).
    seed : int, default=0

    Returns
    -------
    init : dict
        ``{covariance_type: {"weights_init", "means_init", "precisions_init"}}``,
        float64 arrays, ready to pass as keyword arguments to either estimator.
    """
    n_samples, n_features = X.shape
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n_samples, size=n_components, replace=False))
    means = np.asarray(X[rows], dtype=np.float64)
    weights = np.full(n_components, 1.0 / n_components)
    cov = _covariance(X)
    cov += 1e-3 * np.trace(cov) / n_features * np.eye(n_features)
    precision = np.linalg.inv(cov)
    precision = 0.5 * (precision + precision.T)
    variances = np.diag(cov)
    precisions = {
        "full": np.broadcast_to(precision, (n_components, n_features, n_features)).copy(),
        "tied": precision,
        "diag": np.broadcast_to(1.0 / variances, (n_components, n_features)).copy(),
        "spherical": np.full(n_components, 1.0 / variances.mean()),
        "tied-diagonal": 1.0 / variances,
        "tied-spherical": np.float64(1.0 / variances.mean()),
    }
    return {
        cov_type: {
            "weights_init": weights,
            "means_init": means,
            "precisions_init": precisions[cov_type],
        }
        for cov_type in covariance_types
    }


def flops_per_iteration(covariance_type, n, d, k):
    """FLOPs of one E-step pass, by the two models quoted in docs/performance.md.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n, d, k : int
        Rows, features and components.

    Returns
    -------
    dense : int
        The dense model: for full, ``2 N K D^2`` for the densities plus the
        same again for the second moments (what a dense-GEMM implementation
        performs); for the other types the same as ``done``.
    done : int
        The arithmetic fastmix's kernel actually performs, leading terms only
        (a multiply-add counts 2, exponentials not counted):

        * full: triangular ``(x - mu_k) U_k`` is ``N K D(D+1)``, the upper
          triangle of the weighted second moment another ``N K D(D+1)``; plus
          the subtraction, squared norm, weighting and first moment, ``6 N K D``.
        * tied: one triangular product and one upper second moment per row,
          ``2 N D(D+1)``, plus ``6 N K D`` for the per-component distances and
          first moments.
        * diag / spherical: ``3 N K D`` for the densities (subtract, square,
          scale-add) and ``5 N K D`` for the first and second moments.
    """
    if covariance_type == "full":
        done = 2 * n * k * d * (d + 1) + 6 * n * k * d
        return 4 * n * k * d * d, done
    if covariance_type == "tied":
        done = 2 * n * d * (d + 1) + 6 * n * k * d
        return done, done
    done = 8 * n * k * d
    return done, done
