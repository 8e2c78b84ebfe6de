"""Dask arrays on a cluster (issue 5, part 2).

Every test here runs against a ``distributed.LocalCluster`` of two worker
processes started by the module fixture (no external service). The fit
persists the data once, maps the serial kernel over the blocks, tree-sums the
statistics and computes once per iteration; from the same start it gives the
in-memory model to rtol 1e-8, whatever the chunking; it survives a killed
worker and names the problem when the cluster is gone.
"""

import os
import signal
import threading
import warnings

import numpy as np
import pytest
from conftest import COV_TYPES, explicit_init, fit_quiet, record_takes, three_blobs
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import fastmix._sources._dask as dask_source  # noqa: E402
import fastmix._sources._driver as driver  # noqa: E402
import fastmix._sources._init as init  # noqa: E402
from fastmix import BayesianGaussianMixture, GaussianMixture  # noqa: E402
from fastmix._sources import DaskSource  # noqa: E402

RTOL = 1e-8  # dask vs in-memory, float64 (the bound)


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        cluster = distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


X_NP = three_blobs(n_per=700, scales=(0.5, 1.0, 1.5), shuffle=True)


def make(estimator, covariance_type, **kw):
    if estimator is GaussianMixture:
        kw = {**explicit_init(covariance_type, X_NP), **kw}
    else:  # same K rows from the same seed: the same start in memory and on dask
        kw = {"init_params": "random_from_data", "random_state": 2, **kw}
    return estimator(n_components=3, covariance_type=covariance_type, **kw)


FITTED = ["weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bounds_"]


def assert_same_model(a, b, rtol=RTOL):
    for name in FITTED:
        assert_allclose(
            np.asarray(getattr(b, name)), np.asarray(getattr(a, name)), rtol=rtol, err_msg=name
        )
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_dask_fit_equals_in_memory_fit(client, estimator, covariance_type):
    kw = dict(max_iter=8, tol=0)
    reference = fit_quiet(make(estimator, covariance_type, **kw), X_NP)
    model = fit_quiet(make(estimator, covariance_type, **kw), da.from_array(X_NP, chunks=500))
    assert_same_model(reference, model)
    assert isinstance(model.means_, np.ndarray)


def test_dask_chunking_does_not_change_the_result(client):
    reference = fit_quiet(make(GaussianMixture, "full", max_iter=8, tol=0), X_NP)
    for chunks in [(2100, 3), (97, 3), ((1000, 1, 599, 500), (2, 1))]:
        X = da.from_array(X_NP, chunks=chunks)
        model = fit_quiet(make(GaussianMixture, "full", max_iter=8, tol=0), X)
        assert_same_model(reference, model)


def test_dask_default_kmeans_init_and_weights_match_in_memory(client):
    """Small data: the k-means sample is every row, so the default init is
    scikit-learn's; dask or NumPy weights give the in-memory weighted fit."""
    w = np.random.RandomState(1).randint(0, 4, size=len(X_NP)).astype(np.float64)
    X = da.from_array(X_NP, chunks=600)
    for weights in (w, da.from_array(w, chunks=250)):
        reference = fit_quiet(
            BayesianGaussianMixture(n_components=3, random_state=0), X_NP, sample_weight=w
        )
        model = fit_quiet(
            BayesianGaussianMixture(n_components=3, random_state=0), X, sample_weight=weights
        )
        assert_same_model(reference, model)
    with pytest.raises(ValueError, match="sample_weight contains negative values"):
        GaussianMixture(2).fit(X, sample_weight=-w)
    with pytest.raises(ValueError, match="sample_weight has shape"):
        GaussianMixture(2).fit(X, sample_weight=w[:10])


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_dask_small_data_initialises_like_scikit_learn(client, init_params):
    """Data within the init sample: every init_params gives the in-memory start."""
    kw = dict(init_params=init_params, random_state=4, max_iter=5, tol=0)
    reference = fit_quiet(GaussianMixture(3, **kw), X_NP)
    model = fit_quiet(GaussianMixture(3, **kw), da.from_array(X_NP, chunks=800))
    assert_same_model(reference, model)


def test_dask_predictions_are_dask_arrays(client):
    gm = fit_quiet(make(GaussianMixture, "diag", max_iter=5, tol=0), X_NP)
    X = da.from_array(X_NP, chunks=400)
    labels, proba, log_p = gm.predict(X), gm.predict_proba(X), gm.score_samples(X)
    for out in (labels, proba, log_p):
        assert isinstance(out, da.Array)
    assert proba.shape == (len(X_NP), 3)
    assert_array_equal(labels.compute(), gm.predict(X_NP))
    # The same kernel forms both, block by block: the same numbers bit for bit.
    assert_array_equal(proba.compute(), gm.predict_proba(X_NP))
    assert_array_equal(log_p.compute(), gm.score_samples(X_NP))
    assert gm.score(X) == pytest.approx(gm.score(X_NP), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted_labels = make(GaussianMixture, "diag", max_iter=5, tol=0).fit_predict(X)
    assert isinstance(fitted_labels, da.Array)
    assert_array_equal(fitted_labels.compute(), gm.predict(X_NP))
    bad = da.from_array(np.vstack([X_NP, [[np.nan, 0.0, 0.0]]]), chunks=400)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        gm.predict(bad).compute()
    with pytest.raises(ValueError, match="features"):
        gm.predict(da.ones((10, 4), chunks=5))


def test_dask_criteria_of_unknown_chunk_sizes(client):
    """A dask array filtered by a mask has unknown row counts: bic, aic and
    icl used to return NaN for it."""
    gm = fit_quiet(make(GaussianMixture, "diag", max_iter=5, tol=0), X_NP)
    D = da.from_array(X_NP, chunks=400)
    unknown = D[D[:, 0] > -1e9]
    assert np.isnan(unknown.shape[0])
    for name in ("bic", "aic", "icl"):
        assert getattr(gm, name)(unknown) == pytest.approx(getattr(gm, name)(X_NP), rel=1e-12)


def test_dask_weights_of_unknown_chunk_sizes(client):
    """Weights filtered by a mask (chunk sizes NaN) were refused as "shape (nan,)"."""
    w = np.random.RandomState(5).randint(0, 3, size=len(X_NP)).astype(np.float64)
    keep = np.ones(len(X_NP), dtype=bool)
    dw = da.from_array(w, chunks=300)
    unknown = dw[da.from_array(keep, chunks=300)]
    assert np.isnan(unknown.shape[0])
    kw = dict(max_iter=3, tol=0)
    ref = fit_quiet(make(GaussianMixture, "diag", **kw), X_NP, sample_weight=w)
    gm = fit_quiet(
        make(GaussianMixture, "diag", **kw), da.from_array(X_NP, chunks=400), sample_weight=unknown
    )
    assert_same_model(ref, gm)


def test_dask_random_from_data_draws_rows_of_positive_weight_only(client):
    w = np.zeros(len(X_NP))
    w[::7] = 1.0
    kw = dict(init_params="random_from_data", max_iter=0)
    for seed in range(3):
        ref = fit_quiet(GaussianMixture(3, random_state=seed, **kw), X_NP, sample_weight=w)
        gm = fit_quiet(
            GaussianMixture(3, random_state=seed, **kw),
            da.from_array(X_NP, chunks=500),
            sample_weight=da.from_array(w, chunks=300),
        )
        assert_allclose(gm.means_, ref.means_, rtol=1e-12)
        gaps = np.linalg.norm(X_NP[:, None, :] - gm.means_[None], axis=2)
        assert (gaps.min(axis=0) < 1e-12).all() and (w[gaps.argmin(axis=0)] > 0).all()


def test_dask_persists_once_and_computes_once_per_iteration(client, tmp_path, monkeypatch):
    """Each block is loaded once per fit (persisted), and each iteration is one compute."""
    log = os.fspath(tmp_path / "loads.txt")

    def load(block):  # runs on the workers: a line per block load
        with open(log, "a") as f:
            f.write("x\n")
        return block

    X = da.from_array(X_NP, chunks=300).map_blocks(load, meta=np.empty((0, 0)))
    n_blocks = X.numblocks[0]
    computes = []
    compute = dask_source._compute
    monkeypatch.setattr(dask_source, "_compute", lambda *a: computes.append(1) or compute(*a))
    model = fit_quiet(make(GaussianMixture, "full", max_iter=6, tol=0), X)
    assert model.n_iter_ == 6
    with open(log) as f:
        assert len(f.readlines()) == n_blocks
    assert len(computes) == 1 + 6  # validation, then one per iteration


def test_dask_init_never_pulls_more_than_the_sample(client, monkeypatch):
    """Above the sample size, k-means sees a uniform sample only and the
    statistics of the start are summed on the cluster."""
    monkeypatch.setattr(init, "INIT_SAMPLE_ROWS", 400)
    X = da.from_array(X_NP, chunks=500)
    taken = record_takes(monkeypatch, DaskSource)
    reference = fit_quiet(GaussianMixture(3, random_state=0), X_NP)
    for init_params in ("kmeans", "k-means++", "random_from_data"):
        model = fit_quiet(GaussianMixture(3, init_params=init_params, random_state=0), X)
        order, ref_order = np.argsort(model.means_[:, 0]), np.argsort(reference.means_[:, 0])
        assert_allclose(model.means_[order], reference.means_[ref_order], rtol=1e-5)
    # k-means and k-means++ read the sample; 'random_from_data' its 3 rows.
    assert taken == [400, 400, 3]
    # 'random' on large data: per-block seeds on the workers, reproducible.
    a = fit_quiet(GaussianMixture(3, init_params="random", random_state=0, max_iter=3), X)
    b = fit_quiet(GaussianMixture(3, init_params="random", random_state=0, max_iter=3), X)
    assert_array_equal(a.means_, b.means_)


def test_dask_tasks_use_only_the_serial_kernels(monkeypatch):
    """On dask threads (the local threaded scheduler, so the check sees them) no
    parallel kernel is ever launched: fit with a k-means init on a sample, then
    every prediction."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a parallel=True kernel was launched from a dask task")

    monkeypatch.setattr(init, "INIT_SAMPLE_ROWS", 400)
    monkeypatch.setattr(dask_source, "_client_for", lambda X: None)
    monkeypatch.setattr(driver, "estep_stats", forbidden)
    monkeypatch.setattr(driver, "estep_rows", forbidden)
    X = da.from_array(X_NP, chunks=700)
    with dask.config.set(scheduler="threads"):
        model = fit_quiet(BayesianGaussianMixture(n_components=3, random_state=0), X)
        model.predict(X).compute()
        model.predict_proba(X).compute()
        model.score(X)


def test_dask_worker_killed_mid_fit_gives_the_undisturbed_model(client, monkeypatch):
    """SIGKILL one worker process while the second iteration computes: its
    persisted blocks are recomputed elsewhere and the model is the same."""
    X = da.from_array(X_NP, chunks=300)
    undisturbed = fit_quiet(make(GaussianMixture, "full", max_iter=6, tol=0), X)

    before = client.run(os.getpid)
    victim = next(iter(before.values()))
    calls = []
    estep_pass = DaskSource.estep_pass

    def estep_pass_with_a_kill(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            threading.Thread(target=os.kill, args=(victim, signal.SIGKILL)).start()
        return estep_pass(self, *args, **kwargs)

    monkeypatch.setattr(DaskSource, "estep_pass", estep_pass_with_a_kill)
    disturbed = fit_quiet(make(GaussianMixture, "full", max_iter=6, tol=0), X)
    assert len(calls) == 6
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()
    assert_same_model(undisturbed, disturbed, rtol=0)


def test_dask_cluster_gone_names_the_problem(client, monkeypatch):
    address = client.scheduler.address
    # Data persisted on a client that was closed since.
    other = distributed.Client(address, set_as_default=False)
    X = other.persist(da.from_array(X_NP, chunks=500))
    other.close()
    with pytest.raises(RuntimeError, match="lost the Dask cluster"):
        GaussianMixture(2).fit(X)

    # The client closed in the middle of a fit: clear error, model untouched.
    other = distributed.Client(address, set_as_default=False)
    X = other.persist(da.from_array(X_NP, chunks=500))
    estep_pass = DaskSource.estep_pass
    calls = []

    def estep_pass_then_close(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            other.close()
        return estep_pass(self, *args, **kwargs)

    monkeypatch.setattr(DaskSource, "estep_pass", estep_pass_then_close)
    gm = make(GaussianMixture, "full", max_iter=5, tol=0)
    with pytest.raises(RuntimeError, match="lost the Dask cluster") as info:
        gm.fit(X)
    assert "Client('tcp://" in str(info.value)
    assert not hasattr(gm, "means_")


def test_dask_shared_pass_is_one_compute_for_every_parameter_set(client, monkeypatch):
    """A pass for several models (different K and structures) computes once and
    gives each model the statistics of the in-memory pass (within RTOL)."""
    from fastmix._sources import ArraySource

    models = [
        fit_quiet(GaussianMixture(k, covariance_type=cov, max_iter=2, random_state=0), X_NP)
        for k, cov in [(1, "full"), (3, "tied"), (4, "diag"), (2, "spherical")]
    ]
    params = [m._kernel_params(X_NP.dtype) for m in models]
    w = np.random.RandomState(1).uniform(0.0, 2.0, size=len(X_NP))
    source = DaskSource.for_fit(da.from_array(X_NP, chunks=500), X_NP.dtype, w, 4, "test")
    computes = []
    compute = dask_source._compute
    monkeypatch.setattr(dask_source, "_compute", lambda *a: computes.append(1) or compute(*a))
    together = source.estep_pass(params)
    assert len(computes) == 1
    expected = ArraySource(X_NP, w).estep_pass(params)
    for got, want in zip(together, expected, strict=True):
        for name in ("nk", "s1", "s2_mat", "s2_diag"):
            assert_allclose(getattr(got, name), getattr(want, name), rtol=RTOL, err_msg=name)
        assert got.sum_wlogp == pytest.approx(want.sum_wlogp, rel=RTOL)
