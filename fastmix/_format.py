"""The model-file layout and its writer (the reader is :mod:`fastmix._io`).

The layout is documented in :mod:`fastmix._io` and ``docs/persistence.md``.
This module knows no estimator class and imports no reader: the estimators
import it to register themselves (:func:`persistable`), and
:func:`fastmix._io.save`, which imports the estimators to rebuild them when
it reads a file back, calls :func:`write` with that check.
"""

import errno
import io
import json
import os
import re
import secrets
import stat
import tokenize
import zipfile
import zlib
from numbers import Integral, Real

import numpy as np

__all__ = ["FORMAT_VERSION", "persistable", "write"]

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
                if any(v.endswith("\0") for v in value):
                    # NumPy's unicode arrays drop trailing NULs from their items.
                    raise ValueError(
                        f"Cannot save fitted attribute {name!r}: a name ends with a NUL "
                        "character, which a model file cannot keep. Rename that column "
                        "and fit again."
                    )
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


def write(model, path, check):
    """Write ``model`` to ``path`` in the ``.npz`` layout of this module, once ``check`` passes.

    The caller has checked the model (:func:`fastmix._io.save`). The archive
    is written to a temporary file in the target's folder (for a writable
    file object, to memory) and ``check(file, model)`` reads it back before
    it replaces anything: a file that would not load back as the model is
    never written.

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model of a :func:`persistable` class.
    path : str, bytes, path-like or writable binary file
        Where to write. The file is written exactly there (no ``.npz``
        suffix is added), through a temporary file in the same folder renamed
        into place, so an interrupted save never leaves a half-written model.
        An existing file keeps its permission bits; a symbolic link keeps
        pointing at the file it names, which is replaced.
    check : callable
        ``check(file, model)``: raises if ``file`` (a path or a binary file
        object) does not read back as ``model``.
    """
    from . import __version__

    arrays = {
        VERSION_KEY: np.asarray(FORMAT_VERSION, dtype=np.int64),
        CLASS_KEY: np.asarray(type(model).__name__, dtype=np.str_),
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
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        buffer.seek(0)
        check(buffer, model)
        path.write(buffer.getvalue())
        return
    path = os.fsdecode(os.fspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    # Through a link, the file it names; created like any new file (the umask
    # applies, unlike tempfile's 0600), or with the replaced file's mode.
    target = os.path.realpath(path)
    folder, base = os.path.split(target)
    tmp = os.path.join(folder, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fh = open(tmp, "xb")
    except OSError as exc:  # the folder: named as the user gave the path
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        with fh:
            np.savez(fh, allow_pickle=False, **arrays)
        check(tmp, model)
        if os.path.exists(target):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
