"""The posterior predictive density, ``BayesianGaussianMixture.log_predictive``
(issue 13, item 5).

A mixture of Student-t densities (Bishop 10.81 and its diag / spherical / tied
analogues, see fastmix/_predictive.py): pinned to one ``scipy.stats`` Student-t
per component (tests/reference_vi.py::log_predictive), integrated to one by
quadrature in one and two dimensions, and shown to tend to the plug-in
Gaussian mixture as the data grow.
"""

import os

import numpy as np
import pytest
import reference as ref
import reference_vi as ref_vi
from conftest import COV_TYPES, fit_quiet, three_blobs, vi_posterior
from numpy.testing import assert_allclose
from scipy.integrate import quad
from scipy.special import roots_legendre

from fastmix import BayesianGaussianMixture

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
# The tied structures' predictive shares one posterior between the components.
ALL_TYPES = (*COV_TYPES, "tied-diagonal", "tied-spherical")


def small_fit(covariance_type, n_features, prior_type="dirichlet_process", n_per=8, seed=0):
    """Few rows per cluster, so that the Student-t tails are heavy."""
    X = three_blobs(n_per=n_per, n_features=n_features, seed=seed, spread=4.0, shuffle=True)
    model = BayesianGaussianMixture(
        n_components=3,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        random_state=0,
    )
    return fit_quiet(model, X), X


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_scipy_student_t(covariance_type, prior_type):
    bgm, X = small_fit(covariance_type, 3, prior_type)
    held_out = three_blobs(n_per=10, n_features=3, seed=5, spread=4.0)
    want = ref_vi.log_predictive(held_out, vi_posterior(bgm), covariance_type, prior_type)
    got = bgm.log_predictive(held_out)
    assert got.shape == (30,) and got.dtype == np.float64
    assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ALL_TYPES)
def test_integrates_to_one_in_1d(covariance_type):
    bgm, X = small_fit(covariance_type, 1)

    def density(x):
        return np.exp(bgm.log_predictive(np.array([[x]]))[0])

    centre, spread = float(X.mean()), float(X.std())
    # Split at the centre so that quad sees both halves' peaks.
    total = (
        sum(
            quad(density, a, b, limit=200, epsabs=1e-12)[0]
            for a, b in ((-np.inf, centre - spread), (centre - spread, centre + spread))
        )
        + quad(density, centre + spread, np.inf, limit=200, epsabs=1e-12)[0]
    )
    assert total == pytest.approx(1.0, abs=1e-3)
    # scikit-learn's score_samples is not a normalised density (issue #10148).
    plug_in = quad(lambda x: np.exp(bgm.score_samples([[x]])[0]), -np.inf, np.inf, limit=200)[0]
    assert abs(plug_in - 1.0) > 1e-2


def integral_2d(log_density, centre, scale, n_nodes=400):
    """``integral of exp(log_density)`` over the plane, substituting
    ``x = centre + scale * tan(theta)`` per axis (Gauss-Legendre in theta)."""
    nodes, weights = roots_legendre(n_nodes)
    theta, w = 0.5 * np.pi * nodes, 0.5 * np.pi * weights
    axis = [centre[d] + scale[d] * np.tan(theta) for d in range(2)]
    jac = [w * scale[d] / np.cos(theta) ** 2 for d in range(2)]
    grid = np.stack(np.meshgrid(axis[0], axis[1], indexing="ij"), axis=-1).reshape(-1, 2)
    values = np.exp(log_density(grid)).reshape(n_nodes, n_nodes)
    return float(jac[0] @ values @ jac[1])


@pytest.mark.parametrize("covariance_type", ALL_TYPES)
def test_integrates_to_one_in_2d(covariance_type):
    bgm, X = small_fit(covariance_type, 2)
    total = integral_2d(bgm.log_predictive, X.mean(0), X.std(0))
    assert total == pytest.approx(1.0, abs=1e-3)
    # The quadrature itself: the plug-in mixture of Gaussians integrates to
    # one, and scikit-learn's score_samples clearly does not (issue #10148).
    plug_in = integral_2d(lambda G: plug_in_log_density(bgm, G), X.mean(0), X.std(0))
    assert plug_in == pytest.approx(1.0, abs=1e-6)
    assert integral_2d(bgm.score_samples, X.mean(0), X.std(0)) < 0.9


def monte_carlo_density(bgm, points, n_draws, rng):
    """``sum_k weights_k E_q[N(x | mu_k, Lambda_k^{-1})]`` and its standard error.

    ``(mu_k, Lambda_k)`` drawn from the posterior: Wishart(W_k = (nu_k C_k)^{-1},
    nu_k) for 'full' and 'tied', independent Gamma(nu_k / 2, rate nu_k C_kd / 2)
    per feature ('diag') or one per component ('spherical'); then
    ``mu_k ~ N(m_k, (beta_k Lambda_k)^{-1})``.
    """
    from scipy import stats

    ct = bgm.covariance_type
    n_features = bgm.means_.shape[1]
    total = np.zeros(len(points))
    variance = np.zeros(len(points))
    for k, (m, beta) in enumerate(zip(bgm.means_, bgm.mean_precision_, strict=True)):
        nu = bgm.degrees_of_freedom_ if ct == "tied" else bgm.degrees_of_freedom_[k]
        cov = bgm.covariances_ if ct == "tied" else bgm.covariances_[k]
        if ct in ("full", "tied"):
            wishart = stats.wishart(df=nu, scale=np.linalg.inv(nu * cov))
            lam = wishart.rvs(n_draws, random_state=rng)
        else:
            shape = n_features if ct == "diag" else 1
            lam_d = rng.gamma(nu / 2, 2 / (nu * np.broadcast_to(cov, (shape,))), (n_draws, shape))
            lam = np.broadcast_to(lam_d, (n_draws, n_features))[..., None] * np.eye(n_features)
        chol = np.linalg.cholesky(beta * lam)
        z = rng.randn(n_draws, n_features, 1)
        mu = m + np.linalg.solve(np.swapaxes(chol, 1, 2), z)[..., 0]
        _, log_det = np.linalg.slogdet(lam)
        for i, x in enumerate(points):
            d = x - mu
            q = np.einsum("si,sij,sj->s", d, lam, d)
            log_n = 0.5 * log_det - 0.5 * n_features * np.log(2 * np.pi) - 0.5 * q
            draws = bgm.weights_[k] * np.exp(log_n)
            total[i] += np.mean(draws)
            variance[i] += np.var(draws) / n_draws
    return total, np.sqrt(variance)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_matches_monte_carlo_over_the_posterior(covariance_type):
    """The derivation itself: Student-t = the Gaussian averaged over the posterior."""
    X = three_blobs(n_per=5, n_features=2, seed=0, spread=8.0, shuffle=True)
    model = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type)
    bgm = fit_quiet(model.set_params(random_state=0), X)
    rng = np.random.RandomState(1)
    points = np.vstack([X[:6], bgm.means_ + 2.0 * np.sqrt(np.mean(bgm.covariances_))])
    want, std_error = monte_carlo_density(bgm, points, 100000, rng)
    got = np.exp(bgm.log_predictive(points))
    assert np.all(np.abs(got - want) < 4 * std_error), (got - want) / std_error


def plug_in_log_density(bgm, X):
    """``log sum_k weights_k N(x | means_k, covariances_k)``."""
    lpn, _, _ = ref.estep_rows(
        X, np.log(bgm.weights_), bgm.means_, bgm.precisions_cholesky_, bgm.covariance_type
    )
    return lpn


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_tends_to_plug_in_density(covariance_type):
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [1.0, 7.0]])
    scales = np.array([1.0, 0.7, 1.3])

    def draw(n):
        labels = rng.randint(3, size=n)
        return centres[labels] + scales[labels, None] * rng.randn(n, 2)

    held_out = draw(500)
    gaps = []
    for n in (200, 20000):
        bgm = fit_quiet(
            BayesianGaussianMixture(
                n_components=3, covariance_type=covariance_type, random_state=0
            ),
            draw(n),
        )
        gap = np.abs(bgm.log_predictive(held_out) - plug_in_log_density(bgm, held_out))
        gaps.append(float(np.mean(gap)))
    assert gaps[1] < gaps[0] / 5, gaps


def test_memmap_dask_and_float32(tmp_path):
    bgm, X = small_fit("full", 3)
    want = bgm.log_predictive(X)
    path = os.fspath(tmp_path / "x.npy")
    np.save(path, X)
    M = np.load(path, mmap_mode="r")
    assert isinstance(M, np.memmap)
    assert_allclose(bgm.log_predictive(M), want, rtol=1e-14)

    bad = X.copy()
    bad[3, 0] = np.inf
    np.save(path, bad)
    with pytest.raises(ValueError, match="infinity"):
        bgm.log_predictive(np.load(path, mmap_mode="r"))

    da = pytest.importorskip("dask.array")
    lazy = bgm.log_predictive(da.from_array(X, chunks=(7, 3)))
    assert isinstance(lazy, da.Array)
    assert_allclose(lazy.compute(), want, rtol=1e-14)

    bgm32, X32 = small_fit("full", 3)
    bgm32.fit(X32.astype(np.float32))
    got = bgm32.log_predictive(X32.astype(np.float32))
    assert got.dtype == np.float32
    assert_allclose(got, want, rtol=1e-4)
