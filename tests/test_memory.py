"""Fitting never holds an (n_samples, n_components) array.

tracemalloc sees every NumPy buffer, so the peak of what a fit allocates on top
of the data is bounded well below one (n, K) float64 array, for every
initialisation and both estimators. (The kernels' per-chunk scratch lives in
numba's allocator and is O(chunk x (K + D)), independent of n.)
"""

import tracemalloc

import numpy as np
import pytest
from conftest import (
    COV_TYPES,
    INIT_PARAMS,
    explicit_init,
    fit_quiet,
    labelled_blobs,
    run_python,
)

from fastmix import BayesianGaussianMixture, GaussianMixture

N_SAMPLES, N_FEATURES, N_COMPONENTS = 300_000, 3, 32
ONE_RESP_ARRAY = N_SAMPLES * N_COMPONENTS * 8  # 76.8 MB


@pytest.fixture(scope="module")
def X():
    return labelled_blobs(0, N_SAMPLES, N_FEATURES, N_COMPONENTS, spread=6.0)


def _peak_bytes(fit):
    fit()  # compile (or load) the kernels outside the measurement
    tracemalloc.start()
    try:
        fit()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _explicit(covariance_type):
    """Equal weights, identity precisions, means drawn as the data's centres are (seed 1)."""
    means = np.random.default_rng(1).normal(0.0, 6.0, (N_COMPONENTS, N_FEATURES))
    return explicit_init(covariance_type, means, N_COMPONENTS)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_from_explicit_init_allocates_no_responsibility_matrix(X, covariance_type):
    model = GaussianMixture(
        N_COMPONENTS, covariance_type=covariance_type, max_iter=3, tol=0.0,
        **_explicit(covariance_type),
    )  # fmt: skip

    def fit():
        fit_quiet(model, X)

    peak = _peak_bytes(fit)
    # The fit's own arrays are K-sized; a single (n, K) array would be 77 MB.
    assert peak < ONE_RESP_ARRAY / 8, peak


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture], ids=["em", "vi"])
@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_fit_from_each_init_allocates_less_than_a_responsibility_matrix(X, estimator, init_params):
    model = estimator(
        n_components=N_COMPONENTS, covariance_type="diag", init_params=init_params,
        max_iter=2, tol=0.0, random_state=0,
    )  # fmt: skip

    def fit():
        fit_quiet(model, X)

    peak = _peak_bytes(fit)
    if init_params in ("kmeans", "k-means++"):
        # k-means++ keeps (n_trials ~ 2 + log K, n) distances, in fastmix's
        # k-means as in scikit-learn's (which also copies X, and which fastmix
        # runs on a near tie or for k-means++): O(n (D + log K)), ~31 MB here;
        # fastmix adds (n,) labels and (block, K) temporaries.
        assert peak < ONE_RESP_ARRAY, peak
    else:
        # Responsibilities are streamed 8,192 rows at a time (random init).
        assert peak < ONE_RESP_ARRAY / 4, peak


def test_weighted_float32_fit_makes_no_float64_copy_of_x(X):
    """The weighted centre of the start was np.average of X whole: w * X, a
    float64 copy of float32 data (and a temporary the size of float64 X)."""
    X32 = np.hstack([X] * 4).astype(np.float32)  # 12 features: a float64 copy is 28.8 MB
    w = np.random.RandomState(0).randint(1, 3, size=len(X)).astype(np.float64)
    model = GaussianMixture(N_COMPONENTS, covariance_type="diag", max_iter=2, tol=0.0)
    model.set_params(init_params="random_from_data", random_state=0)
    peak = _peak_bytes(lambda: fit_quiet(model, X32, sample_weight=w))
    # (n,) float64 and int64 arrays of the weights' checks and draw: a few MB.
    assert peak < X32.nbytes, peak


@pytest.mark.parametrize("source", ["memmap", "dask"])
def test_random_start_of_a_large_memmap_or_small_dask_array_is_streamed(X, tmp_path, source):
    """'random' responsibilities in bounded pieces of rows: a memmap's blocks
    (4 MiB of rows, whatever K) held 2.4 (n, K) arrays of temporaries at
    600,000 x 2, K = 32; a dask array within the init sample drew its whole
    (n, K) on the client. The draw is still scikit-learn's (test_dask's
    test_dask_small_data_initialises_like_scikit_learn)."""
    if source == "memmap":
        data = np.lib.format.open_memmap(
            tmp_path / "x.npy", mode="w+", dtype=X.dtype, shape=X.shape
        )
        data[:] = X
        data.flush()
        data = np.load(tmp_path / "x.npy", mmap_mode="r")
        k = N_COMPONENTS
    else:
        da = pytest.importorskip("dask.array")
        # Within the init sample (scikit-learn's draw); K large enough that an
        # (n, K) array (205 MB) stands out from two threads' pieces of rows.
        data, k = da.from_array(X[:100_000], chunks=50_000), 256
    model = GaussianMixture(k, covariance_type="diag", init_params="random")
    model.set_params(max_iter=1, tol=0.0, random_state=0)
    peak = _peak_bytes(lambda: fit_quiet(model, data))
    one_resp_array = data.shape[0] * k * 8
    assert peak < one_resp_array / 4, (peak, one_resp_array)


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture], ids=["em", "vi"])
def test_partial_fit_allocates_no_responsibility_matrix(X, estimator):
    """An online step over all the rows: K-sized state, no (n, K) array; the online
    state kept between calls (online_stats_) is O(K D^2)."""
    model = estimator(n_components=N_COMPONENTS, covariance_type="full", random_state=0)
    model.partial_fit(X[:5000])

    def step():
        model.partial_fit(X)

    peak = _peak_bytes(step)
    assert peak < ONE_RESP_ARRAY / 8, peak
    state = sum(a.nbytes for a in model.online_stats_)
    assert state <= 8 * (N_COMPONENTS * (N_FEATURES**2 + 2 * N_FEATURES + 1) + 4), state


# predict_proba of a float32 memmap: peak resident memory beyond what the
# process held before, against the (n, K) float32 result itself.
_PROBA_PEAK = r"""
import gc, json, sys, warnings
import numpy as np
from fastmix import GaussianMixture

path, n, d, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rs = np.random.RandomState(0)
X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
for start in range(0, n, 100_000):
    stop = min(start + 100_000, n)
    X[start:stop] = rs.normal(0.0, 3.0, (stop - start, d))
X.flush()
del X
X = np.load(path, mmap_mode="r")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gm = GaussianMixture(k, max_iter=2, random_state=0).fit(np.array(X[:5000]))
# Compile (or load) the kernels first, the parallel ones included: compiling
# inside the measurement would count LLVM's memory.
gm.predict_proba(X[:40_000])


def status_bytes(field):
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


gc.collect()
# Reset the high-water mark (Linux >= 4.0), so that a peak of the set-up (LLVM
# compiling the kernels on a cold cache) is not counted; getrusage's ru_maxrss
# would keep it.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status_bytes("VmRSS")
proba = gm.predict_proba(X)
peak = status_bytes("VmHWM")
print(json.dumps({"extra": peak - before, "output": proba.nbytes, "dtype": proba.dtype.str}))
"""


def test_predict_proba_on_a_memmap_peaks_near_its_output(tmp_path):
    """No whole-data float64 temporaries beside the float32 result (main held
    five times the result: float64 log-responsibilities, their exp, the cast)."""
    out = run_python(_PROBA_PEAK, str(tmp_path / "X.npy"), "2000000", "4", "16", timeout=300)
    assert out["dtype"] == "<f4"
    assert out["extra"] <= 1.5 * out["output"], out
