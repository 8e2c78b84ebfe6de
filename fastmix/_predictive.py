"""The posterior predictive density of a variational Gaussian mixture (NumPy).

For the variational posterior of :mod:`fastmix._variational` (scikit-learn's
parameterisation), the density of a new row ``x`` averaged over the posterior,

``p(x | data) = sum_k E[pi_k] integral N(x | mu_k, Lambda_k^{-1})
q(mu_k, Lambda_k) dmu_k dLambda_k``,

is a mixture of Student-t densities (Bishop 2006, eq. 10.81) [1]_. With the
posterior mean weights ``w_k`` (``weights_``), ``m_k`` (``means_``),
``beta_k`` (``mean_precision_``), ``nu_k`` (``degrees_of_freedom_``) and
``C_k = W_k^{-1} / nu_k`` (``covariances_``), per covariance type:

- 'full': ``q(Lambda_k) = Wishart(W_k, nu_k)`` and ``mu_k | Lambda_k ~
  N(m_k, (beta_k Lambda_k)^{-1})``; the component is a D-variate Student-t
  with ``nu_k + 1 - D`` degrees of freedom and scale matrix
  ``(1 + beta_k) / beta_k * nu_k / (nu_k + 1 - D) * C_k`` (the inverse of
  Bishop's ``L_k = (nu_k + 1 - D) beta_k / (1 + beta_k) W_k``).
- 'tied': one Wishart ``(W, nu)`` shared by the components, each mean with
  its own ``beta_k``: as 'full' with ``nu_k = nu`` and ``C_k = C``.
- 'diag': the posterior update is the conjugate Normal-Gamma one per
  feature, ``q(lambda_kd) = Gamma(shape nu_k / 2, rate nu_k C_kd / 2)`` (the
  one-dimensional Wishart) and ``mu_kd | lambda_kd ~ N(m_kd, 1 / (beta_k
  lambda_kd))``, independent across features; the component is the product
  over features of univariate Student-t densities with ``nu_k`` degrees of
  freedom and squared scale ``(1 + beta_k) / beta_k * C_kd``.
- 'spherical': one precision per component, ``q(lambda_k) = Gamma(shape
  nu_k / 2, rate nu_k C_k / 2)`` shared by the features; integrating
  ``N(x | m_k, (1 + 1 / beta_k) / lambda_k I)`` over it gives a D-variate
  Student-t with ``nu_k`` degrees of freedom and scale matrix
  ``(1 + beta_k) / beta_k * C_k * I``.

In one dimension the four coincide. As the counts grow (``beta_k, nu_k ->
infinity``) every component tends to ``N(m_k, C_k)``, the plug-in density.

References
----------
.. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*,
   Springer, section 10.2.3 and appendix B (Student's t).
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

# Rows per block of the (rows, K) log-density temporaries.
_BLOCK_ROWS = 4096
_LOG_PI = math.log(math.pi)


@dataclass(frozen=True)
class StudentMixture:
    """A mixture of Student-t densities, float64 throughout.

    Attributes
    ----------
    log_weights : ndarray of shape (K,)
    means : ndarray of shape (K, D)
        The locations.
    dof : ndarray of shape (K,)
        Degrees of freedom of each component.
    precision : ndarray of shape (K, D, D) or (K, D)
        The inverse scale: upper-triangular factors ``U_k`` with inverse
        scale matrix ``U_k U_k^T`` (K, D, D), or its diagonal (K, D).
    product : bool
        False: each component is one D-variate Student-t. True (diagonal
        ``precision`` only): each is the product over features of univariate
        Student-t densities with the component's degrees of freedom.
    """

    log_weights: np.ndarray
    means: np.ndarray
    dof: np.ndarray
    precision: np.ndarray
    product: bool = False

    def _log_norm(self):
        """Per-component log normaliser (K,): Gamma terms, ``log nu pi``, the log-determinant."""
        n_features = self.means.shape[1]
        dims = 1.0 if self.product else float(n_features)
        per_density = (
            gammaln(0.5 * (self.dof + dims))
            - gammaln(0.5 * self.dof)
            - 0.5 * dims * np.log(self.dof * math.pi)
        )
        if self.precision.ndim == 3:
            log_det = np.sum(np.log(np.diagonal(self.precision, axis1=1, axis2=2)), axis=1)
        else:
            log_det = 0.5 * np.sum(np.log(self.precision), axis=1)
        return n_features / dims * per_density + log_det

    def _log_kernel(self, X, k):
        """The unnormalised log-density of component ``k`` at the rows of ``X``."""
        diff = X - self.means[k]
        nu = self.dof[k]
        if self.product:
            return -0.5 * (nu + 1.0) * np.sum(np.log1p(diff * diff * (self.precision[k] / nu)), 1)
        if self.precision.ndim == 3:
            y = diff @ self.precision[k]
            q = np.sum(y * y, axis=1)
        else:
            q = (diff * diff) @ self.precision[k]
        return -0.5 * (nu + self.means.shape[1]) * np.log1p(q / nu)

    def log_density(self, X):
        """``log p(x)`` of each row of ``X`` (n, D), float64 of shape (n,)."""
        X = np.asarray(X, dtype=np.float64)
        bias = self.log_weights + self._log_norm()
        out = np.empty(X.shape[0])
        for start in range(0, X.shape[0], _BLOCK_ROWS):
            block = X[start : start + _BLOCK_ROWS]
            terms = np.empty((block.shape[0], bias.shape[0]))
            for k in range(bias.shape[0]):
                terms[:, k] = bias[k] + self._log_kernel(block, k)
            out[start : start + _BLOCK_ROWS] = logsumexp(terms, axis=1)
        return out

    def __call__(self, X):
        return self.log_density(X)


def predictive_mixture(
    weights, means, mean_precision, degrees_of_freedom, precisions_cholesky, covariance_type
):
    """The Student-t mixture of a variational posterior (see the module's notes).

    Parameters
    ----------
    weights : ndarray of shape (K,)
        Posterior mean weights (``weights_``); zero weights are allowed.
    means : ndarray of shape (K, D)
        ``m_k``.
    mean_precision : ndarray of shape (K,)
        ``beta_k``.
    degrees_of_freedom : ndarray of shape (K,), or a scalar for the tied types
        ``nu_k``.
    precisions_cholesky : ndarray
        scikit-learn's ``precisions_cholesky_`` (of ``C_k^{-1} = nu_k W_k``):
        (K, D, D) 'full', (D, D) 'tied', (K, D) 'diag', (K,) 'spherical',
        (D,) 'tied-diagonal', () 'tied-spherical'.
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', 'tied-spherical'}

    Returns
    -------
    StudentMixture
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    beta = np.asarray(mean_precision, dtype=np.float64)
    nu = np.asarray(degrees_of_freedom, dtype=np.float64)
    prec_chol = np.asarray(precisions_cholesky, dtype=np.float64)
    n_components, n_features = means.shape
    shrink = beta / (1.0 + beta)  # the mean's uncertainty widens each component
    with np.errstate(divide="ignore"):
        log_weights = np.log(weights)
    if covariance_type in ("full", "tied"):
        dof = np.broadcast_to(nu + 1.0 - n_features, (n_components,)).copy()
        factor = shrink * dof / nu  # L_k = factor_k * C_k^{-1}
        if covariance_type == "tied":
            prec_chol = np.broadcast_to(prec_chol, (n_components, n_features, n_features))
        precision = np.sqrt(factor)[:, None, None] * prec_chol
        return StudentMixture(log_weights, means, dof, precision)
    # diag and spherical, and their tied forms (one posterior shared by every
    # component): Gamma posteriors per feature, or one shared by the features.
    # prec_chol: (K, D) diag, (D,) tied-diagonal, (K,) spherical, () tied-spherical.
    per_feature = covariance_type in ("diag", "tied-diagonal")
    columns = n_features if per_feature else 1
    prec_chol = np.broadcast_to(prec_chol.reshape(-1, columns), (n_components, n_features))
    nu = np.broadcast_to(nu, (n_components,)).copy()
    precision = shrink[:, None] * prec_chol * prec_chol  # inverse squared scales
    return StudentMixture(log_weights, means, nu, precision, per_feature)


__all__ = ["StudentMixture", "predictive_mixture"]
