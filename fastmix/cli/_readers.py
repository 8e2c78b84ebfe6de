"""The data files ``fastmix fit`` and ``fastmix predict`` read.

``.npy`` (memory-mapped), ``.npz`` (one array of the archive), ``.csv`` and
``.tsv`` (numbers only; a first row that is not all numbers is a header), and
raw binary files of a given shape and dtype (memory-mapped). Every mistake in
a file is a :class:`~fastmix.cli._usage.UsageError` that says what is wrong
and where, in one line.
"""

import contextlib
import csv
import os
import sys
import warnings

import numpy as np

from .._format import READ_ERRORS
from ._usage import UsageError, check_input_file, extension

# Data files `fit` and `predict` read, by extension; anything else is a raw
# binary file and needs --shape (and --dtype).
TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t"}
DATA_EXTENSIONS = (".npy", ".npz", *TEXT_DELIMITERS)


def _as_numeric(X, path):
    """Check the element type of a loaded array; non-float numbers become float64."""
    if X.dtype in (np.float32, np.float64):
        return X
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{path}: the data must be numbers, but the array holds {X.dtype} values")
    return np.asarray(X, dtype=np.float64)


def _read_npy(path):
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise UsageError(f"{path}: not a readable .npy file (it does not start as one)")
    try:
        # Memory-mapped: a file larger than memory is streamed by the estimators.
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "Python objects" in str(exc) or "pickle" in str(exc):
            raise UsageError(
                f"{path}: the array holds Python objects, not numbers (never unpickled)"
            ) from None
        raise UsageError(
            f"{path}: not a readable .npy file ({' '.join(str(exc).split())})"
        ) from None
    except READ_ERRORS as exc:
        raise UsageError(f"{path}: not a readable .npy file ({_reason(exc)})") from None


def _reason(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _read_npz(path, key):
    try:
        archive = np.load(path, allow_pickle=False)
    except READ_ERRORS as exc:
        raise UsageError(f"{path}: not a readable .npz archive ({_reason(exc)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UsageError(f"{path}: a single .npy array, not an .npz archive (rename it .npy)")
    with archive:
        names = list(archive.files)
        if not names:
            raise UsageError(f"{path}: the .npz archive holds no array")
        if key is None:
            key = names[0]
        elif key not in names:
            raise UsageError(
                f"{path}: no array named {key!r} (its arrays: {', '.join(names[:10])}"
                f"{', ...' if len(names) > 10 else ''})"
            )
        try:
            value = archive[key]
        except ValueError as exc:
            if "pickle" in str(exc) or "Object arrays" in str(exc):
                raise UsageError(
                    f"{path}: the array {key!r} holds Python objects, not numbers "
                    "(never unpickled)"
                ) from None
            raise UsageError(f"{path}: the array {key!r} is damaged ({exc})") from None
        except READ_ERRORS as exc:
            raise UsageError(f"{path}: the array {key!r} is damaged ({_reason(exc)})") from None
        if not isinstance(value, np.ndarray):
            # NumPy hands back the raw bytes of a member that is not a .npy file.
            raise UsageError(
                f"{path}: the member {key!r} is not a .npy array; name the array to read "
                "with --key"
            )
        return value


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# Cells that stand for a missing value in a row of numbers (compared lowercased).
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "missing"})


def _is_header(fields):
    """Whether a first row of ``fields`` names the columns, not a row of data with bad cells.

    A row of numbers and missing-value cells (empty, ``NA``, ``null``, ...)
    is data, whose bad cell is then reported with its line; a row with any
    other text is a header (``id,0,1,2``, ``sample,400,410``). One reading
    is ambiguous: an empty first cell before integers, ``,1,2``, is the
    header ``DataFrame.to_csv`` writes above an index column (its column
    labels are integers), and is taken as one; before other numbers
    (``,2.5,3``) it is a row of data with its first value missing.
    """
    names = [field.strip() for field in fields]
    if all(_is_number(name) or name.lower() in _MISSING for name in names):
        rest = names[1:]
        return bool(rest) and names[0] == "" and all(_is_integer(name) for name in rest)
    return True


def _is_integer(text):
    try:
        int(text)
    except ValueError:
        return False
    return True


def _read_text(path, delimiter):
    """Read a .csv/.tsv file of numbers, under a header when its first row names the columns."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    header = None
    skip = 0
    width = None  # the first data row's fields, under a header
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                fields = next(csv.reader([line], delimiter=delimiter))
                if header is not None:
                    width = len(fields)
                    break
                if not _is_header(fields):
                    skip = number - 1
                    break
                header = [field.strip() for field in fields]
                skip = number
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (it is not UTF-8)") from None
    if width is not None and width != len(header):
        # np.loadtxt would read the header's columns of longer rows and drop the rest.
        raise UsageError(
            f"{path}: malformed {kind}: the header has {len(header)} fields but the rows "
            f"have {width}"
        )

    usecols = None
    if header is not None and len(header) > 1 and header[0] == "":
        # pandas' to_csv writes the index as a first column with an empty name.
        usecols = range(1, len(header))
        header = header[1:]
        print(
            f"fastmix: {path}: the first column has an empty header name (a pandas index, "
            "as DataFrame.to_csv writes it): it is not used as a feature",
            file=sys.stderr,
            flush=True,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data": checked below
        try:
            X = np.loadtxt(
                path,
                delimiter=delimiter,
                skiprows=skip,
                ndmin=2,
                dtype=np.float64,
                encoding="utf-8-sig",
                quotechar='"',
                usecols=usecols,
            )
        except ValueError as exc:
            index = usecols is not None
            raise UsageError(
                _text_error(path, kind, delimiter, header, skip, exc, index)
            ) from None
    if X.shape[0] == 0:
        raise UsageError(f"{path}: malformed {kind}: no rows of numbers")
    finite = np.isfinite(X)
    if not finite.all():
        row, j = (int(v) for v in np.argwhere(~finite)[0])
        column = j + 1 + (usecols is not None)  # in the file, index column included
        named = f" ({header[j]!r})" if header else ""
        raise UsageError(
            f"{path}: line {_data_line(path, skip, row)}, column {column}{named} is "
            f"{float(X[row, j])!r}: the data must be finite"
        )
    if header is not None and len(header) != X.shape[1]:
        raise UsageError(
            f"{path}: malformed {kind}: the header has {len(header)} fields but the rows "
            f"have {X.shape[1]}"
        )
    return X, header


def _data_line(path, skip, row):
    """The file line number of data row ``row`` (comments and blank lines skipped)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            if number <= skip or not line.split("#", 1)[0].strip():
                continue
            if row == 0:
                return number
            row -= 1
    return "?"


def _text_error(path, kind, delimiter, header, skip, exc, index_column=False):
    """One line saying which line and column of a .csv/.tsv file is wrong.

    Only on the error path: the file is scanned again line by line (``#``
    comments and blank lines skipped, as ``np.loadtxt`` does) for the first
    line whose number of fields differs from the first data line's or whose
    field is not a number. With ``index_column`` the first field (a pandas
    index, not read) may be anything, and ``header`` names the columns after it.
    """
    first = 2 if index_column else 1  # the file column of header[0]
    width = None
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            content = line.split("#", 1)[0]
            if number <= skip or not content.strip():
                continue
            fields = next(csv.reader([content.rstrip("\r\n")], delimiter=delimiter))
            if width is None:
                width = len(fields)
            elif len(fields) != width:
                return (
                    f"{path}: malformed {kind}: line {number} has {len(fields)} fields, "
                    f"the lines before it {width}"
                )
            for column, value in enumerate(fields, start=1):
                if _is_number(value) or column < first:
                    continue
                j = column - first
                named = f" ({header[j]!r})" if header and j < len(header) else ""
                if not value.strip():
                    return (
                        f"{path}: malformed {kind}: line {number}, column {column}{named} is empty"
                    )
                hint = ""
                if any(sep in value for sep in ",;\t|" if sep != delimiter):
                    name = "a tab" if delimiter == "\t" else repr(delimiter)
                    hint = (
                        f" (the delimiter of a {_delimiter_extension(delimiter)} file is {name})"
                    )
                return (
                    f"{path}: column {column}{named} is not numeric: {value!r} on line {number}"
                    f"{hint}"
                )
    message = " ".join(str(exc).split()).split("; use `usecols`")[0]
    return f"{path}: malformed {kind} ({message})"


def _delimiter_extension(delimiter):
    return next(ext for ext, d in TEXT_DELIMITERS.items() if d == delimiter)


def _raw_readings(size, n_columns):
    """The ``--shape N,D --dtype T`` readings a raw file of ``size`` bytes allows."""
    readings = []
    for name in ("float64", "float32"):
        row_bytes = n_columns * np.dtype(name).itemsize
        if size and size % row_bytes == 0:
            readings.append(f"--shape {size // row_bytes},{n_columns} --dtype {name}")
    if not readings:
        return f"; its size is not a whole number of {n_columns}-column rows of either dtype"
    return "; with " + f"{n_columns} columns it reads as " + " or as ".join(readings)


def _read_raw(path, shape, dtype):
    n_rows, n_columns = shape
    size = os.path.getsize(path)
    if dtype is None:
        # A float64 file of N rows is byte for byte a float32 file of 2N rows:
        # guessing the dtype from the size would fit nonsense without a word.
        raise UsageError(
            f"{path}: a raw binary file needs --dtype float32 or --dtype float64 with "
            f"--shape (its bytes do not say which){_raw_readings(size, n_columns)}"
        )
    dtype = np.dtype(dtype)
    expected = n_rows * n_columns * dtype.itemsize
    if size != expected:
        raise UsageError(
            f"{path}: wrong --shape: the file has {size:,} bytes but --shape "
            f"{n_rows},{n_columns} of {dtype.name} needs {expected:,}"
            f"{_raw_readings(size, n_columns)}"
        )
    return np.memmap(path, dtype=dtype, mode="r", shape=(n_rows, n_columns))


def read_data(path, key=None, shape=None, dtype=None):
    """Read a data file the way ``fastmix fit`` and ``fastmix predict`` do.

    :func:`read_table` without the column names.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` (memory-mapped), ``.npz`` (one array of the archive),
        ``.csv`` or ``.tsv`` (numbers only, delimiter from the extension; a
        first row that is not all numbers is a header and skipped), or, with
        ``shape``, a raw binary file of ``dtype`` values in row-major order
        (memory-mapped), whatever its extension.
    key : str, optional
        The array of a ``.npz`` archive; its first array when omitted.
    shape : tuple of two int, optional
        ``(n_rows, n_columns)`` of a raw binary file; the file's size must be
        exactly ``n_rows * n_columns * itemsize``.
    dtype : {'float64', 'float32'}, optional
        The element type of a raw binary file (required with ``shape``: the
        bytes do not say it); for the other formats the data are converted
        to it (in memory).

    Returns
    -------
    X : ndarray or numpy.memmap of shape (n_rows, n_columns)
        float32 or float64; a 1-d array is read as one column. ``.npy`` and
        raw files come back as read-only memmaps, which the estimators stream.

    Raises
    ------
    UsageError
        When the file is missing, its extension unknown (without ``shape``),
        its content malformed or not numeric, or ``shape`` does not match it
        or comes without ``dtype``.
    """
    return read_table(path, key=key, shape=shape, dtype=dtype)[0]


def read_table(path, key=None, shape=None, dtype=None):
    """Read a data file and the names of its columns, as :func:`read_data`.

    Parameters
    ----------
    path, key, shape, dtype
        As for :func:`read_data`.

    Returns
    -------
    X : ndarray or numpy.memmap of shape (n_rows, n_columns)
        As :func:`read_data` returns it.
    names : list of str or None
        The header of a ``.csv``/``.tsv`` file when its fields are distinct
        non-empty names (what scikit-learn keeps as ``feature_names_in_``);
        None for the other formats and for a file without such a header.
    """
    path = os.fspath(path)
    check_input_file(path, "DATA")
    names = None
    ext = extension(path)
    if shape is not None:
        if ext in DATA_EXTENSIONS:
            raise UsageError(
                f"--shape is for raw binary files; a {ext} file carries its own shape"
            )
        return _read_raw(path, shape, dtype), None
    if key is not None and ext != ".npz":
        raise UsageError(f"--key is for .npz archives, not {ext or 'extension-less'} files")
    if ext == ".npy":
        X = _read_npy(path)
    elif ext == ".npz":
        X = _read_npz(path, key)
    elif ext in TEXT_DELIMITERS:
        X, names = _read_text(path, TEXT_DELIMITERS[ext])
        if names is not None and (not all(names) or len(set(names)) != len(names)):
            names = None
    else:
        shown = f"extension {ext!r}" if ext else "a file without an extension"
        raise UsageError(
            f"{path}: unknown {shown}; expected .npy, .npz, .csv or .tsv, or a raw binary "
            "file with --shape N,D and --dtype"
        )
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise UsageError(f"{path}: expected a 2-d array (rows x features), got shape {X.shape}")
    X = _as_numeric(X, path)
    if dtype is not None and X.dtype != np.dtype(dtype):
        X = np.asarray(X, dtype=dtype)
    return X, names


@contextlib.contextmanager
def naming_non_finite(X, path):
    """Name the first NaN or infinity of DATA when the estimators refuse one.

    ``.npy``, ``.npz`` and raw files are not scanned when read (a memmap is
    streamed; ``--online`` reads it ``--passes`` times and no more):
    scikit-learn's message for them named neither the row nor the column,
    and pointed at imputers. Only when it is raised is ``X`` scanned, a
    block of rows at a time, for the place.
    """
    try:
        yield
    except ValueError as exc:
        text = str(exc)
        if "contains NaN" not in text and "contains infinity" not in text:
            raise
        found = _first_non_finite(X)
        if found is None:
            raise
        row, column, value = found
        raise UsageError(
            f"{path}: row {row + 1:,}, column {column + 1} is {value!r}: the data must be "
            "finite (drop or impute those rows first)"
        ) from None


def _first_non_finite(X, block=1 << 16):
    """``(row, column, value)`` of X's first non-finite value, or None."""
    for start in range(0, X.shape[0], block):
        chunk = np.asarray(X[start : start + block])
        bad = ~np.isfinite(chunk)
        if bad.any():
            row, column = (int(v) for v in np.argwhere(bad)[0])
            return start + row, column, float(chunk[row, column])
    return None


def read_weights(path, n_samples):
    """The --sample-weight file as a 1-d float64 array of n_samples weights."""
    check_input_file(path, "--sample-weight")
    if extension(path) not in DATA_EXTENSIONS:
        raise UsageError(
            f"--sample-weight {path}: unknown extension; expected .npy, .npz, .csv or .tsv"
        )
    weights = read_data(path)
    if weights.shape[1] != 1:
        raise UsageError(
            f"--sample-weight {path}: expected one column of weights, got {weights.shape[1]}"
        )
    weights = np.asarray(weights[:, 0], dtype=np.float64)
    if weights.shape[0] != n_samples:
        raise UsageError(
            f"--sample-weight {path}: {weights.shape[0]:,} weights for {n_samples:,} rows "
            "of DATA; give one weight per row"
        )
    return weights


def keep_feature_names(model, names):
    """Give a model fitted from a file with a header its names, as a DataFrame would.

    Set after everything the CLI computes with the model on the (nameless)
    array, so scikit-learn does not warn about feature names meanwhile.
    """
    if names is not None:
        model.feature_names_in_ = np.asarray(names, dtype=object)


def check_feature_names(model, names, data_path, model_path):
    """Refuse DATA whose header names differ from the model's feature names.

    A file without a header is taken column by column, as an array is.
    """
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None or names is None or list(fitted) == list(names):
        return
    shown = ", ".join(map(repr, names[:6])) + (", ..." if len(names) > 6 else "")
    expected = ", ".join(map(repr, fitted[:6])) + (", ..." if len(fitted) > 6 else "")
    raise UsageError(
        f"{data_path}: the header names ({shown}) are not the feature names the model "
        f"{model_path} was fitted with ({expected}); reorder or rename the columns"
    )
