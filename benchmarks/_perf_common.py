"""Shared pieces of the performance scripts in ``benchmarks/`` (see docs/performance.md).

The data, the explicit initialisation and the FLOP model are ``fastmix bench``'s
own, from :mod:`fastmix._synthetic` (the asv suite keeps a copy of its own: same
seed, same draws). Every script prints the machine, the versions and the load
average before and after its measurements, and can write JSON.
"""

import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

from fastmix._synthetic import bench_problem
from fastmix._synthetic import explicit_init as _explicit_init

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
    return bench_problem(n_samples, n_features, n_components, dtype, seed)


def explicit_init(X, n_components, covariance_type, seed=0):
    """``weights_init``, ``means_init``, ``precisions_init`` (as ``fastmix bench``)."""
    return _explicit_init(X, n_components, [covariance_type], seed)[covariance_type]


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
