"""Shared test data, fixtures and helpers.

Plain functions and constants are imported by the test modules with
``from conftest import ...`` (pytest puts tests/ on ``sys.path``, as it does for
``import reference``); the fixtures are found by name. Every data generator takes
its seed as an argument and draws from its own random state, so a dataset is a
function of its arguments only.
"""

import copy
import json
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import numba
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import fastmix

COV_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def sklearn_blobs(n, d=3, k=3, seed=0, std=1.0):
    """scikit-learn's ``make_blobs``: ``n`` rows in ``d`` features around ``k``
    centres, ``std`` the cluster standard deviation."""
    X, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=std, random_state=seed)
    return X


def three_blobs(
    n_per=40,
    n_features=3,
    seed=0,
    spread=5.0,
    scales=(0.5, 1.5, 2.5),
    shuffle=False,
    dtype=np.float64,
    return_centres=False,
):
    """Three round clusters of ``n_per`` rows each (``RandomState(seed)``).

    Centres ``spread * N(0, 1)``, cluster ``k`` with standard deviation
    ``scales[k]``; the rows stacked cluster by cluster, or in a random order
    with ``shuffle``; returned in ``dtype`` (with the centres if asked).
    """
    rng = np.random.RandomState(seed)
    centres = spread * rng.randn(3, n_features)
    X = np.vstack([centres[k] + scales[k] * rng.randn(n_per, n_features) for k in range(3)])
    if shuffle:
        X = X[rng.permutation(len(X))]
    X = X.astype(dtype)
    return (X, centres) if return_centres else X


def skewed_blobs(seed=0, n_per=80, separation=4.0, n_features=3):
    """Three correlated clusters of ``n_per`` rows (``RandomState(seed)``): centres
    ``separation * N(0, 1)``, scales 0.6, 1 and 1.4, each cluster sheared by its
    own random upper-triangular matrix."""
    rng = np.random.RandomState(seed)
    centres = separation * rng.randn(3, n_features)
    scales = [0.6, 1.0, 1.4]
    parts = [
        centres[i]
        + scales[i]
        * rng.randn(n_per, n_features)
        @ np.triu(rng.rand(n_features, n_features) * 0.5 + np.eye(n_features))
        for i in range(3)
    ]
    return np.vstack(parts)


def sheared_blobs(n_per=60, n_features=4, seed=0, dtype=np.float64):
    """Three clusters of ``n_per`` rows (``RandomState(seed)``): centres
    ``6 N(0, 1)``, each cluster ``N(0, I) @ (I + 0.4 N(0, 1))`` with a dense shear."""
    rng = np.random.RandomState(seed)
    centres = 6.0 * rng.randn(3, n_features)
    mix = rng.randn(3, n_features, n_features) * 0.4 + np.eye(n_features)
    X = np.vstack([centres[i] + rng.randn(n_per, n_features) @ mix[i] for i in range(3)])
    return X.astype(dtype)


def labelled_blobs(
    seed, n_samples, n_features=None, n_clusters=None, spread=5.0, *, centres=None, noise=1.0
):
    """``n_samples`` rows, each at a uniformly drawn centre plus ``N(0, noise^2)``
    (``default_rng(seed)``). The centres are ``N(0, spread^2)`` of shape
    ``(n_clusters, n_features)``, drawn first, unless fixed ``centres`` are given."""
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = rng.normal(0.0, spread, (n_clusters, n_features))
    centres = np.asarray(centres, dtype=np.float64)
    labels = rng.integers(0, len(centres), n_samples)
    return centres[labels] + rng.normal(scale=noise, size=(n_samples, centres.shape[1]))


def explicit_init(covariance_type, X, n_components=3):
    """A deliberately rough start: rows 0..K-1 of ``X`` as means, equal weights,
    identity precisions."""
    n_features = X.shape[1]
    precisions = {
        "full": np.tile(np.eye(n_features), (n_components, 1, 1)),
        "tied": np.eye(n_features),
        "diag": np.ones((n_components, n_features)),
        "spherical": np.ones(n_components),
    }[covariance_type]
    return dict(
        weights_init=np.full(n_components, 1.0 / n_components),
        means_init=np.asarray(X[:n_components], dtype=np.float64),
        precisions_init=precisions,
    )


def vi_prior(model):
    """A fitted BayesianGaussianMixture's priors as tests/reference_vi.py takes them."""
    return dict(
        prior_type=model.weight_concentration_prior_type,
        gamma=model.weight_concentration_prior_,
        beta0=model.mean_precision_prior_,
        m0=model.mean_prior_,
        nu0=model.degrees_of_freedom_prior_,
        cov0=model.covariance_prior_,
    )


def vi_posterior(model):
    """A fitted BayesianGaussianMixture's posterior as tests/reference_vi.py writes it."""
    names = ("weight_concentration", "mean_precision", "means", "degrees_of_freedom")
    return {name: getattr(model, name + "_") for name in (*names, "covariances")}


# --------------------------------------------------------------------------
# fitting and threads
# --------------------------------------------------------------------------
def gap_threshold(resp, low=1e-7, high=1e-3):
    """A ``min_responsibility`` in ``[low, high]`` far from every entry of ``resp``.

    The geometric middle of the widest ratio between consecutive distinct
    values there, so that rounding in the kernels (float32's included) cannot
    move an entry across it.
    """
    v = np.unique(resp[(resp > low) & (resp < high)])
    i = int(np.argmax(v[1:] / v[:-1]))
    assert v[i + 1] / v[i] > 1.01, "no gap wide enough for a rounding-proof threshold"
    return float(np.sqrt(v[i] * v[i + 1]))


def fit_quiet(model, X, **kw):
    """``model.fit(X, **kw)`` with ConvergenceWarning silenced; returns the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, **kw)


def read_only(value):
    """A read-only copy of an array, or of each array of a tuple (the sticks);
    anything else as it is."""
    if isinstance(value, tuple):
        return tuple(read_only(v) for v in value)
    if not isinstance(value, np.ndarray):
        return value
    value = value.copy()
    value.flags.writeable = False
    return value


def frozen_copy(model):
    """A copy of a fitted model whose fitted arrays are read-only (as memory-mapped ones are)."""
    frozen = copy.copy(model)
    for name, value in vars(model).items():
        if name.endswith("_") and isinstance(value, (np.ndarray, tuple)):
            setattr(frozen, name, read_only(value))
    return frozen


def record_takes(monkeypatch, source_cls):
    """Spy on ``source_cls.take`` (the initialisation's sample of rows): returns
    the list that gets the number of rows of every call."""
    taken = []
    take = source_cls.take

    def recording_take(self, rows):
        out = take(self, rows)
        taken.append(len(out[0]))
        return out

    monkeypatch.setattr(source_cls, "take", recording_take)
    return taken


@contextmanager
def single_thread(blas=True):
    """One numba thread (and, with ``blas``, one BLAS thread); the previous
    numba thread count is restored on exit."""
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        if blas:
            with threadpool_limits(limits=1):
                yield
        else:
            yield
    finally:
        numba.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _children_import_the_fastmix_under_test():
    """Every child Python (``python -m fastmix``, ``-c`` scripts) imports the
    fastmix these tests import.

    ``python -m pytest`` in a checkout imports the checkout's fastmix, while a
    child started in another folder would import the installed copy: other
    code (stale in a non-editable install), with its own numba cache, which a
    fresh install compiles a second time (the demo test alone paid 70 s).
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastmix.__file__)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        )
        yield


@pytest.fixture(scope="module")
def one_thread():
    """For modules that check numbers, not speed (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): one numba thread and one BLAS
    thread keep many tiny fits fast on a shared 2-core machine (parallel
    launches and spinning BLAS threads dominate tiny problems under load)."""
    with single_thread():
        yield


@pytest.fixture(scope="module")
def one_numba_thread():
    """One numba thread for a module; BLAS left as it is."""
    with single_thread(blas=False):
        yield


# --------------------------------------------------------------------------
# sufficient statistics
# --------------------------------------------------------------------------
STATS_FIELDS = (
    "nk",
    "s1",
    "s2_mat",
    "s2_diag",
    "sum_w",
    "sum_wlogp",
    "sum_wrlogr",
    "shift",
    "n_rows",
    "row_sum",
)
# What tests/reference.py's stats_from_resp gives to compare against (no
# log-likelihood terms; its row_sum is compared only where fastmix keeps one).
REFERENCE_RESP_FIELDS = ("nk", "s1", "s2_mat", "s2_diag", "sum_w")
# tests/reference.py calls S2 "s2"; its dicts have no shift or n_rows.
_REFERENCE_NAMES = {"s2_mat": "s2"}


def assert_stats_close(
    actual, expected, rtol, atol=0.0, *, scale=None, fields=STATS_FIELDS, err_msg=""
):
    """Assert that each of ``fields`` (default: every field) of the
    ``fastmix._stats.Stats`` ``actual`` equals ``expected``'s within tolerance.

    ``expected`` is another ``Stats`` or a dict of tests/reference.py (``s2``
    for ``s2_mat``). Entry by entry, in float64, with the same shapes::

        |actual - expected| <= rtol * s + atol

    where ``s`` is ``scale[field]`` when ``scale`` (the reference's error
    scales: sums of absolute terms) has the field, else ``|expected|``.
    ``atol`` is a number or a dict from field to number (missing fields: 0).
    A field that is None (``row_sum``) must be None on both sides.
    """
    for name in fields:
        key = _REFERENCE_NAMES.get(name, name)
        got = getattr(actual, name)
        want = expected[key] if isinstance(expected, Mapping) else getattr(expected, name)
        what = f"{err_msg} {name}".strip()
        if got is None or want is None:
            assert got is None and want is None, f"{what}: {got!r} against {want!r}"
            continue
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        assert got.shape == want.shape, (got.shape, want.shape, what)
        if scale is not None and key in scale:
            s = np.broadcast_to(np.asarray(scale[key], dtype=np.float64), want.shape)
        else:
            s = np.abs(want)
        bound = rtol * s + (atol.get(name, 0.0) if isinstance(atol, Mapping) else atol)
        err = np.abs(got - want)
        bad = ~(err <= bound)  # NaN fails
        if bad.any():
            first = tuple(np.argwhere(bad)[0])
            raise AssertionError(
                f"{what}: {np.count_nonzero(bad)} of {bad.size} entries beyond rtol * scale "
                f"+ atol; first at {first}: actual {got[first]!r}, expected {want[first]!r}, "
                f"bound {bound[first]:.3g}"
            )


# --------------------------------------------------------------------------
# subprocesses
# --------------------------------------------------------------------------
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(script, *args, env=None, timeout=300):
    """Run ``script`` in a fresh interpreter on the fastmix under test: its last line, JSON.

    ``env`` entries are added to the environment (threading layers, cache
    directories: settings numba reads once per process). Fails with the
    child's stderr when it exits non-zero, dies on a signal or times out.
    """
    full_env = dict(os.environ, **(env or {}))  # PYTHONPATH: the fixture above
    # A file, not ``-c``: spawn and forkserver workers import the parent's __main__.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "script.py")
        with open(path, "w") as f:
            f.write(script)
        return _run_file(path, args, full_env, timeout)


def _run_file(path, args, full_env, timeout):
    try:
        proc = subprocess.run(
            [sys.executable, path, *args],
            env=full_env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"subprocess timed out after {timeout} s: {exc.stderr}")
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
