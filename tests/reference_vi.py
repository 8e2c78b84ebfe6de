"""Plain-NumPy reference of the variational updates (Bishop 2006, section 10.2).

Written from the textbook formulas, with loops over components and explicit
responsibility matrices, independently of ``fastmix/_variational.py``; the
tests pin the two against each other. Function names follow
``fastmix._variational`` where a function has a counterpart there.

Conventions shared with scikit-learn (and therefore with fastmix):

- ``covariances = W_k^{-1} / nu_k`` (the "normalised" posterior covariance),
  so ``nu_k W_k`` is the precision whose Cholesky factor the kernel uses;
- the stick-breaking prior is truncated at K sticks *without* forcing the
  last stick to 1;
- the tied model shares one Wishart with ``nu = nu_0 + N / K``; so do
  'tied-diagonal' and 'tied-spherical', the diagonal and isotropic
  restrictions of 'tied' (as 'diag' and 'spherical' are of 'full');
- ``lower_bound`` drops the constants; :func:`elbo_full` keeps every term
  (full covariances), so the two differ by a constant (see the tests).
"""

import math

import numpy as np
from scipy.special import digamma, logsumexp

LOG_2PI = math.log(2.0 * math.pi)
# One posterior shared by every component (degrees of freedom a scalar).
TIED = ("tied", "tied-diagonal", "tied-spherical")


# ----------------------------------------------------------------- data
def weighted_gaussian_parameters(X, resp, sample_weight, reg_covar, covariance_type):
    """N_k, xbar_k and S_k of weighted responsibilities, scikit-learn's formulas.

    Includes scikit-learn's ``10 * eps`` in the counts, scaled by
    ``min(1, sum(w) / count(w > 0))`` as fastmix does. Two passes with loops
    over components.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    w = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    wr = resp * w[:, None]
    n_components = resp.shape[1]
    nk = wr.sum(axis=0) + 10 * np.finfo(np.float64).eps * min(1.0, w.sum() / np.count_nonzero(w))
    xk = np.empty((n_components, n_features))
    for k in range(n_components):
        xk[k] = wr[:, k] @ X / nk[k]
    if covariance_type == "full":
        sk = np.empty((n_components, n_features, n_features))
        for k in range(n_components):
            d = X - xk[k]
            sk[k] = (wr[:, k, None] * d).T @ d / nk[k] + reg_covar * np.eye(n_features)
        return nk, xk, sk
    if covariance_type == "tied":
        second = (w[:, None] * X).T @ X
        for k in range(n_components):
            second -= nk[k] * np.outer(xk[k], xk[k])
        return nk, xk, second / nk.sum() + reg_covar * np.eye(n_features)
    sk = np.empty((n_components, n_features))
    for k in range(n_components):
        sk[k] = wr[:, k] @ (X * X) / nk[k] - 2 * xk[k] * (wr[:, k] @ X) / nk[k] + xk[k] ** 2
    if covariance_type in ("tied-diagonal", "tied-spherical"):
        # The per-component diagonals pooled with weights N_k: the diagonal of
        # the tied covariance when every row's responsibilities sum to one.
        sk = sum(nk[k] * sk[k] for k in range(n_components)) / nk.sum()
    sk += reg_covar
    if covariance_type in ("spherical", "tied-spherical"):
        return nk, xk, sk.mean(axis=-1)
    return nk, xk, sk


def data_moments(X, sample_weight):
    """Weighted mean and frequency-weighted (unbiased) covariance, from the repeated-row view."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    total = w.sum()
    mean = (w @ X) / total
    d = X - mean
    cov = (w[:, None] * d).T @ d / (total - 1.0)
    return mean, cov


# -------------------------------------------------------------- weights
def weight_concentration(nk, prior_type, gamma):
    """alpha_k = alpha_0 + N_k, or the sticks' Beta(1 + N_k, gamma + sum_{j>k} N_j)."""
    n_components = len(nk)
    if prior_type == "dirichlet_process":
        a = np.empty(n_components)
        b = np.empty(n_components)
        for k in range(n_components):
            a[k] = 1.0 + nk[k]
            b[k] = gamma + sum(nk[j] for j in range(k + 1, n_components))
        return a, b
    return np.array([gamma + nk[k] for k in range(n_components)])


def expected_log_weights(concentration, prior_type):
    """E[ln pi_k]: Bishop 10.66, or Blei & Jordan's stick-breaking expectation."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        out = np.empty(len(a))
        for k in range(len(a)):
            e_log_v = digamma(a[k]) - digamma(a[k] + b[k])
            e_log_rest = sum(digamma(b[j]) - digamma(a[j] + b[j]) for j in range(k))
            out[k] = e_log_v + e_log_rest
        return out
    alpha = np.asarray(concentration, float)
    total = sum(alpha)
    return np.array([digamma(a) - digamma(total) for a in alpha])


def weights_from_concentration(concentration, prior_type):
    """Posterior mean weights, normalised."""
    if prior_type == "dirichlet_process":
        a, b = concentration
        out = np.empty(len(a))
        for k in range(len(a)):
            ev = a[k] / (a[k] + b[k])
            rest = 1.0
            for j in range(k):
                rest *= b[j] / (a[j] + b[j])
            out[k] = ev * rest
        return out / out.sum()
    alpha = np.asarray(concentration, float)
    return alpha / alpha.sum()


def log_dirichlet_norm(alpha):
    """ln C(alpha), Bishop B.23."""
    return math.lgamma(sum(alpha)) - sum(math.lgamma(a) for a in alpha)


def log_beta_fn(a, b):
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


# -------------------------------------------------------- Gauss-Wishart
def mean_posterior(nk, xk, beta0, m0):
    """beta_k = beta_0 + N_k, m_k = (beta_0 m_0 + N_k xbar_k) / beta_k (Bishop 10.60-61)."""
    beta = np.array([beta0 + n for n in nk])
    means = np.array([(beta0 * m0 + nk[k] * xk[k]) / beta[k] for k in range(len(nk))])
    return beta, means


def wishart_posterior(nk, xk, sk, beta, beta0, m0, nu0, cov0, covariance_type):
    """nu_k and the normalised covariance W_k^{-1} / nu_k (Bishop 10.62-63).

    W_k^{-1} = W_0^{-1} + N_k S_k + beta_0 N_k / (beta_0 + N_k) (xbar_k - m_0)(...)^T.
    """
    n_components, n_features = xk.shape
    if covariance_type == "full":
        nu = np.array([nu0 + n for n in nk])
        cov = np.empty((n_components, n_features, n_features))
        for k in range(n_components):
            d = xk[k] - m0
            w_inv = cov0 + nk[k] * sk[k] + beta0 * nk[k] / (beta0 + nk[k]) * np.outer(d, d)
            cov[k] = w_inv / nu[k]
        return nu, cov
    if covariance_type == "tied":
        n_total = sum(nk)
        nu = nu0 + n_total / n_components
        w_inv = np.array(cov0, dtype=float) + n_total / n_components * sk
        for k in range(n_components):
            d = xk[k] - m0
            w_inv = w_inv + beta0 / n_components * nk[k] / beta[k] * np.outer(d, d)
        return nu, w_inv / nu
    if covariance_type in ("tied-diagonal", "tied-spherical"):
        n_total = sum(nk)
        nu = nu0 + n_total / n_components
        w_inv = np.array(cov0, dtype=float) + n_total / n_components * sk
        for k in range(n_components):
            d2 = (xk[k] - m0) ** 2
            if covariance_type == "tied-spherical":
                d2 = np.mean(d2)
            w_inv = w_inv + beta0 / n_components * nk[k] / beta[k] * d2
        return nu, w_inv / nu
    nu = np.array([nu0 + n for n in nk])
    if covariance_type == "diag":
        cov = np.empty((n_components, n_features))
        for k in range(n_components):
            d = xk[k] - m0
            cov[k] = (cov0 + nk[k] * (sk[k] + beta0 / beta[k] * d * d)) / nu[k]
        return nu, cov
    cov = np.empty(n_components)
    for k in range(n_components):
        d = xk[k] - m0
        cov[k] = (cov0 + nk[k] * (sk[k] + beta0 / beta[k] * np.mean(d * d))) / nu[k]
    return nu, cov


def precisions(covariances, nu, covariance_type):
    """W_k (per component; the tied W is returned once)."""
    if covariance_type == "full":
        return np.array([np.linalg.inv(c * n) for c, n in zip(covariances, nu, strict=True)])
    if covariance_type == "tied":
        return np.linalg.inv(covariances * nu)
    return 1.0 / (covariances * (nu[:, None] if covariance_type == "diag" else nu))


def per_component_type(covariance_type):
    """The covariance type of one component's W: 'diag' for 'tied-diagonal' and so on."""
    return {"tied-diagonal": "diag", "tied-spherical": "spherical"}.get(
        covariance_type, covariance_type
    )


def log_lambda(nu, n_features):
    """E[ln|Lambda|] - ln|W| = sum_{i=1}^D psi((nu + 1 - i) / 2) + D ln 2 (Bishop 10.65)."""
    return sum(digamma((nu + 1 - i) / 2.0) for i in range(1, n_features + 1)) + n_features * (
        math.log(2.0)
    )


def log_det_w(W, covariance_type, n_features):
    """ln|W_k| for one component's W (matrix, diagonal vector or spherical scalar)."""
    if covariance_type in ("full", "tied"):
        return np.linalg.slogdet(W)[1]
    if covariance_type == "diag":
        return float(np.sum(np.log(W)))
    return n_features * math.log(W)


def log_wishart_B(W_logdet, nu, n_features):
    """ln B(W, nu), Bishop B.79 (with the ln pi term)."""
    return (
        -0.5 * nu * W_logdet
        - 0.5 * nu * n_features * math.log(2.0)
        - 0.25 * n_features * (n_features - 1) * math.log(math.pi)
        - sum(math.lgamma((nu + 1 - i) / 2.0) for i in range(1, n_features + 1))
    )


def log_wishart_norm(nu, log_det_precisions_chol, n_features):
    """scikit-learn's Wishart normaliser: ln B(W, nu) + D(D-1)/4 ln pi.

    ``log_det_precisions_chol`` is ln|W| / 2.
    """
    return log_wishart_B(2.0 * log_det_precisions_chol, nu, n_features) + 0.25 * n_features * (
        n_features - 1
    ) * math.log(math.pi)


# --------------------------------------------------------------- E-step
def log_rho(X, post, covariance_type, prior_type):
    """ln rho_nk = E[ln pi_k] + E[ln|Lambda_k|]/2 - D/2 ln 2pi
    - (D / beta_k + nu_k (x - m_k)^T W_k (x - m_k)) / 2  (Bishop 10.46, 10.64).

    Returns the (n, K) matrix.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    means, beta, nu = post["means"], post["mean_precision"], post["degrees_of_freedom"]
    W = precisions(post["covariances"], nu, covariance_type)
    e_log_pi = expected_log_weights(post["weight_concentration"], prior_type)
    n_components = means.shape[0]
    out = np.empty((n_samples, n_components))
    for k in range(n_components):
        nu_k = nu if covariance_type in TIED else nu[k]
        W_k = W if covariance_type in TIED else W[k]
        one_type = per_component_type(covariance_type)
        e_log_det = log_lambda(nu_k, n_features) + log_det_w(W_k, one_type, n_features)
        d = X - means[k]
        if covariance_type in ("full", "tied"):
            maha = np.einsum("ni,ij,nj->n", d, W_k, d)
        elif one_type == "diag":
            maha = (d * d) @ W_k
        else:
            maha = W_k * np.sum(d * d, axis=1)
        out[:, k] = (
            e_log_pi[k]
            + 0.5 * e_log_det
            - 0.5 * n_features * LOG_2PI
            - 0.5 * (n_features / beta[k] + nu_k * maha)
        )
    return out


def log_resp(X, post, covariance_type, prior_type):
    """Normalised log-responsibilities and the per-row log-normaliser."""
    lr = log_rho(X, post, covariance_type, prior_type)
    mx = lr.max(axis=1, keepdims=True)
    norm = (mx + np.log(np.exp(lr - mx).sum(axis=1, keepdims=True)))[:, 0]
    return lr - norm[:, None], norm


# ------------------------------------------------------------ the update
def posterior(X, resp, sample_weight, prior, reg_covar, covariance_type):
    """Every posterior parameter from explicit responsibilities (float64).

    ``prior`` is a dict with keys ``prior_type``, ``gamma``, ``beta0``, ``m0``,
    ``nu0``, ``cov0``.
    """
    nk, xk, sk = weighted_gaussian_parameters(X, resp, sample_weight, reg_covar, covariance_type)
    conc = weight_concentration(nk, prior["prior_type"], prior["gamma"])
    beta, means = mean_posterior(nk, xk, prior["beta0"], prior["m0"])
    nu, cov = wishart_posterior(
        nk, xk, sk, beta, prior["beta0"], prior["m0"], prior["nu0"], prior["cov0"],
        covariance_type,
    )  # fmt: skip
    return {
        "weight_concentration": conc,
        "mean_precision": beta,
        "means": means,
        "degrees_of_freedom": nu,
        "covariances": cov,
    }


def lower_bound(resp, sample_weight, post, covariance_type, prior_type, n_features):
    """scikit-learn's bound: -sum w r ln r - sum_k [ln B_k + D(D-1)/4 ln pi]
    - ln C(alpha) (or + sum_k ln Beta(a_k, b_k)) - D/2 sum_k ln beta_k.
    """
    w = np.ones(resp.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rlogr = np.where(resp > 0, resp * np.log(resp), 0.0)
    entropy = -float(w @ rlogr.sum(axis=1))
    nu = post["degrees_of_freedom"]
    beta = post["mean_precision"]
    n_components = len(beta)
    W = precisions(post["covariances"], nu, covariance_type)
    log_wishart = 0.0
    if covariance_type in TIED:
        log_wishart = n_components * log_wishart_norm(
            nu, 0.5 * log_det_w(W, per_component_type(covariance_type), n_features), n_features
        )
    else:
        for k in range(n_components):
            log_wishart += log_wishart_norm(
                nu[k], 0.5 * log_det_w(W[k], covariance_type, n_features), n_features
            )
    conc = post["weight_concentration"]
    if prior_type == "dirichlet_process":
        log_norm_weight = sum(-log_beta_fn(a, b) for a, b in zip(*conc, strict=True))
    else:
        log_norm_weight = log_dirichlet_norm(conc)
    return (
        entropy - log_wishart - log_norm_weight - 0.5 * n_features * sum(math.log(b) for b in beta)
    )


def elbo_full(X, resp, sample_weight, post, prior):
    """The complete variational lower bound of Bishop 10.70-10.77, full covariances.

    Every term kept; the weight part is Bishop's Dirichlet (10.73, 10.76) or,
    for the Dirichlet process, the Beta sticks' E[ln p(v)] - E[ln q(v)]. Needs
    the posterior of ``resp`` computed with ``reg_covar=0``.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples, D = X.shape
    w = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, float)
    wr = resp * w[:, None]
    Nk = wr.sum(axis=0)
    K = resp.shape[1]
    beta0, m0, nu0, cov0 = prior["beta0"], prior["m0"], prior["nu0"], prior["cov0"]
    W0_inv = np.asarray(cov0, float)
    beta, m, nu = post["mean_precision"], post["means"], post["degrees_of_freedom"]
    W = precisions(post["covariances"], nu, "full")
    e_log_pi = expected_log_weights(post["weight_concentration"], prior["prior_type"])
    total = 0.0
    log_b0 = log_wishart_B(-np.linalg.slogdet(W0_inv)[1], nu0, D)
    for k in range(K):
        e_log_det = log_lambda(nu[k], D) + np.linalg.slogdet(W[k])[1]
        xbar = wr[:, k] @ X / Nk[k]
        d = X - xbar
        S = (wr[:, k, None] * d).T @ d / Nk[k]
        dx = xbar - m[k]
        # 10.71
        total += 0.5 * Nk[k] * (
            e_log_det - D / beta[k] - nu[k] * np.trace(S @ W[k])
            - nu[k] * dx @ W[k] @ dx - D * LOG_2PI
        )  # fmt: skip
        # 10.72
        total += Nk[k] * e_log_pi[k]
        # 10.74
        dm = m[k] - m0
        total += 0.5 * (
            D * math.log(beta0 / (2 * math.pi)) + e_log_det - D * beta0 / beta[k]
            - beta0 * nu[k] * dm @ W[k] @ dm
        )  # fmt: skip
        total += log_b0 + 0.5 * (nu0 - D - 1) * e_log_det - 0.5 * nu[k] * np.trace(W0_inv @ W[k])
        # -10.77, with H[q(Lambda)] of B.82
        entropy_wishart = (
            -log_wishart_B(np.linalg.slogdet(W[k])[1], nu[k], D)
            - 0.5 * (nu[k] - D - 1) * e_log_det
            + 0.5 * nu[k] * D
        )
        total -= 0.5 * e_log_det + 0.5 * D * math.log(beta[k] / (2 * math.pi)) - 0.5 * D
        total += entropy_wishart
    # -10.75
    with np.errstate(divide="ignore", invalid="ignore"):
        total -= float(w @ np.where(resp > 0, resp * np.log(resp), 0.0).sum(axis=1))
    conc = post["weight_concentration"]
    gamma = prior["gamma"]
    if prior["prior_type"] == "dirichlet_process":
        a, b = conc
        for k in range(K):
            e_log_v = digamma(a[k]) - digamma(a[k] + b[k])
            e_log_1mv = digamma(b[k]) - digamma(a[k] + b[k])
            # E[ln Beta(v | 1, gamma)] - E[ln Beta(v | a, b)]
            total += -log_beta_fn(1.0, gamma) + (gamma - 1) * e_log_1mv
            total -= -log_beta_fn(a[k], b[k]) + (a[k] - 1) * e_log_v + (b[k] - 1) * e_log_1mv
    else:
        # 10.73 - 10.76
        total += log_dirichlet_norm([gamma] * K) + (gamma - 1) * sum(e_log_pi)
        total -= sum((conc[k] - 1) * e_log_pi[k] for k in range(K)) + log_dirichlet_norm(conc)
    return total


def fit(X, resp, sample_weight, prior, reg_covar, covariance_type, n_iter):
    """Plain variational loop from given initial responsibilities.

    Returns the final posterior and the lower bound of every iteration
    (post-update parameters with the responsibilities that produced them).
    """
    n_features = X.shape[1]
    post = posterior(X, resp, sample_weight, prior, reg_covar, covariance_type)
    bounds = []
    for _ in range(n_iter):
        lr, _ = log_resp(X, post, covariance_type, prior["prior_type"])
        resp = np.exp(lr)
        post = posterior(X, resp, sample_weight, prior, reg_covar, covariance_type)
        bounds.append(
            lower_bound(
                resp, sample_weight, post, covariance_type, prior["prior_type"], n_features
            )
        )
    return post, bounds


# ------------------------------------------------------------ predictive
def log_predictive(X, post, covariance_type, prior_type):
    """Posterior predictive log-density, one ``scipy.stats`` Student-t per component.

    ``post`` as :func:`conftest.vi_posterior` returns it. 'full' and 'tied':
    Bishop's 10.81, a D-variate t with ``nu + 1 - D`` degrees of freedom and
    scale matrix ``(1 + beta) / beta * W^{-1} / (nu + 1 - D)``; 'diag': per
    feature a univariate t with ``nu`` degrees of freedom and squared scale
    ``(1 + beta) / beta * W_d^{-1} / nu``; 'spherical': a D-variate t with
    ``nu`` degrees of freedom and scale ``(1 + beta) / beta * W^{-1} / nu * I``
    (``W^{-1} / nu`` is ``covariances_``).
    """
    from scipy import stats

    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    weights = weights_from_concentration(post["weight_concentration"], prior_type)
    terms = []
    for k, (m, beta) in enumerate(zip(post["means"], post["mean_precision"], strict=True)):
        nu = (
            post["degrees_of_freedom"]
            if covariance_type == "tied"
            else post["degrees_of_freedom"][k]
        )
        cov = post["covariances"] if covariance_type == "tied" else post["covariances"][k]
        widen = (1.0 + beta) / beta
        if covariance_type in ("full", "tied"):
            df = nu + 1.0 - n_features
            shape = widen * np.asarray(cov) * nu / df
            logp = stats.multivariate_t(loc=m, shape=shape, df=df).logpdf(X)
        elif covariance_type == "diag":
            scale = np.sqrt(widen * np.asarray(cov))
            logp = sum(
                stats.t.logpdf(X[:, d], df=nu, loc=m[d], scale=scale[d]) for d in range(n_features)
            )
        else:
            shape = widen * float(cov) * np.eye(n_features)
            logp = stats.multivariate_t(loc=m, shape=shape, df=nu).logpdf(X)
        terms.append(np.log(weights[k]) + np.atleast_1d(logp))
    return logsumexp(np.stack(terms, axis=1), axis=1)
