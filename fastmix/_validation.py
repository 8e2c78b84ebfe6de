"""Input checks shared by the estimators, the data sources and model files.

Every check raises scikit-learn's message (or a message that names the problem
and the fix) and returns the validated value; nothing here knows about an
estimator object, so the data sources and the model-file reader use the same
checks as ``fit``.
"""

import math

import numpy as np
from sklearn.utils import check_array

FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_FLOATS = [np.float64, np.float32]


# ------------------------------------------------------------------ data shape
def fit_dtype(dtype):
    """scikit-learn's dtype policy: float64 and float32 kept, other numbers to float64."""
    dtype = np.dtype(dtype)
    if dtype in FLOAT_DTYPES:
        return dtype
    if dtype.kind in "biuf":
        return np.dtype(np.float64)
    if dtype.kind == "c":
        # scikit-learn's words for an in-memory complex array.
        raise ValueError(
            f"Complex data not supported: X has dtype {dtype}. Pass real values "
            "(e.g. X.real or np.abs(X))."
        )
    raise ValueError(
        f"X has dtype {dtype}; fastmix fits numeric data (float64 or float32, other "
        "numeric types are converted to float64)."
    )


def check_2d(X, name, min_samples):
    """scikit-learn's 2-D, minimum-samples and minimum-features errors for any ``X.shape``."""
    ndim = len(X.shape)
    if ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {ndim}D array instead; X must have shape "
            "(n_samples, n_features)."
        )
    n_samples, n_features = X.shape
    if not math.isnan(n_samples) and n_samples < min_samples:
        raise ValueError(
            "Found array with %d sample(s) (shape=%s) while a minimum of %d is required by %s."
            % (n_samples, tuple(X.shape), min_samples, name)
        )
    if n_features < 1:
        raise ValueError(
            "Found array with %d feature(s) (shape=%s) while a minimum of 1 is required by %s."
            % (n_features, tuple(X.shape), name)
        )


def check_n_components(n_samples, n_components):
    """scikit-learn's error for fewer rows than components."""
    if n_samples < n_components:
        raise ValueError(
            "Expected n_samples >= n_components "
            f"but got n_components = {n_components}, "
            f"n_samples = {n_samples}"
        )


# --------------------------------------------------------------- sample weight
def check_weight_array(w, n_samples):
    """The shape and type checks of ``sample_weight`` (NumPy or Dask), before its values.

    ``w`` needs ``ndim``, ``dtype`` and ``shape`` only, so a dask array is
    checked without computing it.
    """
    if w.ndim == 0:
        raise ValueError(
            "sample_weight must be an array of shape (n_samples,), got a scalar; "
            "pass one non-negative weight per row of X."
        )
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight has shape {w.shape} but X has {n_samples} rows; "
            f"pass one weight per row, shape ({n_samples},)."
        )


_TINY = float(np.finfo(np.float64).tiny)


def check_weight_summary(summary, n_components):
    """The sample-weight errors, from (non-finite, negative, positive) counts and the sum.

    Shared by in-memory validation and the block-by-block validation of data
    sources, so both raise the same messages.
    """
    n_nonfinite, n_negative, n_positive = (int(v) for v in summary[:3])
    if n_nonfinite:
        raise ValueError(
            "sample_weight contains NaN or infinity; pass finite non-negative weights."
        )
    if not np.isfinite(summary[3]):
        raise ValueError(
            "sample_weight sums to infinity: the weights overflow float64 when added. "
            "Divide them by a common factor: GaussianMixture depends only on their "
            "ratios; BayesianGaussianMixture reads them as counts of rows."
        )
    if n_negative:
        raise ValueError(
            "sample_weight contains negative values; weights must be non-negative "
            "(a zero weight drops a row)."
        )
    if 0.0 < summary[3] < _TINY:
        raise ValueError(
            f"sample_weight sums to {summary[3]:.3g}, below the smallest normal float64 "
            f"({_TINY:.3g}): the statistics would lose their precision (or overflow when "
            "divided by it). Multiply the weights by a common factor: GaussianMixture "
            "depends only on their ratios; BayesianGaussianMixture reads them as counts "
            "of rows."
        )
    if n_positive == 0:
        raise ValueError(
            "sample_weight is zero for every row: at least one row needs a positive weight."
        )
    if n_positive < n_components:
        raise ValueError(
            "Expected at least n_components rows with a positive sample_weight "
            f"but got n_components = {n_components}, rows with positive weight = "
            f"{n_positive}."
        )


def weight_summary(w):
    """(non-finite, negative, positive) counts and the sum of a float64 weight array."""
    finite = np.isfinite(w)
    with np.errstate(over="ignore"):  # an overflowing sum is reported, not warned
        total = float(np.sum(w[finite]))
    return (
        int(np.count_nonzero(~finite)),
        int(np.count_nonzero(w[finite] < 0)),
        int(np.count_nonzero(w > 0)),
        total,
    )


def check_sample_weight(sample_weight, n_samples, n_components):
    """Validate ``sample_weight``: None, or finite non-negative weights, one per row.

    Returns None (every weight 1) or a float64 array of shape (n_samples,).
    """
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.dtype == object:
        # scikit-learn converts an object array of numbers (a pandas column of
        # mixed ints and floats); anything else stays refused as non-numeric.
        try:
            sw = sw.astype(np.float64)
        except (TypeError, ValueError):
            pass
    check_weight_array(sw, n_samples)
    sw = sw.astype(np.float64)
    check_weight_summary(weight_summary(sw), n_components)
    return sw


# ---------------------------------------------------------- model parameters
def covariance_shape(covariance_type, n_components, n_features):
    """Shape of ``covariances_`` / ``precisions_`` / ``precisions_cholesky_``."""
    # Tests, not a dict of six shapes built per call: every E-step's inputs ask.
    if covariance_type == "diag":
        return (n_components, n_features)
    if covariance_type == "full":
        return (n_components, n_features, n_features)
    if covariance_type == "spherical":
        return (n_components,)
    if covariance_type == "tied":
        return (n_features, n_features)
    if covariance_type == "tied-diagonal":
        return (n_features,)
    if covariance_type == "tied-spherical":
        return ()
    raise KeyError(covariance_type)


def check_shape(param, param_shape, name):
    """scikit-learn's error for an initial parameter of the wrong shape."""
    if param.shape != param_shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s"
            % (name, param_shape, param.shape)
        )


def check_weights(weights, n_components):
    """Validate ``weights_init``: shape (K,), in [0, 1], summing to one."""
    weights = check_array(weights, dtype=_FLOATS, ensure_2d=False)
    check_shape(weights, (n_components,), "weights")
    if np.any(weights < 0.0) or np.any(weights > 1.0):
        raise ValueError(
            "The parameter 'weights' should be in the range "
            "[0, 1], but got max value %.5f, min value %.5f" % (np.min(weights), np.max(weights))
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(float(np.abs(1.0 - np.sum(weights))), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = %.5f"
            % np.sum(weights)
        )
    return weights


def check_means(means, n_components, n_features):
    """Validate ``means_init``: shape (K, D)."""
    means = check_array(means, dtype=_FLOATS, ensure_2d=False)
    check_shape(means, (n_components, n_features), "means")
    return means


def check_precision_positivity(precision, covariance_type):
    """scikit-learn's error for a non-positive diagonal or spherical precision."""
    if np.any(np.less_equal(precision, 0.0)):
        raise ValueError("'%s precision' should be positive" % covariance_type)


def check_precision_matrix(precision, covariance_type):
    """scikit-learn's error for a precision matrix that is not symmetric positive-definite."""
    if not (np.allclose(precision, precision.T) and np.all(np.linalg.eigvalsh(precision) > 0.0)):
        raise ValueError("'%s precision' should be symmetric, positive-definite" % covariance_type)


def check_precisions(precisions, covariance_type, n_components, n_features):
    """Validate ``precisions_init`` for ``covariance_type`` (shape and definiteness).

    'tied-spherical' takes one number (a float or an array of shape ()).
    """
    precisions = check_array(
        precisions,
        dtype=_FLOATS,
        ensure_2d=False,
        allow_nd=covariance_type == "full",
        ensure_min_samples=0 if covariance_type == "tied-spherical" else 1,
    )
    check_shape(
        precisions,
        covariance_shape(covariance_type, n_components, n_features),
        "%s precision" % covariance_type,
    )
    if covariance_type == "full":
        for k in range(precisions.shape[0]):
            check_precision_matrix(precisions[k], covariance_type)
    elif covariance_type == "tied":
        check_precision_matrix(precisions, covariance_type)
    else:
        check_precision_positivity(precisions, covariance_type)
    return precisions
