"""A dask array as a data source: the block driver mapped over its blocks.

For a fit the array (and the weights) are persisted on the cluster once
(:meth:`DaskSource.for_fit`). Each pass maps the *serial* (nogil) kernels of
:mod:`._driver` over the persisted blocks on the workers, sums the per-block
results in a fixed binary tree and computes once; the update runs on the
client. Never a ``parallel=True`` kernel on a worker thread: numba's default
threading layer aborts when two threads launch one at once.
"""

import math
import operator
import sys

import numpy as np
from sklearn.utils import assert_all_finite

from .._validation import (
    check_2d,
    check_n_components,
    check_weight_array,
    check_weight_summary,
    weight_summary,
)
from ._base import DataSource, add_parts, block_sums
from ._driver import block_outputs, block_stats, finish_stats, new_stats
from ._init import SeededUniform, StatedUniform, init_sample_rows

__all__ = ["DaskSource", "is_dask"]


def _dask_array_type():
    """``dask.array.Array`` if dask.array was imported by someone, else None.

    fastmix never imports dask itself unless it is handed a dask array.
    """
    module = sys.modules.get("dask.array")
    return getattr(module, "Array", None)


def is_dask(X):
    array_type = _dask_array_type()
    return array_type is not None and isinstance(X, array_type)


def _pass_block(X, sample_weight, params_list):
    """A block's list of Stats, one per parameter set, by the serial kernel (on a worker)."""
    accumulators = new_stats(params_list)
    block_stats(X, sample_weight, params_list, accumulators, allow_parallel=False)
    return finish_stats(accumulators)


def _output_block(X, params, which, check_name, probabilities=False):
    """One per-row output of a block, by the serial kernel (on a worker).

    ``which``: 0 log p(x), 1 labels, 2 log-responsibilities (with
    ``probabilities``, the responsibilities themselves, as the kernel forms
    them: no exp of the block after it).
    """
    if check_name is not None:
        assert_all_finite(X, input_name="X", estimator_name=check_name)
    outputs = block_outputs(
        X, params, which == 2, allow_parallel=False, probabilities=probabilities
    )
    return outputs[which]


def _map_block(X, func, check_name):
    """``func`` of one block (one float64 per row), on a worker."""
    if check_name is not None:
        assert_all_finite(X, input_name="X", estimator_name=check_name)
    return np.asarray(func(X), dtype=np.float64)


def _block_check(X, sample_weight, name):
    """Validate one block on its worker; returns (rows, nonfinite w, negative w, positive w)."""
    assert_all_finite(X, input_name="X", estimator_name=name)
    n_rows = X.shape[0]
    if sample_weight is None:
        return n_rows, 0, 0, n_rows
    return (n_rows, *weight_summary(np.asarray(sample_weight, dtype=np.float64)))


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

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        In ``dtype``, one block along the features.
    dtype : numpy dtype
    client : distributed.Client or None
        Where passes are computed (None: dask's default scheduler).
    sample_weight : dask.array.Array of shape (n_samples,) or None
        Chunked like the rows of ``X``.
    check_name : str, optional
        When given, per-row output tasks check their block finite (prediction).
    """

    def __init__(self, X, dtype, client, sample_weight=None, check_name=None):
        self._X = X
        self.dtype = np.dtype(dtype)
        self.shape = X.shape
        self.n_samples = X.shape[0]
        self._client = client
        self.sample_weight = sample_weight
        self._check_name = check_name
        self._x_blocks = X.to_delayed().ravel().tolist()
        self._w_blocks = [None] * len(self._x_blocks)
        if sample_weight is not None:
            self._w_blocks = sample_weight.to_delayed().ravel().tolist()

    @classmethod
    def for_fit(cls, X, dtype, sample_weight, n_components, name):
        """Persist ``X`` (and weights) on the cluster and validate them there."""
        import dask

        X = _row_blocks(X, dtype)
        client = _client_for(X)
        scheduler = {} if client is None else {"scheduler": client}
        (X,) = dask.persist(X, **scheduler)
        X = with_known_rows(X)
        n_samples = int(X.shape[0])
        check_2d(X, name, min_samples=2)
        check_n_components(n_samples, n_components)
        weights = None
        if sample_weight is not None:
            weights = _dask_weights(sample_weight, X.chunks[0], n_samples)
            (weights,) = dask.persist(weights, **scheduler)
        source = cls(X, dtype, client, weights)
        check = dask.delayed(_block_check, pure=True)
        blocks = zip(source._x_blocks, source._w_blocks, strict=True)
        (summary,) = _compute(client, [check(xb, wb, name) for xb, wb in blocks])
        if weights is not None:
            with np.errstate(over="ignore"):
                totals = np.array(summary, dtype=np.float64)[:, 1:].sum(axis=0)
            check_weight_summary(totals, n_components)
        return source

    @classmethod
    def for_predict(cls, X, dtype, name):
        return cls(_row_blocks(X, dtype), dtype, client=None, check_name=name)

    def _tasks(self, func, *args):
        """``func(block, weights, *args)`` per block, as delayed tasks in row order."""
        import dask

        task = dask.delayed(func, pure=True)
        blocks = zip(self._x_blocks, self._w_blocks, strict=True)
        return [task(xb, wb, *args) for xb, wb in blocks]

    def estep_pass(self, params_list):
        """One E-step per parameter set over the cluster: one compute in all."""
        import dask

        params = dask.delayed(list(params_list), traverse=False)
        parts = self._tasks(_pass_block, params)
        (stats,) = _compute(self._client, _tree_sum(parts, add_parts))
        return stats

    def estep_outputs(self, params, want_resp, *, dtype=None):
        """Lazy per-row outputs: (log p(x), labels, log-responsibilities or None).

        With ``dtype``, ``log p(x)`` in ``dtype`` and the responsibilities
        themselves (not their log) in ``dtype``, formed block by block.
        """
        import dask

        X = self._X
        args = dask.delayed(params, traverse=False)
        kw = dict(check_name=self._check_name)
        log_prob_norm = X.map_blocks(
            _output_block, args, which=0, drop_axis=1, dtype=np.float64,
            meta=np.empty(0), **kw,
        )  # fmt: skip
        labels = X.map_blocks(
            _output_block, args, which=1, drop_axis=1, dtype=np.int64,
            meta=np.empty(0, dtype=np.int64), **kw,
        )  # fmt: skip
        resp = None  # the log-responsibilities, or with dtype the responsibilities
        if want_resp:
            resp = X.map_blocks(
                _output_block, args, which=2, chunks=(X.chunks[0], (params.bias.shape[0],)),
                dtype=np.float64, meta=np.empty((0, 0)), probabilities=dtype is not None, **kw,
            )  # fmt: skip
        if dtype is not None:
            log_prob_norm = log_prob_norm.astype(dtype)
            if want_resp:
                resp = resp.astype(dtype)
        return log_prob_norm, labels, resp

    def map_rows(self, func):
        """Lazy ``func(block)`` (one float64 per row) over the blocks, a (n,) dask array."""
        import dask

        func = dask.delayed(func, traverse=False)
        return self._X.map_blocks(
            _map_block, func, self._check_name, drop_axis=1, dtype=np.float64, meta=np.empty(0)
        )

    def sums(self):
        ((sum_w, total),) = _compute(self._client, _tree_sum(self._tasks(block_sums), add_parts))
        return sum_w, total

    def reduce_blocks(self, func, plan, *args):
        import dask

        args = [dask.delayed(a, traverse=False) for a in args]
        parts = []
        start = 0
        task = dask.delayed(func, pure=True)
        for index, (xb, wb) in enumerate(zip(self._x_blocks, self._w_blocks, strict=True)):
            stop = start + int(self._X.chunks[0][index])
            local = dask.delayed(plan.for_block(start, stop, index), traverse=False)
            parts.append(task(xb, wb, local, *args, False))
            start = stop
        (stats,) = _compute(self._client, _tree_sum(parts, operator.add))
        return stats

    def take(self, rows):
        weights = self.sample_weight
        sample = self._X
        if rows is not None:
            sample = sample[rows]
            weights = None if weights is None else weights[rows]
        sample, weights = _compute(self._client, sample, weights)
        return np.ascontiguousarray(sample), weights

    def init_sample_size(self, n_components):
        n_samples, n_features = self.shape
        return init_sample_rows(n_samples, n_features, self.dtype.itemsize, n_components)

    def _weights_in_memory(self):
        (weights,) = _compute(self._client, self.sample_weight)
        return weights

    def random_plan(self, random_state, n_components):
        if self.init_sample_size(n_components) == self.n_samples:
            # Small data: scikit-learn's draw, each block's rows drawn on its
            # worker from the state the draw reaches them at.
            return StatedUniform.of(random_state, self._X.chunks[0], n_components, self.dtype)
        seeds = random_state.randint(np.iinfo(np.int32).max, size=len(self._x_blocks))
        return SeededUniform(seeds, n_components)


def with_known_rows(a):
    """Dask array ``a``, its row chunks' sizes computed where dask does not know them.

    A masked selection (``a[a[:, 0] > 0]``) has NaN sizes, and so NaN in
    ``a.shape[0]``; ``compute_chunk_sizes`` computes ``a`` once to count them.
    """
    if any(math.isnan(c) for c in a.chunks[0]):
        return a.compute_chunk_sizes()
    return a


def _dask_weights(sample_weight, row_chunks, n_samples):
    """``sample_weight`` as a float64 dask array chunked like the rows of X."""
    import dask.array as da

    w = sample_weight if is_dask(sample_weight) else np.asarray(sample_weight)
    if is_dask(w) and w.ndim == 1:
        w = with_known_rows(w)  # as X's are: its shape was (nan,)
    check_weight_array(w, n_samples)
    if is_dask(w):
        return w.astype(np.float64).rechunk((row_chunks,))
    return da.from_array(w.astype(np.float64), chunks=(row_chunks,))
