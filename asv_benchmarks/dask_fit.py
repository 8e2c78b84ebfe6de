"""A Dask fit against the in-memory fit of the same data (issue: scale past one machine).

Both fit the same rows from the same explicit start with fixed work
(``max_iter=MAX_ITER``, ``tol=0``); the Dask fit runs on a ``LocalCluster`` of
two worker processes started in ``setup``, so the figure is the cost of the
cluster round trips (persist, one compute per iteration) on top of the kernel.
Skipped when dask/distributed are not installed (the ``dask`` extra).
"""

import warnings

import numpy as np

from .common import MAX_ITER, N_COMPONENTS, N_FEATURES, explicit_init, fixed_work, make_data

N_SAMPLES = 200_000


class DaskVersusInMemory:
    """``time_fit_dask`` and ``time_fit_in_memory`` on the same data and start."""

    param_names = ["covariance_type"]
    params = [["full", "diag"]]
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)

    def setup(self, covariance_type):
        try:
            import dask.array as da
            from distributed import Client, LocalCluster
        except ImportError as exc:  # asv skips a benchmark whose setup raises this
            raise NotImplementedError("needs the 'dask' extra") from exc
        from fastmix import GaussianMixture

        self.X = make_data(N_SAMPLES, N_FEATURES, N_COMPONENTS, np.float64)
        init = explicit_init(self.X, N_COMPONENTS, covariance_type)
        self.params = fixed_work(N_COMPONENTS, covariance_type, init, max_iter=MAX_ITER)
        self.cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        self.client = Client(self.cluster)
        self.dX = da.from_array(self.X, chunks=(N_SAMPLES // 8, N_FEATURES))
        self.estimator = GaussianMixture
        # Warm the kernels here and on the workers (compilation is not timed):
        # on all the rows, so the in-memory fit loads its parallel kernels (a
        # few thousand rows run the serial twins) and every worker holds
        # blocks (a slice of one block warmed one worker of two).
        warm = dict(self.params, max_iter=1)
        self._fit(self.X, warm)
        self._fit(self.dX, warm)

    def teardown(self, covariance_type):
        self.client.close()
        self.cluster.close()

    def _fit(self, X, params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.estimator(**params).fit(X)

    def time_fit_dask(self, covariance_type):
        self._fit(self.dX, self.params)

    def time_fit_in_memory(self, covariance_type):
        self._fit(self.X, self.params)
