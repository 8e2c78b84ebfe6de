"""The integrated completed likelihood, ``GaussianMixture.icl`` (issue 13, item 2).

``icl(X) = bic(X) + 2 * entropy of the responsibilities``, the log-likelihood
and the entropy from one streaming pass; pinned to the dense NumPy reference
(tests/reference.py::icl) and to ``bic`` on perfectly separated data.
"""

import os

import numpy as np
import pytest
import reference as ref
from conftest import COV_TYPES, explicit_init, fit_quiet, three_blobs

from fastmix import GaussianMixture


def overlapping_fit(covariance_type):
    """Three overlapping clusters, a few EM steps from a rough start."""
    X = three_blobs(n_per=50, n_features=3, seed=3, spread=1.5, shuffle=True)
    model = GaussianMixture(
        3, covariance_type=covariance_type, max_iter=5, tol=0, **explicit_init(covariance_type, X)
    )
    return fit_quiet(model, X), X


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_icl_matches_reference(covariance_type):
    gm, X = overlapping_fit(covariance_type)
    want = ref.icl(
        X, gm.weights_, gm.means_, gm.precisions_cholesky_, covariance_type, gm._n_parameters()
    )
    assert gm.icl(X) == pytest.approx(want, rel=1e-10)
    # Overlapping clusters: a clearly positive entropy term.
    assert gm.icl(X) - gm.bic(X) > 1.0


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_icl_at_least_bic_equal_when_separated(covariance_type):
    gm, X = overlapping_fit(covariance_type)
    held_out = three_blobs(n_per=20, n_features=3, seed=4, spread=1.5)
    for data in (X, held_out):
        assert gm.icl(data) >= gm.bic(data)

    # Clusters 1e4 apart with unit spread: every responsibility is exactly 0 or 1.
    X = three_blobs(n_per=30, n_features=2, seed=1, spread=1e4, scales=(1.0, 1.0, 1.0))
    gm = fit_quiet(GaussianMixture(3, covariance_type=covariance_type, random_state=0), X)
    resp = gm.predict_proba(X)
    assert np.all((resp == 0.0) | (resp == 1.0))
    assert gm.icl(X) == pytest.approx(gm.bic(X), rel=1e-12, abs=1e-9)


def test_icl_on_memmap_and_dask(tmp_path):
    gm, X = overlapping_fit("full")
    path = os.fspath(tmp_path / "x.npy")
    np.save(path, X)
    M = np.load(path, mmap_mode="r")
    assert isinstance(M, np.memmap)
    # The same statistics whatever the block length: bitwise the in-memory value.
    assert gm.icl(M) == gm.icl(X)

    da = pytest.importorskip("dask.array")
    assert gm.icl(da.from_array(X, chunks=(40, 3))) == pytest.approx(gm.icl(X), rel=1e-12)


def test_icl_rejects_non_finite_rows_from_any_source(tmp_path):
    gm, X = overlapping_fit("diag")
    X = X.copy()
    X[7, 1] = np.nan
    path = os.fspath(tmp_path / "bad.npy")
    np.save(path, X)
    with pytest.raises(ValueError, match="NaN"):
        gm.icl(np.load(path, mmap_mode="r"))
    with pytest.raises(ValueError, match="NaN"):
        gm.icl(X)
    da = pytest.importorskip("dask.array")
    # A dask array's check runs only when its result is computed: icl
    # returned NaN here before.
    with pytest.raises(ValueError, match="NaN"):
        gm.icl(da.from_array(X, chunks=(40, 3)))


def test_icl_float32_close_to_float64():
    gm, X = overlapping_fit("full")
    gm32 = fit_quiet(
        GaussianMixture(3, max_iter=5, tol=0, **explicit_init("full", X)), X.astype(np.float32)
    )
    assert isinstance(gm32.icl(X.astype(np.float32)), float)
    assert gm32.icl(X.astype(np.float32)) == pytest.approx(gm.icl(X), rel=1e-4)
