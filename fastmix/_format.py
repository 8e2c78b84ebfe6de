"""The model-file layout and its writer (the reader is :mod:`fastmix._io`).

The layout is documented in :mod:`fastmix._io` and ``docs/persistence.md``.
This module knows no estimator class: an estimator's ``save`` method writes
through it without importing the reader (which imports the estimators to
rebuild them), so the layers point one way only. Classes that can be saved
register themselves with :func:`persistable`.
"""

import json
import os
import re
import secrets
import tokenize
import zipfile
import zlib
from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["FORMAT_VERSION", "persistable", "save"]

FORMAT_VERSION = 1

# The only classes a model file may name: filled by @persistable, looked up
# by name when loading, never imported by name from a file.
MODEL_CLASSES = {}

VERSION_KEY = "fastmix_format_version"
CLASS_KEY = "class_name"
WRITER_KEY = "fastmix_version"
PARAMS_KEY = "params_json"
ATTRS_KEY = "attributes_json"
PARAM = "param."
ATTR = "attr."

ATTR_NAME = re.compile(r"^[a-z][a-z0-9_]*_$")
MAX_TUPLE = 16
# Array dtypes a model file may hold (never object arrays).
ARRAY_KINDS = "biufcU"

# What NumPy's readers raise for a damaged .npy or .npz (never a pickle:
# allow_pickle=False): zipfile raises NotImplementedError for a compression
# method it does not know and RuntimeError for an encrypted member; a
# malformed .npy header fails in its tokenizer or parser.
READ_ERRORS = (
    zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, KeyError,
    NotImplementedError, RuntimeError, SyntaxError, tokenize.TokenError,
)  # fmt: skip


# Python scalars stored as 0-d arrays: type -> (kind, dtype). Exact types, so
# that a bool is never taken for an int.
_PLAIN_KINDS = {
    bool: ("bool", np.bool_),
    int: ("int", np.int64),
    float: ("float", np.float64),
    str: ("str", np.str_),
}


def persistable(cls):
    """Class decorator: ``cls`` may be saved and loaded under its own name."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


# ----------------------------------------------------------------------- save
def _encode_param(name, value, arrays):
    """The JSON value of one constructor parameter (arrays go to ``arrays``)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if isinstance(value, (Integral, Real)) and not isinstance(value, complex):
        return int(value) if isinstance(value, Integral) else float(value)
    if isinstance(value, np.random.RandomState):
        _, key, pos, has_gauss, cached_gaussian = value.get_state(legacy=True)
        arrays[PARAM + "random_state.key"] = np.asarray(key, dtype=np.uint32)
        arrays[PARAM + "random_state.pos"] = np.asarray(pos, dtype=np.int64)
        arrays[PARAM + "random_state.has_gauss"] = np.asarray(has_gauss, dtype=np.int64)
        arrays[PARAM + "random_state.cached_gaussian"] = np.asarray(
            cached_gaussian, dtype=np.float64
        )
        return {"kind": "random_state"}
    if isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind not in ARRAY_KINDS:
            raise ValueError(
                f"Cannot save parameter {name!r}: its array has dtype {array.dtype}; a "
                "fastmix model file holds numeric arrays only."
            )
        arrays[PARAM + name] = array
        return {"kind": "array"}
    raise TypeError(
        f"Cannot save parameter {name!r} of type {type(value).__name__}: a fastmix model "
        "file holds None, str, int, float, bool, arrays and RandomState only."
    )


def _encode_attribute(name, value, arrays):
    """The kind of one fitted attribute; its arrays go to ``arrays``."""
    key = ATTR + name
    if value is None:
        return "none"
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            if value.ndim == 1 and all(isinstance(v, str) for v in value):
                arrays[key] = np.asarray(value.tolist(), dtype=np.str_)
                return "str_array"
        elif value.dtype.kind in ARRAY_KINDS:
            arrays[key] = value
            return "array"
    elif isinstance(value, np.generic):
        if value.dtype.kind in "biufc":
            arrays[key] = np.asarray(value)
            return "scalar"
    elif type(value) in _PLAIN_KINDS:
        kind, dtype = _PLAIN_KINDS[type(value)]
        arrays[key] = np.asarray(value, dtype=dtype)
        return kind
    elif isinstance(value, list):
        if all(
            isinstance(v, (Real, np.floating, np.integer)) and not isinstance(v, (bool, np.bool_))
            for v in value
        ):
            arrays[key] = np.asarray(value, dtype=np.float64).reshape(len(value))
            return "float_list"
    elif isinstance(value, tuple):
        if 0 < len(value) <= MAX_TUPLE and all(
            isinstance(v, np.ndarray) and v.dtype.kind in ARRAY_KINDS for v in value
        ):
            for i, v in enumerate(value):
                arrays[f"{key}.{i}"] = v
            return f"tuple:{len(value)}"
    raise TypeError(
        f"Cannot save fitted attribute {name!r} of type {type(value).__name__}: a fastmix "
        "model keeps arrays, numbers, lists of floats and tuples of arrays only."
    )


def save(model, path):
    """Write a fitted model to ``path`` in the ``.npz`` layout of this module.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model.
    path : str, path-like or writable binary file
        Where to write. The file is written exactly there (no ``.npz`` suffix
        is added), through a temporary file in the same folder renamed into
        place, so an interrupted save never leaves a half-written model.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is not fitted.
    TypeError
        When ``model`` is not one of fastmix's estimators (subclasses
        included: loading could not rebuild them), or holds a value the
        layout cannot store.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastmix
    >>> X = np.random.RandomState(0).randn(200, 2)
    >>> gm = fastmix.GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> fastmix.save(gm, path)
    >>> np.array_equal(fastmix.load(path).means_, gm.means_)
    True
    """
    name = type(model).__name__
    if MODEL_CLASSES.get(name) is not type(model):
        raise TypeError(
            f"Only {' and '.join(sorted(MODEL_CLASSES))} can be saved, not {type(model).__name__}."
        )
    check_is_fitted(model)
    from . import __version__

    arrays = {
        VERSION_KEY: np.asarray(FORMAT_VERSION, dtype=np.int64),
        CLASS_KEY: np.asarray(name, dtype=np.str_),
        WRITER_KEY: np.asarray(__version__, dtype=np.str_),
    }
    params = model.get_params(deep=False)
    encoded_params = {k: _encode_param(k, v, arrays) for k, v in params.items()}
    kinds = {}
    for attr, value in vars(model).items():
        if attr in params or not ATTR_NAME.match(attr):
            continue  # parameters, private state (e.g. verbose timers)
        kinds[attr] = _encode_attribute(attr, value, arrays)
    arrays[PARAMS_KEY] = np.asarray(json.dumps(encoded_params, sort_keys=True), dtype=np.str_)
    arrays[ATTRS_KEY] = np.asarray(json.dumps(kinds, sort_keys=True), dtype=np.str_)

    if hasattr(path, "write"):
        np.savez(path, allow_pickle=False, **arrays)
        return
    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    # Created like any new file (the umask applies, unlike tempfile's 0600).
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
