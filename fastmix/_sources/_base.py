"""The interface every data source offers the estimators."""

import numpy as np

from ._init import choice, initial_stats


class DataSource:
    """Rows (and their sample weights) as a fit or a prediction sees them.

    The estimators talk to this interface only; the update layer sees the
    :class:`~fastmix._stats.Stats` it returns. A subclass says how blocks of
    rows are reached and provides:

    ``estep_pass(params_list)``
        One E-step over every row for each parameter set, the data read once
        for all of them; returns one ``Stats`` per set.
    ``estep_outputs(params, want_resp)``
        Per-row ``(log p(x), labels, log-responsibilities or None)``.
    ``map_rows(func)``
        ``func(block)``, one float64 per row, over every row (lazy for a dask
        array): per-row outputs that the kernels do not compute.
    ``sums()``
        ``(sum w, sum_i w_i x_i)`` in float64.
    ``take(rows)``
        The rows at sorted indices ``rows`` (every row when None) in memory,
        and their weights.
    ``reduce_blocks(func, plan, *args)``
        ``func(block, w, plan.for_block(start, stop, index), *args,
        allow_parallel)`` summed over the blocks in a fixed order.
    ``initial_stats(requests)``
        The statistics of several models' initial responsibilities, one read
        of the data for all of them.
    ``init_sample_size(n_components)``, ``choose(size, random_state)``,
    ``random_plan(random_state, n_components)``
        The source's answers to the initialisation's questions
        (:mod:`fastmix._sources._init`).

    Attributes
    ----------
    shape : tuple of int
    n_samples : int
    dtype : numpy dtype
        float64 or float32: the dtype blocks reach the kernel in.
    sample_weight : ndarray, dask array or None
        Validated weights (None: every weight 1).
    """

    ndim = 2
    # Whether choose() draws by random_state.choice at any size (as scikit-learn).
    _exact_choice = False

    def __len__(self):
        return self.n_samples

    def choose(self, size, random_state):
        """``size`` distinct row indices drawn uniformly, in draw order (``random_from_data``).

        Drawn among the rows of positive weight: a zero weight drops its row.
        With every weight positive (or none given) the draw is scikit-learn's.
        """
        positive = self.positive_rows()
        n = self.n_samples if positive is None else len(positive)
        rows = choice(n, size, random_state, exact=self._exact_choice)
        return rows if positive is None else positive[rows]

    def positive_rows(self):
        """Indices of the rows with a positive weight; None when that is every row."""
        if self.sample_weight is None:
            return None
        positive = self._weights_in_memory() > 0
        return None if positive.all() else np.flatnonzero(positive)

    def _weights_in_memory(self):
        return np.asarray(self.sample_weight)

    def centre(self):
        """The weighted mean of the rows, float64."""
        sum_w, total = self.sums()
        return total / sum_w

    def initial_stats(self, requests):
        """Initial statistics, one per :class:`~._init.InitRequest`, from one read.

        See :func:`~._init.initial_stats`.
        """
        return initial_stats(self, requests)


def block_sums(X, sample_weight):
    """``(sum w, sum_i w_i x_i)`` of one block, in float64.

    The same sums in the same order with or without weights, so weights of 1
    give bitwise the unweighted centre (and fit). Block by block: whole-data
    np.average formed ``w * X`` whole, a float64 copy of float32 data.
    """
    X = np.asarray(X, dtype=np.float64)
    if sample_weight is None:
        return float(X.shape[0]), X.sum(axis=0)
    w = np.asarray(sample_weight, dtype=np.float64)
    return float(w.sum()), (X * w[:, None]).sum(axis=0)


def add_parts(a, b):
    """Element-wise sum of two equal-length tuples or lists (of arrays, numbers, Stats)."""
    return type(a)(x + y for x, y in zip(a, b, strict=True))
