"""fastmix against scikit-learn with pytest-benchmark, side by side per case.

Skipped by default (``--benchmark-skip`` in pyproject's addopts); run with::

    python -m pytest tests/benchmarks --benchmark-only

Each case (covariance type, dtype) is one benchmark group holding a fastmix and
a scikit-learn row, both fitting the same data from the same explicit
initialisation with ``n_init=1``, ``max_iter=ITERS`` and ``tol=0``, so both do
exactly ITERS EM iterations. fastmix's kernels are compiled (or loaded from
numba's cache) on a tiny input before anything is timed.
"""

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastmix import GaussianMixture
from fastmix._synthetic import bench_problem, explicit_init

N_SAMPLES = 200_000
N_FEATURES = 16
N_COMPONENTS = 16
ITERS = 5
ROUNDS = 3
COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = ["float64", "float32"]
LIBRARIES = {"fastmix": GaussianMixture, "sklearn": SkGaussianMixture}


@pytest.fixture(scope="module", params=DTYPES)
def problem(request):
    dtype = request.param
    X = bench_problem(N_SAMPLES, N_FEATURES, N_COMPONENTS, dtype, seed=0)
    init = explicit_init(X, N_COMPONENTS, COVARIANCE_TYPES, seed=0)
    # Warm every fastmix dispatcher for this dtype: small blocks of rows run a
    # serial kernel and larger ones its parallel twin, so two sizes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_rows in (2 * N_COMPONENTS, 4096):
            tiny = np.ascontiguousarray(X[:n_rows])
            for cov_type in COVARIANCE_TYPES:
                GaussianMixture(
                    N_COMPONENTS, covariance_type=cov_type, max_iter=1, **init[cov_type]
                ).fit(tiny).predict(tiny)
    return dtype, X, init


@pytest.mark.parametrize("library", list(LIBRARIES))
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fit(benchmark, problem, covariance_type, library):
    dtype, X, init = problem
    benchmark.group = f"fit {covariance_type} {dtype} {N_SAMPLES}x{N_FEATURES} K={N_COMPONENTS}"
    benchmark.extra_info.update(iterations=ITERS, library=library)
    estimator = LIBRARIES[library](
        n_components=N_COMPONENTS,
        covariance_type=covariance_type,
        n_init=1,
        max_iter=ITERS,
        tol=0.0,
        **init[covariance_type],
    )

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0: the ConvergenceWarning is expected
            return estimator.fit(X)

    fitted = benchmark.pedantic(fit, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    assert fitted.n_iter_ == ITERS
    assert np.isfinite(fitted.lower_bound_)
    benchmark.extra_info["lower_bound"] = float(fitted.lower_bound_)
    benchmark.extra_info["seconds_per_iteration"] = benchmark.stats.stats.median / ITERS
