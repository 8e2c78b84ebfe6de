"""'tied-diagonal' and 'tied-spherical' (issue 13, item 3): one diagonal covariance
(one variance) shared by every component, for both estimators.

scikit-learn 1.x has no such types, so nothing here is a parity test: the
statistics, the M-step and whole fits are pinned to tests/reference.py (EM) and
tests/reference_vi.py (variational), and the models are checked against 'tied',
'diag' and 'spherical' models that describe the same densities.
"""

import warnings

import numpy as np
import pytest
import reference as ref
import reference_vi as ref_vi
from conftest import INIT_PARAMS, fit_quiet, skewed_blobs, sklearn_blobs, vi_prior
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import fastmix
from fastmix import BayesianGaussianMixture, GaussianMixture, plot
from fastmix._sources import estep_outputs, estep_pass
from fastmix._stats import COV_CODES, stats_from_resp
from fastmix._update import (
    gaussian_parameters,
    kernel_params,
    log_det_cholesky,
    precision_cholesky,
    precision_cholesky_from_precisions,
)
from fastmix._variational import VariationalPrior, lower_bound, posterior

TYPES = ref.TIED_STRUCTURES
# What each type restricts: the per-component type and the shared (tied) one.
PER_COMPONENT = {"tied-diagonal": "diag", "tied-spherical": "spherical"}
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
DTYPES = [np.float64, np.float32]

pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def model_problem(seed, covariance_type, dtype, n_samples=700):
    """Data, the reference model as a ``dtype`` estimator holds it, and its kernel inputs."""
    X, log_w, means, pc = ref.random_problem(
        seed, covariance_type, n_samples=n_samples, n_features=4, n_components=3
    )
    means, pc = ref.round_model(means, pc, dtype)
    params = kernel_params(means, pc, covariance_type, log_w, dtype)
    return X.astype(dtype), log_w, means, pc, params


def zero_heavy_weights(n, seed):
    """Non-integer weights, about one in five exactly zero."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.2, 0.0, rng.uniform(0.1, 3.0, size=n))


def one_hot_on_rows(n, k, seed):
    """k-means++ / random_from_data responsibilities: K labelled rows, the rest unassigned."""
    r = np.zeros((n, k))
    r[np.random.default_rng(seed).choice(n, size=k, replace=False), np.arange(k)] = 1.0
    return r


def fitted_bounds(model, X, n_iter):
    """``lower_bounds_`` of ``model`` fitted with tol=0 for exactly ``n_iter`` iterations."""
    model = fit_quiet(model.set_params(tol=0.0, max_iter=n_iter, random_state=0), X)
    bounds = np.asarray(model.lower_bounds_)
    assert bounds.shape == (n_iter,) and model.lower_bound_ == bounds[-1]
    return bounds


def shared_precisions(model, n_components):
    """The fitted shared precisions repeated per component, as 'diag' / 'spherical' take them."""
    prec = np.asarray(model.precisions_, dtype=np.float64)
    shape = (n_components, prec.size) if prec.ndim else (n_components,)
    return np.broadcast_to(prec, shape).copy()


# --------------------------------------------------------------------------
# layouts and the kernel
# --------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", TYPES)
def test_kernel_inputs_are_diag_with_equal_rows(covariance_type):
    """The DIAG kernel code, one precision row repeated for every component, and
    the shared log-determinant in every component's constant."""
    _, log_w, means, pc, params = model_problem(0, covariance_type, np.float64)
    assert COV_CODES[covariance_type] == COV_CODES["diag"] == params.code
    assert np.shape(pc) == ((4,) if covariance_type == "tied-diagonal" else ())
    row = np.broadcast_to(np.asarray(pc) ** 2, (4,))
    assert_array_equal(params.prec_diag, np.broadcast_to(row, (3, 4)))
    log_det = log_det_cholesky(pc, covariance_type, 4)
    assert np.ndim(log_det) == 0
    ref.assert_close(log_det, ref.log_det_cholesky(pc, covariance_type, 4), np.float64, 1.0)
    assert_allclose(params.bias - log_w, log_det - 2.0 * np.log(2.0 * np.pi), rtol=1e-13)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_estep_matches_reference(covariance_type, dtype, weighted):
    """Statistics of a pass (1100 rows: a partial chunk) and per-row outputs."""
    X, log_w, means, pc, params = model_problem(1, covariance_type, dtype, n_samples=1100)
    w = zero_heavy_weights(len(X), 2) if weighted else None
    stats = estep_pass(X, w, params)
    want = ref.estep_stats(X, w, log_w, means, pc, covariance_type, shift=params.shift)
    ref.assert_stats_match(stats, want, dtype, covariance_type)
    lpn, labels, log_resp = estep_outputs(X, params, want_resp=True, chunk_rows=100)
    want_lpn, want_labels, want_log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    lpn_scale, lr_scale = ref.row_scales(
        want_log_resp, ref.log_density_scale(X, log_w, means, pc, covariance_type)
    )
    ref.assert_close(lpn, want_lpn, dtype, lpn_scale, err_msg="log p(x)")
    ref.assert_close(log_resp, want_log_resp, dtype, lr_scale, err_msg="log resp")
    if dtype == np.float64:
        assert_array_equal(labels, want_labels)


# --------------------------------------------------------------------------
# M-step
# --------------------------------------------------------------------------
@pytest.mark.parametrize("reg_covar", [0.0, 1e-3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_m_step_matches_reference(covariance_type, dtype, weighted, reg_covar):
    X, log_w, means, pc, params = model_problem(3, covariance_type, dtype)
    w = zero_heavy_weights(len(X), 4) if weighted else None
    stats = estep_pass(X, w, params, chunk_rows=100)
    nk, got_means, cov = gaussian_parameters(stats, reg_covar, covariance_type)
    assert cov.shape == ((4,) if covariance_type == "tied-diagonal" else ())
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    want = ref.gaussian_parameters(X, np.exp(log_resp), reg_covar, covariance_type, w)
    ref.assert_params_match((nk, got_means, cov), want, covariance_type, dtype, stats.shift)


@pytest.mark.parametrize("offset", [0.0, 1e4])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_m_step_is_the_diagonal_of_tied(weighted, offset):
    """On an E-step's statistics (responsibilities summing to one per row)
    tied-diagonal is the diagonal of 'tied', its 10 eps terms included, and
    tied-spherical the mean of that diagonal: fastmix's own 'tied' update on TIED
    statistics of the same responsibilities, at rtol 1e-10 of the scales."""
    X, log_w, means, pc = ref.random_problem(5, "tied-diagonal", n_samples=500, offset=offset)
    w = zero_heavy_weights(len(X), 6) if weighted else None
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, "tied-diagonal")
    r = np.exp(log_resp)
    shift = np.broadcast_to(X.mean(axis=0), means.shape)

    def update(covariance_type):
        stats = stats_from_resp(X, w, lambda a, b: r[a:b], COV_CODES[covariance_type], shift)
        return gaussian_parameters(stats, 1e-6, covariance_type)

    nk, got_means, tied = update("tied")
    _, cov_scale = ref.parameter_scales(got_means, tied, "tied", shift)
    diagonal = update("tied-diagonal")
    ref.assert_close(diagonal[0], nk, np.float64, err_msg="nk")
    ref.assert_close(diagonal[2], np.diag(tied), np.float64, np.diag(cov_scale))
    spherical = update("tied-spherical")[2]
    ref.assert_close(spherical, np.mean(np.diag(tied)), np.float64, np.mean(np.diag(cov_scale)))


@pytest.mark.parametrize("kind", ["random", "seeds"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_initial_m_step_matches_reference(covariance_type, kind):
    """The statistics of initial responsibilities, over several blocks: soft
    ('random') and K labelled rows ('k-means++', 'random_from_data'), whose
    unassigned rows add nothing (as for 'diag')."""
    X, _, means, _, _ = model_problem(7, covariance_type, np.float64, n_samples=230)
    w = zero_heavy_weights(len(X), 8)
    if kind == "random":
        r = np.random.default_rng(9).dirichlet(np.ones(3), size=len(X))
    else:
        r = one_hot_on_rows(len(X), 3, 9)
    shift = np.broadcast_to(X.mean(axis=0), means.shape)
    code = COV_CODES[covariance_type]
    stats = stats_from_resp(X, w, lambda a, b: r[a:b], code, shift, rows_per_block=37)
    assert stats.row_sum is None
    got = gaussian_parameters(stats, 1e-6, covariance_type)
    want = ref.gaussian_parameters(X, r, 1e-6, covariance_type, sample_weight=w)
    ref.assert_params_match(got, want, covariance_type, np.float64, stats.shift)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_precision_cholesky_matches_reference(covariance_type):
    cov = ref.random_covariances(np.random.default_rng(10), covariance_type, 3, 4)
    got = precision_cholesky(cov, covariance_type, np.float64)
    want = ref.precision_cholesky(cov, covariance_type)
    assert np.shape(got) == np.shape(cov)
    ref.assert_close(got, want, np.float64)
    from_prec = precision_cholesky_from_precisions(1.0 / cov, covariance_type)
    ref.assert_close(from_prec, ref.precision_cholesky_from_precisions(1.0 / cov, covariance_type),
                     np.float64)  # fmt: skip
    with pytest.raises(ValueError, match="reg_covar"):
        precision_cholesky(-cov, covariance_type, np.float64)


# --------------------------------------------------------------------------
# GaussianMixture
# --------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_matches_reference_loop(covariance_type):
    """A weighted fit from an explicit start equals dense EM in the reference:
    lower bounds, weights, means, covariances, precisions and their factors."""
    X, log_w, means, pc = ref.random_problem(11, covariance_type, n_samples=400)
    w = zero_heavy_weights(len(X), 12)
    prec = pc**2
    gm = GaussianMixture(
        len(means),
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=6,
        weights_init=np.exp(log_w),
        means_init=means,
        precisions_init=prec,
    ).fit(X, sample_weight=w)
    result = ref.em(X, w, np.exp(log_w), means, np.sqrt(prec), covariance_type, 1e-6, 6)
    ref.assert_fit_matches_em(gm, result, covariance_type)
    (_, _, cov, want_pc), _ = result
    f64 = np.float64
    ref.assert_close(gm.precisions_cholesky_, want_pc, f64, err_msg="precision Cholesky")
    ref.assert_close(gm.precisions_, want_pc**2, f64, err_msg="precisions")
    assert gm.covariances_.shape == gm.precisions_.shape == np.shape(cov)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_lower_bounds_never_decrease(covariance_type, init_params):
    """Overlapping clusters, tol=0: every one of max_iter steps; at the fixed
    point successive bounds may differ by a few ulps."""
    X = sklearn_blobs(n=800, d=2, k=4, seed=3, std=3.0)
    model = GaussianMixture(4, covariance_type=covariance_type, init_params=init_params)
    bounds = fitted_bounds(model, X, 60)
    assert np.all(np.diff(bounds) >= -16 * np.spacing(np.abs(bounds[:-1]))), np.diff(bounds).min()
    assert bounds[-1] > bounds[0]


@pytest.mark.parametrize("covariance_type", TYPES)
def test_densities_equal_the_unshared_model(covariance_type):
    """score_samples, predict_proba and predict of a fitted tied model equal those
    of the 'diag' / 'spherical' model whose per-component variances are all the
    fitted shared ones, and of the 'tied' model with that diagonal matrix."""
    X = skewed_blobs(seed=2)
    gm = fit_quiet(GaussianMixture(3, covariance_type=covariance_type, random_state=0), X)
    inits = dict(weights_init=gm.weights_, means_init=gm.means_, max_iter=0)
    per_component = GaussianMixture(
        3,
        covariance_type=PER_COMPONENT[covariance_type],
        precisions_init=shared_precisions(gm, 3),
        **inits,
    ).fit(X)
    tied = GaussianMixture(
        3,
        covariance_type="tied",
        precisions_init=np.diag(np.broadcast_to(gm.precisions_, (X.shape[1],))),
        **inits,
    ).fit(X)
    Y = X[::7] + 0.25
    for other, rtol in ((per_component, 1e-13), (tied, 1e-10)):
        assert_allclose(gm.score_samples(Y), other.score_samples(Y), rtol=rtol)
        assert_allclose(gm.predict_proba(Y), other.predict_proba(Y), rtol=1e-9, atol=1e-15)
        assert_array_equal(gm.predict(Y), other.predict(Y))
    assert_allclose(gm.score(Y), np.mean(per_component.score_samples(Y)), rtol=1e-13)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_bic_counts_the_shared_parameters(covariance_type):
    """Free parameters by hand: K - 1 weights, K D means, and D (tied-diagonal)
    or 1 (tied-spherical) covariance parameters."""
    X = skewed_blobs(seed=3, n_features=3)
    k, d = 3, 3
    gm = fit_quiet(GaussianMixture(k, covariance_type=covariance_type, random_state=0), X)
    cov_params = {"tied-diagonal": d, "tied-spherical": 1}[covariance_type]
    n_params = (k - 1) + k * d + cov_params
    assert gm._n_parameters() == n_params
    n = len(X)
    log_l = np.sum(gm.score_samples(X))
    assert_allclose(gm.bic(X), -2 * log_l + n_params * np.log(n), rtol=1e-12)
    assert_allclose(gm.aic(X), -2 * log_l + 2 * n_params, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_sample_draws_from_the_shared_covariance(covariance_type):
    X = skewed_blobs(seed=4)
    gm = fit_quiet(GaussianMixture(3, covariance_type=covariance_type, random_state=0), X)
    Y, labels = gm.sample(30_000)
    assert Y.shape == (30_000, 3) and Y.dtype == np.float64
    variances = np.broadcast_to(gm.covariances_, (3,))
    for k in range(3):
        rows = Y[labels == k]
        assert_allclose(rows.mean(axis=0), gm.means_[k], atol=0.1 * np.sqrt(variances.max()))
        assert_allclose(rows.var(axis=0), variances, rtol=0.1)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_first_partial_fit_is_one_em_iteration(covariance_type):
    X = skewed_blobs(seed=5)
    online = GaussianMixture(3, covariance_type=covariance_type, random_state=0).partial_fit(X)
    batch = fit_quiet(
        GaussianMixture(3, covariance_type=covariance_type, random_state=0, max_iter=1), X
    )
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert_allclose(getattr(online, name), getattr(batch, name), rtol=1e-12, err_msg=name)
    online.partial_fit(X[::2])
    assert online.covariances_.shape == batch.covariances_.shape


# --------------------------------------------------------------------------
# BayesianGaussianMixture
# --------------------------------------------------------------------------
def variational(covariance_type, prior_type, init_params, n_components=5):
    return BayesianGaussianMixture(
        n_components=n_components,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params=init_params,
    )


def _vi_problem(covariance_type, prior_type):
    """Weighted soft responsibilities, a user prior, and their streamed statistics."""
    rng = np.random.RandomState(13)
    n, k = 80, 4
    X = rng.randn(n, 3) @ np.array([[1.0, 0.3, 0.0], [0.0, 0.7, 0.2], [0.0, 0.0, 1.4]]) - 1.0
    resp = rng.dirichlet(0.7 * np.ones(k), n)
    sw = rng.randint(0, 4, n).astype(float)
    m0, cov = ref_vi.data_moments(X, sw)
    cov0 = np.diag(cov).copy() if covariance_type == "tied-diagonal" else np.diag(cov).mean()
    prior = dict(prior_type=prior_type, gamma=0.4, beta0=1.3, m0=m0, nu0=3.2, cov0=cov0)
    vprior = VariationalPrior(prior_type, 0.4, 1.3, m0, 3.2, np.asarray(cov0))
    shift = np.broadcast_to(X.mean(0), (k, 3)).copy()
    code = COV_CODES[covariance_type]
    stats = stats_from_resp(X, sw, lambda a, b: resp[a:b], code, shift, rows_per_block=32)
    return X, resp, sw, prior, vprior, stats


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_posterior_matches_reference(covariance_type, prior_type):
    """One shared posterior (degrees of freedom a scalar, nu_0 + N / K) and the
    lower bound, with the shared Wishart term counted K times."""
    X, resp, sw, prior, vprior, stats = _vi_problem(covariance_type, prior_type)
    post = posterior(stats, vprior, 1e-6, covariance_type, np.float64)
    want = ref_vi.posterior(X, resp, sw, prior, 1e-6, covariance_type)
    assert np.ndim(post["degrees_of_freedom"]) == 0
    assert_allclose(post["degrees_of_freedom"], prior["nu0"] + sw.sum() / 4, rtol=1e-12)
    for name in ("mean_precision", "means", "degrees_of_freedom", "covariances"):
        assert np.shape(post[name]) == np.shape(want[name]), name
        assert_allclose(post[name], want[name], rtol=1e-10, err_msg=name)
    nu = want["degrees_of_freedom"]
    W = ref_vi.precisions(want["covariances"], nu, covariance_type)
    assert_allclose(post["precisions_cholesky"] ** 2, W * nu, rtol=1e-12)
    got_lb = lower_bound(
        float(np.sum(sw[:, None] * resp * np.log(resp))),
        post["weight_concentration"],
        prior_type,
        post["mean_precision"],
        post["degrees_of_freedom"],
        post["precisions_cholesky"],
        covariance_type,
        3,
    )
    want_lb = ref_vi.lower_bound(resp, sw, want, covariance_type, prior_type, 3)
    assert isinstance(got_lb, np.float64)
    assert_allclose(got_lb, want_lb, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_posterior_restricts_the_tied_posterior(covariance_type):
    """With a diagonal tied prior, tied-diagonal's posterior covariance is the
    diagonal of 'tied''s, and tied-spherical's is its mean (a prior equal to the
    mean of the diagonal one)."""
    X, resp, sw, prior, _, _ = _vi_problem("tied-diagonal", "dirichlet_distribution")
    tied = ref_vi.posterior(X, resp, sw, dict(prior, cov0=np.diag(prior["cov0"])), 1e-6, "tied")
    if covariance_type == "tied-spherical":
        prior = dict(prior, cov0=np.mean(prior["cov0"]))
    shared = ref_vi.posterior(X, resp, sw, prior, 1e-6, covariance_type)
    diagonal = np.diag(tied["covariances"])
    want = diagonal if covariance_type == "tied-diagonal" else np.mean(diagonal)
    assert_allclose(shared["covariances"], want, rtol=1e-12)
    assert_allclose(shared["degrees_of_freedom"], tied["degrees_of_freedom"], rtol=1e-15)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_vi_fit_matches_reference_loop(covariance_type, prior_type):
    """Six iterations from random_from_data's responsibilities (K labelled rows):
    lower bounds, means, covariances, degrees of freedom and the E-step."""
    X = skewed_blobs(seed=9, n_features=2)
    m = variational(covariance_type, prior_type, "random_from_data", n_components=3)
    bounds = fitted_bounds(m, X, 6)
    # scikit-learn's rule for random_from_data with random_state=0.
    resp0 = np.zeros((X.shape[0], 3))
    resp0[np.random.RandomState(0).choice(X.shape[0], size=3, replace=False), np.arange(3)] = 1
    post, want_bounds = ref_vi.fit(X, resp0, None, vi_prior(m), m.reg_covar, covariance_type, 6)
    assert_allclose(bounds, want_bounds, rtol=1e-9)
    # The variational E-step: Bishop's ln rho (10.46) with the shared posterior.
    log_resp, norm = ref_vi.log_resp(X, post, covariance_type, prior_type)
    assert_allclose(m.score_samples(X), norm, rtol=1e-9)
    assert_allclose(m.predict_proba(X), np.exp(log_resp), rtol=1e-8, atol=1e-12)
    for name in ("means", "covariances", "degrees_of_freedom", "mean_precision"):
        assert_allclose(getattr(m, name + "_"), post[name], rtol=1e-9, err_msg=name)
    assert np.shape(m.degrees_of_freedom_) == ()
    assert np.shape(m.covariance_prior_) == np.shape(m.covariances_)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_vi_lower_bound_never_decreases(covariance_type, prior_type):
    """tol=0, 40 iterations from two starts, on overlapping and on separated
    clusters; slack 1e-10 of the bound for rounding."""
    overlapping = sklearn_blobs(n=300, d=2, k=4, seed=3, std=3.0)
    for X in (overlapping, skewed_blobs(seed=14, n_features=2)):
        for init_params in INIT_PARAMS:
            lb = fitted_bounds(variational(covariance_type, prior_type, init_params), X, 40)
            assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:])), np.diff(lb).min()


def test_vi_covariance_prior_shapes_and_messages():
    X = skewed_blobs(seed=6)
    kw = dict(n_components=2, max_iter=2)
    with pytest.raises(ValueError, match=r"'tied-diagonal covariance_prior' should have"):
        BayesianGaussianMixture(covariance_type="tied-diagonal", covariance_prior=[1.0], **kw).fit(
            X
        )
    # A number: named, with the two ways out (was check_array's "at least 1 dimension").
    with pytest.raises(ValueError, match=r"\(3,\), one variance per feature.*tied-spherical"):
        BayesianGaussianMixture(covariance_type="tied-diagonal", covariance_prior=2.0, **kw).fit(X)
    with pytest.raises(ValueError, match="'tied-diagonal precision' should be positive"):
        BayesianGaussianMixture(
            covariance_type="tied-diagonal", covariance_prior=[1.0, -1.0, 1.0], **kw
        ).fit(X)
    with pytest.raises(ValueError, match=r"'tied-spherical covariance_prior' should have"):
        BayesianGaussianMixture(
            covariance_type="tied-spherical", covariance_prior=[1.0, 2.0], **kw
        ).fit(X)
    m = fit_quiet(
        BayesianGaussianMixture(covariance_type="tied-spherical", covariance_prior=[2.0], **kw), X
    )
    assert m.covariance_prior_.shape == () and m.covariance_prior_ == 2.0
    # The defaults: the data's variances, and their mean.
    _, cov = ref_vi.data_moments(X, None)
    for covariance_type, want in (("tied-diagonal", np.diag(cov)), ("tied-spherical", None)):
        m = fit_quiet(BayesianGaussianMixture(covariance_type=covariance_type, **kw), X)
        want = np.diag(cov).mean() if want is None else want
        assert_allclose(m.covariance_prior_, want, rtol=1e-12)


# --------------------------------------------------------------------------
# both estimators: dtypes, validation, files, surfaces
# --------------------------------------------------------------------------
def _both(covariance_type, **kw):
    return [
        GaussianMixture(3, covariance_type=covariance_type, random_state=0, **kw),
        BayesianGaussianMixture(
            n_components=4, covariance_type=covariance_type, random_state=0, **kw
        ),
    ]


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_in_float32_out(covariance_type):
    X = skewed_blobs(seed=7)
    for m32, m64 in zip(
        _both(covariance_type, max_iter=20), _both(covariance_type, max_iter=20), strict=True
    ):
        fit_quiet(m32, X.astype(np.float32))
        fit_quiet(m64, X)
        names = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
        if isinstance(m32, BayesianGaussianMixture):
            names += ["degrees_of_freedom_", "mean_precision_", "covariance_prior_"]
        for name in names:
            value = getattr(m32, name)
            assert value.dtype == np.float32, name
            # tied-spherical: 0-d arrays, not NumPy scalars (degrees_of_freedom_
            # and covariance_prior_ are scalars, as for 'tied' and 'spherical').
            assert isinstance(value, np.ndarray) or name in (
                "degrees_of_freedom_",
                "covariance_prior_",
            )
            assert np.shape(value) == np.shape(getattr(m64, name)), name
        assert m32.score_samples(X.astype(np.float32)).dtype == np.float32
        assert_allclose(m32.covariances_, m64.covariances_, rtol=1e-3)
        assert_allclose(m32.means_, m64.means_, rtol=1e-3, atol=1e-3)


def test_precisions_init_shapes():
    X = skewed_blobs(seed=8)
    gm = GaussianMixture(3, covariance_type="tied-spherical", precisions_init=2.0, max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        gm.fit(X)
    assert gm.precisions_.shape == gm.covariances_.shape == ()
    assert_allclose(gm.precisions_, 2.0, rtol=1e-15)
    gm = GaussianMixture(
        3, covariance_type="tied-diagonal", precisions_init=[1.0, 2.0, 4.0], max_iter=0
    ).fit(X)
    assert_allclose(gm.precisions_, [1.0, 2.0, 4.0], rtol=1e-15)
    cases = [
        ("tied-diagonal", np.ones((3, 3)), r"'tied-diagonal precision' should have the shape"),
        ("tied-diagonal", [1.0, 0.0, 1.0], "'tied-diagonal precision' should be positive"),
        ("tied-spherical", np.ones(3), r"'tied-spherical precision' should have the shape"),
        ("tied-spherical", -1.0, "'tied-spherical precision' should be positive"),
    ]
    for covariance_type, precisions, match in cases:
        with pytest.raises(ValueError, match=match):
            GaussianMixture(3, covariance_type=covariance_type, precisions_init=precisions).fit(X)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("covariance_type", TYPES)
def test_save_load_round_trip(covariance_type, dtype, tmp_path):
    X = skewed_blobs(seed=10).astype(dtype)
    for i, model in enumerate(_both(covariance_type, max_iter=10)):
        fit_quiet(model, X)
        path = tmp_path / f"m{i}.npz"
        model.save(path)
        loaded = fastmix.load(path)
        assert loaded.covariance_type == covariance_type
        for name in ("covariances_", "precisions_", "precisions_cholesky_", "means_"):
            got, want = getattr(loaded, name), getattr(model, name)
            assert got.dtype == want.dtype and got.shape == want.shape, name
            assert isinstance(got, np.ndarray), name
            assert_array_equal(got, want)
        if isinstance(model, BayesianGaussianMixture):
            assert_array_equal(loaded.degrees_of_freedom_, model.degrees_of_freedom_)
            assert_array_equal(loaded.covariance_prior_, model.covariance_prior_)
        assert_array_equal(loaded.score_samples(X), model.score_samples(X))
        assert_array_equal(loaded.predict(X), model.predict(X))


def test_model_file_with_the_wrong_covariance_shape_is_refused(tmp_path):
    """A tied-diagonal model whose covariances are a 'diag' array is not
    saved, and a file forged with one (the layout's writer, unchecked) is not
    loaded."""
    from fastmix._format import _write

    X = skewed_blobs(seed=11)
    gm = fit_quiet(GaussianMixture(3, covariance_type="tied-diagonal", max_iter=5), X)
    gm.covariances_ = np.tile(gm.covariances_, (3, 1))
    with pytest.raises(ValueError, match="covariances_"):
        gm.save(tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()
    _write(gm, tmp_path / "bad.npz", check=lambda file: None)
    with pytest.raises(ValueError, match="covariances_"):
        fastmix.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("covariance_type", TYPES)
def test_plot_ellipses_use_the_shared_covariance(covariance_type):
    X = skewed_blobs(seed=12)
    gm = fit_quiet(GaussianMixture(3, covariance_type=covariance_type, random_state=0), X)
    got = plot._projected_covariances(gm, (0, 2))
    variances = np.broadcast_to(gm.covariances_, (3,))[[0, 2]]
    assert_array_equal(got, np.broadcast_to(np.diag(variances), (3, 2, 2)))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_cli_fit_accepts_the_tied_structures(covariance_type, tmp_path, capsys):
    import json

    from fastmix.cli import main

    X = skewed_blobs(seed=13)
    np.save(tmp_path / "X.npy", X)
    out = tmp_path / "m.npz"
    args = [str(tmp_path / "X.npy"), "-k", "3", "--covariance-type", covariance_type]
    assert main(["fit", *args, "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["covariance_type"] == covariance_type
    n_params = {"tied-diagonal": 3, "tied-spherical": 1}[covariance_type] + 2 + 9
    assert_allclose(summary["bic"], fastmix.load(out).bic(X), rtol=1e-12)
    assert fastmix.load(out)._n_parameters() == n_params
    assert main(["fit", *args, "--bayesian", "--json"]) == 0
