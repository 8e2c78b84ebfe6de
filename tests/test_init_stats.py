"""The one-hot fast path of ``stats_from_resp`` against its general path.

k-means, k-means++ and 'random_from_data' hand ``stats_from_resp`` one-hot
responsibilities; it then sums each component over its own rows only. The
general path (forced here by making the one-hot detection decline) and the
dense reference in tests/reference.py must agree with it to rounding.
"""

import numpy as np
import pytest
import reference as ref
from conftest import COV_TYPES, REFERENCE_RESP_FIELDS, assert_stats_close

from fastmix import _stats
from fastmix._stats import COV_CODES, stats_from_resp

N_SAMPLES, N_FEATURES, N_COMPONENTS = 300, 5, 4
# Rows per block: several blocks, the last one short.
ROWS_PER_BLOCK = 37
FIELDS = ("nk", "s1", "s2_mat", "s2_diag", "sum_w", "n_rows")


def one_hot(labels, n_components):
    """Responsibilities of ``labels``; a label -1 gives a row of zeros."""
    r = np.zeros((len(labels), n_components))
    assigned = labels >= 0
    r[np.flatnonzero(assigned), labels[assigned]] = 1.0
    return r


def make_labels(kind, rng):
    if kind == "kmeans":
        # The last component gets no rows at all.
        return rng.integers(N_COMPONENTS - 1, size=N_SAMPLES)
    # k-means++ / random_from_data: one row per component, the others unassigned.
    labels = np.full(N_SAMPLES, -1)
    labels[rng.choice(N_SAMPLES, size=N_COMPONENTS, replace=False)] = np.arange(N_COMPONENTS)
    return labels


def run(X, w, r, covariance_type, shift, monkeypatch, spy=None, general=False):
    """``stats_from_resp`` in blocks; ``general`` forces the general path and
    ``spy`` collects the labels of every block that took the fast path."""
    with monkeypatch.context() as m:
        if general:
            m.setattr(_stats, "_one_hot_labels", lambda r, row_sums: None)
        if spy is not None:
            add = _stats._add_one_hot

            def counting(*args):
                spy.append(args[3])
                return add(*args)

            m.setattr(_stats, "_add_one_hot", counting)
        return stats_from_resp(
            X,
            w,
            lambda a, b: r[a:b],
            COV_CODES[covariance_type],
            shift,
            rows_per_block=ROWS_PER_BLOCK,
        )


def assert_same_stats(fast, general):
    """rtol 1e-12; atol 1e-12 of each field's largest entry (at least 1), of row_sum 1e-12."""
    atol = {
        name: 1e-12 * max(np.abs(np.asarray(getattr(general, name))).max(initial=0.0), 1.0)
        for name in FIELDS
    }
    assert_stats_close(fast, general, rtol=1e-12, atol={**atol, "row_sum": 1e-12})


@pytest.mark.parametrize("kind", ["kmeans", "seeds"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_hot_matches_general_path(covariance_type, weighted, dtype, kind, monkeypatch):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((N_SAMPLES, N_FEATURES)) * 3.0 + 10.0).astype(dtype)
    w = None
    if weighted:
        w = rng.uniform(0.1, 3.0, size=N_SAMPLES)
        w[rng.random(N_SAMPLES) < 0.2] = 0.0
    labels = make_labels(kind, rng)
    r = one_hot(labels, N_COMPONENTS)
    # Distinct centres per component (the API allows them; fits pass equal ones).
    shift = X.mean(axis=0, dtype=np.float64) + rng.standard_normal((N_COMPONENTS, N_FEATURES))
    if covariance_type == "tied":
        shift = np.broadcast_to(shift[0], shift.shape)

    seen = []
    fast = run(X, w, r, covariance_type, shift, monkeypatch, spy=seen)
    general = run(X, w, r, covariance_type, shift, monkeypatch, general=True)
    # Every block took the fast path, with the right labels.
    assert len(seen) == -(-N_SAMPLES // ROWS_PER_BLOCK)
    np.testing.assert_array_equal(np.concatenate(seen), labels)
    assert_same_stats(fast, general)

    # Against the dense reference, to the accuracy its error scales allow.
    want = ref.stats_from_resp(X.astype(np.float64), w, r, covariance_type, shift)
    assert_stats_close(
        fast, want, **ref.tol(np.float64), scale=want["scale"], fields=REFERENCE_RESP_FIELDS
    )
    if kind == "kmeans":
        # The component without rows: exact zeros, as the general path gives.
        assert fast.nk[-1] == 0.0
        assert not fast.s1[-1].any()
        if covariance_type == "full":
            assert not fast.s2_mat[-1].any()
        if covariance_type in ("diag", "spherical"):
            assert not fast.s2_diag[-1].any()
    # Unassigned rows make the tied update the general one (row_sum kept).
    assert (fast.row_sum is not None) == (covariance_type == "tied" and kind == "seeds")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_mixed_blocks(covariance_type, monkeypatch):
    """A block that is not one-hot takes the general path; the others stay fast."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((N_SAMPLES, N_FEATURES))
    r = one_hot(rng.integers(N_COMPONENTS, size=N_SAMPLES), N_COMPONENTS)
    r[40] = [0.25, 0.25, 0.5, 0.0]  # block 1 (rows 37:74) is soft
    shift = np.broadcast_to(X.mean(axis=0), (N_COMPONENTS, N_FEATURES))
    seen = []
    fast = run(X, None, r, covariance_type, shift, monkeypatch, spy=seen)
    general = run(X, None, r, covariance_type, shift, monkeypatch, general=True)
    assert len(seen) == -(-N_SAMPLES // ROWS_PER_BLOCK) - 1
    assert_same_stats(fast, general)
    assert fast.row_sum is None


@pytest.mark.parametrize(
    "row",
    [
        [1.0, 1.0, 0.0],  # two ones
        [0.5, 0.5, 0.0],  # soft
        [1.0, -0.0, 1e-300],  # a tiny nonzero
        [np.nan, 0.0, 0.0],
        [1.0, 0.0, np.inf],
        [-1.0, 1.0, 1.0],
    ],
)
def test_detection_declines(row):
    r = np.zeros((4, 3))
    r[:, 0] = 1.0
    r[2] = row
    assert _stats._one_hot_labels(r, r @ np.ones(3)) is None


def test_detection_labels():
    r = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, -0.0], [0.0, 0.0, 1.0]])
    labels = _stats._one_hot_labels(r, r @ np.ones(3))
    np.testing.assert_array_equal(labels, [1, -1, 0, 2])
    assert _stats._one_hot_labels(np.zeros((0, 3)), np.zeros(0)).shape == (0,)
