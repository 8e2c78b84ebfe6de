"""Online learning (issue 14): partial_fit by stepwise EM and stochastic VI.

Pinned: one partial_fit on X is one EM / VI iteration on X; a second batch is
the NumPy reference's averaged-statistics step; a stream of batches reaches
batch EM's held-out likelihood and follows a drifting component; bad batches
leave the online state untouched; the state survives save/load.
"""

import copy
import dataclasses
import json
import os
import pickle
import sys

import numpy as np
import pytest
import reference as ref
import reference_vi as ref_vi
from conftest import COV_TYPES, explicit_init, fit_quiet, gap_threshold, vi_posterior, vi_prior
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

import fastmix
from fastmix import BayesianGaussianMixture, GaussianMixture

FITTED = ["weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"]


def _stream(n, seed, shift=0.0, n_features=2):
    """Three well-separated blobs (a stationary stream); component 0 moved by ``shift``."""
    rng = np.random.RandomState(seed)
    centres = np.array([[-6.0, 0.0], [6.0, 0.0], [0.0, 8.0]])[:, :n_features]
    centres = centres + np.array([[shift, shift], [0, 0], [0, 0]])[:, :n_features]
    scales = np.array([1.0, 0.7, 1.3])
    labels = rng.randint(0, 3, size=n)
    return centres[labels] + scales[labels, None] * rng.randn(n, n_features)


def _assert_models_close(a, b, rtol, names=FITTED):
    for name in names:
        assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=0, err_msg=name)


# --------------------------------------------------------- the first call
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_first_partial_fit_is_one_em_iteration(covariance_type, weighted):
    X = _stream(2000, seed=0)
    w = np.random.RandomState(1).uniform(0.0, 3.0, len(X)) if weighted else None
    kw = dict(n_components=3, covariance_type=covariance_type, **explicit_init(covariance_type, X))
    batch = fit_quiet(GaussianMixture(max_iter=1, **kw), X, sample_weight=w)
    online = GaussianMixture(**kw).partial_fit(X, sample_weight=w)
    _assert_models_close(online, batch, rtol=1e-10)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-12)
    assert online.lower_bounds_ == pytest.approx(batch.lower_bounds_, rel=1e-12)
    assert (online.n_batches_, online.n_samples_seen_, online.n_iter_) == (1, len(X), 1)


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_first_partial_fit_initialises_as_fit(init_params):
    X = _stream(900, seed=2)
    kw = dict(n_components=3, init_params=init_params, random_state=5)
    batch = fit_quiet(GaussianMixture(max_iter=1, **kw), X)
    _assert_models_close(GaussianMixture(**kw).partial_fit(X), batch, rtol=1e-10)


@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_first_partial_fit_is_one_vi_iteration(covariance_type, prior_type):
    """With total_samples = n the SVI step on all rows is one VI iteration."""
    X = _stream(1500, seed=3)
    kw = dict(
        n_components=3,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params="random_from_data",
        random_state=4,
    )
    batch = fit_quiet(BayesianGaussianMixture(max_iter=1, **kw), X)
    online = BayesianGaussianMixture(total_samples=len(X), **kw).partial_fit(X)
    names = FITTED + ["mean_precision_", "degrees_of_freedom_"]
    _assert_models_close(online, batch, rtol=1e-10, names=names)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-10)


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_first_partial_fit_keeps_the_best_of_n_init_trials(estimator):
    """As fit(max_iter=1, n_init=5): the trials' random starts, the best one's step."""
    X = _stream(600, seed=1)
    kw = dict(n_components=3, init_params="random", n_init=5, random_state=0)
    if estimator is BayesianGaussianMixture:
        kw["total_samples"] = len(X)
    batch = fit_quiet(estimator(max_iter=1, **kw), X)
    online = estimator(**kw).partial_fit(X)
    _assert_models_close(online, batch, rtol=1e-10)
    assert online.lower_bound_ == pytest.approx(batch.lower_bound_, rel=1e-10)
    # The best trial is not the first here: one trial alone steps elsewhere.
    single = estimator(**{**kw, "n_init": 1}).partial_fit(X)
    assert not np.allclose(single.means_, batch.means_, rtol=1e-3)
    # The running statistics kept are the best trial's: its means follow from them.
    nk, s1, _, _, shift, _ = online.online_stats_
    xbar = shift + s1 / nk[:, None]
    if estimator is BayesianGaussianMixture:
        beta0, m0 = online.mean_precision_prior_, online.mean_prior_
        xbar = (beta0 * m0 + nk[:, None] * xbar) / (beta0 + nk[:, None])
    assert_allclose(xbar, online.means_, rtol=1e-8)


def test_a_warm_started_first_partial_fit_refuses_other_components():
    X = _stream(600, seed=3)
    gm = fit_quiet(GaussianMixture(3, warm_start=True, random_state=0), X)
    before = _state(gm)
    with pytest.raises(ValueError, match="n_components=5, but this model was fitted with 3"):
        gm.set_params(n_components=5).partial_fit(X)
    gm.set_params(n_components=3)
    _assert_same_state(_state(gm), before)
    gm.partial_fit(X)  # continues the fitted parameters
    assert gm.n_batches_ == 1


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_a_copy_between_batches_keeps_its_own_bounds(estimator):
    X = _stream(600, seed=4)
    model = estimator(n_components=3, random_state=0).partial_fit(X[:300])
    model._stats_params(np.float64)  # a cache, which copies leave behind
    snapshot = copy.copy(model)
    # copy.copy's shallow copy otherwise: the same objects, the caches dropped.
    assert vars(snapshot).keys() == vars(model).keys() - set(model._caches)
    for name, value in vars(snapshot).items():
        assert (value is vars(model)[name]) == (name != "lower_bounds_"), name
    model.partial_fit(X[300:])
    assert (snapshot.n_batches_, len(snapshot.lower_bounds_)) == (1, 1)
    assert len(model.lower_bounds_) == 2


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_partial_fit_appends_its_bound_in_place(estimator):
    """A call's cost must not grow with the batches seen: each bound is
    appended to the model's list, as scikit-learn's online estimators append
    theirs (a new list per call copied every earlier bound: 45 us a call after
    1e4 batches). A failed call appends nothing."""
    X = _stream(900, seed=4)
    model = estimator(n_components=3, random_state=0).partial_fit(X[:300])
    bounds = model.lower_bounds_
    model.partial_fit(X[300:600])
    assert model.lower_bounds_ is bounds
    assert bounds == [model.lower_bounds_[0], model.lower_bound_]
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[600:, :1])
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(np.full_like(X[600:], np.nan))
    assert model.lower_bounds_ is bounds and len(bounds) == 2
    model.partial_fit(X[600:])
    assert model.lower_bounds_ is bounds and len(bounds) == 3


# -------------------------------------------------------- the second call
def _em_log_resp(model, X):
    with np.errstate(divide="ignore"):
        log_w = np.log(model.weights_)
    return ref.estep_rows(
        X, log_w, model.means_, model.precisions_cholesky_, model.covariance_type
    )[2]


@pytest.mark.parametrize("offset, decay", [(3.0, 0.8), (0.0, 1.0)], ids=["offset3", "plain_mean"])
@pytest.mark.parametrize("dropped", [False, True], ids=["exact", "min_responsibility"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_second_batch_is_the_averaged_statistics_step(covariance_type, dropped, offset, decay):
    """s = (1 - rho) s_1 / W_1 + rho s_2 / W_2 then the M-step: the statistics of
    both batches with weights (1 - rho) w_1 / W_1 and rho w_2 / W_2 (reference).
    With ``min_responsibility``, both batches' responsibilities below it are 0
    ('tied' ignores it). learning_offset=0 is valid, as in scikit-learn's
    LatentDirichletAllocation: with learning_decay=1, rho_t = 1 / t and the
    running statistics are the plain mean of the batches'."""
    X1, X2 = _stream(1200, seed=5), _stream(700, seed=6)
    rng = np.random.RandomState(7)
    w1, w2 = rng.uniform(0.5, 2.0, len(X1)), rng.uniform(0.5, 2.0, len(X2))
    gm = GaussianMixture(
        3, covariance_type=covariance_type, learning_offset=offset, learning_decay=decay,
        **explicit_init(covariance_type, X1),
    )  # fmt: skip
    r1 = np.exp(_em_log_resp(_as_model(gm, covariance_type, X1), X1))
    threshold = gap_threshold(r1, low=1e-12, high=0.3) if dropped else 0.0
    gm.set_params(min_responsibility=threshold)
    if covariance_type == "tied":
        threshold = 0.0
    r1 = ref.drop_below(r1, threshold)
    gm.partial_fit(X1, sample_weight=w1)
    r2 = ref.drop_below(np.exp(_em_log_resp(gm, X2)), threshold)
    gm.partial_fit(X2, sample_weight=w2)
    rho = (offset + 2) ** -decay
    weights = np.r_[(1 - rho) * w1 / w1.sum(), rho * w2 / w2.sum()]
    want_w, want_m, want_c, want_pc = ref.m_step(
        np.r_[X1, X2], np.r_[r1, r2], gm.reg_covar, covariance_type, sample_weight=weights
    )
    assert_allclose(gm.weights_, want_w, rtol=1e-10)
    assert_allclose(gm.means_, want_m, rtol=1e-10)
    assert_allclose(gm.covariances_, want_c, rtol=1e-10)
    assert_allclose(gm.precisions_cholesky_, want_pc, rtol=1e-9, atol=1e-14)
    assert gm.n_batches_ == 2 and len(gm.lower_bounds_) == 2


def _as_model(gm, covariance_type, X):
    """The explicit start as a model the reference E-step reads."""
    start = copy.copy(gm)
    start.weights_ = gm.weights_init
    start.means_ = gm.means_init
    start.precisions_cholesky_ = ref.precision_cholesky_from_precisions(
        gm.precisions_init, covariance_type
    )
    return start


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_second_batch_is_the_svi_step(covariance_type):
    """SVI: the natural parameters move to (1 - rho) lambda + rho lambda_hat, with
    lambda_hat the posterior of the batch's statistics scaled to total_samples;
    the posterior is linear in the statistics, so this is the posterior of both
    batches weighted (1 - rho) N / W_1 and rho N / W_2 (reference)."""
    X1, X2 = _stream(800, seed=8), _stream(500, seed=9)
    total = 5000.0
    bgm = BayesianGaussianMixture(
        n_components=3, covariance_type=covariance_type, init_params="random_from_data",
        random_state=1, total_samples=total, learning_offset=2.0,
    )  # fmt: skip
    bgm.partial_fit(X1)
    prior_type = bgm.weight_concentration_prior_type
    prior = vi_prior(bgm)
    # The first step's responsibilities: those of the initialisation.
    start = BayesianGaussianMixture(
        n_components=3, covariance_type=covariance_type, init_params="random_from_data",
        random_state=1, max_iter=0,
    )  # fmt: skip
    fit_quiet(start, X1)
    r1 = np.exp(ref_vi.log_resp(X1, vi_posterior(start), covariance_type, prior_type)[0])
    r2 = np.exp(ref_vi.log_resp(X2, vi_posterior(bgm), covariance_type, prior_type)[0])
    bgm.partial_fit(X2)
    rho = (2.0 + 2) ** -0.7
    weights = np.r_[
        np.full(len(X1), (1 - rho) * total / len(X1)), np.full(len(X2), rho * total / len(X2))
    ]
    want = ref_vi.posterior(
        np.r_[X1, X2], np.r_[r1, r2], weights, prior, bgm.reg_covar, covariance_type
    )
    for name in ("mean_precision", "means", "degrees_of_freedom", "covariances"):
        assert_allclose(getattr(bgm, name + "_"), want[name], rtol=1e-9, err_msg=name)


# ------------------------------------------------------------- streams
@pytest.mark.slow
@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_one_pass_over_a_stationary_stream_matches_batch_em(estimator, covariance_type):
    """1e6 rows in batches of 1e4, one pass: held-out log-likelihood per row
    within 0.01 of batch EM run to convergence on the same rows."""
    X = _stream(1_000_000, seed=10)
    held_out = _stream(20_000, seed=11)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    if estimator is BayesianGaussianMixture:
        kw["total_samples"] = len(X)
    online = estimator(**kw)
    for start in range(0, len(X), 10_000):
        online.partial_fit(X[start : start + 10_000])
    batch = fit_quiet(estimator(**{k: v for k, v in kw.items() if k != "total_samples"}), X)
    assert online.n_batches_ == 100
    assert abs(online.score(held_out) - batch.score(held_out)) < 0.01


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_a_drifting_component_is_followed(covariance_type):
    """Component 0's mean moves by 3 over the stream; after the drift the model's
    nearest mean is within 0.3 of where it went."""
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0, learning_decay=0.6)
    n_batches = 120
    for t in range(n_batches):
        shift = 3.0 * min(1.0, t / 80)
        gm.partial_fit(_stream(2000, seed=100 + t, shift=shift))
    target = np.array([-6.0 + 3.0, 3.0])
    assert np.min(np.linalg.norm(gm.means_ - target, axis=1)) < 0.3


ALL_TYPES = (*COV_TYPES, "tied-diagonal", "tied-spherical")


@pytest.mark.parametrize("min_responsibility", [0.0, 1e-8], ids=["exact", "min_resp"])
@pytest.mark.parametrize("covariance_type", ALL_TYPES)
def test_a_component_without_rows_for_many_batches_keeps_its_place(
    covariance_type, min_responsibility
):
    """A component that gets no rows decays in the running statistics until
    its count is down to scikit-learn's 10 eps offset, whose pull then moved
    its mean to the origin and blew up its variance (the update of an empty
    component); its rows, when they came back, were never taken again. A
    later batch's update keeps such a starved component's mean (and its own
    covariance) where the last rows left it; its weight still goes to ~0."""
    rng = np.random.RandomState(3)

    def rows(n, with_b):
        a = rng.normal(size=(n, 2))
        return np.r_[a, rng.normal(size=(n, 2)) + 100.0] if with_b else a

    gm = GaussianMixture(
        2, covariance_type=covariance_type, means_init=[[0.0, 0.0], [100.0, 100.0]],
        learning_offset=0.0, learning_decay=0.51, min_responsibility=min_responsibility,
    )  # fmt: skip
    gm.partial_fit(rows(20, True))
    b = int(np.argmin(np.abs(gm.means_[:, 0] - 100.0)))
    for _ in range(600):  # B's running count decays to e^-48
        gm.partial_fit(rows(20, False))
    assert gm.weights_[b] < 1e-15
    assert_allclose(gm.means_[b], [100.0, 100.0], atol=1.0)
    assert np.all(np.asarray(gm.covariances_) < 10.0)
    # Rows that come back are taken at once, however small the step (here
    # 1e-8, where the running count they bring stays below the starved floor).
    late = copy.deepcopy(gm).set_params(learning_decay=1.0)
    late.n_batches_ = 10**8
    late.partial_fit(np.r_[rows(20, False), rng.normal(size=(5, 2)) + 110.0])
    assert_allclose(late.means_[b], [110.0, 110.0], atol=1.0)
    for _ in range(100):
        gm.partial_fit(rows(20, True))
    assert_allclose(gm.means_[b], [100.0, 100.0], atol=1.0)
    assert gm.weights_[b] > 0.3


# --------------------------------------------------------- state and API
def _state(model):
    return {k: copy.deepcopy(v) for k, v in vars(model).items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        _assert_same_value(a[k], b[k], k)


def _assert_same_value(a, b, name):
    """Equal arrays and sequences of values (the kept E-step inputs, for one)."""
    if isinstance(a, np.ndarray):
        assert_array_equal(a, b, err_msg=name)
    elif dataclasses.is_dataclass(a):  # a cached VariationalPrior
        assert type(a) is type(b), name
        _assert_same_value(tuple(vars(a).values()), tuple(vars(b).values()), name)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), name
        for x, y in zip(a, b, strict=True):
            _assert_same_value(x, y, name)
    else:
        assert a == b, name


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("n_calls", [1, 2])
def test_bad_batches_leave_the_online_state_untouched(estimator, n_calls):
    X = _stream(600, seed=12)
    gm = estimator(n_components=3, random_state=0).partial_fit(X)
    if n_calls == 2:
        gm.partial_fit(X[:100])
    before = _state(gm)
    bad = X[:50].copy()
    bad[3, 1] = np.nan
    cases = [
        (lambda: gm.partial_fit(X[:50, :1]), ValueError, "features"),
        (lambda: gm.partial_fit(bad), ValueError, "NaN"),
        (lambda: gm.partial_fit(X[:50], sample_weight=-np.ones(50)), ValueError, "negative"),
        (lambda: gm.partial_fit(X[:50], sample_weight=np.ones(3)), ValueError, "shape"),
        (lambda: gm.partial_fit(X[:50], sample_weight=np.full(50, 1e-320)), ValueError,
         "below the smallest normal float64"),
        (lambda: gm.set_params(learning_decay=0.5).partial_fit(X), InvalidParameterError,
         "learning_decay"),
        (lambda: gm.set_params(learning_decay=1.5).partial_fit(X), InvalidParameterError,
         "learning_decay"),
        (lambda: gm.set_params(learning_offset=-0.5).partial_fit(X),
         InvalidParameterError, "learning_offset"),
        (lambda: gm.set_params(reg_covar=-1.0).partial_fit(X), InvalidParameterError,
         "reg_covar"),
        # Valid new step parameters, then bad rows: the values checked are
        # not remembered either.
        (lambda: gm.set_params(learning_decay=0.8, reg_covar=1e-3).partial_fit(bad),
         ValueError, "NaN"),
        (lambda: gm.set_params(n_components=5).partial_fit(X), ValueError,
         "n_components=5, but this model was fitted with 3 components"),
        # The parameters that shape the fitted arrays (the message blamed the
        # fitted attributes, or named the precisions' shape).
        (lambda: gm.set_params(covariance_type="diag").partial_fit(X), ValueError,
         "covariance_type='diag', but this model's partial_fit started with 'full'"),
    ]  # fmt: skip
    reset = dict(learning_decay=0.7, learning_offset=10.0, reg_covar=1e-6, n_components=3)
    reset["covariance_type"] = "full"
    if estimator is BayesianGaussianMixture:
        prior = "weight_concentration_prior_type"
        change = {prior: "dirichlet_distribution"}
        cases.append((lambda: gm.set_params(**change).partial_fit(X), ValueError,
                      f"{prior}='dirichlet_distribution', but this model's"))  # fmt: skip
        reset[prior] = "dirichlet_process"
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
        gm.set_params(**reset)
        _assert_same_state(_state(gm), before)
    # A later batch may be smaller than n_components; the first may not.
    gm.partial_fit(X[:2])
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(3).partial_fit(X[:2])


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied-diagonal"])
def test_damaged_online_statistics_are_refused(covariance_type):
    """Running statistics whose shapes do not match the batch's (a model file
    edited by hand, an attribute set by mistake) are an error naming the
    online state, never read out of bounds by the blend kernel."""
    X = _stream(400, seed=20)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    gm.partial_fit(X).partial_fit(X[:100])
    nk, s1, s2_mat, s2_diag, shift, scalars = gm.online_stats_
    for damaged in [
        (nk[:2], s1, s2_mat, s2_diag, shift, scalars),
        (nk, s1, s2_mat, s2_diag[:, :1], shift, scalars),
        (nk, s1[:2], s2_mat, s2_diag[:2], shift[:2], scalars),
    ]:
        gm.online_stats_ = damaged
        before = _state(gm)
        with pytest.raises(ValueError, match="online state is damaged"):
            gm.partial_fit(X[:100])
        _assert_same_state(_state(gm), before)


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("covariance_type", [*COV_TYPES, "tied-diagonal", "tied-spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_finite_or_far_rows_in_a_later_batch_are_refused(estimator, covariance_type, dtype):
    # An unweighted batch of the fitted dtype skips the finiteness scan before
    # the E-step; the pass's non-finite log-likelihood must still bring
    # scikit-learn's message, for NaN and both infinities anywhere, and a
    # zero-weighted bad row (which the pass skips) must be refused up front.
    # A finite row whose squared distances overflow gets a message naming the
    # rows' scale (it named ill-defined covariances).
    X = _stream(300, seed=19).astype(dtype)
    model = estimator(n_components=3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X).partial_fit(X[:100])
    before = _state(model)
    for value, match in [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")]:
        for row, col in [(0, 0), (37, 1), (99, 1)]:
            bad = X[:100].copy()
            bad[row, col] = value
            with pytest.raises(ValueError, match=match):
                model.partial_fit(bad)
            weight = np.ones(100)
            weight[row] = 0.0
            with pytest.raises(ValueError, match=match):
                model.partial_fit(bad, sample_weight=weight)
            _assert_same_state(_state(model), before)
    far = X[:100].copy()
    far[17, 0] = np.finfo(dtype).max / 4
    for weight in (None, np.ones(100)):
        with pytest.raises(ValueError, match="some rows lie so far from every component"):
            model.partial_fit(far, sample_weight=weight)
        _assert_same_state(_state(model), before)


def test_fit_after_partial_fit_starts_afresh():
    X = _stream(800, seed=13)
    gm = GaussianMixture(3, random_state=0).partial_fit(X).partial_fit(X)
    fit_quiet(gm, X)
    fresh = fit_quiet(GaussianMixture(3, random_state=0), X)
    _assert_models_close(gm, fresh, rtol=0)
    assert not hasattr(gm, "n_batches_") and not hasattr(gm, "online_stats_")


def test_online_state_survives_save_load(tmp_path):
    X1, X2, X3 = _stream(700, seed=14), _stream(300, seed=15), _stream(300, seed=16)
    gm = GaussianMixture(3, covariance_type="tied", random_state=0)
    gm.partial_fit(X1).partial_fit(X2)
    path = tmp_path / "online.npz"
    fastmix.save(gm, path)
    loaded = fastmix.load(path)
    assert loaded.n_batches_ == 2
    gm.partial_fit(X3)
    loaded.partial_fit(X3)
    _assert_models_close(loaded, gm, rtol=0)
    assert not hasattr(clone(gm), "n_batches_")


@pytest.mark.parametrize(
    "estimator, start, change",
    [
        (GaussianMixture, {"covariance_type": "spherical"}, {"covariance_type": "tied-diagonal"}),
        (GaussianMixture, {"covariance_type": "diag"}, {"covariance_type": "tied"}),
        (
            BayesianGaussianMixture,
            {"weight_concentration_prior_type": "dirichlet_distribution"},
            {"weight_concentration_prior_type": "dirichlet_process"},
        ),
    ],
)
def test_a_loaded_stream_refuses_changed_structural_parameters(tmp_path, estimator, start, change):
    """As the saved model would: the loaded one knows what its partial_fit started with.

    Spherical to tied-diagonal with K == D was accepted, reading the K
    spherical precisions as D per-feature ones.
    """
    X = _stream(900, seed=18)
    model = estimator(n_components=2, random_state=0, **start)
    model.partial_fit(X[:300]).partial_fit(X[300:600])
    fastmix.save(model, tmp_path / "online.npz")
    loaded = fastmix.load(tmp_path / "online.npz")
    before = _state(loaded)
    ((name, value),) = change.items()
    started = f"{name}='{value}', but this model's partial_fit started"
    with pytest.raises(ValueError, match=started):
        loaded.set_params(**change).partial_fit(X[600:])
    loaded.set_params(**start)
    _assert_same_state(_state(loaded), before)
    loaded.partial_fit(X[600:])
    model.partial_fit(X[600:])
    _assert_models_close(loaded, model, rtol=0)


def test_partial_fit_float32_stays_float32():
    X = _stream(900, seed=17).astype(np.float32)
    gm = GaussianMixture(3, random_state=0).partial_fit(X).partial_fit(X[:300].astype(np.float64))
    assert gm.means_.dtype == np.float32 and gm.covariances_.dtype == np.float32


@pytest.mark.parametrize(
    "estimator, covariance_type",
    [
        (estimator, ct)
        for estimator in (GaussianMixture, BayesianGaussianMixture)
        for ct in (*COV_TYPES, "tied-diagonal", "tied-spherical")
    ],
)
def test_partial_fit_holds_blas_to_one_thread_where_it_is_called(
    monkeypatch, estimator, covariance_type
):
    """The first partial_fit (initialisation) and fit always hold BLAS to one
    thread; later batches only where the update multiplies or factors
    matrices ('full', 'tied'), sparing the limit's library calls on the
    diagonal types' updates, serial kernels for both estimators."""
    import contextlib

    from fastmix import _base

    entered = []

    @contextlib.contextmanager
    def counting():
        entered.append(1)
        yield

    monkeypatch.setattr(_base, "single_threaded_blas", counting)
    X = _stream(600, seed=34)
    model = estimator(n_components=3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:300])
    assert len(entered) == 1
    model.partial_fit(X[300:])
    diagonal = covariance_type not in ("full", "tied")
    assert len(entered) == (1 if diagonal else 2)
    fit_quiet(model.set_params(max_iter=2), X)
    assert len(entered) == (2 if diagonal else 3)


def test_partial_fit_accepts_memmaps_and_dask_arrays(tmp_path):
    da = pytest.importorskip("dask.array")
    X1, X2 = _stream(1000, seed=18), _stream(1000, seed=19)
    path = tmp_path / "x2.npy"
    np.save(path, X2)
    kw = dict(n_components=3, covariance_type="diag", **explicit_init("diag", X1))
    ref_model = GaussianMixture(**kw).partial_fit(X1).partial_fit(X2)
    on_memmap = GaussianMixture(**kw).partial_fit(X1).partial_fit(np.load(path, mmap_mode="r"))
    _assert_models_close(on_memmap, ref_model, rtol=0)
    with __import__("dask").config.set(scheduler="sync"):
        on_dask = GaussianMixture(**kw).partial_fit(da.from_array(X1, chunks=300))
        on_dask.partial_fit(da.from_array(X2, chunks=400))
    _assert_models_close(on_dask, ref_model, rtol=1e-10)


def test_dask_ml_incremental_streams_blocks():
    """dask_ml.wrappers.Incremental calls partial_fit once per block (in order here)."""
    da = pytest.importorskip("dask.array")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = _stream(6000, seed=20)
    kw = dict(n_components=3, covariance_type="full", **explicit_init("full", X))
    with __import__("dask").config.set(scheduler="sync"):
        inc = wrappers.Incremental(GaussianMixture(**kw), shuffle_blocks=False)
        inc.fit(da.from_array(X, chunks=1500))
    by_hand = GaussianMixture(**kw)
    for start in range(0, len(X), 1500):
        by_hand.partial_fit(X[start : start + 1500])
    assert inc.estimator_.n_batches_ == 4
    _assert_models_close(inc.estimator_, by_hand, rtol=1e-12)


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_dask_token_reads_the_bounds_as_one_array(estimator, monkeypatch):
    """dask-ml's Incremental tokenizes the model at every call, and dask
    pickled lower_bounds_ item by item: 71 ms a call after 2e4 batches. The
    token is the state with the bounds as one array: equal for equal models,
    another after a step or for another bound."""
    tokenize = pytest.importorskip("dask.base").tokenize
    X = _stream(600, seed=21)
    model = estimator(n_components=3, random_state=0).partial_fit(X).partial_fit(X)
    token = tokenize(model)
    assert tokenize(copy.deepcopy(model)) == token
    other = copy.deepcopy(model)
    other.lower_bounds_[0] += 1.0
    assert tokenize(other) != token
    model.partial_fit(X)
    assert tokenize(model) != token
    # The model is not pickled whole (its bounds item by item with it).
    pickled = []
    real_dumps = pickle.dumps
    monkeypatch.setattr(
        pickle, "dumps", lambda obj, *a, **k: pickled.append(obj) or real_dumps(obj, *a, **k)
    )
    tokenize(model)
    assert not any(isinstance(obj, estimator) for obj in pickled)


def test_gaussian_mixture_constructor_adds_only_keyword_only_parameters():
    import inspect

    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    ours = inspect.signature(GaussianMixture.__init__).parameters
    theirs = inspect.signature(SkGaussianMixture.__init__).parameters
    extra = {"learning_decay": 0.7, "learning_offset": 10.0, "min_responsibility": 0.0}
    assert list(ours) == list(theirs) + list(extra)
    for name, p in theirs.items():
        assert (ours[name].default, ours[name].kind) == (p.default, p.kind), name
    for name, default in extra.items():
        assert (ours[name].default, ours[name].kind) == (default, inspect.Parameter.KEYWORD_ONLY)


def test_cli_fit_online_reads_the_data_passes_times(tmp_path, monkeypatch, capsys):
    """``fastmix fit --online --passes 2`` reads the file's rows and runs the
    statistics kernels over them exactly twice, and no per-row pass: no BIC
    pass after the fit (its JSON says null, its text says why)."""
    from fastmix._sources import _memory
    from fastmix.cli import main

    X = _stream(6000, seed=23)
    np.save(tmp_path / "x.npy", X)
    rows = {"stats": 0, "outputs": 0}

    def counting(name, kernel):
        def call(X, *args, **kwargs):
            rows[name] += X.shape[0]
            return kernel(X, *args, **kwargs)

        return call

    inside = []

    def reading(read):
        def call(self, *args):  # (start, stop), or (fd, start, stop) for O_DIRECT
            if not inside:  # not the buffered fallback of a refused O_DIRECT read
                rows["read"] += args[-1] - args[-2]
            inside.append(1)
            try:
                return read(self, *args)
            finally:
                inside.pop()

        return call

    rows["read"] = 0
    monkeypatch.setattr(_memory, "block_stats", counting("stats", _memory.block_stats))
    monkeypatch.setattr(_memory, "block_outputs", counting("outputs", _memory.block_outputs))
    for name in ("_read", "_read_direct"):
        monkeypatch.setattr(_memory.BlockSource, name, reading(getattr(_memory.BlockSource, name)))
    args = ["fit", str(tmp_path / "x.npy"), "-k", "3", "--online", "--batch-size", "1000"]
    assert main([*args, "--passes", "2", "--json", "--progress", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["bic"] is None
    # Each block is read from the file once per pass (not again for a check).
    assert rows == {"stats": 2 * len(X), "outputs": 0, "read": 2 * len(X)}
    assert main([*args, "--progress", "none"]) == 0
    assert "BIC:                    not computed" in capsys.readouterr().out


def test_cli_fit_online_progress(tmp_path, capsys):
    """``--progress none`` prints nothing; ``text`` prints each pass's first and
    last block, never "converged": online learning has no convergence, and two
    close batch bounds (below --tol) used to be reported as one."""
    from fastmix.cli import main

    X = _stream(6000, seed=31)
    np.save(tmp_path / "x.npy", X)
    args = ["fit", str(tmp_path / "x.npy"), "-k", "3", "--online", "--batch-size", "500"]
    assert main([*args, "--passes", "2", "--progress", "none"]) == 0
    assert capsys.readouterr().err == ""
    assert main([*args, "--passes", "2", "--progress", "text"]) == 0
    lines = capsys.readouterr().err.splitlines()[1:]  # after the intro line
    assert [line.split(",")[0] for line in lines] == ["fastmix fit: pass 1/2"] * 2 + [
        "fastmix fit: pass 2/2"
    ] * 2
    assert "iteration 12/12" in lines[1] and "iteration 12/12" in lines[3]
    assert not any("converged" in line or "max_iter" in line for line in lines)
    # Blocks whose rows all weigh zero are skipped, and not counted: each pass
    # still ends (its last line was missing, the count ran on into the next).
    w = np.r_[np.zeros(3000), np.ones(3000)]
    np.save(tmp_path / "w.npy", w)
    weighted = [*args, "--passes", "2", "--progress", "text", "--sample-weight"]
    assert main([*weighted, str(tmp_path / "w.npy")]) == 0
    lines = capsys.readouterr().err.splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == ["fastmix fit: pass 1/2"] * 2 + [
        "fastmix fit: pass 2/2"
    ] * 2
    assert "iteration 6/6" in lines[1] and "iteration 6/6" in lines[3]


def test_cli_fit_online_starts_from_a_block_that_can_start_it(tmp_path, capsys):
    """The first ``partial_fit`` initialises from its block: the shuffle never
    puts the short last block (or one with no weight) first, whatever the
    seed; blocks with no weight are skipped; a --batch-size too small to start
    from is refused before the data are read."""
    from fastmix.cli import main

    X = _stream(201, seed=5)  # 100 + 100 + 1 rows
    np.save(tmp_path / "x.npy", X)
    args = ["fit", str(tmp_path / "x.npy"), "-k", "3", "--online", "--batch-size", "100"]
    args += ["--json", "--progress", "none"]
    for seed in range(6):  # seeds 0, 1 and 4 drew the 1-row block first
        assert main([*args, "--random-state", str(seed)]) == 0, seed
        assert json.loads(capsys.readouterr().out)["n_iter"] == 3
    # The same order by hand: the first full block swapped to the front.
    rng = np.random.RandomState(0)
    order = rng.permutation(3)
    first = int(np.flatnonzero(order < 2)[0])
    order[[0, first]] = order[[first, 0]]
    online = GaussianMixture(3, random_state=0)
    for b in order:
        online.partial_fit(X[100 * b : 100 * b + 100])
    assert main([*args, "--random-state", "0"]) == 0
    assert_allclose(json.loads(capsys.readouterr().out)["means"], online.means_, rtol=1e-10)

    weights = np.ones(len(X))
    weights[:100] = 0.0  # the first block weighs nothing: skipped
    np.save(tmp_path / "w.npy", weights)
    for seed in range(3):
        assert (
            main([*args, "--random-state", str(seed), "--sample-weight", str(tmp_path / "w.npy")])
            == 0
        )
        assert json.loads(capsys.readouterr().out)["n_iter"] == 2
    np.save(tmp_path / "w0.npy", np.zeros(len(X)))
    assert main([*args, "--sample-weight", str(tmp_path / "w0.npy")]) == 2
    assert "sample_weight is zero for every row" in capsys.readouterr().err

    small = [*args[:-4], "2", "--progress", "none"]
    assert main(small) == 2
    err = capsys.readouterr().err
    assert "--batch-size 2 is too small" in err and "--batch-size 3 or more" in err


def _direct_io(path):
    """Whether ``path``'s file system reads with O_DIRECT (not tmpfs, say)."""
    if not (sys.platform.startswith("linux") and hasattr(os, "O_DIRECT")):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    try:
        page = np.empty(8192, dtype=np.uint8)
        aligned = page[-page.ctypes.data % 4096 :][:4096]
        os.preadv(fd, [aligned], 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize("layout", ["npy", "raw-offset", "fortran", "copy-on-write", "to-float64"])
def test_block_source_read_ahead(tmp_path, monkeypatch, layout, direct):
    """``BlockSource.read_ahead`` yields exactly ``X[start:stop]`` in the
    source's dtype for every range: unaligned starts, the short last block,
    an empty range, any layout. O_DIRECT (a background thread) where the rows
    are a contiguous span of a file that allows it, else buffered reads."""
    from fastmix._sources import BlockSource

    X = _stream(3001, seed=32).astype(np.float32)
    if layout == "npy" or layout == "to-float64":
        np.save(tmp_path / "x.npy", X)
        mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    elif layout == "raw-offset":
        (tmp_path / "x.f32").write_bytes(b"123" + X.tobytes())
        mapped = np.memmap(tmp_path / "x.f32", np.float32, "r", offset=3, shape=X.shape)
    elif layout == "fortran":
        np.save(tmp_path / "x.npy", np.asfortranarray(X))
        mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    else:
        np.save(tmp_path / "x.npy", X)
        mapped = np.load(tmp_path / "x.npy", mmap_mode="c")
    if direct and not _direct_io(mapped.filename):
        pytest.skip("no O_DIRECT reads here")
    if not direct:
        monkeypatch.delattr(os, "O_DIRECT", raising=False)
    dtype = np.float64 if layout == "to-float64" else np.float32
    calls = []
    real = BlockSource._read_direct

    def spy(self, fd, start, stop):
        calls.append((start, stop))
        return real(self, fd, start, stop)

    monkeypatch.setattr(BlockSource, "_read_direct", spy)
    source = BlockSource(mapped, dtype)
    ranges = [(1000, 2000), (7, 1000), (2000, 3001), (5, 5), (0, 1), (2999, 4000), (10, 5)]
    # As X[start:stop] clips them (a generator: read one item ahead).
    want = [(1000, 2000), (7, 1000), (2000, 3001), (5, 5), (0, 1), (2999, 3001), (10, 10)]
    got = list(source.read_ahead(iter(ranges)))
    assert [(start, stop) for start, stop, _ in got] == want
    for start, stop, block in got:
        assert block.dtype == dtype and block.flags.c_contiguous and block.flags.aligned
        assert_array_equal(block, X[start:stop].astype(dtype))
    uses_direct = direct and layout in ("npy", "raw-offset", "to-float64")
    assert calls == (want if uses_direct else [])


def test_block_source_read_ahead_falls_back_when_direct_reads_fail(tmp_path, monkeypatch):
    """A file system that opens with O_DIRECT but refuses its reads (EINVAL)
    gets the buffered read; a file that shrank is an OSError naming it."""
    from fastmix._sources import BlockSource

    X = _stream(500, seed=33)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    source = BlockSource(mapped, X.dtype)
    if source._open_direct() is None:
        pytest.skip("no O_DIRECT here")

    tries = []

    def refuse(fd, buffers, offset, *flags):
        tries.append(offset)
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "preadv", refuse)
    blocks = [block for _, _, block in source.read_ahead([(10, 200), (300, 500), (0, 5)])]
    assert_array_equal(blocks[0], X[10:200])
    assert_array_equal(blocks[1], X[300:500])
    assert_array_equal(blocks[2], X[0:5])
    assert len(tries) == 1  # refused once: buffered reads from then on
    monkeypatch.undo()
    with open(tmp_path / "x.npy", "r+b") as f:
        f.truncate(mapped.offset + 100 * X.shape[1] * X.itemsize)
    with pytest.raises(OSError, match="ended before row 500"):
        list(BlockSource(mapped, X.dtype).read_ahead([(0, 50), (300, 500)]))


def test_block_source_read_ahead_stops_its_reader_when_closed(tmp_path):
    """A reader closed early (the caller's partial_fit raised) joins its thread
    and closes its file at once, not at garbage collection."""
    import threading

    from fastmix._sources import BlockSource

    X = _stream(2000, seed=35)
    np.save(tmp_path / "x.npy", X)
    source = BlockSource(np.load(tmp_path / "x.npy", mmap_mode="r"), X.dtype)
    fds = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    blocks = source.read_ahead([(0, 500), (500, 1000), (1000, 1500)])
    start, stop, block = next(blocks)
    assert_array_equal(block, X[:500])
    blocks.close()
    assert not any(t.name.startswith("fastmix-read") for t in threading.enumerate())
    if fds is not None:
        assert set(os.listdir("/proc/self/fd")) <= fds


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
def test_block_source_prefetch_is_only_a_hint(tmp_path, monkeypatch):
    """A file system that refuses the read-ahead advice (OSError) costs
    nothing: prefetch returns and the block still reads."""
    from fastmix._sources import BlockSource

    X = _stream(300, seed=30)
    np.save(tmp_path / "x.npy", X)
    source = BlockSource(np.load(tmp_path / "x.npy", mmap_mode="r"), X.dtype)

    def refuse(fd, offset, length, advice):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refuse)
    source.prefetch(100, 200)
    assert_array_equal(source[100:200], X[100:200])


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
def test_cli_fit_online_reads_the_next_block_while_fitting(tmp_path, monkeypatch, direct):
    """The next shuffled block is asked for before this block's ``partial_fit``:
    submitted to the reading thread (O_DIRECT), or read here with the one
    after it asked of the disk (POSIX_FADV_WILLNEED on its span in the .npy
    file). Across passes too; the very last block asks for none."""
    from fastmix._base import BaseMixture
    from fastmix._sources import BlockSource, _memory
    from fastmix.cli import main

    X = _stream(5000, seed=29)
    np.save(tmp_path / "x.npy", X)
    header = np.load(tmp_path / "x.npy", mmap_mode="r").offset
    if direct and not _direct_io(str(tmp_path / "x.npy")):
        pytest.skip("no O_DIRECT reads here")
    if not direct:
        if not (sys.platform.startswith("linux") and hasattr(os, "posix_fadvise")):
            pytest.skip("posix_fadvise's read-ahead is counted on Linux")
        monkeypatch.delattr(os, "O_DIRECT", raising=False)
    events = []
    real_partial_fit = BaseMixture.partial_fit

    def partial_fit(self, X, y=None, sample_weight=None):
        events.append(("fit", np.asarray(X)[0].copy(), len(X)))
        return real_partial_fit(self, X, y, sample_weight)

    monkeypatch.setattr(BaseMixture, "partial_fit", partial_fit)
    if direct:

        class Pool(_memory.ThreadPoolExecutor):
            def submit(self, fn, *args):
                events.append(("read", args[-2], args[-1]))
                return super().submit(fn, *args)

        monkeypatch.setattr(_memory, "ThreadPoolExecutor", Pool)
    else:
        real_fadvise = os.posix_fadvise
        real_getitem = BlockSource.__getitem__

        def fadvise(fd, offset, length, advice):
            if advice == os.POSIX_FADV_WILLNEED:
                events.append(("prefetch", offset, length))
            return real_fadvise(fd, offset, length, advice)

        def getitem(self, key):
            events.append(("read", key.start, key.stop))
            return real_getitem(self, key)

        monkeypatch.setattr(os, "posix_fadvise", fadvise)
        monkeypatch.setattr(BlockSource, "__getitem__", getitem)
    args = ["fit", str(tmp_path / "x.npy"), "-k", "3", "--online", "--batch-size", "1500"]
    assert main([*args, "--passes", "2", "--progress", "none", "--random-state", "4"]) == 0

    # 4 blocks a pass, 2 passes.
    kinds = [e[0] for e in events]
    if direct:  # the first block's read, then each next one's before this one's fit
        assert kinds == ["read"] + ["read", "fit"] * 7 + ["fit"]
    else:  # every block but the very last prefetches the next
        assert kinds == ["read", "prefetch", "fit"] * 7 + ["read", "fit"]
    reads = [e for e in events if e[0] == "read"]
    fits = [e for e in events if e[0] == "fit"]
    for (_, start, stop), (_, first_row, n_rows) in zip(reads, fits, strict=True):
        assert_array_equal(X[start], first_row)
        assert stop - start == n_rows
    row_bytes = X.shape[1] * X.itemsize
    prefetches = [e for e in events if e[0] == "prefetch"]
    for (_, offset, length), (_, start, stop) in zip(prefetches, reads[1:], strict=False):
        assert (offset - header, length) == (start * row_bytes, (stop - start) * row_bytes)
    # Each pass visits every block once.
    firsts = [e[1] for e in reads]
    assert sorted(firsts[:4]) == sorted(firsts[4:]) == [0, 1500, 3000, 4500]


def test_cli_fit_online_streams_blocks(tmp_path):
    import json
    import subprocess
    import sys

    X = _stream(20_000, seed=21)
    data = tmp_path / "x.npy"
    np.save(data, X)
    cmd = [sys.executable, "-m", "fastmix", "fit", str(data), "-k", "3", "--online"]
    done = subprocess.run(
        [*cmd, "--batch-size", "2000", "--passes", "2", "--json", "--progress", "none"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["online"] and summary["n_iter"] == 20
    batch = fit_quiet(GaussianMixture(3, random_state=0), X)
    held_out = _stream(5000, seed=22)
    online = GaussianMixture(3).set_params(random_state=0)
    # The same blocks in the same shuffled order, by hand.
    rng = np.random.RandomState(0)
    starts = np.arange(0, len(X), 2000)
    for _ in range(2):
        for start in starts[rng.permutation(len(starts))]:
            online.partial_fit(X[start : start + 2000])
    assert_allclose(summary["means"], online.means_, rtol=1e-10)
    assert abs(online.score(held_out) - batch.score(held_out)) < 0.01
    bad = subprocess.run([*cmd[:-1], "--passes", "2"], capture_output=True, text=True)
    assert bad.returncode == 2 and "need --online" in bad.stderr


# ------------------------------------------------ E-step inputs of the update
DIAG_TYPES = ["diag", "spherical", "tied-diagonal", "tied-spherical"]


def _assert_same_params(kept, fresh):
    assert kept.code == fresh.code
    for name in ("shift", "prec_mat", "prec_diag", "offset", "bias"):
        a, b = getattr(kept, name), getattr(fresh, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert_array_equal(a, b, err_msg=name)


# Each diagonal type, and another whose fitted arrays have other shapes.
_OTHER_TYPE = {
    "diag": "spherical",
    "spherical": "diag",
    "tied-diagonal": "tied-spherical",
    "tied-spherical": "tied-diagonal",
}


@pytest.mark.parametrize("covariance_type", [*COV_TYPES, "tied-diagonal", "tied-spherical"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_of_scaled_statistics_is_bitwise_the_scaled_copy(covariance_type, dtype):
    """GaussianMixture's online step updates from its running statistics per
    row in the batch's units: _m_step(stats, scale=c) is bitwise
    _m_step(stats.scaled(c)), which the diagonal types' kernel computes
    without the copy (the count offset included)."""
    X = _stream(500, seed=25).astype(dtype)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:300])
    model.partial_fit(X[300:])  # blended statistics, per row
    stats = fastmix._stats.Stats.from_arrays(model.online_stats_)
    scaled, copied = copy.deepcopy(model), copy.deepcopy(model)
    scaled._m_step(stats, dtype, scale=200.0)
    copied._m_step(stats.scaled(200.0), dtype)
    assert stats.sum_w == pytest.approx(1.0)  # the sums were left per row
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        assert_array_equal(getattr(scaled, name), getattr(copied, name), err_msg=name)
    if dtype == np.float64:
        # The scale is not lost on the way: in exact arithmetic only the count
        # offset sees it, but the scaled sums round otherwise (a float32
        # model's attributes round that away).
        unscaled = copy.deepcopy(model)
        unscaled._m_step(stats, dtype)
        assert any(
            not np.array_equal(getattr(unscaled, name), getattr(scaled, name))
            for name in ("means_", "covariances_")
        )


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_cached_prior_follows_the_prior_attributes(covariance_type, dtype):
    """BayesianGaussianMixture builds its VariationalPrior once and reuses it
    while the prior attributes are the same objects with the same values: a
    prior attribute edited in place, or replaced, is read afresh (a model
    restored from a pickle, which has no cache, takes the same step). A
    float32 model's prior holds float64 copies, which only the bytes check
    sees go stale."""
    X = _stream(600, seed=24).astype(dtype)
    model = BayesianGaussianMixture(
        n_components=3, covariance_type=covariance_type, random_state=0
    )
    model.partial_fit(X[:300])
    assert "_prior" in vars(model)
    for edit in (
        lambda m: m.mean_prior_.__iadd__(1.0),  # in place
        lambda m: setattr(m, "mean_precision_prior_", 10.0),  # replaced
    ):
        fresh = pickle.loads(pickle.dumps(model))
        assert "_prior" not in vars(fresh)
        assert "_prior" in vars(model)  # pickling leaves the model as it was
        for m in (model, fresh):
            edit(m)
            m.partial_fit(X[300:])
        _assert_same_state(
            {k: v for k, v in vars(model).items() if k not in model._caches},
            {k: v for k, v in vars(fresh).items() if k not in fresh._caches},
        )
        prior = model._variational_prior()
        assert_array_equal(prior.mean, model.mean_prior_)
        assert prior.mean_precision == model.mean_precision_prior_


@pytest.mark.parametrize("covariance_type", DIAG_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_leaves_the_next_estep_inputs_bitwise(covariance_type, dtype, monkeypatch):
    """GaussianMixture's diagonal updates compute the next E-step's inputs in
    their kernel; the next pass uses them while the fitted attributes hold the
    values they came from. They are bitwise what _kernel_params gives from
    those attributes (float32 models round first): a fit that uses them is
    bitwise a fit that never keeps them, and so is every partial_fit step.
    Never used once an attribute is edited in place, the covariance type
    changed or another dtype asked; never pickled; dropped when a fit ends."""
    X = _stream(600, seed=23).astype(dtype)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    model = fit_quiet(GaussianMixture(**params, max_iter=4), X)
    assert "_estep_inputs" not in vars(model)  # the best trial's parameters restored
    for step in (1, 2):
        model.partial_fit(X[100 * step : 100 * step + 200])
        assert "_estep_inputs" in vars(model)
        kept = model._stats_params(dtype)
        _assert_same_params(kept, model._kernel_params(dtype))
        assert kept.min_resp == model.min_responsibility
    restored = pickle.loads(pickle.dumps(model))
    assert "_estep_inputs" not in vars(restored)
    _assert_same_params(restored._stats_params(dtype), kept)
    # Without keeping them, a fit and two steps end bitwise the same.
    monkeypatch.setattr(GaussianMixture, "_keep_estep_inputs", lambda self, p, d: None)
    plain = fit_quiet(GaussianMixture(**params, max_iter=4), X)
    for step in (1, 2):
        plain.partial_fit(X[100 * step : 100 * step + 200])
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_array_equal(getattr(plain, name), getattr(model, name), err_msg=name)
    assert plain.lower_bounds_ == model.lower_bounds_
    monkeypatch.undo()
    # An edit in place: the kept inputs no longer apply.
    model.means_[0, 0] += 1.0
    after_edit = model._stats_params(dtype)
    assert after_edit.shift[0, 0] == model.means_[0, 0]
    _assert_same_params(after_edit, model._kernel_params(dtype))
    # Other dtype asked (float64 data on a float32 model): computed afresh.
    other = np.float64 if dtype == np.float32 else np.float32
    assert model._stats_params(other).shift.dtype == other
    # Another covariance type reads the attributes afresh (whose shapes it refuses).
    model.partial_fit(X[:200])
    model.set_params(covariance_type=_OTHER_TYPE[covariance_type])
    with pytest.raises(ValueError, match="precisions_cholesky_"):
        model._stats_params(dtype)
