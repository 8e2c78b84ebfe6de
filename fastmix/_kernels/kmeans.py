"""k-means kernels behind the default ``init_params='kmeans'`` initialisation.

:mod:`fastmix._kmeans` runs scikit-learn's ``KMeans(n_init=1)`` algorithm step
for step (greedy k-means++ seeding, then Lloyd iterations) and calls these
kernels for the three passes over the data that cost anything:

- :func:`seed_trial`: squared distances of every row to a few candidate
  centres, clipped by each row's distance to the centres chosen so far, and
  their weighted sums (the k-means++ "potential" of each candidate);
- :func:`seed_draw`: the rows where the running sum of ``w * closest`` first
  reaches given targets (``np.searchsorted(np.cumsum(...))`` without the
  (n,) cumulative sum);
- :func:`lloyd_pass`: every row's nearest centre (first one on ties, as
  scikit-learn's strict ``<``), the number of labels that changed and the
  weighted per-centre sums.

Rows are centred on ``mean`` as they are read (scikit-learn subtracts the data
mean from a copy of ``X``; here no copy is made) and distances are summed as
``sum_j (x_j - c_j)**2`` in float64, which never cancels, where scikit-learn
uses ``|c|**2 - 2 x.c`` through BLAS. The two agree except on rows whose two
nearest centres are equally far to within rounding.

Work is split into fixed chunks of :data:`CHUNK` rows, transposed to (D, B)
so the inner loops run over contiguous rows and vectorise. Partial sums are
kept per group of consecutive chunks and added in group order, so results do
not depend on the thread count.
"""

import numpy as np

from .._numba import jit, prange, prefer_wide_vectors, serial_twin

# Rows per chunk: a (16, 256) float64 tile is 32 KiB and stays in L1.
CHUNK = 256
# Consecutive chunks one parallel task runs, adding into one partial slot (as
# in the E-step): the per-centre partial sums shrink 8-fold.
_GROUP = 8


@jit
def _chunk_groups(n_samples):
    """``(chunks, groups of _GROUP chunks)`` covering ``n_samples`` rows."""
    n_chunks = (n_samples + CHUNK - 1) // CHUNK
    return n_chunks, (n_chunks + _GROUP - 1) // _GROUP


@jit
def _centred_tile(rows, mean, xt):
    """``xt[j, i] = rows[i, j] - mean[j]``: the chunk transposed, centred in its dtype."""
    for i in range(rows.shape[0]):
        row = rows[i]
        for j in range(rows.shape[1]):
            xt[j, i] = row[j] - mean[j]


@jit
def _sq_dist(xt, m, centre, acc):
    """``acc[i] = sum_j (xt[j, i] - centre[j])**2`` for the tile's first ``m`` rows."""
    n_features = xt.shape[0]
    # Four features per sweep over ``acc``: one load and store of it per four
    # squares instead of per square (1.4x faster at D = 16).
    d4 = n_features - n_features % 4
    for i in range(m):
        acc[i] = 0.0
    for j in range(0, d4, 4):
        c0 = centre[j]
        c1 = centre[j + 1]
        c2 = centre[j + 2]
        c3 = centre[j + 3]
        r0 = xt[j]
        r1 = xt[j + 1]
        r2 = xt[j + 2]
        r3 = xt[j + 3]
        for i in range(m):
            t0 = r0[i] - c0
            t1 = r1[i] - c1
            t2 = r2[i] - c2
            t3 = r3[i] - c3
            acc[i] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
    for j in range(d4, n_features):
        c = centre[j]
        col = xt[j]
        for i in range(m):
            t = col[i] - c
            acc[i] += t * t


@jit(parallel=True)
def seed_trial(X, mean, sample_weight, closest, centres, dist):
    """Distances to candidate centres, clipped by ``closest``, and their weighted sums.

    Parameters
    ----------
    X : ndarray of shape (n, D), C-contiguous
        The data. Read only.
    mean : ndarray of shape (D,), X.dtype
        Subtracted from every row before the distances.
    sample_weight : ndarray of shape (n,) or (0,), float64
        Per-row weights; an empty array means every weight is 1.
    closest : ndarray of shape (n,), float64
        Squared distance of each row to its nearest centre chosen so far
        (``inf`` before the first).
    centres : ndarray of shape (m, D), X.dtype
        Candidate centres, centred coordinates.
    dist : ndarray of shape (m, n), float64
        Written: ``dist[j, i] = min(closest[i], |x_i - mean - centres[j]|**2)``.

    Returns
    -------
    pots : ndarray of shape (m,), float64
        ``pots[j] = sum_i w_i dist[j, i]``, summed per group of chunks, then in
        group order.
    """
    prefer_wide_vectors()
    n_samples, n_features = X.shape
    n_trials = centres.shape[0]
    has_weight = sample_weight.shape[0] > 0
    n_chunks, n_groups = _chunk_groups(n_samples)
    partial = np.zeros((n_groups, n_trials))
    for g in prange(n_groups):
        xt = np.empty((n_features, CHUNK), dtype=X.dtype)
        acc = np.empty(CHUNK)
        pot = partial[g]
        for c in range(g * _GROUP, min((g + 1) * _GROUP, n_chunks)):
            lo = c * CHUNK
            hi = min(lo + CHUNK, n_samples)
            m = hi - lo
            _centred_tile(X[lo:hi], mean, xt)
            near = closest[lo:hi]
            w = sample_weight[lo:hi]
            for t in range(n_trials):
                _sq_dist(xt, m, centres[t], acc)
                out = dist[t, lo:hi]
                s = 0.0
                if has_weight:
                    for i in range(m):
                        v = min(near[i], acc[i])
                        out[i] = v
                        s += w[i] * v
                else:
                    for i in range(m):
                        v = min(near[i], acc[i])
                        out[i] = v
                        s += v
                pot[t] += s
    pots = np.zeros(n_trials)
    for g in range(n_groups):
        pots += partial[g]
    return pots


@jit
def _ascending_order(a):
    """``np.argsort(a)`` by insertion: ``a`` holds a few trials' targets.

    numba's ``np.argsort`` compiles a quicksort (2.6 s of a first fit) for
    an array of 2 + log(K) values.
    """
    order = np.arange(a.shape[0])
    for i in range(1, a.shape[0]):
        j = i
        while j > 0 and a[order[j - 1]] > a[order[j]]:
            order[j - 1], order[j] = order[j], order[j - 1]
            j -= 1
    return order


@jit(reassoc=False)
def seed_draw(closest, sample_weight, targets, margin):
    """``np.searchsorted(np.cumsum(w * closest), targets)`` clipped to ``n - 1``.

    The running sum is formed in index order as ``np.cumsum`` forms it, but
    never stored.

    Returns
    -------
    ids : ndarray of shape (len(targets),), int64
        The first index whose running sum reaches each target.
    near : bool
        Whether some target lies within ``margin`` of either end of its
        interval (or past the total), where rounding could pick a neighbour.
    """
    n_samples = closest.shape[0]
    has_weight = sample_weight.shape[0] > 0
    order = _ascending_order(targets)
    ids = np.full(targets.shape[0], n_samples - 1, dtype=np.int64)
    near = False
    k = 0
    s = 0.0
    for i in range(n_samples):
        if k == order.shape[0]:
            break
        before = s
        term = sample_weight[i] * closest[i] if has_weight else closest[i]
        s = s + term
        # searchsorted(side='left'): the first i whose running sum >= target.
        while k < order.shape[0] and s >= targets[order[k]]:
            t = targets[order[k]]
            if t - before <= margin or s - t <= margin:
                near = True
            ids[order[k]] = i
            k += 1
    if k < order.shape[0]:
        near = True  # a target past the total: only rounding put it there
    return ids, near


@jit(parallel=True)
def lloyd_pass(X, mean, sample_weight, centres, labels, sums, weights, margin):
    """One Lloyd assignment: nearest centre per row, changed labels, per-centre sums.

    Parameters
    ----------
    X : ndarray of shape (n, D), C-contiguous
        The data. Read only.
    mean : ndarray of shape (D,), X.dtype
        Subtracted from every row before the distances and the sums.
    sample_weight : ndarray of shape (n,) or (0,), float64
        Per-row weights; an empty array means every weight is 1.
    centres : ndarray of shape (K, D), X.dtype
        Current centres, centred coordinates.
    labels : ndarray of shape (n,), int32
        Read and overwritten with each row's nearest centre (the first of
        equally near ones).
    sums : ndarray of shape (K, D), float64
        Overwritten with ``sum_{i in k} w_i (x_i - mean)`` per centre.
    weights : ndarray of shape (K,), float64
        Overwritten with ``sum_{i in k} w_i`` per centre.
    margin : ndarray of shape (3,), float64
        A row is a near tie when the squared distances ``d1 <= d2`` to its two
        nearest centres differ by at most ``margin[0] * |x_i - mean|**2 +
        margin[1] + margin[2] * sqrt(d2)`` (see ``fastmix._kmeans``).

    Returns
    -------
    n_changed : int
        How many rows changed label.
    n_near : int
        How many rows are near ties.
    """
    prefer_wide_vectors()
    n_samples, n_features = X.shape
    n_clusters = centres.shape[0]
    has_weight = sample_weight.shape[0] > 0
    n_chunks, n_groups = _chunk_groups(n_samples)
    p_sums = np.zeros((n_groups, n_clusters, n_features))
    p_weights = np.zeros((n_groups, n_clusters))
    p_counts = np.zeros((n_groups, 2), dtype=np.int64)
    origin = np.zeros(n_features, dtype=centres.dtype)
    for g in prange(n_groups):
        xt = np.empty((n_features, CHUNK), dtype=X.dtype)
        acc = np.empty(CHUNK)
        best = np.empty(CHUNK)
        second = np.empty(CHUNK)
        lab = np.empty(CHUNK, dtype=np.int32)
        s = p_sums[g]
        sw = p_weights[g]
        changed = 0
        near = 0
        for c in range(g * _GROUP, min((g + 1) * _GROUP, n_chunks)):
            lo = c * CHUNK
            hi = min(lo + CHUNK, n_samples)
            m = hi - lo
            rows = X[lo:hi]
            _centred_tile(rows, mean, xt)
            _sq_dist(xt, m, centres[0], best)
            for i in range(m):
                second[i] = np.inf
                lab[i] = 0
            for k in range(1, n_clusters):
                _sq_dist(xt, m, centres[k], acc)
                for i in range(m):
                    a = acc[i]
                    b = best[i]
                    second[i] = min(second[i], max(a, b))
                    if a < b:
                        best[i] = a
                        lab[i] = k
            if n_clusters > 1:
                _sq_dist(xt, m, origin, acc)
                for i in range(m):
                    gap = second[i] - best[i]
                    if gap <= margin[0] * acc[i] + margin[1] + margin[2] * np.sqrt(second[i]):
                        near += 1
            old = labels[lo:hi]
            w = sample_weight[lo:hi]
            for i in range(m):
                k = lab[i]
                if old[i] != k:
                    changed += 1
                    old[i] = k
                wi = w[i] if has_weight else 1.0
                sw[k] += wi
                row = rows[i]
                for j in range(n_features):
                    s[k, j] += wi * (row[j] - mean[j])
        p_counts[g, 0] = changed
        p_counts[g, 1] = near
    sums[:] = 0.0
    weights[:] = 0.0
    n_changed = 0
    n_near = 0
    for g in range(n_groups):
        sums += p_sums[g]
        weights += p_weights[g]
        n_changed += p_counts[g, 0]
        n_near += p_counts[g, 1]
    return n_changed, n_near


@jit(parallel=True)
def column_moments(X):
    """Column means, population variances and the largest centred row norm.

    Two passes, float64 sums kept per group of chunks and added in order.

    Returns
    -------
    mean, var : ndarray of shape (D,), float64
    max_sq_norm : float
        ``max_i |x_i - mean|**2``.
    """
    prefer_wide_vectors()
    n_samples, n_features = X.shape
    n_chunks, n_groups = _chunk_groups(n_samples)
    partial = np.zeros((n_groups, n_features))
    for g in prange(n_groups):
        s = partial[g]
        rows = X[g * _GROUP * CHUNK : min((g + 1) * _GROUP * CHUNK, n_samples)]
        for i in range(rows.shape[0]):
            row = rows[i]
            for j in range(n_features):
                s[j] += row[j]
    mean = np.zeros(n_features)
    for g in range(n_groups):
        mean += partial[g]
    mean /= n_samples
    partial[:] = 0.0
    largest = np.zeros(n_groups)
    for g in prange(n_groups):
        s = partial[g]
        rows = X[g * _GROUP * CHUNK : min((g + 1) * _GROUP * CHUNK, n_samples)]
        big = 0.0
        for i in range(rows.shape[0]):
            row = rows[i]
            norm = 0.0
            for j in range(n_features):
                t = row[j] - mean[j]
                s[j] += t * t
                norm += t * t
            big = max(big, norm)
        largest[g] = big
    var = np.zeros(n_features)
    # A loop, not largest.max(): that compiles numba's max for one number per group.
    max_sq_norm = 0.0
    for g in range(n_groups):
        var += partial[g]
        max_sq_norm = max(max_sq_norm, largest[g])
    var /= n_samples
    return mean, var, max_sq_norm


# Run on the calling thread when a parallel launch is refused (another thread
# is inside a parallel kernel, or a forked child): bitwise the same results.
seed_trial_serial = serial_twin(seed_trial, "seed_trial_serial")
lloyd_pass_serial = serial_twin(lloyd_pass, "lloyd_pass_serial")
column_moments_serial = serial_twin(column_moments, "column_moments_serial")
