"""``min_responsibility``: the opt-in that leaves tiny responsibilities out of the updates.

Off (0.0) it changes nothing; on, an EM fit equals dense EM whose M-steps see
the responsibilities below it as zero (tests/reference.py), the Bayesian
mixture's too in spirit, and bad values are refused like every other parameter.
The kernel-level statistics are pinned in tests/test_kernels.py.
"""

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
    (weights, means_, cov, _), lbs = ref.em(*args, min_resp=threshold)
    dtype = np.float64
    ref.assert_close(gm.lower_bounds_, lbs, dtype, np.abs(lbs) + 1.0, err_msg="lower bounds")
    ref.assert_close(gm.weights_, weights, dtype, err_msg="weights")
    mean_scale, cov_scale = ref.fit_scales(means_, cov, covariance_type)
    ref.assert_close(gm.means_, means_, dtype, mean_scale, err_msg="means")
    ref.assert_close(gm.covariances_, cov, dtype, cov_scale, err_msg="covariances")
    (_, exact_means, _, _), _ = ref.em(*args)
    assert not np.allclose(gm.means_, exact_means, rtol=1e-9, atol=0.0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_min_responsibility_zero_and_tied_change_nothing(estimator):
    """The default keeps every responsibility (bitwise the fit without the
    parameter), and 'tied' ignores it."""
    X, *_ = _start("diag")
    base = dict(n_components=4, max_iter=3, random_state=0)
    plain = estimator(covariance_type="diag", **base).fit(X)
    zero = estimator(covariance_type="diag", min_responsibility=0.0, **base).fit(X)
    np.testing.assert_array_equal(zero.means_, plain.means_)
    tied = estimator(covariance_type="tied", **base).fit(X)
    tied_min = estimator(covariance_type="tied", min_responsibility=1e-3, **base).fit(X)
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


@pytest.mark.parametrize("value", [-1e-9, 1.0, 2.0, np.nan, "1e-8"])
def test_bad_min_responsibility_is_refused_and_leaves_the_model(value):
    X, *_ = _start("diag")
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    means = gm.means_.copy()
    with pytest.raises(InvalidParameterError, match="min_responsibility"):
        gm.set_params(min_responsibility=value).fit(X)
    with pytest.raises(InvalidParameterError, match="min_responsibility"):
        gm.partial_fit(X)
    np.testing.assert_array_equal(gm.means_, means)


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
