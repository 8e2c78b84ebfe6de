"""The variational update's closed forms over K-sized arrays, as small serial kernels.

A stochastic-VI step on a 1e4-row batch at K = D = 16 runs a 0.4-0.7 ms
E-step; the variational update around it (weights, means, Wishart
posterior, the E-step bias with its digammas, the posterior mean weights and
the per-batch bound with its log-gammas) was about 60 NumPy and SciPy calls on
arrays of K or K x D values: a third of the step. These kernels evaluate each
stage in one call, for every covariance type where the stage does not depend
on it (the Wishart posterior here is the diagonal types'; 'full' and 'tied'
keep theirs in :mod:`fastmix._variational`). They are the only implementation:
:mod:`fastmix._variational` calls them for ``fit`` and ``partial_fit`` alike.

The special functions are ours: :func:`digamma` by the recurrence and the
asymptotic series (as Cephes' ``psi``), ``log Gamma`` from libm
(``math.lgamma``), :func:`betaln` with SciPy's asymptotic branch. Sums of
``psi`` or ``log Gamma`` over ``(nu - i) / 2``, ``i = 0 .. D-1``, take two
evaluations and the recurrence ``f(x - 1) = f(x) - g(x - 1)`` along the two
chains of half-integer steps (:func:`digamma_chain`, :func:`lgamma_chain`),
O(D) cheap operations instead of D special-function calls.

Everything here is O(K D): no parallelism, no vector-width hint.
"""

import math

import numpy as np

from .._numba import jit
from .update import OK, diag_parameters, diag_precision_cholesky, log_det_row, stored_single

_LOG_2 = math.log(2.0)


# ---------------------------------------------------------------- scalars
@jit(inline=True)
def digamma(x):
    """``psi(x)`` for ``x >= 0``: ``-inf`` at 0, NaN below (never called there).

    ``psi(x) = psi(x + 1) - 1/x`` lifts ``x`` to at least 10, where the
    asymptotic series ``log x - 1/(2x) - sum_k B_2k / (2k x^2k)`` to
    ``k = 7`` is within 5e-17 (the next term, B_16 / (16 x^16), is 4.4e-17 at
    x = 10). Accurate to a few ulp of ``|psi(x)| + 1`` (relative away from the
    root at 1.4616, absolute near it): ``tests/test_kernels.py`` pins it to
    ``scipy.special.digamma``.
    """
    if not x >= 0.0:
        return np.nan
    if x == 0.0:
        return -np.inf
    lift = 0.0
    while x < 10.0:
        lift += 1.0 / x
        x += 1.0
    y = 1.0 / (x * x)
    series = y * (
        1.0 / 12.0
        + y
        * (
            -1.0 / 120.0
            + y
            * (
                1.0 / 252.0
                + y * (-1.0 / 240.0 + y * (1.0 / 132.0 + y * (-691.0 / 32760.0 + y / 12.0)))
            )
        )
    )
    return math.log(x) - 0.5 / x - series - lift


@jit(inline=True)
def betaln(a, b):
    """``log B(a, b)`` for ``a, b > 0``, with SciPy's asymptotic branch.

    ``lgamma(a) + lgamma(b) - lgamma(a + b)`` loses the digits of
    ``lgamma(a)`` when ``a`` dwarfs ``b`` (a stick's Beta(1 + N_k, gamma +
    sum_{j > k} N_j) at 1e6 samples): there, as SciPy's ``lbeta`` does, the first
    terms of ``lgamma(a) - lgamma(a + b)`` in powers of ``1 / a``.
    Elsewhere the sum is within a few ulp of ``lgamma(a + b)``, as SciPy's
    is above its Gamma-function range (171).
    """
    if a < b:
        a, b = b, a
    if a > 1e6 * b and a > 1e6:
        return (
            math.lgamma(b)
            - b * math.log(a)
            + b * (1.0 - b) / (2.0 * a)
            + b * (1.0 - b) * (1.0 - 2.0 * b) / (12.0 * a * a)
            - b * b * (1.0 - b) * (1.0 - b) / (12.0 * a * a * a)
        )
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@jit(inline=True)
def digamma_chain(x, n):
    """``sum_{j < n} psi(x - j)``, from one ``psi`` by ``psi(x - l) = psi(x - l + 1) - 1/(x - l)``.

    ``sum_j psi(x - j) = n psi(x) - sum_{l=1}^{n-1} (n - l) / (x - l)``.
    """
    total = n * digamma(x)
    for step in range(1, n):
        total -= (n - step) / (x - step)
    return total


@jit(inline=True)
def lgamma_chain(x, n):
    """``sum_{j < n} log Gamma(x - j)``: ``n lgamma(x) - sum_{l=1}^{n-1} (n - l) log(x - l)``."""
    total = n * math.lgamma(x)
    for step in range(1, n):
        total -= (n - step) * math.log(x - step)
    return total


@jit(inline=True)
def log_lambda(dof, n_features):
    """``D log 2 + sum_{i < D} psi((nu - i) / 2)`` (Bishop 10.65): two chains of whole steps."""
    even = (n_features + 1) // 2  # i = 0, 2, 4, ...: psi(nu/2 - j)
    odd = n_features // 2  # i = 1, 3, ...: psi((nu - 1)/2 - j)
    return (
        n_features * _LOG_2
        + digamma_chain(0.5 * dof, even)
        + (digamma_chain(0.5 * (dof - 1.0), odd) if odd > 0 else 0.0)
    )


@jit(inline=True)
def log_wishart_norm(dof, half_log_det, n_features):
    """``-(nu log|U| + nu D/2 log 2 + sum_{i < D} lgamma((nu - i) / 2))``.

    Bishop's B.79 less its ``log pi`` term, with ``log|U| = log|W| / 2``.
    """
    even = (n_features + 1) // 2
    odd = n_features // 2
    gammas = lgamma_chain(0.5 * dof, even)
    if odd > 0:
        gammas += lgamma_chain(0.5 * (dof - 1.0), odd)
    return -(dof * half_log_det + dof * n_features * 0.5 * _LOG_2 + gammas)


# ------------------------------------------------------------ the weights
@jit
def weight_concentration(nk, dirichlet_process, concentration_prior):
    """The weights' posterior: ``alpha_0 + N_k``, or the sticks' Beta parameters.

    Returns ``(a, b)``: for the Dirichlet process ``a = 1 + N_k``,
    ``b = gamma + sum_{j > k} N_j`` (summed from the last component, as
    scikit-learn's reversed ``cumsum``); for the Dirichlet distribution
    ``a = alpha_0 + N_k`` and ``b`` empty.
    """
    n_components = nk.shape[0]
    a = np.empty(n_components)
    if not dirichlet_process:
        for k in range(n_components):
            a[k] = concentration_prior + nk[k]
        return a, np.empty(0)
    b = np.empty(n_components)
    tail = 0.0
    for k in range(n_components - 1, -1, -1):
        a[k] = 1.0 + nk[k]
        b[k] = concentration_prior + tail
        tail += nk[k]
    return a, b


@jit
def expected_log_weights(a, b, dirichlet_process):
    """``E[log pi_k]`` under the weights' posterior.

    ``psi(a_k) - psi(sum a)`` for the Dirichlet distribution; for the sticks
    ``E[log v_k] + sum_{j < k} E[log(1 - v_j)]``.
    """
    n_components = a.shape[0]
    out = np.empty(n_components)
    if dirichlet_process:
        rest = 0.0
        for k in range(n_components):
            psi_total = digamma(a[k] + b[k])
            out[k] = digamma(a[k]) - psi_total + rest
            rest += digamma(b[k]) - psi_total
        return out
    psi_total = digamma(a.sum())
    for k in range(n_components):
        out[k] = digamma(a[k]) - psi_total
    return out


@jit
def weights_from_concentration(a, b, dirichlet_process):
    """The posterior mean weights, normalised to sum to one.

    ``a / sum a``, or the sticks' ``E[v_k] prod_{j < k} E[1 - v_j]``.
    """
    n_components = a.shape[0]
    out = np.empty(n_components)
    if dirichlet_process:
        rest = 1.0
        for k in range(n_components):
            total = a[k] + b[k]
            out[k] = a[k] / total * rest
            rest *= b[k] / total
    else:
        out[:] = a
    return out / out.sum()


# ------------------------------------------------------ means and Wishart
@jit(exact=True)
def mean_posterior(nk, xk, mean_precision_prior, mean_prior):
    """``beta_k = beta_0 + N_k`` and ``m_k = (beta_0 m_0 + N_k xbar_k) / beta_k`` (10.60-61).

    No fastmath, as in :func:`diag_wishart`: rounded as NumPy rounds the
    formula (``arcp`` would multiply by ``1 / beta_k``, moving a mean that
    equals the prior's by an ulp, which a reg_covar = 0 fit's tiny variance
    then magnifies).
    """
    n_components, n_features = xk.shape
    mean_precision = np.empty(n_components)
    means = np.empty((n_components, n_features))
    for k in range(n_components):
        beta = mean_precision_prior + nk[k]
        mean_precision[k] = beta
        for j in range(n_features):
            means[k, j] = (mean_precision_prior * mean_prior[j] + nk[k] * xk[k, j]) / beta
    return mean_precision, means


@jit(exact=True)
def diag_wishart(
    nk, xk, cov, mean_precision, mean_precision_prior, mean_prior, dof_prior, prior_cov, pooled
):
    """The diagonal types' Wishart posterior: degrees of freedom and ``W_k^{-1} / nu_k``.

    ``cov`` is the data's covariances in :func:`fastmix._kernels.update.diag_parameters`'
    layout, (K or 1, D or 1): a row per component or one ``pooled`` row, a
    column per feature or one spherical column; ``prior_cov`` holds that many
    columns.
    Per component (diag, spherical), ``nu_k = nu_0 + N_k`` and
    ``W_0^{-1} + N_k (S_k + beta_0 / beta_k (xbar_k - m_0)^2)``, the square
    averaged over the features where spherical; pooled (tied-diagonal,
    tied-spherical), the restriction of the shared 'tied' posterior,
    ``nu = nu_0 + N / K`` and
    ``W_0^{-1} + S N / K + beta_0 / K sum_k N_k / beta_k (xbar_k - m_0)^2``.

    No fastmath: the per-component types equal NumPy's rounding of these
    formulas bit for bit.

    Returns
    -------
    dof : ndarray of shape (K,), or (1,) pooled
    covariances : ndarray shaped like ``cov``
    """
    n_components, n_features = xk.shape
    rows, cols = cov.shape
    spherical = cols == 1
    out = np.empty((rows, cols))
    if pooled:
        count = nk.sum() / n_components
        dof = np.full(1, dof_prior + count)
        between = np.zeros(cols)
        for k in range(n_components):
            scale = nk[k] / mean_precision[k]
            sq_mean = 0.0
            for j in range(n_features):
                d = xk[k, j] - mean_prior[j]
                if spherical:
                    sq_mean += d * d
                else:
                    between[j] += scale * (d * d)
            if spherical:
                between[0] += scale * (sq_mean / n_features)
        for c in range(cols):
            out[0, c] = (
                prior_cov[c] + cov[0, c] * count + mean_precision_prior / n_components * between[c]
            ) / dof[0]
        return dof, out
    dof = np.empty(n_components)
    for k in range(n_components):
        dof[k] = dof_prior + nk[k]
        ratio = mean_precision_prior / mean_precision[k]
        if spherical:
            sq_mean = 0.0
            for j in range(n_features):
                d = xk[k, j] - mean_prior[j]
                sq_mean += d * d
            spread = cov[k, 0] + ratio * (sq_mean / n_features)
            out[k, 0] = (prior_cov[0] + nk[k] * spread) / dof[k]
        else:
            for j in range(n_features):
                d = xk[k, j] - mean_prior[j]
                out[k, j] = (prior_cov[j] + nk[k] * (cov[k, j] + ratio * (d * d))) / dof[k]
    return dof, out


@jit
def diag_posterior(
    nk_true,
    s1,
    s2,
    shift,
    eps10,
    reg_covar,
    clamp,
    eps,
    pooled,
    spherical,
    dirichlet_process,
    concentration_prior,
    mean_precision_prior,
    mean_prior,
    dof_prior,
    prior_cov,
    single,
):
    """The diagonal types' whole variational M-step from their statistics, in one call.

    :func:`fastmix._kernels.update.diag_parameters` (the first ten
    arguments are its own), then :func:`weight_concentration`,
    :func:`mean_posterior`, :func:`diag_wishart` and
    :func:`fastmix._kernels.update.diag_precision_cholesky`; then what
    follows from the posterior as the model stores it (rounded to float32
    where ``single``, a float32 model): :func:`weights_from_concentration`
    and :func:`bound_terms`, as computed from the fitted attributes. (Not
    the next E-step's inputs: composing :func:`variational_bias` here too
    doubled this kernel's compilation, about 10 s, for 2-4 us a call.)

    Returns
    -------
    a, b, mean_precision, means, dof, covariances, precisions_cholesky, status, \
weights, terms
        ``covariances`` in ``diag_parameters``' (K or 1, D or 1) layout,
        ``precisions_cholesky`` flattened; it and ``weights`` are empty and
        ``terms`` NaN unless ``status`` is OK.
    """
    nk, xk, cov = diag_parameters(
        nk_true, s1, s2, shift, eps10, reg_covar, clamp, eps, pooled, spherical
    )
    a, b = weight_concentration(nk, dirichlet_process, concentration_prior)
    mean_precision, means = mean_posterior(nk, xk, mean_precision_prior, mean_prior)
    dof, covariances = diag_wishart(
        nk, xk, cov, mean_precision, mean_precision_prior, mean_prior, dof_prior, prior_cov, pooled
    )
    prec_chol, status = diag_precision_cholesky(covariances.ravel())
    posterior = (a, b, mean_precision, means, dof, covariances, prec_chol, status)
    if status != OK:
        return (*posterior, np.empty(0), np.nan)
    stored = (a, b, mean_precision, dof, prec_chol)
    if single:
        stored = (
            stored_single(a),
            stored_single(b),
            stored_single(mean_precision),
            stored_single(dof),
            stored_single(prec_chol),
        )
    sa, sb, smp, sdof, sprec = stored
    weights = weights_from_concentration(sa, sb, dirichlet_process)
    diagonals = sprec.reshape(covariances.shape)
    terms = bound_terms(sa, sb, dirichlet_process, smp, sdof, diagonals, s1.shape[1])
    return (*posterior, weights, terms)


# ------------------------------------------------------- E-step and bound
@jit
def variational_bias(a, b, dirichlet_process, dof, mean_precision, n_features):
    """The per-component constant of the variational E-step, ``E[log pi_k]`` included.

    :func:`fastmix._variational.variational_bias` has the formula. ``dof``
    holds K values, or one shared by every component (tied types).
    """
    log_weights = expected_log_weights(a, b, dirichlet_process)
    n_components = a.shape[0]
    bias = np.empty(n_components)
    shared = dof.shape[0] == 1
    if shared:
        nu = dof[0]
        wishart = -0.5 * n_features * math.log(nu) + 0.5 * log_lambda(nu, n_features)
    for k in range(n_components):
        if not shared:
            nu = dof[k]
            wishart = -0.5 * n_features * math.log(nu) + 0.5 * log_lambda(nu, n_features)
        bias[k] = log_weights[k] + wishart - 0.5 * n_features / mean_precision[k]
    return bias


@jit
def lower_bound(sum_wrlogr, a, b, dirichlet_process, mean_precision, dof, diagonals, n_features):
    """scikit-learn's evidence lower bound (see :func:`fastmix._variational.lower_bound`).

    ``dof`` holds K values, or one shared Wishart that counts K times (tied
    types); ``diagonals`` the precision factors' diagonals, a row for each
    (:func:`fastmix._update.factor_diagonals`), whose ``log|U|`` includes
    the degrees of freedom.
    """
    terms = bound_terms(a, b, dirichlet_process, mean_precision, dof, diagonals, n_features)
    return terms - sum_wrlogr


@jit
def bound_terms(a, b, dirichlet_process, mean_precision, dof, diagonals, n_features):
    """:func:`lower_bound` without the responsibilities' entropy: ``bound + sum_wrlogr``.

    The terms that depend on the parameters alone, so that an update can
    evaluate them once for a bound whose ``sum_wrlogr`` comes from elsewhere.
    """
    n_components = a.shape[0]
    log_wishart = 0.0
    for r in range(dof.shape[0]):
        nu = dof[r]
        log_det = log_det_row(diagonals, r, n_features)
        half_log_det = log_det - 0.5 * n_features * math.log(nu)
        log_wishart += log_wishart_norm(nu, half_log_det, n_features)
    if dof.shape[0] == 1:
        log_wishart *= n_components
    log_norm_weight = 0.0
    if dirichlet_process:
        for k in range(n_components):
            log_norm_weight -= betaln(a[k], b[k])
    else:
        for k in range(n_components):
            log_norm_weight -= math.lgamma(a[k])
        log_norm_weight += math.lgamma(a.sum())
    log_beta = 0.0
    for k in range(n_components):
        log_beta += math.log(mean_precision[k])
    return -log_wishart - log_norm_weight - 0.5 * n_features * log_beta
