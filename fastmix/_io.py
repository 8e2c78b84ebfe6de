"""Saving and loading fitted mixtures without pickle: fastmix's ``.npz`` layout.

A model file is an ordinary NumPy ``.npz`` archive (a zip of ``.npy``
members) written with ``allow_pickle=False`` and read with
``np.load(path, allow_pickle=False)``: it holds numbers and strings only, so
loading one never runs code. Everything needed to rebuild the estimator is in
the archive; nothing is imported by name from it (the class is looked up in a
fixed allow-list).

Layout, format version 1
------------------------
Entries (name: dtype and shape, content):

``fastmix_format_version``: int64, ()
    1. A reader refuses a missing entry and any other version.
``class_name``: unicode, ()
    ``"GaussianMixture"`` or ``"BayesianGaussianMixture"``; nothing else loads.
``fastmix_version``: unicode, ()
    The writing fastmix's ``__version__`` (informative only).
``params_json``: unicode, ()
    A JSON object with every ``get_params()`` entry. None, str, int, float
    and bool values are stored inline; an array-valued parameter (e.g.
    ``means_init``, ``mean_prior``) is the marker ``{"kind": "array"}`` and a
    ``RandomState`` the marker ``{"kind": "random_state"}``.
``param.<name>``: the array's dtype and shape
    An array-valued parameter (array-likes such as lists come back as
    ndarrays).
``param.random_state.<field>``: see below
    A ``RandomState`` parameter's MT19937 state (``get_state()``): ``key``
    (uint32, (624,)), ``pos`` (int64, ()), ``has_gauss`` (int64, ()) and
    ``cached_gaussian`` (float64, ()), so the loaded model samples as the
    saved one would have.
``attributes_json``: unicode, ()
    A JSON object mapping each fitted attribute's name to its kind (below).
``attr.<name>``, ``attr.<name>.<i>``: per kind
    The attribute's value; element ``i`` of a tuple attribute.

The fitted attributes are every public attribute ending in ``_``
(scikit-learn's convention): ``n_features_in_``, ``weights_``, ``means_``,
``covariances_``, ``precisions_``, ``precisions_cholesky_``, ``converged_``,
``n_iter_``, ``lower_bound_``, ``lower_bounds_``, ``feature_names_in_`` when
fitted on named columns, and ``BayesianGaussianMixture``'s ``*_prior_``,
``weight_concentration_``, ``mean_precision_`` and ``degrees_of_freedom_``.
Kinds (stored as -> restored as):

- ``array``: the array, dtype kept -> the same ndarray (float32 stays float32).
- ``scalar``: a 0-d array of a NumPy scalar's dtype -> that NumPy scalar
  (``np.float32``, ``np.float64``, ...).
- ``float`` / ``int`` / ``bool`` / ``str``: a 0-d float64 / int64 / bool /
  unicode array -> the Python value.
- ``none``: no entry -> ``None``.
- ``float_list``: a 1-d float64 array (``lower_bounds_``) -> a list of
  ``np.float64`` values, as scikit-learn's estimators keep them.
- ``str_array``: a 1-d unicode array (``feature_names_in_``) -> a 1-d object
  array of ``str``, as scikit-learn keeps it.
- ``tuple:<n>``: entries ``attr.<name>.0`` ... ``attr.<name>.<n-1>`` -> a
  tuple of the n arrays (``weight_concentration_`` of the
  ``dirichlet_process`` prior is a pair).

Loading checks the version, the class, the parameters (scikit-learn's
validation) and the shape and dtype of every fitted array against the
parameters and ``n_features_in_`` before the model is returned, so a damaged
or forged file gives a :class:`ValueError` naming the problem rather than a
model that fails (or reads out of bounds) in a kernel later. Members the
layout does not name are refused, as are fitted attributes it does not name
and two members for one entry. Every member is first judged by its ``.npy``
header alone (dtype, shape against the model's when known, declared bytes
against what the member holds, expansion of a compressed member), so a zip
bomb is refused before any of it is read. :func:`save` reads the file it
wrote back with these checks before it replaces anything.
"""

# Imported so that both estimators are registered as persistable classes.
from ._bayesian_mixture import BayesianGaussianMixture  # noqa: F401
from ._format import FORMAT_VERSION, describe_path, read, save
from ._gaussian_mixture import GaussianMixture  # noqa: F401

__all__ = ["FORMAT_VERSION", "load", "save"]


def load(path):
    """Load a model written by :meth:`GaussianMixture.save` (or the Bayesian one's).

    The file is read with ``np.load(path, allow_pickle=False)``: it can hold
    numbers and strings only, and the model class comes from a fixed
    allow-list, so loading never runs code from the file. See
    ``docs/persistence.md`` (or this module's docstring) for the layout.

    Parameters
    ----------
    path : str, path-like or readable binary file
        The model file.

    Returns
    -------
    model : GaussianMixture or BayesianGaussianMixture
        The fitted model, with the saved parameters and fitted attributes
        (dtypes kept); it predicts exactly as the saved model did.

    Raises
    ------
    ValueError
        When the file is not a fastmix model file (another program's file, a
        truncated or damaged archive, a missing or unsupported format
        version, an unknown class, missing entries, fitted arrays that do not
        match the parameters, or pickled data, which is refused).
    OSError
        When the file cannot be opened (e.g. it does not exist).

    Examples
    --------
    >>> import numpy as np, fastmix, tempfile, os
    >>> X = np.random.RandomState(0).randn(100, 2)
    >>> gm = fastmix.GaussianMixture(2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> gm.save(path)
    >>> again = fastmix.load(path)
    >>> bool(np.array_equal(again.score_samples(X), gm.score_samples(X)))
    True
    """
    return read(path, describe_path(path))
