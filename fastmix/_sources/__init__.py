"""Data sources: how blocks of rows reach the E-step kernel.

Every ``X`` a fit or a prediction is given becomes one kind of object, a
:class:`DataSource`, with one small interface (``estep_pass``,
``estep_outputs``, ``sums``, ``take``, ``initial_stats``); the estimators see
only that interface, and the update layer only the
:class:`~fastmix._stats.Stats` a pass returns.

- :class:`ArraySource`: an in-memory ndarray;
- :class:`BlockSource`: a file-backed ``np.memmap`` or another row-sliceable
  array-like (an h5py dataset, a zarr array), read one block of rows at a time
  so that memory stays bounded by the block, not by ``n_samples``;
- :class:`DaskSource`: a ``dask.array.Array``, persisted on the cluster once
  per fit; each pass maps the serial kernels over its blocks and computes once.

One block driver (:mod:`._driver`) calls the kernels for all three, and one
initialisation (:mod:`._init`) serves them all. A pass takes a list of
parameter sets so that several models share one read of the data.

Modules: ``_driver`` (the kernels' one caller), ``_init`` (initial
statistics), ``_base`` (the interface), ``_memory`` (in-process sources),
``_dask`` (Dask).
"""

import numpy as np

from .._validation import check_2d, check_n_components, check_sample_weight, fit_dtype
from ._base import DataSource
from ._dask import DaskSource, is_dask
from ._driver import CHUNK_ROWS, block_rows
from ._init import INIT_SAMPLE_ROWS, InitRequest, init_sample_rows
from ._memory import ArraySource, BlockSource

__all__ = [
    "CHUNK_ROWS",
    "INIT_SAMPLE_ROWS",
    "ArraySource",
    "BlockSource",
    "DaskSource",
    "DataSource",
    "InitRequest",
    "block_rows",
    "init_sample_rows",
    "is_out_of_core",
    "estep_outputs",
    "estep_pass",
    "open_for_fit",
    "open_for_predict",
]


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
    if is_dask(X):
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


def open_for_fit(X, sample_weight, n_components, name, *, min_samples=2, dtype=None):
    """The data source of an out-of-core ``X`` (and its weights) for ``fit``.

    Checks shape, dtype and finiteness block by block (on the workers for a
    dask array, which is persisted here, once per fit) and validates
    ``sample_weight``, without loading ``X`` whole. ``name`` is the
    estimator's class name, for scikit-learn's messages; ``min_samples`` and
    ``dtype`` (default: scikit-learn's policy for ``X.dtype``) serve the later
    batches of ``partial_fit``.
    """
    check_2d(X, name, min_samples=min_samples)
    dtype = fit_dtype(X.dtype) if dtype is None else np.dtype(dtype)
    if is_dask(X):
        return DaskSource.for_fit(X, dtype, sample_weight, n_components, name)
    source = BlockSource(X, dtype)
    check_n_components(source.n_samples, n_components)
    source.check_finite(name)
    source.sample_weight = check_sample_weight(sample_weight, source.n_samples, n_components)
    return source


def open_for_predict(X, name, model_dtype=None):
    """The data source of an out-of-core ``X`` for prediction (checked finite while read).

    Its blocks are read in NumPy's promotion of their dtype and
    ``model_dtype`` (the fitted parameters'), as scikit-learn computes.
    """
    check_2d(X, name, min_samples=1)
    dtype = fit_dtype(X.dtype)
    if model_dtype is not None:
        dtype = np.result_type(dtype, model_dtype)
    if is_dask(X):
        return DaskSource.for_predict(X, dtype, name)
    return BlockSource(X, dtype, check_name=name)


def estep_pass(X, sample_weight, params, chunk_rows=CHUNK_ROWS, rows_per_block=None):
    """One E-step over an in-memory ``X``: the :class:`~fastmix._stats.Stats` of ``params``.

    A shorthand for ``ArraySource(X, sample_weight).estep_pass([params])[0]``
    (tests, benchmarks); ``chunk_rows`` and ``rows_per_block`` as there.
    """
    source = ArraySource(np.asarray(X), sample_weight)
    (stats,) = source.estep_pass([params], chunk_rows=chunk_rows, rows_per_block=rows_per_block)
    return stats


def estep_outputs(X, params, want_resp, chunk_rows=CHUNK_ROWS):
    """Per-row ``(log p(x), labels, log-responsibilities or None)`` of an in-memory ``X``."""
    return ArraySource(np.asarray(X)).estep_outputs(params, want_resp, chunk_rows=chunk_rows)
