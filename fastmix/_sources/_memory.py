"""In-process sources: an in-memory array, and a memmap or array-like read block by block.

Reading a memmap with bounded memory
------------------------------------
Pages of a ``np.memmap`` that were touched stay mapped into the process and
count toward its resident set until the map is dropped, so simply slicing the
memmap block by block grows RSS to the size of the file. A
:class:`BlockSource` therefore reads each block into a fresh buffer:

- file-backed memmaps on Linux (whose page cache is coherent with the map),
  C-contiguous or row-major views with positive strides whose rows lie at most
  :data:`_MAX_SPAN` times their own width apart (a column subset, say):
  ``readinto`` of the block's byte span at its offset in the file (the
  kernel's sequential read-ahead keeps the disk busy), then the view's
  elements picked out of that buffer. A file that shrank under the fit is
  then an ``OSError`` naming it, not a SIGBUS from a page past its end;
- other memmap views: the block is copied out of the map, then its pages are
  dropped from the map with ``madvise(MADV_DONTNEED)`` (the data stay in the
  page cache; dirty pages are written back);
- copy-on-write memmaps (``mode='c'``): copied out without ``madvise``, since
  dropping their pages would discard in-memory edits (their RSS is not bounded);
- other array-likes: ``X[start:stop]``, which reads from their storage.

A reader that knows its blocks in advance (an online fit's shuffled blocks)
takes them from :meth:`BlockSource.read_ahead`: on Linux, a C-contiguous
file-backed memmap's next block is read by a background thread with
``O_DIRECT`` while the caller computes on this one (the disk's DMA fills the
buffer: no page-cache copy to compete with the kernels for the cores, and
nothing left in the page cache by a file read once); elsewhere the block is
read here and the next one asked of the disk (``posix_fadvise WILLNEED``).
"""

import functools
import mmap
import operator
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.utils import assert_all_finite

from ._base import DataSource, block_sums
from ._driver import (
    CHUNK_ROWS,
    block_outputs,
    block_rows,
    block_stats,
    finish_stats,
    new_stats,
    pass_rows,
)
from ._init import UniformDraw, init_sample_rows

# A strided view is read through the file when a block's byte span is at most
# this many times the bytes it keeps (X[:, ::2] spans 2x): reading more would
# cost more than the map's copy does.
_MAX_SPAN = 4

__all__ = ["ArraySource", "BlockSource"]

# Bytes per read for validation and initialisation passes over a memmap.
_READ_BYTES = 4 * 2**20
# Up to this many scattered rows are read one by one; more take a block pass.
_FEW_ROWS = 1024
# O_DIRECT reads' alignment of file offsets, lengths and buffer addresses:
# a page, a multiple of any block device's logical block size.
_DIRECT_ALIGN = 4096
# Rows per block of an in-memory array's initial responsibilities: a few
# (block, K) temporaries live at once, far below one (n, K) array.
_INIT_BLOCK_ROWS = 8192


class _InProcessSource(DataSource):
    """Rows read block by block in this process: the passes are plain loops.

    Subclasses provide ``_read(start, stop)`` (rows in :attr:`dtype`, C order)
    and ``_init_rows`` (rows per block of the initialisation).
    """

    _check_name = None

    def iter_blocks(self, rows):
        """Yield ``(start, stop, block, weights)`` over all rows, ``rows`` at a time."""
        w = self.sample_weight
        for start in range(0, self.n_samples, rows):
            stop = min(start + rows, self.n_samples)
            yield start, stop, self._read(start, stop), (None if w is None else w[start:stop])

    def estep_pass(self, params_list, *, chunk_rows=CHUNK_ROWS, rows_per_block=None):
        """One E-step per parameter set, each block read once for all of them.

        ``chunk_rows`` and ``rows_per_block`` (tests) change how the rows are
        cut into the kernel's chunks and into blocks read at a time.
        """
        accumulators = new_stats(params_list)
        rows = pass_rows(params_list, chunk_rows, rows_per_block)
        for _, _, block, w in self.iter_blocks(rows):
            block_stats(
                block, w, params_list, accumulators, chunk_rows=chunk_rows,
                pass_rows_total=self.n_samples,
            )  # fmt: skip
        return finish_stats(accumulators)

    def estep_outputs(self, params, want_resp, *, chunk_rows=CHUNK_ROWS, dtype=None):
        """Per-row outputs, each block's written into the whole result.

        With ``dtype`` (the estimators' public outputs), ``log p(x)`` comes in
        ``dtype`` and the third output holds the responsibilities themselves
        in ``dtype``, as the kernel forms them (no exp of the block after it):
        each block is formed in float64 scratch the size of one block, so
        memory beyond the result stays bounded by the block.
        """
        if dtype is None:
            return self._log_outputs(params, want_resp, chunk_rows)
        n_samples = self.n_samples
        n_components = params.bias.shape[0]
        log_prob_norm = np.empty(n_samples, dtype=dtype)
        labels = np.empty(n_samples, dtype=np.int64)
        resp = np.empty((n_samples if want_resp else 0, n_components), dtype=dtype)
        rows = min(self._output_rows(params), block_rows(n_components, self.shape[1]))
        lpn_buf = np.empty(min(rows, n_samples))
        resp_buf = np.empty((min(rows, n_samples) if want_resp else 0, n_components))
        for start, stop, block, _ in self.iter_blocks(rows):
            if self._check_name is not None:
                assert_all_finite(block, input_name="X", estimator_name=self._check_name)
            m = stop - start
            out = (lpn_buf[:m], labels[start:stop], resp_buf[:m])
            block_outputs(
                block, params, want_resp, out=out, chunk_rows=chunk_rows,
                pass_rows_total=n_samples, probabilities=True,
            )  # fmt: skip
            log_prob_norm[start:stop] = lpn_buf[:m]
            if want_resp:
                resp[start:stop] = resp_buf[:m]
        return log_prob_norm, labels, (resp if want_resp else None)

    def _log_outputs(self, params, want_resp, chunk_rows):
        n_samples, n_features = self.shape
        n_components = params.bias.shape[0]
        log_prob_norm = np.empty(n_samples)
        labels = np.empty(n_samples, dtype=np.int64)
        log_resp = np.empty((n_samples if want_resp else 0, n_components))
        for start, stop, block, _ in self.iter_blocks(self._output_rows(params)):
            if self._check_name is not None:
                assert_all_finite(block, input_name="X", estimator_name=self._check_name)
            out = (log_prob_norm[start:stop], labels[start:stop], log_resp[start:stop])
            block_outputs(
                block, params, want_resp, out=out, chunk_rows=chunk_rows,
                pass_rows_total=n_samples,
            )  # fmt: skip
        return log_prob_norm, labels, (log_resp if want_resp else None)

    def map_rows(self, func):
        """``func(block)`` (one float64 per row) over every block, as one (n,) array."""
        out = np.empty(self.n_samples)
        for start, stop, block, _ in self.iter_blocks(self._init_rows):
            if self._check_name is not None:
                assert_all_finite(block, input_name="X", estimator_name=self._check_name)
            out[start:stop] = func(block)
        return out

    def sums(self):
        parts = (block_sums(block, w) for _, _, block, w in self.iter_blocks(self._init_rows))
        return functools.reduce(lambda a, b: (a[0] + b[0], a[1] + b[1]), parts)

    def reduce_blocks(self, func, plan, *args):
        rows = self._init_rows
        cap = plan.rows_cap() if hasattr(plan, "rows_cap") else None
        if cap is not None:
            rows = min(rows, cap)
        parts = (
            func(block, w, plan.for_block(start, stop, index), *args, True)
            for index, (start, stop, block, w) in enumerate(self.iter_blocks(rows))
        )
        return functools.reduce(operator.add, parts)

    def random_plan(self, random_state, n_components):
        return UniformDraw(random_state, n_components, self.dtype)


class ArraySource(_InProcessSource):
    """An in-memory, validated ndarray (C- or F-ordered; blocks are made C-contiguous).

    Initialisation sees every row, exactly as scikit-learn's does.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float64 or float32
    sample_weight : ndarray of shape (n_samples,) or None
    dtype : numpy dtype, optional
        What blocks are read in (default: X's); float32 rows read as float64
        are converted a block at a time (a float64 model's predictions).
    """

    _init_rows = _INIT_BLOCK_ROWS
    _exact_choice = True

    def __init__(self, X, sample_weight=None, dtype=None):
        self._X = X
        self.shape = X.shape
        self.n_samples = X.shape[0]
        self.dtype = X.dtype if dtype is None else np.dtype(dtype)
        self.sample_weight = sample_weight

    def _read(self, start, stop):
        return np.ascontiguousarray(self._X[start:stop], dtype=self.dtype)

    def _output_rows(self, params):
        if self.dtype != self._X.dtype:
            # Converted blocks: bounded, as a memmap's, not a copy of X.
            return block_rows(params.bias.shape[0], self.shape[1], params.code)
        return max(self.n_samples, 1)  # one parallel call over every row

    def take(self, rows):
        if rows is None:
            return self._X, self.sample_weight
        w = None if self.sample_weight is None else self.sample_weight[rows]
        return self._X[rows], w

    def init_sample_size(self, n_components):
        return self.n_samples


# ------------------------------------------------------------- memmap / arrays
def _file_ended(path, stop):
    """The error for a memmap's file that ends before row ``stop`` (it shrank)."""
    return OSError(
        f"{path} ended before row {stop} of the memmap (the file is shorter "
        "than when it was mapped: was it truncated or rewritten?)"
    )


def _byte_bounds(a):
    """Addresses of the first and one past the last byte spanned by a non-empty ``a``."""
    low = high = a.ctypes.data
    for extent, stride in zip(a.shape, a.strides, strict=True):
        if stride < 0:
            low += (extent - 1) * stride
        else:
            high += (extent - 1) * stride
    return low, high + a.itemsize


class BlockSource(_InProcessSource):
    """A file-backed ``np.memmap`` or row-sliceable array-like, read block by block.

    ``source[start:stop]`` returns rows ``start:stop`` as a fresh C-contiguous
    array of :attr:`dtype`; nothing else of the data stays in memory (module
    notes: Reading a memmap with bounded memory). Its E-step passes read the
    blocks an in-memory array's passes slice, so a fit on a memmap gives
    bitwise the model of the same data in memory from the same start.

    Parameters
    ----------
    X : np.memmap or array-like of shape (n_samples, n_features)
    dtype : numpy dtype
        float64 or float32: what blocks are returned in.
    sample_weight : ndarray of shape (n_samples,) or None
        Validated weights.
    check_name : str, optional
        When given, every block read for per-row outputs is checked finite
        (prediction); fit checks the whole source once, see :meth:`check_finite`.
    """

    def __init__(self, X, dtype, sample_weight=None, check_name=None):
        self._X = X
        self.shape = (int(X.shape[0]), int(X.shape[1]))
        self.n_samples = self.shape[0]
        self.dtype = np.dtype(dtype)
        self.sample_weight = sample_weight
        self._check_name = check_name
        self._raw_dtype = np.dtype(X.dtype)
        self._file = None  # (path, byte offset of X[0, 0], row and column strides): readinto
        self._map = None  # (mmap, address of its first byte): copy, then MADV_DONTNEED
        self._direct_refused = False  # O_DIRECT opened, but its reads refused (EINVAL)
        if isinstance(X, np.memmap):
            self._setup_memmap(X)

    def _setup_memmap(self, X):
        mm = X._mmap
        mode = str(X.mode)
        if mode in ("c", "copyonwrite") or X.size == 0:
            return
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        itemsize = self._raw_dtype.itemsize
        row_stride, col_stride = X.strides
        width = self.shape[1] * itemsize
        if (
            sys.platform.startswith("linux")
            and X.filename is not None
            and X.offset is not None
            and 0 < col_stride
            and (self.shape[1] - 1) * col_stride < row_stride <= _MAX_SPAN * width
        ):
            # numpy maps the file from offset rounded down to the granularity.
            map_start = X.offset - X.offset % mmap.ALLOCATIONGRANULARITY
            position = X.ctypes.data - base + map_start
            self._file = (X.filename, position, row_stride, col_stride)
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

    def prefetch(self, start, stop):
        """Ask the OS to start reading rows ``start:stop`` from the disk, without waiting.

        ``posix_fadvise(POSIX_FADV_WILLNEED)`` on their byte span, for a
        reader that knows its next block while it computes on this one (an
        online fit's shuffled blocks, which the kernel's sequential
        read-ahead cannot guess). A no-op where the source is not read
        through its file, or the platform has no ``posix_fadvise``.
        """
        if self._file is None or not hasattr(os, "posix_fadvise") or stop <= start:
            return
        path, position, row_stride, _ = self._file
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return  # only a hint: the read itself reports a missing file
        try:
            os.posix_fadvise(
                fd, position + start * row_stride, (stop - start) * row_stride,
                os.POSIX_FADV_WILLNEED,
            )  # fmt: skip
        except OSError:
            pass  # a file system that refuses the hint reads the block when asked
        finally:
            os.close(fd)

    def read_ahead(self, ranges):
        """Yield ``(start, stop, self[start:stop])`` for each ``(start, stop)`` of ``ranges``.

        Each next block is read while the caller works on the one yielded:
        by a background thread with ``O_DIRECT`` where the rows are a
        C-contiguous span of a file on Linux whose file system allows it (two
        blocks in memory at a time), otherwise here, asking the disk for the
        next block with :meth:`prefetch`. ``ranges`` is consumed one item
        ahead, so it may be a generator. Measured on ``fastmix fit --online``
        over a 6.4 GB file not in the page cache, 1e5-row blocks on 2 cores:
        the read is hidden behind the E-steps (docs/performance.md, issue 14).
        """

        def bounds(start, stop):
            start, stop, _ = slice(start, stop).indices(self.n_samples)
            return start, max(start, stop)

        ranges = (bounds(start, stop) for start, stop in ranges)
        current = next(ranges, None)
        fd = self._open_direct()
        if fd is None:
            while current is not None:
                block = self[current[0] : current[1]]
                after = next(ranges, None)
                if after is not None:
                    self.prefetch(*after)
                yield (*current, block)
                current = after
            return
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="fastmix-read") as pool:
                pending = None if current is None else pool.submit(self._read_direct, fd, *current)
                while current is not None:
                    block = pending.result()
                    after = next(ranges, None)
                    if after is not None:
                        pending = pool.submit(self._read_direct, fd, *after)
                    yield (*current, block)
                    current = after
        finally:
            os.close(fd)

    def _open_direct(self):
        """A descriptor of the file opened with ``O_DIRECT``, or None where it cannot be."""
        if self._file is None or not hasattr(os, "O_DIRECT") or not hasattr(os, "preadv"):
            return None
        path, _, row_stride, col_stride = self._file
        itemsize = self._raw_dtype.itemsize
        if col_stride != itemsize or row_stride != self.shape[1] * itemsize:
            return None  # a strided view: its rows are picked from the span by _read_file
        try:
            return os.open(path, os.O_RDONLY | os.O_DIRECT)
        except OSError:
            return None  # tmpfs, say: no direct I/O

    def _read_direct(self, fd, start, stop):
        """Rows ``start:stop`` by aligned ``O_DIRECT`` reads of their byte span."""
        if self._direct_refused:
            return self._read(start, stop)
        path, position, row_stride, _ = self._file
        first, end = position + start * row_stride, position + stop * row_stride
        low = first - first % _DIRECT_ALIGN
        length = -(-(end - low) // _DIRECT_ALIGN) * _DIRECT_ALIGN
        raw = np.empty(length + _DIRECT_ALIGN, dtype=np.uint8)
        skip = -raw.ctypes.data % _DIRECT_ALIGN
        buffer = raw[skip : skip + length]
        done = 0
        try:
            while low + done < end:
                n_read = os.preadv(fd, [buffer[done:]], low + done)
                if not n_read:
                    raise _file_ended(path, stop)
                done += n_read
        except OSError as error:
            if error.errno is None:
                raise
            # A file system that opens with O_DIRECT but refuses its reads
            # (EINVAL): buffered reads from now on (the first reports a real
            # error itself).
            self._direct_refused = True
            return self._read(start, stop)
        block = buffer[first - low : end - low].view(self._raw_dtype)
        # Aligned too: a memmap at an odd byte offset leaves the rows unaligned here.
        return np.require(
            block.reshape(stop - start, self.shape[1]), self.dtype, ["C_CONTIGUOUS", "ALIGNED"]
        )

    def _read(self, start, stop):
        if self._file is not None:
            block = self._read_file(start, stop)
        elif self._map is not None:
            block = self._read_map(start, stop)
        else:
            block = np.array(self._X[start:stop], dtype=self._raw_dtype, order="C")
        return np.ascontiguousarray(block, dtype=self.dtype)

    def _read_file(self, start, stop):
        path, position, row_stride, col_stride = self._file
        n_rows, n_columns = stop - start, self.shape[1]
        itemsize = self._raw_dtype.itemsize
        contiguous = row_stride == n_columns * itemsize and col_stride == itemsize
        if n_rows == 0:
            return np.empty((0, n_columns), dtype=self._raw_dtype)
        # From the block's first element to the end of its last one.
        span = (n_rows - 1) * row_stride + (n_columns - 1) * col_stride + itemsize
        buffer = np.empty(span, dtype=np.uint8)
        view = memoryview(buffer)
        with open(path, "rb", buffering=0) as f:
            f.seek(position + start * row_stride)
            done = 0
            while done < span:
                n_read = f.readinto(view[done:])
                if not n_read:
                    raise _file_ended(path, stop)
                done += n_read
        if contiguous:
            return buffer.view(self._raw_dtype).reshape(n_rows, n_columns)
        picked = np.ndarray(
            (n_rows, n_columns), self._raw_dtype, buffer, strides=(row_stride, col_stride)
        )
        return np.ascontiguousarray(picked)

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

    @property
    def _init_rows(self):
        row_bytes = max(1, self.shape[1] * self.dtype.itemsize)
        return max(CHUNK_ROWS, _READ_BYTES // row_bytes)

    def _output_rows(self, params):
        return block_rows(params.bias.shape[0], self.shape[1], params.code)

    def check_finite(self, name):
        """Raise scikit-learn's error on the first block holding NaN or infinity."""
        for _, _, block, _ in self.iter_blocks(self._init_rows):
            assert_all_finite(block, input_name="X", estimator_name=name)

    def take(self, rows):
        """Rows at sorted indices ``rows`` (all rows when None) and their weights."""
        if rows is None:
            return self._read(0, self.n_samples), self.sample_weight
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        if len(rows) <= _FEW_ROWS:
            for j, i in enumerate(rows):
                out[j] = self._read(i, i + 1)[0]
        else:
            step = self._init_rows
            for start in range(0, self.n_samples, step):
                lo, hi = np.searchsorted(rows, [start, start + step])
                if lo == hi:
                    continue
                first = int(rows[lo])
                block = self._read(first, int(rows[hi - 1]) + 1)
                out[lo:hi] = block[rows[lo:hi] - first]
        weights = None if self.sample_weight is None else self.sample_weight[rows]
        return out, weights

    def init_sample_size(self, n_components):
        n_samples, n_features = self.shape
        return init_sample_rows(n_samples, n_features, self.dtype.itemsize, n_components)
