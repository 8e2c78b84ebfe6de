"""The pictures ``fastmix demo`` and ``fastmix fit --plot`` write, drawn by :mod:`fastmix.plot`.

Everything is drawn on matplotlib ``Figure`` objects (no pyplot, so no
backend is chosen or changed); this module only lays the pictures out and
checks where they go.
"""

import os

from ._usage import UsageError, check_output, extension, require_matplotlib


def check_picture_path(path, option):
    """Fail before the work when matplotlib cannot write a picture to ``path``."""
    check_output(path, option)
    from matplotlib.figure import Figure

    ext = extension(path).lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if ext not in supported:
        shown = f".{ext} files" if ext else "a file without an extension"
        raise UsageError(
            f"{option} {path}: matplotlib cannot write {shown}; "
            f"use one of {', '.join('.' + e for e in sorted(supported))}"
        )


def _draw_mixture(model, X, ax, dims):
    from .. import plot

    n_features = model.means_.shape[1]
    if n_features < 2:
        plot._means_over_data(model, X, ax)
        return
    if max(dims) >= n_features:
        raise UsageError(
            f"--plot-dims {dims[0]},{dims[1]}: the data have {n_features} features "
            f"(indices 0 to {n_features - 1})"
        )
    plot.mixture(model, X, dims=dims, ax=ax)


def write_pictures(
    model, X, path=None, folder=None, names=("mixture.png", "convergence.png"), dims=(0, 1)
):
    """Draw a fitted model's mixture and convergence pictures to files.

    Uses :func:`fastmix.plot.mixture` and :func:`fastmix.plot.convergence` on
    matplotlib ``Figure`` objects (no pyplot, so no backend is chosen or
    changed).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model.
    X : array-like of shape (n_samples, n_features)
        The data drawn under the ellipses (subsampled to 5000 rows).
    path : str, optional
        Write both pictures side by side to this file.
    folder : str, optional
        Write each picture to its own file in this folder, named ``names``.
    names : tuple of two str, default=("mixture.png", "convergence.png")
        File names of the mixture and the convergence picture in ``folder``.
    dims : tuple of two int, default=(0, 1)
        The features of the mixture picture.

    Returns
    -------
    written : list of str
        The files written.
    """
    from matplotlib.figure import Figure

    from .. import plot

    written = []
    if path is not None:
        fig = Figure(figsize=(12, 5), layout="constrained")
        left, right = fig.subplots(1, 2)
        _draw_mixture(model, X, left, dims)
        plot.convergence(model, ax=right)
        fig.savefig(path, dpi=100)
        written.append(os.fspath(path))
    if folder is not None:
        for name, draw in zip(
            names,
            (
                lambda ax: _draw_mixture(model, X, ax, dims),
                lambda ax: plot.convergence(model, ax=ax),
            ),
            strict=True,
        ):
            fig = Figure(figsize=(6, 5), layout="constrained")
            draw(fig.subplots())
            target = os.path.join(folder, name)
            fig.savefig(target, dpi=100)
            written.append(target)
    return written


def check_out_and_plot(args):
    """Refuse an unwritable ``--out`` or ``--plot`` (or missing matplotlib) before any work."""
    if args.out is not None:
        check_output(args.out, "--out")
    if args.plot is not None:
        require_matplotlib("--plot")
        check_picture_path(args.plot, "--plot")
