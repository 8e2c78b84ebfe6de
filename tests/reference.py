"""Plain NumPy/SciPy reference for fastmix's kernels and updates.

Every function here is named like the kernel or update it mirrors and is
written the textbook way: a dense (n_samples, n_components) matrix of
log-densities, one loop over components, ``scipy.special.logsumexp``, and
two-pass (centred) covariances. Nothing is streamed, shifted or compiled, so a
disagreement with fastmix points at fastmix (or at this file, which is small
enough to read in one sitting). Arithmetic is float64 throughout; float32
inputs are promoted exactly, so the reference evaluates the float32 model
without rounding.

Model parameters use scikit-learn's layout per covariance type::

    means      (K, D)
    prec_chol  (K, D, D) full | (D, D) tied | (K, D) diag | (K,) spherical
               | (D,) tied-diagonal | () tied-spherical
               upper-triangular U with precision = U @ U.T

'tied-diagonal' and 'tied-spherical' are 'diag' and 'spherical' with one
covariance shared by every component.

Tolerances live in :data:`TOL`, one entry per dtype, and every comparison goes
through :func:`assert_close`.
"""

import math

import numpy as np
from numpy.testing import assert_array_less
from scipy.special import logsumexp

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# One diagonal (one variance) shared by every component; not in scikit-learn 1.x.
TIED_STRUCTURES = ("tied-diagonal", "tied-spherical")

# --------------------------------------------------------------------------
# Tolerances
# --------------------------------------------------------------------------
# A comparison passes when |got - want| <= rtol * scale + atol, elementwise,
# where ``scale`` is the sum of the absolute values of the terms that make up
# the quantity (see :func:`estep_stats` and :func:`row_scales`): the error of
# a computed sum is proportional to that, not to the (possibly cancelled) sum
# itself. ``atol`` is zero: the scales are sums of absolute values, so a zero
# scale means every term is zero and the computed value must be exactly zero;
# a non-zero atol would make comparisons at 1e-150 scales vacuous.
#
# float64: the kernel and the reference differ only by rounding order and by
# the kernel's own exp; measured errors are below 5e-16 of the scale for
# per-row outputs and 3e-15 for the statistics (n <= 2000, D <= 8), so
# rtol = 1e-10 leaves a wide margin for larger n yet fails on any algebraic
# slip: a dropped 10 eps m^2 / nk term at a 1e6 offset is 1e-5 relative, a
# missing weight, reg_covar or symmetrisation is O(1).
#
# float32: the data, the means and the precision factors are read and
# multiplied in float32 (unit roundoff u = 2**-24 = 6.0e-8); the bias and the
# accumulators are float64. One log-density is bias_k - q/2 with
# q = sum_j y_j**2, y = (x - shift_k) @ U_k - offset_k: rounding x - shift
# costs u |d_j|, each y_j is a dot product of at most D terms (error
# <= D u sum_m |d_m U_mj|), squaring and summing over j add (D + 1) u q, and
# the result is stored in float32, u |log p_ik|. To first order
# |error of log p_ik| <= (2D + 3) u a_ik, with a_ik the term scale of
# :func:`log_density_scale` (which for tied includes |(mean_k - c) U|, the
# offset the kernel subtracts after its float32 product). log r_ik and
# log p(x_i) inherit that bound through :func:`row_scales` (L_ik, the scale of
# log r_ik, is a_ik plus sum_j r_ij a_ij).
#
# The statistics inherit it through r = exp(log r), relative to their term
# sums weighted by 1 + L_ik, plus what the float32 normalisation adds
# (fastmix._kernels.estep._normalise_chunk): t_k = log p_k - max_j log p_j is
# rounded to float32, u |t_k|, and |t_k| <= |log r_k| + ln K <= L_ik + 2 ln K
# (the row's log-sum-exp is sum_j r_j log p_j plus an entropy <= ln K); the
# float32 exp is within c = 2 u of exp (1.32 u measured over [-87, 0],
# test_exp32_matches_numpy); the row's total sum_j e_j, summed in float64,
# inherits the e_j's relative errors weighted by r_j: u (sum_j r_j |t_j| + c)
# <= u (2 ln K + c). So r_ik is off by at most
# u ((2D + 4) L_ik + 4 ln K + 2c) <= rtol (1 + L_ik) with
# rtol = max(2D + 4, 4 ln K + 4) u (:func:`float32_factor`). The tests use
# D <= 8 and K <= 7, so rtol = (2*8 + 4) u = 1.19e-6, which holds up to
# K = e**4 = 54. The float32 exp gives 0 below -87 (exp(-87) < 2**-125): such
# a responsibility is dropped, as the moments below drop w r under 2**-86.
# Measured (tests/test_kernels.py::test_float32_error_budget pins it): per-row
# outputs reach 1.7e-7 of the scale (~3 u, the bound's typical rather than
# worst case); a float32 bias (u |bias| ~ 1e-6 of a per-row scale) or
# accumulator fails (see test_float32_accumulates_in_float64).
TOL = {
    np.dtype(np.float64): dict(rtol=1e-10, atol=0.0),
    np.dtype(np.float32): dict(rtol=(2 * 8 + 4) * 2.0**-24, atol=0.0),
}


def float32_factor(n_features, n_components):
    """The float32 responsibilities' bound in units of u: ``max(2D + 4, 4 ln K + 4)``."""
    return max(2 * n_features + 4, 4 * math.log(n_components) + 4)


# The first moments and the diagonal second moments (``s1``, ``s2_diag``) of
# float32 data under DIAG and SPHERICAL (and the tied-diagonal structures,
# which run those codes) are formed in float32 over tiles of MOMENT_TILE = T
# rows (fastmix._kernels.estep._diag_moments; issue 12 allows 256 or a length
# justified, and estep.MOMENT_TILE's comment justifies 512), then added into
# float64. Per term w r v or w r v**2 (v = x - shift_k, centred on its own
# component): the responsibility's float32_factor(D, K) u as above; w r rounded to
# float32, u; v's rounding, u (twice in v**2); each product, u: 3 u for s1
# and 5 u for s2. A tile's float32 sum of T such terms adds (T - 1) u of
# their absolute sum, in whatever order the compiler reassociates it (the
# kernels allow it, to vectorise); adding tiles into float64 is exact to
# float64. So the bound is (float32_factor(D, K) + T + 4) u of the term scale,
# with the data's own D and K: it grows with the tile, not with n_samples
# (tests/test_kernels.py::test_float32_statistics_many_chunks_at_offset runs
# 79 chunks). Terms whose w r is below 2**-86 are dropped (2**-40 above
# float32's smallest normal number, so that the products w r v and w r v**2
# stay normal: subnormal arithmetic is slow): each is below 2**-86 |v|**p
# absolute, which the bound does not carry, so it assumes every component
# holds some row whose w r is far above 2**-86 (true of every test problem;
# one with none has nk < n 2**-86).
# nk, the weights, the log-likelihood sums, and every statistic
# of 'full' and 'tied' (whose s1 stays float64: it is taken around one common
# centre there) keep TOL.
MOMENT_TILE = 512


def moments_tol(dtype, n_features, n_components):
    """The tolerance entry for tile-summed ``s1``/``s2_diag`` of ``dtype`` data."""
    if np.dtype(dtype) != np.float32:
        return tol(dtype)
    factor = float32_factor(n_features, n_components) + MOMENT_TILE + 4
    return dict(rtol=factor * 2.0**-24, atol=0.0)


def stats_tol(stats, name, dtype):
    """The tolerance entry of statistic ``name`` of a fastmix ``Stats``.

    Only the diagonal codes' moments are tile-summed; they are the statistics
    that carry K rows of ``s2_diag``.
    """
    if name in ("s1", "s2_diag") and stats.s2_diag.shape[0] > 0:
        return moments_tol(dtype, stats.s1.shape[1], stats.s1.shape[0])
    return tol(dtype)


def tol(dtype):
    """The tolerance entry of :data:`TOL` for ``dtype``."""
    return TOL[np.dtype(dtype)]


def assert_close(got, want, dtype, scale=None, err_msg="", tolerance=None):
    """Assert ``|got - want| <= rtol * scale + atol`` with ``dtype``'s tolerance.

    ``scale`` defaults to ``|want|`` (a plain relative comparison); pass the
    sum of absolute terms for quantities that may cancel. ``tolerance``
    overrides ``tol(dtype)`` (e.g. :func:`moments_tol`).
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape, err_msg)
    if scale is None:
        scale = np.abs(want)
    t = tol(dtype) if tolerance is None else tolerance
    bound = t["rtol"] * np.broadcast_to(np.asarray(scale, dtype=np.float64), want.shape)
    bound = bound + t["atol"]
    err = np.abs(got - want)
    if not np.all(err <= bound):
        worst = np.unravel_index(np.argmax(err / bound), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{err_msg}: max |got - want| / bound = {np.max(err / bound):.3g} at {worst} "
            f"(got {got[worst]!r}, want {want[worst]!r}, bound {bound[worst]:.3g}, "
            f"rtol {t['rtol']:g})"
        )


def relative_error(got, want, scale):
    """max |got - want| / scale (0/0 counts as 0): the measured error in units of scale."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), want.shape)
    err = np.abs(got - want)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0.0, 0.0, err / scale)
    return float(np.max(ratio)) if ratio.size else 0.0


# --------------------------------------------------------------------------
# Comparing fastmix results (duck-typed: this file never imports fastmix)
# --------------------------------------------------------------------------
def assert_stats_match(stats, want, dtype, what=""):
    """A fastmix ``Stats`` equals the reference statistics to ``dtype``'s tolerance."""
    scale = want["scale"]
    _assert_shapes(stats, want)
    for name, got in [
        ("nk", stats.nk),
        ("s1", stats.s1),
        ("s2", stats.s2_mat),
        ("s2_diag", stats.s2_diag),
        ("sum_w", stats.sum_w),
        ("sum_wlogp", stats.sum_wlogp),
        ("sum_wrlogr", stats.sum_wrlogr),
    ]:
        t = stats_tol(stats, name, dtype)
        assert_close(got, want[name], dtype, scale[name], f"{what} {name}", t)
    # The pass mirrors the kernel's upper triangle: S2 must come back symmetric.
    np.testing.assert_array_equal(stats.s2_mat, np.swapaxes(stats.s2_mat, 1, 2))


def _assert_shapes(stats, want):
    assert stats.nk.shape == want["nk"].shape
    assert stats.s1.shape == want["s1"].shape
    assert stats.s2_mat.shape == want["s2"].shape
    assert stats.s2_diag.shape == want["s2_diag"].shape


def parameter_scales(means, cov, covariance_type, shift=None):
    """Error scales of M-step outputs.

    Means: location plus spread. Covariances: sqrt(v_i v_j), the Cauchy-Schwarz
    bound on |c_ij|, with v the second moments around the accumulation shift
    (variance + (mean - shift)^2): fastmix's centring step subtracts terms of
    that size, so rounding is relative to it.
    """
    delta2 = 0.0 if shift is None else (means - shift) ** 2
    if covariance_type == "full":
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2) + delta2)
        return np.abs(means) + sd, sd[:, :, None] * sd[:, None, :]
    if covariance_type == "tied":
        sd = np.sqrt(np.diag(cov) + np.max(delta2, axis=0, initial=0.0))
        return np.abs(means) + sd, np.outer(sd, sd)
    if covariance_type == "diag":
        v = cov + delta2
        return np.abs(means) + np.sqrt(v), v
    if covariance_type == "spherical":
        v = cov + np.mean(delta2, axis=1) if shift is not None else cov
        return np.abs(means) + np.sqrt(v)[:, None], v
    # tied-diagonal, tied-spherical: every component's scatter around its own shift.
    if shift is not None:
        delta2 = np.max(delta2, axis=0)
        cov = cov + (delta2 if covariance_type == "tied-diagonal" else np.mean(delta2))
    return np.abs(means) + np.sqrt(cov), cov


def fit_scales(means, cov, covariance_type):
    """``parameter_scales`` of a fitted model, around the shift its last M-step used.

    Full, diag and spherical statistics are accumulated around each component's
    previous mean (``shift=None`` is close enough); tied ones around the mean
    of the means, so a tied covariance carries rounding relative to the
    between-component spread as well.
    """
    shift = means.mean(axis=0, keepdims=True) if covariance_type == "tied" else None
    return parameter_scales(means, cov, covariance_type, shift)


def assert_params_match(got, want, covariance_type, dtype, shift=None, what=""):
    nk, means, cov = got
    want_nk, want_means, want_cov = want
    mean_scale, cov_scale = parameter_scales(want_means, want_cov, covariance_type, shift)
    assert_close(nk, want_nk, dtype, err_msg=f"{what} nk")
    assert_close(means, want_means, dtype, mean_scale, err_msg=f"{what} means")
    assert_close(cov, want_cov, dtype, cov_scale, err_msg=f"{what} covariances")


# --------------------------------------------------------------------------
# Densities
# --------------------------------------------------------------------------
_LOG_2PI = math.log(2.0 * math.pi)


def dense_cholesky(prec_chol, covariance_type, n_components, n_features):
    """Every component's precision Cholesky factor as a (K, D, D) stack."""
    pc = np.asarray(prec_chol, dtype=np.float64)
    if covariance_type == "full":
        return pc.copy()
    if covariance_type == "tied":
        return np.repeat(pc[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(pc[k]) for k in range(n_components)])
    if covariance_type == "spherical":
        return np.stack([pc[k] * np.eye(n_features) for k in range(n_components)])
    # tied-diagonal (D,) or tied-spherical (): the same factor for every component.
    u = np.diag(pc) if covariance_type == "tied-diagonal" else pc * np.eye(n_features)
    return np.repeat(u[None], n_components, axis=0)


def log_det_cholesky(prec_chol, covariance_type, n_features):
    """log|U_k| = 0.5 log det(precision_k), via ``numpy.linalg.slogdet``.

    Returns shape (K,), or a scalar for 'tied' (scikit-learn's convention) and
    the other tied structures.
    """
    pc = np.asarray(prec_chol, dtype=np.float64)
    if covariance_type in ("tied", *TIED_STRUCTURES):
        if covariance_type != "tied":
            pc = dense_cholesky(pc, covariance_type, 1, n_features)[0]
        sign, logdet = np.linalg.slogdet(pc @ pc.T)
        assert sign > 0
        return 0.5 * logdet
    n_components = pc.shape[0]
    out = np.empty(n_components)
    for k, u in enumerate(dense_cholesky(pc, covariance_type, n_components, n_features)):
        sign, logdet = np.linalg.slogdet(u @ u.T)
        assert sign > 0
        out[k] = 0.5 * logdet
    return out


def mahalanobis(X, means, prec_chol, covariance_type):
    """Squared Mahalanobis distances q_ik = ||(x_i - mean_k) @ U_k||^2, shape (n, K)."""
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    n_components, n_features = means.shape
    us = dense_cholesky(prec_chol, covariance_type, n_components, n_features)
    q = np.empty((X.shape[0], n_components))
    for k in range(n_components):
        y = (X - means[k]) @ us[k]
        q[:, k] = np.sum(y * y, axis=1)
    return q


def component_bias(log_weights, prec_chol, covariance_type, n_features):
    """log w_k + log|U_k| - D/2 log(2 pi): the per-component constant, shape (K,)."""
    log_det = log_det_cholesky(prec_chol, covariance_type, n_features)
    return np.asarray(log_weights, dtype=np.float64) + log_det - 0.5 * n_features * _LOG_2PI


def weighted_log_prob(X, log_weights, means, prec_chol, covariance_type):
    """log w_k + log N(x_i | mean_k, precision_k), shape (n, K).

    ``log_weights`` is any additive per-component constant (log-weights for EM,
    E[log pi] and Wishart terms for variational inference).
    """
    n_features = np.shape(means)[1]
    q = mahalanobis(X, means, prec_chol, covariance_type)
    return component_bias(log_weights, prec_chol, covariance_type, n_features) - 0.5 * q


def log_density_scale(X, log_weights, means, prec_chol, covariance_type, shift=None):
    """Magnitude a_ik of the terms whose rounding perturbs log p_ik, shape (n, K).

    ``|bias_k| + 0.5 (|| |x - s_k| |U_k| || + || |mean_k - s_k| |U_k| ||)^2``, the
    absolute values taken elementwise: an implementation that evaluates
    ``(x - s_k) @ U_k - (mean_k - s_k) @ U_k`` (fastmix's tied path, with ``s_k``
    its shared centre) can lose that much to rounding, even when the
    difference is small. With ``shift=None`` (or ``shift == means``) the second
    term is zero and a_ik = |bias_k| + 0.5 * q_ik when U_k has one sign per
    column.
    """
    X = np.asarray(X, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    n_components, n_features = means.shape
    shift = means if shift is None else np.asarray(shift, dtype=np.float64)
    us = np.abs(dense_cholesky(prec_chol, covariance_type, n_components, n_features))
    bias = np.abs(component_bias(log_weights, prec_chol, covariance_type, n_features))
    out = np.empty((X.shape[0], n_components))
    for k in range(n_components):
        z = np.sqrt(np.sum((np.abs(X - shift[k]) @ us[k]) ** 2, axis=1))
        o = np.sqrt(np.sum((np.abs(means[k] - shift[k]) @ us[k]) ** 2))
        out[:, k] = bias[k] + 0.5 * (z + o) ** 2
    return out


def row_scales(log_resp, density_scale):
    """Error scales of the per-row outputs, given a_ik from :func:`log_density_scale`.

    Returns ``(lpn_scale (n,), log_resp_scale (n, K))``: log p(x_i) is a
    responsibility-weighted mix of the log-densities, so its error is at most
    ``sum_k r_ik a_ik``; log r_ik = log p_ik - log p(x_i) adds both.
    """
    r = np.exp(log_resp)
    lpn_scale = np.sum(r * density_scale, axis=1)
    return lpn_scale, density_scale + lpn_scale[:, None]


# --------------------------------------------------------------------------
# E-step
# --------------------------------------------------------------------------
def estep_rows(X, log_weights, means, prec_chol, covariance_type):
    """Per-row outputs, densely: ``(log_prob_norm (n,), labels (n,), log_resp (n, K))``."""
    wlp = weighted_log_prob(X, log_weights, means, prec_chol, covariance_type)
    log_prob_norm = logsumexp(wlp, axis=1)
    labels = np.argmax(wlp, axis=1)
    log_resp = wlp - log_prob_norm[:, None]
    return log_prob_norm, labels, log_resp


def log_likelihood(X, sample_weight, log_weights, means, prec_chol, covariance_type):
    """Weighted mean of log p(x_i): scikit-learn's lower bound for EM."""
    lpn, _, _ = estep_rows(X, log_weights, means, prec_chol, covariance_type)
    w = _weights(sample_weight, np.shape(X)[0])
    return float(np.sum(w * lpn) / np.sum(w))


def icl(X, weights, means, prec_chol, covariance_type, n_parameters):
    """Integrated completed likelihood: BIC plus twice the entropy of the responsibilities.

    ``-2 sum_i log p(x_i) + p log n - 2 sum_i sum_k r_ik log r_ik`` (Biernacki,
    Celeux and Govaert 2000), unweighted, from the dense responsibilities;
    ``0 log 0`` is taken as 0.
    """
    lpn, _, log_resp = estep_rows(X, np.log(weights), means, prec_chol, covariance_type)
    resp = np.exp(log_resp)
    entropy = -np.sum(np.where(resp > 0, resp * log_resp, 0.0))
    bic = -2.0 * np.sum(lpn) + n_parameters * math.log(np.shape(X)[0])
    return bic + 2.0 * entropy


def _weights(sample_weight, n_samples):
    if sample_weight is None:
        return np.ones(n_samples)
    return np.asarray(sample_weight, dtype=np.float64)


def stats_from_resp(X, sample_weight, resp, covariance_type, shift):
    """Sufficient statistics for given responsibilities, around ``shift``.

    Parameters
    ----------
    X : (n, D); sample_weight : (n,) or None; resp : (n, K)
    covariance_type : str
    shift : (K, D)
        Accumulation centres (every row equal for 'tied').

    Returns
    -------
    dict with
        nk (K,) = sum_i w_i r_ik;
        s1 (K, D) = sum_i w_i r_ik (x_i - shift_k);
        s2 = symmetric second moments, (K, D, D) full: sum_i w r (x - shift_k)(..)^T;
        (1, D, D) tied: sum_i w_i (x_i - shift_0)(..)^T (every row, whatever r);
        (0, D, D) otherwise;
        s2_diag (K, D) diag/spherical: sum_i w r (x - shift_k)**2, else (0, D);
        sum_w = sum_i w_i; row_sum (D,) = sum_i w_i (x_i - shift_0);
        scale: dict of the same keys holding sums of absolute terms (error scales).
    """
    X = np.asarray(X, dtype=np.float64)
    r = np.asarray(resp, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    n_samples, n_features = X.shape
    n_components = r.shape[1]
    w = _weights(sample_weight, n_samples)
    wr = w[:, None] * r
    nk = wr.sum(axis=0)
    s1 = np.zeros((n_components, n_features))
    s1_abs = np.zeros((n_components, n_features))
    s2_full = np.zeros((n_components, n_features, n_features))
    s2_full_abs = np.zeros((n_components, n_features, n_features))
    for k in range(n_components):
        d = X - shift[k]
        s1[k] = wr[:, k] @ d
        s1_abs[k] = wr[:, k] @ np.abs(d)
        s2_full[k] = (wr[:, k, None] * d).T @ d
        s2_full_abs[k] = (wr[:, k, None] * np.abs(d)).T @ np.abs(d)
    d0 = X - shift[0]
    empty_mat = np.zeros((0, n_features, n_features))
    empty_diag = np.zeros((0, n_features))
    if covariance_type == "full":
        s2, s2_abs = s2_full, s2_full_abs
    elif covariance_type == "tied":
        s2 = ((w[:, None] * d0).T @ d0)[None]
        s2_abs = ((w[:, None] * np.abs(d0)).T @ np.abs(d0))[None]
    else:
        s2, s2_abs = empty_mat, empty_mat
    if covariance_type in ("diag", "spherical", *TIED_STRUCTURES):
        s2_diag = np.stack([np.diag(s2_full[k]) for k in range(n_components)])
        s2_diag_abs = s2_diag.copy()
    else:
        s2_diag, s2_diag_abs = empty_diag, empty_diag
    return dict(
        nk=nk,
        s1=s1,
        s2=s2,
        s2_diag=s2_diag,
        sum_w=float(w.sum()),
        row_sum=w @ d0,
        scale=dict(
            nk=nk,
            s1=s1_abs,
            s2=s2_abs,
            s2_diag=s2_diag_abs,
            sum_w=float(w.sum()),
            row_sum=w @ np.abs(d0),
        ),
    )


def estep_stats(
    X, sample_weight, log_weights, means, prec_chol, covariance_type, shift=None, min_resp=0.0
):
    """One dense E-step: the statistics fastmix's ``estep_stats`` streams.

    Responsibilities come from :func:`estep_rows`; the moments from
    :func:`stats_from_resp` around ``shift`` (default: the means), with the
    responsibilities below ``min_resp`` taken as 0 (the log-likelihood and
    ``sum r log r`` keep them). Adds
    ``sum_wlogp = sum_i w_i log p(x_i)`` and ``sum_wrlogr = sum_i w_i sum_k r_ik
    log r_ik`` (0 log 0 = 0).

    The ``scale`` entry holds the error scales of each statistic: sums of
    absolute terms, each weighted by ``1 + L_ik`` where ``L_ik`` is the
    log-responsibility scale of :func:`row_scales` (a relative error e in the
    log-densities moves r_ik by r_ik * e * L_ik).
    """
    means = np.asarray(means, dtype=np.float64)
    shift = means if shift is None else np.asarray(shift, dtype=np.float64)
    n_samples = np.shape(X)[0]
    w = _weights(sample_weight, n_samples)
    lpn, _, log_resp = estep_rows(X, log_weights, means, prec_chol, covariance_type)
    r = np.exp(log_resp)
    out = stats_from_resp(X, sample_weight, drop_below(r, min_resp), covariance_type, shift)
    with np.errstate(invalid="ignore"):
        rlogr = np.where(r > 0.0, r * log_resp, 0.0)
    out["sum_wlogp"] = float(w @ lpn)
    out["sum_wrlogr"] = float(w @ rlogr.sum(axis=1))

    a = log_density_scale(X, log_weights, means, prec_chol, covariance_type, shift)
    lpn_scale, lr_scale = row_scales(log_resp, a)
    # Same sums as the statistics, with every row's responsibilities inflated
    # by their own error scale; the tied S2 does not depend on r.
    inflated = stats_from_resp(X, sample_weight, r * (1.0 + lr_scale), covariance_type, shift)
    scale = inflated["scale"]
    if covariance_type == "tied":
        scale["s2"] = out["scale"]["s2"]
    scale["sum_wlogp"] = float(w @ (np.abs(lpn) + lpn_scale))
    with np.errstate(invalid="ignore"):
        rlogr_scale = np.where(r > 0.0, r * (1.0 + np.abs(log_resp)) * (1.0 + lr_scale), 0.0)
    scale["sum_wrlogr"] = float(w @ rlogr_scale.sum(axis=1))
    out["scale"] = scale
    return out


def drop_below(resp, min_resp):
    """``resp`` with the entries below ``min_resp`` set to 0 (``min_responsibility``)."""
    return np.where(resp < min_resp, 0.0, resp)


# --------------------------------------------------------------------------
# M-step
# --------------------------------------------------------------------------
def gaussian_parameters(X, resp, reg_covar, covariance_type, sample_weight=None, dtype=None):
    """Counts, means and covariances from dense responsibilities, two-pass.

    Equals scikit-learn's ``_estimate_gaussian_parameters`` (which has no
    sample weights; here every responsibility is multiplied by its row's
    weight), including its ``nk + 10 eps``, but centres before squaring
    instead of using its one-pass formulas. ``eps`` is float64's unless
    ``dtype`` says otherwise (scikit-learn uses X's dtype; fastmix float64's),
    scaled by ``min(1, sum(w) / count(w > 0))`` (1 without weights): integer
    weights equal repeated rows, tiny weights do not let it dominate. The exact
    identities used to meet scikit-learn's numbers:

    - full: sum_i r (x - m)(x - m)^T / nk, exactly scikit-learn's formula.
    - diag: scikit-learn's sum r x^2 / nk - m^2 equals
      sum r (x - m)^2 / nk + e m^2 / nk (e = 10 eps), because
      sum r x = nk m with nk = sum r + e.
    - tied: scikit-learn's (sum_i x x^T - sum_k nk m m^T) / sum nk equals
      (sum_k sum_i r (x - m_k)(..)^T + e sum_k m_k m_k^T
      + sum_i (1 - sum_k r_ik) x_i x_i^T) / sum nk. The last term is zero for an
      E-step's responsibilities (rows sum to one); rows left unassigned by an
      initialisation (all-zero rows) add their x x^T. Rows that sum to one up
      to rounding (|1 - sum| <= 1e-12) are taken as exactly one: scikit-learn's
      one-pass X^T X would amplify that rounding by |x|^2.

    - tied-diagonal: the diagonal covariances summed over the components with
      weights nk, (sum_k sum_i r (x - m_k)^2 + e sum_k m_k^2) / sum nk, the
      diagonal of the tied covariance for responsibilities that sum to one per
      row. Rows an initialisation leaves unassigned add nothing (as for diag),
      where tied's one-pass formula would add their x^2.
    - tied-spherical: the mean over features of tied-diagonal.

    Returns
    -------
    nk (K,), means (K, D), covariances ((K, D, D) | (D, D) | (K, D) | (K,)
    | (D,) | ()), float64
    """
    if dtype is None:
        dtype = np.float64
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    w = _weights(sample_weight, n_samples)
    r = np.asarray(resp, dtype=np.float64) * w[:, None]
    n_components = r.shape[1]
    e = 10.0 * np.finfo(dtype).eps * min(1.0, w.sum() / np.count_nonzero(w))
    nk = r.sum(axis=0) + e
    means = np.empty((n_components, n_features))
    for k in range(n_components):
        means[k] = r[:, k] @ X / nk[k]
    scatter = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        diff = X - means[k]
        scatter[k] = (r[:, k, None] * diff).T @ diff
    if covariance_type == "full":
        cov = scatter / nk[:, None, None]
        for k in range(n_components):
            cov[k] += reg_covar * np.eye(n_features)
    elif covariance_type == "tied":
        row_mass = np.asarray(resp, dtype=np.float64).sum(axis=1)
        missing = np.where(np.abs(1.0 - row_mass) <= 1e-12, 0.0, 1.0 - row_mass) * w
        total = scatter.sum(axis=0) + e * means.T @ means + (missing[:, None] * X).T @ X
        cov = total / nk.sum() + reg_covar * np.eye(n_features)
    elif covariance_type in ("diag", "spherical"):
        diag = np.stack([np.diag(scatter[k]) for k in range(n_components)])
        cov = (diag + e * means**2) / nk[:, None] + reg_covar
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)
    else:
        total = np.zeros(n_features)
        for k in range(n_components):
            total += np.diag(scatter[k]) + e * means[k] ** 2
        cov = total / nk.sum() + reg_covar
        if covariance_type == "tied-spherical":
            cov = np.float64(cov.mean())
    return nk, means, cov


def precision_cholesky(covariances, covariance_type):
    """Upper-triangular U with U @ U.T = inverse(covariance): U = inverse(L).T, L L^T = cov.

    Raises ``numpy.linalg.LinAlgError`` when a covariance is not positive-definite.
    """
    cov = np.asarray(covariances, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        mats = cov if covariance_type == "full" else cov[None]
        out = np.stack([np.linalg.inv(np.linalg.cholesky(m)).T for m in mats])
        return out if covariance_type == "full" else out[0]
    if np.any(cov <= 0.0):
        raise np.linalg.LinAlgError("non-positive variance")
    return 1.0 / np.sqrt(cov)


def precision_cholesky_from_precisions(precisions, covariance_type):
    """The unique upper-triangular U with positive diagonal and U @ U.T = precision."""
    prec = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        mats = prec if covariance_type == "full" else prec[None]
        out = np.stack([precision_cholesky(np.linalg.inv(m), "tied") for m in mats])
        return out if covariance_type == "full" else out[0]
    return np.sqrt(prec)


def precisions_from_cholesky(prec_chol, covariance_type):
    """precision = U @ U.T (elementwise square for diag and spherical)."""
    pc = np.asarray(prec_chol, dtype=np.float64)
    if covariance_type == "full":
        return np.stack([u @ u.T for u in pc])
    if covariance_type == "tied":
        return pc @ pc.T
    return pc**2


def m_step(X, resp, reg_covar, covariance_type, sample_weight=None, dtype=None):
    """scikit-learn's M-step: ``(weights, means, covariances, prec_chol)``, float64."""
    nk, means, cov = gaussian_parameters(
        X, resp, reg_covar, covariance_type, sample_weight=sample_weight, dtype=dtype
    )
    return nk / nk.sum(), means, cov, precision_cholesky(cov, covariance_type)


def em(
    X, sample_weight, weights, means, prec_chol, covariance_type, reg_covar, n_iter, min_resp=0.0
):
    """``n_iter`` dense EM iterations from the given parameters.

    Each M-step sees the responsibilities below ``min_resp`` as 0.

    Returns ``(weights, means, covariances, prec_chol), lower_bounds`` with
    scikit-learn's bookkeeping: the lower bound of iteration t is the weighted
    mean log-likelihood under the parameters *entering* iteration t.
    """
    dtype = np.asarray(X).dtype
    params = (np.asarray(weights, np.float64), means, None, prec_chol)
    lower_bounds = []
    for _ in range(n_iter):
        w, m, _, pc = params
        with np.errstate(divide="ignore"):
            log_w = np.log(w)
        lpn, _, log_resp = estep_rows(X, log_w, m, pc, covariance_type)
        sw = _weights(sample_weight, np.shape(X)[0])
        lower_bounds.append(float(sw @ lpn / sw.sum()))
        resp = drop_below(np.exp(log_resp), min_resp)
        params = m_step(X, resp, reg_covar, covariance_type, sample_weight, dtype=dtype)
    return params, lower_bounds


def assert_fit_matches_em(gm, em_result, covariance_type, what=""):
    """A fitted model's bounds, weights, means and covariances against :func:`em`'s."""
    (weights, means, cov, _), bounds = em_result
    f64 = np.float64
    assert_close(gm.lower_bounds_, bounds, f64, np.abs(bounds) + 1.0, err_msg=what + "bounds")
    assert_close(gm.weights_, weights, f64, err_msg=what + "weights")
    mean_scale, cov_scale = fit_scales(means, cov, covariance_type)
    assert_close(gm.means_, means, f64, mean_scale, err_msg=what + "means")
    assert_close(gm.covariances_, cov, f64, cov_scale, err_msg=what + "covariances")


def assert_upper_triangular(mats):
    """Every matrix in the stack is upper-triangular with a positive diagonal."""
    mats = np.asarray(mats)
    lower = np.tril(mats, -1)
    assert not np.any(lower), "strictly lower part is not zero"
    assert_array_less(0.0, np.diagonal(mats, axis1=-2, axis2=-1))


# --------------------------------------------------------------------------
# Seeded test problems
# --------------------------------------------------------------------------
def random_covariances(rng, covariance_type, n_components, n_features, scale=1.0):
    """Well-conditioned random covariances in scikit-learn's layout (variances ~ scale^2)."""
    if covariance_type in ("full", "tied"):
        count = n_components if covariance_type == "full" else 1
        mats = []
        for _ in range(count):
            a = rng.normal(size=(n_features, n_features))
            mats.append((a @ a.T / n_features + 0.5 * np.eye(n_features)) * scale**2)
        mats = np.stack(mats)
        return mats if covariance_type == "full" else mats[0]
    size = {
        "diag": (n_components, n_features),
        "spherical": (n_components,),
        "tied-diagonal": (n_features,),
        "tied-spherical": (),
    }[covariance_type]
    return rng.uniform(0.5, 2.0, size=size) * scale**2


def random_problem(
    seed, covariance_type, n_samples=300, n_features=3, n_components=3, offset=0.0, scale=1.0
):
    """Data drawn around K centres plus a model whose parameters are *not* the fitted ones.

    Returns ``X (n, D) float64, log_weights (K,), means (K, D), prec_chol``. The
    data are ``offset + scale * (clustered N(0, 1) data)``; the model's means
    and covariances are perturbed versions of the generating ones, so every
    row has non-trivial responsibilities for several components.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    Z = centres[labels] + rng.normal(size=(n_samples, n_features))
    X = offset + scale * Z
    means = offset + scale * (centres + rng.normal(scale=0.5, size=centres.shape))
    cov = random_covariances(rng, covariance_type, n_components, n_features, scale)
    prec_chol = precision_cholesky(cov, covariance_type)
    weights = rng.dirichlet(np.full(n_components, 5.0))
    return X, np.log(weights), means, prec_chol


def round_model(means, prec_chol, dtype):
    """The model as a ``dtype`` estimator holds it, promoted back to float64."""
    return (
        np.asarray(means).astype(dtype).astype(np.float64),
        np.asarray(prec_chol).astype(dtype).astype(np.float64),
    )


# --------------------------------------------------------------------------
# k-means (init_params='kmeans', fastmix._kernels.kmeans)
# --------------------------------------------------------------------------
def _centred(X, mean):
    return np.asarray(X, dtype=np.float64) - np.asarray(mean, dtype=np.float64)


def kmeans_sq_distances(X, mean, centres):
    """Squared distances (n, K) of the centred rows to ``centres``.

    Their terms are non-negative, so a distance is its own error scale.
    """
    diff = _centred(X, mean)[:, None, :] - np.asarray(centres, dtype=np.float64)[None]
    return (diff**2).sum(axis=2)


def kmeans_seed_trial(X, mean, sample_weight, closest, centres):
    """``min(closest, |x - mean - c_j|**2)`` as (m, n) and its weighted sums (m,)."""
    dist = np.minimum(np.asarray(closest)[None, :], kmeans_sq_distances(X, mean, centres).T)
    return dist, dist @ _weights(sample_weight, np.shape(X)[0])


def kmeans_seed_draw(closest, sample_weight, targets):
    """``np.searchsorted(np.cumsum(w * closest), targets)`` clipped to the last row."""
    running = np.cumsum(_weights(sample_weight, len(closest)) * closest)
    return np.minimum(np.searchsorted(running, targets), len(closest) - 1)


def kmeans_lloyd_pass(X, mean, sample_weight, centres):
    """Nearest centre of every row (first on ties), per-centre weighted sums and weights.

    Returns ``labels (n,), sums (K, D), weights (K,), sum_scale (K, D)`` where
    ``sum_scale`` is the sum of absolute terms of each entry of ``sums``.
    """
    Xc = _centred(X, mean)
    n_clusters = np.shape(centres)[0]
    labels = kmeans_sq_distances(X, mean, centres).argmin(axis=1)
    w = _weights(sample_weight, Xc.shape[0])
    sums = np.zeros((n_clusters, Xc.shape[1]))
    scale = np.zeros_like(sums)
    np.add.at(sums, labels, w[:, None] * Xc)
    np.add.at(scale, labels, np.abs(w[:, None] * Xc))
    weights = np.bincount(labels, weights=w, minlength=n_clusters)
    return labels, sums, weights, scale
