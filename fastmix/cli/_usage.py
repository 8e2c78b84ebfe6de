"""What counts as a user's mistake: :class:`UsageError` and the checks that raise it.

A usage error is reported by :func:`fastmix.cli.main` as one line on stderr
with exit status 2, never as a traceback. The checks of paths and of the
optional extras live here because every command needs some of them.
"""

import importlib
import os
import sys
import tempfile

# scikit-learn's four: what `bench` compares against scikit-learn.
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
# Every type fastmix fits (`fit`, `demo`).
FIT_COVARIANCE_TYPES = (*COVARIANCE_TYPES, "tied-diagonal", "tied-spherical")
DTYPES = ("float64", "float32")
PLOT_EXTRA_HINT = 'install matplotlib with: pip install "fastmix[plot]"'
CLI_EXTRA_HINT = 'install tqdm with: pip install "fastmix[cli]"'


class UsageError(Exception):
    """A mistake in the command line, reported as one line with exit status 2."""


def have(module):
    """Whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def require_matplotlib(option):
    """Fail when ``option`` asks for a picture and matplotlib is not installed."""
    if not have("matplotlib"):
        raise UsageError(f"{option} needs matplotlib; {PLOT_EXTRA_HINT}")


def extension(path):
    """The lower-case extension of ``path``, with its dot (``''`` when none)."""
    return os.path.splitext(os.fspath(path))[1].lower()


def check_input_file(path, what):
    """Fail unless ``path`` is an existing file; ``what`` names it in the message."""
    if not os.path.exists(path):
        raise UsageError(f"{what} {path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{what} {path}: is a folder, not a file")


def check_output(path, option, extensions=None):
    """Fail before the work when an output cannot be written where asked."""
    path = os.fspath(path)
    if not path:
        raise UsageError(f"{option}: the path is empty; give a file name")
    if extensions is not None and extension(path) not in extensions:
        raise UsageError(f"{option} {path}: unknown extension; expected {', '.join(extensions)}")
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    check_writable_folder(folder, f"{option} {path}")


def check_writable_folder(folder, what):
    """Fail unless a file can be created in ``folder``: by trying, as the write will.

    ``os.access`` answers yes to root on a read-only file system, and every
    output is written to a temporary file in its folder, then renamed.
    """
    try:
        fd, probe = tempfile.mkstemp(prefix=".fastmix-probe-", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"{what}: cannot write in the folder {folder} ({reason}); choose another place"
        ) from None
    os.close(fd)
    os.unlink(probe)


def streams(out, err):
    """The report and error streams of a command: those given, else stdout and stderr."""
    return (sys.stdout if out is None else out), (sys.stderr if err is None else err)
