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
mean from a copy of ``X``; here no copy is made). In a Lloyd pass the products
``x.c`` with all centres come from one register-tiled kernel
(:func:`_cross_products`: one multiply-add per row, centre and feature, as
the matrix product scikit-learn calls) and the nearest centre is
scikit-learn's own argmin of ``|c|**2 - 2 x.c``; :mod:`fastmix._kmeans`
sets the near-tie margins for both computations' cancellation. The seeding's
distances, which become every row's ``closest`` and the potentials, are
centred sums ``sum_j (x_j - c_j)**2`` (they never cancel), computed row by
row for the few candidates of a trial and only for the rows a candidate can
take (the triangle inequality on each row's nearest chosen centre). Decisions
agree with scikit-learn's except on rows whose two nearest centres are
equally far to within rounding.

Work is split into fixed chunks of :data:`CHUNK` rows (a Lloyd pass
transposes each to (D, B), so its inner loops run over contiguous rows and
vectorise). Partial sums are
kept per group of consecutive chunks and added in group order, so results do
not depend on the thread count.
"""

import numpy as np

from .._numba import jit, prange, prefer_wide_vectors, serial_twin
from .estep import _block_tile_rows, _features4, _scratch

# Rows per chunk: a (16, 256) float64 tile is 32 KiB and stays in L1.
CHUNK = 256
# A row may move to a candidate only if its owner centre is nearer to the
# candidate than twice the row's distance to it; 4 (1 + 1e-9) on the squares
# leaves the centred distances' rounding (D u of themselves) far behind.
_REACH = 4.0 * (1.0 + 1e-9)
# Relative outward rounding of Hamerly's bounds, far above the D u of a
# shift's or a bound's own rounding.
_BOUND_SLACK = 1e-10
# A chunk is read row by row, skipping rows, only when fewer than 1 in _SPARSE
# of its rows are needed.
_SPARSE = 4
# Consecutive chunks one parallel task runs, adding into one partial slot (as
# in the E-step): the per-centre partial sums shrink 8-fold.
_GROUP = 8


@jit
def _chunk_groups(n_samples):
    """``(chunks, groups of _GROUP chunks)`` covering ``n_samples`` rows."""
    n_chunks = (n_samples + CHUNK - 1) // CHUNK
    return n_chunks, (n_chunks + _GROUP - 1) // _GROUP


@jit
def _centred_tile(X, lo, rows, m, mean, xt, sq_norm):
    """Rows ``X[lo + rows[q]]`` (``q < m``), transposed and centred in their dtype
    into ``xt[:, q]``, and their squared norms ``sq_norm[q]`` in float64."""
    for q in range(m):
        row = X[lo + rows[q]]
        s = 0.0
        for j in range(X.shape[1]):
            t = row[j] - mean[j]
            xt[j, q] = t
            s += t * t
        sq_norm[q] = s


@jit
def _padded(centres):
    """``centres`` (m, D) zero-padded to (m4, D4) for :func:`_cross_products`,
    and their squared norms (m,) in float64."""
    n, n_features = centres.shape
    out = np.zeros(((n + 3) // 4 * 4, _features4(n_features)), dtype=centres.dtype)
    sq_norm = np.zeros(n)
    for k in range(n):
        s = 0.0
        for j in range(n_features):
            c = centres[k, j]
            out[k, j] = c
            s += c * c
        sq_norm[k] = s
    return out, sq_norm


@jit
def _row_distances(X, lo, rows, m, mean, cen, out, buf):
    """``out[t, q] = sum_j ((X[lo + rows[q], j] - mean[j]) - cen[t, j])**2`` for
    ``q < m``, in float64: centred differences, nothing expanded.

    Row by row, four centres per sweep along the row (``cen`` has a multiple
    of 4 rows), so the row is centred once into ``buf`` and each sweep
    vectorises over the features. With few centres (a seeding trial's 2 +
    log K) this beats transposing the chunk for :func:`_cross_products`.
    """
    prefer_wide_vectors()
    n_features = X.shape[1]
    for q in range(m):
        row = X[lo + rows[q]]
        for j in range(n_features):
            buf[j] = row[j] - mean[j]
        for k in range(0, cen.shape[0], 4):
            c0 = cen[k]
            c1 = cen[k + 1]
            c2 = cen[k + 2]
            c3 = cen[k + 3]
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            for j in range(n_features):
                b = buf[j]
                t0 = b - c0[j]
                t1 = b - c1[j]
                t2 = b - c2[j]
                t3 = b - c3[j]
                a0 += t0 * t0
                a1 += t1 * t1
                a2 += t2 * t2
                a3 += t3 * t3
            out[k, q] = a0
            out[k + 1, q] = a1
            out[k + 2, q] = a2
            out[k + 3, q] = a3


@jit
def _centred_sq_dist(row, mean, centre):
    """``sum_j ((row[j] - mean[j]) - centre[j])**2`` in float64: a row's
    distance to one centre, summed over centred differences."""
    s = 0.0
    for j in range(centre.shape[0]):
        t = (row[j] - mean[j]) - centre[j]
        s += t * t
    return s


@jit
def _cross_products(xt, m, cen, out):
    """``out[k, i] = sum_j cen[k, j] * xt[j, i]`` for ``i < m``: the tile's
    products with every centre, as the ``X @ C.T`` of scikit-learn's distances.

    ``cen`` (K4, D4) and ``xt`` (D4, B) are zero-padded to multiples of 4 (the
    padding adds exact zeros). Register blocks of 4 centres x 4 features as in
    the E-step's kernels: each pass over a tile of rows
    (:func:`~fastmix._kernels.estep._block_tile_rows`) loads 4 feature rows
    once for 16 multiply-adds and keeps 4 running sums in L1. One multiply-add
    per (row, centre, feature), where a centred square costs three operations.
    """
    prefer_wide_vectors()
    n4, d4 = cen.shape
    rows = _block_tile_rows(xt.itemsize)
    for i0 in range(0, m, rows):
        tile = min(rows, m - i0)
        for kg in range(0, n4, 4):
            o0 = out[kg, i0 : i0 + tile]
            o1 = out[kg + 1, i0 : i0 + tile]
            o2 = out[kg + 2, i0 : i0 + tile]
            o3 = out[kg + 3, i0 : i0 + tile]
            # Zeroed first, then one accumulating loop: a storing first block
            # was a second copy of the loop for LLVM (0.4 s of a first run).
            for i in range(tile):
                o0[i] = 0.0
                o1[i] = 0.0
                o2[i] = 0.0
                o3[i] = 0.0
            for jg in range(0, d4, 4):
                x0 = xt[jg, i0 : i0 + tile]
                x1 = xt[jg + 1, i0 : i0 + tile]
                x2 = xt[jg + 2, i0 : i0 + tile]
                x3 = xt[jg + 3, i0 : i0 + tile]
                c00 = cen[kg, jg]
                c01 = cen[kg, jg + 1]
                c02 = cen[kg, jg + 2]
                c03 = cen[kg, jg + 3]
                c10 = cen[kg + 1, jg]
                c11 = cen[kg + 1, jg + 1]
                c12 = cen[kg + 1, jg + 2]
                c13 = cen[kg + 1, jg + 3]
                c20 = cen[kg + 2, jg]
                c21 = cen[kg + 2, jg + 1]
                c22 = cen[kg + 2, jg + 2]
                c23 = cen[kg + 2, jg + 3]
                c30 = cen[kg + 3, jg]
                c31 = cen[kg + 3, jg + 1]
                c32 = cen[kg + 3, jg + 2]
                c33 = cen[kg + 3, jg + 3]
                for i in range(tile):
                    d0 = x0[i]
                    d1 = x1[i]
                    d2 = x2[i]
                    d3 = x3[i]
                    o0[i] += (c00 * d0 + c01 * d1) + (c02 * d2 + c03 * d3)
                    o1[i] += (c10 * d0 + c11 * d1) + (c12 * d2 + c13 * d3)
                    o2[i] += (c20 * d0 + c21 * d1) + (c22 * d2 + c23 * d3)
                    o3[i] += (c30 * d0 + c31 * d1) + (c32 * d2 + c33 * d3)


@jit(parallel=True)
def seed_trial(X, mean, sample_weight, closest, centres, dist, owner, apart):
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
    owner : ndarray of shape (n,) or (0,), int32
        Each row's nearest centre chosen so far (the one ``closest`` is
        measured to); empty to compute every row.
    apart : ndarray of shape (n_chosen,), float64
        ``apart[l]``: squared distance from chosen centre ``l`` to the nearest
        candidate. A row with ``apart[owner] >= 4 closest`` is at least as
        far from every candidate as from its owner (triangle inequality), so
        it keeps ``closest`` and is not read: late in the seeding, when each
        candidate takes a few rows, the pass reads few of them.

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
    every = owner.shape[0] == 0
    n_chunks, n_groups = _chunk_groups(n_samples)
    partial = np.zeros((n_groups, n_trials))
    cen = np.zeros(((n_trials + 3) // 4 * 4, n_features), dtype=centres.dtype)
    for t in range(n_trials):
        for j in range(n_features):
            cen[t, j] = centres[t, j]
    for g in prange(n_groups):
        prefer_wide_vectors()  # the loop body is outlined: its own attribute
        buf = np.empty(n_features, dtype=X.dtype)
        near_dist = np.empty((cen.shape[0], CHUNK))
        rows = np.arange(CHUNK)
        pot = partial[g]
        for c in range(g * _GROUP, min((g + 1) * _GROUP, n_chunks)):
            lo = c * CHUNK
            hi = min(lo + CHUNK, n_samples)
            m = hi - lo
            near = closest[lo:hi]
            n_read = m
            if not every:
                n_read = 0
                for i in range(m):
                    if apart[owner[lo + i]] < _REACH * near[i]:
                        rows[n_read] = i
                        n_read += 1
                if n_read > m // _SPARSE:
                    # Skipping rows here or there defeats the prefetcher: read them all.
                    n_read = m
                    for i in range(m):
                        rows[i] = i
            _row_distances(X, lo, rows, n_read, mean, cen, near_dist, buf)
            w = sample_weight[lo:hi]
            for t in range(n_trials):
                out = dist[t, lo:hi]
                d = near_dist[t]
                if n_read < m:
                    for i in range(m):
                        out[i] = near[i]
                    for q in range(n_read):
                        i = rows[q]
                        out[i] = min(near[i], d[q])
                else:
                    for i in range(m):
                        out[i] = min(near[i], d[i])
                s = 0.0
                if has_weight:
                    for i in range(m):
                        s += w[i] * out[i]
                else:
                    for i in range(m):
                        s += out[i]
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
def lloyd_pass(
    X, mean, sample_weight, centres, labels, sums, weights, margin, shift, upper, lower
):
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
        equally near ones); -1 for a row not yet assigned.
    sums : ndarray of shape (K, D), float64
        Overwritten with ``sum_{i in k} w_i (x_i - mean)`` per centre.
    weights : ndarray of shape (K,), float64
        Overwritten with ``sum_{i in k} w_i`` per centre.
    margin : ndarray of shape (3,), float64
        A row is a near tie when the squared distances ``d1 <= d2`` to its two
        nearest centres differ by at most ``margin[0] * |x_i - mean|**2 +
        margin[1] + margin[2] * sqrt(d2)`` (see ``fastmix._kmeans``);
        ``margin[2] / 2`` bounds how far scikit-learn's centres may lie from
        ``centres``.
    shift : ndarray of shape (K,), float64
        How far each centre moved since the pass that set ``upper`` and
        ``lower`` (zeros for the first pass).
    upper, lower : ndarray of shape (n,), float64
        Read and updated (Hamerly's bounds): ``upper[i]`` at least the
        distance from row ``i`` to its centre, ``lower[i]`` at most its
        distance to any other centre, both rounded outwards; ``inf`` and 0
        for a row without bounds. A row whose bounds, moved by ``shift`` and
        widened for scikit-learn's centres and rounding, still keep its centre
        nearest by more than the near-tie margin keeps its label without a
        distance; only the others are compared with all K centres.

    Returns
    -------
    n_changed : int
        How many rows changed label.
    n_near : int
        How many rows are near ties.
    n_compared : int
        How many rows were compared with all K centres.
    """
    prefer_wide_vectors()
    n_samples, n_features = X.shape
    n_clusters = centres.shape[0]
    has_weight = sample_weight.shape[0] > 0
    n_chunks, n_groups = _chunk_groups(n_samples)
    p_sums = np.zeros((n_groups, n_clusters, n_features))
    p_weights = np.zeros((n_groups, n_clusters))
    p_counts = np.zeros((n_groups, 3), dtype=np.int64)
    cen, cen_sq = _padded(centres)
    c_sq_max = 0.0
    for k in range(n_clusters):
        c_sq_max = max(c_sq_max, cen_sq[k])
    # Every centre's move, and the largest move of any other centre.
    far = 0.0
    farther = 0.0
    far_k = -1
    for k in range(n_clusters):
        if shift[k] > far:
            farther = far
            far = shift[k]
            far_k = k
        elif shift[k] > farther:
            farther = shift[k]
    off = 0.5 * margin[2]
    for g in prange(n_groups):
        prefer_wide_vectors()  # the loop body is outlined: its own attribute
        xt = _scratch(cen.shape[1], CHUNK, X, True)
        x_sq = np.empty(CHUNK)
        prod = _scratch(cen.shape[0], CHUNK, x_sq, False)
        best = np.empty(CHUNK)
        second = np.empty(CHUNK)
        lab = np.empty(CHUNK, dtype=np.int32)
        rows = np.empty(CHUNK, dtype=np.int64)
        s = p_sums[g]
        sw = p_weights[g]
        changed = 0
        near = 0
        compared = 0
        for c in range(g * _GROUP, min((g + 1) * _GROUP, n_chunks)):
            lo = c * CHUNK
            hi = min(lo + CHUNK, n_samples)
            m = hi - lo
            old = labels[lo:hi]
            up = upper[lo:hi]
            low = lower[lo:hi]
            n_full = 0
            for i in range(m):
                row = X[lo + i]
                sq = 0.0
                for j in range(n_features):
                    t = row[j] - mean[j]
                    sq += t * t
                a = old[i]
                if a < 0 or n_clusters == 1:
                    rows[n_full] = i
                    n_full += 1
                    continue
                # Outward rounding: _BOUND_SLACK covers the shifts' and the
                # bounds' own rounding by orders of magnitude.
                u = (up[i] + shift[a]) * (1.0 + _BOUND_SLACK)
                # Each term rounded outwards on its own: a difference's
                # rounding is relative to its terms, not to the difference.
                moved = farther if a == far_k else far
                l_ = low[i] * (1.0 - _BOUND_SLACK) - moved * (1.0 + _BOUND_SLACK)
                up[i] = u
                low[i] = max(l_, 0.0)
                if not _kept(u, l_, off, margin, sq, c_sq_max):
                    # Tighten the upper bound to the row's own centre.
                    u = np.sqrt(_centred_sq_dist(row, mean, centres[a])) * (1.0 + _BOUND_SLACK)
                    up[i] = u
                    if not _kept(u, l_, off, margin, sq, c_sq_max):
                        rows[n_full] = i
                        n_full += 1
            compared += n_full
            if n_full > 0:
                _centred_tile(X, lo, rows, n_full, mean, xt, x_sq)
                _cross_products(xt, n_full, cen, prod)
                # scikit-learn's argmin of |c|^2 - 2 x.c (|x|^2 is common to all).
                c_sq = cen_sq[0]
                xc = prod[0]
                for q in range(n_full):
                    best[q] = c_sq - 2.0 * xc[q]
                    second[q] = np.inf
                    lab[q] = 0
                for k in range(1, n_clusters):
                    c_sq = cen_sq[k]
                    xc = prod[k]
                    for q in range(n_full):
                        v = c_sq - 2.0 * xc[q]
                        b = best[q]
                        second[q] = min(second[q], max(v, b))
                        if v < b:
                            best[q] = v
                            lab[q] = k
                for q in range(n_full):
                    i = rows[q]
                    d1 = x_sq[q] + best[q]
                    d2 = x_sq[q] + second[q]
                    if n_clusters > 1:
                        gap = second[q] - best[q]
                        if gap <= margin[0] * x_sq[q] + margin[1] + margin[2] * np.sqrt(
                            max(0.0, d2)
                        ):
                            near += 1
                    # Twice the expanded distances' rounding bound (margin[0] is
                    # eight times it, see fastmix._kmeans), for the bounds.
                    e = 0.25 * margin[0] * (x_sq[q] + c_sq_max)
                    up[i] = np.sqrt(max(0.0, d1 + e)) * (1.0 + _BOUND_SLACK)
                    low[i] = np.sqrt(max(0.0, d2 - e)) * (1.0 - _BOUND_SLACK)
                    if old[i] != lab[q]:
                        changed += 1
                        old[i] = lab[q]
            w = sample_weight[lo:hi]
            for i in range(m):
                k = old[i]
                wi = w[i] if has_weight else 1.0
                sw[k] += wi
                row = X[lo + i]
                for j in range(n_features):
                    s[k, j] += wi * (row[j] - mean[j])
        p_counts[g, 0] = changed
        p_counts[g, 1] = near
        p_counts[g, 2] = compared
    sums[:] = 0.0
    weights[:] = 0.0
    n_changed = 0
    n_near = 0
    n_compared = 0
    for g in range(n_groups):
        sums += p_sums[g]
        weights += p_weights[g]
        n_changed += p_counts[g, 0]
        n_near += p_counts[g, 1]
        n_compared += p_counts[g, 2]
    return n_changed, n_near, n_compared


@jit
def _kept(upper, lower, off, margin, x_sq, c_sq_max):
    """Whether bounds ``upper`` on a row's distance to its centre and ``lower``
    on its distance to any other keep that centre nearest in scikit-learn's
    computation too: moved by ``off`` for its centres, the squared gap must
    exceed the near-tie margin's rounding part."""
    hi = upper + off
    lo = lower - off
    return lo > hi and lo * lo - hi * hi > margin[0] * x_sq + margin[1]


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
        prefer_wide_vectors()  # the loop body is outlined: its own attribute
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
        prefer_wide_vectors()  # the loop body is outlined: its own attribute
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
