"""The 'kmeans' initialisation: kernels pinned to tests/reference.py, labels to scikit-learn.

``fastmix._kmeans.kmeans`` must return exactly what scikit-learn's
``KMeans(n_clusters, n_init=1, random_state=rs).fit(X, sample_weight=w)``
returns, and leave ``rs`` in the same state, so that a mixture fitted from
``init_params='kmeans'`` matches scikit-learn's. On a near tie it hands over to
scikit-learn; these tests check both that the fast path is the one taken on
ordinary data and that the hand-over gives scikit-learn's answer where rounding
decides.
"""

import warnings

import numba
import numpy as np
import pytest
import reference as ref
from conftest import labelled_blobs
from sklearn.cluster import KMeans

import fastmix._kmeans as fk
from fastmix._kernels import kmeans as kernels
from fastmix._kernels.kmeans import CHUNK, column_moments, lloyd_pass, seed_draw, seed_trial

F64 = np.float64


@pytest.fixture
def fallbacks(monkeypatch):
    """Count the hand-overs to scikit-learn's KMeans."""
    calls = []
    real = fk._sklearn_kmeans

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(fk, "_sklearn_kmeans", spy)
    return calls


def sklearn_kmeans(X, n_clusters, seed, sample_weight=None):
    rs = np.random.RandomState(seed)
    km = KMeans(n_clusters, n_init=1, random_state=rs).fit(X, sample_weight=sample_weight)
    return km.labels_, km.cluster_centers_, rs


# --------------------------------------------------------------------------
# kernels against the NumPy reference
# --------------------------------------------------------------------------
SIZES = [1, CHUNK - 1, CHUNK, CHUNK + 1, 8 * CHUNK + 3, 20 * CHUNK]


@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("n_features", [1, 3, 4, 7, 16])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_seed_trial_matches_reference(n_samples, n_features, weighted):
    rng = np.random.default_rng(n_samples + 10 * n_features)
    X = rng.normal(3.0, 2.0, (n_samples, n_features))
    w = rng.uniform(0.0, 2.0, n_samples) if weighted else None
    mean = X.mean(axis=0)
    closest = rng.uniform(0.0, 30.0, n_samples)
    centres = rng.normal(0.0, 2.0, (3, n_features))
    dist = np.empty((3, n_samples))
    every = np.empty(0, dtype=np.int32), np.empty(0)
    pots = seed_trial(X, mean, np.empty(0) if w is None else w, closest, centres, dist, *every)
    want_dist, want_pots = ref.kmeans_seed_trial(X, mean, w, closest, centres)
    ref.assert_close(dist, want_dist, F64, err_msg="distances")
    ref.assert_close(pots, want_pots, F64, err_msg="potentials")


@pytest.mark.parametrize("n_candidates", [1, 3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_seed_trial_reads_only_rows_a_candidate_can_take(weighted, n_candidates):
    # Eight far-apart blobs, one chosen centre each, candidates in the first
    # blob: the triangle inequality rules out the other blobs' rows, which
    # are then never read (they are overwritten with the first candidate, so
    # a read would give them distance 0), while the first blob's rows get the
    # reference's distances.
    blob_centres = 20.0 * np.eye(8)
    X = labelled_blobs(11, 3000, centres=blob_centres)
    w = np.random.default_rng(2).uniform(0.0, 2.0, 3000) if weighted else None
    mean = X.mean(axis=0)
    chosen = blob_centres - mean
    d_chosen = ref.kmeans_sq_distances(X, mean, chosen)
    owner = d_chosen.argmin(axis=1).astype(np.int32)
    closest = d_chosen.min(axis=1)
    candidates = chosen[:1] + np.linspace(-0.5, 0.5, n_candidates)[:, None]
    apart = ref.kmeans_sq_distances(chosen, 0.0, candidates).min(axis=1)
    ruled_out = apart[owner] >= 4.0 * (1.0 + 1e-9) * closest
    assert np.array_equal(ruled_out, owner != 0)
    # Few enough needed rows in every chunk that each is read row by row
    # (more than 1 in 4 and the kernel reads the whole chunk).
    needed = np.add.reduceat(~ruled_out, np.arange(0, 3000, CHUNK))
    assert np.all(needed <= np.diff(np.append(np.arange(0, 3000, CHUNK), 3000)) // 4)
    want_dist, want_pots = ref.kmeans_seed_trial(X, mean, w, closest, candidates)
    X[ruled_out] = candidates[0] + mean
    dist = np.empty((n_candidates, 3000))
    weights = np.empty(0) if w is None else w
    pots = seed_trial(X, mean, weights, closest, candidates, dist, owner, apart)
    ref.assert_close(dist, want_dist, F64, err_msg="distances")
    ref.assert_close(pots, want_pots, F64, err_msg="potentials")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_seed_draw_is_searchsorted_of_the_running_sum(weighted):
    rng = np.random.default_rng(0)
    closest = rng.uniform(0.0, 1.0, 1000)
    closest[::7] = 0.0  # flat stretches of the running sum
    w = rng.uniform(0.0, 2.0, 1000) if weighted else None
    total = ref.kmeans_seed_draw(closest, w, [np.inf])  # clipped to the last row
    assert total[0] == 999
    running = np.cumsum(ref._weights(w, 1000) * closest)
    targets = np.concatenate([rng.uniform(0.0, running[-1], 9), [0.0, running[-1] * 2]])
    ids, near = seed_draw(closest, np.empty(0) if w is None else w, targets, 0.0)
    np.testing.assert_array_equal(ids, ref.kmeans_seed_draw(closest, w, targets))
    # 0 lands on the first row (searchsorted 'left'); past the total is "near".
    assert ids[-2] == 0 and ids[-1] == 999 and near


def test_seed_draw_flags_targets_within_the_margin():
    closest = np.ones(10)  # running sums 1, 2, ..., 10
    ids, near = seed_draw(closest, np.empty(0), np.array([2.5, 6.5]), 0.4)
    assert ids.tolist() == [2, 6] and not near
    ids, near = seed_draw(closest, np.empty(0), np.array([2.5, 6.05]), 0.1)
    assert ids.tolist() == [2, 6] and near


@pytest.mark.parametrize("n_samples", SIZES)
@pytest.mark.parametrize("n_features", [1, 4, 7, 16])
@pytest.mark.parametrize("n_clusters", [1, 4, 6, 8])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lloyd_pass_matches_reference(n_samples, n_features, n_clusters, weighted):
    """Every K around the kernel's groups of centres: one, a whole group (4),
    a group and a remainder (6) and two groups (8)."""
    rng = np.random.default_rng(n_samples + n_features)
    X = labelled_blobs(n_samples, n_samples, n_features, 5)
    w = rng.uniform(0.0, 2.0, n_samples) if weighted else None
    mean = X.mean(axis=0)
    centres = labelled_blobs(1, n_clusters, n_features, n_clusters) - mean
    want_labels, want_sums, want_weights, scale = ref.kmeans_lloyd_pass(X, mean, w, centres)
    labels = want_labels.astype(np.int32)
    labels[::3] = -1  # a third of the rows change label
    sums, weights = np.empty((n_clusters, n_features)), np.empty(n_clusters)
    n_changed, n_near, n_compared = lloyd_pass(
        X, mean, np.empty(0) if w is None else w, centres, labels, sums, weights, np.zeros(3),
        *no_bounds(n_samples, n_clusters),
    )  # fmt: skip
    np.testing.assert_array_equal(labels, want_labels)
    assert n_changed == len(range(0, n_samples, 3))
    assert n_near == 0 and n_compared == n_samples
    ref.assert_close(sums, want_sums, F64, scale=scale, err_msg="sums")
    ref.assert_close(weights, want_weights, F64, err_msg="weights")


def no_bounds(n_samples, n_clusters):
    """``shift, upper, lower`` for a pass without Hamerly bounds."""
    return np.zeros(n_clusters), np.full(n_samples, np.inf), np.zeros(n_samples)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lloyd_pass_bounds_skip_rows_and_keep_the_reference(weighted):
    # A second pass after the centres moved a little: the bounds the first
    # pass left spare most rows the comparison with every centre, and the
    # labels, sums and bounds are still the reference's.
    n_samples, n_features, n_clusters = 3 * CHUNK * 8 + 5, 6, 9
    blobs = np.random.default_rng(4).normal(0.0, 5.0, (n_clusters, n_features))
    X = labelled_blobs(4, n_samples, centres=blobs)
    w = np.random.default_rng(5).uniform(0.0, 2.0, n_samples) if weighted else None
    weights_in = np.empty(0) if w is None else w
    mean = X.mean(axis=0)
    centres = blobs - mean
    labels = np.full(n_samples, -1, dtype=np.int32)
    sums, weights = np.empty((n_clusters, n_features)), np.empty(n_clusters)
    margin = np.array([1e-12, 1e-12, 1e-12])
    shift, upper, lower = no_bounds(n_samples, n_clusters)
    lloyd_pass(X, mean, weights_in, centres, labels, sums, weights, margin, shift, upper, lower)
    moved = centres + np.random.default_rng(6).normal(scale=0.05, size=centres.shape)
    moved[0] += 1.0  # one centre moves farther: more rows are compared
    shift = np.sqrt(((moved - centres) ** 2).sum(axis=1))
    n_changed, n_near, n_compared = lloyd_pass(
        X, mean, weights_in, moved, labels, sums, weights, margin, shift, upper, lower
    )
    want_labels, want_sums, want_weights, scale = ref.kmeans_lloyd_pass(X, mean, w, moved)
    np.testing.assert_array_equal(labels, want_labels)
    ref.assert_close(sums, want_sums, F64, scale=scale, err_msg="sums")
    ref.assert_close(weights, want_weights, F64, err_msg="weights")
    assert n_near == 0 and n_changed > 0
    assert 0 < n_compared < n_samples // 2
    dist = np.sqrt(ref.kmeans_sq_distances(X, mean, moved))
    own = dist[np.arange(n_samples), labels]
    dist[np.arange(n_samples), labels] = np.inf
    assert np.all(upper >= own) and np.all(lower <= dist.min(axis=1))
    # scikit-learn's centres may lie margin[2] / 2 from these: bounds that
    # cannot rule that out keep no row from the comparison.
    far_off = np.array([1e-12, 1e-12, 100.0])
    *_, n_compared = lloyd_pass(
        X, mean, weights_in, moved, labels, sums, weights, far_off, 0.0 * shift, upper, lower
    )
    assert n_compared == n_samples
    np.testing.assert_array_equal(labels, want_labels)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="py_func: the kernels are compiled")
def test_cross_products_at_any_tile_length_match_numpy(monkeypatch):
    """The Lloyd pass's products ``C @ X.T`` over tiles of rows of any length
    (the host's depends on its vector registers): whole tiles, a last partial
    one, one of exactly the rows and one longer; only the first m rows
    written. Run as Python so that every length is checked on any CPU."""
    monkeypatch.setattr(kernels, "prefer_wide_vectors", lambda: None)  # an intrinsic
    rng = np.random.default_rng(3)
    m = 24
    xt = np.zeros((8, m + 5))  # D = 7 and K = 6, zero-padded to multiples of 4
    xt[:7, :m] = rng.standard_normal((7, m))
    cen = np.zeros((8, 8))
    cen[:6, :7] = rng.standard_normal((6, 7))
    want = cen @ xt[:, :m]
    for rows in (5, 8, 24, 40):
        monkeypatch.setattr(kernels, "_block_tile_rows", lambda itemsize, rows=rows: rows)
        out = np.full((8, m + 5), np.nan)
        kernels._cross_products.py_func(xt, m, cen, out)
        np.testing.assert_allclose(
            out[:, :m], want, rtol=1e-13, atol=1e-14, err_msg=f"{rows} rows"
        )
        assert np.isnan(out[:, m:]).all()


def test_lloyd_pass_counts_near_ties():
    # Rows 0 and 1 are equidistant from both centres; row 2 is not.
    X = np.array([[0.0, 0.0], [0.0, 1.0], [0.9, 0.0]])
    centres = np.array([[-1.0, 0.0], [1.0, 0.0]])
    labels = np.full(3, -1, dtype=np.int32)
    sums, weights = np.empty((2, 2)), np.empty(2)
    margin = np.array([0.0, 1e-12, 0.0])
    _, n_near, _ = lloyd_pass(
        X, np.zeros(2), np.empty(0), centres, labels, sums, weights, margin, *no_bounds(3, 2)
    )
    assert labels.tolist() == [0, 0, 1]  # the first centre wins a tie
    assert n_near == 2


def test_column_moments():
    X = labelled_blobs(0, 3 * CHUNK * 8 + 5, 5, 3)
    mean, var, max_sq_norm = column_moments(X)
    ref.assert_close(mean, X.mean(axis=0), F64, scale=np.abs(X).mean(axis=0))
    ref.assert_close(var, X.var(axis=0), F64)
    ref.assert_close(max_sq_norm, ((X - X.mean(axis=0)) ** 2).sum(axis=1).max(), F64)


# --------------------------------------------------------------------------
# the whole k-means against scikit-learn
# --------------------------------------------------------------------------
CASES = [
    # (n_samples, n_features, n_clusters)
    (2000, 2, 3),
    (5000, 5, 8),
    (3000, 1, 4),
    (300, 3, 1),
    (40_000, 16, 16),
    (20_000, 8, 64),
]


@pytest.mark.parametrize("n_samples, n_features, n_clusters", CASES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_matches_sklearn_on_the_fast_path(
    n_samples, n_features, n_clusters, weighted, fallbacks
):
    X = labelled_blobs(n_clusters, n_samples, n_features, n_clusters)
    w = np.random.default_rng(1).uniform(0.1, 2.0, n_samples) if weighted else None
    rs = np.random.RandomState(7)
    labels, centres = fk.kmeans(X, n_clusters, rs, w)
    want_labels, want_centres, want_rs = sklearn_kmeans(X, n_clusters, 7, w)
    assert fallbacks == []
    assert labels.dtype == want_labels.dtype
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(centres, want_centres, rtol=1e-12, atol=1e-12)
    # The generator was drawn from exactly as scikit-learn draws from it.
    assert rs.randint(2**31) == want_rs.randint(2**31)


def test_kmeans_compares_few_rows_once_the_centres_settle(monkeypatch, fallbacks):
    # The whole k-means with Hamerly's bounds: scikit-learn's labels, while
    # the later passes compare only a few rows with every centre.
    made = []

    class Spy(fk._Hamerly):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(fk, "_Hamerly", Spy)
    X = labelled_blobs(3, 20_000, 8, 64, spread=2.0)
    labels, _ = fk.kmeans(X, 64, np.random.RandomState(7))
    want_labels, _, _ = sklearn_kmeans(X, 64, 7)
    assert fallbacks == []
    np.testing.assert_array_equal(labels, want_labels)
    compared = made[0].compared
    assert len(compared) > 4 and compared[0] == 20_000
    assert max(compared[-3:]) < 0.2 * 20_000


def test_kmeans_hands_ties_to_sklearn(fallbacks):
    # Two isolated outliers: choosing either as a k-means++ centre lowers the
    # potential by exactly as much, so rounding picks one.
    rng = np.random.default_rng(109)
    rng.integers(5, 40), rng.integers(1, 4), rng.integers(2, 12)  # (24, 2, 5)
    X = rng.standard_cauchy(size=(24, 2))
    rs = np.random.RandomState(109)
    labels, centres = fk.kmeans(X, 5, rs)
    want_labels, want_centres, want_rs = sklearn_kmeans(X, 5, 109)
    assert len(fallbacks) == 1
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(centres, want_centres, rtol=1e-12, atol=1e-12)
    assert rs.randint(2**31) == want_rs.randint(2**31)


@pytest.mark.parametrize("kind", ["duplicates", "integers", "float32"])
def test_kmeans_equals_sklearn_where_it_hands_over(kind, fallbacks):
    rng = np.random.default_rng(3)
    if kind == "duplicates":  # more clusters than distinct rows
        X = np.repeat(rng.normal(size=(4, 2)), 5, axis=0)
        n_clusters = 6
    elif kind == "integers":  # rows equidistant from two centres
        X = rng.integers(0, 4, (500, 2)).astype(np.float64)
        n_clusters = 5
    else:
        X = labelled_blobs(0, 2000, 3, 4).astype(np.float32)
        n_clusters = 4
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        labels, centres = fk.kmeans(X, n_clusters, np.random.RandomState(0))
    with warnings.catch_warnings(record=True) as want:
        warnings.simplefilter("always")
        want_labels, want_centres, _ = sklearn_kmeans(X, n_clusters, 0)
    assert len(fallbacks) == 1
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(centres, want_centres)
    assert [str(w.message) for w in got] == [str(w.message) for w in want]
    if kind == "duplicates":
        assert any("distinct clusters" in str(w.message) for w in got)


def test_kmeans_matches_sklearn_on_random_small_problems(fallbacks):
    """Small problems, where ties are common: equal labels either way."""
    n_fast = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n_samples = int(rng.integers(5, 300))
        n_features = int(rng.integers(1, 6))
        n_clusters = int(rng.integers(1, min(n_samples, 12)))
        X = [rng.standard_cauchy, rng.normal][seed % 2](size=(n_samples, n_features))
        before = len(fallbacks)
        labels, centres = fk.kmeans(X, n_clusters, np.random.RandomState(seed))
        n_fast += len(fallbacks) == before
        want_labels, want_centres, _ = sklearn_kmeans(X, n_clusters, seed)
        np.testing.assert_array_equal(labels, want_labels, err_msg=f"seed {seed}")
        np.testing.assert_allclose(centres, want_centres, rtol=1e-12, atol=1e-12)
    assert n_fast >= 45  # the hand-over is the exception


# --------------------------------------------------------------------------
# init_params='k-means++': the seeding alone, on the rows as they are
# --------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [0.0, 50.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_plusplus_indices_match_sklearn(offset, weighted, fallbacks, monkeypatch):
    from sklearn.cluster import kmeans_plusplus

    handed_over = []
    real = kmeans_plusplus

    def spy(*args, **kwargs):
        handed_over.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr("sklearn.cluster.kmeans_plusplus", spy)
    X = labelled_blobs(4, 20_000, 6, 12) + offset
    w = np.random.default_rng(2).uniform(0.1, 2.0, len(X)) if weighted else None
    rs = np.random.RandomState(11)
    indices = fk.kmeans_plusplus_indices(X, 12, rs, w)
    want_rs = np.random.RandomState(11)
    _, want = real(X, 12, random_state=want_rs, sample_weight=w)
    assert handed_over == []
    np.testing.assert_array_equal(indices, want)
    assert rs.randint(2**31) == want_rs.randint(2**31)


def test_kmeans_plusplus_indices_hand_ties_to_sklearn():
    from sklearn.cluster import kmeans_plusplus

    X = np.repeat(np.random.default_rng(0).normal(size=(3, 2)), 4, axis=0)  # 3 distinct rows
    rs = np.random.RandomState(0)
    indices = fk.kmeans_plusplus_indices(X, 5, rs)
    want_rs = np.random.RandomState(0)
    _, want = kmeans_plusplus(X, 5, random_state=want_rs)
    np.testing.assert_array_equal(indices, want)
    assert rs.randint(2**31) == want_rs.randint(2**31)
