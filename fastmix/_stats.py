"""The contract between the kernels, the data sources and the updates.

:class:`KernelParams` is what the E-step kernel reads (built by the updates,
passed through a data source's pass); :class:`Stats` is what a pass returns.
Adding two ``Stats`` is how chunks, blocks of a memmap and Dask partitions
combine. :func:`stats_from_resp` and :func:`stats_from_labels` form the
statistics of given responsibilities (initialisation) for blocks of rows.
"""

import functools
from dataclasses import dataclass

import numpy as np

from ._kernels import DIAG, FULL, TIED
from ._kernels.labels import stats_from_labels as _labels_kernel
from ._kernels.labels import stats_from_labels_serial as _labels_kernel_serial
from ._kernels.update import blend_diag as _blend_diag
from ._numba import launch

# tied-diagonal and tied-spherical are DIAG with every component's precision row
# the same (spherical: the same in every feature too).
COV_CODES = {
    "full": FULL,
    "tied": TIED,
    "diag": DIAG,
    "spherical": DIAG,
    "tied-diagonal": DIAG,
    "tied-spherical": DIAG,
}
# The covariance types whose one covariance is shared by every component.
TIED_TYPES = frozenset({"tied", "tied-diagonal", "tied-spherical"})


@dataclass
class KernelParams:
    """What the E-step kernel needs, in the data's dtype (``bias`` in float64)."""

    code: int
    shift: np.ndarray
    prec_mat: np.ndarray
    prec_diag: np.ndarray
    offset: np.ndarray
    bias: np.ndarray
    # Statistics passes only: responsibilities below it are left out of the
    # moments (the estimators' min_responsibility, set by _stats_params; 0
    # keeps every one). See fastmix._kernels.estep.estep_stats.
    min_resp: float = 0.0

    @classmethod
    def build(cls, code, shift, precision, bias, dtype, offset=None):
        """Kernel inputs from one covariance code's precision array.

        Parameters
        ----------
        code : int
            ``FULL``, ``TIED`` or ``DIAG``.
        shift : array-like of shape (K, D)
            Centres (means; for TIED every row the same centre).
        precision : array-like
            FULL: (K, D, D) and TIED: (1, D, D) upper-triangular precision
            Cholesky factors; DIAG: (K, D) diagonal precisions.
        bias : array-like of shape (K,)
            Per-component constant of the log-density, float64.
        dtype : numpy dtype
            The data's dtype: every array multiplied with X is cast to it.
        offset : array-like of shape (K, D), optional
            TIED only (see ``fastmix._kernels.estep``); zeros otherwise.
        """
        shift = np.ascontiguousarray(shift, dtype=dtype)
        n_components, n_features = shift.shape
        precision = np.ascontiguousarray(precision, dtype=dtype)
        empty_mat = np.empty((0, n_features, n_features), dtype=dtype)
        empty_diag = np.empty((0, n_features), dtype=dtype)
        if offset is None:
            offset = np.zeros((n_components, n_features), dtype=dtype)
        return cls(
            code,
            shift,
            precision if code != DIAG else empty_mat,
            precision if code == DIAG else empty_diag,
            np.ascontiguousarray(offset, dtype=dtype),
            np.ascontiguousarray(bias, dtype=np.float64),
        )

    def args(self):
        return (self.code, self.shift, self.prec_mat, self.prec_diag, self.offset, self.bias)

    def min_resp_arg(self):
        """``min_resp`` as the statistics kernels take it: None when 0 (exact).

        None and a float are two compiled specialisations; exact passes
        never compile the sparse path.
        """
        return self.min_resp if self.min_resp > 0.0 else None


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
    partial : bool
        Initial statistics only: whether some row's responsibilities do not
        sum to one. Each block of an initialisation carries ``row_sum`` (tied)
        whatever its rows; :meth:`settle` keeps the sum only when some block
        was partial.
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
    partial: bool = False

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
        # The identity test first: online blending adds statistics recentred
        # onto the very array of the batch's shift (array_equal costs 3 us).
        if self.shift is not other.shift and not np.array_equal(self.shift, other.shift):
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
            partial=self.partial or other.partial,
        )

    def blended(self, rho, batch, factor, code):
        """One online step: ``(1 - rho)`` times these statistics plus ``factor`` times ``batch``.

        These are first recentred onto ``batch.shift``. The same sums as
        ``self.recentred(batch.shift, code).scaled(1 - rho) +
        batch.scaled(factor)``, with one array per sum instead of three.
        """
        keep = 1.0 - rho

        def mix(a, b):
            if a is None or not a.size:  # no row sum; the empty stacks of other codes
                return a
            out = a * keep
            out += b * factor
            return out

        if code == DIAG:
            # One serial kernel recentres and mixes: the NumPy version's ten
            # calls were a sixth of a small batch's update. It indexes without
            # bounds checks, so the shapes are compared first.
            if (self.nk.shape, self.s1.shape, self.s2_diag.shape, self.shift.shape) != (
                batch.nk.shape, batch.s1.shape, batch.s2_diag.shape, batch.shift.shape,
            ):  # fmt: skip
                raise ValueError(
                    f"The running statistics (nk {self.nk.shape}, s1 {self.s1.shape}, "
                    f"s2 {self.s2_diag.shape}, shift {self.shift.shape}) do not match "
                    f"the batch's (s1 {batch.s1.shape}): the online state is damaged. "
                    "Start afresh with fit, or a new model's partial_fit."
                )
            prev = self
            nk, s1, s2_diag = _blend_diag(
                self.nk, self.s1, self.s2_diag, self.shift,
                batch.nk, batch.s1, batch.s2_diag, batch.shift, keep, factor,
            )  # fmt: skip
        else:
            prev = self.recentred(batch.shift, code)
            nk = mix(prev.nk, batch.nk)
            s1 = mix(prev.s1, batch.s1)
            s2_diag = mix(prev.s2_diag, batch.s2_diag)
        return Stats(
            nk=nk,
            s1=s1,
            s2_mat=mix(prev.s2_mat, batch.s2_mat),
            s2_diag=s2_diag,
            sum_w=keep * prev.sum_w + factor * batch.sum_w,
            sum_wlogp=keep * prev.sum_wlogp + factor * batch.sum_wlogp,
            sum_wrlogr=keep * prev.sum_wrlogr + factor * batch.sum_wrlogr,
            shift=batch.shift,
            n_rows=keep * prev.n_rows + factor * batch.n_rows,
            row_sum=mix(prev.row_sum, batch.row_sum),
            partial=prev.partial or batch.partial,
        )

    def scaled(self, factor):
        """Every sum times ``factor`` (``shift`` and ``partial`` kept)."""

        def times(a):  # the other code's empty stack is kept: each product costs 1 us
            return a * factor if a.size else a

        return Stats(
            nk=self.nk * factor,
            s1=self.s1 * factor,
            s2_mat=times(self.s2_mat),
            s2_diag=times(self.s2_diag),
            sum_w=self.sum_w * factor,
            sum_wlogp=self.sum_wlogp * factor,
            sum_wrlogr=self.sum_wrlogr * factor,
            shift=self.shift,
            n_rows=self.n_rows * factor,
            row_sum=None if self.row_sum is None else self.row_sum * factor,
            partial=self.partial,
        )

    def recentred(self, shift, code):
        """The same sums accumulated around ``shift`` instead (exact algebra).

        With ``d_k = old shift_k - new shift_k``: ``s1 + n d``, and for the
        second moments ``s2 + s1 d^T + d s1^T + n d d^T`` (full, per
        component), ``s2 + 2 d s1 + n d^2`` (diag) and, for tied statistics
        around one centre, the same with the row sum and the total weight.
        Used by online learning, whose running statistics were accumulated
        around an earlier batch's means.
        """
        shift = np.asarray(shift, dtype=np.float64)
        d = self.shift - shift
        s1 = self.s1 + self.nk[:, None] * d
        s2_mat, s2_diag, row_sum = self.s2_mat, self.s2_diag, self.row_sum
        # The second moments' terms grouped around the new s1 = s1 + n d
        # (s1 d^T + d s1^T + n d d^T = s1 d^T + d s1_new^T): half the NumPy
        # calls, which are most of an online step's cost at small K and D.
        if code == FULL:
            s2_mat = s2_mat + self.s1[:, :, None] * d[:, None, :] + d[:, :, None] * s1[:, None, :]
        elif code == TIED:  # one centre, sums over every row
            total = self.s1.sum(axis=0) if row_sum is None else row_sum
            dc = d[0]
            cross = np.outer(total, dc)
            s2_mat = (s2_mat[0] + cross + cross.T + self.sum_w * np.outer(dc, dc))[None]
            if row_sum is not None:
                row_sum = row_sum + self.sum_w * dc
        elif code == DIAG:
            s2_diag = s2_diag + d * (self.s1 + s1)
        return Stats(
            nk=self.nk,
            s1=s1,
            s2_mat=s2_mat,
            s2_diag=s2_diag,
            sum_w=self.sum_w,
            sum_wlogp=self.sum_wlogp,
            sum_wrlogr=self.sum_wrlogr,
            shift=shift,
            n_rows=self.n_rows,
            row_sum=row_sum,
            partial=self.partial,
        )

    def to_arrays(self):
        """The statistics as a tuple of float64 arrays (a fitted attribute's form)."""
        scalars = np.array([self.sum_w, self.sum_wlogp, self.sum_wrlogr, self.n_rows])
        return (self.nk, self.s1, self.s2_mat, self.s2_diag, self.shift, scalars)

    @classmethod
    def from_arrays(cls, arrays):
        """Inverse of :meth:`to_arrays`."""
        nk, s1, s2_mat, s2_diag, shift, scalars = arrays
        f64 = np.float64
        sum_w, sum_wlogp, sum_wrlogr, n_rows = np.asarray(scalars, f64).tolist()
        return cls(
            np.asarray(nk, f64),
            np.asarray(s1, f64),
            np.asarray(s2_mat, f64),
            np.asarray(s2_diag, f64),
            sum_w,
            sum_wlogp,
            sum_wrlogr,
            np.asarray(shift, f64),
            n_rows,
        )

    def settle(self):
        """Drop ``row_sum`` where every row's responsibilities summed to one."""
        if not self.partial:
            self.row_sum = None
        return self


def _symmetrise_upper(a):
    """Mirror the upper triangles of a stack of matrices, in place (the kernel fills only those).

    Index assignment, not ``triu(a) + triu(a, 1).T``: that costs 15 us even
    for the empty (0, D, D) stack of a diagonal model, at every pass.
    """
    if a.shape[0] and a.shape[-1] > 1:
        rows, cols = _strict_lower(a.shape[-1])
        a[..., rows, cols] = a[..., cols, rows]
    return a


@functools.cache
def _strict_lower(n):
    """``np.tril_indices(n, -1)``, built once per n (9 us at n = 16, at every pass)."""
    return np.tril_indices(n, -1)


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


def _add_one_hot(stats, xb, wb, labels, code, parallel=False):
    """Add one block's ``nk``, ``s1`` and per-component ``s2`` for one-hot labels.

    Each component's sums run over its own rows only, one task per component
    in row order (:mod:`fastmix._kernels.labels`): the block is read once in
    all. ``parallel`` asks for the parallel kernel (the data sources decide,
    as for the E-step; :func:`fastmix._numba.launch` may still run the serial
    twin); both give the same bits.
    """
    c = np.ascontiguousarray
    launch(
        _labels_kernel, _labels_kernel_serial,
        c(xb), c(wb, dtype=np.float64), c(labels, dtype=np.int64), code, c(stats.shift),
        stats.nk, stats.s1, stats.s2_mat, stats.s2_diag, wanted=parallel,
    )  # fmt: skip


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
    return _resp_stats(X, sample_weight, resp_blocks, code, shift, rows_per_block).settle()


def _block_weights(sample_weight, start, stop):
    if sample_weight is None:
        return np.ones(stop - start)
    return np.asarray(sample_weight[start:stop], dtype=np.float64)


def _add_tied(stats, xb, wb):
    """Tied scatter and row sum around the common centre (independent of the responsibilities)."""
    d = xb - stats.shift[0]
    stats.s2_mat[0] += (d * wb[:, None]).T @ d
    stats.row_sum += wb @ d


def _resp_stats(X, sample_weight, resp_blocks, code, shift, rows_per_block):
    """:func:`stats_from_resp` before :meth:`Stats.settle` (tied: ``row_sum`` always set)."""
    n_samples, n_features = X.shape
    stats = Stats.zeros(code, shift)
    if code == TIED:
        stats.row_sum = np.zeros(n_features)
    for start in range(0, n_samples, rows_per_block):
        stop = min(start + rows_per_block, n_samples)
        xb = np.asarray(X[start:stop], dtype=np.float64)
        r = np.asarray(resp_blocks(start, stop), dtype=np.float64)
        wb = _block_weights(sample_weight, start, stop)
        # A matrix-vector product: several times cheaper than r.sum(axis=1).
        r_sums = r @ np.ones(r.shape[1])
        # Rows an initialisation leaves unassigned sum to 0; rounding stays far below 1e-3.
        stats.partial = stats.partial or bool(np.any(np.abs(r_sums - 1.0) > 1e-3))
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
            _add_tied(stats, xb, wb)
    return stats


def stats_from_labels(X, sample_weight, labels, code, shift, parallel=False):
    """Statistics of one-hot responsibilities given as labels, for one block of rows.

    Row ``i`` belongs wholly to component ``labels[i]``; a label of -1 leaves
    the row unassigned (its responsibilities are all zero, as for the rows
    k-means++ and ``'random_from_data'`` do not choose). The same sums as
    :func:`stats_from_resp` on the one-hot matrix, without forming it.

    Parameters
    ----------
    X : ndarray of shape (n, D)
        float32 or float64.
    sample_weight : ndarray of shape (n,) or None
    labels : ndarray of shape (n,), int
        In ``[-1, K)``.
    code : int
        Covariance code, a value of :data:`COV_CODES`.
    shift : ndarray of shape (K, D)
        Centres the statistics are accumulated around.
    parallel : bool, default=False
        Run the parallel kernel (the caller decides whether the work is worth it).

    Returns
    -------
    stats : Stats
        Not settled (see :meth:`Stats.settle`): tied statistics carry
        ``row_sum`` and ``partial`` says whether some label is -1.
    """
    n_samples, n_features = X.shape
    stats = Stats.zeros(code, shift)
    xb = np.asarray(X, dtype=np.float64)
    wb = _block_weights(sample_weight, 0, n_samples)
    stats.partial = bool(np.any(labels < 0))
    stats.sum_w = float(wb.sum())
    stats.n_rows = np.count_nonzero(wb)
    _add_one_hot(stats, xb, wb, np.asarray(labels), code, parallel)
    if code == TIED:
        stats.row_sum = np.zeros(n_features)
        _add_tied(stats, xb, wb)
    return stats


def normalise_rows(r):
    """Each row of non-negative ``r`` divided by its sum (scikit-learn's random start)."""
    return r / r.sum(axis=1)[:, None]
