"""Shared pieces of the performance scripts in ``benchmarks/`` (see docs/performance.md).

The data and the explicit initialisation are the same as ``fastmix bench``'s and
the asv suite's (same seed, same draws), written out here so that the scripts
depend on neither. Every script prints the machine, the versions and the load
average before and after its measurements, and can write JSON.
"""

import json
import math
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


# ------------------------------------------------------------------------ data
def aligned(shape, dtype=np.float64):
    """Zeroed array of ``shape`` whose data start on a 64-byte boundary, as the
    kernels' own scratch: an unaligned buffer moves a kernel's time by 10-30%."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape))
    buf = np.zeros(size + 64 // dtype.itemsize, dtype=dtype)
    off = (-buf.ctypes.data % 64) // dtype.itemsize
    return buf[off : off + size].reshape(shape)


def make_data(n_samples, n_features, n_components, dtype="float64", seed=0):
    """Rows of a random full-covariance Gaussian mixture (as ``fastmix bench``).

    Drawn in float64 and returned C-contiguous in ``dtype``, so float32 and
    float64 runs see the same points.
    """
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(n_components, 4.0))
    means = rng.normal(scale=3.0, size=(n_components, n_features))
    a = rng.standard_normal((n_components, n_features, n_features)) / math.sqrt(n_features)
    covariances = a @ np.swapaxes(a, 1, 2) + 0.25 * np.eye(n_features)
    labels = rng.choice(n_components, size=n_samples, p=weights)
    X = rng.standard_normal((n_samples, n_features))
    for k in range(n_components):
        rows = labels == k
        X[rows] = X[rows] @ np.linalg.cholesky(covariances[k]).T + means[k]
    return np.ascontiguousarray(X, dtype=dtype)


def _covariance(X, block=65536):
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


def explicit_init(X, n_components, covariance_type, seed=0):
    """``weights_init``, ``means_init``, ``precisions_init`` (as ``fastmix bench``)."""
    n_samples, n_features = X.shape
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n_samples, size=n_components, replace=False))
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
    }[covariance_type]
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": np.asarray(X[rows], dtype=np.float64),
        "precisions_init": precisions,
    }


def gmm_params(n_components, covariance_type, X, iters, seed=0):
    """Fixed-work GaussianMixture parameters: explicit init, n_init=1, tol=0."""
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        n_init=1,
        max_iter=iters,
        tol=0.0,
        **explicit_init(X, n_components, covariance_type, seed),
    )


def bgmm_params(n_components, covariance_type, iters, seed=0):
    """Fixed-work BayesianGaussianMixture parameters (random_from_data, fixed seed)."""
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        n_init=1,
        max_iter=iters,
        tol=0.0,
        init_params="random_from_data",
        random_state=seed,
    )


# ---------------------------------------------------------------------- timing
def timed_fit(estimator, X):
    """Seconds of ``estimator.fit(X)`` (warnings silenced: tol=0 never converges)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        estimator.fit(X)
        return time.perf_counter() - t0


def warm_continuation(estimator, X, iters):
    """Initialise (``max_iter=0``, untimed), then time ``iters`` warm-started iterations.

    Both fastmix and scikit-learn skip the initialisation on a warm start, so
    the timed fit is exactly ``iters`` iterations (plus, for scikit-learn, its
    final E-step). Returns (seconds per iteration, fitted estimator).
    """
    estimator.set_params(max_iter=0, warm_start=False)
    timed_fit(estimator, X)
    estimator.set_params(max_iter=iters, warm_start=True)
    seconds = timed_fit(estimator, X)
    return seconds / max(estimator.n_iter_, 1), estimator


def warm_fastmix(covariance_types, dtype, n_features, n_components, bayesian=False):
    """Compile (or load from numba's cache) the kernels a fit uses, on tiny inputs.

    Two sizes: a small block runs the serial kernel, a larger one (big enough
    for the parallel threshold even for diag) its parallel twin.
    """
    import fastmix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_rows in (max(4 * n_components, 64), 32768):
            X = make_data(n_rows, n_features, n_components, dtype, seed=1)
            for cov in covariance_types:
                fastmix.GaussianMixture(**gmm_params(n_components, cov, X, 1, seed=1)).fit(X)
                if bayesian:
                    fastmix.BayesianGaussianMixture(**bgmm_params(n_components, cov, 1)).fit(X)


def scalar(value):
    """A float from a number or a one-element array."""
    return float(np.ravel(value)[0])


def median(values):
    return statistics.median(values)


# ------------------------------------------------------------------- the machine
def loadavg():
    return [round(v, 2) for v in os.getloadavg()]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions():
    import numba
    import sklearn
    import threadpoolctl

    import fastmix

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scikit-learn": sklearn.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "fastmix": fastmix.__version__,
    }


def machine():
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "loadavg": loadavg(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "versions": versions(),
    }


def say(*args, **kwargs):
    print(*args, **kwargs, flush=True)


def dump_json(document, path):
    if path == "-":
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif path:
        with open(path, "w") as f:
            json.dump(document, f, indent=2)
            f.write("\n")


# ---------------------------------------------------------------------- memory
def memory_kib():
    """This process's current and peak resident set (``VmRSS``, ``VmHWM``) in KiB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                values[key] = int(value.split()[0])
    return values["VmRSS"], values["VmHWM"]


def reset_peak_rss():
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def parse_counts(text):
    """``"1e5,1e6"`` -> [100000, 1000000]."""
    return [int(float(t)) for t in text.split(",") if t.strip()]
