"""fastmix.plot: the mixture picture (data and projected sigma ellipses) and the
convergence curve, rendered with Agg to PNG and checked against the model."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import COV_TYPES, fit_quiet, sheared_blobs
from sklearn.exceptions import NotFittedError

from fastmix import BayesianGaussianMixture, GaussianMixture, plot

pytestmark = pytest.mark.usefixtures("one_thread")


def test_import_fastmix_does_not_import_matplotlib():
    code = (
        "import sys, fastmix, fastmix.plot\n"
        "assert not [m for m in sys.modules if m.startswith('matplotlib')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_matplotlib_names_the_extra(monkeypatch):
    model = fit_quiet(GaussianMixture(2, max_iter=5, random_state=0), sheared_blobs(n_features=2))
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r'pip install "fastmix\[plot\]"'):
        plot.mixture(model, sheared_blobs(n_features=2))
    with pytest.raises(ImportError, match=r'pip install "fastmix\[plot\]"'):
        plot.convergence(model)


@pytest.fixture
def mpl():
    """matplotlib with the Agg backend (the drawing tests skip without it)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.image
    import matplotlib.pyplot as plt

    yield matplotlib
    plt.close("all")


def marginal_covariance(model, k, dims):
    """Component k's covariance of features dims, from the dense covariance."""
    n_features = model.means_.shape[1]
    cov = np.asarray(model.covariances_, dtype=np.float64)
    dense = {
        "full": lambda: cov[k],
        "tied": lambda: cov,
        "diag": lambda: np.diag(cov[k]),
        "spherical": lambda: cov[k] * np.eye(n_features),
    }[model.covariance_type]()
    return dense[np.ix_(dims, dims)]


def ellipses(ax):
    from matplotlib.patches import Ellipse

    return {p.get_gid(): p for p in ax.patches if isinstance(p, Ellipse)}


def render(ax, path):
    fig = ax.figure
    fig.set_size_inches(4, 3)
    fig.savefig(path, dpi=50)
    from matplotlib.image import imread

    image = imread(path)
    assert image.shape[:2] == (150, 200)  # 4 x 3 inches at 50 dpi
    # Not a blank canvas: many distinct colours (points, ellipses, text).
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20
    return image


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("estimator", ["gmm", "bgmm"])
def test_mixture_ellipses_match_the_projected_model(mpl, tmp_path, covariance_type, estimator):
    """Every component with weight >= min_weight has one ellipse per sigma, centred at
    its projected mean, with axes 2 s sqrt(eigenvalues) of the marginal covariance and
    the major axis along the leading eigenvector."""
    X = sheared_blobs(dtype=np.float32)
    if estimator == "gmm":
        model = GaussianMixture(3, covariance_type=covariance_type, max_iter=20, random_state=0)
    else:
        model = BayesianGaussianMixture(
            n_components=3, covariance_type=covariance_type, max_iter=20, random_state=0
        )
    model = fit_quiet(model, X)
    dims = (3, 1)  # D = 4 > 2: a projection, in a non-trivial order
    ax = plot.mixture(model, X, dims=dims, sigmas=(1, 2, 3), min_weight=0.0)
    render(ax, tmp_path / "mixture.png")

    found = ellipses(ax)
    assert len(found) == 3 * model.n_components
    for k in range(model.n_components):
        mean = np.asarray(model.means_[k], dtype=np.float64)[list(dims)]
        cov = marginal_covariance(model, k, dims)
        values, vectors = np.linalg.eigh(cov)
        for s in (1, 2, 3):
            e = found[f"component-{k}-sigma-{s}"]
            np.testing.assert_allclose(e.center, mean, rtol=1e-12)
            np.testing.assert_allclose(
                [e.width, e.height], 2 * s * np.sqrt(values[::-1]), rtol=1e-10
            )
        # The angle points the width along the major eigenvector (up to sign), unless
        # the two variances are equal (a circle: spherical, any angle).
        if not np.isclose(values[0], values[1], rtol=1e-9):
            theta = np.radians(found[f"component-{k}-sigma-1"].angle)
            assert abs(np.dot([np.cos(theta), np.sin(theta)], vectors[:, 1])) == pytest.approx(
                1.0, abs=1e-9
            )
        # 1-sigma: the ellipse passes through mean + sqrt(lambda) v (Mahalanobis 1).
        edge = mean + np.sqrt(values[1]) * vectors[:, 1]
        d = edge - mean
        assert d @ np.linalg.solve(cov, d) == pytest.approx(1.0, rel=1e-9)


def test_mixture_subsamples_large_data_and_is_seeded(mpl, tmp_path):
    X = sheared_blobs(n_per=400, n_features=2)
    model = fit_quiet(GaussianMixture(3, max_iter=20, random_state=0), X)
    ax1 = plot.mixture(model, X, n_points=150)
    ax2 = plot.mixture(model, X, n_points=150)
    points1 = ax1.collections[0].get_offsets()
    points2 = ax2.collections[0].get_offsets()
    assert points1.shape == (150, 2)
    np.testing.assert_array_equal(points1, points2)  # same seed, same subsample
    # Subsampled rows are rows of X, kept in order.
    rows = [int(np.flatnonzero((X == p).all(axis=1))[0]) for p in np.asarray(points1)]
    assert rows == sorted(rows) and len(set(rows)) == 150
    small = plot.mixture(model, X[:100])
    assert small.collections[0].get_offsets().shape == (100, 2)
    # Points are coloured by the predicted component.
    colours = small.collections[0].get_facecolors()[:, :3]
    labels = model.predict(X[:100])
    for k in np.unique(labels):
        expected = mpl.colors.to_rgb(f"C{k}")
        np.testing.assert_allclose(
            colours[labels == k], np.tile(expected, ((labels == k).sum(), 1))
        )
    render(ax1, tmp_path / "sub.png")


def test_mixture_hides_tiny_components_and_uses_given_axes(mpl):
    X = sheared_blobs(n_features=2)
    model = fit_quiet(
        BayesianGaussianMixture(
            n_components=6, weight_concentration_prior=1e-3, max_iter=50, random_state=0
        ),
        X,
    )
    _, (left, right) = mpl.pyplot.subplots(1, 2)
    ax = plot.mixture(model, X, ax=right, sigmas=(1.5,), min_weight=0.05)
    assert ax is right and not left.patches
    shown = {int(gid.split("-")[1]) for gid in ellipses(ax)}
    assert shown == set(np.flatnonzero(model.weights_ >= 0.05))
    assert all(gid.endswith("sigma-1.5") for gid in ellipses(ax))


def test_mixture_labels_and_bad_dims(mpl):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(sheared_blobs(n_features=3), columns=["a", "b", "c"])
    model = fit_quiet(GaussianMixture(2, covariance_type="diag", max_iter=10, random_state=0), X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DataFrame is passed on with its names
        ax = plot.mixture(model, X, dims=(2, 0), n_points=50)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("c", "a")
    for dims in [(0, 0), (0, 3), (-1, 1), (0,), "ab"]:
        with pytest.raises(ValueError, match="dims"):
            plot.mixture(model, X, dims=dims)


def test_refused_calls_open_no_figure_and_small_sigmas_draw(mpl):
    """Every check runs before the figure: a refused call used to leave an
    empty figure open in pyplot. A radius below 1 gave matplotlib an alpha
    above 1 and failed."""
    import matplotlib.pyplot as plt

    from fastmix import MixtureSelector

    X = sheared_blobs(n_features=3)
    model = fit_quiet(GaussianMixture(2, covariance_type="full", max_iter=10, random_state=0), X)
    one = fit_quiet(GaussianMixture(2, max_iter=10, random_state=0), X[:, :1])
    sel = fit_quiet(MixtureSelector((1, 2), ("diag",), random_state=0), X)
    plt.close("all")
    refused = [
        (lambda: plot.mixture(model, X[:, :2]), "features"),
        (lambda: plot.mixture(model, X, dims=(0, 7)), "dims"),
        (lambda: plot.mixture(model, X, dims=(0.7, 1.9)), "integer feature indices"),
        (lambda: plot.mixture(one, X[:, :1]), "no plane to draw"),
        (lambda: plot.mixture(model, X, n_points=0), "0 sample"),
        (lambda: plot.mixture(model, X, sigmas=(0, 1)), "positive Mahalanobis radii"),
        (lambda: plot.selection(sel, criterion="foo"), "criterion must be"),
    ]
    for call, match in refused:
        with pytest.raises(ValueError, match=match):
            call()
        assert plt.get_fignums() == [], match
    ax = plot.mixture(model, X, sigmas=(0.5, 1))
    gids = set(ellipses(ax))
    assert {"component-0-sigma-0.5", "component-1-sigma-1"} <= gids


def test_unfitted_model_is_refused(mpl):
    with pytest.raises(NotFittedError):
        plot.mixture(GaussianMixture(2), sheared_blobs())
    with pytest.raises(NotFittedError):
        plot.convergence(BayesianGaussianMixture())


@pytest.mark.parametrize("estimator", [GaussianMixture, BayesianGaussianMixture])
def test_convergence_draws_lower_bounds(mpl, tmp_path, estimator):
    model = fit_quiet(estimator(n_components=3, max_iter=30, random_state=0), sheared_blobs())
    ax = plot.convergence(model)
    render(ax, tmp_path / "convergence.png")
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_ydata(), model.lower_bounds_)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, model.n_iter_ + 1))
    assert len(model.lower_bounds_) == model.n_iter_ > 1
    assert ax.get_xlabel() == "iteration"
