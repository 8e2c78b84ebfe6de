"""The block driver: the one place that calls the E-step kernels.

Every data source hands rows to these two functions, one block at a time:
:func:`block_stats` adds a block's sufficient statistics for any number of
parameter sets (one read of the block serves them all) and
:func:`block_outputs` writes a block's per-row outputs. Whether a call runs
the parallel kernel or its serial twin is decided here and nowhere else; both
give bitwise the same result. A parallel launch also needs
:func:`fastmix._numba.parallel_launch`'s grant: another thread inside a
parallel kernel, or a forked child, gets the serial twin.
"""

import numpy as np

from .._kernels import (
    DIAG,
    FULL,
    GROUP_CHUNKS,
    TIED,
    estep_rows,
    estep_rows_serial,
    estep_stats,
    estep_stats_serial,
)
from .._numba import launch
from .._stats import Stats, _symmetrise_upper

__all__ = [
    "CHUNK_ROWS",
    "block_outputs",
    "block_rows",
    "block_stats",
    "finish_stats",
    "new_stats",
    "pass_rows",
]

# Rows per chunk: the unit of parallel work and of the fixed-order reduction.
# 512 rows keep a chunk's log-densities (512 x K float64) and its rows in L2.
CHUNK_ROWS = 512
# Cap on the float64 partials held per kernel call (chunks x K x D x D): keeps
# extra memory independent of n_samples while giving every thread work.
_PARTIAL_BYTES = 32 * 2**20
_MAX_CHUNKS_PER_BLOCK = 128

# Below about this many multiply-adds a call runs on the calling thread: waking
# numba's OpenMP pool costs tens of microseconds on an idle machine and a whole
# scheduler time slice when another process holds a core (measured: 5,000 x 3
# rows took 0.32 s per pass on 2 threads against 0.004 s on 1 under load).
# Both kernels give bitwise the same result, so this only moves time.
_SERIAL_WORK = 4_000_000
# Work per (row, component) besides the D or D^2 multiply-adds of the density:
# the exp, the log and the normalisation, in multiply-add equivalents. Without
# it a 65,536-row block at D = 2, K = 5 counted as small and every block of a
# 1e6-row pass ran on one thread (27.7 against 16.6 ms per iteration on two).
_PER_COMPONENT_WORK = 16


def parallel_rows(n_components, n_features, code, chunk_rows=CHUNK_ROWS):
    """The fewest rows of an E-step kernel call that runs on the thread pool."""
    density = n_features * (n_features if code != DIAG else 1)
    per_row = n_components * (density + _PER_COMPONENT_WORK)
    return max(chunk_rows + 1, _SERIAL_WORK // per_row + 1)


def _use_parallel(n_rows, params, chunk_rows=CHUNK_ROWS):
    """Whether a kernel call over ``n_rows`` rows is worth the thread pool."""
    n_components, n_features = params.shift.shape
    return n_rows >= parallel_rows(n_components, n_features, params.code, chunk_rows)


def block_rows(n_components, n_features, code=FULL):
    """Rows handed to one kernel call; depends on the problem's shape only.

    Sized so that the float64 partials of one call stay near ``_PARTIAL_BYTES``
    (each covariance type counts its own: K D x D matrices for full, one for
    tied, K diagonals for diag), in whole reduction groups (``GROUP_CHUNKS``
    chunks; pairs of them when there are enough, so that two threads get equal
    shares). Block boundaries then fall on group boundaries, so a pass gives
    bitwise the same statistics whatever block length reads it
    (:func:`pass_rows`).
    """
    mat = {FULL: n_components, TIED: 1}.get(code, 0) * n_features * n_features
    diag = n_components * n_features if code == DIAG else 0
    per_chunk = 8 * (mat + diag + n_components * (n_features + 1) + 3)
    chunks = min(max(_PARTIAL_BYTES // per_chunk, 1), _MAX_CHUNKS_PER_BLOCK)
    unit = 2 * GROUP_CHUNKS if chunks >= 2 * GROUP_CHUNKS else GROUP_CHUNKS
    return max(unit, chunks // unit * unit) * CHUNK_ROWS


def use_parallel_labels(X, code, allow_parallel=True):
    """Whether the one-hot statistics of block ``X`` are worth the thread pool."""
    work = X.size * (X.shape[1] if code == FULL else 1)
    return allow_parallel and work > _SERIAL_WORK


def pass_rows(params_list, chunk_rows=CHUNK_ROWS, rows_per_block=None):
    """Rows read per block by a pass serving several parameter sets.

    The smallest of their :func:`block_rows`, so no set's partials outgrow
    its own cap; every value is a multiple of one reduction group, so each
    set's statistics equal those of a pass of its own. ``rows_per_block``
    (tests) replaces it; either is rounded down to whole chunks.
    """
    if rows_per_block is None:
        n_features = params_list[0].shift.shape[1]
        rows_per_block = min(block_rows(p.bias.shape[0], n_features, p.code) for p in params_list)
    return max(chunk_rows, rows_per_block // chunk_rows * chunk_rows)


def new_stats(params_list):
    """Empty accumulators, one ``(Stats, scalars)`` pair per parameter set."""
    return [(Stats.zeros(p.code, p.shift), np.zeros(3)) for p in params_list]


def block_stats(
    X, sample_weight, params_list, accumulators, allow_parallel=True, chunk_rows=CHUNK_ROWS,
    pass_rows_total=0,
):  # fmt: skip
    """Add one block's E-step statistics for every parameter set, in place.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
        One block of rows, in the dtype the parameters were built for.
    sample_weight : ndarray of shape (n,) or None
    params_list : list of KernelParams
    accumulators : list of (Stats, ndarray of shape (3,))
        From :func:`new_stats`; the kernel adds into them in block order.
    allow_parallel : bool, default=True
        False on Dask worker threads, which must never launch a parallel
        kernel (numba's threading layers are not safe there).
    chunk_rows : int, default=CHUNK_ROWS
        Rows per chunk, the kernel's unit of reduction (tests vary it).
    pass_rows_total : int, default=0
        Rows of the whole pass this block belongs to. Parallel or serial is
        decided on the pass, so a large pass's short last block runs on the
        same (parallel) kernel as its other blocks: results are bitwise the
        same either way, and a first run then compiles one of the two.
    """
    X = np.ascontiguousarray(X)
    n_decide = max(X.shape[0], pass_rows_total)
    if sample_weight is None:
        w = np.empty(0)
        n_rows = X.shape[0]
    else:
        w = np.ascontiguousarray(sample_weight, dtype=np.float64)
        n_rows = np.count_nonzero(w)
    for params, (stats, scal) in zip(params_list, accumulators, strict=True):
        parallel = allow_parallel and _use_parallel(n_decide, params, chunk_rows)
        launch(
            estep_stats, estep_stats_serial,
            X, w, *params.args(), params.min_resp_arg(), chunk_rows,
            stats.nk, stats.s1, stats.s2_mat, stats.s2_diag, scal,
            wanted=parallel,
        )  # fmt: skip
        stats.n_rows += n_rows


def finish_stats(accumulators):
    """The :class:`Stats` of filled accumulators (upper triangles mirrored)."""
    out = []
    for stats, scal in accumulators:
        stats.s2_mat = _symmetrise_upper(stats.s2_mat)
        stats.sum_w, stats.sum_wlogp, stats.sum_wrlogr = scal.tolist()  # Python floats
        out.append(stats)
    return out


def block_outputs(
    X,
    params,
    want_resp,
    allow_parallel=True,
    out=None,
    chunk_rows=CHUNK_ROWS,
    pass_rows_total=0,
    probabilities=False,
):
    """Per-row log p(x), labels and (only when asked) log-responsibilities of a block.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64
    params : KernelParams
    want_resp : bool
        Whether to form the (n, K) log-responsibilities (``predict_proba``).
    allow_parallel : bool, default=True
        As for :func:`block_stats`.
    out : tuple of three ndarrays, optional
        ``(log_prob_norm (n,), labels (n,), log_resp (n, K) or (0, K))`` to
        write into, e.g. slices of a whole-data result.
    chunk_rows : int, default=CHUNK_ROWS
        Rows per chunk (tests vary it).
    pass_rows_total : int, default=0
        As for :func:`block_stats`.
    probabilities : bool, default=False
        Write the responsibilities themselves in place of their logarithms
        (see :func:`fastmix._kernels.estep_rows`).

    Returns
    -------
    log_prob_norm, labels, log_resp : ndarrays (``log_resp`` None unless asked)
    """
    X = np.ascontiguousarray(X)
    n_rows = X.shape[0]
    n_components = params.bias.shape[0]
    if out is None:
        out = (
            np.empty(n_rows),
            np.empty(n_rows, dtype=np.int64),
            np.empty((n_rows if want_resp else 0, n_components)),
        )
    parallel = allow_parallel and _use_parallel(max(n_rows, pass_rows_total), params, chunk_rows)
    args = (*params.args(), chunk_rows, *out, bool(probabilities))
    launch(estep_rows, estep_rows_serial, X, *args, wanted=parallel)
    return out[0], out[1], (out[2] if want_resp else None)
