"""Initial statistics for one-hot responsibilities (k-means labels), in parallel.

An initialisation that assigns every row to at most one component needs, per
component, the sums over its own rows only. :func:`stats_from_labels` groups
the rows by label with a counting sort (row order kept within a component)
and runs one task per component, each writing only its own outputs, so the
result is bitwise independent of the number of threads.
"""

import numpy as np

from .._numba import jit, prange, prefer_wide_vectors
from .estep import _STATS_TILE, DIAG, FULL, _features4, _scratch, _symmetric_gram


@jit
def _rows_by_label(labels, n_components):
    """Rows of each component, in row order: ``order[start[k]:start[k + 1]]``.

    Labels below 0 (rows left unassigned) are left out.
    """
    start = np.zeros(n_components + 1, dtype=np.int64)
    for i in range(labels.shape[0]):
        if labels[i] >= 0:
            start[labels[i] + 1] += 1
    for k in range(n_components):
        start[k + 1] += start[k]
    order = np.empty(start[n_components], dtype=np.int64)
    pos = start[:n_components].copy()
    for i in range(labels.shape[0]):
        k = labels[i]
        if k >= 0:
            order[pos[k]] = i
            pos[k] += 1
    return start, order


@jit
def _label_stats(X, sample_weight, rows, k, code, shift, nk, s1, s2_mat, s2_diag):
    """Add component ``k``'s sums over ``rows`` (its rows, in order) to the outputs."""
    prefer_wide_vectors()
    if code == FULL:
        _label_stats_full(X, sample_weight, rows, k, shift, nk, s1, s2_mat)
        return
    n_features = X.shape[1]
    has_weight = sample_weight.shape[0] > 0
    total = 0.0
    for t in range(rows.shape[0]):
        i = rows[t]
        wi = sample_weight[i] if has_weight else 1.0
        total += wi
        for j in range(n_features):
            d = np.float64(X[i, j]) - np.float64(shift[k, j])
            s1[k, j] += wi * d
            if code == DIAG:
                s2_diag[k, j] += wi * (d * d)
    nk[k] += total


@jit
def _label_stats_full(X, sample_weight, rows, k, shift, nk, s1, s2_mat):
    """FULL's :func:`_label_stats`: the Gram matrix of ``sqrt(w) (x - shift_k)``
    in tiles of ``_STATS_TILE`` rows, mirrored into both triangles at the end."""
    prefer_wide_vectors()
    n_features = X.shape[1]
    has_weight = sample_weight.shape[0] > 0
    n = rows.shape[0]
    sd = _scratch(_features4(n_features), min(n, _STATS_TILE), np.empty(0), True)
    gram = np.zeros((n_features, n_features))
    total = 0.0
    for t0 in range(0, n, _STATS_TILE):
        tile = min(_STATS_TILE, n - t0)
        for t in range(tile):
            i = rows[t0 + t]
            wi = sample_weight[i] if has_weight else 1.0
            total += wi
            sw = np.sqrt(wi)
            for j in range(n_features):
                d = np.float64(X[i, j]) - np.float64(shift[k, j])
                s1[k, j] += wi * d
                sd[j, t] = sw * d
        _symmetric_gram(sd, tile, gram)
    nk[k] += total
    for a in range(n_features):
        s2_mat[k, a, a] += gram[a, a]
        for b in range(a + 1, n_features):
            s2_mat[k, a, b] += gram[a, b]
            s2_mat[k, b, a] += gram[a, b]


@jit(parallel=True)
def stats_from_labels(X, sample_weight, labels, code, shift, nk, s1, s2_mat, s2_diag):
    """Add the statistics of one-hot responsibilities given as labels.

    For every row ``i`` with ``labels[i] = k >= 0`` and ``d = x_i - shift_k``:
    ``nk[k] += w_i``, ``s1[k] += w_i d``, and, by covariance type, FULL
    ``s2_mat[k] += w_i d d^T`` (both triangles), DIAG ``s2_diag[k] += w_i d**2``;
    TIED adds ``nk`` and ``s1`` only (its second moment does not depend on the
    labels). Rows labelled below 0 add nothing.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64, C-contiguous
        Read only; differences and sums are taken in float64.
    sample_weight : ndarray of shape (n,) or (0,), float64
        Per-row weights; an empty array means every weight is 1.
    labels : ndarray of shape (n,), int64
        Each row's component, or -1 for a row left unassigned.
    code : int
        ``FULL``, ``TIED`` or ``DIAG`` (spherical is DIAG).
    shift : ndarray of shape (K, D), float64
        Centres the sums are accumulated around.
    nk : ndarray of shape (K,), float64
        Written in place: ``+= sum w``.
    s1 : ndarray of shape (K, D), float64
        Written in place: ``+= sum w (x - shift_k)``.
    s2_mat : ndarray of shape (K, D, D) for FULL, (1, D, D) for TIED,
        (0, D, D) for DIAG; float64
        Written in place for FULL only (whole matrices).
    s2_diag : ndarray of shape (K, D) for DIAG, (0, D) otherwise; float64
        Written in place for DIAG: ``+= sum w (x - shift_k)**2``.

    Notes
    -----
    One task per component over its own rows, in row order: no partials and
    no shared writes, so the sums do not depend on the thread count. A full
    component's second moment is the Gram matrix of its rows scaled by
    ``sqrt(w)``, in tiles of ``_STATS_TILE`` rows (as the E-step's). Extra
    memory: O(n) for the row order, O(D * _STATS_TILE + D^2) per task.
    """
    prefer_wide_vectors()
    n_components = shift.shape[0]
    start, order = _rows_by_label(labels, n_components)
    for i in prange(n_components):
        k = np.int64(i)  # one index type for _label_stats (see estep.estep_stats)
        if start[k + 1] > start[k]:
            _label_stats(
                X, sample_weight, order[start[k] : start[k + 1]], k, code, shift,
                nk, s1, s2_mat, s2_diag,
            )  # fmt: skip


# Deliberate twin of stats_from_labels: prange needs a parallel=True dispatcher,
# and Dask workers and small blocks need a serial one.
@jit
def stats_from_labels_serial(X, sample_weight, labels, code, shift, nk, s1, s2_mat, s2_diag):
    """:func:`stats_from_labels` on the calling thread (same sums, same bits).

    For blocks too small to repay waking the thread pool (a whole scheduler
    time slice when another process holds a core). Arguments and outputs as
    for :func:`stats_from_labels`.
    """
    prefer_wide_vectors()
    n_components = shift.shape[0]
    start, order = _rows_by_label(labels, n_components)
    for k in range(n_components):
        if start[k + 1] > start[k]:
            _label_stats(
                X, sample_weight, order[start[k] : start[k + 1]], k, code, shift,
                nk, s1, s2_mat, s2_diag,
            )  # fmt: skip
