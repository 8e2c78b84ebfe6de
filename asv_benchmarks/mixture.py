"""Benchmarks of ``fastmix.GaussianMixture``: fit time, memory, per-iteration cost,
the speed-up over scikit-learn, import time and first-fit compile time."""

import os
import textwrap
import timeit
import warnings

import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from fastmix import GaussianMixture

from .common import (
    N_COMPONENTS,
    N_FEATURES,
    Benchmark,
    Estimator,
    VersusReference,
    explicit_init,
    fixed_work,
    make_data,
)

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = ["float64", "float32"]
SIZES = [100_000, 1_000_000]


def _data_file(n_samples, dtype):
    return f"gmm_{n_samples}_{N_FEATURES}_{dtype}.npy"


def warm_dispatchers(
    covariance_type, dtype, n_features=N_FEATURES, n_components=N_COMPONENTS, min_resp=0.0
):
    """Compile (or load from cache) every kernel a fit and a predict use.

    Tiny inputs of the same dtype and layout (C-contiguous) as the benchmark's go
    through ``fit`` (the statistics pass) and ``predict`` (the per-row pass), at
    two sizes: small blocks of rows run a serial kernel and larger blocks its
    parallel twin (fastmix switches to the parallel kernel above about 4e6
    multiply-adds per call, so the larger size must pass that threshold for
    diag and spherical too: 32768 x 16 x 16 does). scikit-learn gets the same
    tiny fit. ``min_resp`` > 0 warms fastmix's ``min_responsibility``
    specialisation instead (its own compiled kernels).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n_rows in (max(2 * n_components, 64), 32768):
            X = make_data(n_rows, n_features, n_components, dtype, seed=1)
            params = fixed_work(
                n_components,
                covariance_type,
                explicit_init(X, n_components, covariance_type, seed=1),
                max_iter=1,
            )
            # Only when asked: commits before the parameter take no such keyword.
            extra = {"min_responsibility": min_resp} if min_resp else {}
            GaussianMixture(**params, **extra).fit(X).predict(X)
        SkGaussianMixture(**params).fit(X)


class GaussianMixtureBenchmark(Benchmark, Estimator, VersusReference):
    """Fixed-work EM fits: N x 16 data, K=16, n_init=1, max_iter=3, tol=0, explicit init."""

    param_names = ["covariance_type", "dtype", "n_samples"]
    params = (COVARIANCE_TYPES, DTYPES, SIZES)

    def setup_cache(self):
        # Drawn once per run and shared by every benchmark through .npy files in
        # asv's temporary working directory.
        for n_samples in SIZES:
            X = make_data(n_samples, N_FEATURES, N_COMPONENTS, "float64")
            for dtype in DTYPES:
                np.save(_data_file(n_samples, dtype), X.astype(dtype))
        return os.getcwd()

    def setup(self, cache_dir, covariance_type, dtype, n_samples):
        self.X = np.load(os.path.join(cache_dir, _data_file(n_samples, dtype)))
        init = explicit_init(self.X, N_COMPONENTS, covariance_type)
        params = fixed_work(N_COMPONENTS, covariance_type, init)
        self.estimator = GaussianMixture(**params)
        self.reference = SkGaussianMixture(**params)
        warm_dispatchers(covariance_type, dtype)


class PredictBenchmark(Benchmark):
    """Per-row outputs of a fitted model on 1e6 x 16 rows, K = 16: ``score_samples``,
    ``predict`` and ``predict_proba``, against scikit-learn's on the same parameters.

    The model is one fixed-work EM iteration from the explicit start; scikit-learn's
    estimator is given its fitted attributes, so both evaluate the same mixture.
    """

    param_names = ["covariance_type", "dtype"]
    params = (["full", "diag"], DTYPES)

    def setup(self, covariance_type, dtype):
        self.X = make_data(1_000_000, N_FEATURES, N_COMPONENTS, dtype)
        init = explicit_init(self.X, N_COMPONENTS, covariance_type)
        params = fixed_work(N_COMPONENTS, covariance_type, init, max_iter=1)
        warm_dispatchers(covariance_type, dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = GaussianMixture(**params).fit(self.X)
        self.reference = SkGaussianMixture(**params)
        for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
            setattr(self.reference, name, getattr(self.model, name))

    def time_score_samples(self, *args):
        self.model.score_samples(self.X)

    def time_predict(self, *args):
        self.model.predict(self.X)

    def time_predict_proba(self, *args):
        self.model.predict_proba(self.X)

    def track_score_samples_ratio_vs_sklearn(self, *args):
        t0 = timeit.default_timer()
        self.model.score_samples(self.X)
        t1 = timeit.default_timer()
        self.reference.score_samples(self.X)
        t2 = timeit.default_timer()
        return (t2 - t1) / (t1 - t0)

    track_score_samples_ratio_vs_sklearn.unit = "sklearn s / fastmix s"


def _large_k_problem(bench, shape, dtype, min_resp=0.0):
    """Set ``bench.X`` (2e5 rows of shape ``DxK``), warm the kernels; the fit's parameters."""
    n_features, n_components = (int(v) for v in shape.split("x"))
    bench.X = make_data(200_000, n_features, n_components, dtype)
    init = explicit_init(bench.X, n_components, "diag")
    warm_dispatchers("diag", dtype, n_features, n_components, min_resp=min_resp)
    return dict(fixed_work(n_components, "diag", init), init_params="random_from_data")


class LargeKDiagBenchmark(Benchmark, Estimator, VersusReference):
    """Fixed-work diag fits with many components (issue 12): 2e5 rows, D x K = 64 x 256
    and 40 x 1024, n_init=1, max_iter=3, tol=0, explicit init.

    ``init_params='random_from_data'`` for both libraries: the explicit start
    overrides it, and it keeps scikit-learn's timed fit from running k-means
    at K = 1024 before the start it then discards.
    """

    param_names = ["shape", "dtype"]
    params = (["64x256", "40x1024"], DTYPES)

    def setup(self, shape, dtype):
        params = _large_k_problem(self, shape, dtype)
        self.estimator = GaussianMixture(**params)
        self.reference = SkGaussianMixture(**params)


class LargeKMinResponsibilityBenchmark(Benchmark, Estimator):
    """:class:`LargeKDiagBenchmark`'s fits with ``min_responsibility=1e-8``.

    The opt-in that leaves responsibilities below it out of the updates; its
    seconds per iteration sit beside the exact ones of ``LargeKDiagBenchmark``
    and its ``track_lower_bound`` shows what the approximation costs.
    """

    param_names = ["shape", "dtype"]
    params = (["64x256", "40x1024"], DTYPES)

    def setup(self, shape, dtype):
        params = _large_k_problem(self, shape, dtype, min_resp=1e-8)
        self.estimator = GaussianMixture(**params, min_responsibility=1e-8)


class DefaultFitBenchmark(Benchmark):
    """A whole ``fit`` with default parameters: k-means start, tol=1e-3, random_state=0.

    Both libraries start from the same k-means labels (fastmix runs
    scikit-learn's KMeans algorithm on its own kernels), so they take the same
    iterations; ``time_kmeans_start`` times the start alone (``max_iter=0``).
    """

    param_names = ["covariance_type", "n_samples"]
    params = (["full", "diag"], SIZES)

    def setup(self, covariance_type, n_samples):
        self.X = make_data(n_samples, N_FEATURES, N_COMPONENTS, "float64")
        settings = dict(covariance_type=covariance_type, random_state=0)
        self.estimator = GaussianMixture(N_COMPONENTS, **settings)
        self.start = GaussianMixture(N_COMPONENTS, max_iter=0, **settings)
        self.reference = SkGaussianMixture(N_COMPONENTS, **settings)
        warm_dispatchers(covariance_type, "float64")
        small = make_data(4096, N_FEATURES, N_COMPONENTS, "float64", seed=1)
        self._fit(GaussianMixture(N_COMPONENTS, **settings), small)  # k-means kernels

    @staticmethod
    def _fit(estimator, X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(X)

    def time_fit(self, *args):
        self._fit(self.estimator, self.X)

    def time_kmeans_start(self, *args):
        self._fit(self.start, self.X)

    def track_ratio_vs_sklearn(self, *args):
        t0 = timeit.default_timer()
        self._fit(self.estimator, self.X)
        t1 = timeit.default_timer()
        self._fit(self.reference, self.X)
        t2 = timeit.default_timer()
        return (t2 - t1) / (t1 - t0)

    track_ratio_vs_sklearn.unit = "sklearn fit s / fastmix fit s"


class ImportBenchmark(Benchmark):
    """``import fastmix`` in a fresh interpreter (nothing may compile at import)."""

    repeat = (3, 10, 30.0)

    def timeraw_import(self):
        return "import fastmix"

    def timeraw_import_estimator(self):
        # What a user pays in practice: the estimator pulls in scikit-learn.
        return "from fastmix import GaussianMixture"


class FirstFitBenchmark(Benchmark):
    """A first fit in a fresh interpreter with numba's cache off: the compile time."""

    repeat = (1, 3, 120.0)

    def timeraw_first_fit(self):
        # The cache policy is read when fastmix is imported, so the variable is
        # set in the timed subprocess before the import (nothing else sees it).
        setup = f"""
            import os
            os.environ["FASTMIX_NUMBA_CACHE"] = "0"
            import warnings
            import numpy as np
            import fastmix
            warnings.simplefilter("ignore")
            rng = np.random.default_rng(0)
            X = rng.standard_normal((2048, {N_FEATURES}))
            init = dict(
                weights_init=np.full(4, 0.25),
                means_init=X[:4],
                precisions_init=np.ones((4, {N_FEATURES})),
            )
        """
        stmt = """
            fastmix.GaussianMixture(4, covariance_type="diag", max_iter=2, tol=0.0, **init).fit(X)
        """
        return textwrap.dedent(stmt), textwrap.dedent(setup)
