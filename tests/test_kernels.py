"""Pin fastmix's E-step kernels and closed-form updates to tests/reference.py.

Every comparison goes through ``reference.assert_close`` with the dtype's
entry of ``reference.TOL`` and an error scale (a sum of absolute terms) from
the reference, so a statistic that cancels to nearly zero is still checked to
the accuracy its terms allow.
"""

import numba
import numpy as np
import pytest
import reference as ref
from conftest import COV_TYPES, REFERENCE_RESP_FIELDS, assert_stats_close, gap_threshold
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture._gaussian_mixture import (
    _compute_precision_cholesky,
    _estimate_gaussian_parameters,
    _estimate_log_gaussian_prob,
)

from fastmix import GaussianMixture, _numba
from fastmix._kernels import (
    DIAG,
    FULL,
    TIED,
    estep,
    estep_rows,
    estep_rows_serial,
    estep_stats,
    estep_stats_serial,
)
from fastmix._sources import CHUNK_ROWS, estep_outputs, estep_pass
from fastmix._stats import COV_CODES, KernelParams, Stats, stats_from_resp
from fastmix._update import (
    diag_gaussian_update,
    gaussian_parameters,
    kernel_params,
    log_det_cholesky,
    precision_cholesky,
    precision_cholesky_from_precisions,
    precisions_from_cholesky,
)
from fastmix._variational import moments_from_stats

DTYPES = [np.float64, np.float32]
ids_dtype = {np.float64: "f64", np.float32: "f32"}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def problem(seed, covariance_type, dtype, **kw):
    """Data in ``dtype`` and the model as a ``dtype`` estimator holds it."""
    X, log_w, means, prec_chol = ref.random_problem(seed, covariance_type, **kw)
    X = X.astype(dtype)
    means, prec_chol = ref.round_model(means, prec_chol, dtype)
    params = kernel_params(means, prec_chol, covariance_type, log_w, dtype)
    return X, log_w, means, prec_chol, params


def reference_stats(X, sample_weight, log_w, means, prec_chol, covariance_type, params):
    return ref.estep_stats(
        X, sample_weight, log_w, means, prec_chol, covariance_type, shift=params.shift
    )


def weights_with_zeros(n, seed):
    """Positive non-integer weights with about a fifth of them exactly zero."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 3.0, size=n)
    w[rng.random(n) < 0.2] = 0.0
    return w


# --------------------------------------------------------------------------
# estep_stats through estep_pass
# --------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_pass_matches_reference(covariance_type, dtype, weighted):
    # 1100 rows: two full 512-row chunks and a partial one.
    X, log_w, means, pc, params = problem(
        0, covariance_type, dtype, n_samples=1100, n_features=4, n_components=3
    )
    w = weights_with_zeros(len(X), 1) if weighted else None
    stats = estep_pass(X, w, params)
    want = reference_stats(X, w, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    np.testing.assert_array_equal(stats.shift, params.shift.astype(np.float64))
    # The lower bound EM reports is the weighted mean log-likelihood.
    ref.assert_close(
        stats.sum_wlogp / stats.sum_w,
        ref.log_likelihood(X, w, log_w, means, pc, covariance_type),
        dtype,
        want["scale"]["sum_wlogp"] / want["sum_w"],
    )


@pytest.mark.parametrize(
    "n_features, n_components",
    [(1, 3), (2, 3), (5, 3), (7, 3), (8, 3), (9, 3), (16, 3), (17, 3), (3, 1), (5, 6), (9, 9)],
)
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_matches_reference_for_any_feature_count(
    covariance_type, dtype, n_features, n_components
):
    """The full kernel works in 4 x 4 feature blocks over 128-row tiles: feature
    counts below, at and between multiples of 4 (zero padding, off-diagonal
    blocks) and a partial last chunk and tile (600 = 512 + 88 rows). The
    component counts 1, 6 and 9 leave a remainder after the kernels' groups of
    4 components."""
    X, log_w, means, pc, params = problem(
        11, covariance_type, dtype, n_samples=600, n_features=n_features, n_components=n_components
    )
    w = weights_with_zeros(len(X), 12)
    stats = estep_pass(X, w, params)
    want = reference_stats(X, w, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    out = estep_outputs(X, params, want_resp=True)
    assert_rows_match(out, X, log_w, means, pc, covariance_type, params, dtype)


@pytest.mark.parametrize(
    "n_samples, chunk_rows, rows_per_block",
    [
        (101, 512, None),  # n < chunk
        (101, 1, None),  # one row per chunk
        (101, 1, 3),  # ... and 34 kernel calls
        (101, 7, 20),  # n, block and chunk mutually non-multiples
        (101, 7, 7),  # one chunk per block
        (1024, 512, 512),  # n a multiple of the chunk, two blocks
    ],
)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_pass_chunk_boundaries(covariance_type, n_samples, chunk_rows, rows_per_block):
    dtype = np.float64
    X, log_w, means, pc, params = problem(
        2, covariance_type, dtype, n_samples=n_samples, n_features=3, n_components=4
    )
    w = weights_with_zeros(n_samples, 3)
    stats = estep_pass(X, w, params, chunk_rows=chunk_rows, rows_per_block=rows_per_block)
    want = reference_stats(X, w, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_pass_leaves_out_responsibilities_below_min_resp(covariance_type, dtype):
    """``min_resp`` drops the responsibilities below it from nk, s1 and S2 (not
    from the log-likelihood or sum r log r). Chosen so that the first chunk has
    components above and below the diagonal moments' sparse share (1/8 of its
    rows): both of their paths run, and a partial last chunk too."""
    X, log_w, means, pc, params = problem(
        1, covariance_type, dtype, n_samples=1100, n_features=8, n_components=12
    )
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    r = np.exp(log_resp)
    params.min_resp = gap_threshold(r)
    kept = (r[:CHUNK_ROWS] >= params.min_resp).sum(axis=0)
    share = estep._SPARSE_SHARE
    assert (kept * share > CHUNK_ROWS).any() and (kept * share <= CHUNK_ROWS).any()
    w = weights_with_zeros(len(X), 2)
    stats = estep_pass(X, w, params)
    want = ref.estep_stats(
        X, w, log_w, means, pc, covariance_type, shift=params.shift, min_resp=params.min_resp
    )
    ref.assert_stats_match(stats, want, dtype)
    exact = ref.estep_stats(X, w, log_w, means, pc, covariance_type, shift=params.shift)
    assert not np.allclose(stats.nk, exact["nk"], rtol=1e-9, atol=0)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="fresh dispatchers: the kernels are compiled")
def test_exact_moments_do_not_compile_the_sparse_path():
    """min_resp None (every exact fit) is its own specialisation, with the
    sparse paths pruned at compile time: ~3 s less of a first fit. A float
    compiles them. Checked on fresh dispatchers of _diag_moments' and
    _full_stats' code."""
    moments = numba.njit(estep._diag_moments.py_func)
    xt, xr, w = np.ones((2, 8)), np.ones((8, 2)), np.ones(8)
    out = (np.zeros(3), np.zeros((3, 2)), np.zeros((3, 2)))
    for sparse in (None, 1e-8):
        moments(xt, xr, w, 8, np.zeros((3, 2)), np.ones((3, 8)), *out, xt, sparse)
    calls = {
        str(sig[-1]): [name in moments.inspect_llvm(sig) for name in ("_split", "_sparse_mom")]
        for sig in moments.signatures
    }
    assert calls == {"none": [False, False], "float64": [True, True]}
    full = numba.njit(estep._full_stats.py_func)
    out = (np.zeros(3), np.zeros((3, 2)), np.zeros((3, 2, 2)))
    for sparse in (None, 1e-8):
        full(xt, w, 8, np.zeros((3, 2)), np.ones((3, 8)), *out, sparse)
    calls = {
        str(sig[-1]): [name in full.inspect_llvm(sig) for name in ("_nonzero_rows", "_packed_mom")]
        for sig in full.signatures
    }
    assert calls == {"none": [False, False], "float64": [True, True]}


STATS_KERNELS = {"parallel": estep_stats, "serial": estep_stats_serial}
ROWS_KERNELS = {"parallel": estep_rows, "serial": estep_rows_serial}


def _kernel_args(params):
    """``params.args()`` as fastmix._numba.launch passes them: read-only arrays (a
    one-component tied centre, broadcast) as writeable views, so no test compiles
    a read-only specialisation (test_numba_policy checks the process has none)."""
    return tuple(_numba.kernel_view(a) for a in params.args())


def raw_stats(kernel, X, w, params, chunk_size):
    """Call a raw statistics kernel on zeroed outputs; returns them as a tuple."""
    n_components, n_features = params.shift.shape
    n_mat = {FULL: n_components, TIED: 1}.get(params.code, 0)
    n_diag = n_components if params.code == DIAG else 0
    out = (
        np.zeros(n_components),
        np.zeros((n_components, n_features)),
        np.zeros((n_mat, n_features, n_features)),
        np.zeros((n_diag, n_features)),
        np.zeros(3),
    )
    kernel(X, w, *_kernel_args(params), params.min_resp_arg(), chunk_size, *out)
    return out


@pytest.mark.parametrize("kernel", STATS_KERNELS)
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_stats_direct_call(covariance_type, dtype, kernel):
    """The raw kernel adds to its outputs, fills only the upper triangle of S2,
    and reads an empty sample_weight as all ones."""
    X, log_w, means, pc, params = problem(
        4, covariance_type, dtype, n_samples=250, n_features=3, n_components=2
    )
    n_components, n_features = means.shape
    code = COV_CODES[covariance_type]
    n_mat = {FULL: n_components, TIED: 1}.get(code, 0)
    n_diag = n_components if code == DIAG else 0
    nk = np.full(n_components, 0.5)
    s1 = np.full((n_components, n_features), 0.25)
    s2_mat = np.zeros((n_mat, n_features, n_features))
    lower = np.tril_indices(n_features, -1)
    s2_mat[:, lower[0], lower[1]] = 7.0  # sentinel: the kernel must not touch it
    s2_diag = np.full((n_diag, n_features), 0.125)
    scal = np.array([1.0, 2.0, 3.0])
    STATS_KERNELS[kernel](X, np.empty(0), *params.args(), None, 13, nk, s1, s2_mat, s2_diag, scal)

    want = reference_stats(X, None, log_w, means, pc, covariance_type, params)
    scale = want["scale"]
    ref.assert_close(nk - 0.5, want["nk"], dtype, scale["nk"], err_msg="nk")
    # Tile-summed in float32 under the diagonal codes only (reference.moments_tol).
    moments = ref.moments_tol(dtype, n_features, n_components) if code == DIAG else None
    ref.assert_close(s1 - 0.25, want["s1"], dtype, scale["s1"], "s1", moments)
    ref.assert_close(s2_diag - 0.125, want["s2_diag"], dtype, scale["s2_diag"], "s2", moments)
    upper = np.triu_indices(n_features)
    ref.assert_close(
        s2_mat[:, upper[0], upper[1]],
        want["s2"][:, upper[0], upper[1]],
        dtype,
        scale["s2"][:, upper[0], upper[1]],
        err_msg="s2 upper",
    )
    np.testing.assert_array_equal(s2_mat[:, lower[0], lower[1]], 7.0)
    got_scal = scal - [1.0, 2.0, 3.0]
    assert got_scal[0] == len(X)
    ref.assert_close(got_scal[1], want["sum_wlogp"], dtype, scale["sum_wlogp"])
    ref.assert_close(got_scal[2], want["sum_wrlogr"], dtype, scale["sum_wrlogr"])


@pytest.mark.parametrize(
    "n_samples, n_features, n_components, chunk_rows",
    [(1000, 3, 3, 64), (1, 1, 1, 64), (513, 6, 5, 7), (4100, 1, 5, 512)],
)
@pytest.mark.parametrize("min_resp", [0.0, 1e-3], ids=["exact", "min_resp"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_serial_twins_and_thread_count_are_bitwise_equal(
    covariance_type, dtype, min_resp, n_samples, n_features, n_components, chunk_rows
):
    """Chunk boundaries and the reduction order depend on n only: the serial
    twins and the parallel kernels on 1 or 2 threads give the same bits, the
    sparse moments of ``min_resp`` included, at awkward shapes too."""
    X, _, _, _, params = problem(
        33, covariance_type, dtype, n_samples=n_samples, n_features=n_features,
        n_components=n_components,
    )  # fmt: skip
    params.min_resp = min_resp
    w = weights_with_zeros(len(X), 34)
    want = raw_stats(estep_stats_serial, X, w, params, chunk_rows)
    n, k = len(X), n_components
    rows_want = (np.empty(n), np.empty(n, np.int64), np.empty((n, k)))
    estep_rows_serial(X, *_kernel_args(params), chunk_rows, *rows_want, False)
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            got = raw_stats(estep_stats, X, w, params, chunk_rows)
            for g, e in zip(got, want, strict=True):
                np.testing.assert_array_equal(g, e, err_msg=f"{threads} threads")
            rows = (np.empty(n), np.empty(n, np.int64), np.empty((n, k)))
            estep_rows(X, *_kernel_args(params), chunk_rows, *rows, False)
            for g, e in zip(rows, rows_want, strict=True):
                np.testing.assert_array_equal(g, e, err_msg=f"{threads} threads")
    finally:
        numba.set_num_threads(before)


# --------------------------------------------------------------------------
# estep_rows through estep_outputs
# --------------------------------------------------------------------------
def assert_rows_match(outputs, X, log_w, means, pc, covariance_type, params, dtype):
    lpn, labels, log_resp = outputs
    want_lpn, want_labels, want_lr = ref.estep_rows(X, log_w, means, pc, covariance_type)
    a = ref.log_density_scale(X, log_w, means, pc, covariance_type, params.shift)
    lpn_scale, lr_scale = ref.row_scales(want_lr, a)
    ref.assert_close(lpn, want_lpn, dtype, lpn_scale, err_msg="log_prob_norm")
    if log_resp is not None:
        ref.assert_close(log_resp, want_lr, dtype, lr_scale, err_msg="log_resp")
    # Labels must agree wherever the top two log-densities are separated by
    # more than their error bound (ties within rounding may go either way).
    wlp = want_lr + want_lpn[:, None]
    top2 = np.sort(wlp, axis=1)[:, -2:] if wlp.shape[1] > 1 else None
    if top2 is None:
        np.testing.assert_array_equal(labels, 0)
        return
    clear = top2[:, 1] - top2[:, 0] > 2 * ref.tol(dtype)["rtol"] * lr_scale.max(axis=1)
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(labels[clear], want_labels[clear])


@pytest.mark.parametrize("chunk_rows", [512, 7])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_outputs_matches_reference(covariance_type, dtype, chunk_rows):
    X, log_w, means, pc, params = problem(
        5, covariance_type, dtype, n_samples=600, n_features=4, n_components=3
    )
    out = estep_outputs(X, params, want_resp=True, chunk_rows=chunk_rows)
    assert out[1].dtype == np.int64
    assert_rows_match(out, X, log_w, means, pc, covariance_type, params, dtype)
    lpn, labels, log_resp = estep_outputs(X, params, want_resp=False, chunk_rows=chunk_rows)
    assert log_resp is None
    np.testing.assert_array_equal(lpn, out[0])
    np.testing.assert_array_equal(labels, out[1])


@pytest.mark.parametrize("kernel", ROWS_KERNELS)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_rows_direct_call_any_bias(covariance_type, kernel):
    """The kernel adds an arbitrary per-component constant (VI's E[log pi] and
    Wishart terms, not normalised log-weights) and writes log_resp only when
    it has n rows."""
    dtype = np.float64
    X, _, means, pc, _ = problem(6, covariance_type, dtype, n_samples=77, n_components=3)
    extra_bias = np.array([3.7, -12.0, 0.25])
    params = kernel_params(means, pc, covariance_type, extra_bias, dtype)
    n, k = len(X), len(extra_bias)
    lpn, labels, log_resp = np.empty(n), np.empty(n, np.int64), np.empty((n, k))
    ROWS_KERNELS[kernel](X, *params.args(), 10, lpn, labels, log_resp, False)
    assert_rows_match(
        (lpn, labels, log_resp), X, extra_bias, means, pc, covariance_type, params, dtype
    )
    untouched = np.full((0, k), 5.0)
    lpn2 = np.empty(n)
    ROWS_KERNELS[kernel](X, *params.args(), 10, lpn2, labels, untouched, False)
    np.testing.assert_array_equal(lpn2, lpn)


@pytest.mark.parametrize("kernel", ROWS_KERNELS)
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_estep_rows_writes_probabilities_when_asked(covariance_type, dtype, kernel):
    """``probabilities`` writes the responsibilities themselves (predict_proba's),
    the exp of the log-responsibilities it writes otherwise, the same
    log p(x) and labels; a row with no finite density gets NaN either way."""
    X, _, means, pc, _ = problem(7, covariance_type, dtype, n_samples=301, n_components=5)
    extra_bias = np.array([0.5, -3.0, -np.inf, 2.0, -700.0])  # one component never wins
    params = kernel_params(means, pc, covariance_type, extra_bias, dtype)
    X[7] = np.inf  # every density of this row is 0 (log -inf) or NaN
    n, k = len(X), len(extra_bias)
    logs = (np.empty(n), np.empty(n, np.int64), np.empty((n, k)))
    probs = (np.empty(n), np.empty(n, np.int64), np.empty((n, k)))
    ROWS_KERNELS[kernel](X, *params.args(), 64, *logs, False)
    ROWS_KERNELS[kernel](X, *params.args(), 64, *probs, True)
    np.testing.assert_array_equal(probs[0], logs[0])
    np.testing.assert_array_equal(probs[1], logs[1])
    finite = np.isfinite(logs[0])
    assert not finite[7] and finite.sum() == n - 1
    assert np.isnan(probs[2][~finite]).all() and np.isnan(logs[2][~finite]).all()
    # exp(t) / sum exp(t) against exp(t - log sum exp(t)): the exp runs in the
    # data's dtype on t = logp - max rounded to it (|t| u relative, |t| <= 87 in
    # float32, whose exp gives 0 below exp(-87), under 2e-38; float64's below
    # exp(-708)).
    rtol, atol = (1e-13, 1e-300) if dtype == np.float64 else (1e-5, 2e-38)
    np.testing.assert_allclose(probs[2][finite], np.exp(logs[2][finite]), rtol=rtol, atol=atol)
    np.testing.assert_allclose(probs[2][finite].sum(axis=1), 1.0, rtol=4 * rtol)
    assert (probs[2][finite][:, 2] == 0).all()


# --------------------------------------------------------------------------
# edge cases
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_single_component(covariance_type, dtype):
    X, log_w, means, pc, params = problem(
        7, covariance_type, dtype, n_samples=300, n_features=3, n_components=1
    )
    w = weights_with_zeros(len(X), 8)
    stats = estep_pass(X, w, params, chunk_rows=64)
    want = reference_stats(X, w, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    # Responsibilities are exactly one: counts are the weight sums, no entropy.
    assert stats.nk[0] == pytest.approx(w.sum(), rel=1e-14)
    assert stats.sum_wrlogr == 0.0
    lpn, labels, log_resp = estep_outputs(X, params, want_resp=True)
    np.testing.assert_array_equal(log_resp, 0.0)
    np.testing.assert_array_equal(labels, 0)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_as_many_rows_as_components(covariance_type):
    dtype = np.float64
    X, log_w, means, pc, params = problem(
        9, covariance_type, dtype, n_samples=4, n_features=3, n_components=4
    )
    stats = estep_pass(X, None, params)
    ref.assert_stats_match(
        stats, reference_stats(X, None, log_w, means, pc, covariance_type, params), dtype
    )
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    got = gaussian_parameters(stats, 1e-6, covariance_type)
    want = ref.gaussian_parameters(X, np.exp(log_resp), 1e-6, covariance_type)
    ref.assert_params_match(got, want, covariance_type, dtype, stats.shift)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_zero_variance_feature(covariance_type, dtype):
    """A constant feature: its variance comes back as reg_covar (plus
    scikit-learn's 10 eps m^2 / nk for diagonal types), never negative."""
    X, log_w, means, pc, params = problem(
        10, covariance_type, dtype, n_samples=400, n_features=3, n_components=3
    )
    X[:, 1] = 2.5
    stats = estep_pass(X, None, params, chunk_rows=50)
    want = reference_stats(X, None, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    reg = 1e-4
    got = gaussian_parameters(stats, reg, covariance_type)
    want_params = ref.gaussian_parameters(X, np.exp(log_resp), reg, covariance_type)
    ref.assert_params_match(got, want_params, covariance_type, dtype, stats.shift)
    # The variance of the constant feature is reg_covar plus scikit-learn's
    # 10 eps m^2 / nk (diag types) or 10 eps sum_k m_k^2 / sum nk (tied).
    nk, m, cov = got
    e = 10 * np.finfo(dtype).eps
    var1, want_var1 = {
        "full": lambda: (cov[:, 1, 1], np.full(3, reg)),
        "tied": lambda: (cov[1, 1], reg + e * np.sum(m[:, 1] ** 2) / nk.sum()),
        "diag": lambda: (cov[:, 1], reg + e * m[:, 1] ** 2 / nk),
        "spherical": lambda: (np.zeros(3), np.zeros(3)),
    }[covariance_type]()
    scale = reg + np.max((2.5 - stats.shift[:, 1]) ** 2)
    ref.assert_close(var1, want_var1, dtype, scale, err_msg="variance of the constant feature")
    ref.assert_close(got[1][:, 1], np.full(3, 2.5), dtype, err_msg="mean of the constant feature")


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_duplicated_rows(covariance_type, dtype):
    X, log_w, means, pc, params = problem(
        11, covariance_type, dtype, n_samples=150, n_features=2, n_components=3
    )
    X2 = np.ascontiguousarray(np.repeat(X, 2, axis=0))
    stats = estep_pass(X2, None, params, chunk_rows=64)
    want = reference_stats(X2, None, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    once = reference_stats(X, None, log_w, means, pc, covariance_type, params)
    ref.assert_close(stats.nk, 2 * once["nk"], dtype, 2 * once["scale"]["nk"])
    s1_scale = 2 * once["scale"]["s1"]
    t = ref.stats_tol(stats, "s1", dtype)
    ref.assert_close(stats.s1, 2 * once["s1"], dtype, s1_scale, "s1", t)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_zero_weights_drop_rows(covariance_type, dtype):
    """Zero weights, including a whole chunk of them, are the rows dropped."""
    X, log_w, means, pc, params = problem(
        12, covariance_type, dtype, n_samples=300, n_features=3, n_components=3
    )
    w = weights_with_zeros(len(X), 13)
    w[64:128] = 0.0  # the second 64-row chunk contributes nothing
    stats = estep_pass(X, w, params, chunk_rows=64)
    keep = w > 0
    want = reference_stats(
        np.ascontiguousarray(X[keep]), w[keep], log_w, means, pc, covariance_type, params
    )
    ref.assert_stats_match(stats, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_large_offset_second_moments_do_not_cancel(covariance_type, dtype):
    """Data at 1e6 + N(0, 1): a one-pass sum x^2 - n m^2 would lose ~1e-4 of the
    variance in float64 (everything in float32); the shifted statistics and the
    M-step built on them must match the two-pass reference to full precision."""
    X, log_w, means, pc, params = problem(
        14, covariance_type, dtype, n_samples=500, n_features=3, n_components=3, offset=1e6
    )
    stats = estep_pass(X, None, params, chunk_rows=128)
    want = reference_stats(X, None, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    got = gaussian_parameters(stats, 1e-6, covariance_type)
    want_params = ref.gaussian_parameters(X, np.exp(log_resp), 1e-6, covariance_type)
    ref.assert_params_match(got, want_params, covariance_type, dtype, stats.shift)


@pytest.mark.parametrize("scale", [1e150, 1e-150], ids=["1e150", "1e-150"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_extreme_scales(covariance_type, scale):
    """Data and model at 1e+-150: no overflow or underflow anywhere in the chain."""
    dtype = np.float64
    X, log_w, means, pc, params = problem(
        15, covariance_type, dtype, n_samples=200, n_features=3, n_components=2, scale=scale
    )
    stats = estep_pass(X, None, params, chunk_rows=64)
    want = reference_stats(X, None, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    got = gaussian_parameters(stats, 0.0, covariance_type)
    want_params = ref.gaussian_parameters(X, np.exp(log_resp), 0.0, covariance_type)
    ref.assert_params_match(got, want_params, covariance_type, dtype, stats.shift)
    ref.assert_close(
        precision_cholesky(got[2], covariance_type, dtype),
        ref.precision_cholesky(want_params[2], covariance_type),
        dtype,
        err_msg="precision Cholesky",
        scale=np.abs(ref.precision_cholesky(want_params[2], covariance_type)).max() * 10,
    )


def test_float32_accumulates_in_float64():
    """With one component every responsibility is exactly 1, so nk is the sum
    of the weights; a float32 accumulator would be off by ~sqrt(n) u = 1e-5."""
    rng = np.random.default_rng(16)
    n = 20_000
    X = rng.normal(size=(n, 2)).astype(np.float32)
    w = rng.uniform(0.0, 1.0, size=n)
    for covariance_type in COV_TYPES:
        cov = ref.random_covariances(rng, covariance_type, 1, 2)
        pc = ref.precision_cholesky(cov, covariance_type)
        params = kernel_params(np.zeros((1, 2)), pc, covariance_type, [0.0], np.float32)
        stats = estep_pass(X, w, params)
        ref.assert_close(stats.nk[0], w.sum(), np.float64, err_msg=covariance_type)
        ref.assert_close(stats.sum_w, w.sum(), np.float64, err_msg=covariance_type)


def test_float32_error_budget():
    """The float32 tolerance is neither loose nor tight: the measured error of
    every per-row output and statistic, in units of its error scale, stays
    below rtol and above rtol / 100 for the largest D (8) used here."""
    dtype = np.float32
    rtol = ref.tol(dtype)["rtol"]
    worst = 0.0
    for covariance_type in COV_TYPES:
        X, log_w, means, pc, params = problem(
            17, covariance_type, dtype, n_samples=2000, n_features=8, n_components=3
        )
        lpn, _, log_resp = estep_outputs(X, params, want_resp=True)
        want_lpn, _, want_lr = ref.estep_rows(X, log_w, means, pc, covariance_type)
        a = ref.log_density_scale(X, log_w, means, pc, covariance_type, params.shift)
        lpn_scale, lr_scale = ref.row_scales(want_lr, a)
        worst = max(
            worst,
            ref.relative_error(lpn, want_lpn, lpn_scale),
            ref.relative_error(log_resp, want_lr, lr_scale),
        )
    assert rtol / 100 < worst < rtol, (worst, rtol)


# --------------------------------------------------------------------------
# stats_from_resp
# --------------------------------------------------------------------------
def init_resp(kind, n, k, seed):
    """Responsibilities as the initialisations produce them."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        r = rng.uniform(size=(n, k))
        return r / r.sum(axis=1)[:, None]
    if kind == "kmeans":
        return np.eye(k)[rng.integers(k, size=n)]
    # k-means++ / random_from_data: one labelled row per component, others 0.
    r = np.zeros((n, k))
    rows = rng.choice(n, size=k, replace=False)
    r[rows, np.arange(k)] = 1.0
    if kind == "partial":
        extra = rng.choice(n, size=n // 2, replace=False)
        r[extra] = np.eye(k)[rng.integers(k, size=n // 2)]
    return r


def _init_cases():
    for ct in COV_TYPES:
        for kind in ["random", "kmeans", "partial", "seeds"]:
            for offset in [0.0, 1e6]:
                yield pytest.param(ct, kind, offset, id=f"{ct}-{kind}-{offset:g}")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type, kind, offset", list(_init_cases()))
def test_stats_from_resp_matches_reference(covariance_type, kind, offset, weighted):
    """Initial statistics (rows_per_block forcing several blocks) and the
    M-step on them. 'seeds' leaves all but K rows unassigned (k-means++,
    random_from_data), whose x x^T enter scikit-learn's tied covariance."""
    dtype = np.float64
    X, _, means, _, _ = problem(
        18, covariance_type, dtype, n_samples=230, n_components=3, offset=offset
    )
    r = init_resp(kind, len(X), 3, 19)
    w = weights_with_zeros(len(X), 20) if weighted else None
    centre = X.mean(axis=0)
    shift = np.broadcast_to(centre, means.shape)
    code = COV_CODES[covariance_type]
    stats = stats_from_resp(X, w, lambda a, b: r[a:b], code, shift, rows_per_block=37)
    want = ref.stats_from_resp(X, w, r, covariance_type, shift)
    scale = want["scale"]
    assert_stats_close(stats, want, **ref.tol(dtype), scale=scale, fields=REFERENCE_RESP_FIELDS)
    if covariance_type == "tied" and kind in ("partial", "seeds"):
        # Rows left unassigned: the general tied update needs every row's sum.
        ref.assert_close(stats.row_sum, want["row_sum"], dtype, scale["row_sum"])
    else:
        # Responsibilities sum to one per row: the stable update, no row_sum.
        assert stats.row_sum is None
    # Symmetric to rounding (a BLAS product, unlike the kernel's mirrored triangle).
    ref.assert_close(stats.s2_mat, np.swapaxes(stats.s2_mat, 1, 2), dtype, scale["s2"])

    # ... and the M-step on them is the reference M-step, unassigned rows included.
    got = gaussian_parameters(stats, 1e-6, covariance_type)
    want_params = ref.gaussian_parameters(X, r, 1e-6, covariance_type, sample_weight=w)
    ref.assert_params_match(got, want_params, covariance_type, dtype, stats.shift)


@pytest.mark.parametrize("kind", ["random", "seeds"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_recentred_and_blended_stats(covariance_type, kind):
    """Online learning's two operations on statistics. ``recentred`` moves
    the sums onto another shift (exact algebra: the sums accumulated around it
    directly); ``blended`` is ``recentred(...).scaled(1 - rho) +
    batch.scaled(factor)`` in one array per sum. 'seeds' leaves rows
    unassigned, so the tied statistics carry a row sum that moves too."""
    dtype = np.float64
    code = COV_CODES[covariance_type]
    X, _, means, _, _ = problem(21, covariance_type, dtype, n_samples=150, n_components=3)
    rng = np.random.default_rng(22)
    old = means + rng.normal(size=means.shape)
    new = np.broadcast_to(X.mean(axis=0), means.shape) if covariance_type == "tied" else means
    w = weights_with_zeros(len(X), 23)
    r = init_resp(kind, len(X), 3, 24)
    if covariance_type == "tied":
        old = np.broadcast_to(old[0], means.shape)
    stats = stats_from_resp(X, w, lambda a, b: r[a:b], code, old, rows_per_block=40)
    moved = stats.recentred(new, code)
    want = ref.stats_from_resp(X, w, r, covariance_type, new)
    # The terms' scale around either shift bounds the rounding of the algebra.
    before = ref.stats_from_resp(X, w, r, covariance_type, old)["scale"]
    scale = {k: 4.0 * np.maximum(v, before[k]) for k, v in want["scale"].items()}
    assert_stats_close(moved, want, **ref.tol(dtype), scale=scale, fields=REFERENCE_RESP_FIELDS)
    np.testing.assert_array_equal(moved.shift, new)
    assert (moved.row_sum is None) == (stats.row_sum is None)
    if moved.row_sum is not None:
        ref.assert_close(moved.row_sum, want["row_sum"], dtype, scale["row_sum"])

    r2 = init_resp(kind, len(X), 3, 25)
    batch = stats_from_resp(X[::-1], None, lambda a, b: r2[a:b], code, new, rows_per_block=40)
    rho, factor = 0.3, 2.5
    got = stats.blended(rho, batch, factor, code)
    want = moved.scaled(1.0 - rho) + batch.scaled(factor)
    assert_stats_close(got, want, rtol=1e-12, atol=1e-12)
    assert got.partial == want.partial


# --------------------------------------------------------------------------
# M-step
# --------------------------------------------------------------------------
@pytest.mark.parametrize("reg_covar", [0.0, 1e-3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_gaussian_parameters_from_kernel_stats(covariance_type, dtype, weighted, reg_covar):
    X, log_w, means, pc, params = problem(
        21, covariance_type, dtype, n_samples=700, n_features=4, n_components=3
    )
    w = weights_with_zeros(len(X), 22) if weighted else None
    stats = estep_pass(X, w, params, chunk_rows=100)
    got = gaussian_parameters(stats, reg_covar, covariance_type)
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    want = ref.gaussian_parameters(
        X, np.exp(log_resp), reg_covar, covariance_type, sample_weight=w
    )
    ref.assert_params_match(got, want, covariance_type, dtype, stats.shift)


@pytest.mark.parametrize("scale", [1.0, 0.37])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize(
    "covariance_type", ["diag", "spherical", "tied-diagonal", "tied-spherical"]
)
def test_diag_gaussian_update_is_the_reference_m_step(covariance_type, dtype, scale):
    """GaussianMixture's diagonal update in one kernel (``diag_m_step``) is the
    reference M-step of ``stats.scaled(scale)`` (an online step's running
    statistics), and the next E-step's inputs it forms are bitwise
    ``kernel_params`` of its outputs as a ``dtype`` model stores them. A
    component with no responsibility keeps the previous mean (and covariance,
    where it has its own)."""
    X, log_w, means, pc, params = problem(
        31, covariance_type, dtype, n_samples=700, n_features=5, n_components=4
    )
    w = weights_with_zeros(len(X), 32)
    stats = estep_pass(X, w, params, chunk_rows=100)
    got = diag_gaussian_update(stats, 1e-3, covariance_type, dtype, scale=scale)
    weights, got_means, got_cov, got_pc, next_params = got
    _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
    want = ref.gaussian_parameters(
        X, np.exp(log_resp), 1e-3, covariance_type, sample_weight=w * scale
    )
    ref.assert_params_match(
        (weights * want[0].sum(), got_means, got_cov), want, covariance_type, dtype, stats.shift
    )
    ref.assert_close(got_pc, ref.precision_cholesky(want[2], covariance_type), dtype)
    stored = [np.asarray(a, dtype=dtype) for a in (weights, got_means, got_pc)]
    log_weights = np.log(stored[0].astype(np.float64))
    fresh = kernel_params(stored[1], stored[2], covariance_type, log_weights, dtype)
    for name in ("shift", "prec_diag", "bias"):
        np.testing.assert_array_equal(
            getattr(next_params, name), getattr(fresh, name), err_msg=name
        )

    # An empty component keeps what it had.
    stats.nk[1], stats.s1[1], stats.s2_diag[1] = 0.0, 0.0, 0.0
    previous = (got_means + 1.0, np.asarray(got_cov) * 2.0)
    _, kept_means, kept_cov, _, _ = diag_gaussian_update(
        stats, 1e-3, covariance_type, dtype, previous=previous, scale=scale
    )
    np.testing.assert_array_equal(kept_means[1], previous[0][1])
    if covariance_type in ("diag", "spherical"):
        np.testing.assert_array_equal(kept_cov[1], previous[1][1])
    np.testing.assert_array_equal(np.delete(kept_means, 1, 0), np.delete(got_means, 1, 0))
    # The components flagged in ``keep`` (a starved online component, one with
    # counts) keep theirs, and no other.
    smallest = int(np.argmin(np.where(stats.nk > 0, stats.nk, np.inf)))
    flags = np.zeros(len(stats.nk), dtype=bool)
    flags[smallest] = True
    _, kept_means, _, _, _ = diag_gaussian_update(
        stats, 1e-3, covariance_type, dtype, previous=previous, scale=scale, keep=flags
    )
    _, own_means, _, _, _ = diag_gaussian_update(stats, 1e-3, covariance_type, dtype, scale=scale)
    for k in range(len(stats.nk)):
        want_row = previous[0][k] if k == smallest else own_means[k]
        np.testing.assert_array_equal(kept_means[k], want_row, err_msg=str(k))


@pytest.mark.parametrize(
    "covariance_type", ["diag", "spherical", "tied-diagonal", "tied-spherical"]
)
def test_float32_clamp_keeps_an_overflowed_scatter_non_finite(covariance_type):
    """float32 statistics clamp a scatter below zero (tile rounding) to zero,
    but a NaN or infinite one (squares that overflowed) stays what it is, so
    the update reports the overflow instead of fitting a zero variance."""
    rng = np.random.default_rng(41)
    shift = rng.normal(size=(3, 4))
    stats = Stats(
        nk=np.array([5.0, 6.0, 7.0]),
        s1=rng.normal(size=(3, 4)) * 1e-3,
        s2_mat=np.zeros((0, 4, 4)),
        s2_diag=np.full((3, 4), 2.0),
        sum_w=18.0, sum_wlogp=0.0, sum_wrlogr=0.0, shift=shift, n_rows=18.0,
    )  # fmt: skip
    stats.s2_diag[1, 2] = -1e-3  # below zero: clamped
    _, _, cov = gaussian_parameters(stats, 1e-6, "diag", np.float32)
    assert cov[1, 2] >= 1e-6 and np.isfinite(cov).all()
    for bad in (np.nan, np.inf):
        stats.s2_diag[1, 2] = bad
        _, _, cov = gaussian_parameters(stats, 1e-6, covariance_type, np.float32)
        assert not np.isfinite(cov).all()
        with pytest.raises(ValueError, match="covariances overflowed"):
            precision_cholesky(cov, covariance_type, np.float32)


@pytest.mark.parametrize(
    "covariance_type", ["diag", "spherical", "tied-diagonal", "tied-spherical"]
)
def test_unresolved_spread_that_overflowed_is_still_named_overflow(covariance_type):
    """With reg_covar = 0 a spread below its mean's rounding is set to zero by
    multiplying (as scikit-learn's one-pass formula loses it): an infinite
    scatter (``eps10 m^2`` at |m| = 1e160) becomes NaN, and the error says the
    covariances overflowed rather than that they are ill-defined."""
    stats = Stats(
        nk=np.array([5.0, 6.0]), s1=np.zeros((2, 3)), s2_mat=np.zeros((0, 3, 3)),
        s2_diag=np.zeros((2, 3)), sum_w=11.0, sum_wlogp=0.0, sum_wrlogr=0.0,
        shift=np.full((2, 3), 1e160), n_rows=11.0,
    )  # fmt: skip
    _, _, cov = gaussian_parameters(stats, 0.0, covariance_type, np.float64)
    assert np.isnan(cov).all()
    with pytest.raises(ValueError, match="covariances overflowed"):
        precision_cholesky(cov, covariance_type, np.float64)


@pytest.mark.parametrize(
    "covariance_type", ["diag", "spherical", "tied-diagonal", "tied-spherical"]
)
def test_kernel_params_refuses_a_precision_factor_of_another_shape(covariance_type):
    """The diagonal kernel inputs are written without bounds checks: a factor
    of another type's shape (a model whose covariance_type was changed after
    fitting) is refused with the shapes named, as broadcasting refused it."""
    means = np.zeros((2, 4))
    for wrong in [np.ones((2, 3)), np.ones((2, 4, 4)), np.ones(3), np.ones((4, 2))]:
        with pytest.raises(ValueError, match="precisions_cholesky_ has shape"):
            kernel_params(means, wrong, covariance_type, np.zeros(2), np.float64)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="targetoptions: the compiled kernel")
def test_diagonal_precision_cholesky_is_a_new_writeable_array_or_a_scalar():
    """Read-only covariances (a loaded model) give writeable factors, and the
    0-d covariance of 'tied-spherical' a NumPy scalar, as NumPy's 1 / sqrt did."""
    cov = np.array([[1.0, 4.0], [9.0, 16.0]])
    cov.flags.writeable = False
    got = precision_cholesky(cov, "diag", np.float64)
    assert got.flags.writeable and not np.shares_memory(got, cov)
    np.testing.assert_array_equal(got, 1.0 / np.sqrt(cov))
    scalar = precision_cholesky(np.float64(4.0), "tied-spherical", np.float64)
    assert type(scalar) is np.float64 and scalar == 0.5
    # Bit for bit scikit-learn's on every target: no fastmath flag (with
    # 'arcp', LLVM emits a reciprocal-square-root estimate for POWER).
    from fastmix._kernels.update import diag_precision_cholesky

    assert not diag_precision_cholesky.targetoptions["fastmath"]


@pytest.mark.parametrize("kind", ["softmax", "partial"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_reference_m_step_is_scikit_learn(covariance_type, kind):
    """The two-pass reference equals scikit-learn's one-pass M-step (at an
    offset where the one-pass formulas are still accurate)."""
    X, log_w, means, pc = ref.random_problem(23, covariance_type, n_samples=300)
    if kind == "softmax":
        _, _, log_resp = ref.estep_rows(X, log_w, means, pc, covariance_type)
        r = np.exp(log_resp)
    else:
        r = init_resp("partial", len(X), len(means), 24)
    got = ref.gaussian_parameters(X, r, 1e-6, covariance_type)
    want = _estimate_gaussian_parameters(X, r, 1e-6, covariance_type)
    ref.assert_params_match(got, want, covariance_type, np.float64)
    ref.assert_close(
        ref.precision_cholesky(got[2], covariance_type),
        _compute_precision_cholesky(want[2], covariance_type),
        np.float64,
        scale=np.abs(_compute_precision_cholesky(want[2], covariance_type)).max(),
    )
    # Integer weights are repeated rows, in the reference too.
    wt = np.random.default_rng(25).integers(0, 3, size=len(X))
    got_w = ref.gaussian_parameters(X, r, 1e-6, covariance_type, sample_weight=wt)
    want_w = _estimate_gaussian_parameters(
        np.repeat(X, wt, axis=0), np.repeat(r, wt, axis=0), 1e-6, covariance_type
    )
    ref.assert_params_match(got_w, want_w, covariance_type, np.float64)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_precision_cholesky_is_scikit_learns_bitwise(covariance_type):
    """LAPACK's potrf/trtrs called directly give scikit-learn's factors, bit for bit.

    As do the precisions formed from them (a stacked matmul, scikit-learn's
    ``np.dot`` per component); the covariances are ill-conditioned enough
    that a different triangular solve or product order would show.
    """
    rng = np.random.default_rng(31)
    cov = ref.random_covariances(rng, covariance_type, 5, 7, 1.0)
    if covariance_type in ("full", "tied"):
        cov = cov + 1e4 * np.ones(cov.shape[-2:])  # condition number ~1e5
    want = _compute_precision_cholesky(cov, covariance_type)
    got = precision_cholesky(cov, covariance_type, np.float64)
    np.testing.assert_array_equal(got, want)
    if covariance_type == "full":
        want_prec = np.array([np.dot(u, u.T) for u in want])
        np.testing.assert_array_equal(precisions_from_cholesky(got, covariance_type), want_prec)


def test_precision_cholesky_rejects_a_nan_factor():
    """potrf tests each pivot for <= 0 only: a finite matrix that is not
    positive-definite can leave inf - inf = NaN there and report success.
    The factor is refused as scipy's LinAlgError would be, not returned."""
    cov = np.array([[1e-300, 0.0, 1e300], [0.0, 1.0, 0.0], [1e300, 0.0, 2.0]])
    for covariance_type, c in [("full", np.stack([np.eye(3), cov])), ("tied", cov)]:
        with pytest.raises(ValueError, match="reg_covar"):
            precision_cholesky(c, covariance_type, np.float64)


@pytest.mark.parametrize("routine", ["potrf", "trtrs"])
def test_precision_cholesky_reports_a_lapack_argument_error_as_a_bug(routine, monkeypatch):
    """``info < 0`` (an illegal argument) is an internal error, not the
    reg_covar advice that a non-positive-definite covariance (``info > 0``) gets."""
    from fastmix import _update

    real = _update.linalg.get_lapack_funcs

    def get_lapack_funcs(names, arrays):
        funcs = dict(zip(names, real(names, arrays), strict=True))
        good = funcs[routine]
        funcs[routine] = lambda *a, **kw: (good(*a, **kw)[0], -2)
        return tuple(funcs[name] for name in names)

    monkeypatch.setattr(_update.linalg, "get_lapack_funcs", get_lapack_funcs)
    cov = ref.random_covariances(np.random.default_rng(3), "full", 2, 3)
    with pytest.raises(RuntimeError, match=f"LAPACK {routine}: illegal value in argument 2"):
        precision_cholesky(cov, "full", np.float64)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_reference_log_density_is_scikit_learn(covariance_type):
    X, log_w, means, pc = ref.random_problem(26, covariance_type, n_samples=200)
    got = ref.weighted_log_prob(X, log_w, means, pc, covariance_type) - log_w
    want = _estimate_log_gaussian_prob(X, means, pc, covariance_type)
    a = ref.log_density_scale(X, log_w, means, pc, covariance_type)
    ref.assert_close(got, want, np.float64, a)


# --------------------------------------------------------------------------
# precision Cholesky and log-determinants
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_precision_cholesky(covariance_type, dtype):
    rng = np.random.default_rng(27)
    cov = ref.random_covariances(rng, covariance_type, 3, 4)
    got = precision_cholesky(cov, covariance_type, dtype)
    want = ref.precision_cholesky(cov, covariance_type)
    # Computed in float64 whatever the data's dtype.
    assert got.dtype == np.float64
    ref.assert_close(got, want, np.float64, np.abs(want).max())
    if covariance_type in ("full", "tied"):
        ref.assert_upper_triangular(got)
        prec = precisions_from_cholesky(got, covariance_type)
        ref.assert_close(prec, ref.precisions_from_cholesky(want, covariance_type), np.float64,
                         np.abs(prec).max())  # fmt: skip
        ref.assert_close(
            prec @ cov if covariance_type == "tied" else np.einsum("kij,kjl->kil", prec, cov),
            np.broadcast_to(np.eye(4), cov.shape),
            np.float64,
            scale=100.0,  # |P| |C| for these well-conditioned matrices
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_precision_cholesky_rejects_non_positive_definite(covariance_type, dtype):
    rng = np.random.default_rng(28)
    cov = ref.random_covariances(rng, covariance_type, 2, 3)
    if covariance_type == "full":
        cov[1] = np.outer([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) - 1e-3 * np.eye(3)
    elif covariance_type == "tied":
        cov = -cov
    elif covariance_type == "diag":
        cov[1, 2] = 0.0
    else:
        cov[0] = -1.0
    with pytest.raises(ValueError, match="reg_covar") as info:
        precision_cholesky(cov, covariance_type, dtype)
    assert ("float64 data instead of float32" in str(info.value)) == (dtype == np.float32)
    with pytest.raises(np.linalg.LinAlgError):
        ref.precision_cholesky(cov, covariance_type)
    # Non-finite covariances come from finite data only by overflow: said so.
    with pytest.raises(ValueError, match="covariances overflowed"):
        precision_cholesky(np.full_like(cov, np.nan), covariance_type, dtype)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_precision_cholesky_from_precisions(covariance_type):
    rng = np.random.default_rng(29)
    cov = ref.random_covariances(rng, covariance_type, 3, 4)
    prec = (
        np.linalg.inv(cov) if covariance_type in ("full", "tied") else 1.0 / cov
    )  # precisions as a user passes them
    got = precision_cholesky_from_precisions(prec, covariance_type)
    want = ref.precision_cholesky_from_precisions(prec, covariance_type)
    ref.assert_close(got, want, np.float64, np.abs(want).max())
    ref.assert_close(
        precisions_from_cholesky(got, covariance_type), prec, np.float64, np.abs(prec).max()
    )
    if covariance_type in ("full", "tied"):
        ref.assert_upper_triangular(got)
    # It is the factor the covariance route gives (scikit-learn's _initialize).
    ref.assert_close(got, precision_cholesky(cov, covariance_type, np.float64), np.float64,
                     np.abs(want).max())  # fmt: skip


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_log_det_cholesky(covariance_type):
    rng = np.random.default_rng(30)
    cov = ref.random_covariances(rng, covariance_type, 3, 4)
    pc = ref.precision_cholesky(cov, covariance_type)
    got = log_det_cholesky(pc, covariance_type, 4)
    want = ref.log_det_cholesky(pc, covariance_type, 4)
    assert np.shape(got) == np.shape(want)
    ref.assert_close(got, want, np.float64, np.abs(want) + 1.0)
    # log|U| = -0.5 log det(covariance)
    if covariance_type == "full":
        half_logdet = -0.5 * np.array([np.linalg.slogdet(c)[1] for c in cov])
    elif covariance_type == "tied":
        half_logdet = -0.5 * np.linalg.slogdet(cov)[1]
    elif covariance_type == "diag":
        half_logdet = -0.5 * np.log(cov).sum(axis=1)
    else:
        half_logdet = -0.5 * 4 * np.log(cov)
    ref.assert_close(got, half_logdet, np.float64, np.abs(half_logdet) + 1.0)


# --------------------------------------------------------------------------
# the whole EM loop
# --------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_em_matches_reference_loop(covariance_type):
    """A weighted fit from an explicit start equals dense EM in the reference:
    lower bounds, weights, means, covariances and precision Cholesky factors."""
    dtype = np.float64
    X, log_w, means, pc = ref.random_problem(31, covariance_type, n_samples=400)
    w = weights_with_zeros(len(X), 32)
    prec = ref.precisions_from_cholesky(pc, covariance_type)
    n_iter = 5
    gm = GaussianMixture(
        n_components=len(means),
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=n_iter,
        reg_covar=1e-6,
        weights_init=np.exp(log_w),
        means_init=means,
        precisions_init=prec,
    )
    with pytest.warns(ConvergenceWarning):
        gm.fit(X, sample_weight=w)
    pc0 = ref.precision_cholesky_from_precisions(prec, covariance_type)
    (weights, means_, cov, pc_), lbs = ref.em(
        X, w, np.exp(log_w), means, pc0, covariance_type, 1e-6, n_iter
    )
    assert len(gm.lower_bounds_) == n_iter
    # Five iterations keep the two loops' rounding differences far below
    # float64's rtol (measured: < 3e-15 of the scales).
    ref.assert_close(gm.lower_bounds_, lbs, dtype, np.abs(lbs) + 1.0, err_msg="lower bounds")
    ref.assert_close(gm.weights_, weights, dtype, err_msg="weights")
    mean_scale, cov_scale = ref.fit_scales(means_, cov, covariance_type)
    ref.assert_close(gm.means_, means_, dtype, mean_scale, err_msg="means")
    ref.assert_close(gm.covariances_, cov, dtype, cov_scale, err_msg="covariances")
    ref.assert_close(
        gm.precisions_cholesky_, pc_, dtype, np.abs(pc_).max(), err_msg="precision Cholesky"
    )
    ref.assert_close(
        gm.precisions_,
        ref.precisions_from_cholesky(pc_, covariance_type),
        dtype,
        np.abs(ref.precisions_from_cholesky(pc_, covariance_type)).max(),
    )
    assert gm.lower_bound_ == gm.lower_bounds_[-1]


# --------------------------------------------------------------------------
# Vectorised exp and log (the normalisation's elementwise kernels)
# --------------------------------------------------------------------------
def _exp_of(parts, x, bits_dtype, in_place):
    """``dst * scale`` from an exp kernel's parts (``dst`` is ``x`` itself when in place)."""
    got = x.copy()
    dst = got if in_place else np.empty_like(x)
    scale = parts(got, dst, len(x), np.empty(len(x), dtype=bits_dtype))
    return dst * scale


@pytest.mark.parametrize("in_place", [False, True])
def test_exp_parts_match_numpy(in_place):
    """Within 4 ulp of NumPy on the whole range it is used on, the arguments
    whose n is a tie of its rounding (odd multiples of ln2/2) included; below
    -708 it gives 0 (subnormal results), and NaN stays NaN."""
    from fastmix._kernels.estep import _exp_parts

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-708.0, 709.0, 20000), rng.uniform(-1.0, 0.0, 20000)])
    ties = (2 * np.arange(-1021, 1023) + 1) * (np.log(2) / 2)
    x = np.concatenate([x, ties, [0.0, -708.0, 709.0, -745.0, -np.inf, np.nan]])
    got = _exp_of(_exp_parts, x, np.int64, in_place)
    want = np.exp(x)
    normal = x >= -708.0
    ulps = np.abs(got[normal] - want[normal]) / np.spacing(want[normal])
    assert np.nanmax(ulps) <= 4.0
    assert got[-3] == 0.0 and got[-2] == 0.0
    assert np.isnan(got[-1])


@pytest.mark.parametrize("in_place", [False, True])
def test_exp32_matches_numpy(in_place):
    """The float32 exp is within 2 u (the c of reference.TOL's derivation) of
    exp in float64 over [-87, 0], where the normalisation uses it; below -87
    and at -inf it gives 0, and NaN stays NaN."""
    from fastmix._kernels.estep import _exp32_parts

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-87.0, 0.0, 20000), rng.uniform(-1.0, 0.0, 20000)])
    x = np.concatenate([x, [0.0, -87.0, -87.5, -200.0, -np.inf, np.nan]]).astype(np.float32)
    got = _exp_of(_exp32_parts, x, np.int32, in_place)
    assert got.dtype == np.float32
    want = np.exp(x.astype(np.float64))
    normal = x >= -87.0
    assert np.max(np.abs(got[normal] - want[normal]) / want[normal]) <= 2 * 2.0**-24
    assert np.all(got[-4:-1] == 0.0)
    assert np.isnan(got[-1])


def test_log_inplace_matches_numpy():
    """Within 4 ulp of NumPy for positive normal numbers (the normalisation
    takes logs of sums in [1, K]); NaN stays NaN."""
    from fastmix._kernels.estep import _log_inplace

    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.uniform(1.0, 64.0, 20000),
            np.exp(rng.uniform(-700.0, 700.0, 20000)),
            [1.0, 2.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2.0), 1e-300, 1e300, np.nan],
        ]
    )
    got = x.copy()
    _log_inplace(got, len(got), np.empty(len(got), dtype=np.int64))
    want = np.log(x)
    assert got[0 + 40000] == 0.0  # log(1) is exact
    finite = np.isfinite(want) & (want != 0.0)
    ulps = np.abs(got[finite] - want[finite]) / np.spacing(np.abs(want[finite]))
    assert np.max(ulps) <= 4.0
    assert np.isnan(got[-1])


# --------------------------------------------------------------------------
# float32 moments (issue 12): float32 tile sums, float64 across tiles
# --------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_float32_statistics_many_chunks_at_offset(covariance_type):
    """40,000 float32 rows offset by 1e4 (79 chunks): the moments keep the
    float32 tolerance, which does not grow with n."""
    dtype = np.float32
    X, log_w, means, pc, params = problem(
        35, covariance_type, dtype, n_samples=40_000, n_features=8, n_components=3, offset=1e4
    )
    stats = estep_pass(X, None, params)
    want = reference_stats(X, None, log_w, means, pc, covariance_type, params)
    ref.assert_stats_match(stats, want, dtype)


def _one_component_at_origin(code, n_features, dtype):
    """Kernel parameters of one component of zero precision around the origin:
    every responsibility is exactly 1, so the moments are the plain sums."""
    shape = (1, n_features) if code == DIAG else (1, n_features, n_features)
    return KernelParams.build(code, np.zeros((1, n_features)), np.zeros(shape), np.zeros(1), dtype)


def test_float32_moments_are_flushed_into_float64_every_tile():
    """400,000 equal float32 terms (0.7) in one chunk: the kernel's float32
    running sums, run across the whole chunk, lost 2103 u of s1 and 2452 u of
    s2 (measured), over the bound (6 + T + 4) u = 522 u of
    reference.moments_tol; flushed into float64 every MOMENT_TILE rows they
    lose about 3 u."""
    n = 400_000
    X = np.full((n, 1), 0.7, dtype=np.float32)
    v = float(X[0, 0])
    stats = estep_pass(X, None, _one_component_at_origin(DIAG, 1, np.float32), chunk_rows=n)
    rtol = ref.moments_tol(np.float32, 1, 1)["rtol"]
    assert abs(stats.s1[0, 0] - n * v) <= rtol * n * v
    assert abs(stats.s2_diag[0, 0] - n * v * v) <= rtol * n * v * v
    assert stats.nk[0] == n


def test_tied_first_moments_of_float32_data_stay_float64():
    """'tied' takes s1 around one common centre, where a float32 error in s1
    is multiplied by the distance between components in the pooled
    covariance: its s1 stays a float64 sum. Values on a 2**-20 grid in [1, 2)
    sum exactly in float64 and inexactly in float32, as DIAG's tiles show."""
    rng = np.random.default_rng(3)
    X = (1.0 + rng.integers(0, 2**20, size=(3000, 3)) * 2.0**-20).astype(np.float32)
    exact = X.astype(np.float64).sum(axis=0)  # every partial sum is exact
    tied = estep_pass(X, None, _one_component_at_origin(TIED, 3, np.float32))
    np.testing.assert_array_equal(tied.s1[0], exact)
    diag = estep_pass(X, None, _one_component_at_origin(DIAG, 3, np.float32))
    assert np.all(diag.s1[0] != exact)  # the float32 tiles round here
    rtol = ref.moments_tol(np.float32, 3, 1)["rtol"]
    assert np.all(np.abs(diag.s1[0] - exact) <= rtol * exact)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
def test_float32_moments_drop_weighted_responsibilities_below_the_normal_range(dtype):
    """float32 tiles take a w r below 2**-86 as 0: float32 would hold it, or
    its products with x - shift, as subnormals, whose arithmetic made the
    float32 moments 1.6x (Zen 5) to 2.1x (Intel Xeon) slower. 1e-30 is a
    normal float32 (above 2**-126) and is dropped too. nk stays the float64
    sum, NaN is kept, and float64 tiles keep every value."""
    x = np.arange(1.0, 9.0)
    xt = x[None, :].astype(dtype)
    resp = np.full((3, 8), 1e-30)  # component 0: every row below 2**-86
    resp[1, 0] = 1.0  # component 1: one row of responsibility 1, the rest 1e-30
    resp[2, 3] = np.nan  # component 2: a NaN stays NaN
    nk = np.zeros(3)
    s1 = np.zeros((3, 1))
    s2 = np.zeros((3, 1))
    xr = np.ascontiguousarray(xt.T)
    estep._diag_moments(xt, xr, np.ones(8), 8, np.zeros((3, 1), dtype), resp, nk, s1, s2, xt, None)
    np.testing.assert_allclose(nk[:2], [8e-30, 1.0 + 7e-30], rtol=1e-15)
    assert np.isnan(nk[2]) and np.isnan(s1[2, 0]) and np.isnan(s2[2, 0])
    if dtype == np.float32:
        assert s1[0, 0] == 0.0 and s2[0, 0] == 0.0
        assert s1[1, 0] == 1.0 and s2[1, 0] == 1.0
    else:
        np.testing.assert_allclose(s1[:2, 0], [1e-30 * x.sum(), 1.0 + 1e-30 * x[1:].sum()])
        np.testing.assert_allclose(s2[0, 0], 1e-30 * (x * x).sum())


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_collapsing_components_keep_positive_variances():
    """5000 x 64 float32 rows, K = 256 (about 20 rows a component): components
    collapse onto single rows far from their previous means, where s2/nk and
    (s1/nk)^2 agree to ~1e-7. The float32 tile sums of the moments made a
    variance negative past reg_covar (-1.9e-7) in the third iteration; the
    M-step's clamp of a float32 scatter at zero keeps it at reg_covar."""
    n, d, k = 5000, 64, 256
    rng = np.random.default_rng(0)  # fastmix bench's mixture (benchmarks/_perf_common.py)
    weights = rng.dirichlet(np.full(k, 4.0))
    centres = rng.normal(scale=3.0, size=(k, d))
    a = rng.standard_normal((k, d, d)) / np.sqrt(d)
    cov = a @ np.swapaxes(a, 1, 2) + 0.25 * np.eye(d)
    labels = rng.choice(k, size=n, p=weights)
    X = rng.standard_normal((n, d))
    for c in range(k):
        X[labels == c] = X[labels == c] @ np.linalg.cholesky(cov[c]).T + centres[c]
    X = X.astype(np.float32)
    rows = np.sort(np.random.default_rng(0).choice(n, size=k, replace=False))
    var = X.astype(np.float64).var(axis=0, ddof=1)
    var += 1e-3 * var.sum() / d
    gm = GaussianMixture(
        n_components=k,
        covariance_type="diag",
        tol=0.0,
        max_iter=6,
        weights_init=np.full(k, 1.0 / k),
        means_init=X[rows].astype(np.float64),
        precisions_init=np.broadcast_to(1.0 / var, (k, d)).copy(),
    ).fit(X)
    assert np.all(gm.covariances_ >= 1e-6 * (1 - 1e-6))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_float32_fit_at_offset_1e4_matches_float64(covariance_type):
    """A float32 fit of data offset by 1e4 is within 1e-4 relative of the
    float64 fit of the same values, and no variance goes negative. The blobs
    are separated (EM contractive): with overlapping ones ten iterations of
    either dtype are far from converged and rounding moves mass between
    components by 1e-3 whatever the kernel (measured on the old one too)."""
    rng = np.random.default_rng(36)
    centres = rng.normal(scale=10.0, size=(4, 6))
    X64 = 1e4 + centres[rng.integers(4, size=20_000)] + rng.normal(size=(20_000, 6))
    X32 = X64.astype(np.float32)
    start = dict(
        n_components=4,
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=10,
        means_init=centres + 1e4 + 0.5,
    )
    gm32 = GaussianMixture(**start).fit(X32)
    gm64 = GaussianMixture(**start).fit(X32.astype(np.float64))
    assert gm32.covariances_.dtype == np.float32
    assert np.all(gm32.covariances_ > 0)
    for name in ("weights_", "means_", "covariances_"):
        got, want = getattr(gm32, name), getattr(gm64, name)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=0, err_msg=name)


# --------------------------------------------------------------------------
# stats_from_labels (one-hot initial statistics, issue 12, C)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=ids_dtype.get)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_stats_from_labels_matches_reference(covariance_type, dtype, weighted):
    """The parallel kernel equals the plain NumPy sums of one-hot responsibilities
    (rows left unassigned, label -1, included), at an offset of 1e6, and is
    bitwise the same on 1 thread or all and in its serial twin."""
    from fastmix._kernels.labels import stats_from_labels, stats_from_labels_serial

    X, _, means, _, _ = problem(
        37, covariance_type, dtype, n_samples=3000, n_features=5, n_components=7, offset=1e6
    )
    rng = np.random.default_rng(38)
    labels = rng.integers(-1, 7, size=len(X))
    labels[labels == 3] = 4  # a component without rows
    w = weights_with_zeros(len(X), 39) if weighted else None
    shift = means + rng.normal(size=means.shape)
    code = COV_CODES[covariance_type]
    r = np.zeros((len(X), 7))
    r[labels >= 0, labels[labels >= 0]] = 1.0
    want = ref.stats_from_resp(X, w, r, covariance_type, shift)

    n_mat = {FULL: 7, TIED: 1}.get(code, 0)
    n_diag = 7 if code == DIAG else 0

    def run(kernel=stats_from_labels):
        nk, s1 = np.zeros(7), np.zeros((7, 5))
        s2_mat, s2_diag = np.zeros((n_mat, 5, 5)), np.zeros((n_diag, 5))
        kernel(X, np.empty(0) if w is None else w, labels, code, shift,
                          nk, s1, s2_mat, s2_diag)  # fmt: skip
        return nk, s1, s2_mat, s2_diag

    nk, s1, s2_mat, s2_diag = run()
    scale = want["scale"]
    ref.assert_close(nk, want["nk"], np.float64, scale["nk"], err_msg="nk")
    ref.assert_close(s1, want["s1"], np.float64, scale["s1"], err_msg="s1")
    ref.assert_close(s2_diag, want["s2_diag"], np.float64, scale["s2_diag"], err_msg="s2_diag")
    if covariance_type == "full":
        ref.assert_close(s2_mat, want["s2"], np.float64, scale["s2"], err_msg="s2")
        np.testing.assert_array_equal(s2_mat, np.swapaxes(s2_mat, 1, 2))
    else:
        np.testing.assert_array_equal(s2_mat, 0.0)  # tied's S2 is not the kernel's
    assert np.all(nk[3] == 0.0) and np.all(s1[3] == 0.0)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        for got, e in zip(run(), (nk, s1, s2_mat, s2_diag), strict=True):
            np.testing.assert_array_equal(got, e)
    finally:
        numba.set_num_threads(before)
    # The serial twin: the same bits.
    for got, e in zip(run(stats_from_labels_serial), (nk, s1, s2_mat, s2_diag), strict=True):
        np.testing.assert_array_equal(got, e)


def test_moment_tile_is_the_references():
    """The reference's float32 moments tolerance is derived for the kernel's tile."""
    assert estep.MOMENT_TILE == ref.MOMENT_TILE
    # The justification of a tile over 256 rows: the bound stays within issue
    # 12's 1e-4 between float32 and float64 fits at the grid's widest diag D.
    assert ref.moments_tol(np.float32, 128, 1024)["rtol"] < 0.5e-4


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_float32_scatter_below_zero_is_clamped(covariance_type):
    """A scatter the float32 tile sums leave below zero (a component collapsed
    far from its shift: s2 = s1^2 / nk to float32 rounding) gives a variance
    of reg_covar, never less; float64 statistics are used as computed."""
    shift = np.zeros((1, 2))
    nk, d = 3.0, 100.0
    s1 = np.array([[nk * d, nk * d]])
    s2 = np.array([[nk * d * d * (1 - 1e-6), nk * d * d]])  # short by 1e-6 relative
    stats = Stats(
        nk=np.array([nk]), s1=s1, s2_mat=np.zeros((0, 2, 2)), s2_diag=s2,
        sum_w=nk, sum_wlogp=0.0, sum_wrlogr=0.0, shift=shift, n_rows=nk,
    )  # fmt: skip
    cov32 = gaussian_parameters(stats, 1e-6, covariance_type, np.float32)[2]
    cov64 = gaussian_parameters(stats, 1e-6, covariance_type, np.float64)[2]
    assert np.all(cov32 >= 1e-6)
    assert np.min(cov64) < 0  # float64: the formula as scikit-learn has it


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_prior_covariance_of_a_constant_float32_feature_is_not_negative(covariance_type):
    """The Bayesian mixture's default covariance prior from one-component
    statistics whose float32 tile sums left a constant feature's scatter
    below zero: zero, as np.var gives, not a negative prior."""
    total, d = 1000.0, 100.0
    stats = Stats(
        nk=np.array([total]), s1=np.array([[total * d, 0.0]]), s2_mat=np.zeros((0, 2, 2)),
        s2_diag=np.array([[total * d * d * (1 - 1e-6), total]]), sum_w=total,
        sum_wlogp=0.0, sum_wrlogr=0.0, shift=np.zeros((1, 2)), n_rows=total,
    )  # fmt: skip
    mean, cov = moments_from_stats(stats, covariance_type)
    np.testing.assert_allclose(mean, [d, 0.0])
    if covariance_type == "diag":
        np.testing.assert_allclose(cov, [0.0, total / (total - 1)])
    else:
        assert cov == pytest.approx(0.5 * total / (total - 1))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="py_func: the kernels are compiled")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diag_densities_at_any_tile_length_match_numpy(monkeypatch, dtype):
    """The diagonal densities over tiles of any length (the host's length
    depends on its vector registers, :func:`_block_tile_rows`): whole tiles, a
    last partial one, a tile of exactly the rows, and one longer than them;
    partial groups of components and features. The reference's values at
    every length. Run as Python so that every length is checked on any CPU;
    the compiled kernel's independence of the tiling is the next test's."""
    monkeypatch.setattr(estep, "prefer_wide_vectors", lambda: None)  # an intrinsic
    rng = np.random.default_rng(7)
    n_components, n_features, m = 5, 6, 32
    X = rng.standard_normal((m, n_features)).astype(dtype)
    means = rng.standard_normal((n_components, n_features)).astype(dtype)
    prec_chol = rng.integers(2, 9, (n_components, n_features)) / 4  # exact squares
    precision = (prec_chol**2).astype(dtype)
    bias = rng.standard_normal(n_components)
    xt = np.zeros((n_features, m + 3), dtype=dtype)  # a chunk's scratch, longer than m
    xt[:, :m] = X.T
    q = ref.mahalanobis(X, means, prec_chol, "diag")
    want = bias - 0.5 * q
    scale = np.abs(bias) + 0.5 * q  # the terms' magnitudes
    for rows in (5, 8, 32, 64):
        monkeypatch.setattr(estep, "_block_tile_rows", lambda itemsize, rows=rows: rows)
        logp = np.full((n_components, m + 3), np.nan, dtype=dtype)
        estep._diag_logdens.py_func(xt, m, means, precision, bias, logp)
        assert np.isnan(logp[:, m:]).all()  # only the first m rows written
        ref.assert_close(logp[:, :m].T, want, dtype, scale=scale, err_msg=f"{rows} rows")


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="the compiled kernel")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_diag_densities_of_a_row_do_not_depend_on_its_place(dtype):
    """The compiled diagonal densities of a row are the same bit for bit
    wherever the row sits: in another tile, another vector lane or the loop's
    remainder (the chunk's rows shifted by 1-13 places, 1100 rows: several
    tiles at any host's length)."""
    rng = np.random.default_rng(8)
    n_components, n_features, m = 7, 13, 1100
    X = rng.standard_normal((m, n_features)).astype(dtype)
    means = rng.standard_normal((n_components, n_features)).astype(dtype)
    precision = rng.uniform(0.25, 4.0, (n_components, n_features)).astype(dtype)
    bias = rng.standard_normal(n_components)

    def densities(rows):
        xt = np.ascontiguousarray(rows.T)
        logp = np.empty((n_components, rows.shape[0]), dtype=dtype)
        estep._diag_logdens(xt, rows.shape[0], means, precision, bias, logp)
        return logp

    whole = densities(X)
    for shift in (1, 3, 5, 7, 13):
        np.testing.assert_array_equal(densities(X[shift:]), whole[:, shift:])


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="py_func: the kernels are compiled")
@pytest.mark.parametrize("cols", [2, 4])
@pytest.mark.parametrize("n_features", [1, 3, 4, 5, 9, 12])
def test_gram_blocks_of_either_width_match_numpy(monkeypatch, cols, n_features):
    """The full and tied statistics' Gram kernels with 4 x 2 blocks (16 vector
    registers) and 4 x 4 blocks (32): every upper entry, the zero-padded rows
    ignored, the lower triangle left as it was. Run as Python so that both
    widths are checked on any CPU (the compiled kernels use the host's)."""
    monkeypatch.setattr(estep, "_gram_cols", lambda: cols)
    monkeypatch.setattr(estep, "prefer_wide_vectors", lambda: None)  # an intrinsic
    rng = np.random.default_rng(n_features)
    n4, m = (n_features + 3) // 4 * 4, 7
    a = np.zeros((n4, m + 2))
    b = np.zeros((n4, m + 2))
    a[:n_features] = rng.standard_normal((n_features, m + 2))
    b[:n_features] = rng.standard_normal((n_features, m + 2))
    start = rng.standard_normal((n_features, n_features))
    upper = np.triu_indices(n_features)
    lower = np.tril_indices(n_features, -1)
    for kernel, expected in (
        (estep._symmetric_gram.py_func, a[:n_features, :m] @ a[:n_features, :m].T),
        (estep._upper_gram.py_func, a[:n_features, :m] @ b[:n_features, :m].T),
    ):
        out = start.copy()
        kernel(a, m, out) if kernel is estep._symmetric_gram.py_func else kernel(a, b, m, out)
        np.testing.assert_allclose(out[upper], start[upper] + expected[upper], rtol=1e-13)
        np.testing.assert_array_equal(out[lower], start[lower])
