"""Determinism: the same seed gives bitwise the same model on 1 thread or 2.

numba fixes its thread count at import, so each setting runs in its own
subprocess (``NUMBA_NUM_THREADS`` in the environment); one subprocess fits every
covariance type, float64 and float32, with and without sample weights, and
prints sha256 hashes of the fitted arrays' bytes and of the prediction outputs.
"""

import json
import os
import subprocess
import sys

import pytest

# 5000 rows are ten kernel chunks of 512 rows: enough for the chunks to be
# spread over both threads and summed, which is what must not depend on the
# thread count. Small calls normally run on the calling thread; the script
# switches that off so the parallel kernels are what is compared.
SCRIPT = r"""
import hashlib, json, warnings

import numba
import numpy as np
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

import fastmix._sources._driver
from fastmix import GaussianMixture

fastmix._sources._driver._SERIAL_WORK = 0

X, _ = make_blobs(n_samples=5000, n_features=4, centers=3, cluster_std=2.0, random_state=0)
weights = np.random.RandomState(1).uniform(0.0, 3.0, X.shape[0])


def digest(a):
    a = np.ascontiguousarray(a)
    return a.dtype.str + ":" + hashlib.sha256(a.tobytes()).hexdigest()


out = {"threads": numba.get_num_threads(), "fits": {}}
for covariance_type in ("full", "tied", "diag", "spherical"):
    for dtype in ("float64", "float32"):
        for weighted in (False, True):
            Xd = X.astype(dtype)
            gm = GaussianMixture(
                3, covariance_type=covariance_type, tol=0.0, max_iter=8, random_state=0
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                labels = gm.fit_predict(Xd, sample_weight=weights if weighted else None)
            key = f"{covariance_type}-{dtype}-{'weighted' if weighted else 'unweighted'}"
            out["fits"][key] = {
                "weights_": digest(gm.weights_),
                "means_": digest(gm.means_),
                "covariances_": digest(gm.covariances_),
                "precisions_cholesky_": digest(gm.precisions_cholesky_),
                "lower_bound_": repr(float(gm.lower_bound_)),
                "lower_bounds_": repr([float(v) for v in gm.lower_bounds_]),
                "n_iter_": gm.n_iter_,
                "fit_predict": digest(labels),
                "score_samples": digest(gm.score_samples(Xd)),
                "predict_proba": digest(gm.predict_proba(Xd)),
            }
print(json.dumps(out))
"""


def _run(n_threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n_threads))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_fit_is_bitwise_identical_on_1_and_2_threads():
    one = _run(1)
    two = _run(2)
    assert one["threads"] == 1
    assert two["threads"] == 2
    assert len(one["fits"]) == 16
    assert one["fits"].keys() == two["fits"].keys()
    mismatches = [
        (key, name)
        for key, fit in one["fits"].items()
        for name, value in fit.items()
        if two["fits"][key][name] != value
    ]
    assert not mismatches
    # The hashes compare something: the fits differ between settings.
    assert len({fit["means_"] for fit in one["fits"].values()}) == 16
