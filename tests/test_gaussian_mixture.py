"""Estimator-level tests of :class:`fastmix.GaussianMixture`.

Parity with scikit-learn 1.9 (every fitted attribute, every method, warnings and
verbose output), the fit_predict / predict agreement, the monotone lower bound,
sample weights and the float32 policy. Every dataset is seeded and small enough
for the whole module to run in well under a minute once numba's disk cache is warm.
"""

import re
import warnings

import numpy as np
import pytest
from conftest import COV_TYPES, INIT_PARAMS, sklearn_blobs
from numpy.testing import assert_array_equal
from sklearn import mixture as skm
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky_from_precisions

from fastmix import GaussianMixture

PARAM_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")

# Parity tolerance (float64): scikit-learn and fastmix run the same algorithm in
# a different summation order, which moves results by ~1e-14 relative on these
# well-posed problems; 1e-6 leaves ample room and still catches any real error.
RTOL = 1e-6
# Entries that are sums of O(scale) terms cancelling to ~0 (off-diagonal
# covariances, Cholesky factors, tiny responsibilities) only carry an absolute
# error of a few ulps of the array's scale: compare them against that scale.
ATOL_FACTOR = 1e-9


def assert_close(actual, desired, rtol=RTOL, err_msg="", atol_floor=0.0, atol_factor=ATOL_FACTOR):
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, err_msg
    scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    atol = max(atol_factor * scale, atol_floor)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


def convergence_messages(records):
    return [str(w.message) for w in records if issubclass(w.category, ConvergenceWarning)]


def fit_both(X, fit_twice=False, **params):
    """Fit fastmix and scikit-learn with the same parameters; warnings must agree."""
    models = []
    messages = []
    for cls in (GaussianMixture, skm.GaussianMixture):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            model = cls(**params).fit(X)
            if fit_twice:
                model.fit(X)
        models.append(model)
        messages.append(convergence_messages(records))
    assert messages[0] == messages[1]
    return models


def eval_data(X):
    """Training rows plus shifted rows the model has not seen."""
    return np.vstack([X[:150], X[:60] + 2.5])


def assert_parity(
    fm, sk, X, rtol=RTOL, Xe=None, cov_atol=0.0, atol_factor=ATOL_FACTOR, sample_values=True
):
    """Every fitted attribute and every method of ``fm`` against scikit-learn's ``sk``.

    ``cov_atol`` is an absolute floor for covariances_ whose entries are far
    below the data's scale (cancellation noise is ~eps * |x|**2 there), and
    ``atol_factor`` the absolute tolerance of the parameter arrays relative to
    their largest entry. ``sample_values=False`` compares only the labels of
    sample(): numpy's multivariate_normal takes an SVD of the covariance, whose
    singular vectors are arbitrary when singular values (nearly) coincide.
    """
    for name in PARAM_ARRAYS:
        floor = cov_atol if name == "covariances_" else 0.0
        assert_close(
            getattr(fm, name),
            getattr(sk, name),
            rtol,
            err_msg=name,
            atol_floor=floor,
            atol_factor=atol_factor,
        )
        assert getattr(fm, name).dtype == np.float64, name
    if sk.lower_bound_ == -np.inf:
        assert fm.lower_bound_ == -np.inf
    else:
        assert_close(fm.lower_bound_, sk.lower_bound_, rtol, err_msg="lower_bound_")
    assert len(fm.lower_bounds_) == len(sk.lower_bounds_)
    if sk.lower_bounds_:
        assert_close(fm.lower_bounds_, sk.lower_bounds_, rtol, err_msg="lower_bounds_")
    assert fm.n_iter_ == sk.n_iter_
    assert fm.converged_ == sk.converged_
    assert fm.n_features_in_ == sk.n_features_in_

    Xe = eval_data(X) if Xe is None else Xe
    assert_array_equal(fm.predict(Xe), sk.predict(Xe))
    assert_close(fm.predict_proba(Xe), sk.predict_proba(Xe), rtol, err_msg="predict_proba")
    assert_close(fm.score_samples(Xe), sk.score_samples(Xe), rtol, err_msg="score_samples")
    assert_close(fm.score(Xe), sk.score(Xe), rtol, err_msg="score")
    assert_close(fm.bic(Xe), sk.bic(Xe), rtol, err_msg="bic")
    assert_close(fm.aic(Xe), sk.aic(Xe), rtol, err_msg="aic")

    Xs_fm, ys_fm = fm.sample(40)
    Xs_sk, ys_sk = sk.sample(40)
    assert_array_equal(ys_fm, ys_sk)
    if sample_values:
        assert_close(Xs_fm, Xs_sk, rtol, err_msg="sample")
    assert Xs_fm.dtype == Xs_sk.dtype


def explicit_inits(X, n_components, covariance_type, seed=0):
    """Valid, deliberately imperfect weights, means and precisions."""
    rng = np.random.RandomState(seed)
    n_features = X.shape[1]
    weights = rng.uniform(1.0, 2.0, n_components)
    weights /= weights.sum()
    means = X[rng.choice(X.shape[0], n_components, replace=False)] + 0.3
    A = rng.normal(size=(n_components, n_features, n_features))
    full = A @ A.transpose(0, 2, 1) / n_features + np.eye(n_features)
    precisions = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.5, 2.0, (n_components, n_features)),
        "spherical": rng.uniform(0.5, 2.0, n_components),
    }[covariance_type]
    return {"weights_init": weights, "means_init": means, "precisions_init": precisions}


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_explicit_inits(covariance_type):
    X = sklearn_blobs(n=500, d=4, k=3, seed=1, std=1.5)
    inits = explicit_inits(X, 3, covariance_type)
    # random_state only drives sample() here: every parameter is given.
    fm, sk = fit_both(X, n_components=3, covariance_type=covariance_type, random_state=0, **inits)
    assert fm.n_iter_ > 1
    assert_parity(fm, sk, X)


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_init_params(covariance_type, init_params):
    X = sklearn_blobs(n=600, d=3, k=4, seed=2, std=1.2)
    fm, sk = fit_both(
        X,
        n_components=4,
        covariance_type=covariance_type,
        init_params=init_params,
        random_state=7,
    )
    assert_parity(fm, sk, X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_random_init_spans_init_blocks(covariance_type):
    # fastmix draws the 'random' responsibilities in blocks of 65536 rows; the
    # random stream must still be consumed exactly as scikit-learn's one draw.
    X = sklearn_blobs(n=70_000, d=2, k=2, seed=3, std=2.0)
    fm, sk = fit_both(
        X,
        n_components=2,
        covariance_type=covariance_type,
        init_params="random",
        max_iter=2,
        random_state=0,
    )
    assert_parity(fm, sk, X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_n_init(covariance_type):
    X = sklearn_blobs(n=500, d=2, k=3, seed=4, std=2.5)
    fm, sk = fit_both(
        X,
        n_components=3,
        covariance_type=covariance_type,
        init_params="random",
        n_init=3,
        random_state=3,
    )
    assert_parity(fm, sk, X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_warm_start(covariance_type):
    X = sklearn_blobs(n=500, d=3, k=3, seed=5, std=2.5)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        init_params="random",
        warm_start=True,
        max_iter=2,
        tol=1e-10,
        random_state=0,
    )
    fm, sk = fit_both(X, **params)
    assert not fm.converged_
    assert_parity(fm, sk, X)
    first_bound = fm.lower_bound_
    fm, sk = fit_both(X, fit_twice=True, **params)
    assert fm.lower_bound_ > first_bound  # the second fit continued, not restarted
    assert_parity(fm, sk, X)


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_max_iter_0(covariance_type, init_params):
    X = sklearn_blobs(n=400, d=3, k=3, seed=6)
    with warnings.catch_warnings():
        # max_iter=0 only initialises: no ConvergenceWarning from either library.
        warnings.simplefilter("error", ConvergenceWarning)
        fm, sk = fit_both(
            X,
            n_components=3,
            covariance_type=covariance_type,
            init_params=init_params,
            max_iter=0,
            random_state=0,
        )
    assert fm.lower_bound_ == -np.inf
    assert fm.lower_bounds_ == []
    assert fm.n_iter_ == 0
    assert fm.converged_ is False
    assert_parity(fm, sk, X)


PARTIAL_INITS = (
    ("weights_init",),
    ("means_init",),
    ("precisions_init",),
    ("weights_init", "means_init"),
    ("weights_init", "precisions_init"),
    ("means_init", "precisions_init"),
)


@pytest.mark.parametrize("given", PARTIAL_INITS, ids="+".join)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_partial_inits(covariance_type, given):
    X = sklearn_blobs(n=500, d=3, k=3, seed=8, std=1.5)
    inits = explicit_inits(X, 3, covariance_type, seed=1)
    params = {name: inits[name] for name in given}
    fm, sk = fit_both(X, n_components=3, covariance_type=covariance_type, random_state=0, **params)
    assert_parity(fm, sk, X)


@pytest.mark.parametrize("given", PARTIAL_INITS, ids="+".join)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_partial_inits_max_iter_0(covariance_type, given):
    """Initial parameters when only some inits are given.

    Missing parameters come from the kmeans responsibilities, as in
    scikit-learn. When ``precisions_init`` is given, covariances_ is its
    inverse, as ``sample`` needs (it kept the covariances of those
    responsibilities, so a max_iter=0 model sampled from other covariances
    than its precisions'). (scikit-learn 1.9 never sets ``covariances_`` then
    and its fit with max_iter=0 raises AttributeError, so the reference here is
    scikit-learn's fit without ``precisions_init``, whose responsibilities are
    identical, with the precisions replaced by scikit-learn's own Cholesky
    factorisation of ``precisions_init`` and the covariances by its inverse.)
    """
    X = sklearn_blobs(n=500, d=3, k=3, seed=8, std=1.5)
    inits = explicit_inits(X, 3, covariance_type, seed=1)
    params = {name: inits[name] for name in given}
    common = dict(n_components=3, covariance_type=covariance_type, random_state=0, max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fm = GaussianMixture(**common, **params).fit(X)
        sk_params = {k: v for k, v in params.items() if k != "precisions_init"}
        sk = skm.GaussianMixture(**common, **sk_params).fit(X)
    if "precisions_init" in params:
        precisions = params["precisions_init"]
        sk.precisions_cholesky_ = _compute_precision_cholesky_from_precisions(
            precisions, covariance_type, xp=np
        )
        sk.precisions_ = precisions
        sk.covariances_ = (
            np.linalg.inv(precisions) if covariance_type in ("full", "tied") else 1.0 / precisions
        )
        assert_close(fm.precisions_, precisions, rtol=1e-12)
    assert fm.lower_bound_ == -np.inf
    assert_parity(fm, sk, X)


def _edge_case(name):
    if name == "one_component":
        return sklearn_blobs(n=300, d=3, k=1, seed=20), 1
    if name == "one_feature":
        return sklearn_blobs(n=300, d=1, k=2, seed=21), 2
    if name == "constant_feature":
        X = sklearn_blobs(n=300, d=3, k=3, seed=22)
        X[:, 1] = 4.0
        return X, 3
    if name == "n_samples_equals_n_components":
        return sklearn_blobs(n=3, d=2, k=3, seed=23), 3
    raise AssertionError(name)


@pytest.mark.parametrize(
    "case", ["one_component", "one_feature", "constant_feature", "n_samples_equals_n_components"]
)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_edge_cases(covariance_type, case):
    X, n_components = _edge_case(case)
    fm, sk = fit_both(
        X, n_components=n_components, covariance_type=covariance_type, random_state=0
    )
    Xe = None
    cov_atol = 0.0
    atol_factor = ATOL_FACTOR
    if case == "constant_feature":
        # Off the constant value, log p(x) is -(x - 4)**2 / (2 reg_covar) plus
        # differences of 1e-16-relative rounding in the variances times 1e6:
        # compare where the model is well-conditioned, shifting other features.
        Xe = np.vstack([X[:150], X[:60] + [2.5, 0.0, -1.0]])
    if case == "n_samples_equals_n_components":
        # Every covariance is reg_covar * I plus cancellation noise of the
        # data's scale: off-diagonal entries are ~1e-14 (1e-8 of the diagonal),
        # not 1e-6 * 1e-9, and the precisions inherit that relative noise.
        cov_atol = 1e-12
        atol_factor = 1e-7
    assert_parity(
        fm,
        sk,
        X,
        Xe=Xe,
        cov_atol=cov_atol,
        atol_factor=atol_factor,
        # numpy's multivariate_normal draws through an SVD of the covariance,
        # whose singular vectors' signs are not stable under the rounding
        # that separates the two fits: fastmix's cross terms with the
        # constant feature are exactly 0, scikit-learn's -1.2e-30, and with
        # numpy 2.4.6 / OpenBLAS 0.3.31 on an AMD EPYC the two SVDs flip
        # signs, so the same draws map to different points (the labels,
        # drawn first, still agree and are compared).
        sample_values=case != "n_samples_equals_n_components"
        and not (case == "constant_feature" and covariance_type == "full"),
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_all_inits_max_iter_0_sets_covariances_from_precisions(covariance_type):
    # Documented difference: scikit-learn 1.9 raises AttributeError here (it
    # never sets covariances_); fastmix returns the given parameters with
    # covariances_ the inverse of precisions_init.
    X = sklearn_blobs(n=300, d=3, k=3, seed=9)
    inits = explicit_inits(X, 3, covariance_type, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fm = GaussianMixture(3, covariance_type=covariance_type, max_iter=0, **inits).fit(X)
    precisions = inits["precisions_init"]
    covariances = (
        np.linalg.inv(precisions) if covariance_type in ("full", "tied") else 1.0 / precisions
    )
    assert_array_equal(fm.weights_, inits["weights_init"])
    assert_array_equal(fm.means_, inits["means_init"])
    assert_close(fm.covariances_, covariances, rtol=1e-12)
    assert_close(fm.precisions_, precisions, rtol=1e-12)
    assert_close(
        fm.precisions_cholesky_,
        _compute_precision_cholesky_from_precisions(precisions, covariance_type, xp=np),
        rtol=1e-12,
    )
    assert fm.lower_bound_ == -np.inf and fm.n_iter_ == 0 and fm.lower_bounds_ == []


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parity_list_input_and_random_state_instance(covariance_type):
    # A list of lists is validated like an array; a RandomState instance is
    # consumed exactly as scikit-learn consumes it, across n_init and refits.
    X = sklearn_blobs(n=300, d=2, k=3, seed=27, std=2.0)
    fm_rng, sk_rng = np.random.RandomState(5), np.random.RandomState(5)
    params = dict(n_components=3, covariance_type=covariance_type, init_params="random", n_init=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fm = GaussianMixture(random_state=fm_rng, **params).fit(X.tolist())
        sk = skm.GaussianMixture(random_state=sk_rng, **params).fit(X.tolist())
        assert_array_equal(fm_rng.uniform(size=3), sk_rng.uniform(size=3))
        fm.fit(X)
        sk.fit(X)
    # sample() draws from the same (shared, advancing) generator.
    assert_parity(fm, sk, X)


# ----------------------------------------------------------- warnings and verbose
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_convergence_warning_text(covariance_type):
    X = sklearn_blobs(n=400, d=2, k=3, seed=10, std=3.0)
    params = dict(n_components=3, covariance_type=covariance_type, max_iter=1, random_state=0)
    with pytest.warns(ConvergenceWarning) as fm_records:
        GaussianMixture(**params).fit(X)
    with pytest.warns(ConvergenceWarning) as sk_records:
        skm.GaussianMixture(**params).fit(X)
    fm_messages = convergence_messages(fm_records)
    assert fm_messages == convergence_messages(sk_records)
    assert fm_messages == [
        "Best performing initialization did not converge. Try different init "
        "parameters, or increase max_iter, tol, or check for degenerate data."
    ]
    # Converged: no warning at all.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert GaussianMixture(**{**params, "max_iter": 200}).fit(X).converged_


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_output_max_iter_0(verbose, capsys):
    X = sklearn_blobs(n=200, d=2, k=2, seed=28)
    params = dict(n_components=2, max_iter=0, n_init=2, verbose=verbose, random_state=0)
    outputs = []
    for cls in (GaussianMixture, skm.GaussianMixture):
        capsys.readouterr()
        cls(**params).fit(X)
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == "Initialization 0\nInitialization 1\n"


def _without_timings(text):
    return re.sub(r"time lapse \d+\.\d{5}s", "time lapse <t>s", text)


@pytest.mark.parametrize("verbose", [1, 2])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_verbose_output_matches_sklearn(covariance_type, verbose, capsys):
    X = sklearn_blobs(n=400, d=2, k=3, seed=11, std=2.5)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        init_params="random",
        n_init=2,
        max_iter=12,
        tol=1e-9,
        verbose=verbose,
        verbose_interval=3,
        random_state=1,
    )
    outputs = []
    for cls in (GaussianMixture, skm.GaussianMixture):
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(**params).fit(X)
        outputs.append(capsys.readouterr().out)
    fm_out, sk_out = outputs
    assert "Initialization 1" in fm_out and "  Iteration 3" in fm_out
    if verbose == 1:
        assert fm_out == sk_out
    else:
        assert "time lapse" in fm_out and "ll change" in fm_out and "lower bound" in fm_out
        assert _without_timings(fm_out).splitlines() == _without_timings(sk_out).splitlines()


# ---------------------------------------------------------------- fit_predict
@pytest.mark.parametrize("max_iter", [2, 100])
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_fit_predict_equals_fit_then_predict(covariance_type, init_params, max_iter):
    X = sklearn_blobs(n=500, d=3, k=3, seed=12, std=2.5)
    params = dict(
        n_components=3,
        covariance_type=covariance_type,
        init_params=init_params,
        max_iter=max_iter,
        random_state=4,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        labels = GaussianMixture(**params).fit_predict(X)
        fitted = GaussianMixture(**params).fit(X)
        sk_labels = skm.GaussianMixture(**params).fit_predict(X)
    assert labels.shape == (X.shape[0],)
    assert_array_equal(labels, fitted.predict(X))
    assert_array_equal(labels, sk_labels)
    assert len(np.unique(labels)) > 1


# ------------------------------------------------------------ monotone bound
@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bounds_never_decrease(covariance_type, init_params):
    # Overlapping clusters and tol=0: EM runs all of max_iter steps, through
    # the slow final approach to the fixed point.
    X = sklearn_blobs(n=800, d=2, k=4, seed=3, std=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(
            4,
            covariance_type=covariance_type,
            init_params=init_params,
            tol=0.0,
            max_iter=60,
            random_state=0,
        ).fit(X)
    bounds = np.asarray(gm.lower_bounds_)
    assert bounds.shape == (60,)
    assert gm.lower_bound_ == bounds[-1]
    # EM never lowers the likelihood; at the fixed point two successive bounds
    # may differ by rounding only (a few ulps of the bound itself).
    slack = 16 * np.spacing(np.abs(bounds[:-1]))
    assert np.all(np.diff(bounds) >= -slack), np.diff(bounds).min()
    assert bounds[-1] > bounds[0]


# ------------------------------------------------------------- sample weights
def _weighted_pair(X, w, X_ref, covariance_type, **extra):
    """Fit (X, weights w) and the unweighted X_ref from the same explicit inits."""
    inits = explicit_inits(X, 3, covariance_type, seed=3)
    params = dict(n_components=3, covariance_type=covariance_type, **inits, **extra)
    weighted = GaussianMixture(**params).fit(X, sample_weight=w)
    reference = GaussianMixture(**params).fit(X_ref)
    return weighted, reference


def _assert_same_model(a, b, rtol, X):
    for name in PARAM_ARRAYS:
        assert_close(getattr(a, name), getattr(b, name), rtol, err_msg=name)
    assert_close(a.lower_bound_, b.lower_bound_, rtol)
    assert_close(a.lower_bounds_, b.lower_bounds_, rtol)
    assert a.n_iter_ == b.n_iter_
    assert a.converged_ == b.converged_
    assert_close(a.score_samples(X), b.score_samples(X), rtol)
    assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_sample_weight_equals_repeated_rows(covariance_type):
    X = sklearn_blobs(n=300, d=3, k=3, seed=13, std=1.5)
    w = np.random.RandomState(0).randint(1, 4, X.shape[0])
    weighted, repeated = _weighted_pair(X, w, np.repeat(X, w, axis=0), covariance_type)
    assert weighted.n_iter_ > 1
    # Only the summation order differs (chunks of different rows).
    _assert_same_model(weighted, repeated, 1e-9, X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_zero_sample_weight_equals_dropped_rows(covariance_type):
    X = sklearn_blobs(n=400, d=3, k=3, seed=14, std=1.5)
    rng = np.random.RandomState(1)
    w = (rng.uniform(size=X.shape[0]) > 0.3).astype(np.float64)
    # The dropped rows are far outliers: any leak of a zero-weight row shows.
    X = X.copy()
    X[w == 0] += 40.0
    weighted, dropped = _weighted_pair(X, w, X[w > 0], covariance_type)
    _assert_same_model(weighted, dropped, 1e-9, X[w > 0])


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_mixed_integer_sample_weight_with_zeros(covariance_type):
    X = sklearn_blobs(n=300, d=2, k=3, seed=15, std=1.5)
    w = np.random.RandomState(2).randint(0, 4, X.shape[0])
    assert (w == 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted, repeated = _weighted_pair(
            X, w, np.repeat(X, w, axis=0), covariance_type, tol=0.0, max_iter=15
        )
    _assert_same_model(weighted, repeated, 1e-9, X)


def _weighted_reference_parameters(X, resp, w, reg_covar, covariance_type):
    """scikit-learn's _estimate_gaussian_parameters with every row weighted by w."""
    wr = resp * w[:, None]
    nk = wr.sum(axis=0) + 10 * np.finfo(X.dtype).eps
    means = wr.T @ X / nk[:, None]
    n_features = X.shape[1]
    if covariance_type == "full":
        cov = np.empty((len(nk), n_features, n_features))
        for k in range(len(nk)):
            diff = X - means[k]
            cov[k] = (wr[:, k, None] * diff).T @ diff / nk[k] + reg_covar * np.eye(n_features)
    elif covariance_type == "tied":
        avg_X2 = (w[:, None] * X).T @ X
        avg_means2 = (nk * means.T) @ means
        cov = (avg_X2 - avg_means2) / nk.sum() + reg_covar * np.eye(n_features)
    else:
        diff2 = (wr.T @ (X * X)) / nk[:, None] - means**2
        # the same quantity without cancellation: sum w r (x - m)^2 / nk + eps m^2 / nk
        diff2 = (
            np.stack([(wr[:, k, None] * (X - means[k]) ** 2).sum(axis=0) for k in range(len(nk))])
            / nk[:, None]
            + (10 * np.finfo(X.dtype).eps) * means**2 / nk[:, None]
        )
        cov = diff2 + reg_covar
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)
    return nk / w.sum(), means, cov


@pytest.mark.parametrize("init_params", ["random", "kmeans"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_weighted_initialisation_matches_reference(covariance_type, init_params):
    """max_iter=0 with sample weights: the initial parameters are the weighted
    statistics of scikit-learn's initial responsibilities (the random draw, or
    the labels of KMeans fitted with the same weights)."""
    from sklearn.cluster import KMeans

    X = sklearn_blobs(n=500, d=3, k=3, seed=24, std=1.5)
    w = np.random.RandomState(5).uniform(0.0, 3.0, X.shape[0])
    w[::7] = 0.0
    rng = np.random.RandomState(0)
    if init_params == "random":
        resp = rng.uniform(size=(X.shape[0], 3))
        resp /= resp.sum(axis=1)[:, None]
    else:
        labels = KMeans(3, n_init=1, random_state=rng).fit(X, sample_weight=w).labels_
        resp = np.eye(3)[labels]
    weights, means, covariances = _weighted_reference_parameters(X, resp, w, 1e-6, covariance_type)
    gm = GaussianMixture(
        3,
        covariance_type=covariance_type,
        init_params=init_params,
        max_iter=0,
        random_state=0,
    ).fit(X, sample_weight=w)
    assert_close(gm.weights_, weights, 1e-10)
    assert_close(gm.means_, means, 1e-10)
    assert_close(gm.covariances_, covariances, 1e-10)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_one_row_starts_far_from_the_data_mean(covariance_type, init_params):
    """A start component of one row has covariance reg_covar, as in scikit-learn.

    Summed around the data mean, a row 1e5 away kept eps * 1e10 of rounding as
    variance (above reg_covar): 'full' then refused its covariance as
    ill-defined, 'diag' started elsewhere. Each component is now summed around
    its own rows.
    """
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(30, 3), rng.randn(30, 3) + 4]) * 3e4
    params = dict(
        n_components=2, covariance_type=covariance_type, init_params=init_params, random_state=0
    )
    start, sk_start = fit_both(X, max_iter=0, **params)
    if covariance_type == "full":
        assert_close(start.covariances_, sk_start.covariances_, rtol=1e-12, atol_factor=1e-15)
    else:
        # scikit-learn's diagonal formula, exactly: its 10 eps count offset
        # leaves 10 eps m^2 / nk beside reg_covar, which its own one-pass
        # moments (x^2 - 2 x m + m^2, each ~1e10) bury in their rounding.
        eps10 = 10 * np.finfo(np.float64).eps
        exact = 1e-6 + eps10 * start.means_**2 / (1 + eps10)
        if covariance_type == "spherical":
            exact = exact.mean(axis=1)
        assert_close(start.covariances_, exact, rtol=1e-12)
        assert_close(start.covariances_, sk_start.covariances_, rtol=0.1)
    fm, sk = fit_both(X, **params)
    assert fm.n_iter_ == sk.n_iter_
    assert fm.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-10)
    for name in PARAM_ARRAYS:
        assert_close(getattr(fm, name), getattr(sk, name), err_msg=name)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_unit_sample_weight_is_bitwise_none(covariance_type, init_params):
    X = sklearn_blobs(n=600, d=3, k=3, seed=16, std=2.0)
    params = dict(
        n_components=3, covariance_type=covariance_type, init_params=init_params, random_state=0
    )
    a = GaussianMixture(**params).fit(X)
    b = GaussianMixture(**params).fit(X, sample_weight=np.ones(X.shape[0]))
    for name in PARAM_ARRAYS:
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.lower_bound_ == b.lower_bound_
    assert a.lower_bounds_ == b.lower_bounds_
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize(
    "constant",
    [
        2.5,
        1e3,
        1e-12,
    ],
)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_constant_sample_weight_does_not_change_fit(covariance_type, constant):
    X = sklearn_blobs(n=400, d=3, k=3, seed=17, std=1.5)
    weighted, unweighted = _weighted_pair(X, np.full(X.shape[0], constant), X, covariance_type)
    # A common factor on every weight cancels in every update; only rounding of
    # the scaled sums remains (~1e-15 relative, not amplified by contractive EM).
    _assert_same_model(weighted, unweighted, 1e-10, X)


# ---------------------------------------------------------------------- dtypes
# float32 against float64 on the *same* values (float32 data are exact in
# float64), so every difference comes from fastmix's float32 arithmetic: the
# per-row products (x - mean, (x - mean) @ U, the quadratic form) carry a
# relative error of a few eps32 (eps32 = 1.2e-7), the parameters are rounded to
# float32 between iterations (eps32 relative). On separated blobs EM is contractive,
# so these do not grow with the iterations: 2e-5 (~ 150 eps32) bounds them with
# room to spare, while a float32 accumulator over 2000 rows (error ~ sqrt(n) to
# n times eps32) or a float32 E[x^2] - mean^2 would break it.
F32_RTOL = 2e-5


def _assert_float32_close(gm32, gm64, X32, rtol=F32_RTOL):
    for name in PARAM_ARRAYS:
        assert_close(getattr(gm32, name), getattr(gm64, name), rtol, err_msg=name)
    assert_close(gm32.lower_bound_, gm64.lower_bound_, rtol)
    assert gm32.n_iter_ == gm64.n_iter_
    assert_array_equal(gm32.predict(X32), gm64.predict(X32))
    # log p(x) is a difference of terms of size ~|log p| + D log(scale): compare
    # with an absolute tolerance at that scale.
    ss32 = gm32.score_samples(X32)
    ss64 = gm64.score_samples(X32.astype(np.float64))
    np.testing.assert_allclose(ss32, ss64, rtol=rtol, atol=rtol * np.max(np.abs(ss64)))
    np.testing.assert_allclose(gm32.predict_proba(X32), gm64.predict_proba(X32), atol=1e-4)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_in_float32_out(covariance_type):
    X32 = sklearn_blobs(n=2000, d=3, k=3, seed=18, std=1.0).astype(np.float32)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    gm32 = GaussianMixture(**params).fit(X32)
    for name in PARAM_ARRAYS:
        assert getattr(gm32, name).dtype == np.float32, name
    assert gm32.score_samples(X32).dtype == np.float32
    assert gm32.predict_proba(X32).dtype == np.float32
    assert np.isfinite(gm32.lower_bound_)
    gm64 = GaussianMixture(**params).fit(X32.astype(np.float64))
    _assert_float32_close(gm32, gm64, X32)


@pytest.mark.parametrize(
    "covariance_type",
    COV_TYPES,
)
def test_float32_offset_data_close_to_float64(covariance_type):
    # Data far from the origin: float32 keeps them exactly (integers + a few
    # bits), and accumulation around the current means must avoid cancellation.
    X32 = (sklearn_blobs(n=5000, d=3, k=3, seed=1, std=1.0) + 1000.0).astype(np.float32)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    gm32 = GaussianMixture(**params).fit(X32)
    gm64 = GaussianMixture(**params).fit(X32.astype(np.float64))
    _assert_float32_close(gm32, gm64, X32)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float32_fit_at_offset_1e4_within_1e4_of_float64(covariance_type):
    """Issue 12's float32 requirement: data offset by 1e4, a float32 fit within
    1e-4 of the float64 fit, means in units of the spread (plus the float32
    rounding of a mean near 1e4, 6e-4 of it) and covariances in units of
    sqrt(v_i v_j). Components 14 standard deviations apart and 60 chunks.
    This guards the whole fit, not the worst case: it also passes with
    'tied' on float32 tiles (whose worst-case bound, ~2 (T + 2) u
    (delta/sigma)^2, random data do not reach);
    tests/test_kernels.py::test_tied_first_moments_of_float32_data_stay_float64
    pins 'tied' to float64."""
    rng = np.random.default_rng(12)
    k, d, n = 3, 4, 30_000
    centres = 10.0 * np.eye(k, d) + 1e4
    labels = rng.integers(k, size=n)
    X32 = (centres[labels] + rng.standard_normal((n, d))).astype(np.float32)
    params = dict(
        n_components=k,
        covariance_type=covariance_type,
        weights_init=np.full(k, 1.0 / k),
        means_init=centres + 0.5,
        max_iter=20,
    )
    gm32 = GaussianMixture(**params).fit(X32)
    gm64 = GaussianMixture(**params).fit(X32.astype(np.float64))
    assert gm32.n_iter_ == gm64.n_iter_
    var = gm64.covariances_
    if covariance_type == "full":
        var = np.diagonal(var, axis1=1, axis2=2)
    elif covariance_type == "tied":
        var = np.broadcast_to(np.diag(var), (k, d))
    elif covariance_type == "spherical":
        var = np.broadcast_to(var[:, None], (k, d))
    sd = np.sqrt(var)
    stored = np.abs(gm64.means_) * 2.0**-24  # rounding means_ to float32
    mean_err = (np.abs(gm32.means_ - gm64.means_) - stored) / sd
    assert np.max(mean_err) <= 1e-4, np.max(mean_err)
    if covariance_type == "full":
        unit = sd[:, :, None] * sd[:, None, :]
    elif covariance_type == "tied":
        unit = np.outer(sd[0], sd[0])
    else:
        unit = gm64.covariances_
    cov_err = np.abs(gm32.covariances_ - gm64.covariances_) / unit
    assert np.max(cov_err) <= 1e-4, np.max(cov_err)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_float64_stays_float64_and_int_becomes_float64(covariance_type):
    X = np.round(sklearn_blobs(n=300, d=2, k=2, seed=19) * 10)
    params = dict(n_components=2, covariance_type=covariance_type, random_state=0)
    gm64 = GaussianMixture(**params).fit(X)
    gm_int = GaussianMixture(**params).fit(X.astype(np.int64))
    for name in PARAM_ARRAYS:
        assert getattr(gm64, name).dtype == np.float64, name
        assert getattr(gm_int, name).dtype == np.float64, name
        assert_array_equal(getattr(gm_int, name), getattr(gm64, name), err_msg=name)
    assert gm_int.lower_bound_ == gm64.lower_bound_
    for model in (gm64, gm_int):
        for Xe in (X, X.astype(np.int64)):
            assert model.score_samples(Xe).dtype == np.float64
            assert model.predict_proba(Xe).dtype == np.float64


def test_float64_model_on_float32_data():
    # Outputs come in scikit-learn's dtype (float64 here, as scikit-learn's)
    # but are computed in X's dtype, so a float64 model scoring float32 data
    # is accurate to float32 precision.
    X = sklearn_blobs(n=500, d=3, k=3, seed=25)
    X32 = X.astype(np.float32)
    gm = GaussianMixture(3, random_state=0).fit(X)
    sk = skm.GaussianMixture(3, random_state=0).fit(X)
    assert gm.score_samples(X32).dtype == sk.score_samples(X32).dtype == np.float64
    assert gm.predict_proba(X32).dtype == sk.predict_proba(X32).dtype == np.float64
    ss = sk.score_samples(X32)
    np.testing.assert_allclose(
        gm.score_samples(X32), ss, rtol=F32_RTOL, atol=F32_RTOL * np.max(np.abs(ss))
    )
    np.testing.assert_allclose(gm.predict_proba(X32), sk.predict_proba(X32), atol=1e-5)
    assert_array_equal(gm.predict(X32), sk.predict(X32))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_memory_layout_does_not_change_the_fit(covariance_type):
    X = sklearn_blobs(n=500, d=3, k=3, seed=26, std=1.5)
    wide = np.zeros((X.shape[0], 6))
    wide[:, ::2] = X
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    ref = GaussianMixture(**params).fit(X)
    for layout in (np.asfortranarray(X), wide[:, ::2], X[::-1][::-1]):
        gm = GaussianMixture(**params).fit(layout)
        # BLAS products in the initial statistics may round differently for
        # another layout: equal to a few ulps, not necessarily bitwise.
        _assert_same_model(gm, ref, 1e-12, X)


@pytest.mark.parametrize("fit_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("predict_dtype", [np.float64, np.float32])
def test_output_dtypes_and_score_as_sklearn(fit_dtype, predict_dtype):
    """Outputs in NumPy's promotion of X's and the model's dtypes (a float64
    model given float32 rows answers in float64), and ``score`` the mean of
    ``score_samples`` as scikit-learn takes it (in their dtype)."""
    X = sklearn_blobs(600, d=3, k=3, seed=0)
    params = dict(n_components=3, random_state=0, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GaussianMixture(**params).fit(X.astype(fit_dtype))
        theirs = skm.GaussianMixture(**params).fit(X.astype(fit_dtype))
    Xp = X.astype(predict_dtype)
    for method in ("score_samples", "predict_proba"):
        got, want = getattr(ours, method)(Xp), getattr(theirs, method)(Xp)
        assert got.dtype == want.dtype, method
    samples = ours.score_samples(Xp)
    assert ours.score(Xp) == float(samples.mean())
