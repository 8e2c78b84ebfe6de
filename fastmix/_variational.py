"""Variational-inference updates on :class:`~fastmix._stats.Stats` (NumPy, O(K·D³)).

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
statistics of one streaming pass.

References
----------
.. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*,
   section 10.2 (equations 10.46-10.77).
.. [2] H. Attias (2000), "A Variational Bayesian Framework for Graphical
   Models", NIPS 12.
.. [3] D. M. Blei and M. I. Jordan (2006), "Variational inference for
   Dirichlet process mixtures", Bayesian Analysis 1(1).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln

from ._stats import TIED_TYPES
from ._update import gaussian_parameters, log_det_cholesky, precision_cholesky

_LOG_2 = math.log(2.0)


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


# ------------------------------------------------------------------ weights
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
    nk = np.asarray(nk, dtype=np.float64)
    if prior_type == "dirichlet_process":
        return (
            1.0 + nk,
            concentration_prior + np.hstack((np.cumsum(nk[::-1])[-2::-1], 0)),
        )
    return concentration_prior + nk


def expected_log_weights(concentration, prior_type):
    """``E[log pi_k]`` under the posterior of the weights.

    For the Dirichlet distribution ``psi(alpha_k) - psi(sum alpha)``; for the
    stick-breaking process ``E[log v_k] + sum_{j < k} E[log(1 - v_j)]``.

    Returns
    -------
    ndarray of shape (K,), float64
    """
    if prior_type == "dirichlet_process":
        a = np.asarray(concentration[0], dtype=np.float64)
        b = np.asarray(concentration[1], dtype=np.float64)
        digamma_sum = digamma(a + b)
        digamma_a = digamma(a)
        digamma_b = digamma(b)
        return digamma_a - digamma_sum + np.hstack((0, np.cumsum(digamma_b - digamma_sum)[:-1]))
    alpha = np.asarray(concentration, dtype=np.float64)
    return digamma(alpha) - digamma(np.sum(alpha))


def weights_from_concentration(concentration, prior_type):
    """The posterior mean weights (``weights_``), normalised to sum to one."""
    if prior_type == "dirichlet_process":
        a = np.asarray(concentration[0], dtype=np.float64)
        b = np.asarray(concentration[1], dtype=np.float64)
        total = a + b
        weights = a / total * np.hstack((1, np.cumprod(b / total)[:-1]))
        return weights / np.sum(weights)
    alpha = np.asarray(concentration, dtype=np.float64)
    return alpha / np.sum(alpha)


def log_dirichlet_norm(concentration):
    """``log C(alpha) = log Gamma(sum alpha) - sum log Gamma(alpha)`` (Bishop B.23)."""
    concentration = np.asarray(concentration, dtype=np.float64)
    return gammaln(np.sum(concentration)) - np.sum(gammaln(concentration))


# ---------------------------------------------------------- means, Wishart
def mean_posterior(nk, xk, mean_precision_prior, mean_prior):
    """``beta_k = beta_0 + N_k`` and ``m_k = (beta_0 m_0 + N_k xbar_k) / beta_k`` (10.60-61).

    Returns
    -------
    mean_precision : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    """
    mean_precision = mean_precision_prior + nk
    means = (mean_precision_prior * mean_prior + nk[:, np.newaxis] * xk) / mean_precision[
        :, np.newaxis
    ]
    return mean_precision, means


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


def _wishart_diag(nk, xk, sk, mean_precision, prior):
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    cov = prior.covariance + nk[:, np.newaxis] * (
        sk + (prior.mean_precision / mean_precision)[:, np.newaxis] * np.square(diff)
    )
    return dof, cov / dof[:, np.newaxis]


def _wishart_spherical(nk, xk, sk, mean_precision, prior):
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    cov = prior.covariance + nk * (
        sk + prior.mean_precision / mean_precision * np.mean(np.square(diff), 1)
    )
    return dof, cov / dof


def _wishart_shared(nk, sk, mean_precision, prior, square_diff):
    """One posterior for every component, 'tied' restricted to a diagonal or a variance.

    ``square_diff`` is ``(xbar_k - m_0)^2`` per feature (tied-diagonal) or its
    mean over features (tied-spherical).
    """
    n_components = nk.shape[0]
    dof = prior.degrees_of_freedom + nk.sum() / n_components
    cov = (
        prior.covariance
        + sk * nk.sum() / n_components
        + prior.mean_precision / n_components * np.dot(nk / mean_precision, square_diff)
    )
    return dof, cov / dof


def _wishart_tied_diagonal(nk, xk, sk, mean_precision, prior):
    return _wishart_shared(nk, sk, mean_precision, prior, np.square(xk - prior.mean))


def _wishart_tied_spherical(nk, xk, sk, mean_precision, prior):
    square_diff = np.mean(np.square(xk - prior.mean), axis=1)
    return _wishart_shared(nk, sk, mean_precision, prior, square_diff)


_WISHART = {
    "full": _wishart_full,
    "tied": _wishart_tied,
    "diag": _wishart_diag,
    "spherical": _wishart_spherical,
    "tied-diagonal": _wishart_tied_diagonal,
    "tied-spherical": _wishart_tied_spherical,
}


def wishart_posterior(nk, xk, sk, mean_precision, prior, covariance_type):
    """Posterior Wishart degrees of freedom and normalised covariances (10.62-63).

    ``nu_k = nu_0 + N_k`` and ``W_k^{-1} = W_0^{-1} + N_k S_k + beta_0 N_k /
    beta_k (xbar_k - m_0)(xbar_k - m_0)^T``; the returned covariances are
    ``W_k^{-1} / nu_k``. The tied model shares one Wishart with ``nu = nu_0 +
    N / K`` (scikit-learn's convention); diag and spherical use the
    corresponding diagonal / isotropic restriction, and tied-diagonal and
    tied-spherical that restriction of the shared tied posterior: the diagonal
    of the tied ``W^{-1}``, and its mean over features.

    Parameters
    ----------
    nk : ndarray of shape (K,)
    xk : ndarray of shape (K, D)
        Weighted component means of the data.
    sk : ndarray
        Weighted covariances of the data (with ``reg_covar``), shaped per
        ``covariance_type``: (K, D, D), (D, D), (K, D), (K,), (D,)
        (tied-diagonal) or () (tied-spherical).
    mean_precision : ndarray of shape (K,)
    prior : VariationalPrior
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}

    Returns
    -------
    degrees_of_freedom : ndarray of shape (K,), or a float64 scalar for the
        tied types
    covariances : ndarray shaped like ``sk``
    """
    return _WISHART[covariance_type](nk, xk, sk, mean_precision, prior)


def log_lambda(degrees_of_freedom, n_features):
    """Wishart expectation term ``E[log|Lambda|] - log|W| = D log 2 + sum_i psi((nu - i) / 2)``.

    The sum runs over ``i = 0 .. D-1`` (Bishop 10.65). Elementwise in
    ``degrees_of_freedom``.
    """
    dof = np.asarray(degrees_of_freedom, dtype=np.float64)
    return n_features * _LOG_2 + np.sum(
        digamma(0.5 * (dof[..., np.newaxis] - np.arange(n_features))), axis=-1
    )


def log_wishart_norm(degrees_of_freedom, log_det_precisions_chol, n_features):
    """Log normaliser of the Wishart distribution, without its ``log pi`` term.

    ``-(nu log|U| + nu D/2 log 2 + sum_i log Gamma((nu - i) / 2))`` with
    ``log|U| = log|W| / 2`` (Bishop B.79 less ``D(D-1)/4 log pi``). Elementwise
    in ``degrees_of_freedom``.
    """
    dof = np.asarray(degrees_of_freedom, dtype=np.float64)
    return -(
        dof * log_det_precisions_chol
        + dof * n_features * 0.5 * _LOG_2
        + np.sum(gammaln(0.5 * (dof[..., np.newaxis] - np.arange(n_features))), axis=-1)
    )


# ------------------------------------------------------------ E-step bias
def variational_bias(log_weights, degrees_of_freedom, mean_precision, n_features):
    """Per-component constant of the variational E-step's log-density.

    With the precision Cholesky ``U_k`` of ``nu_k W_k`` (scikit-learn's
    ``precisions_cholesky_``), Bishop's 10.46 and 10.64-65 give

    ``log rho_nk = log N(x_n | m_k, (nu_k W_k)^{-1}) + E[log pi_k]
    - D/2 log nu_k + (log_lambda_k - D / beta_k) / 2``

    and this function returns the last three terms: the kernel adds
    ``log|U_k| - D/2 log 2 pi`` and the quadratic form itself.

    Returns
    -------
    ndarray of shape (K,), float64
    """
    dof = np.asarray(degrees_of_freedom, dtype=np.float64)
    mean_precision = np.asarray(mean_precision, dtype=np.float64)
    return (
        np.asarray(log_weights, dtype=np.float64)
        - 0.5 * n_features * np.log(dof)
        + 0.5 * (log_lambda(dof, n_features) - n_features / mean_precision)
    )


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
        and ``precisions_cholesky``.

    Raises
    ------
    ValueError
        scikit-learn's message when a posterior covariance is not
        positive-definite.
    """
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
    mean_precision = np.asarray(mean_precision, dtype=np.float64)
    dof = np.asarray(degrees_of_freedom, dtype=np.float64)
    n_components = mean_precision.shape[0]
    # log|U_k| of the precision without its degrees of freedom: log|W_k| / 2.
    log_det = log_det_cholesky(
        precisions_cholesky, covariance_type, n_features
    ) - 0.5 * n_features * np.log(dof)
    log_wishart = np.sum(log_wishart_norm(dof, log_det, n_features))
    if covariance_type in TIED_TYPES:
        log_wishart = n_components * log_wishart
    if prior_type == "dirichlet_process":
        log_norm_weight = -np.sum(
            betaln(
                np.asarray(concentration[0], dtype=np.float64),
                np.asarray(concentration[1], dtype=np.float64),
            )
        )
    else:
        log_norm_weight = log_dirichlet_norm(concentration)
    return np.float64(
        -sum_wrlogr
        - log_wishart
        - log_norm_weight
        - 0.5 * n_features * np.sum(np.log(mean_precision))
    )


__all__ = [
    "VariationalPrior",
    "weight_concentration",
    "expected_log_weights",
    "weights_from_concentration",
    "log_dirichlet_norm",
    "mean_posterior",
    "wishart_posterior",
    "log_lambda",
    "log_wishart_norm",
    "variational_bias",
    "moments_from_stats",
    "posterior",
    "lower_bound",
]
