"""The diagonal covariance types' updates from statistics, as small serial kernels.

An online step on a 1e4-row batch at K = D = 16 runs a 0.4-0.7 ms E-step; the
update that follows was about 80 NumPy calls on (K, D) arrays, each a
microsecond or more of dispatch for a few hundred flops: 20-30% of the step.
These kernels do each stage's elementwise work in one call. They are the only
implementation of these stages (``fit`` runs them too). Each evaluates the
formulas of the NumPy code it replaced, in the same order; fastmath's
contraction and reciprocals may change the last bits, within what
``tests/reference.py`` allows. The precision Cholesky factors are compiled
without fastmath: they equal scikit-learn's ``1 / sqrt(cov)`` bit for bit.
``log|U|`` (:func:`log_det_rows`) serves every covariance type, from the
factors' diagonals (:func:`fastmix._update.factor_diagonals`).

Everything here is O(K D): no parallelism, no vector-width hint.
"""

import math

import numpy as np

from .._numba import jit

_LOG_2PI = math.log(2.0 * math.pi)

# diag_precision_cholesky's status codes.
OK = 0
NOT_FINITE = 1
NOT_POSITIVE = 2


@jit
def blend_diag(nk0, s1_0, s2_0, shift0, nk1, s1_1, s2_1, shift1, keep, factor):
    """``keep`` times the first sums recentred onto ``shift1``, plus ``factor`` times the second.

    The DIAG statistics of :meth:`fastmix._stats.Stats.blended`: with
    ``d = shift0 - shift1``, the first sums around ``shift1`` are
    ``n``, ``s1 + n d`` and ``s2 + d (s1 + s1_new)`` (exact algebra).

    Returns
    -------
    nk, s1, s2 : float64 arrays of shapes (K,), (K, D), (K, D)
    """
    n_components, n_features = s1_0.shape
    nk = np.empty(n_components)
    s1 = np.empty((n_components, n_features))
    s2 = np.empty((n_components, n_features))
    for k in range(n_components):
        nk[k] = nk0[k] * keep + nk1[k] * factor
        for j in range(n_features):
            d = shift0[k, j] - shift1[k, j]
            moved = s1_0[k, j] + nk0[k] * d
            s1[k, j] = moved * keep + s1_1[k, j] * factor
            s2[k, j] = (s2_0[k, j] + d * (s1_0[k, j] + moved)) * keep + s2_1[k, j] * factor
    return nk, s1, s2


@jit
def unresolved(s2, nk, s1, shift, eps, pooled):
    """Where the spread about a component's mean is below the mean's rounding.

    ``s2`` holds ``sum w r (x - shift)^2`` per component and feature (K, D),
    or pooled over the components (1, D). True where
    ``sum w r (x - m)^2 <= nk (eps m)^2``, ``eps`` the data dtype's: the data
    cannot resolve a smaller spread (a float32 column that is constant rounds
    to 1e-13 of its square, not to zero). Pooled: the sums over the
    components of both sides, one flag per feature (shape (1, D)).
    """
    n_components, n_features = s1.shape
    rows = 1 if pooled else n_components
    centred = np.zeros((rows, n_features))
    floor = np.zeros((rows, n_features))
    for k in range(n_components):
        r = 0 if pooled else k
        n = nk[k]
        if n <= 0.0:
            continue  # an empty component: (x - m)^2 and n (eps m)^2 are both 0
        for j in range(n_features):
            centred[r, j] += s1[k, j] * s1[k, j] / n
            floor[r, j] += n * (eps * (s1[k, j] / n + shift[k, j])) ** 2
    return s2 - centred <= floor


@jit
def diag_parameters(nk_true, s1, s2, shift, eps10, reg_covar, clamp, eps, pooled, spherical):
    """Counts, means and covariances of the diagonal types from their statistics.

    The diagonal branch of :func:`fastmix._update.gaussian_parameters` (its
    docstring has the formulas): ``nk + eps10``, the means, and the scatter
    ``s2 - 2 d s1 + n d^2`` around each mean (``d = m - shift``), clamped at
    zero where ``clamp`` (float32 data), plus ``eps10 m^2``; times 0 where
    :func:`unresolved` when ``eps > 0`` (``reg_covar = 0``: an overflowed
    scatter stays NaN); divided by the count (or pooled over the components)
    plus ``reg_covar``, and averaged over the features where ``spherical``.

    Returns
    -------
    nk : ndarray of shape (K,)
    means : ndarray of shape (K, D)
    cov : ndarray of shape (K or 1, D or 1)
        One row per component, or one pooled row; one column per feature, or
        one spherical column.
    """
    n_components, n_features = s1.shape
    nk = nk_true + eps10
    means = np.empty((n_components, n_features))
    scatter = np.empty((n_components, n_features))
    for k in range(n_components):
        for j in range(n_features):
            m = (s1[k, j] + nk_true[k] * shift[k, j]) / nk[k]
            d = m - shift[k, j]
            sc = s2[k, j] - 2.0 * d * s1[k, j] + nk_true[k] * d**2
            if clamp and sc < 0.0:  # NaN stays NaN, as np.maximum keeps it
                # The float32 moments' tile sums may leave a collapsing
                # component's scatter below zero by their rounding.
                sc = 0.0
            means[k, j] = m
            scatter[k, j] = sc + eps10 * m**2
    if pooled:
        scatter = scatter.sum(axis=0).reshape((1, n_features))
    if eps > 0.0:
        spread = s2.sum(axis=0).reshape((1, n_features)) if pooled else s2
        flat = unresolved(spread, nk_true, s1, shift, eps, pooled)
        for r in range(scatter.shape[0]):
            for j in range(n_features):
                if flat[r, j]:
                    scatter[r, j] *= 0.0  # inf * 0 is NaN: still an overflow
    rows = scatter.shape[0]
    cov = np.empty((rows, 1 if spherical else n_features))
    total = nk.sum()
    for r in range(rows):
        count = total if pooled else nk[r]
        acc = 0.0
        for j in range(n_features):
            c = scatter[r, j] / count + reg_covar
            if spherical:
                acc += c
            else:
                cov[r, j] = c
        if spherical:
            cov[r, 0] = acc / n_features
    return nk, means, cov


@jit(exact=True)
def diag_precision_cholesky(cov):
    """``1 / sqrt(cov)`` of a 1-D array and a status: OK, NOT_FINITE or NOT_POSITIVE.

    Every value is checked for finiteness before any for positivity, as
    :func:`fastmix._update.precision_cholesky` orders its two errors. No
    fastmath: the factors are scikit-learn's bit for bit on every target.
    """
    for v in cov:
        if not np.isfinite(v):
            return np.empty(0), NOT_FINITE  # a fresh array: never the (read-only) input
    for v in cov:
        if v <= 0.0:
            return np.empty(0), NOT_POSITIVE
    out = np.empty(cov.shape[0])
    for i in range(cov.shape[0]):
        out[i] = 1.0 / np.sqrt(cov[i])
    return out, OK


@jit
def diag_m_step(
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
    scale,
    prev_means,
    prev_cov,
    keep,
    single,
    out_shift,
    out_precision,
    out_bias,
):
    """GaussianMixture's M-step for the diagonal types, in one call.

    :func:`diag_parameters` (the first ten arguments are its own) of the
    statistics times ``scale`` (1 leaves them as they are; an online step's
    running statistics per row come in the batch's units); then,
    where ``prev_means`` has rows, each component flagged in ``keep`` (K
    bools) keeps its row of ``prev_means`` and, unless ``pooled``, of
    ``prev_cov`` (K, D or 1);
    then :func:`diag_precision_cholesky` of the covariances and the weights
    ``nk / sum(nk)``. Last, the next E-step's inputs (:func:`diag_kernel_inputs`
    into the three ``out_`` arrays) from the parameters as the model stores
    them, rounded to float32 where ``single``: the numbers
    :func:`fastmix._update.kernel_params` gives from the fitted attributes.

    Returns
    -------
    means, covariances, precisions_cholesky, weights, status
        float64; ``covariances`` in ``diag_parameters``' (K or 1, D or 1)
        layout, ``precisions_cholesky`` flattened. Unless ``status`` is OK,
        the factors and weights are empty and the ``out_`` arrays unset.
    """
    if scale != 1.0:
        nk_true, s1, s2 = nk_true * scale, s1 * scale, s2 * scale
    nk, means, cov = diag_parameters(
        nk_true, s1, s2, shift, eps10, reg_covar, clamp, eps, pooled, spherical
    )
    if prev_means.shape[0]:
        for k in range(nk_true.shape[0]):
            if keep[k]:
                means[k, :] = prev_means[k, :]
                if not pooled:
                    cov[k, :] = prev_cov[k, :]
    prec_chol, status = diag_precision_cholesky(cov.ravel())
    if status != OK:
        return means, cov, prec_chol, np.empty(0), status
    weights = nk / nk.sum()
    if single:
        stored_weights, stored_means, stored_factors = (
            stored_single(weights), stored_single(means), stored_single(prec_chol)
        )  # fmt: skip
    else:
        stored_weights, stored_means, stored_factors = weights, means, prec_chol
    diag_kernel_inputs(
        stored_means,
        stored_factors.reshape(cov.shape),
        log_weights(stored_weights),
        out_shift,
        out_precision,
        out_bias,
    )
    return means, cov, prec_chol, weights, status


@jit(inline=True)
def stored_single(values):
    """float64 values rounded to float32 and back: what a float32 model stores and reads."""
    return values.astype(np.float32).astype(np.float64)


@jit(inline=True)
def log_det_row(prec_chol, r, n_features):
    """``log|U|`` from row ``r`` of factors' diagonals: ``sum log U_jj``, or ``D log U``."""
    if prec_chol.shape[1] == 1:
        return n_features * np.log(prec_chol[r, 0])
    log_det = 0.0
    for j in range(n_features):
        log_det += np.log(prec_chol[r, j])
    return log_det


@jit
def log_det_rows(prec_chol, n_features):
    """``log|U|`` of every row of triangular factors' diagonals (rows, D or 1): (rows,).

    :func:`fastmix._update.factor_diagonals` gives the rows for every
    covariance type; the diagonal types' factors are their own diagonals.
    """
    out = np.empty(prec_chol.shape[0])
    for r in range(prec_chol.shape[0]):
        out[r] = log_det_row(prec_chol, r, n_features)
    return out


@jit(exact=True)
def log_weights(weights):
    """``log(weights)`` (``-inf`` where a weight is 0, with no warning).

    One compiled log for the E-step's log-weights wherever they are formed
    (from the fitted ``weights_``, or in :func:`diag_m_step`): NumPy's own
    SIMD log may round differently from libm's.
    """
    return np.log(weights)


@jit(exact=True)
def diag_kernel_inputs(means, prec_chol, extra_bias, shift, precision, bias):
    """The E-step kernel's DIAG inputs from means and precision Cholesky factors.

    ``prec_chol`` is (K, D) (diag), (K, 1) (spherical), (1, D)
    (tied-diagonal) or (1, 1) (tied-spherical): a row per component or one
    shared row, a column per feature or one for all. Writes ``shift``
    (the means) and ``precision`` (``prec_chol ** 2`` broadcast to (K, D)),
    both in the data's dtype, and ``bias`` (float64): ``extra_bias`` plus
    ``log |U_k|`` minus ``D log(2 pi) / 2``.
    """
    n_components, n_features = means.shape
    rows, cols = prec_chol.shape
    for k in range(n_components):
        r = k if rows > 1 else 0
        log_det = log_det_row(prec_chol, r, n_features)
        bias[k] = extra_bias[k] + log_det - 0.5 * n_features * _LOG_2PI
        for j in range(n_features):
            p = prec_chol[r, j if cols > 1 else 0]
            shift[k, j] = means[k, j]
            precision[k, j] = p * p
