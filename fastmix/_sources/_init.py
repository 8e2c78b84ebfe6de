"""Initial statistics: one path for every data source.

``init_params`` becomes a *plan*, a small typed object saying how each row's
initial responsibilities are made; a source then sums the plan's statistics
over its blocks (in row order in process, in a fixed tree on a Dask cluster).

- ``'kmeans'``: k-means (scikit-learn's ``KMeans`` with ``n_init=1``, as
  :func:`fastmix._kmeans.kmeans` runs it) on the source's *init sample*. An
  in-memory array's sample is every row, so its labels are used directly
  (:class:`Labels`), as scikit-learn does. A memmap or dask array larger than
  :data:`INIT_SAMPLE_ROWS` rows (fewer for wide rows, see
  :func:`init_sample_rows`) gives k-means a uniform sample without
  replacement, then one streamed pass assigns every row to its nearest centre
  (:class:`NearestCentre`).
- ``'k-means++'``: k-means++ seeding on the same sample; the chosen rows get
  one-hot responsibilities (:class:`ChosenRows`), as in scikit-learn.
- ``'random_from_data'``: ``n_components`` distinct rows drawn uniformly from
  all rows (:class:`ChosenRows`, no sample needed).
- ``'random'``: uniform responsibilities. In process they are drawn from
  ``random_state`` in row order, block by block (:class:`UniformDraw`): the
  very stream scikit-learn draws. On a Dask cluster each block draws from a
  seed taken from ``random_state`` (:class:`SeededUniform`), so the draw
  depends on the chunking, except for data no larger than the init sample,
  whose responsibilities are scikit-learn's draw: each block draws its rows
  from the state the client's walk through that draw reached them at
  (:class:`StatedUniform`). Either way a block forms its responsibilities a
  bounded piece of rows at a time, never an (n_samples, K) array.

When a memmap or dask array has at most the sample size of rows, the "sample"
is every row, in order, and no random number is consumed to draw it: the
initialisation is then scikit-learn's, as for an in-memory array.
"""

from dataclasses import dataclass

import numpy as np

from .._kernels import DIAG, TIED
from .._kmeans import kmeans, kmeans_plusplus_indices
from .._stats import KernelParams, _resp_stats, normalise_rows, stats_from_labels
from ._driver import block_outputs, use_parallel_labels

__all__ = [
    "INIT_SAMPLE_ROWS",
    "ChosenRows",
    "InitRequest",
    "Labels",
    "NearestCentre",
    "Resp",
    "SeededUniform",
    "StatedUniform",
    "UniformDraw",
    "choice",
    "init_sample_rows",
    "initial_stats",
]

# Rows of the uniform sample that k-means / k-means++ initialisation sees.
INIT_SAMPLE_ROWS = 100_000
# ... and at most this many bytes of it (wide rows get fewer).
_INIT_SAMPLE_BYTES = 64 * 2**20
# Population up to which RandomState.choice (O(n) memory) is used as is.
_EXACT_CHOICE_MAX = 2**22


def init_sample_rows(n_samples, n_features, itemsize, n_components):
    """Rows in the uniform sample seen by k-means / k-means++ initialisation.

    ``min(n_samples, INIT_SAMPLE_ROWS)``, lowered so the sample stays under
    64 MiB for wide rows, but never below ``20 * n_components``.
    """
    by_bytes = _INIT_SAMPLE_BYTES // max(1, n_features * itemsize)
    return int(min(n_samples, max(20 * n_components, min(INIT_SAMPLE_ROWS, by_bytes))))


def choice(n_samples, size, random_state, exact=False):
    """``size`` distinct row indices drawn uniformly, in draw order.

    ``random_state.choice`` as scikit-learn calls it when ``exact`` or for
    populations it can permute in memory; above that a generator seeded from
    ``random_state`` (Floyd's algorithm, O(size) memory).
    """
    if exact or n_samples <= _EXACT_CHOICE_MAX:
        return random_state.choice(n_samples, size=size, replace=False)
    seed = random_state.randint(np.iinfo(np.int32).max)
    return np.random.default_rng(seed).choice(n_samples, size=size, replace=False)


# ------------------------------------------------------------------ the plans
# Each plan has ``for_block(start, stop, index)``, the plan of rows start:stop
# (the ``index``-th block), and ``block_stats(X, w, code, shift,
# allow_parallel)``, the unsettled Stats of one block under a block's plan.
@dataclass(frozen=True)
class Labels:
    """Row ``i`` belongs wholly to component ``labels[i]`` (-1: to none)."""

    labels: np.ndarray

    def for_block(self, start, stop, index):
        return Labels(self.labels[start:stop])

    def block_stats(self, X, w, code, shift, allow_parallel):
        parallel = use_parallel_labels(X, code, allow_parallel)
        return stats_from_labels(X, w, self.labels, code, shift, parallel)


@dataclass(frozen=True)
class ChosenRows:
    """Row ``rows[j]`` belongs wholly to component ``components[j]``; other rows to none."""

    rows: np.ndarray
    components: np.ndarray

    def for_block(self, start, stop, index):
        inside = (self.rows >= start) & (self.rows < stop)
        return ChosenRows(self.rows[inside] - start, self.components[inside])

    def block_stats(self, X, w, code, shift, allow_parallel):
        labels = np.full(X.shape[0], -1, dtype=np.int64)
        labels[self.rows] = self.components
        return Labels(labels).block_stats(X, w, code, shift, allow_parallel)


@dataclass(frozen=True)
class NearestCentre:
    """Each row belongs wholly to its nearest centre (``params``' labels)."""

    params: KernelParams

    @classmethod
    def of(cls, centres, dtype):
        """Identity precisions and equal biases: log p_k(x) = -||x - c_k||^2 / 2."""
        n_components, n_features = centres.shape
        ones = np.ones((n_components, n_features))
        return cls(KernelParams.build(DIAG, centres, ones, np.zeros(n_components), dtype))

    def for_block(self, start, stop, index):
        return self

    def block_stats(self, X, w, code, shift, allow_parallel):
        _, labels, _ = block_outputs(X, self.params, False, allow_parallel)
        return Labels(labels).block_stats(X, w, code, shift, allow_parallel)


@dataclass(frozen=True)
class Resp:
    """Given responsibilities, one row per data row."""

    resp: np.ndarray

    def for_block(self, start, stop, index):
        return Resp(self.resp[start:stop])

    def block_stats(self, X, w, code, shift, allow_parallel):
        r = self.resp
        return _resp_stats(X, w, lambda a, b: r[a:b], code, shift, max(X.shape[0], 1))


@dataclass(frozen=True)
class UniformDraw:
    """scikit-learn's uniform responsibilities, drawn from ``random_state`` in row order.

    Blocks must be planned in row order: each ``for_block`` draws its rows.
    """

    random_state: np.random.RandomState
    n_components: int
    dtype: np.dtype

    def for_block(self, start, stop, index):
        r = self.random_state.uniform(size=(stop - start, self.n_components))
        return Resp(normalise_rows(np.asarray(r, dtype=self.dtype)))

    def rows_cap(self):
        return _resp_rows_cap(self.n_components)


@dataclass(frozen=True)
class StatedUniform:
    """scikit-learn's uniform responsibilities, each block drawn where it starts.

    :meth:`of` walks ``random_state`` through scikit-learn's row-order draw,
    keeping the state at each block's first row and discarding the numbers;
    each block (a Dask task) then draws its own rows from its state: the very
    numbers of one (n_samples, K) draw, never held whole.
    """

    n_components: int
    dtype: np.dtype
    states: tuple = ()
    state: tuple = None

    @classmethod
    def of(cls, random_state, block_rows, n_components, dtype):
        states = []
        for rows in block_rows:
            states.append(random_state.get_state(legacy=True))
            count = int(rows) * n_components
            while count > 0:  # the same numbers consumed as uniform(size=count)
                random_state.random_sample(min(count, _SKIP_PIECE))
                count -= _SKIP_PIECE
        return cls(n_components, np.dtype(dtype), tuple(states))

    def for_block(self, start, stop, index):
        return StatedUniform(self.n_components, self.dtype, state=self.states[index])

    def block_stats(self, X, w, code, shift, allow_parallel):
        random_state = np.random.RandomState()
        random_state.set_state(self.state)
        return _uniform_stats(random_state, self.n_components, self.dtype, X, w, code, shift)


# Numbers drawn and dropped at a time by StatedUniform.of (8 MiB).
_SKIP_PIECE = 1 << 20
# Bytes of one (rows, K) float64 piece of initial responsibilities (8192 rows
# at K = 64, as an in-memory array's blocks): a few such temporaries live at
# once per thread. Uncapped, 4 MiB of a narrow memmap's rows at K = 32 held
# 2.4 times an (n, K) array of 600,000 rows.
_RESP_BLOCK_BYTES = 4 * 2**20


def _resp_rows_cap(n_components):
    """Rows per block at most for a plan that forms a block's (rows, K) responsibilities."""
    return max(512, _RESP_BLOCK_BYTES // (8 * max(1, n_components)))


def _uniform_stats(random_state, n_components, dtype, X, w, code, shift):
    """Statistics of uniform responsibilities drawn from ``random_state`` for X's rows in order.

    A bounded piece of rows at a time (a Dask block is the user's chunk, which
    at large K would hold several (chunk, K) temporaries): the same numbers as
    one draw for the whole block. On a Dask worker: serial kernels.
    """
    n_rows = X.shape[0]
    step = _resp_rows_cap(n_components)
    total = None
    for start in range(0, max(n_rows, 1), step):
        stop = min(start + step, n_rows)
        r = normalise_rows(
            np.asarray(random_state.uniform(size=(stop - start, n_components)), dtype)
        )
        part = Resp(r).block_stats(
            X[start:stop], None if w is None else w[start:stop], code, shift, False
        )
        total = part if total is None else total + part
    return total


@dataclass(frozen=True)
class SeededUniform:
    """Uniform responsibilities, block ``index`` drawn from ``seeds[index]``."""

    seeds: np.ndarray
    n_components: int
    seed: int = -1

    def for_block(self, start, stop, index):
        return SeededUniform(self.seeds, self.n_components, int(self.seeds[index]))

    def block_stats(self, X, w, code, shift, allow_parallel):
        random_state = np.random.RandomState(self.seed)
        return _uniform_stats(random_state, self.n_components, X.dtype, X, w, code, shift)


@dataclass(frozen=True)
class InitRequest:
    """What one model's initialisation asks of a source.

    ``init_params`` as the estimators take it, ``n_components``, the
    covariance ``code`` of the statistics and the ``random_state`` (a
    ``RandomState``) the plan consumes, as scikit-learn consumes it.
    """

    init_params: str
    n_components: int
    code: int
    random_state: np.random.RandomState


class _Sums(tuple):
    """Statistics of several plans from one read, added element by element."""

    def __add__(self, other):
        return _Sums(a + b for a, b in zip(self, other, strict=True))


@dataclass(frozen=True)
class _PlanGroup:
    """Several models' plans, each with its covariance code and shift."""

    items: tuple

    def for_block(self, start, stop, index):
        return _PlanGroup(tuple((p.for_block(start, stop, index), c, s) for p, c, s in self.items))

    def block_stats(self, X, w, allow_parallel):
        return _Sums(p.block_stats(X, w, c, s, allow_parallel) for p, c, s in self.items)

    def rows_cap(self):
        """Rows per block at most (plans holding a block's (rows, K) responsibilities), or None."""
        caps = [p.rows_cap() for p, _, _ in self.items if hasattr(p, "rows_cap")]
        return min(caps, default=None)


def _plan(source, request, take):
    """The plan of ``request`` for ``source`` (module notes), consuming its random_state.

    Returns ``(plan, centres)``: ``centres`` (K, D) are where each component's
    rows lie (k-means' centres, the chosen rows), or None where the plan has
    none ('random'). ``take`` is the source's ``take``, shared by the plans of
    one pass: models seeded alike draw the same sample, which is read once.
    """
    init_params, n_components, random_state = (
        request.init_params, request.n_components, request.random_state
    )  # fmt: skip
    n_samples = source.n_samples
    if init_params == "random":
        return source.random_plan(random_state, n_components), None
    if init_params == "random_from_data":
        rows = np.asarray(source.choose(n_components, random_state), dtype=np.int64)
        order = np.argsort(rows)
        centres = np.empty((n_components, source.shape[1]), dtype=source.dtype)
        centres[order] = take(rows[order])[0]  # take reads rows in increasing order
        return ChosenRows(rows, np.arange(n_components)), centres
    size = source.init_sample_size(n_components)
    rows = None
    if size < n_samples:
        rows = np.sort(choice(n_samples, size, random_state))
    sample, weights = take(rows)
    if init_params == "kmeans":
        labels, centres = kmeans(sample, n_components, random_state, weights)
        if rows is None:
            return Labels(labels), centres
        return NearestCentre.of(centres, source.dtype), centres
    chosen = kmeans_plusplus_indices(sample, n_components, random_state, weights)
    centres = sample[chosen]
    chosen = chosen if rows is None else rows[chosen]
    return ChosenRows(np.asarray(chosen, dtype=np.int64), np.arange(n_components)), centres


def _seeded_plan(source, request, take, seeded):
    """:func:`_plan`, reusing a k-means or k-means++ plan made for the same K from
    the same random state.

    Such a plan depends on the data, K and the random stream only, not on the
    covariance type: the candidates of a model selection that share a seed (one
    per covariance type) would each run the same k-means. The first runs it; the
    others take its plan and have their random state set to where that run left
    it, so each model ends exactly as it would alone.
    """
    if request.init_params not in ("kmeans", "k-means++"):
        return _plan(source, request, take)
    random_state = request.random_state
    _, mt_key, pos, has_gauss, cached = random_state.get_state(legacy=True)
    key = (request.init_params, request.n_components, mt_key.tobytes(), pos, has_gauss, cached)
    if key in seeded:
        plan, after = seeded[key]
        random_state.set_state(after)
        return plan
    plan = _plan(source, request, take)
    seeded[key] = (plan, random_state.get_state(legacy=True))
    return plan


def _group_block_stats(X, w, group, allow_parallel):
    return group.block_stats(X, w, allow_parallel)


def initial_stats(source, requests):
    """Statistics of the initial responsibilities of ``source``'s rows, per request.

    Each request's ``random_state`` is consumed as scikit-learn consumes it
    for in-memory data (module notes). The statistics are accumulated around
    the weighted data mean, rounded to the data's dtype. Every request is
    served by one pass over the data (and one pass for the mean), whatever
    their number; a sample drawn alike by several requests is read once.
    """
    centre = source.centre().astype(source.dtype).astype(np.float64)
    taken = {}

    def take(rows):
        key = None if rows is None else rows.tobytes()
        if key not in taken:
            taken[key] = source.take(rows)
        return taken[key]

    items = []
    seeded = {}
    for request in requests:
        plan, centres = _seeded_plan(source, request, take, seeded)
        if centres is None or request.code == TIED:
            # 'tied' pools its second moment around one centre for every row.
            shift = np.broadcast_to(centre, (request.n_components, source.shape[1]))
        else:
            # Each component's sums around its own rows' centre: around the
            # data mean, a component of one row far from it (1e5 away) kept a
            # variance of rounding, eps * 1e10, where its true one is 0.
            shift = np.asarray(centres, dtype=source.dtype).astype(np.float64)
        items.append((plan, request.code, shift))
    sums = source.reduce_blocks(_group_block_stats, _PlanGroup(tuple(items)))
    return [stats.settle() for stats in sums]
