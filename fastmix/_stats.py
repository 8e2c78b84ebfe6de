"""Additive sufficient statistics and the streaming pass that produces them.

A fit is a loop of one pass over the data (:func:`estep_pass`) followed by a
tiny closed-form update on the returned :class:`Stats`. Adding two ``Stats``
is how chunks, blocks of a memmap and Dask partitions combine.
"""

from dataclasses import dataclass

import numpy as np

from ._kernels import (
    DIAG,
    FULL,
    TIED,
    estep_rows,
    estep_rows_serial,
    estep_stats,
    estep_stats_serial,
)
from ._kernels.labels import stats_from_labels, stats_from_labels_serial

# Rows per chunk: the unit of parallel work and of the fixed-order reduction.
# 512 rows keep a chunk's log-densities (512 x K float64) and its rows in L2.
CHUNK_ROWS = 512
# Cap on the float64 partials held per kernel call (chunks x K x D x D): keeps
# extra memory independent of n_samples while giving every thread work.
_PARTIAL_BYTES = 32 * 2**20
_MAX_CHUNKS_PER_BLOCK = 128

COV_CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": DIAG}

# Below about this many multiply-adds a call runs on the calling thread: waking
# numba's OpenMP pool costs tens of microseconds on an idle machine and a whole
# scheduler time slice when another process holds a core (measured: 5,000 x 3
# rows took 0.32 s per pass on 2 threads against 0.004 s on 1 under load).
# Both kernels give bitwise the same result, so this only moves time.
_SERIAL_WORK = 4_000_000


def _use_parallel(n_rows, chunk_rows, params):
    """Whether a kernel call over ``n_rows`` rows is worth the thread pool."""
    n_components, n_features = params.shift.shape
    per_row = n_components * n_features * (n_features if params.code != DIAG else 1)
    return n_rows > chunk_rows and n_rows * per_row > _SERIAL_WORK


@dataclass
class KernelParams:
    """What the E-step kernel needs, in the data's dtype (``bias`` in float64)."""

    code: int
    shift: np.ndarray
    prec_mat: np.ndarray
    prec_diag: np.ndarray
    offset: np.ndarray
    bias: np.ndarray

    def args(self):
        return (self.code, self.shift, self.prec_mat, self.prec_diag, self.offset, self.bias)


@dataclass
class Stats:
    """Sufficient statistics of one E-step, accumulated around ``shift``.

    Attributes
    ----------
    nk : ndarray of shape (K,)
        ``sum_i w_i r_ik``.
    s1 : ndarray of shape (K, D)
        ``sum_i w_i r_ik (x_i - shift_k)``.
    s2_mat : ndarray of shape (K, D, D), (1, D, D) or (0, D, D)
        Symmetric second moments (full: per component around ``shift_k``;
        tied: ``sum_i w_i (x_i - c)(x_i - c)^T``).
    s2_diag : ndarray of shape (K, D) or (0, D)
        ``sum_i w_i r_ik (x_i - shift_k)**2`` (diag and spherical).
    sum_w, sum_wlogp, sum_wrlogr : float
        ``sum w``, ``sum w log p(x)``, ``sum w sum_k r log r``.
    shift : ndarray of shape (K, D), float64
        The centres the statistics were accumulated around.
    n_rows : float
        Number of rows with a positive weight; ``sum_w / n_rows`` is the unit
        of weight that scikit-learn's ``10 * eps`` count offset is scaled by.
    row_sum : ndarray of shape (D,) or None
        ``sum_i w_i (x_i - shift_0)`` over every row (tied only). None when each
        row's responsibilities sum to one, where it equals ``s1.sum(0)``.
    """

    nk: np.ndarray
    s1: np.ndarray
    s2_mat: np.ndarray
    s2_diag: np.ndarray
    sum_w: float
    sum_wlogp: float
    sum_wrlogr: float
    shift: np.ndarray
    n_rows: float = 0.0
    row_sum: np.ndarray = None

    @classmethod
    def zeros(cls, code, shift):
        n_components, n_features = shift.shape
        n_mat = {FULL: n_components, TIED: 1}.get(code, 0)
        n_diag = n_components if code == DIAG else 0
        return cls(
            nk=np.zeros(n_components),
            s1=np.zeros((n_components, n_features)),
            s2_mat=np.zeros((n_mat, n_features, n_features)),
            s2_diag=np.zeros((n_diag, n_features)),
            sum_w=0.0,
            sum_wlogp=0.0,
            sum_wrlogr=0.0,
            shift=np.asarray(shift, dtype=np.float64),
        )

    def __add__(self, other):
        if not np.array_equal(self.shift, other.shift):
            raise ValueError("Stats accumulated around different shifts cannot be added.")
        return Stats(
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2_mat=self.s2_mat + other.s2_mat,
            s2_diag=self.s2_diag + other.s2_diag,
            sum_w=self.sum_w + other.sum_w,
            sum_wlogp=self.sum_wlogp + other.sum_wlogp,
            sum_wrlogr=self.sum_wrlogr + other.sum_wrlogr,
            shift=self.shift,
            n_rows=self.n_rows + other.n_rows,
            row_sum=None if self.row_sum is None else self.row_sum + other.row_sum,
        )


def _symmetrise_upper(a):
    """Mirror the upper triangles of a stack of matrices (the kernel fills only those)."""
    upper = np.triu(a)
    return upper + np.swapaxes(np.triu(a, 1), -1, -2)


def block_rows(n_components, n_features, code=FULL):
    """Rows handed to one kernel call; depends on the problem's shape only."""
    # Partials per chunk: K (D x D) matrices for full, one for tied, K diagonals
    # for diag (counting K D^2 for every type gave diag at K = 256, D = 64 one
    # 8-chunk group per call: one thread). Whole pairs of 8-chunk groups.
    mat = {FULL: n_components, TIED: 1}.get(code, 0) * n_features * n_features
    diag = n_components * n_features if code == DIAG else 0
    per_chunk = 8 * (mat + diag + n_components * (n_features + 1) + 3)
    chunks = int(np.clip(_PARTIAL_BYTES // per_chunk, 1, _MAX_CHUNKS_PER_BLOCK))
    return (chunks // 16 * 16 if chunks >= 16 else chunks) * CHUNK_ROWS


def estep_pass(X, sample_weight, params, chunk_rows=CHUNK_ROWS, rows_per_block=None):
    """One E-step over ``X`` in blocks of rows; returns the summed :class:`Stats`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        float32 or float64; any array supporting row slicing is read block by block
        (a memmap's ``BlockSource`` from :mod:`fastmix._sources` reads each slice
        from the file). A source with its own ``estep_pass`` (a Dask array's) runs
        the pass itself.
    sample_weight : ndarray of shape (n_samples,) or None
    params : KernelParams
    chunk_rows : int
        Rows per chunk (the reduction unit).
    rows_per_block : int, optional
        Rows per kernel call; rounded to a multiple of ``chunk_rows``.
    """
    if hasattr(X, "estep_pass"):
        return X.estep_pass(sample_weight, params, chunk_rows)
    n_samples, n_features = X.shape
    n_components = params.bias.shape[0]
    if rows_per_block is None:
        rows_per_block = block_rows(n_components, n_features, params.code)
    rows_per_block = max(chunk_rows, rows_per_block // chunk_rows * chunk_rows)
    stats = Stats.zeros(params.code, params.shift)
    scal = np.zeros(3)
    no_weight = np.empty(0)
    for start in range(0, n_samples, rows_per_block):
        stop = min(start + rows_per_block, n_samples)
        block = np.ascontiguousarray(X[start:stop])
        w = no_weight if sample_weight is None else sample_weight[start:stop]
        stats.n_rows += stop - start if sample_weight is None else np.count_nonzero(w)
        parallel = _use_parallel(stop - start, chunk_rows, params)
        kernel = estep_stats if parallel else estep_stats_serial
        kernel(
            block, w, *params.args(), chunk_rows,
            stats.nk, stats.s1, stats.s2_mat, stats.s2_diag, scal,
        )  # fmt: skip
    stats.s2_mat = _symmetrise_upper(stats.s2_mat)
    stats.sum_w, stats.sum_wlogp, stats.sum_wrlogr = (float(v) for v in scal)
    return stats


def estep_outputs(X, params, want_resp, chunk_rows=CHUNK_ROWS):
    """Per-row log p(x), labels and (only when asked) log-responsibilities.

    A data source from :mod:`fastmix._sources` (memmap, Dask array) produces
    them itself, block by block.
    """
    if hasattr(X, "estep_outputs"):
        return X.estep_outputs(params, want_resp, chunk_rows)
    n_samples = X.shape[0]
    n_components = params.bias.shape[0]
    log_prob_norm = np.empty(n_samples)
    labels = np.empty(n_samples, dtype=np.int64)
    log_resp = np.empty((n_samples if want_resp else 0, n_components))
    X = np.ascontiguousarray(X)
    kernel = estep_rows if _use_parallel(n_samples, chunk_rows, params) else estep_rows_serial
    kernel(X, *params.args(), chunk_rows, log_prob_norm, labels, log_resp)
    return log_prob_norm, labels, (log_resp if want_resp else None)


def _one_hot_labels(r, row_sums):
    """Each row's component where ``r`` is one-hot, else None.

    One-hot: every entry exactly 0.0 or 1.0, at most one 1.0 per row. A row of
    zeros (a row an initialisation leaves unassigned) gets the label -1.
    ``row_sums`` is ``r @ 1``, exact counts once the entries are 0 or 1.
    """
    # Counting both values rejects NaN, negatives and anything fractional;
    # counts of boolean arrays are several times cheaper than of floats.
    if np.count_nonzero(r == 0.0) + np.count_nonzero(r == 1.0) != r.size:
        return None
    if row_sums.size and row_sums.max() > 1.0:
        return None
    # Exact small integers: a product instead of argmax (8x cheaper at K=16).
    labels = (r @ np.arange(r.shape[1], dtype=np.float64)).astype(np.intp)
    labels[row_sums == 0.0] = -1
    return labels


def _add_one_hot(stats, xb, wb, labels, code):
    """Add one block's ``nk``, ``s1`` and per-component ``s2`` for one-hot labels.

    Each component's sums run over its own rows only: the block is read once in
    all, where the general path reads it once per component.
    """
    # One task per component over its own rows, in row order (same bits either way).
    work = xb.size * (xb.shape[1] if code == FULL else 1)
    kernel = stats_from_labels if work > _SERIAL_WORK else stats_from_labels_serial
    c = np.ascontiguousarray
    kernel(c(xb), c(wb, dtype=np.float64), c(labels, dtype=np.int64), code, c(stats.shift),
           stats.nk, stats.s1, stats.s2_mat, stats.s2_diag)  # fmt: skip


def stats_from_resp(X, sample_weight, resp_blocks, code, shift, rows_per_block=65536):
    """Statistics for given responsibilities, produced block by block.

    Used once per initialisation (k-means labels, random responsibilities): it
    never holds more than one block of responsibilities.

    A block whose responsibilities are one-hot (every entry exactly 0.0 or 1.0,
    at most one 1.0 per row: k-means, k-means++ and 'random_from_data') takes a
    fast path that groups its rows by component and sums each component over its
    own rows only, a K-fold saving. It agrees with the general path to rounding
    (the order of summation differs).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        float32 or float64; anything supporting row slicing.
    sample_weight : ndarray of shape (n_samples,) or None
    resp_blocks : callable (start, stop) -> ndarray of shape (stop - start, K)
        Returns the responsibilities of rows ``start:stop``, in row order.
    code : int
        Covariance code, a value of :data:`COV_CODES`.
    shift : ndarray of shape (K, D)
        Centres the statistics are accumulated around.
    rows_per_block : int, default=65536
        Rows read (and responsibilities requested) at a time.

    Returns
    -------
    stats : Stats
        ``s2_mat`` holds whole matrices (symmetric to rounding), not upper
        triangles; ``sum_wlogp`` and ``sum_wrlogr`` are zero.
    """
    n_samples, _ = X.shape
    stats = Stats.zeros(code, shift)
    row_sum = np.zeros(shift.shape[1])
    # Whether some row's responsibilities do not sum to one (rows an
    # initialisation leaves unassigned sum to 0; rounding stays far below 1e-3).
    partial = False
    for start in range(0, n_samples, rows_per_block):
        stop = min(start + rows_per_block, n_samples)
        xb = np.asarray(X[start:stop], dtype=np.float64)
        r = np.asarray(resp_blocks(start, stop), dtype=np.float64)
        if sample_weight is not None:
            wb = np.asarray(sample_weight[start:stop], dtype=np.float64)
        else:
            wb = np.ones(stop - start)
        # A matrix-vector product: several times cheaper than r.sum(axis=1).
        r_sums = r @ np.ones(r.shape[1])
        partial = partial or bool(np.any(np.abs(r_sums - 1.0) > 1e-3))
        stats.sum_w += float(wb.sum())
        stats.n_rows += np.count_nonzero(wb)
        labels = _one_hot_labels(r, r_sums)
        if labels is not None:
            _add_one_hot(stats, xb, wb, labels, code)
        else:
            wr = r * wb[:, None]
            stats.nk += wr.sum(axis=0)
            for k in range(shift.shape[0]):
                d = xb - stats.shift[k]
                stats.s1[k] += wr[:, k] @ d
                if code == FULL:
                    stats.s2_mat[k] += (d * wr[:, k, None]).T @ d
                elif code == DIAG:
                    stats.s2_diag[k] += wr[:, k] @ (d * d)
        if code == TIED:
            d = xb - stats.shift[0]
            stats.s2_mat[0] += (d * wb[:, None]).T @ d
            row_sum += wb @ d
    if code == TIED and partial:
        # Only then is the general (cancellation-prone) tied update needed.
        stats.row_sum = row_sum
    return stats
