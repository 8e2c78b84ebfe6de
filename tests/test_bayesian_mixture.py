"""BayesianGaussianMixture: scikit-learn parity, the VI update layer against a
plain-NumPy reference, sample weights, dtypes, the monotone lower bound,
validation and the Dirichlet-process pruning example."""

import copy
import inspect
import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import reference_vi as ref
from conftest import COV_TYPES, INIT_PARAMS, fit_quiet, frozen_copy, skewed_blobs, vi_prior
from numpy.testing import assert_allclose
from scipy import special
from sklearn import mixture as skm
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from fastmix import BayesianGaussianMixture
from fastmix._kernels import variational as vk
from fastmix._stats import COV_CODES, stats_from_resp
from fastmix._variational import (
    VariationalPrior,
    expected_log_weights,
    lower_bound,
    posterior,
    weights_from_concentration,
)

PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
TIED_STRUCTURES = {"tied-diagonal", "tied-spherical"}
RTOL = 1e-6  # parity with scikit-learn, float64

# These tests check numbers, not speed: one numba and one BLAS thread.
pytestmark = pytest.mark.usefixtures("one_thread")


def fitted_arrays(m):
    out = {
        "weights_": m.weights_,
        "means_": m.means_,
        "covariances_": m.covariances_,
        "precisions_": m.precisions_,
        "precisions_cholesky_": m.precisions_cholesky_,
        "mean_precision_": m.mean_precision_,
        "degrees_of_freedom_": m.degrees_of_freedom_,
        "mean_prior_": m.mean_prior_,
        "covariance_prior_": m.covariance_prior_,
    }
    wc = m.weight_concentration_
    if isinstance(wc, tuple):
        out["weight_concentration_[0]"], out["weight_concentration_[1]"] = wc
    else:
        out["weight_concentration_"] = wc
    return out


def max_rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(b), 1e-300)
    return float(np.max(np.abs(a - b) / scale)) if a.size else 0.0


# ------------------------------------------------------------------ parity
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_with_sklearn(covariance_type, prior_type):
    """Every fitted attribute, n_iter_, converged_, the lower bounds,
    predict_proba and score_samples match scikit-learn 1.9 at rtol 1e-6, for
    each init_params, from the same int random_state."""
    X = skewed_blobs(seed=3)
    X_test = skewed_blobs(seed=4)
    worst = 0.0
    for init_params in INIT_PARAMS:
        kw = dict(
            n_components=4,
            covariance_type=covariance_type,
            weight_concentration_prior_type=prior_type,
            init_params=init_params,
            max_iter=40,
            random_state=7,
        )
        ours = fit_quiet(BayesianGaussianMixture(**kw), X)
        theirs = fit_quiet(skm.BayesianGaussianMixture(**kw), X)
        assert ours.n_iter_ == theirs.n_iter_
        assert ours.converged_ == theirs.converged_
        assert ours.n_features_in_ == theirs.n_features_in_
        for name in (
            "weight_concentration_prior_",
            "mean_precision_prior_",
            "degrees_of_freedom_prior_",
        ):
            assert getattr(ours, name) == getattr(theirs, name), name
        ref_arrays = fitted_arrays(theirs)
        for name, value in fitted_arrays(ours).items():
            expected = ref_arrays[name]
            assert np.shape(value) == np.shape(expected), name
            scale = np.max(np.abs(expected))
            assert_allclose(value, expected, rtol=RTOL, atol=1e-12 * scale, err_msg=name)
        assert np.ndim(ours.lower_bound_) == 0
        assert_allclose(ours.lower_bound_, np.ravel(theirs.lower_bound_)[0], rtol=RTOL)
        assert_allclose(ours.lower_bounds_, np.ravel(theirs.lower_bounds_), rtol=RTOL)
        assert_allclose(
            ours.predict_proba(X_test), theirs.predict_proba(X_test), rtol=RTOL, atol=1e-12
        )
        assert_allclose(ours.score_samples(X_test), theirs.score_samples(X_test), rtol=RTOL)
        assert_allclose(ours.score(X_test), theirs.score(X_test), rtol=RTOL)
        np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))
        worst = max(
            worst,
            max(max_rel(v, ref_arrays[k]) for k, v in fitted_arrays(ours).items()),
            max_rel(ours.lower_bounds_, np.ravel(theirs.lower_bounds_)),
            max_rel(ours.predict_proba(X_test), theirs.predict_proba(X_test)),
            max_rel(ours.score_samples(X_test), theirs.score_samples(X_test)),
        )
    print(f"max rel diff {covariance_type}/{prior_type}: {worst:.2e}")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_with_user_priors_and_n_init(covariance_type):
    X = skewed_blobs(seed=5, n_features=2)
    cov_prior = {
        "full": np.array([[2.0, 0.3], [0.3, 1.0]]),
        "tied": np.array([[2.0, 0.3], [0.3, 1.0]]),
        "diag": np.array([2.0, 0.5]),
        "spherical": 1.5,
    }[covariance_type]
    kw = dict(
        n_components=3,
        covariance_type=covariance_type,
        weight_concentration_prior=0.05,
        mean_precision_prior=0.5,
        mean_prior=[1.0, -1.0],
        degrees_of_freedom_prior=3.5,
        covariance_prior=cov_prior,
        n_init=2,
        init_params="random",
        max_iter=30,
        random_state=0,
    )
    ours = fit_quiet(BayesianGaussianMixture(**kw), X)
    theirs = fit_quiet(skm.BayesianGaussianMixture(**kw), X)
    assert ours.n_iter_ == theirs.n_iter_
    ref_arrays = fitted_arrays(theirs)
    for name, value in fitted_arrays(ours).items():
        assert_allclose(value, ref_arrays[name], rtol=RTOL, atol=1e-12, err_msg=name)
    assert_allclose(ours.lower_bounds_, np.ravel(theirs.lower_bounds_), rtol=RTOL)


def test_warm_start_and_max_iter_zero_parity():
    X = skewed_blobs(seed=6)
    kw = dict(n_components=3, max_iter=3, random_state=2, warm_start=True)
    ours = BayesianGaussianMixture(**kw)
    theirs = skm.BayesianGaussianMixture(**kw)
    for _ in range(3):
        fit_quiet(ours, X)
        fit_quiet(theirs, X)
        assert_allclose(ours.means_, theirs.means_, rtol=RTOL)
        assert_allclose(ours.lower_bounds_, np.ravel(theirs.lower_bounds_), rtol=RTOL)
    kw = dict(n_components=3, max_iter=0, random_state=2)
    ours = BayesianGaussianMixture(**kw).fit(X)
    theirs = skm.BayesianGaussianMixture(**kw).fit(X)
    assert ours.n_iter_ == 0 and ours.lower_bounds_ == []
    assert_allclose(ours.covariances_, theirs.covariances_, rtol=RTOL)


def test_constructor_matches_sklearn():
    """scikit-learn's parameters, in its order, kinds and defaults; then only
    fastmix's additions, keyword-only: online learning (issue 14) and
    min_responsibility (issue 12)."""
    ours = inspect.signature(BayesianGaussianMixture.__init__).parameters
    theirs = inspect.signature(skm.BayesianGaussianMixture.__init__).parameters
    extra = {
        "learning_decay": 0.7,
        "learning_offset": 10.0,
        "total_samples": 1e6,
        "min_responsibility": 0.0,
    }
    assert list(ours) == list(theirs) + list(extra)
    for name, p in theirs.items():
        assert ours[name].default == p.default, name
        assert ours[name].kind == p.kind, name
    for name, default in extra.items():
        assert ours[name].default == default, name
        assert ours[name].kind == inspect.Parameter.KEYWORD_ONLY, name
    assert set(BayesianGaussianMixture._parameter_constraints) == set(
        skm.BayesianGaussianMixture._parameter_constraints
    ) | set(extra)

    def key(c):
        # Semantic identity of a constraint (a set's str depends on hash order).
        if isinstance(c, StrOptions):
            return ("options", frozenset(c.options))
        if isinstance(c, Interval):
            return ("interval", c.type, c.left, c.right, c.closed)
        return ("other", c if isinstance(c, str) or c is None else str(c))

    for name, constraints in skm.BayesianGaussianMixture._parameter_constraints.items():
        ours_c = BayesianGaussianMixture._parameter_constraints[name]
        theirs_keys = [key(c) for c in constraints]
        if name == "covariance_type":  # and fastmix's two (tests/test_tied_structures.py)
            theirs_keys = [(kind, opts | TIED_STRUCTURES) for kind, opts in theirs_keys]
        assert [key(c) for c in ours_c] == theirs_keys, name


# --------------------------------------------------- update layer vs reference
def _random_problem(covariance_type, prior_type, seed=0, weighted=True):
    rng = np.random.RandomState(seed)
    n, d, k = 70, 3, 4
    X = rng.randn(n, d) @ np.array([[1.0, 0.2, 0.0], [0.0, 0.8, 0.3], [0.0, 0.0, 1.2]]) + 2.0
    resp = rng.dirichlet(0.7 * np.ones(k), n)
    sw = rng.randint(0, 4, n).astype(float) if weighted else None
    m0, cov = ref.data_moments(X, sw)
    cov0 = {
        "full": cov,
        "tied": cov,
        "diag": np.diag(cov).copy(),
        "spherical": float(np.diag(cov).mean()),
    }[covariance_type]
    prior = dict(prior_type=prior_type, gamma=0.3, beta0=1.5, m0=m0, nu0=3.5, cov0=cov0)
    vprior = VariationalPrior(prior_type, 0.3, 1.5, m0, 3.5, np.asarray(cov0))
    code = COV_CODES[covariance_type]
    shift = np.broadcast_to(X.mean(0), (k, d)).copy()
    stats = stats_from_resp(X, sw, lambda a, b: resp[a:b], code, shift, rows_per_block=32)
    return X, resp, sw, prior, vprior, stats


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_posterior_update_matches_reference(covariance_type, prior_type):
    """Posterior updates, expected log weights, Wishart terms and the lower bound
    of fastmix._variational equal the textbook reference on weighted statistics."""
    X, resp, sw, prior, vprior, stats = _random_problem(covariance_type, prior_type)
    reg = 1e-6
    post = posterior(stats, vprior, reg, covariance_type, np.float64)
    expected = ref.posterior(X, resp, sw, prior, reg, covariance_type)
    for name in ("mean_precision", "means", "degrees_of_freedom", "covariances"):
        assert_allclose(post[name], expected[name], rtol=1e-10, err_msg=name)
    conc = post["weight_concentration"]
    if prior_type == "dirichlet_process":
        for ours, theirs in zip(conc, expected["weight_concentration"], strict=True):
            assert_allclose(ours, theirs, rtol=1e-12)
    else:
        assert_allclose(conc, expected["weight_concentration"], rtol=1e-12)
    # The precision Cholesky is that of nu_k W_k.
    W = ref.precisions(expected["covariances"], expected["degrees_of_freedom"], covariance_type)
    nu = expected["degrees_of_freedom"]
    pc = post["precisions_cholesky"]
    if covariance_type == "full":
        assert_allclose(np.einsum("kij,klj->kil", pc, pc), W * nu[:, None, None], rtol=1e-9)
    elif covariance_type == "tied":
        assert_allclose(pc @ pc.T, W * nu, rtol=1e-9)
    elif covariance_type == "diag":
        assert_allclose(pc**2, W * nu[:, None], rtol=1e-9)
    else:
        assert_allclose(pc**2, W * nu, rtol=1e-9)

    assert_allclose(
        expected_log_weights(conc, prior_type),
        ref.expected_log_weights(expected["weight_concentration"], prior_type),
        rtol=1e-12,
    )
    assert_allclose(
        weights_from_concentration(conc, prior_type),
        ref.weights_from_concentration(expected["weight_concentration"], prior_type),
        rtol=1e-12,
    )
    d = X.shape[1]
    # stats_from_resp does not accumulate sum w r log r; the E-step kernel does.
    lb = lower_bound(
        float(np.sum(sw[:, None] * resp * np.log(resp))),
        conc,
        prior_type,
        post["mean_precision"],
        post["degrees_of_freedom"],
        pc,
        covariance_type,
        d,
    )
    assert np.ndim(lb) == 0 and isinstance(lb, np.float64)
    assert_allclose(
        lb, ref.lower_bound(resp, sw, expected, covariance_type, prior_type, d), rtol=1e-10
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_update_weights_and_bound_terms_are_the_stored_posteriors(
    covariance_type, prior_type, dtype
):
    """The diagonal update's ``weights`` and ``bound_terms`` (which spare an
    online step two kernel calls) are those of the posterior as the model
    stores it, rounded to ``dtype``: the same numbers as weights_from_concentration
    and lower_bound evaluated on the stored attributes afterwards."""
    X, resp, sw, prior, vprior, stats = _random_problem(covariance_type, prior_type)
    post = posterior(stats, vprior, 1e-6, covariance_type, dtype)

    def stored(name):
        value = post[name]
        if isinstance(value, tuple):
            return tuple(np.asarray(v, dtype=dtype) for v in value)
        return np.asarray(value, dtype=dtype)

    conc = stored("weight_concentration")
    assert_allclose(
        post["weights"], weights_from_concentration(conc, prior_type), rtol=1e-15, atol=0
    )
    sum_wrlogr = float(np.sum(sw[:, None] * resp * np.log(resp)))
    expected = lower_bound(
        sum_wrlogr,
        conc,
        prior_type,
        stored("mean_precision"),
        stored("degrees_of_freedom"),
        stored("precisions_cholesky"),
        covariance_type,
        X.shape[1],
    )
    assert_allclose(post["bound_terms"] - sum_wrlogr, expected, rtol=1e-14, atol=0)
    if dtype == np.float32:  # the rounding matters: float64's values give other terms
        unrounded = lower_bound(
            sum_wrlogr,
            post["weight_concentration"],
            prior_type,
            post["mean_precision"],
            post["degrees_of_freedom"],
            post["precisions_cholesky"],
            covariance_type,
            X.shape[1],
        )
        assert abs(unrounded - expected) > 1e-12 * abs(expected)


@pytest.mark.parametrize("n_features", [1, 2, 5, 16, 64])
def test_wishart_terms_match_reference(n_features):
    """The kernels' sums of psi and log Gamma over (nu - i) / 2 by the recurrence
    along the two chains of whole steps equal the reference's D separate calls,
    down to nu just above D - 1 and up to 1e6. The edge is nu = D - 1 + 2**-7
    (an argument of 2**-8), for which the reference's own (nu + 1 - i) / 2 is
    exact: psi' = 6.6e4 there would turn one rounding of nu + 1 into 1e-10."""
    rng = np.random.RandomState(n_features)
    nu = np.r_[n_features - 1 + rng.rand(6) * 50 + 0.01, n_features - 1 + 2.0**-7, 1e6]
    half_logdet = rng.randn(nu.size)
    for v, h in zip(nu, half_logdet, strict=True):
        assert_allclose(vk.log_lambda(v, n_features), ref.log_lambda(v, n_features), rtol=1e-12)
        assert_allclose(
            vk.log_wishart_norm(v, h, n_features),
            ref.log_wishart_norm(v, h, n_features),
            rtol=1e-12,
        )


def test_special_functions_match_scipy():
    """digamma within a few ulp of |psi| + 1 (relative away from its root at
    1.4616, absolute near it) and betaln, its asymptotic branch included, as
    SciPy's, from 1e-8 to 1e9."""
    x = np.r_[np.logspace(-8, 9, 500), np.linspace(0.5, 3.0, 251), 1.4616321449683622]
    ours = np.array([vk.digamma(v) for v in x])
    assert np.all(np.abs(ours - special.digamma(x)) <= 8 * 2.0**-52 * (1 + np.abs(ours)))
    assert vk.digamma(0.0) == -np.inf and np.isnan(vk.digamma(-0.5))
    a = np.logspace(-3, 9, 25)
    for big in a:
        for small in a:
            want = special.betaln(big, small)
            # Both evaluate lgamma(a) + lgamma(b) - lgamma(a + b) between the branches,
            # which keeps the rounding of the largest log-gamma.
            scale = 4 * 2.0**-52 * (1 + abs(special.gammaln(max(big, small) + min(big, small))))
            assert abs(vk.betaln(big, small) - want) <= scale + 1e-14 * abs(want), (big, small)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_lower_bound_is_the_full_elbo_up_to_a_constant(prior_type, weighted):
    """scikit-learn's simplified bound (which fastmix mirrors) differs from
    Bishop's complete ELBO (10.70-10.77) by a constant: evaluated at the update
    of several unrelated responsibility matrices the difference does not move.
    This is why the bound can only increase."""
    diffs = []
    for seed in range(4):
        X, resp, sw, prior, _, _ = _random_problem("full", prior_type, seed=0, weighted=weighted)
        resp = np.random.RandomState(100 + seed).dirichlet(0.5 * np.ones(4), X.shape[0])
        post = ref.posterior(X, resp, sw, prior, 0.0, "full")
        diffs.append(
            ref.elbo_full(X, resp, sw, post, prior)
            - ref.lower_bound(resp, sw, post, "full", prior_type, X.shape[1])
        )
    assert np.ptp(diffs) < 1e-9 * np.abs(diffs[0])


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_variational_estep_matches_reference(covariance_type, prior_type):
    """The shared kernel with the variational bias gives Bishop's ln rho (10.46)."""
    X = skewed_blobs(seed=8)
    m = fit_quiet(
        BayesianGaussianMixture(
            n_components=3,
            covariance_type=covariance_type,
            weight_concentration_prior_type=prior_type,
            max_iter=5,
            random_state=0,
        ),
        X,
    )
    post = {
        "weight_concentration": m.weight_concentration_,
        "mean_precision": m.mean_precision_,
        "means": m.means_,
        "degrees_of_freedom": m.degrees_of_freedom_,
        "covariances": m.covariances_,
    }
    log_resp, norm = ref.log_resp(X, post, covariance_type, prior_type)
    assert_allclose(m.score_samples(X), norm, rtol=1e-9)
    assert_allclose(m.predict_proba(X), np.exp(log_resp), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_matches_reference_loop(covariance_type, prior_type):
    """max_iter=0 then warm-started iterations equal the reference loop run
    from the same initial responsibilities (random_from_data, via sklearn's rule)."""
    X = skewed_blobs(seed=9, n_features=2)
    kw = dict(
        n_components=3,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params="random_from_data",
        random_state=4,
        max_iter=6,
        tol=0,
    )
    m = fit_quiet(BayesianGaussianMixture(**kw), X)
    indices = np.random.RandomState(4).choice(X.shape[0], size=3, replace=False)
    resp0 = np.zeros((X.shape[0], 3))
    resp0[indices, np.arange(3)] = 1
    prior = vi_prior(m)
    post, bounds = ref.fit(X, resp0, None, prior, m.reg_covar, covariance_type, 6)
    assert_allclose(m.lower_bounds_, bounds, rtol=1e-9)
    assert_allclose(m.means_, post["means"], rtol=1e-9)
    assert_allclose(m.covariances_, post["covariances"], rtol=1e-9)


# ----------------------------------------------------------- sample weights
def test_default_priors_use_sample_weight():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3) * [1.0, 2.0, 0.5] + 10.0
    sw = rng.randint(0, 4, 40)
    sw[:3] = [1, 2, 3]
    X_rep = np.repeat(X, sw, axis=0)
    for covariance_type in COV_TYPES:
        kw = dict(n_components=2, covariance_type=covariance_type, max_iter=0, random_state=0)
        weighted = BayesianGaussianMixture(**kw).fit(X, sample_weight=sw)
        repeated = BayesianGaussianMixture(**kw).fit(X_rep)
        assert_allclose(weighted.mean_prior_, repeated.mean_prior_, rtol=1e-12)
        assert_allclose(weighted.covariance_prior_, repeated.covariance_prior_, rtol=1e-12)
        assert_allclose(weighted.mean_prior_, np.average(X, axis=0, weights=sw), rtol=1e-12)
        cov = np.cov(X.T, fweights=sw)
        expected = {
            "full": cov,
            "tied": cov,
            "diag": np.diag(cov),
            "spherical": np.diag(cov).mean(),
        }
        assert_allclose(weighted.covariance_prior_, expected[covariance_type], rtol=1e-12)
        # Every weight 1 gives scikit-learn's defaults.
        ones = BayesianGaussianMixture(**kw).fit(X, sample_weight=np.ones(40))
        theirs = skm.BayesianGaussianMixture(**kw).fit(X)
        assert_allclose(ones.mean_prior_, theirs.mean_prior_, rtol=1e-12)
        assert_allclose(ones.covariance_prior_, theirs.covariance_prior_, rtol=1e-12)
    # Far from the origin the two-pass (shifted) accumulation loses nothing.
    X_far = X + 1e8
    m = BayesianGaussianMixture(n_components=2, max_iter=0).fit(X_far, sample_weight=sw)
    assert_allclose(m.covariance_prior_, np.cov(X_far.T, fweights=sw), rtol=1e-7)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type, prior_type):
    """From one identical starting point (a warm start from a copied model),
    integer weights give the fit of the repeated rows and zero weights that of
    the dropped rows: priors, every iteration's bound, parameters, n_iter_."""
    rng = np.random.RandomState(1)
    X = skewed_blobs(seed=10, n_per=30, n_features=2)
    sw = rng.randint(0, 4, X.shape[0])
    X_rep = np.repeat(X, sw, axis=0)
    start = fit_quiet(
        BayesianGaussianMixture(
            n_components=3,
            covariance_type=covariance_type,
            weight_concentration_prior_type=prior_type,
            max_iter=2,
            random_state=0,
            warm_start=True,
        ),
        X,
    )
    start.set_params(max_iter=15, tol=1e-8)
    weighted = fit_quiet(copy.deepcopy(start), X, sample_weight=sw)
    repeated = fit_quiet(copy.deepcopy(start), X_rep)
    assert weighted.n_iter_ == repeated.n_iter_
    assert_allclose(weighted.lower_bounds_, repeated.lower_bounds_, rtol=1e-9)
    ref_arrays = fitted_arrays(repeated)
    for name, value in fitted_arrays(weighted).items():
        assert_allclose(value, ref_arrays[name], rtol=1e-8, atol=1e-12, err_msg=name)


def test_weights_sum_must_exceed_one_for_default_covariance_prior():
    X = skewed_blobs(seed=0, n_per=10, n_features=2)
    sw = np.full(X.shape[0], 1.0 / X.shape[0])
    with pytest.raises(ValueError, match=r"sum\(sample_weight\) > 1"):
        BayesianGaussianMixture(n_components=2).fit(X, sample_weight=sw)
    m = BayesianGaussianMixture(n_components=2, covariance_prior=np.eye(2), max_iter=5)
    fit_quiet(m, X, sample_weight=sw)
    assert np.all(np.isfinite(m.means_))


# -------------------------------------------------------------------- dtype
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_dtype_is_kept(covariance_type, prior_type):
    X = skewed_blobs(seed=11, n_features=2)
    kw = dict(
        n_components=3,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        max_iter=20,
        random_state=0,
    )
    m64 = fit_quiet(BayesianGaussianMixture(**kw), X)
    m32 = fit_quiet(BayesianGaussianMixture(**kw), X.astype(np.float32))
    for m, dtype in ((m64, np.float64), (m32, np.float32)):
        for name, value in fitted_arrays(m).items():
            assert np.asarray(value).dtype == dtype, (name, np.asarray(value).dtype)
        assert m.predict_proba(X.astype(dtype)).dtype == dtype
        assert m.score_samples(X.astype(dtype)).dtype == dtype
        assert isinstance(m.lower_bound_, float)
    assert_allclose(m32.means_, m64.means_, rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------- ELBO
@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_never_decreases(covariance_type, prior_type):
    """tol=0, fixed max_iter, overlapping and well-separated data. Allowed slack:
    1e-10 * |lower bound| for floating-point rounding (observed < 1e-14)."""
    rng = np.random.RandomState(0)
    overlapping = rng.randn(200, 2) @ np.array([[1.0, 0.5], [0.0, 1.0]])
    separated = np.vstack([rng.randn(70, 2) * 0.5 + c for c in ([0, 0], [6, 0], [0, 6])])
    for X in (overlapping, separated):
        for init_params in ("random", "kmeans"):
            m = fit_quiet(
                BayesianGaussianMixture(
                    n_components=5,
                    covariance_type=covariance_type,
                    weight_concentration_prior_type=prior_type,
                    init_params=init_params,
                    tol=0,
                    max_iter=40,
                    random_state=0,
                ),
                X,
            )
            lb = np.asarray(m.lower_bounds_)
            assert lb.shape == (40,)
            assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))
            assert m.lower_bound_ == lb[-1]


def test_tied_lower_bound_is_a_scalar():
    m = fit_quiet(
        BayesianGaussianMixture(n_components=2, covariance_type="tied", max_iter=5), skewed_blobs()
    )
    assert isinstance(m.lower_bound_, np.float64) and np.ndim(m.lower_bound_) == 0
    assert all(isinstance(v, np.float64) and np.ndim(v) == 0 for v in m.lower_bounds_)


# -------------------------------------------------------------- bad input
def _both_raise(kw, X, match, exc=ValueError):
    with pytest.raises(exc, match=match):
        skm.BayesianGaussianMixture(**kw).fit(X)
    with pytest.raises(exc, match=match):
        BayesianGaussianMixture(**kw).fit(X)


def test_prior_validation_messages():
    X = skewed_blobs(n_features=3)
    _both_raise(
        dict(degrees_of_freedom_prior=1.5),
        X,
        r"The parameter 'degrees_of_freedom_prior' should be greater than 2, but got 1.500\.",
    )
    for ct in ("full", "tied"):
        _both_raise(
            dict(covariance_type=ct, covariance_prior=np.eye(2)),
            X,
            rf"The parameter '{ct} covariance_prior' should have the shape of \(3, 3\), "
            r"but got \(2, 2\)",
        )
        _both_raise(
            dict(covariance_type=ct, covariance_prior=-np.eye(3)),
            X,
            rf"'{ct} precision' should be symmetric, positive-definite",
        )
    _both_raise(
        dict(covariance_type="diag", covariance_prior=np.ones(2)),
        X,
        r"The parameter 'diag covariance_prior' should have the shape of \(3,\), but got \(2,\)",
    )
    _both_raise(
        dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]),
        X,
        r"'diag precision' should be positive",
    )
    _both_raise(
        dict(mean_prior=[0.0, 0.0]),
        X,
        r"The parameter 'means' should have the shape of \(3,\), but got \(2,\)",
    )
    for bad in (
        dict(weight_concentration_prior=0.0),
        dict(weight_concentration_prior=-1.0),
        dict(mean_precision_prior=0.0),
        dict(degrees_of_freedom_prior=-1.0),
        dict(covariance_type="spherical", covariance_prior=-1.0),
        dict(weight_concentration_prior_type="dirichlet"),
        dict(covariance_type="blah"),
        dict(n_components=0),
    ):
        _both_raise(bad, X, None, exc=InvalidParameterError)
    with pytest.raises(ValueError, match="'spherical precision' should be positive"):
        BayesianGaussianMixture(covariance_type="spherical", covariance_prior=np.array(-1.0)).fit(
            X
        )


def test_bad_data_like_gaussian_mixture():
    X = skewed_blobs()
    for bad, exc in (
        (np.array([[np.nan, 1.0], [1.0, 2.0], [0.0, 1.0]]), ValueError),
        (X[:1], ValueError),
        (X[:2], ValueError),  # n_samples < n_components
    ):
        with pytest.raises(exc):
            BayesianGaussianMixture(n_components=3).fit(bad)
    with pytest.raises(ValueError, match="negative"):
        BayesianGaussianMixture(n_components=2).fit(X, sample_weight=-np.ones(len(X)))


@pytest.mark.parametrize(
    "damage",
    ["mean_precision", "degrees_of_freedom", "sticks", "tied_factor", "full_factor"],
)
def test_fitted_attributes_that_disagree_are_refused(damage):
    """The variational kernels index the K-sized attributes without bounds
    checks: a model whose fitted attributes disagree on K (or whose factor has
    another type's shape) is refused with the attribute named, as NumPy's
    broadcasting refused it, instead of reading past an array's end."""
    X = skewed_blobs(seed=3)
    covariance_type = {"tied_factor": "tied", "full_factor": "full"}.get(damage, "diag")
    m = fit_quiet(BayesianGaussianMixture(n_components=3, covariance_type=covariance_type,
                                          max_iter=5, random_state=0), X)  # fmt: skip
    if damage == "mean_precision":
        m.mean_precision_, name = m.mean_precision_[:2].copy(), "mean_precision_"
    elif damage == "degrees_of_freedom":
        m.degrees_of_freedom_, name = m.degrees_of_freedom_[:2].copy(), "degrees_of_freedom_"
    elif damage == "sticks":
        a, b = m.weight_concentration_
        m.weight_concentration_, name = (a, b[:2].copy()), "weight_concentration_"
    elif damage == "tied_factor":
        m.precisions_cholesky_ = np.repeat(m.precisions_cholesky_[None], 3, axis=0)
        name = "precisions_cholesky_"
    else:
        m.precisions_cholesky_ = m.precisions_cholesky_[:, :2, :2].copy()
        name = "precisions_cholesky_"
    with pytest.raises(ValueError, match=name.replace("[", r"\[")):
        m.score_samples(X[:3])
    with pytest.raises(ValueError, match=name.replace("[", r"\[")):
        m._compute_lower_bound(SimpleNamespace(sum_wrlogr=0.0))
    if damage == "sticks":  # weights_ from the sticks, e.g. after a load
        with pytest.raises(ValueError, match="weight_concentration_"):
            m._derive_parameters()


def test_mean_and_diagonal_wishart_posteriors_round_as_numpy():
    """mean_posterior and diag_wishart compile without fastmath: NumPy's
    rounding of their formulas bit for bit (arcp's reciprocal moved 42% of the
    means by an ulp, and a mean equal to the prior's off it). With reg_covar = 0
    a constant feature's tiny variance magnified that ulp into a fit that
    scikit-learn's ill-defined-covariance error should have stopped."""
    rng = np.random.RandomState(5)
    k, d = 7, 4
    nk = rng.rand(k) * 10.0 ** rng.randint(-3, 7, k)
    xk = rng.randn(k, d) * 3
    xk[:, 0] = 1.0
    m0 = np.r_[1.0, rng.randn(d - 1)]
    beta0, nu0, cov0 = 0.7, d + 0.3, rng.rand(d) + 0.1
    beta, means = vk.mean_posterior(nk, xk, beta0, m0)
    want_beta = beta0 + nk
    np.testing.assert_array_equal(beta, want_beta)
    np.testing.assert_array_equal(means, (beta0 * m0 + nk[:, None] * xk) / want_beta[:, None])
    assert np.all(means[:, 0] == 1.0)
    sk = rng.rand(k, d)
    dof, cov = vk.diag_wishart(nk, xk, sk, beta, beta0, m0, nu0, cov0, False)
    np.testing.assert_array_equal(dof, nu0 + nk)
    want = cov0 + nk[:, None] * (sk + (beta0 / beta)[:, None] * np.square(xk - m0))
    np.testing.assert_array_equal(cov, want / (nu0 + nk)[:, None])

    Xc = np.c_[np.ones(40), np.random.RandomState(0).randn(40)]
    for covariance_type in ("diag", "tied-diagonal"):
        model = BayesianGaussianMixture(
            n_components=2, covariance_type=covariance_type, reg_covar=0.0, random_state=0
        )
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            model.partial_fit(Xc)


def test_variational_kernels_compile_once_per_process():
    """Every argument the variational kernels get is a C-contiguous writeable
    float64 array: an initialisation's broadcast shift, a float32 model's
    attributes and read-only (memory-mapped) ones compile nothing more than
    the first fit did."""
    X = skewed_blobs(seed=4)
    for dtype in (np.float64, np.float32):
        for covariance_type in ("diag", "tied-spherical"):
            m = BayesianGaussianMixture(
                n_components=3, covariance_type=covariance_type, max_iter=3, random_state=0
            )
            fit_quiet(m, X.astype(dtype))
            m.partial_fit(X.astype(dtype))
            frozen = frozen_copy(m)
            frozen.score_samples(X)
            frozen._compute_lower_bound(SimpleNamespace(sum_wrlogr=0.0))
    for kernel in (vk.diag_posterior, vk.variational_bias, vk.lower_bound):
        assert len(kernel.signatures) == 1, (kernel, kernel.signatures)


def test_failed_fit_leaves_fitted_model_untouched():
    X = skewed_blobs()
    m = fit_quiet(BayesianGaussianMixture(n_components=2, max_iter=10, random_state=0), X)
    before = {k: copy.deepcopy(v) for k, v in vars(m).items()}
    m.set_params(degrees_of_freedom_prior=0.5)
    with pytest.raises(ValueError):
        m.fit(X)
    m.set_params(degrees_of_freedom_prior=None, covariance_prior=np.eye(2))
    with pytest.raises(ValueError):
        m.fit(X)
    m.set_params(covariance_prior=None)
    for k, v in before.items():
        if k in ("degrees_of_freedom_prior", "covariance_prior", *m._caches):
            continue  # the caches are checked against the attributes when read
        if isinstance(v, tuple):
            for a, b in zip(v, getattr(m, k), strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(getattr(m, k), v, err_msg=k)


def test_constructor_parameters_not_mutated():
    X = skewed_blobs()
    m = BayesianGaussianMixture(n_components=3, max_iter=5, random_state=0)
    params = m.get_params()
    fit_quiet(m, X)
    assert m.get_params() == params
    for name in (
        "weight_concentration_prior",
        "mean_precision_prior",
        "mean_prior",
        "degrees_of_freedom_prior",
        "covariance_prior",
    ):
        assert getattr(m, name) is None
    assert m.weight_concentration_prior_ == 1.0 / 3
    assert m.mean_precision_prior_ == 1.0
    assert m.degrees_of_freedom_prior_ == X.shape[1]


# ------------------------------------------------------------- behaviour
def test_dirichlet_process_switches_off_surplus_components():
    """True K = 3 well-separated blobs, n_components = 10, a small concentration
    prior: the stick-breaking prior leaves at most 3 weights above 1%."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(200, 2) * 0.6 + c for c in ([0, 0], [5, 1], [1, 6])])
    m = BayesianGaussianMixture(
        n_components=10,
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=1e-3,
        max_iter=500,
        random_state=0,
    ).fit(X)
    assert m.converged_
    assert np.sum(m.weights_ > 0.01) <= 3
    assert np.sum(m.weights_ > 0.2) == 3
    assert_allclose(m.weights_.sum(), 1.0)


def test_fit_predict_and_api():
    X = skewed_blobs()
    kw = dict(n_components=3, max_iter=20, random_state=0)
    labels = fit_quiet(BayesianGaussianMixture(**kw), X).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(BayesianGaussianMixture(**kw).fit_predict(X), labels)
    m = fit_quiet(BayesianGaussianMixture(**kw), X)
    Xs, ys = m.sample(50)
    assert Xs.shape == (50, 3) and ys.shape == (50,)
    m2 = pickle.loads(pickle.dumps(m))
    assert_allclose(m2.score_samples(X), m.score_samples(X))
    assert clone(m).get_params() == m.get_params()
    with pytest.raises(ValueError):
        m.predict(X[:, :2])


def test_float32_model_with_a_tail_of_tiny_weights_samples():
    """A float32 Dirichlet-process fit leaves weights down to 1e-12 whose float32
    rounding made the first K - 1 sum above 1: multinomial refused them."""
    X = np.random.RandomState(0).randn(500, 2).astype(np.float32)
    m = fit_quiet(BayesianGaussianMixture(n_components=10, random_state=0, max_iter=500), X)
    assert m.weights_.dtype == np.float32
    assert np.asarray(m.weights_, np.float64)[:-1].sum() > 1.0  # the case
    Xs, ys = m.sample(1000)
    assert Xs.shape == (1000, 2) and ys.shape == (1000,)
    # Weights that sum to 1 in float64 keep scikit-learn's draws exactly.
    f64 = fit_quiet(BayesianGaussianMixture(n_components=3, random_state=0), X.astype(float))
    sk = skm.GaussianMixture(3, random_state=0).fit(X.astype(float))
    for name in ("weights_", "means_", "covariances_"):
        setattr(sk, name, getattr(f64, name))
    sk.covariance_type = f64.covariance_type
    np.testing.assert_array_equal(f64.sample(200)[0], sk.sample(200)[0])


def test_docstring_example():
    X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    bgm = BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    theirs = skm.BayesianGaussianMixture(n_components=2, random_state=42).fit(X)
    assert_allclose(bgm.means_, theirs.means_, rtol=RTOL)
    # The values printed in the class docstring's example.
    assert_allclose(bgm.means_.round(2), [[2.5, 2.29], [8.46, 4.52]])
    np.testing.assert_array_equal(bgm.predict([[0, 0], [9, 3]]), [0, 1])
