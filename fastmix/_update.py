"""Closed-form updates on :class:`~fastmix._stats.Stats` (NumPy, O(K·D³)).

These reproduce scikit-learn's ``_estimate_gaussian_parameters`` and
``_compute_precision_cholesky`` from streamed statistics instead of an
(n_samples, n_components) responsibility matrix.
"""

import math

import numpy as np
from scipy import linalg

from ._kernels import DIAG, FULL
from ._kernels import update as _kernels
from ._numba import kernel_view
from ._stats import COV_CODES, TIED_TYPES, KernelParams
from ._validation import covariance_shape

_LOG_2PI = math.log(2.0 * math.pi)


def precision_error_message(dtype):
    """scikit-learn's text for a covariance that lost positive-definiteness."""
    msg = (
        "Fitting the mixture model failed because some components have "
        "ill-defined empirical covariance (for instance caused by singleton "
        "or collapsed samples). Try to decrease the number of components, "
        "increase reg_covar, or scale the input data."
    )
    if np.dtype(dtype) == np.float32:
        msg += (
            " The numerical accuracy can also be improved by passing float64"
            " data instead of float32."
        )
    return msg


def overflow_error_message(dtype):
    """The text for covariances that overflowed: finite data whose squares do not fit."""
    return (
        "Fitting the mixture model failed because the covariances overflowed "
        f"{np.dtype(dtype).name} (they are infinite or NaN): the data's squared "
        "deviations exceed the largest representable number. Scale the input data "
        "(e.g. with sklearn.preprocessing.StandardScaler)."
    )


def far_rows_error_message(dtype):
    """The text for a later batch's non-finite log-likelihood (finite rows, a fitted model).

    The model's parameters passed the last update's checks, so the densities
    of finite rows are finite unless a squared distance overflows.
    """
    return (
        f"The batch's log-likelihood is not finite in {np.dtype(dtype).name}: some rows lie "
        "so far from every component that their squared distances overflow. Scale the "
        "input data (e.g. with sklearn.preprocessing.StandardScaler) as the data this "
        "model was fitted on were scaled, or start afresh with fit."
    )


def gaussian_parameters(stats, reg_covar, covariance_type, dtype=np.float64):
    """Weighted counts, means and covariances from streamed statistics.

    Matches scikit-learn's ``_estimate_gaussian_parameters``, including the
    ``10 * eps`` it adds to the counts, but evaluates every second moment
    around the accumulation shift, so nothing is lost to cancellation. Two
    deliberate differences, both invisible without weights in float64: the
    offset is float64's ``10 * eps`` for float32 data too (statistics are
    float64 here; float32's would bias covariances by ~1e-6 m^2 / n_k), and it
    is scaled by the unit of weight (``sum_w / n_rows``) where that is below 1.
    So multiplying every weight by a constant below 1 leaves the model
    unchanged, and an integer weight still counts as that many repeated rows
    (scikit-learn's offset on the repeated data). Those two cannot both hold
    for a factor above 1: it keeps the unscaled offset, which moves only a
    component of almost no weight (below ~1e-11 of the rows'), as it does in
    scikit-learn when rows are repeated.

    Parameters
    ----------
    stats : Stats
    reg_covar : float
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}
    dtype : numpy dtype, default=np.float64
        The data's dtype, whose precision decides which spreads are rounding
        (see Notes).

    Returns
    -------
    nk : ndarray of shape (K,), float64
    means : ndarray of shape (K, D), float64
    covariances : ndarray, float64
        (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical, (D,)
        tied-diagonal, () tied-spherical.

    Notes
    -----
    'tied-diagonal' pools the diagonal scatters of the components,
    ``(sum_k sum_i r (x - m_k)^2 + 10 eps sum_k m_k^2) / sum_k nk + reg_covar``:
    the diagonal of the 'tied' covariance, ``10 eps`` terms included, whenever
    every row's responsibilities sum to one (every E-step). Rows that an
    initialisation leaves unassigned (k-means++, 'random_from_data') add
    nothing, as for 'diag', where 'tied' follows scikit-learn's one-pass
    formula and adds their ``x x^T``. 'tied-spherical' is the mean over
    features of 'tied-diagonal'.

    With ``reg_covar=0``, a feature whose spread within a component is below
    the rounding of its mean in ``dtype`` (``sum r (x - m)^2 <= nk (eps m)^2``,
    a constant column, a singleton component) gets no covariance at all
    rather than the ``10 eps`` offset's ``1e-16 m^2``, and
    :func:`precision_cholesky` raises scikit-learn's ill-defined covariance
    error. scikit-learn's one-pass formula loses that offset to cancellation
    and raises for a constant column, but not always for a component of
    ``n`` identical rows at ``x``: its variance there is ``10 eps x^2 / n``
    before rounding, and where its rounding leaves that positive (seen for
    'diag' and 'spherical' with one to ten identical rows at 10 to 1e4)
    scikit-learn fits a variance of that size where fastmix raises. Which of
    the two scikit-learn does depends on its rounding; fastmix's rule does
    not. Every component of a 'k-means++' or 'random_from_data' start is one
    row, where scikit-learn's rounding keeps the offset: at ``reg_covar=0``
    those starts fit in scikit-learn and raise here for 'diag' and
    'spherical' (and 'full' on one feature).
    """
    if covariance_type not in ("full", "tied"):
        # scikit-learn: sum r x^2 / nk - m^2 = sum r (x - m)^2 / nk + eps10 m^2 / nk,
        # in one serial kernel (fastmix._kernels.update.diag_parameters).
        nk, means, cov = _kernels.diag_parameters(
            *diag_parameter_inputs(stats, reg_covar, covariance_type, dtype)
        )
        return nk, means, diag_layout(cov, covariance_type)
    eps10 = count_offset(stats)
    n_true = stats.nk
    c = stats.shift
    s1 = stats.s1
    nk = n_true + eps10
    # means = sum w r x / nk, written around the shift: sum w r x = s1 + n c.
    means = (s1 + n_true[:, None] * c) / nk[:, None]
    delta = means - c
    n_features = means.shape[1]
    if covariance_type == "full":
        # sum r (x - m)(x - m)^T = S2 - s1 d^T - d s1^T + n d d^T, with d = m - c.
        cross = s1[:, :, None] * delta[:, None, :]
        scatter = (
            stats.s2_mat
            - cross
            - np.swapaxes(cross, 1, 2)
            + n_true[:, None, None] * delta[:, :, None] * delta[:, None, :]
        )
        if reg_covar == 0:
            flat = _unresolved(np.diagonal(stats.s2_mat, axis1=1, axis2=2), stats, dtype, False)
            scatter = scatter * ~flat[:, :, None] * ~flat[:, None, :]
        cov = scatter / nk[:, None, None]
        cov[:, np.arange(n_features), np.arange(n_features)] += reg_covar
    elif covariance_type == "tied":
        # scikit-learn: (X^T X - sum_k nk m_k m_k^T) / sum(nk), X^T X over every row.
        if stats.row_sum is None:
            # Responsibilities sum to one per row: per component this is
            # sum r (x - m)(x - m)^T + eps10 m m^T, and the scatters add up to S2.
            cross = np.einsum("ki,kj->ij", s1, delta)
            scatter = (
                stats.s2_mat[0]
                - cross
                - cross.T
                + np.einsum("k,ki,kj->ij", n_true, delta, delta)
                + eps10 * means.T @ means
            )
            if reg_covar == 0:
                flat = _unresolved(np.diagonal(stats.s2_mat[0])[None], stats, dtype, True)[0]
                scatter = scatter * ~flat[:, None] * ~flat[None, :]
        else:
            # Initial responsibilities that leave rows unassigned (one-hot on K
            # rows): with u = sum_i w_i (x_i - c) - sum_k nk d_k, X^T X - sum nk m m^T
            # = S2 - sum nk d d^T + c u^T + u c^T + (W - sum nk) c c^T.
            centre = c[0]
            u = stats.row_sum - nk @ delta
            cu = np.outer(centre, u)
            scatter = (
                stats.s2_mat[0]
                - np.einsum("k,ki,kj->ij", nk, delta, delta)
                + cu
                + cu.T
                + (stats.sum_w - nk.sum()) * np.outer(centre, centre)
            )
        cov = scatter / nk.sum()
        cov[np.arange(n_features), np.arange(n_features)] += reg_covar
    return nk, means, cov


def diag_gaussian_update(
    stats, reg_covar, covariance_type, dtype, previous=None, scale=1.0, keep=None
):
    """:func:`gaussian_parameters` then :func:`precision_cholesky`, diagonal types, one kernel.

    Of ``stats.scaled(scale)``: the same numbers, without that copy of the
    statistics. ``previous`` is None, or the fitted ``(means_,
    covariances_)`` whose rows the components flagged in ``keep`` (K bools;
    by default those with no responsibility, ``stats.nk == 0``) keep; the
    covariance only where a component has its own ('diag' and
    'spherical'). See :func:`fastmix._kernels.update.diag_m_step`.

    Returns
    -------
    weights, means, covariances, precisions_cholesky
        float64 arrays; the last two in scikit-learn's layout for
        ``covariance_type`` (NumPy scalars for 'tied-spherical').
    params : KernelParams
        The next E-step's inputs in ``dtype``: :func:`kernel_params` of the
        log-weights, means and factors rounded to ``dtype``.

    Raises
    ------
    ValueError
        :func:`precision_cholesky`'s errors.
    """
    if previous is None:
        prev_means = prev_cov = _NO_ROWS
        keep = _NO_FLAGS
    else:
        keep = np.ascontiguousarray(stats.nk == 0 if keep is None else keep, dtype=np.bool_)
        prev_means = kernel_array(previous[0])
        own = covariance_type in ("diag", "spherical")
        prev_cov = kernel_array(previous[1]).reshape(prev_means.shape[0], -1) if own else _NO_ROWS
    outputs = diag_kernel_outputs(*stats.s1.shape, np.float64)
    means, cov, prec_chol, weights, status = _kernels.diag_m_step(
        *diag_parameter_inputs(stats, reg_covar, covariance_type, dtype, scale),
        float(scale),
        prev_means,
        prev_cov,
        keep,
        np.dtype(dtype) == np.float32,
        *outputs,
    )
    check_diag_status(status, dtype)
    return (
        weights,
        means,
        diag_layout(cov, covariance_type),
        diag_layout(prec_chol.reshape(cov.shape), covariance_type),
        diag_kernel_params(*outputs, dtype=dtype),
    )


def diag_kernel_outputs(n_components, n_features, dtype):
    """Empty ``(shift, precision, bias)`` for :func:`fastmix._kernels.update.diag_kernel_inputs`.

    ``shift`` and ``precision`` in ``dtype``: the data's, or float64 in
    the updates' kernels, which compile once for both (their float64
    values rounded to the data's dtype afterwards are the same numbers:
    the kernel rounds on the store).
    """
    return (
        np.empty((n_components, n_features), dtype=dtype),
        np.empty((n_components, n_features), dtype=dtype),
        np.empty(n_components),
    )


def diag_kernel_params(shift, precision, bias, dtype=None):
    """KernelParams of the DIAG code from :func:`diag_kernel_outputs` once filled.

    The kernel's own arrays, converted only to ``dtype`` where given.
    """
    if dtype is not None:
        shift = shift.astype(dtype, copy=False)
        precision = precision.astype(dtype, copy=False)
    n_components, n_features = shift.shape
    return KernelParams(
        DIAG,
        shift,
        np.empty((0, n_features, n_features), dtype=shift.dtype),
        precision,
        np.zeros((n_components, n_features), dtype=shift.dtype),
        bias,
    )


# No previous rows: diag_m_step's argument where none is kept (writeable,
# float64, C-contiguous: the one array type the kernel compiles for).
_NO_ROWS = np.empty((0, 0))
_NO_FLAGS = np.empty(0, dtype=np.bool_)


def kernel_array(values):
    """``values`` as a C-contiguous, writeable float64 array (copied only if needed).

    The one array type the serial kernels are compiled for: numba compiles a
    kernel once per argument type, and a read-only array (a memory-mapped
    model, a broadcast shift) or a strided one is another type, seconds of
    compilation at a first fit, for a copy of a few K x D values.
    """
    out = np.ascontiguousarray(values, dtype=np.float64)
    return out if out.flags.writeable else out.copy()


def count_offset(stats, scale=1.0):
    """scikit-learn's ``10 eps`` count offset in float64, times the unit of weight.

    Of ``stats.scaled(scale)``, bit for bit.
    """
    n_rows = stats.n_rows * scale
    weight_unit = min(1.0, (stats.sum_w * scale) / n_rows) if n_rows > 0 else 1.0
    return _EPS10 * weight_unit


_EPS10 = 10 * float(np.finfo(np.float64).eps)


def diag_parameter_inputs(stats, reg_covar, covariance_type, dtype, scale=1.0):
    """The arguments of :func:`fastmix._kernels.update.diag_parameters` for ``stats``.

    For the diagonal covariance types; :func:`gaussian_parameters` has the
    formulas. The sums are ``stats``' own; the count offset is that of
    ``stats.scaled(scale)``, for a kernel that scales the sums itself.
    """
    return (
        kernel_array(stats.nk),
        kernel_array(stats.s1),
        kernel_array(stats.s2_diag),
        kernel_array(stats.shift),  # an initialisation's is a read-only broadcast
        count_offset(stats, scale),
        float(reg_covar),
        np.dtype(dtype) == np.float32,
        float(np.finfo(dtype).eps) if reg_covar == 0 else 0.0,
        covariance_type not in ("diag", "spherical"),  # pooled
        covariance_type in ("spherical", "tied-spherical"),  # spherical
    )


def diag_layout(values, covariance_type):
    """(K or 1, D or 1) values of a diagonal type in scikit-learn's layout for it.

    (K, D) diag, (K,) spherical, (D,) tied-diagonal, and for tied-spherical a
    NumPy scalar, as np.mean gave.
    """
    if covariance_type in ("tied-diagonal", "tied-spherical"):
        values = values[0]
    if covariance_type in ("spherical", "tied-spherical"):
        values = values[..., 0] if values.ndim > 1 else values[0]
    return values


def _unresolved(s2, stats, dtype, pooled):
    """:func:`fastmix._kernels.update.unresolved` for ``stats``, ``s2`` (K or 1, D)."""
    eps = float(np.finfo(dtype).eps)
    # An initialisation's shift is a read-only broadcast: kernel_array's copy
    # keeps to the one compiled signature.
    return _kernels.unresolved(
        kernel_array(s2), kernel_array(stats.nk), kernel_array(stats.s1),
        kernel_array(stats.shift), eps, pooled,
    )  # fmt: skip


def _check_lapack(routine, info):
    """An illegal argument to a LAPACK routine (``info < 0``) is a bug of ours, not the data's."""
    if info < 0:
        raise RuntimeError(f"LAPACK {routine}: illegal value in argument {-info}")


def precision_cholesky(covariances, covariance_type, dtype):
    """Upper-triangular Cholesky factors of the precisions (scikit-learn's convention).

    Raises
    ------
    ValueError
        scikit-learn's message, naming reg_covar, when a covariance is not
        positive-definite.
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        mats = covariances if covariance_type == "full" else covariances[None]
        if not np.all(np.isfinite(mats)):
            raise ValueError(overflow_error_message(dtype))
        n_features = mats.shape[-1]
        out = np.empty_like(mats)
        eye = np.eye(n_features)
        # LAPACK's potrf and trtrs, which scipy.linalg.cholesky and
        # solve_triangular call (bitwise their results), without their
        # argument checks: 15 us a component, most of a small batch's update.
        potrf, trtrs = linalg.get_lapack_funcs(("potrf", "trtrs"), (mats,))
        for k in range(mats.shape[0]):
            cov_chol, info = potrf(mats[k], lower=1, clean=1)
            if info > 0:  # a leading minor not positive: scipy's LinAlgError
                raise ValueError(precision_error_message(dtype))
            _check_lapack("potrf", info)
            # potrf checks each pivot for <= 0 only: a NaN pivot (inf - inf, in
            # a finite matrix with entries near 1e300) passes, and so would
            # trtrs. A factor with no NaN has a positive diagonal, so trtrs
            # cannot report a singular one (info > 0); the NaN is caught below.
            inv_chol, info = trtrs(cov_chol, eye, lower=1)
            _check_lapack("trtrs", info)
            out[k] = inv_chol.T
        if not np.isfinite(out).all():  # one check for every component
            raise ValueError(precision_error_message(dtype))
        return out if covariance_type == "full" else out[0]
    # A read-only input (a user's covariances) would compile a second kernel.
    prec_chol, status = _kernels.diag_precision_cholesky(kernel_view(np.ravel(covariances)))
    check_diag_status(status, dtype)
    prec_chol = prec_chol.reshape(covariances.shape)
    return prec_chol[()] if prec_chol.ndim == 0 else prec_chol  # a scalar in, a scalar out


def check_diag_status(status, dtype):
    """scikit-learn's error for a failed diagonal factorisation's status.

    ``status`` is :func:`fastmix._kernels.update.diag_precision_cholesky`'s.
    """
    if status == _kernels.NOT_FINITE:
        raise ValueError(overflow_error_message(dtype))
    if status == _kernels.NOT_POSITIVE:
        raise ValueError(precision_error_message(dtype))


def precision_cholesky_from_precisions(precisions, covariance_type):
    """Cholesky factors U with U U^T = precision, computed from the precisions."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        mats = precisions if covariance_type == "full" else precisions[None]
        flip = mats[:, ::-1, ::-1]
        out = np.stack([linalg.cholesky(m, lower=True)[::-1, ::-1] for m in flip])
        return out if covariance_type == "full" else out[0]
    return np.sqrt(precisions)


def precisions_from_cholesky(prec_chol, covariance_type):
    """precision = U U^T for each component."""
    if covariance_type == "full":
        # A stacked matmul (scikit-learn's np.dot per component): einsum's
        # loops take 4-6 times as long, 15 ms at K = 256, D = 64.
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def factor_diagonals(prec_chol, covariance_type, n_features, n_components=None):
    """The diagonal of each precision Cholesky factor, as (rows, D or 1) float64.

    A row per component, or one shared by every component (the tied types);
    a column per feature, or one for the spherical types. ``log|U_k|`` is the
    sum of the logs of row k (times D where one column stands for D); for the
    diagonal types these are the factors themselves.

    Raises
    ------
    ValueError
        When ``prec_chol`` is not shaped as ``covariance_type`` needs with
        ``n_features`` features (and ``n_components`` components, when
        given): the kernels index it without bounds checks.
    """
    prec_chol = np.asarray(prec_chol)
    per_component = covariance_type in ("full", "diag", "spherical")
    given = n_components is not None
    if not given:
        n_components = prec_chol.shape[0] if per_component and prec_chol.ndim else 1
    expected = covariance_shape(covariance_type, n_components, n_features)
    if prec_chol.shape != expected:
        components = f"{n_components} components and " if given else ""
        raise ValueError(
            f"precisions_cholesky_ has shape {prec_chol.shape}; covariance_type="
            f"{covariance_type!r} with {components}{n_features} features needs "
            f"{expected}. Refit the model, or set covariance_type to the one it was "
            "fitted with."
        )
    if covariance_type == "full":
        return kernel_array(np.diagonal(prec_chol, axis1=1, axis2=2))
    if covariance_type == "tied":
        return kernel_array(np.diagonal(prec_chol)[None])
    rows = n_components if per_component else 1
    cols = 1 if covariance_type in ("spherical", "tied-spherical") else n_features
    return kernel_array(prec_chol).reshape(rows, cols)


def log_det_cholesky(prec_chol, covariance_type, n_features):
    """log|U_k| per component (a scalar for the tied types, as scikit-learn's 'tied')."""
    diagonals = factor_diagonals(prec_chol, covariance_type, n_features)
    log_det = _kernels.log_det_rows(diagonals, n_features)
    return log_det[0] if covariance_type in TIED_TYPES else log_det


def kernel_params(means, prec_chol, covariance_type, extra_bias, dtype):
    """E-step kernel inputs for Gaussian components.

    Parameters
    ----------
    means : ndarray of shape (K, D)
    prec_chol : ndarray
        Precision Cholesky factors in scikit-learn's layout for ``covariance_type``;
        (D,) for 'tied-diagonal' and () for 'tied-spherical'.
    covariance_type : {'full', 'tied', 'diag', 'spherical', 'tied-diagonal', \
            'tied-spherical'}
    extra_bias : ndarray of shape (K,)
        Added to each component's log-density: log-weights for EM,
        E[log pi] plus the Wishart expectation terms for variational inference.
    dtype : numpy dtype
        The data's dtype; every array the kernel multiplies with X is cast to it.

    Returns
    -------
    KernelParams
    """
    code = COV_CODES[covariance_type]
    if code == DIAG:
        # One precision row per component, or one shared by every component
        # (the tied types); one column per feature, or one (spherical).
        means = kernel_array(means)
        n_components, n_features = means.shape
        factors = factor_diagonals(prec_chol, covariance_type, n_features, n_components)
        extra_bias = kernel_array(extra_bias)
        if extra_bias.shape != (n_components,):
            extra_bias = np.full(n_components, extra_bias)
        outputs = diag_kernel_outputs(n_components, n_features, dtype)
        _kernels.diag_kernel_inputs(means, factors, extra_bias, *outputs)
        return diag_kernel_params(*outputs)
    means = np.asarray(means, dtype=np.float64)
    prec_chol = np.asarray(prec_chol, dtype=np.float64)
    n_components, n_features = means.shape
    bias = (
        np.asarray(extra_bias, dtype=np.float64)
        + log_det_cholesky(prec_chol, covariance_type, n_features)
        - 0.5 * n_features * _LOG_2PI
    )
    if bias.shape != (n_components,):  # a scalar term only: one per component
        bias = np.full(n_components, bias)
    if code == FULL:
        return KernelParams.build(code, means, prec_chol, bias, dtype)
    # TIED: one centre for every component. The weighted data mean is the
    # natural choice, but the mean of the means is as good a shift and needs no pass.
    centre = means.mean(axis=0).astype(dtype).astype(np.float64)
    shift = np.broadcast_to(centre, means.shape)
    offset = (means - centre) @ prec_chol
    return KernelParams.build(code, shift, prec_chol[None], bias, dtype, offset=offset)


__all__ = [
    "gaussian_parameters",
    "precision_cholesky",
    "precision_cholesky_from_precisions",
    "precisions_from_cholesky",
    "log_det_cholesky",
    "factor_diagonals",
    "kernel_array",
    "kernel_params",
    "precision_error_message",
]
