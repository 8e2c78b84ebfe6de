"""Determinism: the same seed gives bitwise the same model on 1 thread or 2.

numba fixes its thread count at import, so each setting runs in its own
subprocess (``NUMBA_NUM_THREADS`` in the environment); one subprocess fits every
covariance type, float64 and float32, with and without sample weights, and
prints sha256 hashes of the fitted arrays' bytes and of the prediction outputs.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_python

# 5000 rows are ten kernel chunks of 512 rows: enough for the chunks to be
# spread over both threads and summed, which is what must not depend on the
# thread count. Small calls normally run on the calling thread; the script
# switches that off so the parallel kernels are what is compared.
SCRIPT = r"""
import hashlib, json, warnings

import numba
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

import fastmix._sources._driver
from fastmix import GaussianMixture

fastmix._sources._driver._SERIAL_WORK = 0

X, _ = make_blobs(n_samples=5000, n_features=4, centers=3, cluster_std=2.0, random_state=0)
weights = np.random.RandomState(1).uniform(0.0, 3.0, X.shape[0])


def digest(a):
    a = np.ascontiguousarray(a)
    return a.dtype.str + ":" + hashlib.sha256(a.tobytes()).hexdigest()


out = {"threads": numba.get_num_threads(), "fits": {}}
for covariance_type in ("full", "tied", "diag", "spherical"):
    for dtype in ("float64", "float32"):
        for weighted in (False, True):
            Xd = X.astype(dtype)
            gm = GaussianMixture(
                3, covariance_type=covariance_type, tol=0.0, max_iter=8, random_state=0
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                labels = gm.fit_predict(Xd, sample_weight=weights if weighted else None)
            key = f"{covariance_type}-{dtype}-{'weighted' if weighted else 'unweighted'}"
            out["fits"][key] = {
                "weights_": digest(gm.weights_),
                "means_": digest(gm.means_),
                "covariances_": digest(gm.covariances_),
                "precisions_cholesky_": digest(gm.precisions_cholesky_),
                "lower_bound_": repr(float(gm.lower_bound_)),
                "lower_bounds_": repr([float(v) for v in gm.lower_bounds_]),
                "n_iter_": gm.n_iter_,
                "fit_predict": digest(labels),
                "score_samples": digest(gm.score_samples(Xd)),
                "predict_proba": digest(gm.predict_proba(Xd)),
            }
print(json.dumps(out))
"""


def _run(n_threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n_threads))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_fit_is_bitwise_identical_on_1_and_2_threads():
    one = _run(1)
    two = _run(2)
    assert one["threads"] == 1
    assert two["threads"] == 2
    assert len(one["fits"]) == 16
    assert one["fits"].keys() == two["fits"].keys()
    mismatches = [
        (key, name)
        for key, fit in one["fits"].items()
        for name, value in fit.items()
        if two["fits"][key][name] != value
    ]
    assert not mismatches
    # The hashes compare something: the fits differ between settings.
    assert len({fit["means_"] for fit in one["fits"].values()}) == 16


# Fits of a GaussianMixture in Python threads and in worker processes, hashed.
# Small calls normally run on the calling thread; the script switches that off
# so that every E-step and k-means launch asks for the thread pool.
_FITS = r"""
import hashlib, json, multiprocessing, sys, warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info

import fastmix._sources._driver
from fastmix import GaussianMixture

fastmix._sources._driver._SERIAL_WORK = 0
rs = np.random.RandomState(0)
X = np.concatenate([rs.normal(c, 1.0, (3000, 4)) for c in (0.0, 4.0, 8.0)])


def fit(seed):
    gm = GaussianMixture(3, max_iter=3, tol=0.0, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    arrays = (gm.means_, gm.covariances_, gm.weights_, gm.predict_proba(X), gm.score_samples(X))
    return hashlib.sha256(b"".join(a.tobytes() for a in arrays)).hexdigest()


def limits():
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())


if __name__ == "__main__":
    sequential = [fit(seed) for seed in range(4)]
    out = {}
    if sys.argv[1] == "threads":
        # After the sequential fits: numba's OpenMP runtime is loaded by then.
        found = limits()
        with ThreadPoolExecutor(4) as pool:
            out["threads"] = list(pool.map(fit, range(4))) == sequential
        out["limits_kept"] = limits() == found
    else:
        for method in sys.argv[1:]:
            with multiprocessing.get_context(method).Pool(2) as pool:
                out[method] = pool.map(fit, range(4)) == sequential
    print(json.dumps(out))
"""


@pytest.mark.parametrize("layer", ["workqueue", "omp"])
def test_concurrent_fits_in_threads(layer):
    """Fits in several Python threads neither crash the process (workqueue
    aborts on concurrent parallel launches) nor change a bit of any result,
    and leave the BLAS / OpenMP thread limits as they found them."""
    out = run_python(_FITS, "threads", env={"NUMBA_THREADING_LAYER": layer}, timeout=300)
    assert out == {"threads": True, "limits_kept": True}


def test_fits_in_worker_processes():
    """A child forked after the parent fitted runs the serial kernels (GNU
    OpenMP aborts in a forked child); spawn and forkserver keep working."""
    out = run_python(_FITS, "fork", "spawn", "forkserver", timeout=300)
    assert out == {"fork": True, "spawn": True, "forkserver": True}


# BLAS thread control after fits: another thread's threadpool_limits, and a
# child forked while a fit holds BLAS to one thread.
_BLAS_CONTROL = r"""
import json, os, threading, warnings

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from fastmix import GaussianMixture
from fastmix._blas import single_threaded_blas


def blas():
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


X = np.random.RandomState(0).randn(3000, 4)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    GaussianMixture(2, random_state=0).fit(X)  # in this (main) thread
out = {"before": blas()}
seen = []


def limit_elsewhere():
    with threadpool_limits(limits=1, user_api="blas"):
        seen.append(blas())


thread = threading.Thread(target=limit_elsewhere)
thread.start()
thread.join()
out["other_thread_limit"] = seen[0]
# A fork while a fit (here: its BLAS limit) is in flight in another thread.
entered, leave = threading.Event(), threading.Event()


def fit_in_flight():
    with single_threaded_blas():
        entered.set()
        leave.wait()


thread = threading.Thread(target=fit_in_flight)
thread.start()
entered.wait()
out["during"] = blas()
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    with single_threaded_blas():
        pass  # the child's own fit
    os.write(write, json.dumps(blas()).encode())
    os._exit(0)
os.close(write)
out["child"] = json.loads(os.read(read, 1000))
os.waitpid(pid, 0)
leave.set()
thread.join()
out["after"] = blas()
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork")
def test_blas_thread_control_is_released_and_reset_in_forked_children():
    """threadpoolctl lets only the thread that first set a pthreads OpenBLAS's
    count set it again until released: fastmix never released it, so after a
    fit in the main thread another thread's threadpool_limits did nothing. A
    child forked while a fit held BLAS to one thread kept one thread for good."""
    # Two BLAS threads to limit, whatever this process's environment says
    # (a Dask test's LocalCluster nanny leaves OPENBLAS_NUM_THREADS=1 in os.environ:
    # distributed's pre-spawn-environ).
    two = {name: "2" for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")}
    out = run_python(_BLAS_CONTROL, env=two, timeout=300)
    if out["before"] in ([], [1]):
        pytest.skip(f"BLAS threads {out['before']}: nothing to limit")
    assert out["other_thread_limit"] == [1]
    assert out["during"] == [1]
    assert out["child"] == out["before"]
    assert out["after"] == out["before"]


def test_kmeans_serial_twins_are_bitwise_the_parallel_kernels():
    from fastmix._kernels import kmeans as kk

    rs = np.random.RandomState(0)
    X = rs.normal(size=(9000, 5))
    mean = X.mean(axis=0)
    w = rs.uniform(0.5, 2.0, X.shape[0])
    centres = X[:4] - mean
    for name in ("column_moments",):
        par, ser = getattr(kk, name)(X), getattr(kk, name + "_serial")(X)
        for a, b in zip(par, ser, strict=True):
            assert np.array_equal(a, b)
    closest = np.full(X.shape[0], np.inf)
    every = np.empty(0, dtype=np.int32), np.empty(0)
    d1, d2 = np.empty((4, X.shape[0])), np.empty((4, X.shape[0]))
    assert np.array_equal(
        kk.seed_trial(X, mean, w, closest, centres, d1, *every),
        kk.seed_trial_serial(X, mean, w, closest, centres, d2, *every),
    )
    assert np.array_equal(d1, d2)
    results = []
    for kernel in (kk.lloyd_pass, kk.lloyd_pass_serial):
        labels = np.zeros(X.shape[0], dtype=np.int32)
        sums, weights = np.empty((4, 5)), np.empty(4)
        shift, upper, lower = np.full(4, 0.01), np.full(X.shape[0], np.inf), np.zeros(X.shape[0])
        kernel(X, mean, w, centres, labels, sums, weights, np.zeros(3), shift, upper, lower)
        # A second pass on the bounds the first left.
        counts = kernel(
            X, mean, w, centres, labels, sums, weights, np.zeros(3), shift, upper, lower
        )
        results.append((labels, sums, weights, np.array(counts), upper, lower))
    for a, b in zip(*results, strict=True):
        assert np.array_equal(a, b)
