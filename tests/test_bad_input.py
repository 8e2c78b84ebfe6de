"""Bad input to :class:`fastmix.GaussianMixture`: the right error, scikit-learn's
words where scikit-learn raises the same error, and an already-fitted model left
exactly as it was. Also extreme data scales and feature names."""

import copy
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import COV_TYPES, INIT_PARAMS, sklearn_blobs
from numpy.testing import assert_array_equal
from sklearn import mixture as skm
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from fastmix import GaussianMixture

PREDICT_METHODS = ("predict", "predict_proba", "score_samples", "score", "bic", "aic")
N_COMPONENTS = 3
N_FEATURES = 3


X_GOOD = sklearn_blobs(n=200, d=N_FEATURES, k=N_COMPONENTS)


def fitted(covariance_type="full", **params):
    return GaussianMixture(
        N_COMPONENTS, covariance_type=covariance_type, random_state=0, **params
    ).fit(X_GOOD)


def snapshot(estimator):
    return copy.deepcopy(vars(estimator))


def _assert_same(after, before, key):
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray), key
        assert after.dtype == before.dtype, key
        assert_array_equal(after, before, err_msg=key)
    elif isinstance(before, (list, tuple)):
        assert type(after) is type(before) and len(after) == len(before), key
        for a, b in zip(after, before, strict=True):
            _assert_same(a, b, key)
    elif isinstance(before, float) and np.isnan(before):
        assert np.isnan(after), key
    else:
        assert type(after) is type(before), key
        assert after == before, key


def assert_unchanged(estimator, before, ignore=()):
    """Every attribute (parameters, fitted arrays, n_features_in_, ...) as it was."""
    after = vars(estimator)
    assert set(after) - set(ignore) == set(before) - set(ignore)
    for key, value in before.items():
        if key not in ignore:
            _assert_same(after[key], value, key)


def _sorted_sets(message):
    """Sort the items of ``{...}`` sets: their printed order follows string hashing."""
    return re.sub(
        r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", message
    )


def raises_like_sklearn(fm_call, sk_call):
    """Both calls raise the same exception type with the same message."""
    with pytest.raises(Exception) as sk_info:
        sk_call()
    with pytest.raises(type(sk_info.value)) as fm_info:
        fm_call()
    assert type(fm_info.value) is type(sk_info.value)
    assert _sorted_sets(str(fm_info.value)) == _sorted_sets(str(sk_info.value))
    return str(fm_info.value)


# ---------------------------------------------------------------- bad X at fit
def _with(value):
    X = X_GOOD.copy()
    X[5, 1] = value
    return X


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_fit_rejects_non_finite_X(value):
    gm = fitted()
    before = snapshot(gm)
    X = _with(value)
    message = raises_like_sklearn(
        lambda: gm.fit(X), lambda: skm.GaussianMixture(N_COMPONENTS).fit(X)
    )
    assert re.search("NaN|infinity", message)
    assert_unchanged(gm, before)
    with pytest.raises(ValueError, match="NaN|infinity"):
        gm.fit_predict(X)
    assert_unchanged(gm, before)


BAD_SHAPES = {
    "1d": X_GOOD[:, 0],
    "3d": X_GOOD[None],
    "0rows": X_GOOD[:0],
    "1row": X_GOOD[:1],
    "sparse": sp.csr_matrix(X_GOOD),
    "strings": np.full(X_GOOD.shape, "a"),
    "complex": X_GOOD + 1j,
}


@pytest.mark.parametrize("name", list(BAD_SHAPES))
def test_fit_rejects_bad_shapes(name):
    X = BAD_SHAPES[name]
    gm = fitted()
    before = snapshot(gm)
    raises_like_sklearn(lambda: gm.fit(X), lambda: skm.GaussianMixture(N_COMPONENTS).fit(X))
    assert_unchanged(gm, before)


def test_single_sample_with_one_component():
    X = X_GOOD[:1]
    message = raises_like_sklearn(
        lambda: GaussianMixture(1).fit(X), lambda: skm.GaussianMixture(1).fit(X)
    )
    assert "minimum of 2 is required" in message


def test_fewer_samples_than_components():
    X = X_GOOD[:4]
    gm = fitted()
    before = snapshot(gm)
    gm.set_params(n_components=5)
    message = raises_like_sklearn(lambda: gm.fit(X), lambda: skm.GaussianMixture(5).fit(X))
    assert message == (
        "Expected n_samples >= n_components but got n_components = 5, n_samples = 4"
    )
    assert_unchanged(gm, before, ignore=("n_components",))


# ------------------------------------------------------- bad X after the fit
BAD_PREDICT_X = {
    "nan": _with(np.nan),
    "inf": _with(np.inf),
    "1d": X_GOOD[:, 0],
    "3d": X_GOOD[None],
    "too_few_features": X_GOOD[:, :2],
    "too_many_features": np.hstack([X_GOOD, X_GOOD[:, :1]]),
}


@pytest.mark.parametrize("method", PREDICT_METHODS)
@pytest.mark.parametrize("name", list(BAD_PREDICT_X))
def test_methods_reject_bad_X(name, method):
    X = BAD_PREDICT_X[name]
    gm = fitted()
    sk = skm.GaussianMixture(N_COMPONENTS, random_state=0).fit(X_GOOD)
    before = snapshot(gm)
    message = raises_like_sklearn(lambda: getattr(gm, method)(X), lambda: getattr(sk, method)(X))
    if name.startswith("too"):
        assert "features" in message
    assert_unchanged(gm, before)


@pytest.mark.parametrize("method", [*PREDICT_METHODS, "sample"])
def test_not_fitted(method):
    gm = GaussianMixture(N_COMPONENTS)
    before = snapshot(gm)
    args = () if method == "sample" else (X_GOOD,)
    raises_like_sklearn(
        lambda: getattr(gm, method)(*args),
        lambda: getattr(skm.GaussianMixture(N_COMPONENTS), method)(*args),
    )
    with pytest.raises(NotFittedError):
        getattr(gm, method)(*args)
    assert_unchanged(gm, before)


def test_sample_rejects_zero_samples():
    gm = fitted()
    sk = skm.GaussianMixture(N_COMPONENTS, random_state=0).fit(X_GOOD)
    before = snapshot(gm)
    # scikit-learn's message, but naming the n_samples given (scikit-learn
    # prints n_components there).
    with pytest.raises(ValueError) as sk_info:
        sk.sample(0)
    with pytest.raises(ValueError) as fm_info:
        gm.sample(0)
    assert str(sk_info.value) == str(fm_info.value).replace(": 0 .", f": {N_COMPONENTS} .")
    assert str(fm_info.value).startswith("Invalid value for 'n_samples': 0 .")
    assert_unchanged(gm, before)


# ----------------------------------------------------- constructor parameters
INVALID_PARAMS = [
    ("n_components", 0),
    ("n_components", 1.5),
    ("tol", -1.0),
    ("reg_covar", -1.0),
    ("max_iter", -1),
    ("n_init", 0),
    ("init_params", "bogus"),
    ("covariance_type", "bogus"),
    ("verbose_interval", 0),
    ("random_state", "bogus"),
    ("warm_start", "yes"),
    ("means_init", "bogus"),
]


def _with_tied_structures(sk_call):
    """scikit-learn's call, the options in its message extended by fastmix's
    'tied-diagonal' and 'tied-spherical' (tests/test_tied_structures.py)."""

    def call():
        try:
            sk_call()
        except InvalidParameterError as error:
            extended = re.sub(
                r"\{([^{}]*)\}", r"{\1, 'tied-diagonal', 'tied-spherical'}", str(error)
            )
            raise InvalidParameterError(extended) from None

    return call


@pytest.mark.parametrize(("name", "value"), INVALID_PARAMS)
def test_invalid_constructor_parameter(name, value):
    gm = fitted()
    before = snapshot(gm)
    gm.set_params(**{name: value})
    sk = skm.GaussianMixture(**{"n_components": N_COMPONENTS, name: value})

    def sk_call():
        sk.fit(X_GOOD)

    if name == "covariance_type":
        sk_call = _with_tied_structures(sk_call)
    message = raises_like_sklearn(lambda: gm.fit(X_GOOD), sk_call)
    assert f"The '{name}' parameter of GaussianMixture must be" in message
    with pytest.raises(InvalidParameterError):
        gm.fit_predict(X_GOOD)
    assert_unchanged(gm, before, ignore=(name,))


# ------------------------------------------------------- user-provided inits
def _spd(d, scale=1.0):
    return scale * np.eye(d)


K, D = N_COMPONENTS, N_FEATURES
BAD_INITS = [
    # (covariance_type, parameter, value)
    ("full", "weights_init", np.full(K + 1, 1.0 / (K + 1))),
    ("full", "weights_init", np.full(K, 0.2)),
    ("full", "weights_init", np.array([-0.5, 1.0, 0.5])),
    ("full", "weights_init", np.array([1.5, -0.25, -0.25])),
    ("full", "weights_init", np.array([np.nan, 0.5, 0.5])),
    ("full", "means_init", np.zeros((K, D + 1))),
    ("full", "means_init", np.zeros((K + 1, D))),
    ("full", "means_init", np.zeros(K)),
    ("full", "means_init", np.full((K, D), np.inf)),
    ("full", "precisions_init", np.stack([_spd(D)] * (K + 1))),
    ("full", "precisions_init", np.stack([_spd(D + 1)] * K)),
    ("full", "precisions_init", np.stack([_spd(D), _spd(D), -_spd(D)])),
    ("full", "precisions_init", np.stack([_spd(D), _spd(D), np.triu(np.ones((D, D)))])),
    ("full", "precisions_init", np.stack([_spd(D), _spd(D), np.ones((D, D))])),
    ("tied", "precisions_init", _spd(D + 1)),
    ("tied", "precisions_init", np.stack([_spd(D)] * K)),
    ("tied", "precisions_init", -_spd(D)),
    ("tied", "precisions_init", np.triu(np.ones((D, D))) + np.eye(D)),
    ("diag", "precisions_init", np.ones((K, D + 1))),
    ("diag", "precisions_init", np.ones(K)),
    ("diag", "precisions_init", np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])),
    ("diag", "precisions_init", -np.ones((K, D))),
    ("spherical", "precisions_init", np.ones(K + 1)),
    ("spherical", "precisions_init", np.ones((K, D))),
    ("spherical", "precisions_init", np.array([1.0, 0.0, 1.0])),
    ("spherical", "precisions_init", np.array([1.0, -2.0, 1.0])),
]


@pytest.mark.parametrize(
    ("covariance_type", "name", "value"),
    BAD_INITS,
    ids=[f"{c}-{n}-{i}" for i, (c, n, _) in enumerate(BAD_INITS)],
)
def test_bad_inits(covariance_type, name, value):
    gm = fitted(covariance_type)
    before = snapshot(gm)
    gm.set_params(**{name: value})
    sk = skm.GaussianMixture(N_COMPONENTS, covariance_type=covariance_type, **{name: value})
    raises_like_sklearn(lambda: gm.fit(X_GOOD), lambda: sk.fit(X_GOOD))
    assert_unchanged(gm, before, ignore=(name,))


# -------------------------------------------------------------- sample_weight
N = X_GOOD.shape[0]
BAD_WEIGHTS = {
    "negative": (np.r_[-1.0, np.ones(N - 1)], "negative"),
    "nan": (np.r_[np.nan, np.ones(N - 1)], "NaN"),
    "inf": (np.r_[np.inf, np.ones(N - 1)], "infinity"),
    "too_short": (np.ones(N - 1), "shape"),
    "too_long": (np.ones(N + 1), "shape"),
    "2d": (np.ones((N, 1)), "shape"),
    "scalar": (np.float64(1.0), "shape"),
    "all_zero": (np.zeros(N), "zero"),
    "fewer_positive_than_components": (np.r_[1.0, 1.0, np.zeros(N - 2)], "n_components"),
    "strings": (np.array(["a"] * N), "numeric"),
    "objects_not_numbers": (np.array([{}] * N, dtype=object), "numeric"),
    "objects_missing": (np.array([None] * N, dtype=object), "NaN"),  # float(None) is NaN
    # Each finite, the sum not: named as an overflow, not k-means' "probabilities".
    "sum_overflows": (np.full(N, 1e308), "sums to infinity.*reads them as counts of rows"),
    # Subnormal: named as such, not as the covariances' overflow that followed.
    "sum_subnormal": (np.full(N, 1e-320), "sums to 2.*e-318, below the smallest normal"),
}


def test_object_array_of_numbers_is_a_weight_array():
    """As scikit-learn's check_array: numbers in an object array are converted."""
    weights = np.array([1, 2.0, 0] * (N // 3) + [1] * (N % 3), dtype=object)
    a = GaussianMixture(N_COMPONENTS, random_state=0).fit(X_GOOD, sample_weight=weights)
    b = GaussianMixture(N_COMPONENTS, random_state=0)
    b.fit(X_GOOD, sample_weight=weights.astype(float))
    np.testing.assert_array_equal(a.means_, b.means_)


@pytest.mark.parametrize("name", list(BAD_WEIGHTS))
def test_bad_sample_weight(name):
    weights, pattern = BAD_WEIGHTS[name]
    gm = fitted()
    before = snapshot(gm)
    with pytest.raises(ValueError, match=pattern):
        gm.fit(X_GOOD, sample_weight=weights)
    assert_unchanged(gm, before)
    with pytest.raises(ValueError, match=pattern):
        gm.fit_predict(X_GOOD, sample_weight=weights)
    assert_unchanged(gm, before)


def test_exactly_n_components_positive_weights_is_accepted():
    w = np.zeros(N)
    w[[0, 70, 140]] = 1.0  # one row from each blob
    gm = GaussianMixture(N_COMPONENTS, random_state=0).fit(X_GOOD, sample_weight=w)
    assert np.all(np.isfinite(gm.means_))


# --------------------------------------------------------- collapsed covariance
def _collapsed(covariance_type):
    """Data whose covariance is exactly zero for every component of the fit."""
    if covariance_type == "full":
        # Three distinct points, each repeated: every within-cluster scatter is 0.
        points = np.array([[1.0, 2.0], [3.0, -1.0], [5.0, 5.0]])
        return np.repeat(points, 10, axis=0), 3
    # The other types add scikit-learn's 10 * eps * sum_k m_k m_k^T (tied) or
    # 10 * eps * mean**2 (diag, spherical) to the scatter: for points away from
    # the origin the exact covariance is then a tiny positive definite matrix,
    # and whether it fails a Cholesky factorisation is decided by rounding (in
    # scikit-learn as here). Only data at the origin make it exactly zero.
    return np.zeros((20, 2)), 1


@pytest.mark.parametrize("warm_start", [False, True])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_collapsed_covariance_raises_and_names_reg_covar(covariance_type, warm_start):
    X, n_components = _collapsed(covariance_type)
    gm = GaussianMixture(
        n_components, covariance_type=covariance_type, random_state=0, warm_start=warm_start
    ).fit(X + np.random.RandomState(0).normal(size=X.shape))
    before = snapshot(gm)
    gm.set_params(reg_covar=0.0)
    with pytest.raises(ValueError, match="reg_covar") as info:
        gm.fit(X)
    assert "ill-defined empirical covariance" in str(info.value)
    assert_unchanged(gm, before, ignore=("reg_covar",))

    # Constant data: scikit-learn raises the same error, word for word.
    X0 = np.zeros((20, 2))
    raises_like_sklearn(
        lambda: GaussianMixture(1, covariance_type=covariance_type, reg_covar=0.0).fit(X0),
        lambda: skm.GaussianMixture(1, covariance_type=covariance_type, reg_covar=0.0).fit(X0),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", [*COV_TYPES, "tied-diagonal", "tied-spherical"])
def test_constant_column_without_reg_covar_is_ill_defined(covariance_type, dtype):
    """A constant column away from zero, reg_covar=0: scikit-learn's error, not a fit.

    fastmix's centred moments leave only scikit-learn's 10 * eps count offset
    there (variances of 1e-16 m^2 and a meaningless lower bound); scikit-learn
    loses the offset to cancellation and raises. 'spherical' averages over
    the features and fits in both. A spread scikit-learn cannot resolve but
    the data can (1e-9 around 5) still fits, with its variance.
    """
    rng = np.random.RandomState(0)
    X = np.c_[rng.normal(size=(200, 1)), np.full(200, 5.0)].astype(dtype)
    fm = GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
    if covariance_type in ("spherical", "tied-spherical"):
        fm.fit(X)
        assert np.all(np.asarray(fm.covariances_) > 0.1)
    else:
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            fm.fit(X)
    if covariance_type in ("full", "tied", "diag"):
        sk = skm.GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
        raises_like_sklearn(lambda: fm.fit(X), lambda: sk.fit(X))

    if dtype == np.float64:
        X[:, 1] += 1e-9 * rng.normal(size=200)
        fm.fit(X)
        # The spread plus scikit-learn's offset, 10 eps m^2 / nk ~ 5e-16.
        variances = np.asarray(fm.covariances_)
        column = {
            "full": lambda v: v[:, 1, 1],
            "tied": lambda v: v[1, 1],
            "diag": lambda v: v[:, 1],
            "tied-diagonal": lambda v: v[1],
        }.get(covariance_type, lambda v: 1e-16)(variances)
        assert np.all((column > 5e-19) & (column < 1e-14))


# ------------------------------------------------------------- extreme scales


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_overflowing_data_is_named_as_overflow(covariance_type):
    """Finite data whose squares overflow: the error says so and how to fix it
    (main gave the collapsed-covariance text), and the fitted model is untouched."""
    gm = fitted(covariance_type)
    before = snapshot(gm)
    gm.set_params(init_params="random_from_data")
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="overflowed") as info:
        gm.fit(X_GOOD * 1e200)
    assert "StandardScaler" in str(info.value)
    assert_unchanged(gm, before, ignore=("init_params",))


ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.mark.parametrize("init_params", INIT_PARAMS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_extreme_scales_finite_or_clear_error(scale, covariance_type, init_params):
    X = sklearn_blobs(n=300, d=N_FEATURES, k=N_COMPONENTS, seed=1) * scale
    gm = GaussianMixture(
        N_COMPONENTS, covariance_type=covariance_type, init_params=init_params, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            gm.fit(X)
        except ValueError as exc:
            assert "reg_covar" in str(exc)
            return
    for name in ARRAYS:
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.isfinite(gm.lower_bound_)
    assert np.all(np.isfinite(gm.lower_bounds_))
    assert np.all(np.isfinite(gm.score_samples(X)))
    proba = gm.predict_proba(X)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    assert np.isfinite(gm.bic(X))


# -------------------------------------------------------------- feature names
def test_ndarray_sets_no_feature_names():
    gm = fitted()
    assert not hasattr(gm, "feature_names_in_")
    assert gm.n_features_in_ == N_FEATURES


def test_feature_names_from_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X_GOOD, columns=["a", "b", "c"])
    gm = GaussianMixture(N_COMPONENTS, random_state=0).fit(df)
    sk = skm.GaussianMixture(N_COMPONENTS, random_state=0).fit(df)
    assert_array_equal(gm.feature_names_in_, sk.feature_names_in_)
    assert gm.feature_names_in_.dtype == sk.feature_names_in_.dtype
    assert gm.n_features_in_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert_array_equal(gm.predict(df), sk.predict(df))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        gm.predict(X_GOOD)
    before = snapshot(gm)
    renamed = df.rename(columns={"a": "z"})
    raises_like_sklearn(lambda: gm.predict(renamed), lambda: sk.predict(renamed))
    assert_unchanged(gm, before)
    # Refitting on an ndarray forgets the names, as scikit-learn does.
    gm.fit(X_GOOD)
    assert not hasattr(gm, "feature_names_in_")
