"""Out-of-core fitting (issue 5, part 1): np.memmap and row-sliceable array-likes.

A memmap is streamed block by block by ``fastmix._sources.BlockSource``: the
fit equals the in-memory fit bitwise, initialisation never pulls the data in
(k-means on a bounded sample), and peak RSS stays bounded by the block size.
"""

import os
import subprocess
import sys
import textwrap
import warnings
from functools import partial

import numpy as np
import pytest
from conftest import COV_TYPES, INIT_PARAMS, explicit_init, fit_quiet, record_takes, three_blobs
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import fastmix._sources._init as init
from fastmix import BayesianGaussianMixture, GaussianMixture
from fastmix._sources import BlockSource

# blobs(n_per, n_features=3, seed=0, dtype=np.float64) -> (X, centres), rows shuffled.
blobs = partial(three_blobs, spread=6.0, scales=(0.5, 1.0, 1.5), shuffle=True, return_centres=True)


def to_memmap(tmp_path, X, name="x.npy", mode="r"):
    path = os.fspath(tmp_path / name)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
    out[:] = X
    out.flush()
    del out
    return np.load(path, mmap_mode=mode)


def fitted(m):
    names = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
    out = {name: getattr(m, name) for name in names}
    out["lower_bounds_"] = np.asarray(m.lower_bounds_)
    return out


def assert_same_model(a, b, rtol=0.0):
    fa, fb = fitted(a), fitted(b)
    for name in fa:
        if rtol == 0.0:
            assert_array_equal(fa[name], fb[name], err_msg=name)
        else:
            np.testing.assert_allclose(fa[name], fb[name], rtol=rtol, atol=0, err_msg=name)
    assert a.n_iter_ == b.n_iter_


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """140,000 rows: three estep_pass blocks of 65,536 rows (the last one partial)."""
    X, _ = blobs(140_000 // 3 + 1)
    return X, to_memmap(tmp_path_factory.mktemp("big"), X)


def test_memmap_is_read_from_the_file(big):
    X, M = big
    source = BlockSource(M, M.dtype)
    assert source._file is not None  # readinto at the block's offset, no mapped pages
    assert_array_equal(source[70_000:70_123], X[70_000:70_123])
    assert source[len(X) - 1 : 10**6].shape == (1, 3)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_memmap_fit_is_bitwise_the_in_memory_fit(big, covariance_type):
    """Same explicit start: the memmap fit (blocks read from the file) equals the
    in-memory fit bitwise, float64 and float32, EM and VI."""
    X, M = big
    init = explicit_init(covariance_type, X)
    kw = dict(n_components=3, covariance_type=covariance_type, max_iter=4, tol=0)
    a = fit_quiet(GaussianMixture(**kw, **init), X)
    b = fit_quiet(GaussianMixture(**kw, **init), M)
    assert_same_model(a, b)
    kw_vi = dict(kw, init_params="random_from_data", random_state=1)
    a = fit_quiet(BayesianGaussianMixture(**kw_vi), X)
    b = fit_quiet(BayesianGaussianMixture(**kw_vi), M)
    assert_same_model(a, b, rtol=1e-12)  # the init's data mean is summed per block


def test_memmap_float32_fit_is_bitwise_the_in_memory_fit(tmp_path):
    X, _ = blobs(30_000, dtype=np.float32)
    M = to_memmap(tmp_path, X)
    init = explicit_init("full", X)
    a = fit_quiet(GaussianMixture(3, max_iter=4, tol=0, **init), X)
    b = fit_quiet(GaussianMixture(3, max_iter=4, tol=0, **init), M)
    assert b.means_.dtype == np.float32
    assert_same_model(a, b)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_small_memmap_initialises_like_scikit_learn(tmp_path, estimator, init_params):
    """n_samples within the init sample: the 'sample' is every row, so every
    init_params gives the in-memory (scikit-learn) start and model."""
    X, _ = blobs(400)
    M = to_memmap(tmp_path, X)
    kw = dict(n_components=3, init_params=init_params, random_state=3, max_iter=30)
    a = fit_quiet(estimator(**kw), X)
    b = fit_quiet(estimator(**kw), M)
    assert_same_model(a, b, rtol=1e-10)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
def test_large_memmap_initialises_from_a_bounded_sample(tmp_path, monkeypatch, init_params):
    """n_samples above the sample size: k-means / k-means++ see only a uniform
    sample (never more rows on the client) and the fit still finds the blobs;
    random / random_from_data stream scikit-learn's draws at any size."""
    monkeypatch.setattr(init, "INIT_SAMPLE_ROWS", 600)
    X, centres = blobs(3000)
    M = to_memmap(tmp_path, X)
    taken = record_takes(monkeypatch, BlockSource)
    kw = dict(init_params=init_params, random_state=0, max_iter=200, n_init=2)
    gm = fit_quiet(GaussianMixture(3, **kw), M)
    if init_params in ("random", "random_from_data"):
        # random_from_data reads its 3 rows (each component's centre), per trial.
        assert taken == ([] if init_params == "random" else [3, 3])
        assert_same_model(gm, fit_quiet(GaussianMixture(3, **kw), X), rtol=1e-10)
        return
    assert taken == [600, 600]  # one sample per initialisation
    reference = fit_quiet(GaussianMixture(3, random_state=0, max_iter=200), X)
    order = np.argsort(gm.means_[:, 0])
    ref_order = np.argsort(reference.means_[:, 0])
    np.testing.assert_allclose(gm.means_[order], reference.means_[ref_order], rtol=1e-6)
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), np.sort(centres[:, 0]), atol=0.1)


def test_memmap_predictions_equal_in_memory(big):
    X, M = big
    gm = fit_quiet(GaussianMixture(3, max_iter=3, tol=0, **explicit_init("full", X)), X)
    assert_array_equal(gm.predict(M), gm.predict(X))
    assert_array_equal(gm.predict_proba(M), gm.predict_proba(X))
    assert_array_equal(gm.score_samples(M), gm.score_samples(X))
    assert gm.score(M) == gm.score(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = GaussianMixture(3, max_iter=3, tol=0, **explicit_init("full", X)).fit_predict(M)
    assert_array_equal(labels, gm.predict(X))


def test_memmap_views_copy_on_write_and_array_likes(tmp_path):
    """Every reading path gives the same numbers: a strided memmap view (read
    through the file, columns picked), a reversed one (copy + madvise), a
    copy-on-write memmap (plain copy) and a duck-typed row-sliceable
    array-like (h5py / zarr style)."""
    X, _ = blobs(2000, n_features=4)
    M = to_memmap(tmp_path, X)
    view = M[:, :3]  # not C-contiguous
    Xv = np.ascontiguousarray(X[:, :3])
    assert BlockSource(view, view.dtype)._file is not None
    backwards = M[::-1, :3]  # negative row stride: not read through the file
    assert BlockSource(backwards, backwards.dtype)._map is not None
    init = explicit_init("diag", Xv)
    Xb = np.ascontiguousarray(Xv[::-1])
    model = fit_quiet(GaussianMixture(3, covariance_type="diag", **init), backwards)
    assert_same_model(fit_quiet(GaussianMixture(3, covariance_type="diag", **init), Xb), model)

    class Rows:
        def __init__(self, a):
            self.shape, self.dtype, self._a = a.shape, a.dtype, a

        def __getitem__(self, key):
            return self._a[key].copy()

    reference = fit_quiet(GaussianMixture(3, covariance_type="diag", **init), Xv)
    cow = to_memmap(tmp_path, Xv, name="cow.npy", mode="c")
    for data in (view, cow, Rows(Xv)):
        model = fit_quiet(GaussianMixture(3, covariance_type="diag", **init), data)
        assert_same_model(reference, model)
        assert_array_equal(model.predict(data), reference.predict(Xv))


@pytest.mark.parametrize("view", ["contiguous", "columns", "every_other_row"])
def test_file_truncated_during_a_fit_is_a_clear_error(tmp_path, view):
    """A memmap's file cut short mid-fit: an OSError naming the file, for the
    strided views too (main: SIGBUS for them), and the fitted model untouched.
    In a subprocess: a SIGBUS would take the test runner down with it."""
    path = tmp_path / "x.npy"
    code = f"""
        import os
        import numpy as np
        from fastmix import GaussianMixture
        from fastmix._progress import report_progress

        path = {str(path)!r}
        np.save(path, np.random.default_rng(0).normal(size=(200_000, 8)))
        M = np.load(path, mmap_mode="r")
        M = dict(contiguous=M, columns=M[:, ::2], every_other_row=M[::2])[{view!r}]
        gm = GaussianMixture(2, covariance_type="diag", max_iter=2, random_state=0).fit(M[:500])
        before = gm.means_.copy()
        gm.set_params(max_iter=5, tol=0)

        def shrink(*_):
            os.truncate(path, 4096)

        try:
            with report_progress(shrink):
                gm.fit(M)
        except OSError as exc:
            print("OSError:", exc)
        print("untouched:", np.array_equal(gm.means_, before))
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert f"OSError: {path} ended before row" in out.stdout
    assert "untouched: True" in out.stdout


def test_memmap_sample_weight_matches_in_memory(big):
    X, M = big
    w = np.random.RandomState(0).randint(0, 3, size=len(X)).astype(np.float64)
    init = explicit_init("tied", X)
    kw = dict(covariance_type="tied", max_iter=3, tol=0, **init)
    a = fit_quiet(GaussianMixture(3, **kw), X, sample_weight=w)
    b = fit_quiet(GaussianMixture(3, **kw), M, sample_weight=w)
    assert_same_model(a, b)


def test_random_from_data_draws_rows_of_positive_weight_only(tmp_path):
    """A zero weight drops its row: random_from_data used to start means at
    zero-weight rows (two components collapsed into one here, seed 2)."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(100, 2) - 3, rng.randn(100, 2) + 3])
    w = np.zeros(len(X))
    w[::10] = 1.0
    kw = dict(init_params="random_from_data", max_iter=0)
    for seed in range(4):
        for data in (X, to_memmap(tmp_path, X)):
            gm = fit_quiet(GaussianMixture(2, random_state=seed, **kw), data, sample_weight=w)
            # Each mean is its start row (up to the rounding of the centring).
            gaps = np.linalg.norm(X[:, None, :] - gm.means_[None], axis=2)
            assert (gaps.min(axis=0) < 1e-12).all() and (w[gaps.argmin(axis=0)] > 0).all(), seed
    # Every weight positive: scikit-learn's draw, as unweighted.
    a = fit_quiet(GaussianMixture(2, random_state=1, **kw), X)
    b = fit_quiet(GaussianMixture(2, random_state=1, **kw), X, sample_weight=np.full(200, 2.0))
    assert_allclose(a.means_, b.means_, rtol=1e-12)


def test_memmap_validation(tmp_path):
    X, _ = blobs(40_000)
    X[123_000 % len(X), 1] = np.nan  # in a later block than the first
    M = to_memmap(tmp_path, X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianMixture(2).fit(M)
    one_d = to_memmap(tmp_path, np.arange(10.0), name="one_d.npy")
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        GaussianMixture(2).fit(one_d)
    few = to_memmap(tmp_path, np.zeros((3, 2)), name="few.npy")
    with pytest.raises(ValueError, match="Expected n_samples >= n_components"):
        GaussianMixture(4).fit(few)
    # Integers are converted to float64, as for in-memory data.
    ints = (np.random.RandomState(0).rand(300, 2) * 100).astype(np.int32)
    gm = GaussianMixture(2, random_state=0).fit(to_memmap(tmp_path, ints, name="ints.npy"))
    assert gm.means_.dtype == np.float64
    assert_array_equal(gm.means_, GaussianMixture(2, random_state=0).fit(ints).means_)
    wide = to_memmap(tmp_path, np.zeros((5, 3)), name="wide.npy")
    with pytest.raises(ValueError, match="features"):
        gm.predict(wide)
    bad = to_memmap(tmp_path, np.array([[1.0, np.inf]]), name="bad.npy")
    with pytest.raises(ValueError, match="Input X contains infinity"):
        gm.predict(bad)
    # Dimensions before features: a 3-D memmap's 300 "features" are not the problem.
    three_d = to_memmap(tmp_path, ints[None].astype(np.float64), name="three_d.npy")
    online = GaussianMixture(2, random_state=0).partial_fit(ints)
    calls = [gm.predict, gm.score, gm.bic, gm.icl, online.partial_fit]
    calls.append(GaussianMixture(2, warm_start=True).fit(ints).fit)
    for call in calls:
        with pytest.raises(ValueError, match="Expected 2D array, got 3D array"):
            call(three_d)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        gm.predict(one_d)
    complex_rows = to_memmap(tmp_path, np.ones((5, 2), dtype=complex), name="complex.npy")
    for call in (GaussianMixture(2).fit, gm.predict):
        with pytest.raises(ValueError, match="^Complex data not supported: X has dtype complex"):
            call(complex_rows)


@pytest.mark.parametrize("kind", ["ndarray", "memmap"])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_float64_model_predicts_float32_rows_in_float64(tmp_path, kind, covariance_type):
    """As scikit-learn: NumPy's promotion, not the parameters rounded to float32.

    Means at 1e4 rounded to float32 moved log p by 2e-2 at a spread of 0.1.
    """
    X, _ = blobs(300)
    X = (1e4 + 0.1 * X).astype(np.float32).astype(np.float64)  # float32 values
    gm = fit_quiet(GaussianMixture(3, covariance_type=covariance_type, random_state=0), X)
    X32 = X.astype(np.float32)
    rows = X32 if kind == "ndarray" else to_memmap(tmp_path, X32)
    assert_array_equal(gm.score_samples(rows), gm.score_samples(X))
    assert_array_equal(gm.predict_proba(rows), gm.predict_proba(X))
    assert gm.icl(rows) == gm.icl(X)


_RSS_CHILD = textwrap.dedent(
    """
    import resource, sys, warnings
    import numpy as np
    from fastmix import GaussianMixture

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    warnings.simplefilter("ignore")
    path, n_rows, n_features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # Warm-up: load or compile the kernels this fit uses, before the baseline.
    GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=2).fit(
        np.random.RandomState(0).rand(5000, n_features).astype(np.float32)
    )
    before = peak()
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, n_features))
    gm = GaussianMixture(2, covariance_type="diag", random_state=0, max_iter=2).fit(X)
    after_fit = peak()
    labels = gm.predict(X)
    after_predict = peak()
    print(after_fit - before, after_predict - before, gm.n_iter_, np.bincount(labels).min())
    """
)


def test_memmap_peak_rss_is_bounded_by_the_block_not_the_file(tmp_path):
    """Fit a 400 MB float32 memmap (k-means init on the bounded sample, two
    iterations) in a fresh process: peak RSS grows by far less than the file.
    Reading through the map instead would add the whole file."""
    n_rows, n_features = 6_250_000, 16
    path = tmp_path / "x.f32"
    rows = 250_000
    block = np.random.RandomState(0).randn(rows, n_features).astype(np.float32)
    with open(path, "wb") as f:  # written without mapping it here
        for start in range(0, n_rows, rows):
            block[:, 0] += 8.0 * (start // rows % 2) - 4.0
            f.write(block.tobytes())
    file_bytes = os.path.getsize(path)
    assert file_bytes == n_rows * n_features * 4  # 400 MB
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(path), str(n_rows), str(n_features)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    fit_growth, predict_growth, n_iter, smallest = (int(v) for v in out.stdout.split())
    assert n_iter == 2
    assert smallest > n_rows // 4  # both components in use: a real fit
    assert fit_growth < 0.15 * file_bytes, (fit_growth, file_bytes)
    # predict returns (n,) arrays: labels and log p(x), 16 bytes a row, plus blocks.
    assert predict_growth < 16 * n_rows + 0.15 * file_bytes, (predict_growth, file_bytes)


def test_import_does_not_import_dask():
    code = (
        "import sys, numpy as np, fastmix\n"
        "fastmix.GaussianMixture(2, random_state=0).fit(np.random.RandomState(0).rand(50, 2))\n"
        "assert not any(m == 'dask' or m.startswith('dask.') for m in sys.modules), 'dask'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("sample_rows", [None, 600])
def test_tied_memmap_fit_every_init(tmp_path, monkeypatch, init_params, sample_rows):
    """Tied covariances on a memmap, every init, small data and above the sample size:
    the initial statistics of hard labels used to add a tied row sum to None."""
    if sample_rows is not None:
        monkeypatch.setattr(init, "INIT_SAMPLE_ROWS", sample_rows)
    X, _ = blobs(1000)
    M = to_memmap(tmp_path, X)
    kw = dict(covariance_type="tied", init_params=init_params, random_state=0, max_iter=20)
    gm = fit_quiet(GaussianMixture(3, **kw), M)
    if sample_rows is None or init_params in ("random", "random_from_data"):
        assert_same_model(gm, fit_quiet(GaussianMixture(3, **kw), X), rtol=1e-10)
    else:  # k-means on a sample: another start; it still finds a mixture as good
        reference = fit_quiet(GaussianMixture(3, **kw), X)
        assert np.isfinite(gm.means_).all()
        assert gm.lower_bound_ == pytest.approx(reference.lower_bound_, abs=0.05)
