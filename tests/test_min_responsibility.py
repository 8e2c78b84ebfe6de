"""``min_responsibility``: the opt-in that leaves tiny responsibilities out of the updates.

Off (0.0) it changes nothing; on, an EM fit equals dense EM whose M-steps see
the responsibilities below it as zero (tests/reference.py), the Bayesian
mixture's too in spirit, and bad values are refused like every other parameter.
The kernel-level statistics are pinned in tests/test_kernels.py.
"""

import copy

import numpy as np
import pytest
import reference as ref
from conftest import gap_threshold
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from fastmix import BayesianGaussianMixture, GaussianMixture, load

# Separated enough that most rows' responsibilities for most of the 12
# components are below 1e-4, overlapping enough that many are not zero.
PROBLEM = dict(n_samples=1100, n_features=8, n_components=12)


def _start(covariance_type, seed=1):
    X, log_w, means, pc = ref.random_problem(seed, covariance_type, **PROBLEM)
    init = dict(
        weights_init=np.exp(log_w),
        means_init=means,
        precisions_init=ref.precisions_from_cholesky(pc, covariance_type),
    )
    return X, log_w, means, pc, init


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_em_leaves_out_responsibilities_below_min_responsibility(covariance_type):
    """Two weighted iterations from an explicit start equal dense EM with every
    responsibility below the threshold set to 0 before each M-step, and differ
    from exact EM (so the option is in effect)."""
    X, log_w, means, pc, init = _start(covariance_type)
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    threshold = gap_threshold(np.exp(log_resp))
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    params = dict(n_components=12, covariance_type=covariance_type, tol=0.0, max_iter=2, **init)
    gm = GaussianMixture(**params, min_responsibility=threshold).fit(X, sample_weight=w)
    pc0 = ref.precision_cholesky_from_precisions(init["precisions_init"], covariance_type)
    args = (X, w, np.exp(log_w), means, pc0, covariance_type, 1e-6, 2)
    ref.assert_fit_matches_em(gm, ref.em(*args, min_resp=threshold), covariance_type)
    (_, exact_means, _, _), _ = ref.em(*args)
    assert not np.allclose(gm.means_, exact_means, rtol=1e-9, atol=0.0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_tied_ignores_min_responsibility(estimator):
    """'tied' pools every row whole: the option changes nothing there."""
    X, *_ = _start("diag")
    base = dict(n_components=4, covariance_type="tied", max_iter=3, random_state=0)
    tied = estimator(**base).fit(X)
    tied_min = estimator(**base, min_responsibility=1e-3).fit(X)
    np.testing.assert_array_equal(tied_min.means_, tied.means_)
    np.testing.assert_array_equal(tied_min.covariances_, tied.covariances_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("partial", [False, True], ids=["fit", "partial_fit"])
def test_bayesian_mixture_min_responsibility_is_in_effect_and_close(partial):
    """Variational inference and its online step read the same statistics: a
    threshold moves the posterior means (it is in effect) by about the mass
    it leaves out, far less than the means' spread."""
    X, *_ = _start("diag")
    base = dict(n_components=12, covariance_type="diag", max_iter=5, random_state=0)
    exact = BayesianGaussianMixture(**base)
    approx = BayesianGaussianMixture(**base, min_responsibility=1e-4)
    for model in (exact, approx):
        model.partial_fit(X) if partial else model.fit(X)
    assert not np.array_equal(approx.means_, exact.means_)
    np.testing.assert_allclose(approx.means_, exact.means_, atol=1e-2 * np.ptp(X))


@pytest.mark.parametrize(
    "value, error",
    [(-1e-9, InvalidParameterError), (1.0, InvalidParameterError), (2.0, InvalidParameterError),
     (np.nan, InvalidParameterError), ("1e-8", InvalidParameterError),
     (0.5, ValueError)],  # above 1 / n_components = 1/3
)  # fmt: skip
def test_bad_min_responsibility_is_refused_and_leaves_the_model(value, error):
    """By fit, by a first partial_fit and by a later one (whose step
    parameters are checked again when they change); the model stays as it was."""
    X, *_ = _start("diag")
    fitted = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    online = GaussianMixture(3, covariance_type="diag", random_state=0).partial_fit(X)
    for gm in (fitted, online):
        state = copy.deepcopy({k: v for k, v in vars(gm).items() if k.endswith("_")})
        gm.set_params(min_responsibility=value)
        with pytest.raises(error, match="min_responsibility"):
            gm.fit(X)
        with pytest.raises(error, match="min_responsibility"):
            gm.partial_fit(X)
        for name, before in state.items():
            np.testing.assert_equal(getattr(gm, name), before, err_msg=name)


def test_min_responsibility_above_one_over_k_names_the_limit():
    X, *_ = _start("diag")
    with pytest.raises(ValueError, match=r"above 1/n_components = 0.25: .* at most 1/n_comp"):
        GaussianMixture(4, min_responsibility=0.3).fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_a_component_left_with_no_responsibility_keeps_its_mean_and_covariance(
    covariance_type,
):
    """A component far from every row keeps its start's mean and covariance
    (its weight goes to ~0) instead of scikit-learn's update of an empty one,
    mean 0 and covariance reg_covar: a spike at the origin."""
    X = np.random.default_rng(4).normal(5.0, 1.0, size=(2000, 3))
    means = np.array([[5.0, 5.0, 5.0], [4.0, 6.0, 5.0], [12.0, 12.0, 12.0]])
    precisions = {
        "full": np.tile(np.eye(3), (3, 1, 1)),
        "diag": np.ones((3, 3)),
        "spherical": np.ones(3),
    }[covariance_type]
    params = dict(
        n_components=3, covariance_type=covariance_type, max_iter=2, tol=0.0,
        weights_init=[0.5, 0.49, 0.01], means_init=means, precisions_init=precisions,
    )  # fmt: skip
    # Its largest responsibility at the start is 3e-15.
    gm = GaussianMixture(**params, min_responsibility=1e-8).fit(X)
    np.testing.assert_array_equal(gm.means_[2], means[2])
    start = GaussianMixture(**dict(params, max_iter=0)).fit(X)
    np.testing.assert_array_equal(gm.covariances_[2], start.covariances_[2])
    assert gm.weights_[2] < 1e-12
    # Exact EM moves it to the weighted mean of its tiny responsibilities.
    exact = GaussianMixture(**params).fit(X)
    assert np.all(np.abs(exact.means_[2] - means[2]) > 1.0)
    if covariance_type != "full":
        # The diagonal update's kept E-step inputs include the kept rows.
        online = GaussianMixture(**params, min_responsibility=1e-8).partial_fit(X)
        np.testing.assert_array_equal(online.means_[2], means[2])
        assert "_estep_inputs" in vars(online)
        kept, fresh = online._stats_params(X.dtype), online._kernel_params(X.dtype)
        for name in ("shift", "prec_diag", "bias"):
            np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_min_responsibility_survives_clone_and_save(tmp_path):
    X, *_ = _start("diag")
    gm = GaussianMixture(3, covariance_type="diag", max_iter=2, min_responsibility=1e-6)
    assert clone(gm).min_responsibility == 1e-6
    gm.fit(X)
    gm.save(tmp_path / "m.npz")
    back = load(tmp_path / "m.npz")
    assert back.min_responsibility == 1e-6
    np.testing.assert_array_equal(back.means_, gm.means_)


def test_fit_with_min_responsibility_warns_like_any_fit():
    """A fit that stops at max_iter still says so (the option changes the
    statistics, not the loop)."""
    X, *_ = _start("diag")
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(12, covariance_type="diag", max_iter=1, min_responsibility=1e-8).fit(X)
