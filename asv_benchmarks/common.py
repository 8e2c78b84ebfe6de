"""Shared pieces of the asv suite, in scikit-learn's ``asv_benchmarks`` style.

Every fit does fixed work: ``n_init=1``, a fixed ``max_iter``, ``tol=0`` and an
explicit initialisation (``weights_init``, ``means_init``, ``precisions_init``)
drawn from a fixed seed, so a change in a timing is a change in the code and
never in the number of iterations or in a k-means start. ``setup`` warms every
numba dispatcher on a tiny input of the same dtype and layout, so compilation
(or loading from numba's cache) is never timed; ``timeraw_first_fit`` measures
it on purpose.

The data helpers are written out here rather than imported from fastmix, so the
suite can benchmark older commits too.
"""

# make_data, _covariance and explicit_init copy fastmix/_synthetic.py (bench_problem,
# _covariance, explicit_init), the one source of `fastmix bench`, the demo and
# benchmarks/: a copy on purpose, because asv imports this file against old commits
# of fastmix that have no fastmix._synthetic. Keep the draws the same as there.

import math
import time
import timeit
import warnings
from abc import ABC, abstractmethod

import numpy as np
from sklearn.base import clone

SEED = 0
N_FEATURES = 16
N_COMPONENTS = 16
MAX_ITER = 3


def make_data(n_samples, n_features, n_components, dtype, seed=SEED):
    """Rows drawn from a random full-covariance Gaussian mixture.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    dtype : str or numpy dtype
        Drawn in float64, returned in ``dtype`` (C-contiguous).
    seed : int

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
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


def explicit_init(X, n_components, covariance_type, seed=SEED):
    """``weights_init``, ``means_init`` and ``precisions_init`` from a fixed seed.

    Uniform weights, means at distinct rows of ``X``, precisions from the
    covariance of all of ``X`` (float64 arrays, valid for fastmix and
    scikit-learn alike).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    seed : int

    Returns
    -------
    init : dict
        Keyword arguments for ``GaussianMixture``.
    """
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


def fixed_work(n_components, covariance_type, init, max_iter=MAX_ITER):
    """The estimator parameters of a fixed-work fit: exactly ``max_iter`` EM iterations.

    Parameters
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    init : dict
        As returned by :func:`explicit_init`.
    max_iter : int, default=MAX_ITER

    Returns
    -------
    params : dict
        Keyword arguments for fastmix's or scikit-learn's ``GaussianMixture``.
    """
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        n_init=1,
        max_iter=max_iter,
        tol=0.0,
        **init,
    )


def timed_fit(estimator, X):
    """Fit ``estimator`` on ``X``, timed with :func:`time.perf_counter`.

    Parameters
    ----------
    estimator : GaussianMixture
        fastmix's or scikit-learn's.
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    seconds_per_iteration : float
        Fit seconds divided by ``n_iter_``.
    estimator : GaussianMixture
        The fitted estimator.
    """
    with warnings.catch_warnings():
        # tol=0 never converges: the ConvergenceWarning is expected.
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        estimator.fit(X)
        seconds = time.perf_counter() - t0
    return seconds / max(estimator.n_iter_, 1), estimator


def bayesian_fixed_work(n_components, covariance_type, max_iter=MAX_ITER, seed=SEED):
    """The parameters of a fixed-work ``BayesianGaussianMixture`` fit.

    A Bayesian mixture takes no explicit initialisation: both libraries start
    from ``init_params='random_from_data'`` with the same ``random_state``
    (fastmix consumes the RandomState exactly as scikit-learn does, so both
    pick the same rows), then run exactly ``max_iter`` iterations (``tol=0``).

    Parameters
    ----------
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    max_iter : int, default=MAX_ITER
    seed : int, default=SEED

    Returns
    -------
    params : dict
        Keyword arguments for fastmix's or scikit-learn's ``BayesianGaussianMixture``.
    """
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        n_init=1,
        max_iter=max_iter,
        tol=0.0,
        init_params="random_from_data",
        random_state=seed,
    )


def timed_continuation(estimator, X, max_iter=MAX_ITER):
    """Seconds per iteration of ``max_iter`` iterations, the initialisation excluded.

    A copy of ``estimator`` is initialised untimed (``max_iter=0``), then
    continued with ``warm_start=True`` (which skips the initialisation in
    fastmix and scikit-learn alike) for exactly ``max_iter`` iterations, timed.

    Parameters
    ----------
    estimator : GaussianMixture or BayesianGaussianMixture
        fastmix's or scikit-learn's; left unchanged.
    X : ndarray of shape (n_samples, n_features)
    max_iter : int, default=MAX_ITER

    Returns
    -------
    seconds_per_iteration : float
    estimator : the fitted copy
    """
    estimator = clone(estimator).set_params(max_iter=0, warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(X)
    return timed_fit(estimator.set_params(max_iter=max_iter, warm_start=True), X)


class Benchmark:
    """Settings shared by the suite (as scikit-learn's ``common.Benchmark``)."""

    timer = timeit.default_timer  # wall time
    timeout = 600
    # Dispatchers are warmed in setup: no warm-up runs needed on top.
    warmup_time = 0
    number = 1
    repeat = (2, 5, 30.0)
    processes = 1


class Estimator(ABC):
    """Mixin: ``time_fit``, ``peakmem_fit`` and ``track_`` of the fitted work.

    The class using it sets ``self.X`` and ``self.estimator`` (a fixed-work
    fastmix estimator, see :func:`fixed_work`) in ``setup``. Abstract, so asv
    collects the concrete benchmark classes only.
    """

    @abstractmethod
    def setup(self, *args):
        """Set ``self.X`` and ``self.estimator``; warm the dispatchers."""

    def time_fit(self, *args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.estimator.fit(self.X)

    def peakmem_fit(self, *args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.estimator.fit(self.X)

    def track_seconds_per_iteration(self, *args):
        return timed_fit(self.estimator, self.X)[0]

    track_seconds_per_iteration.unit = "seconds"

    def track_lower_bound(self, *args):
        return float(timed_fit(self.estimator, self.X)[1].lower_bound_)

    # GaussianMixture: log-likelihood per sample; BayesianGaussianMixture: its ELBO.
    track_lower_bound.unit = "lower_bound_"


class VersusReference(ABC):
    """Mixin: ``track_`` of the speed-up over a reference estimator on the same work.

    The class using it sets ``self.reference`` (e.g. scikit-learn's estimator
    with the very same parameters) beside ``self.estimator`` and ``self.X``.
    """

    @abstractmethod
    def setup(self, *args):
        """Set ``self.X``, ``self.estimator`` and ``self.reference``."""

    def track_ratio_vs_sklearn(self, *args):
        ours, _ = timed_fit(self.estimator, self.X)
        theirs, _ = timed_fit(self.reference, self.X)
        return theirs / ours

    track_ratio_vs_sklearn.unit = "sklearn s/iter / fastmix s/iter"
