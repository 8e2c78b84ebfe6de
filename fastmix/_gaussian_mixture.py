"""Gaussian mixture fitted by expectation-maximisation on streaming kernels."""

import math
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ._base import BaseMixture
from ._format import persistable
from ._kernels import update as _kernels
from ._sources._dask import with_known_rows
from ._update import (
    count_offset,
    diag_gaussian_update,
    gaussian_parameters,
    kernel_array,
    kernel_params,
    precision_cholesky,
    precision_cholesky_from_precisions,
)
from ._validation import check_means, check_precisions, check_weights

# A later partial_fit batch keeps a component's mean and covariance once its
# running count is down to this many times the 10 eps count offset: the
# offset then moves the mean by at most 1e-9 of its distance from the origin
# per step (see GaussianMixture._m_step).
_STARVED = 1e9


@persistable
class GaussianMixture(BaseMixture):
    """Gaussian Mixture, a drop-in replacement for scikit-learn's.

    Representation of a Gaussian mixture model probability distribution,
    fitted by expectation-maximisation. Each iteration is one streaming pass
    over the data by a parallel numba kernel that returns sufficient
    statistics, followed by a closed-form update: no (n_samples,
    n_components) array exists while fitting. From the same start it gives
    scikit-learn's numbers; beyond scikit-learn it accepts ``sample_weight``
    and keeps float32 data in float32.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}, default='full'
        String describing the type of covariance parameters to use:
        'full' (each component has its own general covariance matrix),
        'tied' (all components share the same general covariance matrix),
        'diag' (each component has its own diagonal covariance matrix),
        'spherical' (each component has its own single variance),
        'tied-diagonal' (all components share the same diagonal covariance
        matrix), 'tied-spherical' (all components share the same single
        variance). The last two are fastmix's, named as in scikit-learn's
        pull request #33692 (not in a scikit-learn release yet).
    tol : float, default=1e-3
        The convergence threshold. EM iterations stop when the lower bound
        average gain is below this threshold.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of covariance.
    max_iter : int, default=100
        The number of EM iterations to perform (0: initialise only).
    n_init : int, default=1
        The number of initializations to perform. The best results are kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        The method used to initialize the weights, the means and the
        precisions, consuming ``random_state`` exactly as scikit-learn does.
    weights_init : array-like of shape (n_components, ), default=None
        The user-provided initial weights.
    means_init : array-like of shape (n_components, n_features), default=None
        The user-provided initial means.
    precisions_init : array-like or float, default=None
        The user-provided initial precisions (inverse of the covariance
        matrices). The shape depends on 'covariance_type' (a float or an
        array of shape () for 'tied-spherical')::

            (n_components,)                        if 'spherical',
            (n_features, n_features)               if 'tied',
            (n_components, n_features)             if 'diag',
            (n_components, n_features, n_features) if 'full',
            (n_features,)                          if 'tied-diagonal',
            ()                                     if 'tied-spherical'

    random_state : int, RandomState instance or None, default=None
        Controls the initialization and :meth:`sample`.
    warm_start : bool, default=False
        If True, the solution of the last fitting is used as initialization
        for the next call of fit(); ``n_init`` is then ignored.
    verbose : int, default=0
        Enable verbose output (scikit-learn's messages).
    verbose_interval : int, default=10
        Number of iteration done before the next print.
    learning_decay : float, default=0.7
        Online learning only (:meth:`partial_fit`): the step of batch ``t``
        is ``rho_t = (learning_offset + t) ** -learning_decay``; in (0.5, 1]
        so that the steps satisfy the stochastic-approximation conditions.
        Keyword-only, fastmix's addition (named as scikit-learn's
        ``LatentDirichletAllocation`` names it).
    learning_offset : float, default=10.0
        Online learning only: at least 0, as in scikit-learn's
        ``LatentDirichletAllocation``; larger values down-weight the early
        batches. With 0 and ``learning_decay=1`` the running statistics are
        the plain mean of every batch's. Keyword-only, fastmix's addition.
    min_responsibility : float, default=0.0
        Responsibilities below it are left out of the statistics that
        update the parameters (the log-likelihood and :meth:`score` keep
        them); in [0, 1 / n_components]. 0 keeps every one: scikit-learn's
        numbers.
        At hundreds of components most of a row's responsibilities are far
        below 1e-8; leaving them out lets the updates' moments visit only
        the rest (with ``1e-8``, an iteration at
        2e5 x 64, K = 256 took 0.68x the exact one's time). Each
        component's weight, mean and covariance move by about
        ``min_responsibility`` times the rows it loses; a component left
        with none at or above it keeps its mean and covariance, its weight
        going to ~0. Above ``1 / n_components`` it is refused (a row could
        lose every responsibility). 'tied' ignores it;
        'tied-diagonal' and 'tied-spherical' apply it. An approximation,
        off by default; keyword-only, fastmix's addition.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weights of each mixture components.
    means_ : ndarray of shape (n_components, n_features)
        The mean of each mixture component.
    covariances_ : ndarray
        The covariance of each mixture component (shape per
        ``covariance_type`` as for ``precisions_init``).
    precisions_ : ndarray
        The precision matrices for each component.
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors U of the precisions (precision =
        U U^T), as in scikit-learn.
    converged_ : bool
        True when convergence of the best fit of EM was reached.
    n_iter_ : int
        Number of steps used by the best fit of EM to reach the convergence.
    lower_bound_ : float
        Log-likelihood per sample of the training data under the best fit
        (evaluated at the start of its last iteration, as in scikit-learn).
    lower_bounds_ : list of float
        The lower bound of each iteration of the best fit; after
        :meth:`partial_fit`, one entry per batch (its weighted mean
        log-likelihood per row), each appended to the same list.
    n_batches_ : int
        Batches taken by :meth:`partial_fit` since its first call (which
        initialised the model); :meth:`fit` removes it and starts afresh.
    n_samples_seen_ : int
        Rows of those batches (rows, not weights: a row of weight 2 counts
        once).
    online_stats_ : tuple of ndarray
        The running sufficient statistics that each :meth:`partial_fit`
        blends its batch into, per unit of weight (each batch's sums divided
        by its weight): the weighted counts, the first and second moments
        around ``shift``, ``shift`` itself, and the scalar sums. Kept by save
        and load so that the next batch continues the same stream.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string names.

    See Also
    --------
    sklearn.mixture.GaussianMixture : The reference implementation.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmix import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_
    array([[10.,  2.],
           [ 1.,  2.]])
    >>> gm.predict([[0, 0], [12, 3]])
    array([1, 0])
    """

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "covariance_type": [
            StrOptions({"full", "tied", "diag", "spherical", "tied-diagonal", "tied-spherical"})
        ],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", Real, None],  # a number: 'tied-spherical'
    }

    _parameter_names = ("weights_", "means_", "covariances_", "precisions_cholesky_")

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        learning_decay=0.7,
        learning_offset=10.0,
        min_responsibility=0.0,
    ):
        super().__init__(
            n_components=n_components,
            tol=tol,
            reg_covar=reg_covar,
            max_iter=max_iter,
            n_init=n_init,
            init_params=init_params,
            random_state=random_state,
            warm_start=warm_start,
            verbose=verbose,
            verbose_interval=verbose_interval,
        )
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.min_responsibility = min_responsibility
        self.covariance_type = covariance_type
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init

    def _check_parameters(self, source):
        _, n_features = source.shape
        inits = {"weights": None, "means": None, "precisions": None}
        if self.weights_init is not None:
            inits["weights"] = check_weights(self.weights_init, self.n_components)
        if self.means_init is not None:
            inits["means"] = check_means(self.means_init, self.n_components, n_features)
        if self.precisions_init is not None:
            inits["precisions"] = check_precisions(
                self.precisions_init, self.covariance_type, self.n_components, n_features
            )
        return inits

    def _needs_resp_init(self, inits):
        return any(v is None for v in inits.values())

    def _initialize(self, source, stats, inits):
        dtype = source.dtype
        weights = means = covariances = None
        if stats is not None:
            nk, means, covariances = gaussian_parameters(
                stats, self.reg_covar, self.covariance_type, dtype
            )
            weights = nk / stats.sum_w
        if inits["weights"] is not None:
            weights = inits["weights"]
        if inits["means"] is not None:
            means = inits["means"]
        if inits["precisions"] is None:
            prec_chol = precision_cholesky(covariances, self.covariance_type, dtype)
        else:
            prec_chol = precision_cholesky_from_precisions(
                inits["precisions"], self.covariance_type
            )
            # The given precisions' inverse, not the start's covariances, even
            # where those were computed for the weights or means: sample()
            # draws from covariances_ (scikit-learn leaves it unset here).
            covariances = _covariances_from_precisions(inits["precisions"], self.covariance_type)
        self.weights_ = np.asarray(weights, dtype=dtype)
        self.means_ = np.asarray(means, dtype=dtype)
        self.covariances_ = np.asarray(covariances, dtype=dtype)
        self.precisions_cholesky_ = np.asarray(prec_chol, dtype=dtype)

    _estep_sources = ("weights_", "means_", "precisions_cholesky_")

    def _kernel_params(self, dtype):
        # The log the diagonal update forms the same inputs with (a weight of 0: -inf).
        log_weights = _kernels.log_weights(kernel_array(self.weights_))
        return kernel_params(
            self.means_, self.precisions_cholesky_, self.covariance_type, log_weights, dtype
        )

    def _online_m_step(self, running, batch, dtype, later=False):
        fresh = batch.nk if later else None
        return self._m_step(running, dtype, scale=batch.sum_w, fresh=fresh)

    def _m_step(self, stats, dtype, derive=True, scale=1.0, fresh=None):
        # The update of stats.scaled(scale): an online step's running
        # statistics, per row, in the batch's units. The diagonal types' kernel
        # scales the sums itself, a copy of every sum fewer.
        #
        # A component left with no responsibility at or above min_responsibility
        # keeps its mean and covariance (its weight still goes to ~0): the
        # update of an empty component, mean 0 and covariance reg_covar, would
        # be a spike at the origin, whose log-determinant can outbid its
        # weight there. ('tied' takes every row whole: nothing is left out.)
        #
        # A later partial_fit batch gives ``fresh``, its own counts: so does a
        # starved component, one whose running count has decayed to _STARVED
        # times scikit-learn's 10 eps count offset and that this batch gives
        # no more. Batches without its rows shrink its count geometrically,
        # and the offset's pull, eps10 / count of the mean per step (towards
        # the origin) and eps10 m^2 / count of the variance, would otherwise
        # take over. 'tied' keeps the mean only.
        empty = None
        if self.min_responsibility > 0 and self.covariance_type != "tied":
            empty = stats.nk == 0
        if fresh is not None:
            floor = _STARVED * count_offset(stats, scale)
            if stats.nk.min() * scale <= floor:
                starved = (stats.nk * scale <= floor) & (fresh <= floor)
                empty = starved if empty is None else empty | starved
        keep = empty is not None and bool(empty.any())
        params = None
        if self.covariance_type not in ("full", "tied"):
            # One serial kernel, the next E-step's inputs included: a small
            # online batch's update is mostly call overhead.
            previous = (self.means_, self.covariances_) if keep else None
            weights, means, covariances, prec_chol, params = diag_gaussian_update(
                stats, self.reg_covar, self.covariance_type, dtype, previous, scale, empty
            )
        else:
            if scale != 1.0:
                stats = stats.scaled(scale)
            nk, means, covariances = gaussian_parameters(
                stats, self.reg_covar, self.covariance_type, dtype
            )
            if keep:
                means[empty] = self.means_[empty]
                if self.covariance_type == "full":
                    covariances[empty] = self.covariances_[empty]
            prec_chol = precision_cholesky(covariances, self.covariance_type, dtype)
            weights = nk / nk.sum()
        self.weights_ = weights.astype(dtype)
        self.means_ = means.astype(dtype)
        # np.asarray: 'tied-spherical' keeps 0-d arrays, not NumPy scalars.
        self.covariances_ = np.asarray(covariances, dtype=dtype)
        self.precisions_cholesky_ = np.asarray(prec_chol, dtype=dtype)
        if derive:
            self._derive_parameters()
        self._keep_estep_inputs(params, dtype)

    def _compute_lower_bound(self, stats, terms=None):
        # A NumPy float, as scikit-learn's mean log-likelihood is.
        return np.float64(stats.sum_wlogp / stats.sum_w)

    def _update_calls_blas(self):
        # The diagonal types' updates are elementwise (fastmix._kernels.update): only
        # 'full' and 'tied' multiply and factor matrices.
        return self.covariance_type in ("full", "tied")

    def _online_lower_bound(self, batch, scale, terms=None):
        # A ratio of two sums: the same at every scale, without scaling them.
        return self._compute_lower_bound(batch)

    def _n_parameters(self):
        """Return the number of free parameters in the model."""
        _, n_features = self.means_.shape
        if self.covariance_type == "full":
            cov_params = self.n_components * n_features * (n_features + 1) / 2.0
        elif self.covariance_type == "diag":
            cov_params = self.n_components * n_features
        elif self.covariance_type == "tied":
            cov_params = n_features * (n_features + 1) / 2.0
        elif self.covariance_type == "tied-diagonal":
            cov_params = n_features
        elif self.covariance_type == "tied-spherical":
            cov_params = 1
        else:
            cov_params = self.n_components
        mean_params = n_features * self.n_components
        return int(cov_params + mean_params + self.n_components - 1)

    def bic(self, X):
        """Bayesian information criterion for the current model on the input X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        bic : float
            ``-2 log L + p log n`` for ``p`` free parameters (``_n_parameters``).
            The lower the better.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> {k: round(GaussianMixture(k, random_state=0).fit(X).bic(X), 1) for k in (1, 2, 3)}
        {1: 1739.8, 2: 1453.7, 3: 1485.6}
        """
        n_samples = _n_rows(X)
        return -2 * self.score(X) * n_samples + self._n_parameters() * math.log(n_samples)

    def aic(self, X):
        """Akaike information criterion for the current model on the input X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            The rows the log-likelihood is taken on (one pass over them).

        Returns
        -------
        aic : float
            ``-2 log L + 2 p``; the lower the better.

        Examples
        --------
        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
        >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> round(gm.aic(X), 1)
        1417.4
        """
        return -2 * self.score(X) * _n_rows(X) + 2 * self._n_parameters()

    def icl(self, X):
        """Integrated completed likelihood criterion for the current model on X.

        The BIC plus twice the entropy of the responsibilities [1]_: it adds
        to the BIC's penalty a cost for components that overlap, so it
        prefers well-separated clusters. The log-likelihood and the entropy
        come from one streaming pass over ``X`` (an ndarray, a memmap or a
        dask array).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input samples.

        Returns
        -------
        icl : float
            ``bic(X) - 2 sum_i sum_k r_ik log r_ik``, with ``r_ik`` the
            responsibilities (:meth:`predict_proba`). The lower the better;
            never below :meth:`bic`, equal to it when every row belongs
            wholly to one component. Its log-likelihood is summed in float64
            from the pass; :meth:`bic` takes scikit-learn's mean of
            :meth:`score_samples`, which for float32 data is a float32 mean:
            there the two differ by that mean's rounding (relative 1e-7),
            which can put the ICL of perfectly separated clusters just below
            the BIC. The penalty is the entropy of the responsibilities;
            mclust's ``icl`` takes each row's largest responsibility only
            (``-2 sum_i log max_k r_ik``), a penalty never larger than this.

        See Also
        --------
        bic : The Bayesian information criterion.

        References
        ----------
        .. [1] C. Biernacki, G. Celeux and G. Govaert (2000), "Assessing a
           mixture model for clustering with the integrated completed
           likelihood", IEEE Transactions on Pattern Analysis and Machine
           Intelligence 22(7), 719-725.

        Examples
        --------
        Two clusters: the third and fourth components split one of them,
        their responsibilities overlap and the ICL charges for it.

        >>> import numpy as np
        >>> from fastmix import GaussianMixture
        >>> rng = np.random.RandomState(0)
        >>> X = np.vstack([rng.randn(100, 2), rng.randn(100, 2) + 6])
        >>> models = {k: GaussianMixture(k, random_state=0).fit(X) for k in (1, 2, 3, 4)}
        >>> {k: round(m.bic(X)) for k, m in models.items()}
        {1: 1740, 2: 1454, 3: 1486, 4: 1514}
        >>> {k: round(m.icl(X)) for k, m in models.items()}
        {1: 1740, 2: 1454, 3: 1578, 4: 1678}
        """
        source = self._validate_predict_data(X)
        (stats,) = source.estep_pass([self._kernel_params(source.dtype)])
        n_samples = stats.n_rows  # a dask array's rows may be unknown before the pass
        icl = (
            -2.0 * stats.sum_wlogp
            + self._n_parameters() * math.log(n_samples)
            - 2.0 * stats.sum_wrlogr
        )
        if not math.isfinite(icl):
            # The passes do not check an out-of-core X: raise scikit-learn's
            # error for non-finite rows, as score does (score_samples of a
            # dask array would only build the check, never run it).
            self.score(X)
        return float(icl)


def _n_rows(X):
    """The number of rows of ``X``; a dask array's counted first when its chunks are unknown.

    scikit-learn's ``X.shape[0]``; a dask array filtered by a mask has NaN
    there, which made the criteria NaN (``fit`` counts them the same way).
    """
    n_samples = np.shape(X)[0]
    if isinstance(n_samples, float) and math.isnan(n_samples):
        n_samples = with_known_rows(X).shape[0]
    return n_samples


def _covariances_from_precisions(precisions, covariance_type):
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(precisions)
    return 1.0 / precisions
