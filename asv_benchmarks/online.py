"""Benchmarks of online learning: one ``partial_fit`` on a batch of 1e4 rows.

``track_overhead`` is issue 14's per-call figure: the Python around the
E-step (the statistics blend, the update, the kernel inputs, validation) as a
fraction of the E-step pass itself. At 1e4 x 16 float32 and K = 16 the pass
takes about 0.25 ms (diag), so a few NumPy calls show in it.
"""

import gc
import pickle
import time
import warnings

import numpy as np

from fastmix import BayesianGaussianMixture, GaussianMixture

from .common import N_COMPONENTS, N_FEATURES, Benchmark, make_data
from .mixture import COVARIANCE_TYPES

ESTIMATORS = {
    "GaussianMixture": GaussianMixture,
    "BayesianGaussianMixture": BayesianGaussianMixture,
}
BATCH_ROWS = 10_000


def _paired_median_seconds(kernel, call, n=200):
    """Medians of two calls' times, taken alternately: a shared machine's drift
    (the E-step's median moved by half between two blocks of calls) hits both."""
    times = np.empty((n, 2))
    for i in range(n):
        for j, f in enumerate((kernel, call)):
            t = time.perf_counter()
            f()
            times[i, j] = time.perf_counter() - t
    return np.median(times, axis=0)


class PartialFitBenchmark(Benchmark):
    """A later ``partial_fit`` call (stepwise EM / stochastic VI) on a float32 batch.

    The model takes 20 batches untimed first, so each timed call does what
    every later call of a stream does: one E-step pass, the blend into the
    running statistics and the update.
    """

    param_names = ["estimator", "covariance_type"]
    params = (list(ESTIMATORS), COVARIANCE_TYPES)
    number = 20  # calls per sample: one takes well under a millisecond

    def setup(self, estimator, covariance_type):
        from fastmix._sources import ArraySource

        self.X = make_data(BATCH_ROWS, N_FEATURES, N_COMPONENTS, "float32")
        self.model = ESTIMATORS[estimator](
            n_components=N_COMPONENTS, covariance_type=covariance_type, random_state=0
        )
        if not hasattr(self.model, "partial_fit"):
            raise NotImplementedError("no partial_fit at this commit")  # asv skips it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(20):
                self.model.partial_fit(self.X)
        self.source = ArraySource(self.X)
        # _stats_params (the kernel's inputs for the statistics, responsibility
        # threshold included) is younger than partial_fit: older commits had
        # only _kernel_params.
        params = getattr(self.model, "_stats_params", None) or self.model._kernel_params
        self.params = params(self.X.dtype)
        self.source.estep_pass([self.params])

    def time_partial_fit(self, *args):
        self.model.partial_fit(self.X)

    def track_overhead(self, *args):
        """partial_fit's median time over its E-step pass's, minus one."""
        kernel, call = _paired_median_seconds(
            lambda: self.source.estep_pass([self.params]), lambda: self.model.partial_fit(self.X)
        )
        return float(call / kernel - 1.0)

    track_overhead.unit = "partial_fit s / E-step pass s - 1"


class LateStreamBenchmark(Benchmark):
    """A later ``partial_fit`` after 20 and after 20,000 batches: the same time.

    Nothing a call does may grow with the batches a stream has seen (a copy
    of ``lower_bounds_`` per call did: 45 us a call after 1e4 batches).
    Small batches, 200 x 4 float32, K = 4, diag, so that the cached setup
    streams 20,000 of them in seconds.
    """

    param_names = ["estimator", "seen"]
    params = (list(ESTIMATORS), [20, 20_000])
    number = 50

    def setup_cache(self):
        X = make_data(200, 4, 4, "float32")
        models = {}
        for name, cls in ESTIMATORS.items():
            model = cls(n_components=4, covariance_type="diag", random_state=0)
            if not hasattr(model, "partial_fit"):
                return None  # no partial_fit at this commit: setup skips
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for seen in range(1, max(self.params[1]) + 1):
                    model.partial_fit(X)
                    if seen in self.params[1]:
                        models[name, seen] = pickle.dumps(model)
        return X, models

    def setup(self, cache, estimator, seen):
        if cache is None:
            raise NotImplementedError("no partial_fit at this commit")  # asv skips it
        self.X, models = cache
        self.model = pickle.loads(models[estimator, seen])
        # The 20,000 bounds just unpickled are young objects, which the garbage
        # collector's next passes would walk inside the timed call; a stream's
        # own bounds are old. Collected (made old) here, then a few untimed
        # calls to warm the caches (and rebuild those pickling left behind).
        gc.collect()
        for _ in range(5):
            self.model.partial_fit(self.X)

    def time_partial_fit(self, cache, estimator, seen):
        self.model.partial_fit(self.X)
