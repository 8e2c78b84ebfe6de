"""Data sources: how blocks of rows reach the E-step kernel.

Three kinds of ``X`` reach the fit loop:

- an in-memory ndarray: :func:`fastmix._stats.estep_pass` slices it in blocks
  itself; no source object is involved and nothing here runs;
- a file-backed ``np.memmap`` or another row-sliceable array-like (an h5py
  dataset, a zarr array): a :class:`BlockSource`, read one block of rows at a
  time so that memory stays bounded by the block size, not by ``n_samples``;
- a ``dask.array.Array``: a :class:`DaskSource`, persisted on the cluster once
  per fit. Each pass maps the *serial* (nogil) kernel over its blocks on the
  workers, sums the per-block :class:`~fastmix._stats.Stats` in a fixed
  binary tree and computes once; the update runs on the client.

The update layer never sees the difference: every pass returns one ``Stats``.

Reading a memmap with bounded memory
------------------------------------
Pages of a ``np.memmap`` that were touched stay mapped into the process and
count toward its resident set until the map is dropped, so simply slicing the
memmap block by block grows RSS to the size of the file. A
:class:`BlockSource` therefore reads each block into a fresh buffer:

- C-contiguous, file-backed memmaps on Linux (whose page cache is coherent with
  the map): ``readinto`` at the block's byte offset in the file (the kernel's
  sequential read-ahead keeps the disk busy);
- other memmap views: the block is copied out of the map, then its pages are
  dropped from the map with ``madvise(MADV_DONTNEED)`` (the data stay in the
  page cache; dirty pages are written back);
- copy-on-write memmaps (``mode='c'``): copied out without ``madvise``, since
  dropping their pages would discard in-memory edits (their RSS is not bounded);
- other array-likes: ``X[start:stop]``, which reads from their storage.

Initialisation of out-of-core data
----------------------------------
``init_params`` keeps its meaning but never pulls the dataset to the client:

- ``'kmeans'``: k-means (scikit-learn's ``KMeans`` with ``n_init=1``, seeded
  from ``random_state``, as :func:`fastmix._kmeans.kmeans` runs it) on a
  uniform sample without replacement of at most :data:`INIT_SAMPLE_ROWS` rows
  (fewer for wide rows, see :func:`init_sample_rows`), then one streamed pass
  that assigns every row to its nearest centre (the E-step kernel with
  identity precisions) and accumulates the initial statistics of those hard
  assignments;
- ``'k-means++'``: k-means++ seeding on the same sample; the chosen rows get
  the one-hot responsibilities, as in scikit-learn;
- ``'random_from_data'``: ``n_components`` distinct rows drawn uniformly from
  all rows (no sample needed);
- ``'random'``: uniform responsibilities, streamed block by block: for a
  memmap from ``random_state`` in row order, as scikit-learn draws them; on a
  Dask cluster from per-block seeds drawn from ``random_state`` (so that draw
  depends on the chunking), except for data no larger than the sample size,
  whose responsibilities are drawn on the client as scikit-learn draws them.

When ``n_samples`` is at most the sample size the "sample" is every row, in
order, and no random number is consumed to draw it: the initialisation is then
scikit-learn's, as for an in-memory array. Explicit inits (``means_init`` ...)
work unchanged.
"""

import math
import mmap
import operator
import sys

import numpy as np
from sklearn.utils import assert_all_finite
from sklearn.utils.validation import validate_data

from ._kernels import DIAG, TIED, estep_rows_serial, estep_stats_serial
from ._kmeans import kmeans, kmeans_plusplus_indices
from ._stats import (
    CHUNK_ROWS,
    KernelParams,
    Stats,
    _symmetrise_upper,
    block_rows,
    estep_outputs,
    stats_from_resp,
)

__all__ = [
    "INIT_SAMPLE_ROWS",
    "BlockSource",
    "DaskSource",
    "DataSource",
    "fit_source",
    "init_sample_rows",
    "is_out_of_core",
    "predict_source",
]

# Rows of the uniform sample that k-means / k-means++ initialisation sees.
INIT_SAMPLE_ROWS = 100_000
# ... and at most this many bytes of it (wide rows get fewer).
_INIT_SAMPLE_BYTES = 64 * 2**20
# Bytes per read for validation and initialisation passes over a memmap.
_READ_BYTES = 4 * 2**20
# Up to this many scattered rows are read one by one; more take a block pass.
_FEW_ROWS = 1024
# Population up to which RandomState.choice (O(n) memory) is used as is.
_EXACT_CHOICE_MAX = 2**22

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


# ---------------------------------------------------------------------- routing
def _dask_array_type():
    """``dask.array.Array`` if dask.array was imported by someone, else None.

    fastmix never imports dask itself unless it is handed a dask array.
    """
    module = sys.modules.get("dask.array")
    return getattr(module, "Array", None)


def _is_dask(X):
    array_type = _dask_array_type()
    return array_type is not None and isinstance(X, array_type)


def is_out_of_core(X):
    """Whether ``X`` is streamed by a data source instead of validated in memory.

    True for a file-backed ``np.memmap``, a ``dask.array.Array``, and an
    array-like that is not an in-memory array but exposes a 2-D ``shape``, a
    numeric NumPy ``dtype`` and row slicing (h5py datasets, zarr arrays).
    """
    if isinstance(X, np.memmap):
        return getattr(X, "_mmap", None) is not None
    if isinstance(X, np.ndarray) or isinstance(X, DataSource):
        return False
    if _is_dask(X):
        return True
    if hasattr(X, "__array_namespace__") or hasattr(X, "iloc"):
        return False  # in-memory array libraries, pandas
    try:
        from scipy.sparse import issparse

        if issparse(X):
            return False
        shape = tuple(X.shape)
        dtype = np.dtype(X.dtype)
    except (AttributeError, TypeError, ImportError):
        return False
    return len(shape) == 2 and dtype.kind in "biuf" and hasattr(X, "__getitem__")


def _fit_dtype(dtype):
    """scikit-learn's dtype policy: float64 and float32 kept, other numbers to float64."""
    dtype = np.dtype(dtype)
    if dtype in _FLOAT_DTYPES:
        return dtype
    if dtype.kind in "biuf":
        return np.dtype(np.float64)
    raise ValueError(
        f"X has dtype {dtype}; fastmix fits numeric data (float64 or float32, other "
        "numeric types are converted to float64)."
    )


def _check_2d(X, name, min_samples):
    ndim = len(X.shape)
    if ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {ndim}D array instead; X must have shape "
            "(n_samples, n_features)."
        )
    n_samples, n_features = X.shape
    if not math.isnan(n_samples) and n_samples < min_samples:
        raise ValueError(
            "Found array with %d sample(s) (shape=%s) while a minimum of %d is required by %s."
            % (n_samples, tuple(X.shape), min_samples, name)
        )
    if n_features < 1:
        raise ValueError(
            "Found array with %d feature(s) (shape=%s) while a minimum of 1 is required by %s."
            % (n_features, tuple(X.shape), name)
        )


def _check_n_components(n_samples, n_components):
    if n_samples < n_components:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {n_components}, "
            f"n_samples = {n_samples}"
        )


def fit_source(estimator, X, sample_weight, check_sample_weight):
    """Validate an out-of-core ``X`` for ``fit`` without loading it whole.

    Sets ``n_features_in_`` as ``validate_data`` does, checks shape, dtype and
    finiteness block by block (on the workers for a dask array, which is
    persisted here, once per fit), and validates ``sample_weight``
    (``check_sample_weight`` validates an in-memory one).

    Returns
    -------
    source : BlockSource or DaskSource
    sample_weight : ndarray, dask array (aligned with the source's blocks) or None
    """
    name = type(estimator).__name__
    if estimator.warm_start and hasattr(estimator, "converged_"):
        validate_data(estimator, X, reset=False, skip_check_array=True)
    _check_2d(X, name, min_samples=2)
    dtype = _fit_dtype(X.dtype)
    validate_data(estimator, X, skip_check_array=True)
    if _is_dask(X):
        return DaskSource.for_fit(X, dtype, sample_weight, estimator.n_components, name)
    source = BlockSource(X, dtype)
    _check_n_components(source.n_samples, estimator.n_components)
    source.check_finite(name)
    sample_weight = check_sample_weight(sample_weight, source.n_samples, estimator.n_components)
    return source, sample_weight


def predict_source(estimator, X):
    """Validate an out-of-core ``X`` for prediction (finiteness is checked while reading)."""
    name = type(estimator).__name__
    validate_data(estimator, X, reset=False, skip_check_array=True)
    _check_2d(X, name, min_samples=1)
    dtype = _fit_dtype(X.dtype)
    if _is_dask(X):
        return DaskSource(_row_blocks(X, dtype), dtype, client=None, check_name=name)
    return BlockSource(X, dtype, check_name=name)


# ------------------------------------------------------------ shared by sources
def init_sample_rows(n_samples, n_features, itemsize, n_components):
    """Rows in the uniform sample seen by k-means / k-means++ initialisation.

    ``min(n_samples, INIT_SAMPLE_ROWS)``, lowered so the sample stays under
    64 MiB for wide rows, but never below ``20 * n_components``.
    """
    by_bytes = _INIT_SAMPLE_BYTES // max(1, n_features * itemsize)
    return int(min(n_samples, max(20 * n_components, min(INIT_SAMPLE_ROWS, by_bytes))))


def _choice(n_samples, size, random_state):
    """``size`` distinct row indices drawn uniformly, in draw order.

    ``random_state.choice`` as scikit-learn calls it for populations it can
    permute in memory; above that a generator seeded from ``random_state``
    (Floyd's algorithm, O(size) memory).
    """
    if n_samples <= _EXACT_CHOICE_MAX:
        return random_state.choice(n_samples, size=size, replace=False)
    seed = random_state.randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed).choice(n_samples, size=size, replace=False)


def _nearest_centre_params(centres, dtype):
    """E-step kernel inputs whose labels are each row's nearest centre.

    Identity precisions and equal biases: log p_k(x) = -||x - c_k||^2 / 2.
    """
    n_components, n_features = centres.shape
    return KernelParams(
        DIAG,
        np.ascontiguousarray(centres, dtype=dtype),
        np.zeros((0, n_features, n_features), dtype=dtype),
        np.ones((n_components, n_features), dtype=dtype),
        np.zeros((n_components, n_features), dtype=dtype),
        np.zeros(n_components),
    )


def _block_resp(X, spec, n_components, serial):
    """Initial responsibilities of one block of rows.

    ``spec`` is local to the block: ``("labels", labels)`` one-hot of labels;
    ``("rows", rows, comps)`` one-hot of component ``comps[j]`` at row
    ``rows[j]``, zero elsewhere; ``("centres", params)`` one-hot of the nearest
    centre; ``("resp", r)`` given; ``("seed", seed)`` uniform, normalised.
    """
    n_rows = X.shape[0]
    kind = spec[0]
    if kind == "resp":
        return spec[1]
    if kind == "seed":
        r = np.asarray(
            np.random.RandomState(spec[1]).uniform(size=(n_rows, n_components)), dtype=X.dtype
        )
        return r / r.sum(axis=1)[:, None]
    r = np.zeros((n_rows, n_components), dtype=X.dtype)
    if kind == "rows":
        r[spec[1], spec[2]] = 1
        return r
    if kind == "labels":
        labels = spec[1]
    else:  # centres
        labels = _block_labels(X, spec[1], serial)
    r[np.arange(n_rows), labels] = 1
    return r


def _block_labels(X, params, serial):
    n_rows = X.shape[0]
    if not serial:
        return estep_outputs(X, params, want_resp=False)[1]
    labels = np.empty(n_rows, dtype=np.int64)
    estep_rows_serial(
        np.ascontiguousarray(X), *params.args(), CHUNK_ROWS,
        np.empty(n_rows), labels, np.empty((0, params.bias.shape[0])),
    )  # fmt: skip
    return labels


def _local_spec(spec, start, stop, index):
    """The part of a whole-data responsibility ``spec`` for rows ``start:stop``."""
    kind = spec[0]
    if kind == "labels":
        return ("labels", spec[1][start:stop])
    if kind == "rows":
        rows, comps = spec[1], spec[2]
        inside = (rows >= start) & (rows < stop)
        return ("rows", rows[inside] - start, comps[inside])
    if kind == "seeds":
        return ("seed", int(spec[1][index]))
    if kind == "resp_all":
        return ("resp", spec[1][start:stop])
    return spec


def block_init_stats(X, sample_weight, spec, n_components, code, shift, serial=True):
    """Statistics of one block's initial responsibilities (see :func:`_block_resp`)."""
    X = np.ascontiguousarray(X)
    r = _block_resp(X, spec, n_components, serial)
    return stats_from_resp(
        X, sample_weight, lambda a, b: r[a:b], code, shift, rows_per_block=max(X.shape[0], 1)
    )


def block_sums(X, sample_weight):
    """``(sum w, sum_i w_i x_i)`` of one block, in float64."""
    X = np.asarray(X)
    if sample_weight is None:
        return float(X.shape[0]), X.sum(axis=0, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    return float(w.sum()), w @ np.asarray(X, dtype=np.float64)


class DataSource:
    """Rows that are not an in-memory array: the fit loop's view of them.

    Subclasses provide ``shape``, ``dtype``, ``n_samples`` and the passes; the
    initialisation logic (:meth:`initial_stats`) is shared.
    """

    ndim = 2

    def __len__(self):
        return self.n_samples

    def _centre(self, sample_weight):
        sum_w, total = self._sums(sample_weight)
        return total / sum_w

    def initial_stats(self, sample_weight, init_params, n_components, code, random_state):
        """Statistics of the initial responsibilities (module notes: Initialisation).

        Returns the :class:`Stats` that ``BaseMixture._initial_stats`` returns for
        an in-memory array, computed without pulling the data to the client.
        """
        n_samples, n_features = self.shape
        # Accumulate around the data mean in the data's precision (as in memory).
        centre = self._centre(sample_weight).astype(self.dtype).astype(np.float64)
        shift = np.broadcast_to(centre, (n_components, n_features))
        if init_params == "random":
            spec = self._random_spec(random_state, n_components)
        elif init_params == "random_from_data":
            rows = _choice(n_samples, n_components, random_state)
            spec = ("rows", np.asarray(rows, dtype=np.int64), np.arange(n_components))
        else:
            size = init_sample_rows(n_samples, n_features, self.dtype.itemsize, n_components)
            rows = None
            if size < n_samples:
                rows = np.sort(_choice(n_samples, size, random_state))
            sample, weights = self.take(rows, sample_weight)
            if init_params == "kmeans":
                labels, centres = kmeans(sample, n_components, random_state, weights)
                if rows is None:
                    spec = ("labels", labels)
                else:
                    spec = ("centres", _nearest_centre_params(centres, self.dtype))
            else:  # k-means++
                chosen = kmeans_plusplus_indices(sample, n_components, random_state, weights)
                chosen = chosen if rows is None else rows[chosen]
                spec = ("rows", np.asarray(chosen, dtype=np.int64), np.arange(n_components))
        return self._resp_stats(sample_weight, spec, n_components, code, shift)


# ------------------------------------------------------------- memmap / arrays
def _byte_bounds(a):
    """Addresses of the first and one past the last byte spanned by a non-empty ``a``."""
    low = high = a.ctypes.data
    for extent, stride in zip(a.shape, a.strides, strict=True):
        if stride < 0:
            low += (extent - 1) * stride
        else:
            high += (extent - 1) * stride
    return low, high + a.itemsize


class BlockSource(DataSource):
    """A file-backed ``np.memmap`` or row-sliceable array-like, read block by block.

    ``source[start:stop]`` returns rows ``start:stop`` as a fresh C-contiguous
    array of :attr:`dtype`; nothing else of the data stays in memory (module
    notes: Reading a memmap with bounded memory). :func:`fastmix._stats.estep_pass`
    slices it exactly as it slices an in-memory array, so a fit on a memmap
    gives bitwise the model of the same data in memory from the same start.

    Parameters
    ----------
    X : np.memmap or array-like of shape (n_samples, n_features)
    dtype : numpy dtype
        float64 or float32: what blocks are returned in.
    check_name : str, optional
        When given, every block read for per-row outputs is checked finite
        (prediction); fit checks the whole source once, see :meth:`check_finite`.
    """

    def __init__(self, X, dtype, check_name=None):
        self._X = X
        self.shape = (int(X.shape[0]), int(X.shape[1]))
        self.n_samples = self.shape[0]
        self.dtype = np.dtype(dtype)
        self._check_name = check_name
        self._raw_dtype = np.dtype(X.dtype)
        self._file = None  # (path, byte offset of row 0, bytes per row): read with readinto
        self._map = None  # (mmap, address of its first byte): copy, then MADV_DONTNEED
        if isinstance(X, np.memmap):
            self._setup_memmap(X)

    def _setup_memmap(self, X):
        mm = X._mmap
        mode = str(X.mode)
        if mode in ("c", "copyonwrite") or X.size == 0:
            return
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        if (
            sys.platform.startswith("linux")
            and X.flags.c_contiguous
            and X.filename is not None
            and X.offset is not None
        ):
            # numpy maps the file from offset rounded down to the granularity.
            map_start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
            position = X.ctypes.data - base + map_start
            self._file = (X.filename, position, self.shape[1] * self._raw_dtype.itemsize)
            try:
                ok = np.array_equal(self._read_file(0, 1), np.asarray(X[:1]), equal_nan=True)
            except OSError:
                ok = False
            if ok:
                return
            self._file = None
        if hasattr(mm, "madvise"):
            self._map = (mm, base)

    def __getitem__(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("a BlockSource is read by row slices X[start:stop] only")
        start, stop, _ = key.indices(self.n_samples)
        return self._read(start, max(start, stop))

    def _read(self, start, stop):
        if self._file is not None:
            block = self._read_file(start, stop)
        elif self._map is not None:
            block = self._read_map(start, stop)
        else:
            block = np.array(self._X[start:stop], dtype=self._raw_dtype, order="C")
        return np.ascontiguousarray(block, dtype=self.dtype)

    def _read_file(self, start, stop):
        path, position, row_bytes = self._file
        out = np.empty((stop - start, self.shape[1]), dtype=self._raw_dtype)
        view = memoryview(out).cast("B")
        with open(path, "rb", buffering=0) as f:
            f.seek(position + start * row_bytes)
            done = 0
            while done < len(view):
                n_read = f.readinto(view[done:])
                if not n_read:
                    raise OSError(f"{path} ended before row {stop} of the memmap")
                done += n_read
        return out

    def _read_map(self, start, stop):
        mm, base = self._map
        view = self._X[start:stop]
        block = np.array(view, order="C")
        if view.size:
            low, high = _byte_bounds(view)
            lo = low - base
            lo -= lo % mmap.PAGESIZE
            length = min(high - base, len(mm)) - lo
            if length > 0:
                mm.madvise(mmap.MADV_DONTNEED, lo, length)
        return block

    def iter_blocks(self, rows=None):
        """Yield ``(start, stop, block)`` over all rows, ``rows`` at a time."""
        if rows is None:
            row_bytes = max(1, self.shape[1] * self.dtype.itemsize)
            rows = max(CHUNK_ROWS, _READ_BYTES // row_bytes)
        for start in range(0, self.n_samples, rows):
            stop = min(start + rows, self.n_samples)
            yield start, stop, self._read(start, stop)

    def check_finite(self, name):
        """Raise scikit-learn's error on the first block holding NaN or infinity."""
        for _, _, block in self.iter_blocks():
            assert_all_finite(block, input_name="X", estimator_name=name)

    def _sums(self, sample_weight):
        sum_w = 0.0
        total = np.zeros(self.shape[1])
        for start, stop, block in self.iter_blocks():
            w = None if sample_weight is None else sample_weight[start:stop]
            bw, bt = block_sums(block, w)
            sum_w += bw
            total += bt
        return sum_w, total

    def take(self, rows, sample_weight):
        """Rows at sorted indices ``rows`` (all rows when None) and their weights."""
        if rows is None:
            return self._read(0, self.n_samples), sample_weight
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        if len(rows) <= _FEW_ROWS:
            for j, i in enumerate(rows):
                out[j] = self._read(i, i + 1)[0]
        else:
            step = max(CHUNK_ROWS, _READ_BYTES // max(1, self.shape[1] * self.dtype.itemsize))
            for start in range(0, self.n_samples, step):
                lo, hi = np.searchsorted(rows, [start, start + step])
                if lo == hi:
                    continue
                first = int(rows[lo])
                block = self._read(first, int(rows[hi - 1]) + 1)
                out[lo:hi] = block[rows[lo:hi] - first]
        weights = None if sample_weight is None else sample_weight[rows]
        return out, weights

    def _random_spec(self, random_state, n_components):
        return ("random_state", random_state)

    def _resp_stats(self, sample_weight, spec, n_components, code, shift):
        stats = Stats.zeros(code, shift)
        if code == TIED:
            stats.row_sum = np.zeros(self.shape[1])
        for index, (start, stop, block) in enumerate(self.iter_blocks()):
            if spec[0] == "random_state":
                # scikit-learn's draw, consumed in row order: the same stream.
                r = np.asarray(
                    spec[1].uniform(size=(stop - start, n_components)), dtype=self.dtype
                )
                local = ("resp", r / r.sum(axis=1)[:, None])
            else:
                local = _local_spec(spec, start, stop, index)
            w = None if sample_weight is None else sample_weight[start:stop]
            stats = stats + block_init_stats(
                block, w, local, n_components, code, shift, serial=False
            )
        return stats

    def estep_outputs(self, params, want_resp, chunk_rows=CHUNK_ROWS):
        """Per-row outputs (see :func:`fastmix._stats.estep_outputs`), block by block."""
        n_samples, n_features = self.shape
        n_components = params.bias.shape[0]
        log_prob_norm = np.empty(n_samples)
        labels = np.empty(n_samples, dtype=np.int64)
        log_resp = np.empty((n_samples, n_components)) if want_resp else None
        for start, stop, block in self.iter_blocks(block_rows(n_components, n_features)):
            if self._check_name is not None:
                assert_all_finite(block, input_name="X", estimator_name=self._check_name)
            lpn, lab, lr = estep_outputs(block, params, want_resp, chunk_rows)
            log_prob_norm[start:stop] = lpn
            labels[start:stop] = lab
            if want_resp:
                log_resp[start:stop] = lr
        return log_prob_norm, labels, log_resp


# ------------------------------------------------------------------------ dask
def block_stats(X, sample_weight, args, chunk_rows):
    """E-step statistics of one dask block with the *serial* kernel.

    Runs on a worker thread: never a ``parallel=True`` kernel there.
    Returns ``(nk, s1, s2_mat (upper triangle), s2_diag, [sum w, sum w log p,
    sum w r log r, rows with positive weight])``.
    """
    X = np.ascontiguousarray(X)
    code, shift = args[0], args[1]
    stats = Stats.zeros(code, shift)
    scal = np.zeros(3)
    if sample_weight is None:
        sample_weight = np.empty(0)
        n_rows = X.shape[0]
    else:
        sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64)
        n_rows = np.count_nonzero(sample_weight)
    estep_stats_serial(
        X, sample_weight, *args, chunk_rows,
        stats.nk, stats.s1, stats.s2_mat, stats.s2_diag, scal,
    )  # fmt: skip
    return stats.nk, stats.s1, stats.s2_mat, stats.s2_diag, np.append(scal, n_rows)


def _add_parts(a, b):
    return tuple(x + y for x, y in zip(a, b, strict=True))


def block_outputs(X, args, n_components, which, check_name, chunk_rows=CHUNK_ROWS):
    """One per-row output of a dask block, by the serial kernel (on a worker).

    ``which``: 0 log p(x), 1 labels, 2 log-responsibilities.
    """
    if check_name is not None:
        assert_all_finite(X, input_name="X", estimator_name=check_name)
    X = np.ascontiguousarray(X)
    n_rows = X.shape[0]
    log_prob_norm = np.empty(n_rows)
    labels = np.empty(n_rows, dtype=np.int64)
    log_resp = np.empty((n_rows if which == 2 else 0, n_components))
    estep_rows_serial(X, *args, chunk_rows, log_prob_norm, labels, log_resp)
    return (log_prob_norm, labels, log_resp)[which]


def _block_check(X, sample_weight, name):
    """Validate one block on its worker; returns (rows, nonfinite w, negative w, positive w)."""
    assert_all_finite(X, input_name="X", estimator_name=name)
    n_rows = X.shape[0]
    if sample_weight is None:
        return n_rows, 0, 0, n_rows
    w = np.asarray(sample_weight, dtype=np.float64)
    return (
        n_rows,
        int(np.count_nonzero(~np.isfinite(w))),
        int(np.count_nonzero(w < 0)),
        int(np.count_nonzero(w > 0)),
    )


def _tree_sum(parts, add):
    """Sum delayed parts pairwise in a fixed binary tree (order independent of placement)."""
    import dask

    add = dask.delayed(add, pure=True)
    while len(parts) > 1:
        parts = [
            add(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def _row_blocks(X, dtype):
    """``X`` in ``dtype`` with every block holding whole rows."""
    if X.dtype != dtype:
        X = X.astype(dtype)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


def _client_for(X):
    """The distributed Client that holds or will compute ``X``; None for local schedulers."""
    try:
        from distributed import default_client, futures_of
    except ImportError:
        return None
    futures = futures_of(X)
    if futures:
        client = futures[0].client
        if client.status != "running":
            raise _cluster_gone(client)
        return client
    try:
        return default_client()
    except ValueError:
        return None


def _cluster_gone(client):
    return RuntimeError(
        "fastmix lost the Dask cluster: the distributed Client that holds this fit's "
        f"data is {client.status!r} (closed, or its scheduler is unreachable). Connect "
        "a Client to a running cluster (e.g. Client('tcp://scheduler:8786')) and fit "
        "again; the model was left unchanged."
    )


def _compute(client, *collections):
    """``dask.compute`` on ``client`` (local scheduler when None): one call per pass."""
    import dask

    if client is None:
        return dask.compute(*collections)
    if client.status != "running":
        raise _cluster_gone(client)
    try:
        return dask.compute(*collections, scheduler=client)
    except Exception as exc:
        if client.status != "running":
            raise _cluster_gone(client) from exc
        raise


class DaskSource(DataSource):
    """A dask array, one block of rows per task.

    For a fit the array (and the weights) are persisted once
    (:meth:`for_fit`); each :meth:`estep_pass` maps :func:`block_stats` over the
    persisted blocks, tree-sums the partial statistics and computes once.
    Per-row outputs are dask arrays built with ``map_blocks``.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        In ``dtype``, one block along the features.
    dtype : numpy dtype
    client : distributed.Client or None
        Where passes are computed (None: dask's default scheduler).
    weights : dask.array.Array of shape (n_samples,) or None
        Chunked like the rows of ``X``.
    check_name : str, optional
        When given, per-row output tasks check their block finite (prediction).
    """

    def __init__(self, X, dtype, client, weights=None, check_name=None):
        self._X = X
        self.dtype = np.dtype(dtype)
        self.shape = X.shape
        self.n_samples = X.shape[0]
        self._client = client
        self.weights = weights
        self._check_name = check_name

    @classmethod
    def for_fit(cls, X, dtype, sample_weight, n_components, name):
        """Persist ``X`` (and weights) on the cluster and validate them there."""
        import dask

        X = _row_blocks(X, dtype)
        client = _client_for(X)
        scheduler = {} if client is None else {"scheduler": client}
        (X,) = dask.persist(X, **scheduler)
        if any(math.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
        n_samples = int(X.shape[0])
        _check_2d(X, name, min_samples=2)
        _check_n_components(n_samples, n_components)
        weights = None
        if sample_weight is not None:
            weights = _dask_weights(sample_weight, X.chunks[0], n_samples)
            (weights,) = dask.persist(weights, **scheduler)
        x_blocks = X.to_delayed().ravel().tolist()
        w_blocks = [None] * len(x_blocks)
        if weights is not None:
            w_blocks = weights.to_delayed().ravel().tolist()
        check = dask.delayed(_block_check, pure=True)
        (summary,) = _compute(
            client, [check(xb, wb, name) for xb, wb in zip(x_blocks, w_blocks, strict=True)]
        )
        if weights is not None:
            check_weight_summary(np.array(summary)[:, 1:].sum(axis=0), n_components)
        source = cls(X, dtype, client, weights)
        source._x_blocks = x_blocks
        source._w_blocks = w_blocks
        return source, weights

    def _blocks(self, sample_weight):
        if sample_weight is None:
            return self._x_blocks, [None] * len(self._x_blocks)
        if sample_weight is not self.weights:
            raise ValueError("a DaskSource passes the sample weights it was built with")
        return self._x_blocks, self._w_blocks

    def estep_pass(self, sample_weight, params, chunk_rows=CHUNK_ROWS):
        """One E-step over the cluster: serial kernel per block, tree sum, one compute."""
        import dask

        x_blocks, w_blocks = self._blocks(sample_weight)
        args = dask.delayed(params.args(), traverse=False)
        task = dask.delayed(block_stats, pure=True)
        parts = [task(xb, wb, args, chunk_rows) for xb, wb in zip(x_blocks, w_blocks, strict=True)]
        ((nk, s1, s2_mat, s2_diag, scal),) = _compute(self._client, _tree_sum(parts, _add_parts))
        stats = Stats(
            nk=nk,
            s1=s1,
            s2_mat=_symmetrise_upper(s2_mat),
            s2_diag=s2_diag,
            sum_w=float(scal[0]),
            sum_wlogp=float(scal[1]),
            sum_wrlogr=float(scal[2]),
            shift=np.asarray(params.shift, dtype=np.float64),
            n_rows=float(scal[3]),
        )
        return stats

    def estep_outputs(self, params, want_resp, chunk_rows=CHUNK_ROWS):
        """Lazy per-row outputs: (log p(x), labels, log-responsibilities or None)."""
        import dask

        X = self._X
        n_components = params.bias.shape[0]
        args = dask.delayed(params.args(), traverse=False)
        kw = dict(n_components=n_components, check_name=self._check_name, chunk_rows=chunk_rows)
        log_prob_norm = X.map_blocks(
            block_outputs, args, which=0, drop_axis=1, dtype=np.float64,
            meta=np.empty(0), **kw,
        )  # fmt: skip
        labels = X.map_blocks(
            block_outputs, args, which=1, drop_axis=1, dtype=np.int64,
            meta=np.empty(0, dtype=np.int64), **kw,
        )  # fmt: skip
        log_resp = None
        if want_resp:
            log_resp = X.map_blocks(
                block_outputs, args, which=2, chunks=(X.chunks[0], (n_components,)),
                dtype=np.float64, meta=np.empty((0, 0)), **kw,
            )  # fmt: skip
        return log_prob_norm, labels, log_resp

    def _sums(self, sample_weight):
        import dask

        x_blocks, w_blocks = self._blocks(sample_weight)
        task = dask.delayed(block_sums, pure=True)
        parts = [task(xb, wb) for xb, wb in zip(x_blocks, w_blocks, strict=True)]
        ((sum_w, total),) = _compute(self._client, _tree_sum(parts, _add_parts))
        return sum_w, total

    def take(self, rows, sample_weight):
        if rows is None:
            sample = self._X
            weights = sample_weight
        else:
            sample = self._X[rows]
            weights = None if sample_weight is None else sample_weight[rows]
        sample, weights = _compute(self._client, sample, weights)
        return np.ascontiguousarray(sample), weights

    def _random_spec(self, random_state, n_components):
        n_samples, n_features = self.shape
        if init_sample_rows(n_samples, n_features, self.dtype.itemsize, n_components) == n_samples:
            # Small data: scikit-learn's draw, made on the client and shipped per block.
            r = np.asarray(random_state.uniform(size=(n_samples, n_components)), dtype=self.dtype)
            return ("resp_all", r / r.sum(axis=1)[:, None])
        seeds = random_state.randint(np.iinfo(np.int32).max, size=len(self._x_blocks))
        return ("seeds", seeds)

    def _resp_stats(self, sample_weight, spec, n_components, code, shift):
        import dask

        x_blocks, w_blocks = self._blocks(sample_weight)
        task = dask.delayed(block_init_stats, pure=True)
        shift_d = dask.delayed(np.asarray(shift), traverse=False)
        if spec[0] == "centres":
            spec = dask.delayed(spec, traverse=False)
        parts = []
        start = 0
        for index, (xb, wb) in enumerate(zip(x_blocks, w_blocks, strict=True)):
            stop = start + int(self._X.chunks[0][index])
            local = spec if not isinstance(spec, tuple) else _local_spec(spec, start, stop, index)
            parts.append(task(xb, wb, local, n_components, code, shift_d))
            start = stop
        (stats,) = _compute(self._client, _tree_sum(parts, operator.add))
        return stats


def _dask_weights(sample_weight, row_chunks, n_samples):
    """``sample_weight`` as a float64 dask array chunked like the rows of X."""
    import dask.array as da

    if _is_dask(sample_weight):
        w = sample_weight
    else:
        w = np.asarray(sample_weight)
        if w.ndim == 0:
            raise ValueError(
                "sample_weight must be an array of shape (n_samples,), got a scalar; "
                "pass one non-negative weight per row of X."
            )
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {w.shape} but X has {n_samples} rows; "
            f"pass one weight per row, shape ({n_samples},)."
        )
    if _is_dask(w):
        return w.astype(np.float64).rechunk((row_chunks,))
    return da.from_array(w.astype(np.float64), chunks=(row_chunks,))


def check_weight_summary(summary, n_components):
    """The sample-weight errors, from counts of (non-finite, negative, positive) weights.

    Shared by in-memory validation and the block-by-block validation of data
    sources, so both raise the same messages.
    """
    n_nonfinite, n_negative, n_positive = (int(v) for v in summary)
    if n_nonfinite:
        raise ValueError(
            "sample_weight contains NaN or infinity; pass finite non-negative weights."
        )
    if n_negative:
        raise ValueError(
            "sample_weight contains negative values; weights must be non-negative "
            "(a zero weight drops a row)."
        )
    if n_positive == 0:
        raise ValueError(
            "sample_weight is zero for every row: at least one row needs a positive weight."
        )
    if n_positive < n_components:
        raise ValueError(
            "Expected at least n_components rows with a positive sample_weight "
            f"but got n_components = {n_components}, rows with positive weight = "
            f"{n_positive}."
        )
