"""Invariants of the streaming E-step and of the fit, checked with hypothesis.

Strategies are bounded: finite floats in [-10, 10], n in [K, 60], D in [1, 4],
K in [1, 4]; the model parameters come from a drawn seed. ``deadline=None``
because the first example compiles the kernels; ``derandomize=True`` keeps the
suite reproducible (the examples are a function of the test and of
hypothesis's version).

Invariances that only reorder float64 sums (row order, chunking, weights vs
repetition) are held to float64's tolerance even for float32 data: each row's
float32 arithmetic is the same wherever the row sits.
"""

import os
import warnings

import numpy as np
import pytest
import reference as ref
from conftest import COV_TYPES, STATS_FIELDS, assert_stats_close, fit_quiet
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning

from fastmix import GaussianMixture
from fastmix._sources import estep_pass
from fastmix._update import kernel_params

F64 = np.float64

# FASTMIX_HYPOTHESIS_STRESS=N draws N fresh random examples per test instead
# (with --hypothesis-seed to replay a run): the derandomized examples depend
# on hypothesis's version, so CI's may differ from the ones run here.
_STRESS = int(os.environ.get("FASTMIX_HYPOTHESIS_STRESS", "0"))
SETTINGS = settings(
    deadline=None,
    max_examples=_STRESS or 25,
    derandomize=not _STRESS,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# Run these many tiny passes on one numba thread: the invariants are about the
# reduction, which does not depend on the thread count, and a parallel launch
# costs 50-250 ms when other processes hold the cores (measured with the omp
# threading layer on 2 busy cores; 60 us on one thread).
pytestmark = pytest.mark.usefixtures("one_numba_thread")


@st.composite
def problems(draw, dtypes=(np.float64, np.float32), rows_per_parameter=0):
    """(X, dtype, K, seed): bounded data and a seed for the model parameters.

    ``rows_per_parameter`` > 0 asks for at least that many rows per component
    and feature, and blurs every value by N(0, 0.05^2) noise from the seed,
    so that EM has no exact duplicates or constant features to collapse onto.
    """
    n_components = draw(st.integers(1, 4))
    n_features = draw(st.integers(1, 4))
    min_rows = max(n_components, rows_per_parameter * n_components * (n_features + 1))
    n_samples = draw(st.integers(min_rows, max(min_rows, 60)))
    dtype = draw(st.sampled_from(dtypes))
    X = draw(
        hnp.arrays(
            np.float64,
            (n_samples, n_features),
            elements=st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=32),
            fill=st.nothing() if rows_per_parameter else None,
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    if rows_per_parameter:
        X = X + np.random.default_rng(seed).normal(scale=0.05, size=X.shape)
    return np.ascontiguousarray(X, dtype=dtype), dtype, n_components, seed


def model(X, n_components, covariance_type, seed):
    """Weights, means near data rows, covariances on the data's scale; the
    means and precision factors as a ``X.dtype`` estimator holds them."""
    rng = np.random.default_rng(seed)
    n_samples, n_features = X.shape
    rows = rng.choice(n_samples, size=n_components, replace=False)
    spread = max(float(np.std(X.astype(np.float64))), 0.5)
    means = X[rows].astype(np.float64) + rng.normal(
        scale=0.1 * spread, size=(n_components, n_features)
    )
    cov = ref.random_covariances(rng, covariance_type, n_components, n_features, spread)
    weights = rng.dirichlet(np.full(n_components, 2.0))
    means, prec_chol = ref.round_model(
        means, ref.precision_cholesky(cov, covariance_type), X.dtype
    )
    return weights, means, prec_chol


def setup(X, n_components, covariance_type, seed):
    weights, means, prec_chol = model(X, n_components, covariance_type, seed)
    params = kernel_params(means, prec_chol, covariance_type, np.log(weights), X.dtype)
    return weights, means, prec_chol, params


def scale_of(X, w, weights, means, prec_chol, covariance_type, params):
    """Reference statistics (for their error scales) of this problem."""
    return ref.estep_stats(
        X, w, np.log(weights), means, prec_chol, covariance_type, shift=params.shift
    )


def assert_same_stats(got, want, scale_ref, what, dtype, fields=STATS_FIELDS):
    """Two kernel results agree to float64 rounding of their term scales, and the
    pass mirrors the kernel's upper triangle: S2 comes back exactly symmetric.

    For float32 data under the diagonal codes the moments ``s1`` and
    ``s2_diag`` are float32 tile sums (``reference.moments_tol``): each result
    is within that bound of the exact sums, so the two within twice it; every
    other statistic stays float64.
    """
    tiled = np.dtype(dtype) == np.float32 and got.s2_diag.shape[0] > 0
    moments = {"s1", "s2_diag"} & set(fields) if tiled else set()
    scale = scale_ref["scale"]
    rest = [name for name in fields if name not in moments]
    assert_stats_close(got, want, **ref.tol(F64), scale=scale, fields=rest, err_msg=what)
    if moments:
        rtol = 2 * ref.moments_tol(dtype, got.s1.shape[1], got.s1.shape[0])["rtol"]
        assert_stats_close(got, want, rtol, scale=scale, fields=sorted(moments), err_msg=what)
    np.testing.assert_array_equal(got.s2_mat, np.swapaxes(got.s2_mat, 1, 2))


def fit(X, w, covariance_type, weights, means, prec_chol, max_iter, reg_covar=1e-4):
    gm = GaussianMixture(
        n_components=len(weights),
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=max_iter,
        reg_covar=reg_covar,
        weights_init=weights,
        means_init=means,
        precisions_init=ref.precisions_from_cholesky(prec_chol, covariance_type),
    )
    return fit_quiet(gm, X, sample_weight=w)


# Weight invariances of the fit are checked step by step: both fits start each
# EM step from the same parameters, so the rounding gap between them is one
# step's and never compounds (two trajectories left to run freely drift apart
# at a rate set by the problem's conditioning: hypothesis found 5.4e5 ulp
# after five steps on a tiny component).
LOCKSTEP_STEPS = 3


def step_growth(X, w, weights, means, prec_chol, covariance_type):
    """How much one E-step may magnify rounding, as an rtol factor.

    A relative error e in log p_ik moves r_ik by r_ik (1 - r_ik) e, and e is
    up to eps times the magnitude of the log-density terms
    (``ref.row_scales``). A collapsed component (variance near reg_covar) next
    to a row a few units away has terms of 1e4 and more; the tolerance
    (4.5e5 ulp) grows with the largest term past 1e3.
    """
    w = np.ones(len(X)) if w is None else np.asarray(w, np.float64)
    log_w = np.log(weights)
    _, _, log_resp = ref.estep_rows(X, log_w, means, prec_chol, covariance_type)
    density_scale = ref.log_density_scale(
        X, log_w, means, prec_chol, covariance_type, accumulation_shift(means, covariance_type)
    )
    _, resp_scale = ref.row_scales(log_resp, density_scale)
    moved = -np.expm1(log_resp) * resp_scale
    carried = (log_resp > -np.inf) & (w[:, None] > 0)
    return max(1.0, float(np.max(moved, where=carried, initial=0.0)) / 1e3)


def accumulation_shift(means, covariance_type):
    """The shift fastmix accumulates statistics around, for a step from ``means``."""
    if covariance_type == "tied":
        return np.broadcast_to(means.mean(axis=0), means.shape)
    return means


def assert_same_fit(a, b, covariance_type, rtol_scale=1.0, shift=None):
    """Two fits from the same start agree to float64 tolerance of their scales
    (around ``shift``, the statistics' accumulation shift), times ``rtol_scale``."""
    assert len(a.lower_bounds_) == len(b.lower_bounds_)
    lbs = np.asarray(b.lower_bounds_)
    ref.assert_close(a.lower_bounds_, lbs, F64, rtol_scale * (np.abs(lbs) + 1.0), "lower bounds")
    ref.assert_close(a.weights_, b.weights_, F64, rtol_scale, "weights")
    if shift is None:
        mean_scale, cov_scale = ref.fit_scales(b.means_, b.covariances_, covariance_type)
    else:
        mean_scale, cov_scale = ref.parameter_scales(
            b.means_, b.covariances_, covariance_type, shift
        )
    ref.assert_close(a.means_, b.means_, F64, rtol_scale * mean_scale, "means")
    ref.assert_close(a.covariances_, b.covariances_, F64, rtol_scale * cov_scale, "covariances")


def assert_same_steps(problem_a, problem_b, covariance_type, start, steps=LOCKSTEP_STEPS):
    """EM on ``problem_a`` and ``problem_b`` (each ``(X, sample_weight)``), one
    step at a time from the same parameters, agrees at every step."""
    weights, means, prec_chol = start
    for _ in range(steps):
        a = fit(*problem_a, covariance_type, weights, means, prec_chol, 1)
        b = fit(*problem_b, covariance_type, weights, means, prec_chol, 1)
        growth = step_growth(*problem_b, weights, means, prec_chol, covariance_type)
        shift = accumulation_shift(np.asarray(means, np.float64), covariance_type)
        if covariance_type == "tied":
            shift = shift[:1]
        assert_same_fit(a, b, covariance_type, growth, shift)
        weights, means, prec_chol = b.weights_, b.means_, b.precisions_cholesky_


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems(), weighted=st.booleans())
def test_stats_row_permutation_invariant(covariance_type, problem, weighted):
    X, dtype, n_components, seed = problem
    weights, means, prec_chol, params = setup(X, n_components, covariance_type, seed)
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 2.0, size=len(X)) if weighted else None
    perm = rng.permutation(len(X))
    base = estep_pass(X, w, params, chunk_rows=7)
    permuted = estep_pass(
        np.ascontiguousarray(X[perm]), None if w is None else w[perm], params, chunk_rows=7
    )
    scale = scale_of(X, w, weights, means, prec_chol, covariance_type, params)
    assert_same_stats(permuted, base, scale, "permuted rows", dtype)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems())
def test_stats_chunk_size_invariant(covariance_type, problem):
    X, dtype, n_components, seed = problem
    weights, means, prec_chol, params = setup(X, n_components, covariance_type, seed)
    w = np.random.default_rng(seed).uniform(0.0, 2.0, size=len(X))
    base = estep_pass(X, w, params, chunk_rows=512)
    scale = scale_of(X, w, weights, means, prec_chol, covariance_type, params)
    for chunk_rows, rows_per_block in [(1, None), (7, None), (7, 14), (1, 5)]:
        got = estep_pass(X, w, params, chunk_rows=chunk_rows, rows_per_block=rows_per_block)
        what = f"chunk_rows={chunk_rows} block={rows_per_block}"
        assert_same_stats(got, base, scale, what, dtype)
    # ... and the kernel result is the reference's, to the dtype's tolerance.
    ref.assert_stats_match(base, scale, dtype, "vs reference")


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems(), data=st.data())
def test_integer_weights_equal_repeated_rows_stats(covariance_type, problem, data):
    X, dtype, n_components, seed = problem
    counts = np.asarray(
        data.draw(st.lists(st.integers(0, 3), min_size=len(X), max_size=len(X))), dtype=np.int64
    )
    assume(counts.sum() > 0)
    weights, means, prec_chol, params = setup(X, n_components, covariance_type, seed)
    w = counts.astype(np.float64)
    weighted = estep_pass(X, w, params, chunk_rows=7)
    repeated = estep_pass(np.ascontiguousarray(np.repeat(X, counts, axis=0)), None, params, 7)
    assert weighted.sum_w == repeated.sum_w == counts.sum()
    scale = scale_of(X, w, weights, means, prec_chol, covariance_type, params)
    # n_rows counts a row with weight 2 once and its repetition twice.
    fields = [name for name in STATS_FIELDS if name != "n_rows"]
    assert_same_stats(weighted, repeated, scale, "weights vs repetition", dtype, fields)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems(), data=st.data())
def test_zero_weight_equals_dropped_row_stats(covariance_type, problem, data):
    X, dtype, n_components, seed = problem
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 2.0, size=len(X))
    zero = np.asarray(data.draw(st.lists(st.booleans(), min_size=len(X), max_size=len(X))))
    assume(not zero.all())
    w[zero] = 0.0
    weights, means, prec_chol, params = setup(X, n_components, covariance_type, seed)
    with_zeros = estep_pass(X, w, params, chunk_rows=7)
    keep = ~zero
    dropped = estep_pass(np.ascontiguousarray(X[keep]), w[keep], params, chunk_rows=7)
    scale = scale_of(X, w, weights, means, prec_chol, covariance_type, params)
    assert_same_stats(with_zeros, dropped, scale, "zero weight vs dropped row", dtype)


# --------------------------------------------------------------------------
# fits
# --------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems(dtypes=(np.float64,)), data=st.data())
def test_integer_weights_equal_repeated_rows_fit(covariance_type, problem, data):
    X, _, n_components, seed = problem
    counts = np.asarray(
        data.draw(st.lists(st.integers(0, 3), min_size=len(X), max_size=len(X))), dtype=np.int64
    )
    assume(np.count_nonzero(counts) >= max(n_components, 2))
    weights, means, prec_chol = model(X, n_components, covariance_type, seed)
    start = model(X, n_components, covariance_type, seed)
    repeated = (np.repeat(X, counts, axis=0), None)
    assert_same_steps((X, counts.astype(np.float64)), repeated, covariance_type, start)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems(dtypes=(np.float64,)), data=st.data())
def test_zero_weight_equals_dropped_row_fit(covariance_type, problem, data):
    X, _, n_components, seed = problem
    zero = np.asarray(data.draw(st.lists(st.booleans(), min_size=len(X), max_size=len(X))))
    assume(np.count_nonzero(~zero) >= max(n_components, 2))
    w = np.random.default_rng(seed).uniform(0.1, 2.0, size=len(X))
    w[zero] = 0.0
    start = model(X, n_components, covariance_type, seed)
    assert_same_steps((X, w), (X[~zero], w[~zero]), covariance_type, start)


def test_integer_weights_equal_repeated_rows_fit_tiny_component():
    """An example a random hypothesis run found: component 3 ends with weight
    1e-3, fed by one row 3 away at variance 0.016. Run freely for five
    iterations, the two fits drift 5.4e5 ulp apart; step by step they agree."""
    X = np.zeros((49, 4))
    X[0, 0], X[21, 3], X[27, 2], X[36, 0] = 9.0, 5.0, 3.0, 1.0
    counts = np.zeros(len(X), dtype=np.int64)
    counts[[27, 36, 47, 48]] = 1
    start = model(X, 4, "diag", 30)
    repeated = (np.repeat(X, counts, axis=0), None)
    assert_same_steps((X, counts.astype(np.float64)), repeated, "diag", start, steps=5)


def test_zero_weight_equals_dropped_row_fit_tied_spread():
    """The example hypothesis 6.155 drew in CI: two tied components 13 apart
    whose scatter is exactly zero. Run freely for five iterations, the fits'
    covariances differ by 1.6 times a bound on reg_covar's scale; the tied
    covariance carries rounding relative to the squared distance of the means
    from their mean (the tied shift), which ``accumulation_shift`` accounts for."""
    X = np.array([[0, 0, 3], [3, 3, 3], [3, 3, 3], [-10, 3, 0], [3, 3, 3], [3, 3, 3]], F64)
    zero = np.arange(len(X)) == 0
    seed = 45
    w = np.random.default_rng(seed).uniform(0.1, 2.0, size=len(X))
    w[zero] = 0.0
    assert_same_steps((X, w), (X[~zero], w[~zero]), "tied", model(X, 2, "tied", seed), steps=5)


def regularisation_loss(gm, n_samples):
    """How far one regularised M-step may lower the mean log-likelihood.

    EM's M-step maximises Q(theta | theta_old), which guarantees
    l(theta_new) >= l(theta_old). Adding eps = reg_covar (plus scikit-learn's
    10 eps_mach m^2 / nk) to a covariance whose unregularised scatter has
    eigenvalues lam gives up Q(S) - Q(S + eps) = n_k / 2 sum_j f(eps / lam_j),
    f(x) = log(1 + x) - x / (1 + x) >= 0, so per sample
    l(theta_new) >= l(theta_old) - sum_k w_k / 2 sum_j f(eps_k / lam_kj).
    """
    ct = gm.covariance_type
    reg = gm.reg_covar
    weights = np.asarray(gm.weights_, np.float64)
    cov = np.asarray(gm.covariances_, np.float64)
    means = np.asarray(gm.means_, np.float64)
    e = 10 * np.finfo(np.float64).eps
    # An upper bound on each component's effective regularisation.
    nk = np.maximum(weights * n_samples, np.finfo(np.float64).tiny)
    eps_k = reg + e * np.max(means**2, axis=1) / nk
    if ct == "full":
        lam = np.linalg.eigvalsh(cov)
    elif ct == "tied":
        lam = np.linalg.eigvalsh(cov)[None]
        eps_k = np.array([reg + e * np.sum(means**2) / n_samples])
        weights = np.ones(1)
    elif ct == "diag":
        lam = cov
    else:
        lam = np.repeat(cov[:, None], means.shape[1], axis=1)
    # Unregularised eigenvalues, lowered by the rounding of cov itself.
    lam = lam - eps_k[:, None] - 1e-13 * np.abs(lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(lam > 0, eps_k[:, None] / lam, np.inf)
        f = np.where(np.isfinite(x), np.log1p(x) - x / (1.0 + x), np.inf)
    return float(np.sum(weights / 2 * f.sum(axis=1)))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@SETTINGS
@given(problem=problems(dtypes=(np.float64,), rows_per_parameter=2), random_init=st.booleans())
def test_lower_bounds_non_decreasing(covariance_type, problem, random_init):
    """lower_bounds_ never decrease by more than the regularisation allows.

    With reg_covar = 0 EM is monotone; with reg_covar > 0 it is not (X =
    [[-8], [-8.25]], K = 2, tied, reg_covar = 1e-4, init_params='random',
    random_state=0 loses 4.6e-8 per iteration, in scikit-learn too), but it
    can lose no more than :func:`regularisation_loss`. The per-iteration
    parameters come from continuing the fit one iteration at a time with
    warm_start, which must reproduce the uninterrupted fit's lower_bounds_.
    """
    X, dtype, n_components, seed = problem
    assume(len(X) >= 2)
    n_iter, reg = 20, 1e-4
    common = dict(
        n_components=n_components, covariance_type=covariance_type, tol=0.0, reg_covar=reg
    )
    if random_init:
        init = dict(init_params="random", random_state=seed)
    else:
        weights, means, prec_chol = model(X, n_components, covariance_type, seed)
        init = dict(
            weights_init=weights,
            means_init=means,
            precisions_init=ref.precisions_from_cholesky(prec_chol, covariance_type),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = GaussianMixture(max_iter=n_iter, **common, **init).fit(X)
        step = GaussianMixture(max_iter=1, warm_start=True, **common, **init)
        lbs, losses, slacks = [], [], []
        for _ in range(n_iter):
            step.fit(X)
            lbs.append(step.lower_bounds_[0])
            losses.append(regularisation_loss(step, len(X)))
            # Rounding of the bound itself: the dtype's tolerance of the
            # log-density terms under the new parameters.
            log_w = np.log(np.asarray(step.weights_, np.float64))
            _, _, log_resp = ref.estep_rows(
                X, log_w, step.means_, step.precisions_cholesky_, covariance_type
            )
            a = ref.log_density_scale(
                X, log_w, step.means_, step.precisions_cholesky_, covariance_type
            )
            slacks.append(ref.tol(dtype)["rtol"] * float(np.mean(ref.row_scales(log_resp, a)[0])))
    lbs = np.asarray(lbs)
    assert np.all(np.isfinite(lbs))
    np.testing.assert_allclose(whole.lower_bounds_, lbs, rtol=1e-12)
    # lbs[t + 1] is the likelihood of the parameters the M-step of step t made.
    drops = lbs[:-1] - lbs[1:]
    allowed = np.asarray(losses[:-1]) + 2 * np.asarray(slacks[:-1]) + 1e-14 * np.abs(lbs[1:])
    assert np.all(drops <= allowed), (drops - allowed).max()
