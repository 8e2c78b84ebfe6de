"""Pictures of a fitted mixture: the data with each component's ellipses, and convergence.

Needs matplotlib, the ``plot`` extra (``pip install "fastmix[plot]"``). It is
imported when a function here is called, never by ``import fastmix`` or
``import fastmix.plot``.

Examples
--------
>>> import numpy as np
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from fastmix import GaussianMixture
>>> from fastmix import plot
>>> X = np.random.RandomState(0).randn(500, 3)
>>> gm = GaussianMixture(3, random_state=0).fit(X)
>>> ax = plot.mixture(gm, X, dims=(0, 2))
>>> ax = plot.convergence(gm)
"""

import math
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

__all__ = ["convergence", "mixture", "selection"]

_EXTRA_HINT = 'fastmix.plot needs matplotlib; install it with: pip install "fastmix[plot]"'


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(_EXTRA_HINT) from exc
    return plt


def _fitted_axes(model, ax):
    """``ax``, or a new figure's axes, once ``model`` is checked fitted."""
    check_is_fitted(model)
    return _axes(ax)


def _axes(ax):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _projected_covariances(model, dims):
    """Each component's 2 x 2 covariance of the features ``dims`` (a marginal).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model, any ``covariance_type``.
    dims : tuple of two int
        The feature indices.

    Returns
    -------
    covariances : ndarray of shape (n_components, 2, 2), float64
        The marginal covariance of the two features under each component:
        the ``dims`` rows and columns of the full (or tied) matrix, the two
        variances of a diagonal one, the variance times the identity for a
        spherical one; the tied types give every component the same.
    """
    i, j = dims
    cov = np.asarray(model.covariances_, dtype=np.float64)
    n_components = model.means_.shape[0]
    index = np.ix_([i, j], [i, j])
    if model.covariance_type == "full":
        return np.stack([c[index] for c in cov])
    if model.covariance_type == "tied":
        return np.broadcast_to(cov[index], (n_components, 2, 2)).copy()
    if model.covariance_type == "diag":
        return np.stack([np.diag(c[[i, j]]) for c in cov])
    if model.covariance_type == "tied-diagonal":
        return np.broadcast_to(np.diag(cov[[i, j]]), (n_components, 2, 2)).copy()
    if model.covariance_type == "tied-spherical":
        return np.broadcast_to(cov * np.eye(2), (n_components, 2, 2)).copy()
    return cov[:, None, None] * np.eye(2)


def _ellipse_geometry(covariance, n_sigma):
    """Width, height and angle of the ``n_sigma`` contour of a 2-D Gaussian.

    The contour is the set of points at Mahalanobis distance ``n_sigma`` from
    the mean: an ellipse whose semi-axes are ``n_sigma`` times the square roots
    of the covariance's eigenvalues, along its eigenvectors.

    Parameters
    ----------
    covariance : ndarray of shape (2, 2)
        A symmetric positive semi-definite matrix.
    n_sigma : float
        The Mahalanobis radius.

    Returns
    -------
    width : float
        Full length of the major axis, ``2 * n_sigma * sqrt(lambda_max)``.
    height : float
        Full length of the minor axis, ``2 * n_sigma * sqrt(lambda_min)``.
    angle : float
        Angle of the major axis from the first axis, in degrees (matplotlib's
        ``Ellipse`` convention).
    """
    major_sd, minor_sd, angle = _principal_axes(covariance)
    return 2.0 * n_sigma * major_sd, 2.0 * n_sigma * minor_sd, angle


def _principal_axes(covariance):
    """Standard deviations along the principal axes of a 2-D Gaussian, and its angle.

    Parameters
    ----------
    covariance : ndarray of shape (2, 2)
        A symmetric positive semi-definite matrix.

    Returns
    -------
    major_sd : float
        Square root of the larger eigenvalue.
    minor_sd : float
        Square root of the smaller eigenvalue.
    angle : float
        Angle of the major axis from the first axis, in degrees, in (-180, 180].
    """
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    values = np.maximum(values, 0.0)
    major = vectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    return float(np.sqrt(values[1])), float(np.sqrt(values[0])), angle


def _check_dims(dims, n_features):
    if n_features < 2:
        raise ValueError(
            f"the model has {n_features} feature: there is no plane to draw ellipses in; "
            "draw a histogram of the data instead."
        )
    try:
        i, j = dims
    except (TypeError, ValueError):
        raise ValueError(f"dims must be two feature indices, got {dims!r}.") from None
    if not all(isinstance(d, Integral) and not isinstance(d, bool) for d in (i, j)):
        raise ValueError(f"dims must be two integer feature indices, got {dims!r}.")
    i, j = int(i), int(j)
    if not (0 <= i < n_features and 0 <= j < n_features) or i == j:
        raise ValueError(
            f"dims must be two different feature indices in [0, {n_features}), got {dims!r}."
        )
    return i, j


def _feature_label(model, index):
    names = getattr(model, "feature_names_in_", None)
    return str(names[index]) if names is not None else f"feature {index}"


def mixture(
    model,
    X,
    dims=(0, 1),
    ax=None,
    n_points=5000,
    sigmas=(1, 2, 3),
    min_weight=1e-3,
    random_state=0,
):
    """Draw the data and each component's sigma ellipses on two features.

    Points are coloured by the component :meth:`predict` gives them; each
    component's mean is marked with a cross and its ``sigmas`` contours
    (Mahalanobis distance 1, 2, 3 in the plane of ``dims``) are drawn as
    ellipses of the marginal covariance of those two features, so for more
    than two features the picture is the projection of the mixture, not a
    slice.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model (any ``covariance_type``).
    X : array-like of shape (n_samples, n_features)
        Data to draw (e.g. the training data); a DataFrame, array or memmap.
    dims : tuple of two int, default=(0, 1)
        The features on the horizontal and vertical axes.
    ax : matplotlib Axes, default=None
        Where to draw; None opens a new figure.
    n_points : int, default=5000
        At most this many rows are drawn: a larger X is subsampled uniformly
        without replacement (seeded by ``random_state``, rows kept in order).
    sigmas : sequence of float, default=(1, 2, 3)
        The Mahalanobis radii of the ellipses.
    min_weight : float, default=1e-3
        Components whose weight is below this are not drawn (a Bayesian
        mixture leaves unused components with tiny weights).
    random_state : int or RandomState, default=0
        Seeds the subsample.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on. Each ellipse is a ``matplotlib.patches.Ellipse``
        whose ``gid`` is ``"component-<k>-sigma-<s>"``.

    Raises
    ------
    ImportError
        When matplotlib is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmix import GaussianMixture, plot
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(100, 2) - 3, rng.randn(100, 2) + 3]
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> ax = plot.mixture(gm, X)
    >>> len(ax.patches)  # three sigma ellipses per component
    6
    """
    # Every check before the figure: a refused call leaves no empty one open.
    _pyplot()  # matplotlib missing: said before any work
    check_is_fitted(model)
    n_features = model.means_.shape[1]
    i, j = _check_dims(dims, n_features)
    sigmas = [float(s) for s in sigmas]
    if not all(math.isfinite(s) and s > 0 for s in sigmas):
        raise ValueError(f"sigmas must be positive Mahalanobis radii, got {sigmas!r}.")
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    n_rows = X.shape[0]
    if n_rows > n_points:
        rng = check_random_state(random_state)
        rows = np.sort(rng.choice(n_rows, size=n_points, replace=False))
        X = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X[rows])
    labels = model.predict(X)
    points = np.asarray(X)
    ax = _axes(ax)
    from matplotlib.patches import Ellipse

    colours = [f"C{k % 10}" for k in range(model.n_components)]

    ax.scatter(
        points[:, i],
        points[:, j],
        s=4,
        c=[colours[k] for k in labels],
        alpha=0.4,
        linewidths=0,
        rasterized=True,
    )
    weights = np.asarray(model.weights_, dtype=np.float64)
    means = np.asarray(model.means_, dtype=np.float64)[:, [i, j]]
    covariances = _projected_covariances(model, (i, j))
    shown = np.flatnonzero(weights >= min_weight)
    for k in shown:
        for s in sigmas:
            width, height, angle = _ellipse_geometry(covariances[k], s)
            ax.add_patch(
                Ellipse(
                    xy=(means[k, 0], means[k, 1]),
                    width=width,
                    height=height,
                    angle=angle,
                    fill=False,
                    edgecolor=colours[k],
                    linewidth=1.5,
                    alpha=min(1.0, max(0.3, 1.0 - 0.25 * (s - 1))),
                    gid=f"component-{k}-sigma-{s:g}",
                )
            )
    ax.scatter(means[shown, 0], means[shown, 1], marker="x", s=60, c="black", zorder=3)
    ax.autoscale_view()
    ax.set_xlabel(_feature_label(model, i))
    ax.set_ylabel(_feature_label(model, j))
    ax.set_title(
        f"{type(model).__name__}: {len(shown)} of {model.n_components} components "
        f"({model.covariance_type}), {'-'.join(f'{s:g}' for s in sigmas)} sigma"
    )
    return ax


def _means_over_data(model, X, ax, n_points=5000):
    """Draw one-feature data as a histogram with each component's mean marked.

    What ``fastmix fit --plot`` draws in place of :func:`mixture` when the
    data have a single feature (no plane to draw ellipses in).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model on one feature.
    X : array-like of shape (n_samples, 1)
        The data; the first ``n_points`` rows are drawn.
    ax : matplotlib Axes
        Where to draw.
    n_points : int, default=5000
        At most this many rows are drawn.

    Returns
    -------
    ax : matplotlib Axes
    """
    values = np.asarray(X[: min(X.shape[0], n_points), 0], dtype=np.float64)
    ax.hist(values, bins=80, color="0.6")
    for mean in np.asarray(model.means_, dtype=np.float64)[:, 0]:
        ax.axvline(mean, color="black", linewidth=1)
    ax.set_xlabel("feature 0")
    ax.set_title(f"{type(model).__name__}: means over the data")
    return ax


def convergence(model, ax=None):
    """Draw the lower bound of each iteration of the best fit (``lower_bounds_``).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model.
    ax : matplotlib Axes, default=None
        Where to draw; None opens a new figure.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on; the curve is its first line, x = 1, 2, ...,
        ``len(lower_bounds_)`` and y = ``lower_bounds_``.

    Raises
    ------
    ImportError
        When matplotlib is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastmix import GaussianMixture, plot
    >>> X = np.random.RandomState(0).randn(300, 2)
    >>> gm = GaussianMixture(n_components=3, random_state=0).fit(X)
    >>> ax = plot.convergence(gm)
    >>> len(ax.lines[0].get_xdata()) == gm.n_iter_
    True
    """
    ax = _fitted_axes(model, ax)
    bounds = np.asarray(model.lower_bounds_, dtype=np.float64)
    ax.plot(np.arange(1, bounds.size + 1), bounds, marker="o", markersize=3)
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    # Whole iterations on x; y read as it is (no "1e-5 + -4.06" offset).
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
        ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel("iteration")
    if hasattr(model, "weight_concentration_"):
        ax.set_ylabel("lower bound (ELBO)")
    else:
        ax.set_ylabel("log-likelihood per sample")
    state = "converged" if model.converged_ else "did not converge"
    ax.set_title(f"{type(model).__name__}: {state} after {model.n_iter_} iterations")
    return ax


def selection(selector, ax=None, criterion=None):
    """Draw a model-selection criterion against K, one line per covariance structure.

    mclust's BIC plot for :class:`fastmix.MixtureSelector`: lower is better
    (scikit-learn's sign), and the chosen candidate is circled.

    Parameters
    ----------
    selector : MixtureSelector
        A fitted selector.
    ax : matplotlib Axes, default=None
        Where to draw; None opens a new figure.
    criterion : {'bic', 'aic', 'icl'}, default=None
        The criterion drawn; None draws the selector's own.

    Returns
    -------
    ax : matplotlib Axes
        The axes drawn on: a line per covariance type, x = K, y = the
        criterion (in ``results_`` order), then the marker of the chosen one.

    Raises
    ------
    ImportError
        When matplotlib is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from fastmix import MixtureSelector, plot
    >>> X = np.random.RandomState(0).randn(300, 2)
    >>> sel = MixtureSelector(n_components=range(1, 4), random_state=0).fit(X)
    >>> ax = plot.selection(sel)
    >>> len(ax.lines)  # four structures and the chosen candidate
    5
    """
    _pyplot()
    check_is_fitted(selector)
    criterion = selector.criterion if criterion is None else criterion
    if criterion not in ("bic", "aic", "icl"):
        raise ValueError(f"criterion must be 'bic', 'aic' or 'icl', got {criterion!r}.")
    ax = _axes(ax)
    results = selector.results_
    ks, types = results["n_components"], results["covariance_type"]
    values = np.asarray(results[criterion], dtype=np.float64)
    for name in dict.fromkeys(types):
        rows = np.flatnonzero(types == name)
        # A line along K, in whatever order the grid lists them.
        rows = rows[np.argsort(ks[rows], kind="stable")]
        ax.plot(ks[rows], values[rows], marker="o", markersize=4, label=name)
    best = selector.best_params_
    chosen = np.flatnonzero((ks == best["n_components"]) & (types == best["covariance_type"]))[0]
    ax.plot(
        [ks[chosen]], [values[chosen]], marker="o", markersize=14, markerfacecolor="none",
        markeredgecolor="black", linestyle="none", label="chosen",
    )  # fmt: skip
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    ax.set_title(
        f"chosen: K={best['n_components']}, {best['covariance_type']} by {selector.criterion}"
    )
    ax.legend()
    return ax
