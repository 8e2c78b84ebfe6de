"""Variational Bayesian Gaussian mixture on the same streaming kernel as EM."""

from numbers import Real

import numpy as np
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseMixture
from ._format import persistable
from ._kernels import DIAG, FULL
from ._predictive import predictive_mixture
from ._stats import KernelParams
from ._update import kernel_params
from ._validation import check_precision_matrix, check_precision_positivity, check_shape
from ._variational import (
    VariationalPrior,
    diag_posterior_arrays,
    lower_bound,
    moments_from_stats,
    posterior,
    variational_bias,
    weights_from_concentration,
)

_FLOATS = [np.float64, np.float32]


def _data_moments(source, covariance_type):
    """Weighted mean and covariance of the rows for the default priors, in two streaming passes.

    ``covariance_type=None`` asks for the mean alone (one pass).

    Both passes run the E-step kernel with one component of zero precision
    (every responsibility is 1), so the statistics are the plain weighted
    sums, accumulated in float64 chunk by chunk: no copy of X and no
    (n_samples, n_components) array. The first pass (around the origin) finds
    the mean, the second accumulates the scatter around it.
    """
    n_features = source.shape[1]

    def one_component(code, centre):
        # Zero precision: one component that every row belongs to wholly.
        precision = np.zeros((1, n_features, n_features) if code == FULL else (1, n_features))
        shift = np.reshape(centre, (1, n_features))
        return KernelParams.build(code, shift, precision, np.zeros(1), source.dtype)

    (first,) = source.estep_pass([one_component(DIAG, np.zeros(n_features))])
    centre = first.s1[0] / first.sum_w
    if covariance_type is None:
        return centre, None
    code = FULL if covariance_type in ("full", "tied") else DIAG
    (stats,) = source.estep_pass([one_component(code, centre)])
    return moments_from_stats(stats, covariance_type)


def _as_dtype(value, dtype):
    if np.ndim(value) == 0:
        return np.dtype(dtype).type(value)
    return np.asarray(value, dtype=dtype)


@persistable
class BayesianGaussianMixture(BaseMixture):
    """Variational Bayesian estimation of a Gaussian mixture, a drop-in for scikit-learn's.

    Infers an approximate (mean-field) posterior over the parameters of a
    Gaussian mixture; the effective number of components is inferred from
    the data. Each iteration is one streaming pass of the same numba kernel
    that :class:`~fastmix.GaussianMixture` uses (the variational expected
    log-density of a component is a Gaussian log-density plus a
    per-component constant), followed by the closed-form posterior update:
    no (n_samples, n_components) array exists while fitting. From the same
    start it gives scikit-learn's numbers; beyond scikit-learn it accepts
    ``sample_weight`` and keeps float32 data in float32.

    Parameters
    ----------
    n_components : int, default=1
        The number of mixture components. Depending on the data and the value
        of the `weight_concentration_prior` the model can decide to not use
        all the components by setting some component `weights_` to values very
        close to zero. The number of effective components is therefore smaller
        than n_components.
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
        The convergence threshold. Iterations stop when the change of the
        lower bound on the model evidence is below this threshold.
    reg_covar : float, default=1e-6
        Non-negative regularization added to the diagonal of the data's
        covariances in the update.
    max_iter : int, default=100
        The number of iterations to perform (0: initialise only).
    n_init : int, default=1
        The number of initializations to perform. The result with the highest
        lower bound value is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
            default='kmeans'
        The method used to initialize the responsibilities, consuming
        ``random_state`` exactly as scikit-learn does.
    weight_concentration_prior_type : {'dirichlet_process', \
            'dirichlet_distribution'}, default='dirichlet_process'
        The type of the weight concentration prior: the truncated
        stick-breaking representation of a Dirichlet process, or a finite
        Dirichlet distribution.
    weight_concentration_prior : float or None, default=None
        The dirichlet concentration of each component on the weight
        distribution (commonly called gamma). Higher values put more mass in
        the centre of the simplex and lead to more active components. Must be
        greater than 0; None means ``1. / n_components``.
    mean_precision_prior : float or None, default=None
        The precision prior on the mean distribution (Gaussian). Larger values
        concentrate the cluster means around `mean_prior`. Must be greater
        than 0; None means 1.
    mean_prior : array-like of shape (n_features,), default=None
        The prior on the mean distribution (Gaussian). None means the
        (weighted) mean of X.
    degrees_of_freedom_prior : float or None, default=None
        The prior of the number of degrees of freedom on the covariance
        distributions (Wishart). Must be greater than ``n_features - 1``;
        None means `n_features`.
    covariance_prior : float or array-like, default=None
        The prior on the covariance distribution (Wishart). None means the
        (weighted, unbiased) empirical covariance of X. The shape depends on
        `covariance_type`::

            (n_features, n_features) if 'full',
            (n_features, n_features) if 'tied',
            (n_features)             if 'diag',
            float                    if 'spherical',
            (n_features)             if 'tied-diagonal',
            float                    if 'tied-spherical'

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
        Stochastic VI (:meth:`partial_fit`) only: batch ``t`` moves the
        posterior by ``(learning_offset + t) ** -learning_decay``, in (0.5, 1].
        Keyword-only, as in :class:`GaussianMixture`.
    learning_offset : float, default=10.0
        Stochastic VI only: at least 0; larger values damp the early batches.
        Keyword-only, as in :class:`GaussianMixture`.
    total_samples : float, default=1e6
        Online learning only: the number of rows of the whole data, by which
        :meth:`partial_fit` scales each batch's statistics (stochastic
        variational inference). Keyword-only, fastmix's addition. Changed
        between :meth:`partial_fit` calls, it applies to the later batches
        only (the running statistics keep the earlier scale), as for
        scikit-learn's ``LatentDirichletAllocation``; the priors are those
        the first call computed, until the next :meth:`fit`.
    min_responsibility : float, default=0.0
        Responsibilities below it are left out of the statistics that
        update the posterior (the bound's entropy term and :meth:`score`
        keep them); in [0, 1 / n_components]. 0 keeps every one:
        scikit-learn's numbers. At hundreds of components most of a row's
        responsibilities are far below 1e-8; leaving them out lets the
        updates' moments visit only the rest. Each
        component's posterior moves by about ``min_responsibility`` times
        the rows it loses; a component left with none at or above it gets
        the prior's posterior, as an empty component does. Above
        ``1 / n_components`` it is refused (a row could lose every
        responsibility). 'tied' ignores it; 'tied-diagonal' and
        'tied-spherical' apply it. An approximation, off by default;
        keyword-only, fastmix's addition.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weights of each mixture components.
    means_ : ndarray of shape (n_components, n_features)
        The mean of each mixture component.
    covariances_ : ndarray
        The covariance of each mixture component (the posterior Wishart
        scale matrix inverse divided by its degrees of freedom). The shape
        depends on `covariance_type`::

            (n_components,)                        if 'spherical',
            (n_features, n_features)               if 'tied',
            (n_components, n_features)             if 'diag',
            (n_components, n_features, n_features) if 'full',
            (n_features,)                          if 'tied-diagonal',
            ()                                     if 'tied-spherical'

    precisions_ : ndarray
        The precision matrices for each component (shape as `covariances_`).
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors U of the precisions (precision =
        U U^T), as in scikit-learn.
    converged_ : bool
        True when convergence of the best fit of inference was reached.
    n_iter_ : int
        Number of steps used by the best fit of inference to reach the
        convergence.
    lower_bound_ : float
        Lower bound value on the model evidence (of the training data) of the
        best fit of inference; a scalar for every `covariance_type`.
    lower_bounds_ : list of float
        The lower bound of each iteration of the best fit of inference;
        after :meth:`partial_fit`, one entry per batch (its bound with the
        batch scaled to ``total_samples``), each appended to the same list.
    n_batches_ : int
        Batches taken by :meth:`partial_fit` since its first call (which
        initialised the model); :meth:`fit` removes it and starts afresh.
    n_samples_seen_ : int
        Rows of those batches (rows, not weights: a row of weight 2 counts
        once).
    online_stats_ : tuple of ndarray
        The running sufficient statistics that each :meth:`partial_fit`
        blends its batch into, scaled to ``total_samples`` rows (each
        batch's sums times ``total_samples`` over its weight): the weighted
        counts, the first and second moments around ``shift``, ``shift``
        itself, and the scalar sums. Kept by save and load so that the next
        batch continues the same stream.
    weight_concentration_prior_ : float
        The concentration prior in use.
    weight_concentration_ : ndarray of shape (n_components,) or tuple
        The posterior concentrations: a (n_components,) array for
        'dirichlet_distribution', the pair of Beta parameters of the sticks
        for 'dirichlet_process'.
    mean_precision_prior_ : float
        The precision prior on the mean distribution in use.
    mean_precision_ : ndarray of shape (n_components,)
        The precision of each components on the mean distribution (Gaussian).
    mean_prior_ : ndarray of shape (n_features,)
        The prior on the mean distribution in use.
    degrees_of_freedom_prior_ : float
        The prior of the number of degrees of freedom in use.
    degrees_of_freedom_ : ndarray of shape (n_components,) or float
        The number of degrees of freedom of each component (one shared value
        for 'tied', 'tied-diagonal' and 'tied-spherical').
    covariance_prior_ : float or ndarray
        The prior on the covariance distribution in use (shape as
        `covariance_prior`).
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when X has string names.

    See Also
    --------
    fastmix.GaussianMixture : Finite Gaussian mixture fit with EM.
    sklearn.mixture.BayesianGaussianMixture : The reference implementation.

    Notes
    -----
    With ``sample_weight``, the weights are frequency weights: an integer
    weight gives the model of the repeated row, including the default
    `mean_prior_` (weighted mean) and `covariance_prior_` (weighted
    covariance divided by ``sum(sample_weight) - 1``), which therefore needs
    ``sum(sample_weight) > 1``.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*,
       Springer, section 10.2.
    .. [2] H. Attias (2000), "A Variational Bayesian Framework for Graphical
       Models", Advances in Neural Information Processing Systems 12.
    .. [3] D. M. Blei and M. I. Jordan (2006), "Variational inference for
       Dirichlet process mixtures", Bayesian Analysis 1(1).

    Examples
    --------
    >>> import numpy as np
    >>> from fastmix import BayesianGaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    >>> bgm = BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    >>> bgm.means_.round(2)
    array([[2.5 , 2.29],
           [8.46, 4.52]])
    >>> bgm.predict([[0, 0], [9, 3]])
    array([0, 1])
    """

    _parameter_constraints: dict = {
        **BaseMixture._parameter_constraints,
        "covariance_type": [
            StrOptions({"spherical", "tied", "diag", "full", "tied-diagonal", "tied-spherical"})
        ],
        "weight_concentration_prior_type": [
            StrOptions({"dirichlet_process", "dirichlet_distribution"})
        ],
        "weight_concentration_prior": [
            None,
            Interval(Real, 0.0, None, closed="neither"),
        ],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "total_samples": [Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [
            None,
            "array-like",
            Interval(Real, 0.0, None, closed="neither"),
        ],
    }

    _parameter_names = (
        "weight_concentration_",
        "mean_precision_",
        "means_",
        "degrees_of_freedom_",
        "covariances_",
        "precisions_cholesky_",
    )

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        learning_decay=0.7,
        learning_offset=10.0,
        total_samples=1e6,
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
        self.total_samples = total_samples
        self.min_responsibility = min_responsibility
        self.covariance_type = covariance_type
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior

    # ------------------------------------------------------------ priors
    def _check_parameters(self, source):
        # The data-dependent prior defaults use the sample weights.
        self._check_priors(source)
        return {}

    def _check_priors(self, source):
        """Validate the priors (scikit-learn's order and messages) and set the `*_prior_`."""
        _, n_features = source.shape
        dtype = source.dtype
        covariance_type = self.covariance_type

        if self.weight_concentration_prior is None:
            weight_concentration_prior = 1.0 / self.n_components
        else:
            weight_concentration_prior = self.weight_concentration_prior

        if self.mean_precision_prior is None:
            mean_precision_prior = 1.0
        else:
            mean_precision_prior = self.mean_precision_prior

        mean_prior = None
        if self.mean_prior is not None:
            mean_prior = check_array(self.mean_prior, dtype=_FLOATS, ensure_2d=False)
            check_shape(mean_prior, (n_features,), "means")

        if self.degrees_of_freedom_prior is None:
            degrees_of_freedom_prior = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            degrees_of_freedom_prior = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' "
                "should be greater than %d, but got %.3f."
                % (n_features - 1, self.degrees_of_freedom_prior)
            )

        covariance_prior = None
        if self.covariance_prior is not None:
            if covariance_type in ("full", "tied"):
                covariance_prior = check_array(
                    self.covariance_prior, dtype=_FLOATS, ensure_2d=False
                )
                check_shape(
                    covariance_prior,
                    (n_features, n_features),
                    "%s covariance_prior" % covariance_type,
                )
                check_precision_matrix(covariance_prior, covariance_type)
            elif covariance_type in ("diag", "tied-diagonal"):
                if covariance_type == "tied-diagonal" and np.ndim(self.covariance_prior) == 0:
                    # ('diag' keeps scikit-learn's check_array message.)
                    raise ValueError(
                        f"The parameter 'tied-diagonal covariance_prior' should be an array of "
                        f"shape ({n_features},), one variance per feature, but got the number "
                        f"{self.covariance_prior!r}; pass np.full({n_features}, value), or use "
                        f"covariance_type='tied-spherical' for one shared variance."
                    )
                covariance_prior = check_array(
                    self.covariance_prior, dtype=_FLOATS, ensure_2d=False
                )
                check_shape(
                    covariance_prior, (n_features,), "%s covariance_prior" % covariance_type
                )
                check_precision_positivity(covariance_prior, covariance_type)
            else:
                covariance_prior = np.asarray(self.covariance_prior, dtype=np.float64)
                if covariance_prior.size != 1:
                    check_shape(covariance_prior, (), "%s covariance_prior" % covariance_type)
                check_precision_positivity(covariance_prior, covariance_type)
                covariance_prior = covariance_prior.reshape(())

        if mean_prior is None or covariance_prior is None:
            data_mean, data_cov = _data_moments(
                source, covariance_type if covariance_prior is None else None
            )
            if mean_prior is None:
                mean_prior = data_mean
            if covariance_prior is None:
                covariance_prior = data_cov

        self.weight_concentration_prior_ = weight_concentration_prior
        self.mean_precision_prior_ = mean_precision_prior
        self.mean_prior_ = np.asarray(mean_prior, dtype=dtype)
        self.degrees_of_freedom_prior_ = degrees_of_freedom_prior
        self.covariance_prior_ = _as_dtype(covariance_prior, dtype)

    def _variational_prior(self):
        # Built once per prior: an online step is mostly call overhead, and
        # the conversions were 5 us of it.
        sources = (
            self.weight_concentration_prior_type,
            self.weight_concentration_prior_,
            self.mean_precision_prior_,
            self.mean_prior_,
            self.degrees_of_freedom_prior_,
            self.covariance_prior_,
        )
        prior = self._recall("_prior", sources)
        if prior is None:
            prior = self._build_variational_prior()
            self._remember("_prior", sources, prior)
        return prior

    def _build_variational_prior(self):
        return VariationalPrior(
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration=float(self.weight_concentration_prior_),
            mean_precision=float(self.mean_precision_prior_),
            mean=np.asarray(self.mean_prior_, dtype=np.float64),
            degrees_of_freedom=float(self.degrees_of_freedom_prior_),
            covariance=np.asarray(self.covariance_prior_, dtype=np.float64),
        )

    # ------------------------------------------------------------- hooks
    def _needs_resp_init(self, inits):
        return True

    def _initialize(self, source, stats, inits):
        self._m_step(stats, source.dtype)

    def _m_step(self, stats, dtype, derive=True):
        prior = self._variational_prior()
        if self.covariance_type in ("full", "tied"):
            post = posterior(stats, prior, self.reg_covar, self.covariance_type, dtype)
            concentration = post["weight_concentration"]
            mean_precision, means = post["mean_precision"], post["means"]
            dof, covariances = post["degrees_of_freedom"], post["covariances"]
            prec_chol = post["precisions_cholesky"]
            weights = terms = None
        else:
            # posterior()'s diagonal branch without its dict: the kernel's arrays
            # as they come (an online step's update is mostly call overhead).
            a, b, mean_precision, means, dof, covariances, prec_chol, weights, terms = (
                diag_posterior_arrays(stats, prior, self.reg_covar, self.covariance_type, dtype)
            )
            concentration = (a, b) if prior.diag_kernel_args[0] else a
        if self.weight_concentration_prior_type == "dirichlet_process":
            a, b = concentration
            self.weight_concentration_ = (np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype))
        else:
            self.weight_concentration_ = np.asarray(concentration, dtype=dtype)
        self.mean_precision_ = np.asarray(mean_precision, dtype=dtype)
        self.means_ = np.asarray(means, dtype=dtype)
        self.degrees_of_freedom_ = _as_dtype(dof, dtype)
        self.covariances_ = np.asarray(covariances, dtype=dtype)
        self.precisions_cholesky_ = np.asarray(prec_chol, dtype=dtype)
        if derive:
            # The derived arrays, from the update's kernel where it computed them
            # (the diagonal types; the same numbers as _derive_parameters').
            if weights is None:
                weights = weights_from_concentration(
                    self.weight_concentration_, self.weight_concentration_prior_type
                )
            self.weights_ = weights.astype(dtype)
            super()._derive_parameters()
        return terms

    def _check_savable(self):
        # The weights' posterior is a pair of arrays for the Dirichlet process
        # and one array otherwise: named here, before the shapes' message.
        process = self.weight_concentration_prior_type == "dirichlet_process"
        if isinstance(self.weight_concentration_, tuple) != process:
            fitted = "dirichlet_distribution" if process else "dirichlet_process"
            raise ValueError(
                f"weight_concentration_prior_type={self.weight_concentration_prior_type!r}, "
                f"but this model was fitted with {fitted!r}: the file must describe that "
                f"fit. Set it back to {fitted!r}, or call fit to start afresh."
            )
        super()._check_savable()

    def _update_calls_blas(self):
        # The diagonal types' variational update is serial numba kernels
        # (fastmix._kernels.variational): only 'full' and 'tied' call BLAS.
        return self.covariance_type in ("full", "tied")

    def _kernel_params(self, dtype):
        bias = variational_bias(
            self.weight_concentration_,
            self.weight_concentration_prior_type,
            self.degrees_of_freedom_,
            self.mean_precision_,
            self.means_.shape[1],
        )
        return kernel_params(
            self.means_, self.precisions_cholesky_, self.covariance_type, bias, dtype
        )

    def _compute_lower_bound(self, stats, terms=None):
        return self._lower_bound(stats.sum_wrlogr, terms)

    def _lower_bound(self, sum_wrlogr, terms=None):
        if terms is not None:  # the update's: the kernel's lower_bound, in its order
            return np.float64(terms - sum_wrlogr)
        return lower_bound(
            sum_wrlogr,
            self.weight_concentration_,
            self.weight_concentration_prior_type,
            self.mean_precision_,
            self.degrees_of_freedom_,
            self.precisions_cholesky_,
            self.covariance_type,
            self.means_.shape[1],
        )

    def _online_lower_bound(self, batch, scale, terms=None):
        # The bound reads one sum of the statistics: scale that one alone.
        return self._lower_bound(batch.sum_wrlogr * scale, terms)

    def _online_scale(self, batch):
        # Stochastic VI: the batch stands for total_samples rows.
        return self.total_samples / batch.sum_w

    def _online_m_step(self, running, batch, dtype, later=False):
        # A component without rows falls back to the prior: nothing to keep.
        return self._m_step(running, dtype)

    def log_predictive(self, X):
        """Log of the posterior predictive density of each sample.

        The density of a new row averaged over the variational posterior of
        the parameters, a mixture of Student-t densities with the posterior
        mean weights (`weights_`) [1]_:
        ``p(x) = sum_k weights_[k] St(x | m_k, L_k, nu_k + 1 - D)`` with
        ``L_k = (nu_k + 1 - D) beta_k / (1 + beta_k) W_k`` (Bishop's eq.
        10.81; ``m_k``, ``beta_k``, ``nu_k`` and ``W_k^{-1} / nu_k`` are
        `means_`, `mean_precision_`, `degrees_of_freedom_` and
        `covariances_`). Unlike :meth:`score_samples` it is a normalised
        density: it integrates to one over the feature space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            List of n_features-dimensional data points: an ndarray, a
            memmap (read block by block) or a dask array (the result is then
            a lazy dask array).

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            ``log p(x | training data)`` of each sample, in X's floating dtype
            (computed in float64).

        See Also
        --------
        score_samples : scikit-learn's per-sample score.

        Notes
        -----
        scikit-learn's ``score_samples`` (and fastmix's, which keeps its
        numbers) is the log of ``sum_k exp(E[log pi_k] + E[log N(x | mu_k,
        Lambda_k)])``, the normaliser of the variational responsibilities: a
        lower bound that does not integrate to one (scikit-learn issue
        #10148). This method evaluates the predictive density itself.

        'tied' shares one Wishart between the components (each mean keeps its
        own ``beta_k``). For 'diag' the posterior is the conjugate
        Normal-Gamma one per feature (precision ``Gamma(nu_k / 2, nu_k C_kd /
        2)``, with ``C_k`` = `covariances_`), so each component is a product
        of univariate Student-t densities with ``nu_k`` degrees of freedom and
        squared scales ``(1 + beta_k) / beta_k C_kd``; for 'spherical' one
        Gamma precision per component gives a D-variate Student-t with
        ``nu_k`` degrees of freedom and scale ``(1 + beta_k) / beta_k C_k I``.
        As the data grow every component tends to ``N(m_k, C_k)``.

        References
        ----------
        .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine
           Learning*, Springer, section 10.2.3.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.integrate import quad
        >>> from fastmix import BayesianGaussianMixture
        >>> X = np.array([[1.0], [1.5], [0.5], [8.0], [8.5], [9.0]])
        >>> bgm = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
        >>> def density(x):
        ...     return np.exp(bgm.log_predictive([[x]])[0])
        >>> round(quad(density, -np.inf, np.inf)[0], 6)
        1.0
        """
        source = self._validate_predict_data(X)
        weights = weights_from_concentration(
            self.weight_concentration_, self.weight_concentration_prior_type
        )
        mixture = predictive_mixture(
            weights,
            self.means_,
            self.mean_precision_,
            self.degrees_of_freedom_,
            self.precisions_cholesky_,
            self.covariance_type,
        )
        return source.map_rows(mixture).astype(source.dtype, copy=False)

    def _derive_parameters(self):
        dtype = self.precisions_cholesky_.dtype
        self.weights_ = weights_from_concentration(
            self.weight_concentration_, self.weight_concentration_prior_type
        ).astype(dtype)
        super()._derive_parameters()
