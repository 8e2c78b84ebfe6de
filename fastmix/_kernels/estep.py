"""Streaming E-step kernels shared by EM and variational inference.

One parallel pass over fixed-size row chunks computes, for every row ``x``,

    log p_k(x) = bias_k - 0.5 * || (x - shift_k) @ U_k - offset_k ||^2

a log-sum-exp over components, the responsibilities, and the chunk's
sufficient statistics. ``U_k`` is an upper-triangular precision Cholesky
factor (scikit-learn's convention: precision = U U^T). ``bias_k`` carries the
log-weight (or E[log pi_k]), log|U_k|, -D/2 log(2 pi) and, for variational
inference, the Wishart expectation terms, so the kernel never knows which
estimator called it.

Covariance types share one kernel through an integer code:

- ``FULL``: ``prec_mat`` has shape (K, D, D); ``shift`` = the current means,
  ``offset`` unused (zeros).
- ``TIED``: ``prec_mat`` has shape (1, D, D); every row of ``shift`` is the
  same centre ``c`` and ``offset_k = (mean_k - c) @ U``, so ``(x - c) @ U`` is
  computed once per row instead of once per component.
- ``DIAG``: ``prec_diag`` has shape (K, D) and holds *precisions* (squared
  Cholesky factors); ``shift`` = the current means. Spherical models use DIAG
  with each component's precision repeated over the features.

Statistics are accumulated around ``shift`` in float64 (``S1 = sum w r (x -
shift_k)``, ``S2`` likewise for the second moment), centred on each component
(TIED: on one common centre), so a variance does not go negative by
cancellation beyond the sums' own rounding. Each group of consecutive chunks
adds them in order into its own partial slot; slots are summed in group order
afterwards, so the result is bitwise independent of the number of threads. Data
are read, centred and run through the densities in their own dtype (float32
stays float32), and so are the log-densities and the exps that turn them into
responsibilities (each row's sums over components are float64: see
:func:`_normalise_chunk`); the statistics are formed in float64, except the
diagonal moments of float32 data, formed and summed in float32 over tiles of
:data:`MOMENT_TILE` rows before they are added into float64 (see
:func:`_diag_moments`).
"""

import numpy as np
from numba.core import types
from numba.extending import overload

from .._numba import jit, prange, prefer_wide_vectors, vector_registers

FULL = 0
TIED = 1
DIAG = 2

# Full-covariance densities run over tiles of this many rows, so that a tile
# of the centred rows (D x _TILE) stays in L1 while every block of U meets it.
# The diagonal densities and the k-means cross products scale it by the vector
# width (_block_tile_rows).
_TILE = 128
# The statistics' Gram blocks end each tile with 4 x 4 horizontal sums; 256
# rows halve their share (the tile, 32 KiB at D = 16, still fits L1): 6% less
# time than 128 rows, 3% less than the whole 512-row chunk (ab_kernels.py).
_STATS_TILE = 256
# Rows of a tile whose moment products and partial sums run in the data's
# dtype before they are added into float64: one default chunk. Issue 12
# allows 256 rows or a length justified: at the end of every tile each of a
# (component, feature)'s 8 vector sums is reduced across its lanes, which at
# 256 rows cost a quarter of the moments' time (Zen 5, 64 x 256: 247 against
# 181 us per chunk, 296 in float64). The bound tests/reference.py derives,
# (max(2D + 4, 4 ln K + 4) + T + 4) u32 of the terms' absolute sum, is at
# T = 512 and D = 128 (the widest diagonal shape of the grid) 4.6e-5: within
# issue 12's 1e-4 between float32 and float64 fits, and it does not grow with n.
MOMENT_TILE = 512
# float32 moment tiles take a w r below this as 0 (see _diag_moments): 2**-40
# above float32's smallest normal number, 2**-126, so that the products w r v
# and w r v**2 stay normal for every |v| >= 2**-20 of the data's units.
_F32_TINY = 2.0**-86

# A component with at most 1/_SPARSE_SHARE of a chunk's responsibilities
# non-zero (after ``min_resp``) takes the row-wise moments path: see
# _diag_moments. Zen 5, D = 64, float64: the tiled path costs ~1.2 us per
# component and chunk, the row-wise one ~0.1 us plus ~22 ns per non-zero, so
# they break even near 50 of 512 rows; both scale with D.
_SPARSE_SHARE = 8

# Consecutive chunks one task adds, in order, into one partial slot: 8 keeps
# 16 tasks per 128-chunk call for 2 threads while the partials (zeroed, then
# summed on one thread after the parallel loop) shrink 8-fold (4.5 MiB per
# call at D = K = 16 with one slot per chunk).
_GROUP = 8

_LOG2E = 1.4426950408889634
# ln 2 split so that n * _LN2_HI is exact for |n| < 2**20 (Cody and Waite).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -708.0  # below this exp(x) is subnormal: returned as 0
# y + 1.5 * 2**52 is y rounded to an integer (for |y| < 2**51), held in the
# sum's low mantissa bits: the sum's bits minus these are that integer.
_ROUND_SHIFT = 6755399441055744.0
_ROUND_SHIFT_BITS = 0x4338000000000000


@jit(reassoc=False)
def _exp_parts(src, dst, m, scale_bits):
    """``exp(src[:m])`` as ``dst[:m] * scale[:m]``, vectorised (numba's scalar exp is not).

    Returns ``scale``, the float64 view of ``scale_bits`` (int64 scratch,
    (B,)): the caller forms each product in the loop that reads it (the
    normalisation's sums), one pass fewer over the row. ``dst`` may be ``src``.

    exp(x) = 2**n * exp(r) with r = x - n ln 2 in [-ln2/2, ln2/2] and a degree-12
    Taylor polynomial for exp(r) (truncation < 2e-16, max relative error ~3e-16
    against NumPy) in ``dst``; 2**n is built from its bits in ``scale_bits``.
    Arguments below -708 give 0 (they are subnormal), -inf gives 0, NaN
    stays NaN. Reassociation is off: it would merge the two-part reduction, and
    fold away the rounding to an integer below.

    ``n`` is rounded by adding and subtracting ``_ROUND_SHIFT`` (1.5 * 2**52),
    and its bits come from the sum's low bits, by integer arithmetic on the
    scratch: no float-to-int64 conversion, which x86 has in vector form only
    with AVX-512 (on an AVX2 CPU it was four scalar conversions a vector; 24%
    of this function's time on Zen 3). Ties round to even instead of up:
    either ``n`` leaves ``|r| <= ln2/2``. Against ``floor(y + 0.5)``: equal bit
    for bit on 6e6 random arguments; at odd multiples of ln2/2, 526 of 2820
    differ, both within 2 ulp of NumPy.
    """
    prefer_wide_vectors()
    scale = scale_bits.view(np.float64)
    for i in range(m):
        x = src[i]
        xc = x if x > _EXP_MIN else _EXP_MIN
        xc = xc if xc < 709.0 else 709.0
        shifted = xc * _LOG2E + _ROUND_SHIFT
        n = shifted - _ROUND_SHIFT
        r = xc - n * _LN2_HI
        r = r - n * _LN2_LO
        p = 1.0 + r * (
            1.0 + r * (
                1.0 / 2 + r * (
                    1.0 / 6 + r * (
                        1.0 / 24 + r * (
                            1.0 / 120 + r * (
                                1.0 / 720 + r * (
                                    1.0 / 5040 + r * (
                                        1.0 / 40320 + r * (
                                            1.0 / 362880 + r * (
                                                1.0 / 3628800 + r * (
                                                    1.0 / 39916800 + r * (1.0 / 479001600)
                                                )
                                            )
                                        )
                                    )
                                )
                            )
                        )
                    )
                )
            )
        )  # fmt: skip
        # NaN fails both comparisons and is kept; x < -708 (and -inf) gives 0.
        dst[i] = p if x >= _EXP_MIN else (0.0 if x < _EXP_MIN else x)
        scale[i] = shifted
    for i in range(m):
        # The low bits of ``shifted`` hold n: its bits minus the shift's.
        scale_bits[i] = (scale_bits[i] - _ROUND_SHIFT_BITS + 1023) << 52
    return scale


# float32 exp: the same reduction with float32 constants. _LN2_HI32 has 9
# significant bits, so n * _LN2_HI32 is exact for |n| < 2**15.
_LOG2E32 = np.float32(1.4426950408889634)
_LN2_HI32 = np.float32(0.693359375)
_LN2_LO32 = np.float32(-2.12194440e-4)
# Below this exp(x) is under 2**-126, float32's smallest normal: returned as 0.
_EXP32_MIN = np.float32(-87.0)
_EXP32_MAX = np.float32(88.0)
_F32_HALF = np.float32(0.5)
_F32_ONE = np.float32(1.0)
_F32_ZERO = np.float32(0.0)


@jit(reassoc=False)
def _exp32_parts(src, dst, m, scale_bits):
    """:func:`_exp_parts` for float32 ``src <= 88``, 16 lanes per vector.

    exp(x) = 2**n * exp(r), r = x - n ln 2 in [-ln2/2, ln2/2], and a degree-7
    Taylor polynomial (truncation < 6e-9 relative, under u32/10);
    ``scale_bits`` is int32 scratch, (B,), and the float32 view of it is
    returned. (float32 to int32 has a vector form in AVX2: no rounding
    shift needed here.) Arguments
    below -87 give 0 (exp would be under 2**-126, float32's smallest normal;
    the moments drop such responsibilities anyway), -inf gives 0, NaN stays
    NaN. Every operation stays in float32: the constants are float32.
    """
    prefer_wide_vectors()
    scale = scale_bits.view(np.float32)
    for i in range(m):
        x = src[i]
        xc = x if x > _EXP32_MIN else _EXP32_MIN
        xc = xc if xc < _EXP32_MAX else _EXP32_MAX
        n = np.floor(xc * _LOG2E32 + _F32_HALF)
        r = xc - n * _LN2_HI32
        r = r - n * _LN2_LO32
        p = _F32_ONE + r * (
            _F32_ONE + r * (
                np.float32(1.0 / 2) + r * (
                    np.float32(1.0 / 6) + r * (
                        np.float32(1.0 / 24) + r * (
                            np.float32(1.0 / 120) + r * (
                                np.float32(1.0 / 720) + r * np.float32(1.0 / 5040)
                            )
                        )
                    )
                )
            )
        )  # fmt: skip
        dst[i] = p if x >= _EXP32_MIN else (_F32_ZERO if x < _EXP32_MIN else x)
        scale_bits[i] = (np.int32(n) + np.int32(127)) << np.int32(23)
    return scale


def _exp_rows(src, dst, m, scale_bits):
    """:func:`_exp_parts` in ``src``'s dtype: NumPy's exp and a unit scale when
    called from Python (e.g. under NUMBA_DISABLE_JIT); numba kernels get the
    overload below."""
    dst[:m] = np.exp(src[:m])
    return np.ones(m, dtype=dst.dtype)


@overload(_exp_rows)
def _exp_rows_typed(src, dst, m, scale_bits):
    # Chosen at typing time, so a kernel compiles only its own dtype's exp.
    if src.dtype == types.float32:
        # float32 2**n bits in the first half of the int64 scratch.
        return lambda src, dst, m, scale_bits: _exp32_parts(src, dst, m, scale_bits.view(np.int32))
    return lambda src, dst, m, scale_bits: _exp_parts(src, dst, m, scale_bits)


_SQRT2 = 1.4142135623730951


@jit(reassoc=False)
def _log_inplace(a, m, bits):
    """``a[:m] = log(a[:m])`` for positive normal numbers or NaN, vectorised.

    numba's ``np.log`` is a scalar libm call per element. Here x = 2**e * f with
    f in [sqrt(1/2), sqrt(2)), and log f = 2 atanh(s), s = (f - 1) / (f + 1),
    |s| <= 0.172, summed to s**19 (truncation < 3e-17 relative); e ln 2 is
    added in two parts. ``bits`` is int64 scratch, (B,). Reassociation is off:
    it would merge the two-part ln 2.
    """
    prefer_wide_vectors()
    ai = a.view(np.int64)
    for i in range(m):
        x = a[i]
        b = ai[i]
        e = ((b >> 52) & 0x7FF) - 1023
        bits[i] = (b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000
        a[i] = np.float64(e) if x == x else x
    f_all = bits.view(np.float64)
    for i in range(m):
        f = f_all[i]
        e = a[i]
        big = f > _SQRT2
        f = f * 0.5 if big else f
        e = e + 1.0 if big else e
        s = (f - 1.0) / (f + 1.0)
        z = s * s
        p = z * (
            2.0 / 3 + z * (
                2.0 / 5 + z * (
                    2.0 / 7 + z * (
                        2.0 / 9 + z * (
                            2.0 / 11 + z * (
                                2.0 / 13 + z * (
                                    2.0 / 15 + z * (2.0 / 17 + z * (2.0 / 19))
                                )
                            )
                        )
                    )
                )
            )
        )  # fmt: skip
        a[i] = e * _LN2_HI + ((2.0 * s + s * p) + e * _LN2_LO)


@jit
def _load_chunk(X, sample_weight, lo, hi, xt, w):
    """Copy rows ``lo:hi`` transposed into ``xt`` (D, B) and their weights into ``w``."""
    n_features = X.shape[1]
    has_weight = sample_weight.shape[0] > 0
    for i in range(lo, hi):
        for j in range(n_features):
            xt[j, i - lo] = X[i, j]
        w[i - lo] = np.float64(sample_weight[i]) if has_weight else 1.0


@jit
def _logdens_chunk(xt, m, code, shift, prec_mat, prec_diag, offset, bias, logp, dt, y, acc):
    """Weighted log-densities of a chunk's first ``m`` rows into ``logp`` (K, B).

    ``xt`` holds the rows transposed, (D, B), so every inner loop runs over
    contiguous rows and vectorises. ``dt`` (D4, B), ``y`` (D4, B) and ``acc``
    (B,) are scratch in the data's dtype (D4: D rounded up to a multiple of 4);
    only TIED uses ``dt`` and ``y``. ``logp`` is in the data's dtype too: the
    densities are formed in it, and float32 data normalise in float32.
    """
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = bias.shape[0]
    if code == TIED:
        # z = (x - c) @ U once per row, then ||z - offset_k||^2 per component.
        for j in range(n_features):
            c = shift[0, j]
            for i in range(m):
                dt[j, i] = xt[j, i] - c
        _triangular_product(dt, prec_mat[0], m, y)
        for k in range(n_components):
            for i in range(m):
                acc[i] = 0.0
            for j in range(n_features):
                off = offset[k, j]
                for i in range(m):
                    t = y[j, i] - off
                    acc[i] += t * t
            _write_logp(logp, k, bias[k], acc, m)
        return
    if code == FULL:
        _full_logdens(xt, m, shift, prec_mat, bias, logp)
        return
    _diag_logdens(xt, m, shift, prec_diag, bias, logp)


@jit
def _triangular_product(dt, u, m, y):
    """``y[:, :m] = (dt[:, :m].T @ u).T`` for upper-triangular ``u`` (D, D).

    Four terms per pass over the rows: one load and store of ``y`` per four
    multiply-adds instead of per one.
    """
    prefer_wide_vectors()
    n_features = u.shape[0]
    for j in range(n_features):
        for i in range(m):
            y[j, i] = 0.0
        a = 0
        while a + 4 <= j + 1:
            u0 = u[a, j]
            u1 = u[a + 1, j]
            u2 = u[a + 2, j]
            u3 = u[a + 3, j]
            for i in range(m):
                y[j, i] += (u0 * dt[a, i] + u1 * dt[a + 1, i]) + (
                    u2 * dt[a + 2, i] + u3 * dt[a + 3, i]
                )
            a += 4
        while a <= j:
            ua = u[a, j]
            for i in range(m):
                y[j, i] += ua * dt[a, i]
            a += 1


@jit(inline=True)
def _scratch(rows, cols, like, zeroed):
    """(rows, cols) scratch of ``like``'s dtype, every row on a 64-byte boundary.

    numba aligns arrays to 32 bytes only, so half of all allocations put each
    512-bit load across two cache lines: the same full-covariance kernel then
    ran 10-30% slower from one process (or call) to the next. Rows get one
    spare cache line, so that rows a power of two bytes apart (a 512-row
    chunk) do not share L1 sets. ``zeroed`` fills the whole buffer with zeros.
    """
    per_line = 64 // like.itemsize
    stride = (cols + per_line - 1) // per_line * per_line + per_line
    size = rows * stride + per_line
    buf = np.zeros(size, dtype=like.dtype) if zeroed else np.empty(size, dtype=like.dtype)
    off = ((64 - buf.ctypes.data % 64) % 64) // like.itemsize
    return buf[off : off + rows * stride].reshape((rows, stride))


@jit
def _features4(n_features):
    """``n_features`` rounded up to a multiple of 4 (the register block size)."""
    return (n_features + 3) // 4 * 4


@jit
def _padded_upper(u, up):
    """Copy the upper triangle of ``u`` (D, D) into ``up`` (D4, D4); zeros elsewhere.

    Only ``a <= j`` is read, as scikit-learn's precision Cholesky factors are
    upper triangular; the zero padding lets every 4 x 4 block run in full.
    """
    n_features = u.shape[0]
    for a in range(up.shape[0]):
        for j in range(up.shape[1]):
            up[a, j] = u[a, j] if (a <= j and j < n_features) else 0.0


@jit
def _full_logdens(xt, m, shift, prec_mat, bias, logp):
    """Full-covariance log-densities of a chunk's first ``m`` rows into ``logp`` (K, B).

    Tiles of ``_TILE`` rows outside, components inside: a tile of ``xt``
    stays in L1 while every component centres it. The scratch is allocated
    here, not passed in: LLVM then knows it aliases nothing and vectorises the
    blocked loops without runtime overlap checks (with them it gives up). Rows
    are addressed through slices: an offset index (``xt[j, i0 + i]``) keeps
    numba's negative-index wraparound in the loop and stops it vectorising.
    """
    prefer_wide_vectors()
    n_components, n_features = shift.shape
    n4 = _features4(n_features)
    up = np.zeros((n_components, n4, n4), dtype=prec_mat.dtype)
    for k in range(n_components):
        _padded_upper(prec_mat[k], up[k])
    dt = _scratch(n4, _TILE, xt, True)
    y = _scratch(4, _TILE, xt, False)
    part = _scratch(1, _TILE, xt, False)[0]
    for i0 in range(0, m, _TILE):
        tile = min(_TILE, m - i0)
        for k in range(n_components):
            for j in range(n_features):
                c = shift[k, j]
                src = xt[j, i0 : i0 + tile]
                dst = dt[j]
                for i in range(tile):
                    dst[i] = src[i] - c
            _triangular_norm(dt, up[k], tile, y, part)
            b = bias[k]
            out = logp[k, i0 : i0 + tile]
            for i in range(tile):
                out[i] = b - 0.5 * part[i]


@jit
def _triangular_norm(dt, up, tile, y, acc):
    """``acc[i] = || dt[:, i] @ up ||^2`` for ``i < tile``.

    ``up`` (D4, D4) is upper triangular and zero-padded, ``dt`` (D4, B) has
    zero rows past D. Outputs come in blocks of 4 features: the off-diagonal
    4 x 4 blocks of ``up`` are folded into ``y[0:4]`` (16 multiply-adds per 4
    loads and 4 stores per row vector), the diagonal block finishes the 4
    outputs in registers and adds their squares to ``acc``, so the product is
    never stored. The first block of each kind stores instead of adding, so
    neither ``y`` nor ``acc`` is zeroed first: bitwise the same outputs, 6-11%
    less time (benchmarks/ab_kernels.py, one thread, D = K = 16).
    """
    prefer_wide_vectors()
    n4 = up.shape[0]
    for jg in range(0, n4, 4):
        # y holds the 4 outputs' sums over the blocks left of the diagonal.
        for ag in range(0, jg, 4):
            u00 = up[ag, jg]
            u01 = up[ag, jg + 1]
            u02 = up[ag, jg + 2]
            u03 = up[ag, jg + 3]
            u10 = up[ag + 1, jg]
            u11 = up[ag + 1, jg + 1]
            u12 = up[ag + 1, jg + 2]
            u13 = up[ag + 1, jg + 3]
            u20 = up[ag + 2, jg]
            u21 = up[ag + 2, jg + 1]
            u22 = up[ag + 2, jg + 2]
            u23 = up[ag + 2, jg + 3]
            u30 = up[ag + 3, jg]
            u31 = up[ag + 3, jg + 1]
            u32 = up[ag + 3, jg + 2]
            u33 = up[ag + 3, jg + 3]
            if ag == 0:
                for i in range(tile):
                    d0 = dt[0, i]
                    d1 = dt[1, i]
                    d2 = dt[2, i]
                    d3 = dt[3, i]
                    y[0, i] = (u00 * d0 + u10 * d1) + (u20 * d2 + u30 * d3)
                    y[1, i] = (u01 * d0 + u11 * d1) + (u21 * d2 + u31 * d3)
                    y[2, i] = (u02 * d0 + u12 * d1) + (u22 * d2 + u32 * d3)
                    y[3, i] = (u03 * d0 + u13 * d1) + (u23 * d2 + u33 * d3)
                continue
            for i in range(tile):
                d0 = dt[ag, i]
                d1 = dt[ag + 1, i]
                d2 = dt[ag + 2, i]
                d3 = dt[ag + 3, i]
                y[0, i] += (u00 * d0 + u10 * d1) + (u20 * d2 + u30 * d3)
                y[1, i] += (u01 * d0 + u11 * d1) + (u21 * d2 + u31 * d3)
                y[2, i] += (u02 * d0 + u12 * d1) + (u22 * d2 + u32 * d3)
                y[3, i] += (u03 * d0 + u13 * d1) + (u23 * d2 + u33 * d3)
        u00 = up[jg, jg]
        u01 = up[jg, jg + 1]
        u02 = up[jg, jg + 2]
        u03 = up[jg, jg + 3]
        u11 = up[jg + 1, jg + 1]
        u12 = up[jg + 1, jg + 2]
        u13 = up[jg + 1, jg + 3]
        u22 = up[jg + 2, jg + 2]
        u23 = up[jg + 2, jg + 3]
        u33 = up[jg + 3, jg + 3]
        if jg == 0:
            for i in range(tile):
                d0 = dt[0, i]
                d1 = dt[1, i]
                d2 = dt[2, i]
                d3 = dt[3, i]
                t0 = u00 * d0
                t1 = u01 * d0 + u11 * d1
                t2 = (u02 * d0 + u12 * d1) + u22 * d2
                t3 = (u03 * d0 + u13 * d1) + (u23 * d2 + u33 * d3)
                acc[i] = (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)
            continue
        for i in range(tile):
            d0 = dt[jg, i]
            d1 = dt[jg + 1, i]
            d2 = dt[jg + 2, i]
            d3 = dt[jg + 3, i]
            t0 = y[0, i] + u00 * d0
            t1 = y[1, i] + (u01 * d0 + u11 * d1)
            t2 = y[2, i] + ((u02 * d0 + u12 * d1) + u22 * d2)
            t3 = y[3, i] + ((u03 * d0 + u13 * d1) + (u23 * d2 + u33 * d3))
            acc[i] += (t0 * t0 + t1 * t1) + (t2 * t2 + t3 * t3)


@jit
def _write_logp(logp, k, b, acc, m):
    for i in range(m):
        logp[k, i] = b - 0.5 * acc[i]


@jit(inline=True)
def _block_tile_rows(itemsize):
    """Rows per tile of a 4 x 4 register block: as many vector iterations as on AVX2.

    For the kernels whose blocks broadcast 16 or 32 scalars and run them
    over a tile of rows (:func:`_diag_logdens`,
    :func:`fastmix._kernels.kmeans._cross_products`): each block's
    broadcasts are repaid over its tile. _TILE rows of float64 with 16
    vector registers (AVX2, 32-byte vectors), twice as many of float32 (the
    same bytes), and twice as many again with 32 (on x86, AVX-512's 64-byte
    vectors; other targets with 32 registers get the same, unmeasured): at
    _TILE rows an AVX-512 block ran half the vector iterations of an AVX2
    one. Doubling them took 0.84-0.91x the time for the diagonal densities
    (Ice Lake; D x K = 64 x 256, 40 x 1024, 128 x 32, 16 x 16, both dtypes)
    and 0.89-0.96x for the cross products (64 x 256, 40 x 1024, 16 x 16,
    128 x 8). A row's results are the same wherever it sits in the tiles.
    """
    return _TILE * 8 // itemsize * (2 if vector_registers() >= 32 else 1)


@jit
def _diag_logdens(xt, m, shift, prec_diag, bias, logp):
    """Diagonal log-densities of a chunk's first ``m`` rows into ``logp`` (K, B).

    ``logp[k, i] = bias_k - 0.5 * sum_j prec_diag[k, j] * (xt[j, i] - shift[k, j])**2``,
    every difference centred on its own component (no expansion of the square,
    so no cancellation at any offset). Register tiles of 4 components x 4
    features: each pass over a tile of rows (:func:`_block_tile_rows`) loads
    4 feature rows once for 16 (component, feature) pairs and updates 4
    running sums, which stay in L1. The densities are formed in the
    data's dtype, as before; ``xt`` is (D, B), ``shift`` and ``prec_diag``
    (K, D) in its dtype, ``bias`` (K,) float64; ``logp`` (K, B) in its dtype
    is written. Per (row, component, feature): one subtraction, one product and
    one multiply-add, the least a centred square costs. A last partial group
    of features reads a zero row with a zero mean and precision (it adds
    exactly 0); a last partial group of components repeats the last
    component and its sums are dropped. The sums are scratch of ``xt``'s
    dtype allocated here (so LLVM knows they alias nothing).
    """
    prefer_wide_vectors()
    n_components, n_features = shift.shape
    last_k = n_components - 1
    last_j = n_features - 1
    rows = _block_tile_rows(xt.itemsize)
    acc = _scratch(4, rows, xt, False)
    a0 = acc[0]
    a1 = acc[1]
    a2 = acc[2]
    a3 = acc[3]
    zero = shift[0, 0] - shift[0, 0]  # 0 in shift's dtype (shift is finite)
    zrow = _scratch(1, rows, xt, True)[0]
    for i0 in range(0, m, rows):
        tile = min(rows, m - i0)
        for kg in range(0, n_components, 4):
            k0 = kg
            k1 = min(kg + 1, last_k)
            k2 = min(kg + 2, last_k)
            k3 = min(kg + 3, last_k)
            for jg in range(0, n_features, 4):
                j0 = jg
                j1 = min(jg + 1, last_j)
                j2 = min(jg + 2, last_j)
                j3 = min(jg + 3, last_j)
                v1 = jg + 1 <= last_j
                v2 = jg + 2 <= last_j
                v3 = jg + 3 <= last_j
                x0 = xt[j0, i0 : i0 + tile]
                x1 = xt[j1, i0 : i0 + tile] if v1 else zrow[:tile]
                x2 = xt[j2, i0 : i0 + tile] if v2 else zrow[:tile]
                x3 = xt[j3, i0 : i0 + tile] if v3 else zrow[:tile]
                m00 = shift[k0, j0]
                m01 = shift[k0, j1] if v1 else zero
                m02 = shift[k0, j2] if v2 else zero
                m03 = shift[k0, j3] if v3 else zero
                m10 = shift[k1, j0]
                m11 = shift[k1, j1] if v1 else zero
                m12 = shift[k1, j2] if v2 else zero
                m13 = shift[k1, j3] if v3 else zero
                m20 = shift[k2, j0]
                m21 = shift[k2, j1] if v1 else zero
                m22 = shift[k2, j2] if v2 else zero
                m23 = shift[k2, j3] if v3 else zero
                m30 = shift[k3, j0]
                m31 = shift[k3, j1] if v1 else zero
                m32 = shift[k3, j2] if v2 else zero
                m33 = shift[k3, j3] if v3 else zero
                p00 = prec_diag[k0, j0]
                p10 = prec_diag[k1, j0]
                p20 = prec_diag[k2, j0]
                p30 = prec_diag[k3, j0]
                p01 = prec_diag[k0, j1] if v1 else zero
                p11 = prec_diag[k1, j1] if v1 else zero
                p21 = prec_diag[k2, j1] if v1 else zero
                p31 = prec_diag[k3, j1] if v1 else zero
                p02 = prec_diag[k0, j2] if v2 else zero
                p12 = prec_diag[k1, j2] if v2 else zero
                p22 = prec_diag[k2, j2] if v2 else zero
                p32 = prec_diag[k3, j2] if v2 else zero
                p03 = prec_diag[k0, j3] if v3 else zero
                p13 = prec_diag[k1, j3] if v3 else zero
                p23 = prec_diag[k2, j3] if v3 else zero
                p33 = prec_diag[k3, j3] if v3 else zero
                if jg == 0:
                    for i in range(tile):
                        d0 = x0[i]
                        d1 = x1[i]
                        d2 = x2[i]
                        d3 = x3[i]
                        t0 = d0 - m00
                        t1 = d1 - m01
                        t2 = d2 - m02
                        t3 = d3 - m03
                        a0[i] = ((p00 * t0) * t0 + (p01 * t1) * t1) + (
                            (p02 * t2) * t2 + (p03 * t3) * t3
                        )
                        t0 = d0 - m10
                        t1 = d1 - m11
                        t2 = d2 - m12
                        t3 = d3 - m13
                        a1[i] = ((p10 * t0) * t0 + (p11 * t1) * t1) + (
                            (p12 * t2) * t2 + (p13 * t3) * t3
                        )
                        t0 = d0 - m20
                        t1 = d1 - m21
                        t2 = d2 - m22
                        t3 = d3 - m23
                        a2[i] = ((p20 * t0) * t0 + (p21 * t1) * t1) + (
                            (p22 * t2) * t2 + (p23 * t3) * t3
                        )
                        t0 = d0 - m30
                        t1 = d1 - m31
                        t2 = d2 - m32
                        t3 = d3 - m33
                        a3[i] = ((p30 * t0) * t0 + (p31 * t1) * t1) + (
                            (p32 * t2) * t2 + (p33 * t3) * t3
                        )
                    continue
                for i in range(tile):
                    d0 = x0[i]
                    d1 = x1[i]
                    d2 = x2[i]
                    d3 = x3[i]
                    t0 = d0 - m00
                    t1 = d1 - m01
                    t2 = d2 - m02
                    t3 = d3 - m03
                    a0[i] += ((p00 * t0) * t0 + (p01 * t1) * t1) + (
                        (p02 * t2) * t2 + (p03 * t3) * t3
                    )
                    t0 = d0 - m10
                    t1 = d1 - m11
                    t2 = d2 - m12
                    t3 = d3 - m13
                    a1[i] += ((p10 * t0) * t0 + (p11 * t1) * t1) + (
                        (p12 * t2) * t2 + (p13 * t3) * t3
                    )
                    t0 = d0 - m20
                    t1 = d1 - m21
                    t2 = d2 - m22
                    t3 = d3 - m23
                    a2[i] += ((p20 * t0) * t0 + (p21 * t1) * t1) + (
                        (p22 * t2) * t2 + (p23 * t3) * t3
                    )
                    t0 = d0 - m30
                    t1 = d1 - m31
                    t2 = d2 - m32
                    t3 = d3 - m33
                    a3[i] += ((p30 * t0) * t0 + (p31 * t1) * t1) + (
                        (p32 * t2) * t2 + (p33 * t3) * t3
                    )
            for c in range(min(4, n_components - kg)):
                b = bias[kg + c]
                src = acc[c]
                out = logp[kg + c, i0 : i0 + tile]
                for i in range(tile):
                    out[i] = b - 0.5 * src[i]


@jit
def _split_sparse(w, m, resp, nk, active):
    """Add ``nk`` and sort the components with a non-zero total for :func:`_diag_moments`.

    Those with more than ``m / _SPARSE_SHARE`` non-zero responsibilities go
    to the front of ``active``, the others to its back. Returns both counts.
    """
    prefer_wide_vectors()
    n_components = resp.shape[0]
    n_dense = 0
    n_few = 0
    for k in range(n_components):
        r = resp[k]
        total = 0.0
        count = 0
        for i in range(m):
            total += w[i] * r[i]
            count += r[i] != 0
        if total != 0.0:
            nk[k] += total
            if count * _SPARSE_SHARE <= m:
                n_few += 1
                active[n_components - n_few] = k
            else:
                active[n_dense] = k
                n_dense += 1
    return n_dense, n_few


@jit
def _nonzero_rows(r, m, rows):
    """The indices ``i < m`` with ``r[i] != 0``, in order, into ``rows`` (at least m long).

    Returns how many. Found 32 at a time: one vectorised sum of 32
    responsibilities (r >= 0, so 0 only when all are; NaN is not 0) decides
    whether to look at them one by one. Slices, not offset indices: those
    keep numba's wraparound check in the loop and stop it vectorising.
    """
    n = 0
    for i0 in range(0, m, 32):
        rb = r[i0 : min(i0 + 32, m)]
        seen = 0.0
        for i in range(rb.shape[0]):
            seen += rb[i]
        if seen != 0.0:
            for i in range(rb.shape[0]):
                rows[n] = i0 + i  # n <= i0 + i: never past what is filled
                n += rb[i] != 0
    return n


@jit
def _sparse_moments(xr, w, m, shift, resp, components, s1, s2_diag, second):
    """:func:`_diag_moments`' row-wise path for ``components`` with few non-zeros.

    For each non-zero ``r_ki``, ``u = w_i r_ki`` times the row's difference
    from ``shift_k`` (data's dtype) is added to ``s1[k]`` and, when
    ``second``, times that difference again to ``s2_diag[k]``, in float64 and
    row order, vectorised over the features of ``xr[i]`` (the row as stored).
    """
    prefer_wide_vectors()
    n_features = shift.shape[1]
    rows = np.empty(m, dtype=np.int64)
    for k in components:
        r = resp[k]
        n = _nonzero_rows(r, m, rows)
        mu = shift[k]
        a = s1[k]
        if second:
            q = s2_diag[k]
            for t in range(n):
                i = rows[t]
                u = w[i] * r[i]
                x = xr[i]
                for j in range(n_features):
                    v = x[j] - mu[j]
                    uv = u * v
                    a[j] += uv
                    q[j] += uv * v
        else:
            for t in range(n):
                i = rows[t]
                u = w[i] * r[i]
                x = xr[i]
                for j in range(n_features):
                    a[j] += u * (x[j] - mu[j])


@jit
def _diag_moments(xt, xr, w, m, shift, resp, nk, s1, s2_diag, like, sparse):
    """Add ``nk``, ``s1`` and (when ``s2_diag`` has K rows) ``s2_diag`` of a chunk.

    ``nk[k] += sum_i w_i r_ki``, ``s1[k, j] += sum_i w_i r_ki d_kij`` and
    ``s2_diag[k, j] += sum_i w_i r_ki d_kij**2`` with ``d_kij = xt[j, i] -
    shift[k, j]`` centred on its own component, for the first ``m`` rows;
    ``resp`` (K, B) and ``xt`` (D, B) are in the data's dtype (float32 or
    float64), ``w`` (B,) in float64. TIED passes
    ``s2_diag`` of shape (0, D) and gets ``s1`` only. ``nk`` is summed in
    float64.

    The differences are taken in the data's dtype; ``w r``, the products and
    the partial sums over tiles of :data:`MOMENT_TILE` rows in ``like``'s
    dtype, then added into float64. DIAG and SPHERICAL pass ``xt``: float32
    data get float32 tiles (the allowance decided in issue 12), whose sums
    are off by up to (MOMENT_TILE + 4) u32 of their terms' absolute sum, so
    a collapsing component's scatter, ``s2 - 2 d s1 + nk d**2``, can come
    out below zero by that much (it was -1.9e-7 with reg_covar 1e-6 at
    5000 x 64, K = 256): the M-steps clamp a float32 scatter at zero
    (``fastmix._update.gaussian_parameters``,
    ``fastmix._variational.moments_from_stats``). A float32 tile takes a
    ``w r`` below 2**-86 as 0 (see the comment where it is formed). TIED
    passes ``w``
    (float64): its ``s1`` feeds the between-component term of one pooled
    covariance, ``nk (mean_k - c)(mean_k - c)^T`` around a common centre
    ``c``, where a float32 error in ``s1`` is multiplied by the distance
    between components, not by the spread within them.

    Components whose every weighted responsibility is zero are skipped (a
    row's zero responsibility adds exactly nothing). The others run in
    register tiles of 4 components x 1 feature: one load of a feature row per
    4 components, 8 running sums in registers, one horizontal sum per
    (component, feature) per chunk. A last partial tile of components
    repeats its last component and drops the repeats' sums.

    ``sparse`` is None, or a float when the caller has set the
    responsibilities below ``min_resp`` to zero. Then a component with at
    most ``m / _SPARSE_SHARE`` non-zero responsibilities in the chunk takes
    a row-wise path instead (:func:`_sparse_moments`): for each of its rows,
    ``w r (x - shift_k)`` and its square over the row ``xr[i]`` ((B, D), the
    chunk's rows as stored) are added straight into float64, vectorised over
    the features. Its cost follows the non-zeros, not B x D.
    """
    prefer_wide_vectors()
    n_components, n_features = shift.shape
    second = s2_diag.shape[0] == n_components
    active = np.empty(n_components, dtype=np.int64)
    n_active = 0
    # ``sparse`` is None or a float: numba prunes the branch for None at
    # compile time, so exact fits never compile the sparse path (~3 s).
    if sparse is not None:
        n_active, n_few = _split_sparse(w, m, resp, nk, active)
        if n_few > 0:
            few = active[n_components - n_few :]
            _sparse_moments(xr, w, m, shift, resp, few, s1, s2_diag, second)
    else:
        for k in range(n_components):
            r = resp[k]
            total = 0.0
            for i in range(m):
                total += w[i] * r[i]
            if total != 0.0:
                # Every responsibility underflowed otherwise: nothing to add (common
                # for well-separated components, and it skips the moments).
                nk[k] += total
                active[n_active] = k
                n_active += 1
    # w r in like's dtype: the products and the partial sums over a tile of
    # rows run in it too (16 float32 lanes per vector, not 8), and are added
    # into float64 at the end of every tile.
    wr = _scratch(4, m, like, False)
    zero = np.zeros(1, dtype=like.dtype)[0]
    # float32 tiles take a w r below 2**-86 as 0. Subnormal operands and
    # results cost microcode assists: a w r below 2**-126, float32's smallest
    # normal, made the float32 moments 1.6x slower (Zen 5, 64 x 256: 81% of a
    # fitted model's responsibilities were below it), and the products w r v
    # and w r v**2 of a w r just above it, subnormal for |v| < 1, made them
    # 2.1x slower on an Intel Xeon (893 against 427 us a chunk; as fast as
    # with FTZ/DAZ set once the floor was 2**-86). A term dropped is below
    # 2**-86 |v|**p absolute, 1e-26 of a unit responsibility's.
    # float64 tiles keep every value (w r >= 0 is never below 0); NaN fails
    # the comparison and is kept.
    tiny = _F32_TINY if like.itemsize == 4 else 0.0
    # float64 tiles: one tile per chunk, nothing to flush (as before the tiles).
    tile_rows = MOMENT_TILE if like.itemsize == 4 else max(m, 1)
    for g in range(0, n_active, 4):
        n_tile = min(4, n_active - g)
        k0 = active[g]
        k1 = active[g + min(1, n_tile - 1)]
        k2 = active[g + min(2, n_tile - 1)]
        k3 = active[g + min(3, n_tile - 1)]
        r0 = resp[k0]
        r1 = resp[k1]
        r2 = resp[k2]
        r3 = resp[k3]
        w0 = wr[0]
        w1 = wr[1]
        w2 = wr[2]
        w3 = wr[3]
        for i in range(m):
            wi = w[i]
            u0 = wi * r0[i]
            u1 = wi * r1[i]
            u2 = wi * r2[i]
            u3 = wi * r3[i]
            w0[i] = zero if u0 < tiny else u0
            w1[i] = zero if u1 < tiny else u1
            w2[i] = zero if u2 < tiny else u2
            w3[i] = zero if u3 < tiny else u3
        for j in range(n_features):
            m0 = shift[k0, j]
            m1 = shift[k1, j]
            m2 = shift[k2, j]
            m3 = shift[k3, j]
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            q0 = 0.0
            q1 = 0.0
            q2 = 0.0
            q3 = 0.0
            for t0 in range(0, m, tile_rows):
                t1 = min(t0 + tile_rows, m)
                # Slices, not offset indices: those keep numba's wraparound
                # check in the loop and stop it vectorising.
                x = xt[j, t0:t1]
                v0 = w0[t0:t1]
                v1 = w1[t0:t1]
                v2 = w2[t0:t1]
                v3 = w3[t0:t1]
                b0 = zero
                b1 = zero
                b2 = zero
                b3 = zero
                p0 = zero
                p1 = zero
                p2 = zero
                p3 = zero
                for i in range(t1 - t0):
                    d = x[i]
                    v = d - m0
                    u = v0[i] * v
                    b0 += u
                    p0 += u * v
                    v = d - m1
                    u = v1[i] * v
                    b1 += u
                    p1 += u * v
                    v = d - m2
                    u = v2[i] * v
                    b2 += u
                    p2 += u * v
                    v = d - m3
                    u = v3[i] * v
                    b3 += u
                    p3 += u * v
                a0 += b0
                a1 += b1
                a2 += b2
                a3 += b3
                q0 += p0
                q1 += p1
                q2 += p2
                q3 += p3
            s1[k0, j] += a0
            if n_tile > 1:
                s1[k1, j] += a1
            if n_tile > 2:
                s1[k2, j] += a2
            if n_tile > 3:
                s1[k3, j] += a3
            if second:
                s2_diag[k0, j] += q0
                if n_tile > 1:
                    s2_diag[k1, j] += q1
                if n_tile > 2:
                    s2_diag[k2, j] += q2
                if n_tile > 3:
                    s2_diag[k3, j] += q3


@jit
def _normalise_chunk(logp, m, lse, rlogr, total, t, scale_bits):
    """Log-densities (K, B) -> unnormalised responsibilities in place, one exp per entry.

    ``logp`` is in the data's dtype and so are its results: each entry
    becomes ``e_k = exp(logp_k - max_j logp_j)``, the row's responsibilities
    times its ``total = sum_k e_k``. Writes each row's stable log-sum-exp into
    ``lse``, ``sum_k r log r`` into ``rlogr`` and ``1 / total`` into ``total``
    (all float64): the caller folds ``1 / total`` into the row's weight
    instead of scaling K entries per row. ``t`` (B,) float64 and
    ``scale_bits`` (B,) int64 are scratch. A row whose every density is zero
    gets lse = NaN (its maximum is -inf, and -inf - -inf is NaN) and NaN
    responsibilities: the caller reports it rather than dividing 0 by 0.
    """
    prefer_wide_vectors()
    n_components = logp.shape[0]
    # The row max and e_k's exponent in logp's dtype: 16 float32 lanes per vector.
    mx = _scratch(1, m, logp, False)[0]
    tk = _scratch(1, m, logp, False)[0]
    for i in range(m):
        mx[i] = logp[0, i]
        rlogr[i] = 0.0
        total[i] = 0.0
    # Four rows a pass: mx is loaded and stored once per four (the same
    # comparisons in the same order), and LLVM uses vector max instructions.
    # One row a pass became a compare and a masked store of mx (slow on AMD),
    # 4x the time on Zen 3 (63 against 16 us for a chunk at K = 256). A last
    # group short of four repeats the last row: comparing again with a value
    # already compared changes nothing, NaN included.
    for k in range(1, n_components, 4):
        r0 = logp[k]
        r1 = logp[min(k + 1, n_components - 1)]
        r2 = logp[min(k + 2, n_components - 1)]
        r3 = logp[min(k + 3, n_components - 1)]
        for i in range(m):
            a = mx[i]
            v = r0[i]
            a = v if v > a else a
            v = r1[i]
            a = v if v > a else a
            v = r2[i]
            a = v if v > a else a
            v = r3[i]
            mx[i] = v if v > a else a
    # e_k = exp(t_k), t_k = logp_k - max; total = sum_k e_k and rlogr =
    # sum_k e_k t_k (0 * -inf taken as 0), both summed in float64.
    for k in range(n_components):
        row = logp[k]
        for i in range(m):
            tk[i] = row[i] - mx[i]
        scale = _exp_rows(tk, row, m, scale_bits)
        for i in range(m):
            e = row[i] * scale[i]
            row[i] = e
            total[i] += e
            rlogr[i] += e * tk[i] if e > 0.0 else 0.0
    # total is in [1, K] (its largest term is exp(0)) or NaN: in _log_inplace's domain.
    for i in range(m):
        t[i] = total[i]
    _log_inplace(t, m, scale_bits)
    for i in range(m):
        inv = 1.0 / total[i]
        rlogr[i] = rlogr[i] * inv - t[i]
        lse[i] = mx[i] + t[i]
        total[i] = inv


@jit
def _chunk_stats(xt, xr, w, m, code, shift, resp, nk, s1, s2_mat, s2_diag, dt, wd, wr, sparse):
    """Add a chunk's statistics given its responsibilities ``wr_i resp[k, i] / w_i``.

    ``resp`` (K, B) holds :func:`_normalise_chunk`'s unnormalised
    responsibilities (data's dtype) and ``wr`` (B,) float64 each row's weight
    over its total, so that ``wr_i resp[k, i]`` is ``w_i r_ki``; ``w`` (B,)
    is the weight itself, which only TIED's pooled second moment uses.
    ``dt`` (D4, B) in the data's dtype and ``wd`` (D4, B) in float64 are
    scratch; rows D: of both must be zero. Only TIED uses them. ``xr`` (B, D)
    holds the chunk's rows as stored, for the sparse moments (``sparse``, None
    or a float: see :func:`_diag_moments`).
    """
    prefer_wide_vectors()
    n_features = xt.shape[0]
    if code == FULL:
        _full_stats(xt, wr, m, shift, resp, nk, s1, s2_mat, sparse)
        return
    if code == TIED:
        for j in range(n_features):
            c = shift[0, j]
            for i in range(m):
                v = xt[j, i] - c
                dt[j, i] = v
                wd[j, i] = w[i] * v
        _upper_gram(wd, dt, m, s2_mat[0])
        # float64 tiles: see _diag_moments.
        _diag_moments(xt, xr, wr, m, shift, resp, nk, s1, s2_diag, wr, sparse)
    else:
        _diag_moments(xt, xr, wr, m, shift, resp, nk, s1, s2_diag, xt, sparse)


@jit
def _packed_moments(xt, i0, rows, sr, n, mu, sd, s1):
    """``sd[j, q] = sr[q] (x_j - mu_j)`` of the packed rows; ``s1 += sum_q sr[q] sd[:, q]``.

    Row ``q`` is row ``i0 + rows[q]`` of the chunk; ``sr[q]`` its ``sqrt(w r)``.
    """
    for j in range(mu.shape[0]):
        src = xt[j, i0:]
        dd = sd[j]
        c = mu[j]
        s = 0.0
        for q in range(n):
            v = sr[q] * (src[rows[q]] - c)
            dd[q] = v
            s += sr[q] * v
        s1[j] += s


@jit
def _full_stats(xt, w, m, shift, resp, nk, s1, s2_mat, sparse):
    """Full-covariance statistics of a chunk given its responsibilities ``resp`` (K, B).

    Tiles of ``_STATS_TILE`` rows outside, components inside, as in
    :func:`_full_logdens`: the scaled, centred tile (D4 x _STATS_TILE) stays
    in L1 for its 4 x 4 Gram blocks, where the whole chunk (64 KiB at D = 16)
    would stream from L2 once per block. Scaling each row by ``sqrt(w r)``
    instead of weighting one operand by ``w r`` made the statistics 1.5x
    faster (one array to fill instead of two, 136 products per row instead of
    160 at D = 16).

    ``sparse`` is None (exact; pruned at compile time, see
    :func:`_diag_moments`) or a float, when the caller has set the
    responsibilities below ``min_resp`` to zero: a component's tile then
    holds only its rows with a non-zero responsibility, packed, so that its
    Gram costs what those rows cost.
    """
    prefer_wide_vectors()
    n_components, n_features = shift.shape
    n4 = _features4(n_features)
    active = np.empty(n_components, dtype=np.bool_)
    for k in range(n_components):
        r = resp[k]
        total = 0.0
        for i in range(m):
            total += w[i] * r[i]
        # Every responsibility underflowed: nothing to add (common for
        # well-separated components, and it skips the costly second moment).
        active[k] = total != 0.0
        nk[k] += total
    # With s = sqrt(w r), the second moment sum w r d d^T is the Gram matrix of
    # the one scaled tile s * d: a single array to fill, and diagonal 4 x 4
    # blocks that need only their upper 10 products.
    sd = _scratch(n4, _STATS_TILE, w, True)
    sr = _scratch(1, _STATS_TILE, w, False)[0]
    rows = np.empty(_STATS_TILE if sparse is not None else 0, dtype=np.int64)
    for i0 in range(0, m, _STATS_TILE):
        tile = min(_STATS_TILE, m - i0)
        wt = w[i0 : i0 + tile]
        for k in range(n_components):
            if not active[k]:
                continue
            r = resp[k, i0 : i0 + tile]
            if sparse is not None:
                n = _nonzero_rows(r, tile, rows)
                for q in range(n):
                    sr[q] = np.sqrt(wt[rows[q]] * r[rows[q]])
                if n > 0:
                    _packed_moments(xt, i0, rows, sr, n, shift[k], sd, s1[k])
                    _symmetric_gram(sd, n, s2_mat[k])
                continue
            for i in range(tile):
                sr[i] = np.sqrt(wt[i] * r[i])
            for j in range(n_features):
                mu = shift[k, j]
                src = xt[j, i0 : i0 + tile]
                dd = sd[j]
                s = 0.0
                for i in range(tile):
                    v = sr[i] * (src[i] - mu)
                    dd[i] = v
                    s += sr[i] * v
                s1[k, j] += s
            _symmetric_gram(sd, tile, s2_mat[k])


@jit
def _symmetric_gram(a, m, out):
    """``out[p, q] += sum_i a[p, i] a[q, i]`` for ``p <= q < D``, in float64.

    ``a`` has D4 rows (D rounded up to a multiple of 4), rows past ``D =
    out.shape[0]`` zero. Off-diagonal blocks by :func:`_gram_block`; a
    diagonal 4 x 4 block loads its 4 rows once and forms only its upper 10
    products.
    """
    prefer_wide_vectors()
    n_features = out.shape[0]
    n4 = a.shape[0]
    cols = _gram_cols()
    for ag in range(0, n4, 4):
        s00 = 0.0
        s01 = 0.0
        s02 = 0.0
        s03 = 0.0
        s11 = 0.0
        s12 = 0.0
        s13 = 0.0
        s22 = 0.0
        s23 = 0.0
        s33 = 0.0
        for i in range(m):
            a0 = a[ag, i]
            a1 = a[ag + 1, i]
            a2 = a[ag + 2, i]
            a3 = a[ag + 3, i]
            s00 += a0 * a0
            s01 += a0 * a1
            s02 += a0 * a2
            s03 += a0 * a3
            s11 += a1 * a1
            s12 += a1 * a2
            s13 += a1 * a3
            s22 += a2 * a2
            s23 += a2 * a3
            s33 += a3 * a3
        _add_block(out, n_features, ag, ag, 4, 0, s00, s01, s02, s03)
        _add_block(out, n_features, ag, ag, 4, 1, 0.0, s11, s12, s13)
        _add_block(out, n_features, ag, ag, 4, 2, 0.0, 0.0, s22, s23)
        _add_block(out, n_features, ag, ag, 4, 3, 0.0, 0.0, 0.0, s33)
        for bg in range(ag + 4, n4, cols):
            _gram_block(a, a, m, ag, bg, cols, out)


@jit
def _upper_gram(wd, dt, m, out):
    """``out[a, b] += sum_i wd[a, i] dt[b, i]`` for ``a <= b < D``, in float64.

    ``wd`` and ``dt`` have D4 rows (D rounded up to a multiple of 4), rows past
    ``D = out.shape[0]`` zero. The sums run in :func:`_gram_block` blocks.
    """
    prefer_wide_vectors()
    n4 = wd.shape[0]
    cols = _gram_cols()
    for ag in range(0, n4, 4):
        for bg in range(ag, n4, cols):
            _gram_block(wd, dt, m, ag, bg, cols, out)


@jit(inline=True)
def _gram_block(wd, dt, m, ag, bg, cols, out):
    """Add ``sum_i wd[ag + r, i] dt[bg + c, i]`` (4 x ``cols``) to ``out``'s upper triangle.

    Each pass over the rows loads 4 + cols rows for 4 cols multiply-adds, all
    kept in registers (see :func:`_gram_cols`). Inlined at numba's IR level:
    as a called function it made the full statistics 15% slower.
    """
    n_features = out.shape[0]
    s00 = 0.0
    s01 = 0.0
    s02 = 0.0
    s03 = 0.0
    s10 = 0.0
    s11 = 0.0
    s12 = 0.0
    s13 = 0.0
    s20 = 0.0
    s21 = 0.0
    s22 = 0.0
    s23 = 0.0
    s30 = 0.0
    s31 = 0.0
    s32 = 0.0
    s33 = 0.0
    for i in range(m):
        a0 = wd[ag, i]
        a1 = wd[ag + 1, i]
        a2 = wd[ag + 2, i]
        a3 = wd[ag + 3, i]
        b0 = dt[bg, i]
        b1 = dt[bg + 1, i]
        s00 += a0 * b0
        s01 += a0 * b1
        s10 += a1 * b0
        s11 += a1 * b1
        s20 += a2 * b0
        s21 += a2 * b1
        s30 += a3 * b0
        s31 += a3 * b1
        if cols == 4:
            b2 = dt[bg + 2, i]
            b3 = dt[bg + 3, i]
            s02 += a0 * b2
            s03 += a0 * b3
            s12 += a1 * b2
            s13 += a1 * b3
            s22 += a2 * b2
            s23 += a2 * b3
            s32 += a3 * b2
            s33 += a3 * b3
    _add_block(out, n_features, ag, bg, cols, 0, s00, s01, s02, s03)
    _add_block(out, n_features, ag, bg, cols, 1, s10, s11, s12, s13)
    _add_block(out, n_features, ag, bg, cols, 2, s20, s21, s22, s23)
    _add_block(out, n_features, ag, bg, cols, 3, s30, s31, s32, s33)


@jit(inline=True)
def _gram_cols():
    """Columns of a Gram block (4 rows of one operand x this many of the other).

    A 4 x 4 block keeps 16 running sums and 8 loaded rows in registers: 24,
    which fit AVX-512's 32. With AVX2's 16, LLVM kept 6 of the sums on the
    stack, stored and reloaded on every pass (a store-to-load chain on each
    sum), and the full statistics ran at half the matmul rate. 4 x 2 blocks
    keep 8 sums and 6 rows: 0.61-0.71x the time of 4 x 4 for ``_symmetric_gram``
    on Zen 3, at D = 64 and 128. Each sum runs over the same rows in the same
    order either way: the same values bit for bit.
    """
    return 4 if vector_registers() >= 32 else 2


@jit(inline=True)
def _add_block(out, n_features, ag, bg, cols, r, s0, s1, s2, s3):
    """Add row ``r`` of a 4 x ``cols`` block at (ag, bg) to ``out``'s upper triangle."""
    a = ag + r
    if a >= n_features:
        return
    if bg >= a and bg < n_features:
        out[a, bg] += s0
    if bg + 1 >= a and bg + 1 < n_features:
        out[a, bg + 1] += s1
    if cols == 4:
        if bg + 2 >= a and bg + 2 < n_features:
            out[a, bg + 2] += s2
        if bg + 3 >= a and bg + 3 < n_features:
            out[a, bg + 3] += s3


@jit
def _drop_below(resp, m, inv_total, min_resp):
    """Zero every responsibility of a chunk below ``min_resp``, in place.

    ``resp`` (K, B) holds :func:`_normalise_chunk`'s ``e_k`` and
    ``inv_total`` its ``1 / total``: ``r_k = e_k / total < min_resp`` is
    ``e_k < min_resp total``, one comparison per entry against a per-row
    threshold in ``resp``'s dtype (float32 data: an entry within float32's
    rounding of the threshold may fall either way). A NaN row compares false
    and keeps its NaN.
    """
    prefer_wide_vectors()
    thr = _scratch(1, m, resp, False)[0]
    for i in range(m):
        thr[i] = min_resp / inv_total[i]
    zero = np.zeros(1, dtype=resp.dtype)[0]
    one = np.ones(1, dtype=resp.dtype)[0]
    # e times 0 or 1: the same values bit for bit as ``zero if e < thr else
    # e`` (e >= 0 or NaN), which LLVM compiled to masked stores of zero, slow
    # on AMD: 65 -> 24 us (float64), 62 -> 11 us (float32) a chunk at K = 256
    # on Zen 3.
    for k in range(resp.shape[0]):
        row = resp[k]
        for i in range(m):
            e = row[i]
            row[i] = e * (zero if e < thr[i] else one)


@jit
def _stats_chunk(
    X, sample_weight, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, min_resp,
    nk, s1, s2_mat, s2_diag, scal,
):  # fmt: skip
    """E-step of rows ``lo:hi``: add the chunk's statistics to a group's partials."""
    prefer_wide_vectors()  # the stages below are inlined into this function
    n_features = X.shape[1]
    n_components = bias.shape[0]
    m = hi - lo
    # Only TIED uses the chunk-wide scratch (FULL allocates per-tile scratch,
    # DIAG needs none): zeroing it for every chunk is not free.
    rows = _features4(n_features) if code == TIED else 0
    f64 = np.empty(0)
    xt = _scratch(n_features, m, X, False)
    dt = _scratch(rows, m, X, True)
    y = _scratch(rows, m, X, False)
    acc = _scratch(1, m, X, False)[0]
    wd = _scratch(rows, m, f64, True)
    w = _scratch(1, m, f64, False)[0]
    lse = _scratch(1, m, f64, False)[0]
    rlogr = _scratch(1, m, f64, False)[0]
    total = _scratch(1, m, f64, False)[0]
    t = _scratch(1, m, f64, False)[0]
    scale_bits = _scratch(1, m, np.empty(0, dtype=np.int64), False)[0]
    logp = _scratch(n_components, m, X, False)
    _load_chunk(X, sample_weight, lo, hi, xt, w)
    _logdens_chunk(xt, m, code, shift, prec_mat, prec_diag, offset, bias, logp, dt, y, acc)
    _normalise_chunk(logp, m, lse, rlogr, total, t, scale_bits)
    sw = 0.0
    swl = 0.0
    swr = 0.0
    for i in range(m):
        if w[i] != 0.0:
            sw += w[i]
            swl += w[i] * lse[i]
            swr += w[i] * rlogr[i]
    scal[0] += sw
    scal[1] += swl
    scal[2] += swr
    # Each row's weight over its total: w r_k = (w / total) e_k.
    for i in range(m):
        t[i] = w[i] * total[i]
    # None (exact) is pruned at compile time: see _diag_moments.
    if min_resp is not None:
        _drop_below(logp, m, total, min_resp)
    xr = X[lo:hi]
    _chunk_stats(xt, xr, w, m, code, shift, logp, nk, s1, s2_mat, s2_diag, dt, wd, t, min_resp)


@jit(inline=True)
def _stats_group(
    X, sample_weight, g, chunk_size, code, shift, prec_mat, prec_diag, offset, bias, min_resp,
    nk, s1, s2_mat, s2_diag, scal,
):  # fmt: skip
    """Add the chunks of group ``g`` (``_GROUP`` consecutive chunks), in order."""
    prefer_wide_vectors()
    n_samples = X.shape[0]
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    for c in range(g * _GROUP, min((g + 1) * _GROUP, n_chunks)):
        lo = c * chunk_size
        hi = min(lo + chunk_size, n_samples)
        _stats_chunk(
            X, sample_weight, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, min_resp,
            nk, s1, s2_mat, s2_diag, scal,
        )  # fmt: skip


@jit
def _partials(n_chunks, n_components, n_features, n_mat, n_diag):
    return (
        np.zeros((n_chunks, n_components)),
        np.zeros((n_chunks, n_components, n_features)),
        np.zeros((n_chunks, n_mat, n_features, n_features)),
        np.zeros((n_chunks, n_diag, n_features)),
        np.zeros((n_chunks, 3)),
    )


@jit
def _add_partials(p_nk, p_s1, p_s2m, p_s2d, p_scal, nk, s1, s2_mat, s2_diag, scal):
    """Sum per-group partials into the outputs in group order (thread-independent)."""
    for c in range(p_nk.shape[0]):
        nk += p_nk[c]
        s1 += p_s1[c]
        s2_mat += p_s2m[c]
        s2_diag += p_s2d[c]
        scal += p_scal[c]


@jit(parallel=True)
def estep_stats(
    X,
    sample_weight,
    code,
    shift,
    prec_mat,
    prec_diag,
    offset,
    bias,
    min_resp,
    chunk_size,
    nk,
    s1,
    s2_mat,
    s2_diag,
    scal,
):
    """One streaming E-step pass over ``X``, adding its statistics to the outputs.

    Parameters
    ----------
    X : ndarray of shape (n, D), float32 or float64, C-contiguous
        A block of rows. Read only.
    sample_weight : ndarray of shape (n,) or (0,), float64
        Per-row weights; an empty array means every weight is 1.
    code : int
        ``FULL``, ``TIED`` or ``DIAG`` (spherical is DIAG, see module notes).
    shift : ndarray of shape (K, D), X.dtype
        Centre per component: the densities are evaluated at ``x - shift_k``
        and the statistics accumulated around it (all rows equal for TIED).
    prec_mat : ndarray of shape (K, D, D) for FULL, (1, D, D) for TIED,
        (0, D, D) for DIAG; X.dtype
        Upper-triangular precision Cholesky factors.
    prec_diag : ndarray of shape (K, D) for DIAG, (0, D) otherwise; X.dtype
        Diagonal precisions (squared Cholesky factors).
    offset : ndarray of shape (K, D), X.dtype
        Subtracted from ``(x - shift_k) @ U_k`` for TIED; FULL and DIAG ignore
        it (callers pass zeros).
    bias : ndarray of shape (K,), float64
        Per-component additive constant of the log-density.
    min_resp : float or None
        Responsibilities below it are left out of ``nk``, ``s1`` and the
        second moments (the estimators' ``min_responsibility``). None keeps
        every one, and is its own compiled specialisation without the sparse
        path (a float compiles one with it). The log-likelihood and
        ``sum r log r`` are those of the whole responsibilities either way.
    chunk_size : int
        Rows per chunk; a chunk is the unit of parallel work and of reduction.
    nk : ndarray of shape (K,), float64
        Written in place: ``+= sum_i w_i r_ik``.
    s1 : ndarray of shape (K, D), float64
        Written in place: ``+= sum_i w_i r_ik (x_i - shift_k)``.
    s2_mat : ndarray of shape (K, D, D) for FULL, (1, D, D) for TIED,
        (0, D, D) for DIAG; float64
        Written in place, upper triangle only: FULL ``+= sum w r (x - shift_k)
        (x - shift_k)^T``; TIED ``+= sum w (x - c)(x - c)^T`` (independent of
        the responsibilities).
    s2_diag : ndarray of shape (K, D) for DIAG, (0, D) otherwise; float64
        Written in place: ``+= sum w r (x - shift_k)**2``.
    scal : ndarray of shape (3,), float64
        Written in place: ``+= [sum w, sum w log p(x), sum w sum_k r log r]``.

    Notes
    -----
    Chunks are taken in groups of ``_GROUP`` consecutive chunks; each group
    adds its chunks, in order, into its own partial slot, and the slots are
    summed in group order, so the result does not depend on the thread count.
    Extra memory is O(chunks / _GROUP · K · D²) for the partials of this block
    plus O(chunk_size · (K + D)) per chunk in flight; no (n, K) array is
    allocated. :func:`estep_stats_serial` runs the same groups in a plain loop
    and gives bitwise the same result.
    """
    prefer_wide_vectors()
    n_samples, n_features = X.shape
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    n_groups = (n_chunks + _GROUP - 1) // _GROUP
    p_nk, p_s1, p_s2m, p_s2d, p_scal = _partials(
        n_groups, bias.shape[0], n_features, s2_mat.shape[0], s2_diag.shape[0]
    )
    for i in prange(n_groups):
        # prange's index is int64 while numba first types this function and
        # uint64 in the loop it then outlines: a helper called with it would
        # be compiled for both (~2 s of a first fit). One type, one compile.
        g = np.int64(i)
        _stats_group(
            X, sample_weight, g, chunk_size, code, shift, prec_mat, prec_diag, offset, bias,
            min_resp, p_nk[g], p_s1[g], p_s2m[g], p_s2d[g], p_scal[g],
        )  # fmt: skip
    _add_partials(p_nk, p_s1, p_s2m, p_s2d, p_scal, nk, s1, s2_mat, s2_diag, scal)


# Deliberate twin of estep_stats: prange compiles to a thread pool only in a
# parallel=True dispatcher, and Dask workers and one-chunk inputs need a serial one.
@jit
def estep_stats_serial(
    X,
    sample_weight,
    code,
    shift,
    prec_mat,
    prec_diag,
    offset,
    bias,
    min_resp,
    chunk_size,
    nk,
    s1,
    s2_mat,
    s2_diag,
    scal,
):
    """:func:`estep_stats` on the calling thread only (same chunks, same sums).

    For inputs of one chunk, where waking a thread pool costs more than the
    work, and for Dask workers, whose threads must never launch a parallel
    kernel. Arguments and outputs as for :func:`estep_stats`.
    """
    prefer_wide_vectors()
    n_samples, n_features = X.shape
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    n_groups = (n_chunks + _GROUP - 1) // _GROUP
    p_nk, p_s1, p_s2m, p_s2d, p_scal = _partials(
        n_groups, bias.shape[0], n_features, s2_mat.shape[0], s2_diag.shape[0]
    )
    for g in range(n_groups):
        _stats_group(
            X, sample_weight, g, chunk_size, code, shift, prec_mat, prec_diag, offset, bias,
            min_resp, p_nk[g], p_s1[g], p_s2m[g], p_s2d[g], p_scal[g],
        )  # fmt: skip
    _add_partials(p_nk, p_s1, p_s2m, p_s2d, p_scal, nk, s1, s2_mat, s2_diag, scal)


@jit
def _rows_chunk(
    X, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, want_resp,
    log_prob_norm, labels, log_resp, probabilities,
):  # fmt: skip
    """Per-row outputs of rows ``lo:hi`` (see :func:`estep_rows`)."""
    prefer_wide_vectors()  # the stages below are inlined into this function
    n_features = X.shape[1]
    n_components = bias.shape[0]
    m = hi - lo
    rows = _features4(n_features) if code == TIED else 0  # see _stats_chunk
    f64 = np.empty(0)
    xt = _scratch(n_features, m, X, False)
    dt = _scratch(rows, m, X, True)
    y = _scratch(rows, m, X, False)
    acc = _scratch(1, m, X, False)[0]
    w = _scratch(1, m, f64, False)[0]
    logp = _scratch(n_components, m, X, False)
    _load_chunk(X, np.empty(0), lo, hi, xt, w)
    _logdens_chunk(xt, m, code, shift, prec_mat, prec_diag, offset, bias, logp, dt, y, acc)
    # The first maximum of each row and its component, as the one-row scan
    # ``if logp[k, i] > mx`` did (NaN never replaces a maximum), four
    # components a pass. The component index is carried in logp's dtype
    # (exact up to 2**24 components in float32), as many lanes a vector as
    # the maximum, so each step is one compare and two selects of one width.
    mx = _scratch(1, m, logp, False)[0]
    best = _scratch(1, m, logp, False)[0]
    index = _scratch(1, n_components, logp, False)[0]
    for k in range(n_components):
        index[k] = k
    for i in range(m):
        mx[i] = logp[0, i]
        best[i] = index[0]
    for k in range(1, n_components, 4):
        r0 = logp[k]
        r1 = logp[min(k + 1, n_components - 1)]
        r2 = logp[min(k + 2, n_components - 1)]
        r3 = logp[min(k + 3, n_components - 1)]
        k0 = index[k]
        k1 = index[min(k + 1, n_components - 1)]
        k2 = index[min(k + 2, n_components - 1)]
        k3 = index[min(k + 3, n_components - 1)]
        for i in range(m):
            a = mx[i]
            b = best[i]
            v = r0[i]
            b = k0 if v > a else b
            a = v if v > a else a
            v = r1[i]
            b = k1 if v > a else b
            a = v if v > a else a
            v = r2[i]
            b = k2 if v > a else b
            a = v if v > a else a
            v = r3[i]
            best[i] = k3 if v > a else b
            mx[i] = v if v > a else a
    for i in range(m):
        labels[lo + i] = int(best[i])
    if want_resp and not probabilities:
        for i in range(m):
            for k in range(n_components):
                log_resp[lo + i, k] = logp[k, i]
    # The log-sum-exp by the fit's normalisation: its exp and log are vectorised
    # (numba's np.exp and np.log are a scalar libm call per element).
    lse = _scratch(1, m, f64, False)[0]
    rlogr = _scratch(1, m, f64, False)[0]
    total = _scratch(1, m, f64, False)[0]
    t = _scratch(1, m, f64, False)[0]
    scale_bits = np.empty(m, dtype=np.int64)
    _normalise_chunk(logp, m, lse, rlogr, total, t, scale_bits)
    for i in range(m):
        top = mx[i]
        if not np.isfinite(top):
            log_prob_norm[lo + i] = top if np.isnan(top) else -np.inf
            if want_resp:
                for k in range(n_components):
                    log_resp[lo + i, k] = np.nan
            continue
        norm = lse[i]
        log_prob_norm[lo + i] = norm
        if want_resp and probabilities:
            # exp(logp - max) / sum: the normalisation's own terms, no second exp.
            inv = total[i]
            for k in range(n_components):
                log_resp[lo + i, k] = logp[k, i] * inv
        elif want_resp:
            for k in range(n_components):
                log_resp[lo + i, k] -= norm


@jit(parallel=True)
def estep_rows(
    X,
    code,
    shift,
    prec_mat,
    prec_diag,
    offset,
    bias,
    chunk_size,
    log_prob_norm,
    labels,
    log_resp,
    probabilities,
):
    """Per-row output pass: log p(x), the most probable component, log-responsibilities.

    Parameters
    ----------
    X, code, shift, prec_mat, prec_diag, offset, bias, chunk_size
        As for :func:`estep_stats`.
    log_prob_norm : ndarray of shape (n,), float64
        Written: the log-sum-exp of each row's weighted log-densities.
    labels : ndarray of shape (n,), int64
        Written: the argmax of each row's weighted log-densities.
    log_resp : ndarray of shape (n, K) or (0, K), float64
        Written only when it has n rows: the log-responsibilities, or with
        ``probabilities`` the responsibilities themselves. This pass is the
        only place an (n, K) array exists, and only when the caller asks.
    probabilities : bool
        Write ``exp(logp_k - max) / sum_j exp(logp_j - max)``, the
        normalisation's own terms, into ``log_resp`` instead of the logarithms
        (``predict_proba``: no exp of the (n, K) array afterwards). Within a
        few ulp of ``exp(log_resp)``; NaN for a row whose maximum is not finite.
    """
    prefer_wide_vectors()
    n_samples = X.shape[0]
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    want_resp = log_resp.shape[0] == n_samples and n_samples > 0
    for i in prange(n_chunks):
        lo = np.int64(i) * chunk_size  # one index type: see estep_stats
        hi = min(lo + chunk_size, n_samples)
        _rows_chunk(
            X, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, want_resp,
            log_prob_norm, labels, log_resp, probabilities,
        )  # fmt: skip


# Deliberate twin of estep_rows, for the reason given at estep_stats_serial.
@jit
def estep_rows_serial(
    X,
    code,
    shift,
    prec_mat,
    prec_diag,
    offset,
    bias,
    chunk_size,
    log_prob_norm,
    labels,
    log_resp,
    probabilities,
):
    """:func:`estep_rows` on the calling thread only; same arguments and outputs."""
    prefer_wide_vectors()
    n_samples = X.shape[0]
    n_chunks = (n_samples + chunk_size - 1) // chunk_size
    want_resp = log_resp.shape[0] == n_samples and n_samples > 0
    for c in range(n_chunks):
        lo = c * chunk_size
        hi = min(lo + chunk_size, n_samples)
        _rows_chunk(
            X, lo, hi, code, shift, prec_mat, prec_diag, offset, bias, want_resp,
            log_prob_norm, labels, log_resp, probabilities,
        )  # fmt: skip
