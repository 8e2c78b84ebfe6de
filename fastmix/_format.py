"""The model-file layout: its writer and its reader.

The layout is documented in :mod:`fastmix._io` (the public ``load``, which
imports both estimators so that either class can be read) and
``docs/persistence.md``. This module imports no estimator class: the
estimators import it to register themselves (:func:`persistable`), and
their ``save`` writes through :func:`save`, which reads the file back as a
model of the saving class before it replaces anything, so the layers point
one way only.
"""

import errno
import io
import json
import math
import os
import re
import secrets
import stat
import tokenize
import zipfile
import zlib
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from ._stats import COV_CODES, TIED_TYPES, Stats
from ._validation import FLOAT_DTYPES, covariance_shape

__all__ = ["FORMAT_VERSION", "persistable", "read", "save"]

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


def _write(model, path, check):
    """Write ``model`` to ``path`` in the ``.npz`` layout of this module, once ``check`` passes.

    The caller has checked the model (:func:`save`). The archive
    is written to a temporary file in the target's folder (for a writable
    file object, to memory) and ``check(file)`` reads it back before
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
        ``check(file)``: raises if ``file`` (a path or a binary file object)
        does not read back as ``model``.
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
        check(buffer)
        path.write(buffer.getbuffer())
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
        check(tmp)
        if os.path.exists(target):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------- read
# Bounds on what one member may declare before any of it is read. save()
# writes members uncompressed; a compressed member expanding past this ratio
# is a zip bomb, not a model (float arrays barely compress).
_MAX_RATIO = 64
_RATIO_SLACK = 2**20
_MAX_HEADER = 10_000


# Constructor parameters that came after the first version-1 files.
_ADDED_PARAMS = {"learning_decay", "learning_offset", "total_samples", "min_responsibility"}


def _at(where, message):
    """``message`` prefixed with the place it is about (None: no place)."""
    return f"{where}: {message}" if where else message


def describe_path(path):
    """How an error names ``path`` (a path, or a file object's name)."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fsdecode(path)
    return str(getattr(path, "name", "<file object>"))


class _Archive:
    """Member access on an open NpzFile that turns every failure into ValueError."""

    def __init__(self, npz, where):
        self.npz = npz
        self.where = where
        self.names = set(npz.files)
        self.used = set()
        if len(self.names) != len(npz.files):
            # Two members for one entry ('x.npy' and 'x', or one name twice):
            # the header judged and the data read could be different ones.
            twice = sorted({name for name in npz.files if npz.files.count(name) > 1})
            self.fail(
                f"refused: the entr{'y' if len(twice) == 1 else 'ies'} "
                f"{', '.join(map(repr, twice[:5]))} appear{'s' if len(twice) == 1 else ''} "
                "twice in the archive, which fastmix.save never writes."
            )

    def fail(self, message):
        raise ValueError(_at(self.where, message))

    def member(self, key):
        """The zip member holding ``key`` (``np.savez`` adds ``.npy``)."""
        self.used.add(key)
        for name in (key + ".npy", key):
            try:
                return self.npz.zip.getinfo(name)
            except KeyError:
                continue
        self.fail(f"not a complete fastmix model file: the entry {key!r} is missing.")

    def check_header(self, key, shape=None):
        """Refuse an entry from its .npy header alone, before any of its data is read.

        The header's dtype must hold numbers or strings, its shape ``shape``
        when given, and the bytes it declares must be those the member holds
        (an uncompressed member lies on disk; a compressed one may not expand
        past :data:`_MAX_RATIO`). Memory used: the header only.
        """
        info = self.member(key)
        try:
            with self.npz.zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    header = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
                elif version == (2, 0):
                    header = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
                else:
                    self.fail(f"the entry {key!r} has an unsupported .npy version {version}.")
                header_bytes = f.tell()
        except READ_ERRORS as exc:
            self.fail(f"the entry {key!r} is damaged or truncated ({type(exc).__name__}: {exc}).")
        declared_shape, _, dtype = header
        if dtype.hasobject:
            self.fail(
                f"refused: the entry {key!r} holds pickled Python objects, which a fastmix "
                "model file never contains and which are never loaded."
            )
        if dtype.kind not in "biufcU":
            self.fail(f"the entry {key!r} has an unsupported dtype {dtype}.")
        if shape is not None and tuple(declared_shape) != tuple(shape):
            # Worded as _check_state words it after reading.
            name = key[len(ATTR) :] if key.startswith(ATTR) else key
            self.fail(
                f"fitted attribute {name!r} should be of shape {shape}, got {dtype} of shape "
                f"{tuple(declared_shape)}."
            )
        declared = math.prod(declared_shape) * dtype.itemsize  # Python ints: no overflow
        if header_bytes + declared != info.file_size:
            self.fail(
                f"the entry {key!r} is damaged: its header declares {declared} bytes of "
                f"data ({dtype} of shape {declared_shape}) but the member holds "
                f"{info.file_size - header_bytes}."
            )
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > _MAX_RATIO * info.compress_size + _RATIO_SLACK
        ):
            self.fail(
                f"refused: the entry {key!r} expands from {info.compress_size} to "
                f"{info.file_size} bytes, which no fastmix model file does."
            )

    def array(self, key, shape=None):
        self.check_header(key, shape)
        try:
            return self.npz[key]
        except ValueError as exc:
            self.fail(f"the entry {key!r} is damaged ({exc}).")
        except MemoryError:
            self.fail(f"the entry {key!r} is damaged: it does not fit in memory.")
        except READ_ERRORS as exc:
            self.fail(f"the entry {key!r} is damaged or truncated ({type(exc).__name__}: {exc}).")

    def string(self, key):
        value = self.array(key)
        if value.dtype.kind != "U" or value.ndim != 0:
            self.fail(f"the entry {key!r} should be a string, got {value.dtype} {value.shape}.")
        text = str(value[()])
        # NumPy drops trailing NULs from a unicode array's items: a name padded
        # with them would otherwise read as the name itself.
        if value.dtype.itemsize // 4 != max(len(text), 1):
            self.fail(f"the entry {key!r} holds NUL characters.")
        return text

    def json_object(self, key):
        try:
            value = json.loads(self.string(key))
        except json.JSONDecodeError as exc:
            self.fail(f"the entry {key!r} is not valid JSON ({exc}).")
        if not isinstance(value, dict):
            self.fail(f"the entry {key!r} should be a JSON object.")
        return value


def _scalar_array(archive, key, kinds):
    value = archive.array(key)
    if value.ndim != 0 or value.dtype.kind not in kinds:
        archive.fail(f"the entry {key!r} has dtype {value.dtype} and shape {value.shape}.")
    return value[()]


def _read_version(archive):
    if VERSION_KEY not in archive.names:
        shown = ", ".join(sorted(archive.names)[:8]) or "none"
        archive.fail(
            f"not a fastmix model file: it has no {VERSION_KEY!r} entry (its entries: {shown})."
        )
    version = archive.array(VERSION_KEY)
    if version.ndim != 0 or version.dtype.kind not in "iu":
        archive.fail(f"not a fastmix model file: {VERSION_KEY!r} is not an integer.")
    version = int(version[()])
    if version > FORMAT_VERSION:
        archive.fail(
            f"format version {version} is newer than this fastmix reads "
            f"(version {FORMAT_VERSION}); upgrade fastmix to load it."
        )
    if version != FORMAT_VERSION:
        archive.fail(
            f"unsupported format version {version}; this fastmix reads version {FORMAT_VERSION}."
        )


def _read_class(archive):
    name = archive.string(CLASS_KEY)
    cls = MODEL_CLASSES.get(name)
    if cls is None:
        archive.fail(
            f"unknown model class {name!r}; a fastmix model file holds one of: "
            f"{', '.join(sorted(MODEL_CLASSES))}."
        )
    return cls


def _read_params(archive, cls):
    encoded = archive.json_object(PARAMS_KEY)
    expected = set(cls().get_params(deep=False))
    # Parameters added since format version 1 was first written: files
    # without them keep those parameters' defaults.
    missing = sorted(expected - set(encoded) - _ADDED_PARAMS)
    unknown = sorted(set(encoded) - expected)
    if missing:
        archive.fail(f"missing parameter(s) for {cls.__name__}: {', '.join(missing)}.")
    if unknown:
        archive.fail(f"unknown parameter(s) for {cls.__name__}: {', '.join(unknown)}.")
    params = {}
    for name, value in encoded.items():
        if value is None or isinstance(value, (str, bool, int, float)):
            params[name] = value
        elif value == {"kind": "array"}:
            params[name] = archive.array(PARAM + name)
        elif value == {"kind": "random_state"} and name == "random_state":
            key = archive.array(PARAM + "random_state.key")
            if key.shape != (624,) or key.dtype != np.uint32:
                archive.fail("the saved random_state has a malformed MT19937 key.")
            pos = _scalar_array(archive, PARAM + "random_state.pos", "iu")
            has_gauss = _scalar_array(archive, PARAM + "random_state.has_gauss", "iu")
            cached = _scalar_array(archive, PARAM + "random_state.cached_gaussian", "f")
            state = np.random.RandomState()
            try:
                state.set_state(("MT19937", key, int(pos), int(has_gauss), float(cached)))
            except (ValueError, TypeError) as exc:
                archive.fail(f"the saved random_state is invalid ({exc}).")
            params[name] = state
        else:
            archive.fail(f"parameter {name!r} has an unsupported stored value {value!r}.")
    model = cls(**params)
    try:
        model._validate_params()
    except InvalidParameterError as exc:
        archive.fail(f"invalid parameters: {exc}")
    return model


def _read_attribute(archive, name, kind, shape=None):
    key = ATTR + name
    if kind == "none":
        return None
    if kind.startswith("tuple:"):
        count = kind[len("tuple:") :]
        if not count.isdigit() or not 0 < int(count) <= MAX_TUPLE:
            archive.fail(f"attribute {name!r} has an unsupported kind {kind!r}.")
        return tuple(archive.array(f"{key}.{i}") for i in range(int(count)))
    if kind == "array":
        return archive.array(key, shape)
    if kind == "scalar":
        return _scalar_array(archive, key, "biufc")
    if kind == "bool":
        return bool(_scalar_array(archive, key, "b"))
    if kind == "int":
        return int(_scalar_array(archive, key, "iu"))
    if kind == "float":
        return float(_scalar_array(archive, key, "f"))
    if kind == "str":
        return archive.string(key)
    if kind == "float_list":
        value = archive.array(key)
        if value.ndim != 1 or value.dtype.kind != "f":
            archive.fail(f"the entry {key!r} should be a 1-d float array.")
        return [np.float64(v) for v in value.tolist()]
    if kind == "str_array":
        value = archive.array(key)
        if value.ndim != 1 or value.dtype.kind != "U":
            archive.fail(f"the entry {key!r} should be a 1-d string array.")
        return np.asarray(value.tolist(), dtype=object)
    archive.fail(f"attribute {name!r} has an unsupported kind {kind!r}.")


def _expected_state(model, n_features):
    """Name -> required shape of every float array or scalar a fitted model holds."""
    k, d, cov_type = model.n_components, n_features, model.covariance_type
    cov_shape = covariance_shape(cov_type, k, d)
    shapes = {
        "weights_": (k,),
        "means_": (k, d),
        "covariances_": cov_shape,
        "precisions_": cov_shape,
        "precisions_cholesky_": cov_shape,
    }
    if _variational(model):
        prior_shape = {
            "full": (d, d),
            "tied": (d, d),
            "diag": (d,),
            "spherical": (),
            "tied-diagonal": (d,),
            "tied-spherical": (),
        }
        shapes.update(
            {
                "mean_precision_": (k,),
                "degrees_of_freedom_": () if cov_type in TIED_TYPES else (k,),
                "mean_prior_": (d,),
                "covariance_prior_": prior_shape[cov_type],
                "weight_concentration_prior_": (),
                "mean_precision_prior_": (),
                "degrees_of_freedom_prior_": (),
            }
        )
    return shapes


def _known_attributes(model):
    """Every fitted attribute a model of this class and these parameters may hold."""
    names = {"n_features_in_", "converged_", "n_iter_", "lower_bound_", "lower_bounds_"}
    names |= {"feature_names_in_", "weight_concentration_", *type(model)._online_attributes}
    return names | set(_expected_state(model, 0))


def _summary(value):
    """A short description of a loaded value for error messages."""
    if isinstance(value, tuple):
        return "a tuple of " + ", ".join(_summary(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return f"{value.dtype} of shape {value.shape}"
    return f"{type(value).__name__} {value!r}"[:80]


def _check_state(archive, model, attrs):
    """Refuse fitted state that does not match the parameters (shapes, dtypes, types)."""
    required = {"n_features_in_", "converged_", "n_iter_", "lower_bound_", "lower_bounds_"}
    if _variational(model):
        required.add("weight_concentration_")
    n_features = attrs.get("n_features_in_")
    if "n_features_in_" in attrs and (
        not isinstance(n_features, Integral) or isinstance(n_features, bool) or n_features < 1
    ):
        archive.fail(f"n_features_in_ should be a positive integer, got {n_features!r}.")
    shapes = _expected_state(model, n_features or 0)
    missing = sorted((required | set(shapes)) - set(attrs))
    if missing:
        archive.fail(f"missing fitted attribute(s): {', '.join(missing)}.")

    def bad(name, expected):
        archive.fail(
            f"fitted attribute {name!r} should be {expected}, got {_summary(attrs[name])}."
        )

    for name, shape in shapes.items():
        value = attrs[name]
        if shape == () and isinstance(value, Real) and not isinstance(value, (bool, np.bool_)):
            continue  # Python or NumPy real scalars (the *_prior_ values)
        if not isinstance(value, (np.ndarray, np.floating)) or value.dtype not in FLOAT_DTYPES:
            bad(name, f"a float32 or float64 array of shape {shape}")
        if value.shape != shape:
            bad(name, f"of shape {shape}")
    _check_factors(attrs["precisions_cholesky_"], model.covariance_type, bad)
    if not isinstance(attrs["converged_"], (bool, np.bool_)):
        bad("converged_", "a bool")
    n_iter = attrs["n_iter_"]
    if not isinstance(n_iter, Integral) or isinstance(n_iter, bool) or n_iter < 0:
        bad("n_iter_", "a non-negative integer")
    if not isinstance(attrs["lower_bound_"], Real):
        bad("lower_bound_", "a real number")
    if not isinstance(attrs["lower_bounds_"], list):
        bad("lower_bounds_", "a list of floats")

    if _variational(model):
        concentration = attrs["weight_concentration_"]
        k = model.n_components
        if model.weight_concentration_prior_type == "dirichlet_process":
            ok = isinstance(concentration, tuple) and len(concentration) == 2
            ok = ok and all(c.dtype in FLOAT_DTYPES and c.shape == (k,) for c in concentration)
            if not ok:
                bad("weight_concentration_", f"a pair of float arrays of shape ({k},)")
        elif not (
            isinstance(concentration, np.ndarray)
            and concentration.dtype in FLOAT_DTYPES
            and concentration.shape == (k,)
        ):
            bad("weight_concentration_", f"a float array of shape ({k},)")

    if "feature_names_in_" in attrs:
        names = attrs["feature_names_in_"]
        if not (
            isinstance(names, np.ndarray)
            and names.dtype == object
            and names.shape == (n_features,)
        ):
            bad("feature_names_in_", f"an array of {n_features} names")
    _check_online_state(archive, model, attrs, n_features, bad)


def _check_factors(prec_chol, covariance_type, bad):
    """Refuse precision factors that no fit of ``covariance_type`` leaves.

    Upper-triangular with a positive diagonal ('full', 'tied'), positive
    ('diag' and the others). Shapes alone let a model whose covariance_type
    was changed after the fit through when K == D ('diag' read as 'tied' or
    back); its predictions would be another model's.
    """
    factors = np.asarray(prec_chol)
    with np.errstate(invalid="ignore"):
        if covariance_type in ("full", "tied"):
            ok = bool(
                (np.diagonal(factors, axis1=-2, axis2=-1) > 0).all()
                and not np.tril(factors, -1).any()
            )
            expected = "upper-triangular factors with a positive diagonal"
        else:
            ok = bool((factors > 0).all())
            expected = "positive factors"
    if not ok:
        bad(
            "precisions_cholesky_",
            f"{expected}, as a fit with covariance_type={covariance_type!r} leaves them "
            "(was covariance_type changed after the fit?)",
        )


def _check_online_state(archive, model, attrs, n_features, bad):
    """Refuse a partial_fit state that a later partial_fit could not continue."""
    names = type(model)._online_attributes
    present = [name for name in names if name in attrs]
    if not present:
        return
    if len(present) != len(names):
        missing = ", ".join(name for name in names if name not in attrs)
        archive.fail(
            f"missing fitted attribute(s): {missing} (a model saved after partial_fit "
            f"holds all of {', '.join(names)})."
        )
    for name, least in (("n_batches_", 1), ("n_samples_seen_", 0)):
        value = attrs[name]
        if not isinstance(value, Integral) or isinstance(value, bool) or value < least:
            bad(name, "a positive integer" if least else "a non-negative integer")
    zeros = Stats.zeros(
        COV_CODES[model.covariance_type], np.zeros((model.n_components, n_features))
    )
    expected = zeros.to_arrays()
    stats = attrs["online_stats_"]
    if not (
        isinstance(stats, tuple)
        and len(stats) == len(expected)
        and all(
            isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == e.shape
            for a, e in zip(stats, expected, strict=True)
        )
    ):
        shapes = ", ".join(str(e.shape) for e in expected)
        bad("online_stats_", f"a tuple of float64 arrays of shapes {shapes}")


def read(path, where):
    """:func:`fastmix.load` of ``path``; its errors name ``where`` (None: the message alone)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except READ_ERRORS as exc:
        if isinstance(exc, ValueError) and "pickle" in str(exc):
            reason = "it is neither an .npz archive nor an .npy array"
        elif isinstance(exc, zipfile.BadZipFile):
            reason = f"the zip archive is truncated or damaged: {exc}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        raise ValueError(
            _at(where, f"not a fastmix model file (cannot read it as an .npz archive: {reason}).")
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(
            _at(
                where,
                "not a fastmix model file (it holds a single .npy array, not an .npz archive).",
            )
        )
    with npz:
        archive = _Archive(npz, where)
        _read_version(archive)
        cls = _read_class(archive)
        model = _read_params(archive, cls)
        kinds = archive.json_object(ATTRS_KEY)
        param_names = model.get_params(deep=False)
        known = _known_attributes(model)
        for name, kind in kinds.items():
            if not ATTR_NAME.match(name) or name in param_names or hasattr(cls, name):
                archive.fail(f"{name!r} is not a fitted-attribute name.")
            if name not in known:
                archive.fail(f"unknown fitted attribute {name!r} for {cls.__name__}.")
            if not isinstance(kind, str):
                archive.fail(f"attribute {name!r} has an unsupported kind {kind!r}.")
        attrs = {}
        # n_features_in_ first: with it, every fitted array's shape is known
        # and checked against its header before the array is read.
        if "n_features_in_" in kinds:
            attrs["n_features_in_"] = _read_attribute(
                archive, "n_features_in_", kinds["n_features_in_"]
            )
        n_features = attrs.get("n_features_in_")
        shapes = {}
        valid = isinstance(n_features, Integral) and not isinstance(n_features, bool)
        if valid and n_features > 0:
            shapes = _expected_state(model, int(n_features))
        for name, kind in kinds.items():
            if name not in attrs:
                attrs[name] = _read_attribute(archive, name, kind, shapes.get(name))
        _check_state(archive, model, attrs)
        # The writer's version is for people reading the file; never read.
        stray = sorted(archive.names - archive.used - {WRITER_KEY})
        if stray:
            # fastmix.save writes nothing it does not read back: an extra entry
            # is an edited or foreign file, whatever it holds.
            archive.fail(
                f"unexpected entr{'y' if len(stray) == 1 else 'ies'} "
                f"{', '.join(map(repr, stray[:5]))}{', ...' if len(stray) > 5 else ''}: "
                "not written by fastmix.save."
            )
    for name, value in attrs.items():
        setattr(model, name, value)
    if "n_batches_" in attrs:
        # The parameters the saved partial_fit ran with (save refuses a model
        # whose structural ones changed since): a later partial_fit refuses
        # a change of them as the saved model would have.
        model._online_parameters_checked = model._online_parameter_values()
    return model


def _variational(model):
    """Whether ``model`` is a variational mixture (it has a weight prior).

    Asked of the instance: this module imports no estimator class.
    """
    return hasattr(model, "weight_concentration_prior_type")


# ----------------------------------------------------------------------- save
def save(model, path):
    """Write a fitted model to ``path``: fastmix's ``.npz`` layout, without pickle.

    The same as ``model.save(path)``. Refused before anything is written: a
    model that is not fitted, or whose parameters no longer describe its
    fit (``n_components``, ``covariance_type`` or the weight prior's type
    changed by ``set_params``), and any file that would not load back as the
    model (the written archive is read back with :func:`load`'s checks and
    its fitted attributes compared before it replaces anything).

    Parameters
    ----------
    model : GaussianMixture or BayesianGaussianMixture
        A fitted model.
    path : str, bytes, path-like or writable binary file
        Where to write. The file is written exactly there (no ``.npz`` suffix
        is added), through a temporary file in the same folder renamed into
        place, so an interrupted save never leaves a half-written model. An
        existing file is replaced (its permission bits kept; through a
        symbolic link, the file it names).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When ``model`` is not fitted.
    TypeError
        When ``model`` is not one of fastmix's estimators (subclasses
        included: loading could not rebuild them), or holds a value the
        layout cannot store.
    ValueError
        When the parameters no longer describe the fit, or the file would not
        load back as the model (e.g. a fitted attribute of the user's own, or
        one of another type than the fit left).

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
    model._check_savable()
    where = describe_path(path)

    def check(file):
        try:
            again = read(file, None)
        except ValueError as exc:
            raise ValueError(
                f"Cannot save to {where}: fastmix.load would refuse the file: {exc} "
                "Nothing was written."
            ) from None
        params = model.get_params(deep=False)
        for attr, value in vars(model).items():
            if attr in params or not ATTR_NAME.match(attr):
                continue
            loaded = getattr(again, attr, None)
            if not _same_value(value, loaded):
                raise ValueError(
                    f"Cannot save to {where}: fitted attribute {attr!r} would load back as "
                    f"{_summary(loaded)}, not as it is ({_summary(value)}). Nothing was written."
                )

    _write(model, path, check)


def _same_value(a, b):
    """Whether a fitted attribute loaded back is the saved one (NaN equal to NaN)."""
    if isinstance(a, tuple):
        return (
            isinstance(b, tuple)
            and len(a) == len(b)
            and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, list):  # lower_bounds_: the values
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, np.ndarray):
        if not (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        if a.dtype == object:
            return a.tolist() == b.tolist()
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if type(a) is not type(b):
        return False
    return bool(a == b) or (a != a and b != b)
