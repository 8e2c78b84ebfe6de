"""Benchmarks of ``fastmix.BayesianGaussianMixture``: fit time, memory, per-iteration
cost and the speed-up over scikit-learn's ``BayesianGaussianMixture``."""

import os
import warnings

import numpy as np
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

from fastmix import BayesianGaussianMixture

from .common import (
    MAX_ITER,
    N_COMPONENTS,
    N_FEATURES,
    Benchmark,
    Estimator,
    VersusReference,
    bayesian_fixed_work,
    make_data,
    timed_continuation,
)
from .mixture import COVARIANCE_TYPES, DTYPES, SIZES


def _data_file(n_samples, dtype):
    return f"bgmm_{n_samples}_{N_FEATURES}_{dtype}.npy"


def warm_bayesian(covariance_type, dtype, n_features=N_FEATURES, n_components=N_COMPONENTS):
    """Compile (or load from cache) every kernel a variational fit and a predict use.

    Tiny fits of the same dtype and layout as the benchmark's, at a serial and a
    parallel size (see :func:`~asv_benchmarks.mixture.warm_dispatchers`), run the
    E-step kernels (``fit``), the per-row kernels (``predict``), the default
    priors' moment passes and the variational update. scikit-learn gets a tiny
    fit too (imports and first calls), on the small input only: its cost would
    otherwise be paid again in every benchmark's setup.
    """
    params = bayesian_fixed_work(n_components, covariance_type, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_rows in (max(2 * n_components, 64), 32768):
            X = make_data(n_rows, n_features, n_components, dtype, seed=1)
            BayesianGaussianMixture(**params).fit(X).predict(X)
            if n_rows < 32768:
                SkBayesianGaussianMixture(**params).fit(X)


class BayesianGaussianMixtureBenchmark(Benchmark, Estimator, VersusReference):
    """Fixed-work variational fits: N x 16 data, K=16, n_init=1, max_iter=3, tol=0,
    ``init_params='random_from_data'`` with a fixed ``random_state``.

    ``time_fit`` and ``peakmem_fit`` time the whole fit (initialisation
    included). ``track_seconds_per_iteration`` and ``track_ratio_vs_sklearn``
    time the iterations alone: each estimator is initialised untimed and then
    continued with ``warm_start=True`` for ``MAX_ITER`` iterations (see
    :func:`~asv_benchmarks.common.timed_continuation`), so scikit-learn's
    dense (n_samples, K) initialisation does not flatter the ratio.
    """

    param_names = ["covariance_type", "dtype", "n_samples"]
    params = (COVARIANCE_TYPES, DTYPES, SIZES)

    def setup_cache(self):
        # Drawn once per run; the same points as GaussianMixtureBenchmark's.
        for n_samples in SIZES:
            X = make_data(n_samples, N_FEATURES, N_COMPONENTS, "float64")
            for dtype in DTYPES:
                np.save(_data_file(n_samples, dtype), X.astype(dtype))
        return os.getcwd()

    def setup(self, cache_dir, covariance_type, dtype, n_samples):
        self.X = np.load(os.path.join(cache_dir, _data_file(n_samples, dtype)))
        params = bayesian_fixed_work(N_COMPONENTS, covariance_type)
        self.estimator = BayesianGaussianMixture(**params)
        self.reference = SkBayesianGaussianMixture(**params)
        warm_bayesian(covariance_type, dtype)

    def track_seconds_per_iteration(self, *args):
        return timed_continuation(self.estimator, self.X, MAX_ITER)[0]

    track_seconds_per_iteration.unit = "seconds"

    def track_ratio_vs_sklearn(self, *args):
        ours, _ = timed_continuation(self.estimator, self.X, MAX_ITER)
        theirs, _ = timed_continuation(self.reference, self.X, MAX_ITER)
        return theirs / ours

    track_ratio_vs_sklearn.unit = "sklearn s/iter / fastmix s/iter"
