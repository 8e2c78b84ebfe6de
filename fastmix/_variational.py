"""Variational-inference updates on :class:`~fastmix._stats.Stats` (O(K·D³)).

Mean-field variational Bayes for a Gaussian mixture with a Dirichlet
(``dirichlet_distribution``) or truncated stick-breaking Dirichlet-process
(``dirichlet_process``) prior on the weights and a Gaussian-Wishart prior on
each component's mean and precision, exactly as scikit-learn's
``BayesianGaussianMixture`` parameterises it [1]_ [2]_ [3]_:

- the posterior "covariances" are normalised, ``covariances_ = W_k^{-1} / nu_k``,
  so ``precisions_cholesky_`` already contains ``sqrt(nu_k)``;
- the E-step's expected log-density of component k is the Gaussian
  log-density with that precision Cholesky plus the per-component constant
  of :func:`variational_bias`; the streaming kernel evaluates it unchanged;
- the evidence lower bound (:func:`lower_bound`) drops every constant term
  and is *not* divided by the number of samples.

Nothing here reads the data: every function takes K-sized arrays or the
statistics of one streaming pass. The closed forms that do not depend on the
covariance type (weights, means, the E-step bias, the bound), and the
diagonal types' Wishart posterior, run in the serial kernels of
:mod:`fastmix._kernels.variational`, digamma and log-gamma included; 'full'
and 'tied' keep their Wishart posterior here, in NumPy.

References
----------
.. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*,
   section 10.2 (equations 10.46-10.77).
.. [2] H. Attias (2000), "A Variational Bayesian Framework for Graphical
   Models", NIPS 12.
.. [3] D. M. Blei and M. I. Jordan (2006), "Variational inference for
   Dirichlet process mixtures", Bayesian Analysis 1(1).
"""

import functools
from dataclasses import dataclass

import numpy as np

from ._kernels import variational as _kernels
from ._stats import TIED_TYPES
from ._update import (
    check_diag_status,
    diag_layout,
    diag_parameter_inputs,
    factor_diagonals,
    gaussian_parameters,
    kernel_array,
    precision_cholesky,
)


@dataclass(frozen=True)
class VariationalPrior:
    """The prior of a variational Gaussian mixture, in float64.

    Attributes
    ----------
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    weight_concentration : float
        Dirichlet concentration (``gamma`` of the stick-breaking Beta(1, gamma)).
    mean_precision : float
        ``beta_0``, the precision of the Gaussian prior on the means.
    mean : ndarray of shape (D,)
        ``m_0``, the mean of the Gaussian prior on the means.
    degrees_of_freedom : float
        ``nu_0`` of the Wishart prior.
    covariance : float or ndarray
        ``W_0^{-1}``: (D, D) for 'full' and 'tied', (D,) for 'diag' and
        'tied-diagonal', a float for 'spherical' and 'tied-spherical'.
    """

    weight_concentration_prior_type: str
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: object

    @functools.cached_property
    def diag_kernel_args(self):
        """The prior as the diagonal types' posterior kernel takes it, converted once.

        ``(dirichlet_process, weight_concentration, mean_precision, mean,
        degrees_of_freedom, covariance)``: a flag, floats, and float64
        contiguous 1-D arrays (``covariance`` of 1 or D values).
        """
        return (
            self.weight_concentration_prior_type == "dirichlet_process",
            float(self.weight_concentration),
            float(self.mean_precision),
            _float64(self.mean),
            float(self.degrees_of_freedom),
            _float64(self.covariance),
        )


# ------------------------------------------------------------------ weights
def _sticks(concentration, prior_type):
    """The kernels' form of a weight posterior: ``(a, b, dirichlet_process)``.

    ``b`` is empty for the Dirichlet distribution; float64, contiguous.
    """
    if prior_type == "dirichlet_process":
        a, b = (_float64(c) for c in concentration)
        if b.shape != a.shape:  # the kernels index both by k, unchecked
            _refuse("weight_concentration_[1]", b.shape[0], a.shape[0])
        return a, b, True
    return _float64(concentration), _NO_STICKS, False


def _float64(values):
    """A 1-D :func:`fastmix._update.kernel_array` (a scalar becomes one value)."""
    out = kernel_array(values)
    return out if out.ndim == 1 else out.reshape(-1)


def _check_components(a, mean_precision, dof):
    """Refuse fitted attributes that disagree on the number of components.

    The kernels index these K-arrays without bounds checks; NumPy's
    broadcasting refused such a model, and so does this.
    """
    n_components = a.shape[0]
    if mean_precision.shape != (n_components,):
        _refuse("mean_precision_", mean_precision.shape[0], n_components)
    if dof.shape[0] not in (1, n_components):
        _refuse("degrees_of_freedom_", dof.shape[0], n_components)


def _refuse(name, n_values, n_components):
    raise ValueError(
        f"{name} has {n_values} values, but weight_concentration_ has {n_components} "
        "components: the fitted attributes disagree. Refit the model, or set every "
        "fitted attribute from the same fit."
    )


_NO_STICKS = np.empty(0)


def weight_concentration(nk, prior_type, concentration_prior):
    """Posterior parameters of the weight distribution (Bishop 10.58; Blei-Jordan).

    Parameters
    ----------
    nk : ndarray of shape (K,)
        Weighted responsibility counts.
    prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    concentration_prior : float

    Returns
    -------
    ndarray of shape (K,), or a tuple of two of them
        The Dirichlet concentrations ``alpha_0 + N_k``, or for the
        Dirichlet process the Beta parameters of the sticks,
        ``(1 + N_k, gamma + sum_{j > k} N_j)``.
    """
    dirichlet_process = prior_type == "dirichlet_process"
    a, b = _kernels.weight_concentration(
        _float64(nk), dirichlet_process, float(concentration_prior)
    )
    return (a, b) if dirichlet_process else a


def expected_log_weights(concentration, prior_type):
    """``E[log pi_k]`` under the posterior of the weights.

    For the Dirichlet distribution ``psi(alpha_k) - psi(sum alpha)``; for the
    stick-breaking process ``E[log v_k] + sum_{j < k} E[log(1 - v_j)]``.

    Returns
    -------
    ndarray of shape (K,), float64
    """
    return _kernels.expected_log_weights(*_sticks(concentration, prior_type))


def weights_from_concentration(concentration, prior_type):
    """The posterior mean weights (``weights_``), normalised to sum to one."""
    return _kernels.weights_from_concentration(*_sticks(concentration, prior_type))


# ---------------------------------------------------------- means, Wishart
def mean_posterior(nk, xk, mean_precision_prior, mean_prior):
    """``beta_k = beta_0 + N_k`` and ``m_k = (beta_0 m_0 + N_k xbar_k) / beta_k`` (10.60-61).

    Returns
    -------
    mean_precision : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    """
    return _kernels.mean_posterior(
        _float64(nk),
        kernel_array(xk),
        float(mean_precision_prior),
        _float64(mean_prior),
    )


def _wishart_full(nk, xk, sk, mean_precision, prior):
    n_components, n_features = xk.shape
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    scale = nk * prior.mean_precision / mean_precision
    cov = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        cov[k] = prior.covariance + nk[k] * sk[k] + scale[k] * np.outer(diff[k], diff[k])
    cov /= dof[:, np.newaxis, np.newaxis]
    return dof, cov


def _wishart_tied(nk, xk, sk, mean_precision, prior):
    n_components = xk.shape[0]
    dof = prior.degrees_of_freedom + nk.sum() / n_components
    diff = xk - prior.mean
    cov = (
        prior.covariance
        + sk * nk.sum() / n_components
        + prior.mean_precision / n_components * np.dot((nk / mean_precision) * diff.T, diff)
    )
    return dof, cov / dof


def wishart_posterior(nk, xk, sk, mean_precision, prior, covariance_type):
    """Posterior Wishart degrees of freedom and normalised covariances (10.62-63), full and tied.

    ``nu_k = nu_0 + N_k`` and ``W_k^{-1} = W_0^{-1} + N_k S_k + beta_0 N_k /
    beta_k (xbar_k - m_0)(xbar_k - m_0)^T``; the returned covariances are
    ``W_k^{-1} / nu_k``. The tied model shares one Wishart with ``nu = nu_0 +
    N / K`` (scikit-learn's convention). The diagonal types' restrictions are
    :func:`fastmix._kernels.variational.diag_wishart`.

    Parameters
    ----------
    nk : ndarray of shape (K,)
    xk : ndarray of shape (K, D)
        Weighted component means of the data.
    sk : ndarray of shape (K, D, D) or (D, D)
        Weighted covariances of the data (with ``reg_covar``).
    mean_precision : ndarray of shape (K,)
    prior : VariationalPrior
    covariance_type : {'full', 'tied'}

    Returns
    -------
    degrees_of_freedom : ndarray of shape (K,), or a float64 scalar for 'tied'
    covariances : ndarray shaped like ``sk``
    """
    if covariance_type == "full":
        return _wishart_full(nk, xk, sk, mean_precision, prior)
    if covariance_type == "tied":
        return _wishart_tied(nk, xk, sk, mean_precision, prior)
    raise ValueError(
        f"wishart_posterior computes 'full' and 'tied' only, got {covariance_type!r}; "
        "the diagonal types' posterior is fastmix._kernels.variational.diag_wishart "
        "(through posterior)."
    )


# ------------------------------------------------------------ E-step bias
def variational_bias(concentration, prior_type, degrees_of_freedom, mean_precision, n_features):
    """Per-component constant of the variational E-step's log-density.

    With the precision Cholesky ``U_k`` of ``nu_k W_k`` (scikit-learn's
    ``precisions_cholesky_``), Bishop's 10.46 and 10.64-65 give

    ``log rho_nk = log N(x_n | m_k, (nu_k W_k)^{-1}) + E[log pi_k]
    - D/2 log nu_k + (log_lambda_k - D / beta_k) / 2``

    with ``log_lambda = D log 2 + sum_{i < D} psi((nu - i) / 2)``, and this
    function returns the last three terms: the kernel adds
    ``log|U_k| - D/2 log 2 pi`` and the quadratic form itself.

    Parameters
    ----------
    concentration : ndarray of shape (K,) or a pair of them
        The weights' posterior (``weight_concentration_``).
    prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    degrees_of_freedom : ndarray of shape (K,), or a scalar for the tied types
    mean_precision : ndarray of shape (K,)
    n_features : int

    Returns
    -------
    ndarray of shape (K,), float64
    """
    a, b, dirichlet_process = _sticks(concentration, prior_type)
    dof = _float64(degrees_of_freedom)
    mean_precision = _float64(mean_precision)
    _check_components(a, mean_precision, dof)
    return _kernels.variational_bias(a, b, dirichlet_process, dof, mean_precision, int(n_features))


# ---------------------------------------------------------- data priors
def moments_from_stats(stats, covariance_type):
    """The data-dependent prior defaults from one-component statistics.

    ``stats`` holds one component whose responsibility is 1 for every row,
    accumulated around a centre ``c``: ``W = sum w``, ``s1 = sum w (x - c)``,
    ``S2 = sum w (x - c)(x - c)^T`` (or its diagonal). Returns the weighted
    mean ``c + s1 / W`` and the weighted covariance with frequency-weight
    semantics, ``(S2 - s1 s1^T / W) / (W - 1)``, so that integer weights give
    the moments of the repeated rows (``np.cov(X.T)``, ``np.var(X, 0, ddof=1)``
    and its mean when every weight is 1).

    Parameters
    ----------
    stats : Stats
        One component; FULL statistics for 'full'/'tied', DIAG otherwise.
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}

    Returns
    -------
    mean : ndarray of shape (D,), float64
    covariance : ndarray of shape (D, D) or (D,), or a float64 scalar
        for 'spherical' and 'tied-spherical'.

    Raises
    ------
    ValueError
        When the weights sum to at most one (the unbiased covariance is then
        undefined).
    """
    total = stats.sum_w
    if not total > 1.0:
        raise ValueError(
            "The default covariance_prior is the weighted covariance of X with "
            "frequency-weight semantics, which needs sum(sample_weight) > 1, but got "
            f"sum(sample_weight) = {total!r}. Pass covariance_prior explicitly or "
            "rescale sample_weight."
        )
    s1 = stats.s1[0]
    mean = stats.shift[0] + s1 / total
    if covariance_type in ("full", "tied"):
        scatter = stats.s2_mat[0] - np.outer(s1, s1) / total
        return mean, np.atleast_2d(scatter / (total - 1.0))
    # A feature constant to the float32 tiles' rounding (fastmix._kernels.estep
    # ._diag_moments) can leave its scatter just below zero: np.var, which
    # scikit-learn uses here, is never negative.
    var = np.maximum(stats.s2_diag[0] - s1 * s1 / total, 0.0) / (total - 1.0)
    if covariance_type in ("diag", "tied-diagonal"):
        return mean, var
    return mean, np.float64(var.mean())


# ------------------------------------------------------------ the update
def posterior(stats, prior, reg_covar, covariance_type, dtype):
    """The variational M-step: every posterior parameter from one pass's statistics.

    Parameters
    ----------
    stats : Stats
        Statistics of the current responsibilities (possibly weighted).
    prior : VariationalPrior
    reg_covar : float
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}
    dtype : numpy dtype
        The data's dtype (its ``eps`` enters the counts, as in scikit-learn).

    Returns
    -------
    dict
        float64 ``weight_concentration`` (array or pair of arrays),
        ``mean_precision``, ``means``, ``degrees_of_freedom``, ``covariances``
        and ``precisions_cholesky``. The diagonal types' also hold
        ``weights`` and ``bound_terms``: :func:`weights_from_concentration`
        and the parameters' terms of :func:`lower_bound` (the bound is
        ``bound_terms - sum_wrlogr``), both of the posterior rounded to
        ``dtype``, as the model stores it.

    Raises
    ------
    ValueError
        scikit-learn's message when a posterior covariance is not
        positive-definite.
    """
    if covariance_type not in ("full", "tied"):
        return _diag_posterior(stats, prior, reg_covar, covariance_type, dtype)
    nk, xk, sk = gaussian_parameters(stats, reg_covar, covariance_type, dtype)
    concentration = weight_concentration(
        nk, prior.weight_concentration_prior_type, prior.weight_concentration
    )
    mean_precision, means = mean_posterior(nk, xk, prior.mean_precision, prior.mean)
    dof, covariances = wishart_posterior(nk, xk, sk, mean_precision, prior, covariance_type)
    prec_chol = precision_cholesky(covariances, covariance_type, dtype)
    return {
        "weight_concentration": concentration,
        "mean_precision": mean_precision,
        "means": means,
        "degrees_of_freedom": dof,
        "covariances": covariances,
        "precisions_cholesky": prec_chol,
    }


def diag_posterior_arrays(stats, prior, reg_covar, covariance_type, dtype):
    """:func:`posterior` for the diagonal types, as the one kernel gives it.

    Returns
    -------
    a, b, mean_precision, means, dof, covariances, precisions_cholesky, weights, terms
        float64: the weights' posterior (``b`` empty for the Dirichlet
        distribution), then as :func:`posterior` gives them: ``dof`` (a
        scalar for the tied types), the covariances and factors in
        scikit-learn's layout, ``weights`` and ``bound_terms``.
    """
    a, b, mean_precision, means, dof, cov, prec_chol, status, weights, terms = (
        _kernels.diag_posterior(
            *diag_parameter_inputs(stats, reg_covar, covariance_type, dtype),
            *prior.diag_kernel_args,
            np.dtype(dtype) == np.float32,
        )
    )
    check_diag_status(status, dtype)
    return (
        a,
        b,
        mean_precision,
        means,
        dof[0] if covariance_type in TIED_TYPES else dof,
        diag_layout(cov, covariance_type),
        diag_layout(prec_chol.reshape(cov.shape), covariance_type),
        weights,
        terms,
    )


def _diag_posterior(stats, prior, reg_covar, covariance_type, dtype):
    """:func:`posterior` for the diagonal types: one kernel, the same stages."""
    a, b, mean_precision, means, dof, cov, prec_chol, weights, terms = diag_posterior_arrays(
        stats, prior, reg_covar, covariance_type, dtype
    )
    return {
        "weights": weights,
        "bound_terms": terms,
        "weight_concentration": (a, b) if prior.diag_kernel_args[0] else a,
        "mean_precision": mean_precision,
        "means": means,
        "degrees_of_freedom": dof,
        "covariances": cov,
        "precisions_cholesky": prec_chol,
    }


def lower_bound(
    sum_wrlogr,
    concentration,
    prior_type,
    mean_precision,
    degrees_of_freedom,
    precisions_cholesky,
    covariance_type,
    n_features,
):
    """scikit-learn's evidence lower bound, constants dropped, not divided by n.

    ``-sum_i w_i sum_k r_ik log r_ik - sum_k log B(W_k, nu_k) - log C(alpha)
    - D/2 sum_k log beta_k``, evaluated with the post-update parameters and
    the responsibilities that produced them (so the terms that the optimal
    update makes cancel are gone). For the Dirichlet process ``log C(alpha)``
    becomes ``-sum_k log Beta(a_k, b_k)``; for the tied types the one shared
    Wishart term counts ``K`` times.

    Parameters
    ----------
    sum_wrlogr : float
        ``Stats.sum_wrlogr``: ``sum_i w_i sum_k r_ik log r_ik``.
    concentration : ndarray of shape (K,) or a pair of them
    prior_type : {'dirichlet_process', 'dirichlet_distribution'}
    mean_precision : ndarray of shape (K,)
    degrees_of_freedom : ndarray of shape (K,), or a scalar for the tied types
    precisions_cholesky : ndarray
        scikit-learn's layout for ``covariance_type``.
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}
    n_features : int

    Returns
    -------
    numpy.float64
        A scalar for every covariance type (scikit-learn returns a
        one-element array for 'tied').
    """
    a, b, dirichlet_process = _sticks(concentration, prior_type)
    dof = _float64(degrees_of_freedom)
    mean_precision = _float64(mean_precision)
    _check_components(a, mean_precision, dof)
    components = None if covariance_type in TIED_TYPES else a.shape[0]
    diagonals = factor_diagonals(precisions_cholesky, covariance_type, n_features, components)
    if diagonals.shape[0] != dof.shape[0]:  # per-component factors, one dof
        raise ValueError(
            f"degrees_of_freedom_ has {dof.shape[0]} value(s), but covariance_type="
            f"{covariance_type!r} with {a.shape[0]} components needs {diagonals.shape[0]}: "
            "the fitted attributes disagree. Refit the model, or set every fitted "
            "attribute from the same fit."
        )
    return np.float64(
        _kernels.lower_bound(
            float(sum_wrlogr),
            a,
            b,
            dirichlet_process,
            mean_precision,
            dof,
            diagonals,
            int(n_features),
        )
    )


__all__ = [
    "VariationalPrior",
    "weight_concentration",
    "expected_log_weights",
    "weights_from_concentration",
    "mean_posterior",
    "wishart_posterior",
    "variational_bias",
    "moments_from_stats",
    "posterior",
    "lower_bound",
]
