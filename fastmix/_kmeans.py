"""scikit-learn's ``KMeans(n_init=1)`` on fastmix's kernels, for ``init_params='kmeans'``.

A mixture started with ``init_params='kmeans'`` must start from the labels
that scikit-learn's ``KMeans(n_clusters=K, n_init=1, random_state=rs).fit(X,
sample_weight=w)`` gives, so that it fits the same model as scikit-learn's
``GaussianMixture`` from the same ``random_state``. :func:`kmeans` runs that
algorithm step for step: the same greedy k-means++ seeding (the same draws
from ``rs``, in the same order, so ``rs`` ends in the same state), then the
same Lloyd iterations, tolerance, strict-convergence test and final
re-assignment. The passes over the data run in :mod:`fastmix._kernels.kmeans`
instead of BLAS and Cython, and ``X`` is centred as it is read instead of in a
copy. :func:`kmeans_plusplus_indices` runs the seeding alone, for
``init_params='k-means++'`` (scikit-learn's ``kmeans_plusplus``).

Rounding, and when scikit-learn runs instead
--------------------------------------------
The kernels round differently from scikit-learn (``sum (x - c)**2`` against
``|x|**2 + |c|**2 - 2 x.c`` through BLAS, sums in another order). Every
decision the algorithm takes is therefore checked against a bound on both
computations' rounding errors: which candidate centre lowers the potential
most, which row each k-means++ draw lands on, which centre is nearest to
each row, whether the centre shift is within the tolerance. When a decision
is closer than that bound (a "near tie": two rows equally far apart, a
duplicated point, an isolated pair of outliers) its outcome depends on
rounding, so scikit-learn's own answer depends on its BLAS. fastmix then
restores ``rs`` and runs scikit-learn's ``KMeans`` itself. It does the same
when a cluster goes empty (its relocation rule is defined on scikit-learn's
rounded distances) and for anything but C-contiguous float64 data: in float32
the bounds are wide enough that nearly every fit would hit one, and
scikit-learn accumulates its centres in float32. On continuous float64 data
a near tie is rare (the bounds are ~1e-15 of a squared distance per row and
~1e-10 of the potential at a million rows), so the fast path is the rule.
"""

import numpy as np

from ._kernels import kmeans as _kk
from ._kernels.kmeans import seed_draw
from ._numba import launch


# The parallel k-means kernels, each with its serial twin for when a parallel
# launch is refused (see fastmix._numba.parallel_launch).
def column_moments(X):
    return launch(_kk.column_moments, _kk.column_moments_serial, X)


def seed_trial(*args):
    return launch(_kk.seed_trial, _kk.seed_trial_serial, *args)


def lloyd_pass(*args):
    return launch(_kk.lloyd_pass, _kk.lloyd_pass_serial, *args)


# scikit-learn's KMeans defaults, which GaussianMixture keeps.
MAX_ITER = 300
TOL = 1e-4

_U = np.finfo(np.float64).eps / 2


class _NearTie(Exception):
    """A decision too close for the rounding of both computations."""


def kmeans(X, n_clusters, random_state, sample_weight=None):
    """Labels and centres of ``KMeans(n_clusters, n_init=1, random_state).fit(X)``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Validated data (finite, float32 or float64).
    n_clusters : int
        Number of clusters, at most ``n_samples``.
    random_state : numpy.random.RandomState
        Drawn from exactly as scikit-learn's ``KMeans`` draws from it.
    sample_weight : ndarray of shape (n_samples,), optional
        Per-row weights.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int32
        The cluster of every row.
    centres : ndarray of shape (n_clusters, n_features), X.dtype
        The cluster centres.
    """
    if X.dtype == np.float64 and X.flags.c_contiguous and X.shape[0] >= n_clusters:
        state = random_state.get_state()
        try:
            return _kmeans(X, n_clusters, random_state, sample_weight)
        except _NearTie:
            random_state.set_state(state)
    return _sklearn_kmeans(X, n_clusters, random_state, sample_weight)


def kmeans_plusplus_indices(X, n_clusters, random_state, sample_weight=None):
    """The rows ``sklearn.cluster.kmeans_plusplus(X, n_clusters, ...)`` picks.

    The same greedy k-means++ as the start of :func:`kmeans`, on the rows as
    they are (scikit-learn does not centre them here), with the same near-tie
    hand-over to scikit-learn.

    Returns
    -------
    indices : ndarray of shape (n_clusters,), int
        The chosen rows, in the order they were chosen.
    """
    if X.dtype == np.float64 and X.flags.c_contiguous and X.shape[0] >= n_clusters:
        state = random_state.get_state()
        try:
            weight, kernel_weight = _weights(X, sample_weight)
            mean, var, _ = column_moments(X)
            # Uncentred rows: the bounds see E[x^2] = var + mean^2 per feature.
            bounds = _Bounds(X.shape[0], X.shape[1], weight, var + mean**2, 0.0)
            origin = np.zeros(X.shape[1])
            _, indices = _seed(X, origin, weight, kernel_weight, n_clusters, random_state, bounds)
            return indices
        except _NearTie:
            random_state.set_state(state)
    # Imported here: sklearn.cluster costs ~0.2 s at import.
    from sklearn.cluster import kmeans_plusplus

    return kmeans_plusplus(X, n_clusters, random_state=random_state, sample_weight=sample_weight)[
        1
    ]


def _weights(X, sample_weight):
    """scikit-learn's ``_check_sample_weight`` (ones, or the weights as float64),
    and the kernels' form of it (empty when every weight is 1)."""
    if sample_weight is None:
        return np.ones(X.shape[0]), np.empty(0)
    weight = np.asarray(sample_weight, dtype=np.float64)
    return weight, weight


def _sklearn_kmeans(X, n_clusters, random_state, sample_weight):
    # Imported here: sklearn.cluster costs ~0.2 s at import.
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_clusters, n_init=1, random_state=random_state)
    km.fit(X, sample_weight=sample_weight)
    return km.labels_, km.cluster_centers_


def _kmeans(X, n_clusters, random_state, sample_weight):
    n_samples, n_features = X.shape
    weight, kernel_weight = _weights(X, sample_weight)
    mean, var, max_sq_norm = column_moments(X)
    tol = float(np.mean(var)) * TOL
    bounds = _Bounds(n_samples, n_features, weight, var, max_sq_norm)
    centres, _ = _seed(X, mean, weight, kernel_weight, n_clusters, random_state, bounds)
    labels, centres = _lloyd(X, mean, kernel_weight, centres, tol, bounds)
    return labels, centres + mean


class _Bounds:
    """Rounding-error bounds of scikit-learn's computation and the kernels'.

    A squared distance expanded as ``|x|**2 + |c|**2 - 2 x.c`` (scikit-learn's
    form, and the kernels' for the nearest centre) is off by at most ``(2 D +
    4) u (|x|**2 + |c|**2)`` either way (``u`` the unit roundoff), a centred
    sum ``sum (x - c)**2`` (the kernels' seeding distances) by ``D u`` of
    itself; a sum of ``n`` non-negative terms by at most ``n u`` of itself.
    ``dist`` is twice the expanded bound; each margin below takes both
    computations' errors and at least a factor of 2 on top.
    """

    def __init__(self, n_samples, n_features, weight, var, max_sq_norm):
        self.n = n_samples
        self.dist = 4.0 * (n_features + 2) * _U  # twice (2 D + 4) u
        # Of a sum of n non-negative terms, relative to the sum.
        self.relative = 4.0 * n_samples * _U
        # sum_i w_i |x_i - mean|**2 <= max(w) * n * sum(var).
        self.sum_sq_norms = float(np.max(weight)) * n_samples * float(np.sum(var))
        self.total_weight = float(np.sum(weight))
        self.max_sq_norm = float(max_sq_norm)

    def potential(self, pot, max_centre_sq):
        """Error of a k-means++ potential (or of a running sum up to it)."""
        dist = self.dist * (self.sum_sq_norms + self.total_weight * max_centre_sq)
        return 2.0 * (dist + 0.5 * self.relative * pot)

    def centre(self):
        """Error of a centre: a weighted mean of up to n rows, each |x| <= R."""
        return 4.0 * self.n * _U * np.sqrt(self.max_sq_norm)


def _seed(X, mean, weight, kernel_weight, n_clusters, random_state, bounds):
    """Greedy k-means++ (scikit-learn's ``_kmeans_plusplus``) on ``X - mean``.

    Returns the centres (centred coordinates) and the rows they are.
    """
    n_samples, n_features = X.shape
    n_trials = 2 + int(np.log(n_clusters))
    centres = np.empty((n_clusters, n_features), dtype=X.dtype)
    indices = np.full(n_clusters, -1, dtype=int)
    first = random_state.choice(n_samples, p=weight / weight.sum())
    centres[0] = X[first] - mean
    indices[0] = first
    max_centre_sq = float(centres[0] @ centres[0])
    dist = np.empty((n_trials, n_samples))
    every = np.empty(0, dtype=np.int32)
    pot = seed_trial(
        X, mean, kernel_weight, np.full(n_samples, np.inf), centres[:1], dist, every, np.empty(0)
    )[0]
    closest = dist[0].copy()
    # Each row's nearest chosen centre, so that a pass reads only the rows a
    # candidate can take (see seed_trial).
    owner = np.zeros(n_samples, dtype=np.int32)
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_trials) * pot
        ids, near = seed_draw(
            closest, kernel_weight, targets, bounds.potential(pot, max_centre_sq)
        )
        if near:
            raise _NearTie
        candidates = X[ids] - mean
        norms = np.einsum("ij,ij->i", candidates, candidates)
        max_centre_sq = max(max_centre_sq, float(np.max(norms)))
        apart = np.min(_centred_sq_dists(centres[:c], candidates), axis=1)
        pots = seed_trial(X, mean, kernel_weight, closest, candidates, dist, owner, apart)
        best = int(np.argmin(pots))
        rivals = ids != ids[best]
        if np.any(pots[rivals] - pots[best] <= bounds.potential(pots[rivals], max_centre_sq)):
            raise _NearTie
        pot = pots[best]
        owner[dist[best] < closest] = c
        closest[:] = dist[best]
        centres[c] = candidates[best]
        indices[c] = ids[best]
    return centres, indices


def _centred_sq_dists(a, b):
    """``(a.shape[0], b.shape[0])`` squared distances summed over differences."""
    out = np.empty((a.shape[0], b.shape[0]))
    for t in range(b.shape[0]):
        out[:, t] = ((a - b[t]) ** 2).sum(axis=1)
    return out


def _lloyd(X, mean, kernel_weight, centres, tol, bounds):
    """Lloyd iterations as scikit-learn's ``_kmeans_single_lloyd`` runs them."""
    n_clusters, n_features = centres.shape
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    sums = np.empty((n_clusters, n_features))
    weights = np.empty(n_clusters)
    # Hamerly's bounds per row (see lloyd_pass): a pass compares with all
    # centres only the rows whose centre the moves may have changed.
    hamerly = _Hamerly(X.shape[0], n_clusters)
    delta = bounds.centre()
    strict_convergence = False
    for _ in range(MAX_ITER):
        n_changed = _assign(
            X, mean, kernel_weight, centres, labels, sums, weights, bounds, hamerly
        )
        new = sums * (1.0 / weights)[:, None]  # as _average_centers: times 1/w
        shift = np.sqrt(((new - centres) ** 2).sum(axis=1))
        hamerly.shift = shift
        centres = new
        if n_changed == 0:
            strict_convergence = True
            break
        shift_tot = float((shift**2).sum())
        # The shifts move by up to 2 delta each through the centres' rounding,
        # and the tolerance (a mean of variances) by its own summation error.
        margin = 4.0 * delta * shift.sum() + 4.0 * n_clusters * delta**2 + bounds.relative * tol
        if abs(shift_tot - tol) <= margin:
            raise _NearTie
        if shift_tot <= tol:
            break
    if not strict_convergence:
        # Re-assign so that the labels match the final centres.
        _assign(X, mean, kernel_weight, centres, labels, sums, weights, bounds, hamerly)
    return labels, centres


class _Hamerly:
    """Per-row distance bounds carried from one Lloyd pass to the next."""

    def __init__(self, n_samples, n_clusters):
        self.upper = np.full(n_samples, np.inf)
        self.lower = np.zeros(n_samples)
        self.shift = np.zeros(n_clusters)  # the centres' moves since the bounds
        self.compared = []  # rows compared with all centres, per pass


def _assign(X, mean, kernel_weight, centres, labels, sums, weights, bounds, hamerly):
    """One Lloyd pass; raises :class:`_NearTie` on a near tie or an empty cluster."""
    max_centre_sq = float(np.max(np.einsum("ij,ij->i", centres, centres)))
    # Two nearest squared distances d1 <= d2 of a row x, both expanded by both
    # computations: the gap is off by four expanded errors (2 dist, each at
    # most dist / 2), doubled, and by 2 sqrt(d) |dc| <= 2 sqrt(d2) delta
    # through the centres' own rounding.
    margin = np.array(
        [
            4.0 * bounds.dist,
            4.0 * bounds.dist * max_centre_sq,
            4.0 * bounds.centre(),
        ]
    )
    n_changed, n_near, n_compared = lloyd_pass(
        X, mean, kernel_weight, centres, labels, sums, weights, margin,
        hamerly.shift, hamerly.upper, hamerly.lower,
    )  # fmt: skip
    hamerly.compared.append(n_compared)
    if n_near or np.any(weights == 0):
        # scikit-learn relocates an empty cluster by its own rounded distances.
        raise _NearTie
    return n_changed
