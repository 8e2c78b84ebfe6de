"""Streaming E-step kernels shared by EM and variational inference.

One parallel pass over fixed-size row chunks computes, for every row ``x``,

    log p_k(x) = bias_k - 0.5 * || (x - shift_k) @ U_k - offset_k ||^2

a log-sum-exp over components, the responsibilities, and the chunk's
sufficient statistics. ``U_k`` is an upper-triangular precision Cholesky
factor (scikit-learn's convention: precision = U U^T). ``bias_k`` carries the
log-weight (or E[log pi_k]), log|U_k|, -D/2 log(2 pi) and, for variational
inference, the Wishart expectation terms, so the kernel never knows which
estimator called it.

Covariance types share one kernel through an integer code:

- ``FULL``: ``prec_mat`` has shape (K, D, D); ``shift`` = the current means,
  ``offset`` = 0.
- ``TIED``: ``prec_mat`` has shape (1, D, D); every row of ``shift`` is the
  same centre ``c`` and ``offset_k = (mean_k - c) @ U``, so ``(x - c) @ U`` is
  computed once per row instead of once per component.
- ``DIAG``: ``prec_diag`` has shape (K, D) and holds *precisions* (squared
  Cholesky factors); ``shift`` = the current means. Spherical models use DIAG
  with each component's precision repeated over the features.

Statistics are accumulated around ``shift`` in float64 (``S1 = sum w r (x -
shift_k)``, ``S2`` likewise for the second moment), so a variance can never go
negative by cancellation. Each chunk fills its own partial slot; partials are
summed in chunk order afterwards, so the result is bitwise independent of the
number of threads. Data are read and multiplied in their own dtype (float32
stays float32), accumulators are float64.
"""

import numpy as np

from .._numba import jit, prange

FULL = 0
TIED = 1
DIAG = 2


@jit
def _logdens_chunk(X, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, logp):
    """Weighted log-densities of rows ``lo:hi`` into ``logp`` (hi - lo, K), float64."""
    n_features = X.shape[1]
    n_components = bias.shape[0]
    d = np.empty(n_features, dtype=X.dtype)
    y = np.empty(n_features, dtype=X.dtype)
    if code == DIAG:
        for i in range(lo, hi):
            for k in range(n_components):
                q = X.dtype.type(0.0)
                for j in range(n_features):
                    t = X[i, j] - shift[k, j]
                    q += prec_diag[k, j] * t * t
                logp[i - lo, k] = bias[k] - 0.5 * q
    elif code == TIED:
        z = np.empty(n_features, dtype=X.dtype)
        for i in range(lo, hi):
            for j in range(n_features):
                d[j] = X[i, j] - shift[0, j]
                z[j] = 0.0
            for m in range(n_features):
                dm = d[m]
                for j in range(m, n_features):
                    z[j] += dm * prec_mat[0, m, j]
            for k in range(n_components):
                q = X.dtype.type(0.0)
                for j in range(n_features):
                    t = z[j] - offset[k, j]
                    q += t * t
                logp[i - lo, k] = bias[k] - 0.5 * q
    else:
        for k in range(n_components):
            for i in range(lo, hi):
                for j in range(n_features):
                    d[j] = X[i, j] - shift[k, j]
                    y[j] = -offset[k, j]
                for m in range(n_features):
                    dm = d[m]
                    for j in range(m, n_features):
                        y[j] += dm * prec_mat[k, m, j]
                q = X.dtype.type(0.0)
                for j in range(n_features):
                    q += y[j] * y[j]
                logp[i - lo, k] = bias[k] - 0.5 * q


@jit
def _normalise_row(logp, i):
    """Turn row ``i`` of log-densities into log-responsibilities in place.

    Returns the row's log-sum-exp, the stable ``max + log(sum(exp(. - max)))``.
    """
    n_components = logp.shape[1]
    mx = logp[i, 0]
    for k in range(1, n_components):
        if logp[i, k] > mx:
            mx = logp[i, k]
    if not np.isfinite(mx):
        # Every component has zero density (or a NaN crept in): propagate it
        # rather than producing a silent 0/0; the caller reports it.
        for k in range(n_components):
            logp[i, k] = np.nan
        return mx if np.isnan(mx) else -np.inf
    s = 0.0
    for k in range(n_components):
        s += np.exp(logp[i, k] - mx)
    lse = mx + np.log(s)
    for k in range(n_components):
        logp[i, k] -= lse
    return lse


@jit
def _chunk_stats(X, sample_weight, lo, hi, code, shift, logr, nk, s1, s2_mat, s2_diag, scal):
    """Accumulate the statistics of rows ``lo:hi`` given their log-responsibilities."""
    n_features = X.shape[1]
    n_components = logr.shape[1]
    has_weight = sample_weight.shape[0] > 0
    d = np.empty(n_features, dtype=X.dtype)
    for i in range(lo, hi):
        w = 1.0
        if has_weight:
            w = np.float64(sample_weight[i])
            if w == 0.0:
                continue
        ii = i - lo
        if code == TIED:
            for j in range(n_features):
                d[j] = X[i, j] - shift[0, j]
            for m in range(n_features):
                wd = w * d[m]
                for j in range(m, n_features):
                    s2_mat[0, m, j] += wd * d[j]
        rlogr = 0.0
        for k in range(n_components):
            lr = logr[ii, k]
            r = np.exp(lr)
            if r == 0.0:
                continue
            rlogr += r * lr
            wr = w * r
            nk[k] += wr
            for j in range(n_features):
                d[j] = X[i, j] - shift[k, j]
                s1[k, j] += wr * d[j]
            if code == FULL:
                for m in range(n_features):
                    wd = wr * d[m]
                    for j in range(m, n_features):
                        s2_mat[k, m, j] += wd * d[j]
            elif code == DIAG:
                for j in range(n_features):
                    s2_diag[k, j] += wr * d[j] * d[j]
        scal[2] += w * rlogr


@jit(parallel=True)
def estep_stats(
    X,
    sample_weight,
    code,
    shift,
    prec_mat,
    prec_diag,
    offset,
    bias,
    chunk_size,
    nk,
    s1,
    s2_mat,
    s2_diag,
    scal,
):
    """One streaming E-step pass over ``X``, adding its statistics to the outputs.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64, C-contiguous
        A block of rows. Read only.
    sample_weight : ndarray of shape (n,) or (0,), float64
        Per-row weights; an empty array means every weight is 1.
    code : int
        ``FULL``, ``TIED`` or ``DIAG`` (spherical is DIAG, see module notes).
    shift : ndarray of shape (K, D), X.dtype
        Centre per component: the densities are evaluated at ``x - shift_k``
        and the statistics accumulated around it (all rows equal for TIED).
    prec_mat : ndarray of shape (K, D, D) for FULL, (1, D, D) for TIED,
        (0, D, D) for DIAG; X.dtype
        Upper-triangular precision Cholesky factors.
    prec_diag : ndarray of shape (K, D) for DIAG, (0, D) otherwise; X.dtype
        Diagonal precisions (squared Cholesky factors).
    offset : ndarray of shape (K, D), X.dtype
        Subtracted from ``(x - shift_k) @ U_k`` (zero except for TIED).
    bias : ndarray of shape (K,), float64
        Per-component additive constant of the log-density.
    chunk_size : int
        Rows per chunk; a chunk is the unit of parallel work and of reduction.
    nk : ndarray of shape (K,), float64
        Written in place: ``+= sum_i w_i r_ik``.
    s1 : ndarray of shape (K, D), float64
        Written in place: ``+= sum_i w_i r_ik (x_i - shift_k)``.
    s2_mat : ndarray of shape (K, D, D) for FULL, (1, D, D) for TIED,
        (0, D, D) for DIAG; float64
        Written in place, upper triangle only: FULL ``+= sum w r (x - shift_k)
        (x - shift_k)^T``; TIED ``+= sum w (x - c)(x - c)^T`` (independent of
        the responsibilities).
    s2_diag : ndarray of shape (K, D) for DIAG, (0, D) otherwise; float64
        Written in place: ``+= sum w r (x - shift_k)**2``.
    scal : ndarray of shape (3,), float64
        Written in place: ``+= [sum w, sum w log p(x), sum w sum_k r log r]``.

    Notes
    -----
    Extra memory is O(chunks · K · D²) for the partials of this block plus
    O(chunk_size · K) per thread; no (n, K) array is allocated.
    """
    n_samples, n_features = X.shape
    n_components = bias.shape[0]
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    p_nk = np.zeros((n_chunks, n_components))
    p_s1 = np.zeros((n_chunks, n_components, n_features))
    p_s2m = np.zeros((n_chunks, s2_mat.shape[0], n_features, n_features))
    p_s2d = np.zeros((n_chunks, s2_diag.shape[0], n_features))
    p_scal = np.zeros((n_chunks, 3))
    has_weight = sample_weight.shape[0] > 0
    for c in prange(n_chunks):
        lo = c * chunk_size
        hi = min(lo + chunk_size, n_samples)
        logp = np.empty((hi - lo, n_components))
        _logdens_chunk(X, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, logp)
        for i in range(lo, hi):
            lse = _normalise_row(logp, i - lo)
            w = np.float64(sample_weight[i]) if has_weight else 1.0
            if w != 0.0:
                p_scal[c, 0] += w
                p_scal[c, 1] += w * lse
        _chunk_stats(
            X, sample_weight, lo, hi, code, shift, logp,
            p_nk[c], p_s1[c], p_s2m[c], p_s2d[c], p_scal[c],
        )  # fmt: skip
    for c in range(n_chunks):
        nk += p_nk[c]
        s1 += p_s1[c]
        s2_mat += p_s2m[c]
        s2_diag += p_s2d[c]
        scal += p_scal[c]


@jit(parallel=True)
def estep_rows(
    X,
    code,
    shift,
    prec_mat,
    prec_diag,
    offset,
    bias,
    chunk_size,
    log_prob_norm,
    labels,
    log_resp,
):
    """Per-row output pass: log p(x), the most probable component, log-responsibilities.

    Parameters
    ----------
    X, code, shift, prec_mat, prec_diag, offset, bias, chunk_size
        As for :func:`estep_stats`.
    log_prob_norm : ndarray of shape (n,), float64
        Written: the log-sum-exp of each row's weighted log-densities.
    labels : ndarray of shape (n,), int64
        Written: the argmax of each row's weighted log-densities.
    log_resp : ndarray of shape (n, K) or (0, K), float64
        Written only when it has n rows: the log-responsibilities. This pass is
        the only place an (n, K) array exists, and only when the caller asks.
    """
    n_samples = X.shape[0]
    n_components = bias.shape[0]
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    want_resp = log_resp.shape[0] == n_samples and n_samples > 0
    for c in prange(n_chunks):
        lo = c * chunk_size
        hi = min(lo + chunk_size, n_samples)
        logp = np.empty((hi - lo, n_components))
        _logdens_chunk(X, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, logp)
        for i in range(lo, hi):
            ii = i - lo
            best = 0
            for k in range(1, n_components):
                if logp[ii, k] > logp[ii, best]:
                    best = k
            labels[i] = best
            log_prob_norm[i] = _normalise_row(logp, ii)
            if want_resp:
                for k in range(n_components):
                    log_resp[i, k] = logp[ii, k]
