"""Soft-DTW dynamic programme on CPU: numba kernels over anti-diagonals.

Layout and why:
- Cells on one anti-diagonal d = i + j do not depend on each other, so each
  kernel walks the diagonals in order and vectorises the loop along a diagonal
  (the per-cell exp -> log latency chain of a row-major loop disappears).
- The forward keeps only three diagonals of R (cache-resident) and stores the
  three soft-min probabilities of every cell (diag, up, left predecessor) in a
  flat, diagonal-major buffer P. The backward is then multiply-adds only.
- Items of the batch run in parallel (numba prange) when the process has more
  than one thread, else one after the other in a separately compiled serial
  kernel (:func:`kernels`); each item has its own lengths, so padding is never
  visited by the recursion.
- Each item's costs are first reordered into diagonal-major order in a
  per-thread scratch (and E reordered back to row-major at the end of the
  backward): gathering/scattering a diagonal of a row-major matrix directly
  costs a cache miss per cell.
- R is float64 whatever the input dtype (with gamma ~1e-3 the soft-min
  exponents are (R differences) / gamma, so float32 R would lose them).

P layout: for item b, diagonal d, cell i (row index), probability k:
``P[k, p_base[b] + off_b(d) + i - lo(d)]`` where off_b(d) is the number of
cells of the item's earlier diagonals. The buffer has a zero margin of
``p_margin(N, M)`` before and after: the backward reads one cell beyond a
diagonal's end and multiplies it by an exact zero, which needs a finite value.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
from numba import get_thread_id, njit, prange

from lib.soft_dtw import band
from lib.soft_dtw.fastmath import exp_nonpos, exp_nonpos_f32, log_1_to_3, log_1_to_3_f32

BIG = 1e30  # stands for +inf in R: inf - inf would give NaN in the soft-min


def p_margin(n_max: int, m_max: int) -> int:
    """Zero margin (cells) around the flat probability buffer."""
    return n_max + m_max + 8


band_radius = njit(inline="always")(band.band_geometry)
_band_rows = njit(inline="always")(band.band_rows)


@njit(inline="always")
def band_range(lo: int, cnt: int, d: int, su: float, sv: float, radius: float) -> tuple:
    """(k_lo, k_hi): the in-band cells of diagonal d are lo + k_lo .. lo + k_hi."""
    i_lo, i_hi = _band_rows(d, su, sv, radius)
    return max(0, i_lo - lo), min(cnt - 1, i_hi - lo)


@njit(inline="always")
def _outside_band(r_out, p_diag, p_up, p_left, k_lo, k_hi):
    """Cells of a diagonal outside the Sakoe-Chiba band [k_lo, k_hi]: R = +inf
    (BIG), probabilities 0. Separate from the main loops, which then carry no
    per-cell band test (most diagonals have no cell outside)."""
    cnt = r_out.shape[0]
    for k in range(min(max(k_lo, 0), cnt)):
        r_out[k] = BIG
        p_diag[k] = 0.0
        p_up[k] = 0.0
        p_left[k] = 0.0
    for k in range(max(k_hi + 1, 0), cnt):
        r_out[k] = BIG
        p_diag[k] = 0.0
        p_up[k] = 0.0
        p_left[k] = 0.0


# fastmath "contract" only: lets LLVM fuse a*b+c into FMAs (2x here); no
# reassociation, so results stay deterministic and NaN/inf semantics intact.
@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _forward_diagonal(dd, a_diag, a_up, a_left, r_out, p_diag, p_up, p_left,
                      k_lo, k_hi, gamma):
    """One anti-diagonal of the forward recursion, float64 throughout.

    Used for float64 inputs (gradient checks, reference runs). A separate
    function so that LLVM sees plain unit-stride array arguments (not views
    re-loaded inside the caller's loop) and vectorises the loop.
    """
    inv_gamma = 1.0 / gamma
    for k in range(dd.shape[0]):
        r0 = a_diag[k]
        r1 = a_up[k]
        r2 = a_left[k]
        rmin = min(r0, min(r1, r2))
        e0 = exp_nonpos((rmin - r0) * inv_gamma)
        e1 = exp_nonpos((rmin - r1) * inv_gamma)
        e2 = exp_nonpos((rmin - r2) * inv_gamma)
        s = e0 + e1 + e2
        inv_s = 1.0 / s
        r_out[k] = dd[k] + rmin - gamma * log_1_to_3(s)
        p_diag[k] = e0 * inv_s
        p_up[k] = e1 * inv_s
        p_left[k] = e2 * inv_s
    _outside_band(r_out, p_diag, p_up, p_left, k_lo, k_hi)


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _forward_diagonal_f32(dd, a_diag, a_up, a_left, r_out, p_diag, p_up, p_left,
                          k_lo, k_hi, gamma, t_b, t_c, r_min):
    """As ``_forward_diagonal`` for float32 inputs: R stays float64, the
    exponentials, their sum and its log are float32.

    Three passes over the diagonal, so the transcendental part is a loop of
    float32 operations only (8 lanes with AVX2 instead of 4 when one loop
    mixes float64 and float32); t_b, t_c (float32) and r_min (float64) are
    scratch of at least the diagonal's length.

    Two exponentials per cell, not three: the smallest predecessor's term is
    exp(0) = 1. With a = min(r0, r1), b = max(r0, r1), m = min(a, r2) and
    c = max(a, r2), the other two are b and c; which direction each belongs
    to follows from the comparisons r0 <= r1 and a <= r2 (ties give equal
    terms, so either assignment is exact).

    Accuracy: the exponent t = (m - r) / gamma is formed in float64, so only
    float32 rounding of t (<= 5e-6 relative at t = -80, <= 3e-7 where the
    term matters) and of exp/log (~1e-7) enter; the log is multiplied by
    gamma before it meets R. The probabilities are float32 outputs anyway.
    """
    inv_gamma = 1.0 / gamma
    one = np.float32(1.0)
    cnt = dd.shape[0]
    for k in range(cnt):  # float64: the minimum and the two exponent arguments
        r0 = a_diag[k]
        r1 = a_up[k]
        r2 = a_left[k]
        a = min(r0, r1)
        m = min(a, r2)
        r_min[k] = m
        t_b[k] = np.float32((m - max(r0, r1)) * inv_gamma)
        t_c[k] = np.float32((m - max(a, r2)) * inv_gamma)
    for k in range(cnt):  # float32 only; p_diag/p_left hold temporaries
        e_b = exp_nonpos_f32(t_b[k])
        e_c = exp_nonpos_f32(t_c[k])
        s = one + e_b + e_c
        inv_s = one / s
        t_b[k] = e_b * inv_s
        t_c[k] = e_c * inv_s
        p_left[k] = inv_s  # probability of the minimum
        p_diag[k] = log_1_to_3_f32(s)
    for k in range(cnt):  # R and the probabilities by direction
        r0 = a_diag[k]
        r1 = a_up[k]
        first_01 = r0 <= r1
        a_is_min = min(r0, r1) <= a_left[k]
        p_b = t_b[k]
        p_c = t_c[k]
        p_m = p_left[k]
        p_a = p_m if a_is_min else p_c
        p2 = p_c if a_is_min else p_m
        p0 = p_a if first_01 else p_b
        p1 = p_b if first_01 else p_a
        r_out[k] = dd[k] + r_min[k] - gamma * p_diag[k]
        p_diag[k] = p0
        p_up[k] = p1
        p_left[k] = p2
    _outside_band(r_out, p_diag, p_up, p_left, k_lo, k_hi)


@njit(cache=True)
def _diagonal_offsets(nb, mb, doff):
    """doff[d] = number of cells on anti-diagonals before d (item-local)."""
    doff[0] = 0
    for d in range(1, nb + mb - 1):
        doff[d] = doff[d - 1] + min(nb - 1, d - 1) - max(0, d - mb) + 1


@njit(cache=True)
def _diagonal_bases(nb, mb, doff, base):
    """base[d] = doff[d] - lo(d): cell (i, d - i) sits at base[d] + i in the
    diagonal-major layout (lo(d) = max(0, d - mb + 1), its first row)."""
    for d in range(nb + mb - 1):
        base[d] = doff[d] - max(0, d - mb + 1)


@njit(cache=True, error_model="numpy")
def _skew_costs(XYb, xx_b, yy_b, nb, mb, base, out):
    """Frame costs of one item in diagonal-major order (same layout as P).

    D[i, j] = max(xx[i] + yy[j] - 2 XY[i, j], 0) from the batched product
    XY = x w y^T (torch/BLAS) and the weighted squared norms; finishing the
    expansion here saves two passes over (B, N, M) in torch. Reading XY row by
    row streams from memory (reading it along diagonals defeats the hardware
    prefetcher: 2x slower here); the scattered writes land in a per-thread
    scratch that stays in L2. Indexing through ``base[i + j] + i`` (a
    contiguous load per row) instead of recomputing lo(d) per cell halves
    the cost of this pass.
    """
    for i in range(nb):
        xi = xx_b[i]
        row = XYb[i]
        bases = base[i:i + mb]
        for j in range(mb):
            out[bases[j] + i] = max(xi + yy_b[j] - 2.0 * row[j], 0.0)


@njit(cache=True, error_model="numpy")
def _unskew(src, nb, mb, base, Eb, rs_b, cs_b):
    """Diagonal-major ``src`` -> row-major Eb[:nb, :mb], with row/column sums."""
    for i in range(nb):
        bases = base[i:i + mb]
        row = Eb[i]
        acc = 0.0
        for j in range(mb):
            v = src[bases[j] + i]
            row[j] = v
            acc += v
            cs_b[j] += v
        rs_b[i] = acc


@njit(parallel=True, cache=True, error_model="numpy")
def forward_kernel(XY, xx, yy, n, m, gamma, band, P, p_base, out, work):
    """Soft-DTW values and soft-min probabilities, items in parallel.

    XY: (B, N, M) weighted products sum_c w_c x_ic y_jc; xx: (B, N), yy:
    (B, M) weighted squared norms (frame cost D = xx_i + yy_j - 2 XY_ij, only
    [:n_b, :m_b] read); n, m: (B,) int64 lengths; gamma > 0; band:
    Sakoe-Chiba radius in frames (< 0: none); P: (3, total) output
    probabilities, dtype of XY (layout in the module docstring);
    p_base: (B,) int64 start of each item in P; out: (B,) float64 raw values;
    work: (threads, >= N*M) scratch of XY's dtype (numba.config.NUMBA_NUM_THREADS rows).
    """
    for b in prange(XY.shape[0]):
        _forward_item(b, XY, xx, yy, n, m, gamma, band, P, p_base, out, work[get_thread_id()])


@njit(cache=True, error_model="numpy")
def forward_kernel_serial(XY, xx, yy, n, m, gamma, band, P, p_base, out, work):
    """:func:`forward_kernel` item after item, without numba's parallel runtime (see
    :func:`kernels` for why); ``work`` needs one row."""
    for b in range(XY.shape[0]):
        _forward_item(b, XY, xx, yy, n, m, gamma, band, P, p_base, out, work[0])


@njit(inline="always")
def _forward_item(b, XY, xx, yy, n, m, gamma, band, P, p_base, out, d_skew):
    """Item ``b`` of :func:`forward_kernel`; ``d_skew``: this thread's scratch row."""
    fast = P.itemsize == 4  # float32 inputs: float32 transcendental math
    nb = n[b]
    mb = m[b]
    su, sv, radius = band_radius(nb, mb, band)
    # Diagonal buffers indexed by p = i + 1 (p = 0 is the row above).
    r_m2 = np.full(nb + 2, BIG)
    r_m1 = np.full(nb + 2, BIG)
    r_c = np.full(nb + 2, BIG)
    r_m2[0] = 0.0  # R[-1, -1] = 0: the start of every path
    t_b = np.empty(nb + 1, dtype=P.dtype)  # scratch of _forward_diagonal_f32
    t_c = np.empty(nb + 1, dtype=P.dtype)
    r_min = np.empty(nb + 1)
    doff = np.empty(nb + mb - 1, dtype=np.int64)
    _diagonal_offsets(nb, mb, doff)
    base = np.empty(nb + mb - 1, dtype=np.int64)
    _diagonal_bases(nb, mb, doff, base)
    _skew_costs(XY[b], xx[b], yy[b], nb, mb, base, d_skew)
    off = p_base[b]
    for d in range(nb + mb - 1):
        lo = max(0, d - mb + 1)
        cnt = min(nb - 1, d) - lo + 1
        # Unit-stride views indexed from 0: LLVM vectorises the loops.
        dd = d_skew[doff[d]:doff[d] + cnt]
        k_lo, k_hi = band_range(lo, cnt, d, su, sv, radius)
        a_diag = r_m2[lo:lo + cnt]  # R(i-1, j-1), at p = i
        a_up = r_m1[lo:lo + cnt]  # R(i-1, j), at p = i
        a_left = r_m1[lo + 1:lo + 1 + cnt]  # R(i, j-1), at p = i + 1
        r_out = r_c[lo + 1:lo + 1 + cnt]
        p_diag = P[0, off:off + cnt]
        p_up = P[1, off:off + cnt]
        p_left = P[2, off:off + cnt]
        if fast:
            _forward_diagonal_f32(dd, a_diag, a_up, a_left, r_out, p_diag,
                                  p_up, p_left, k_lo, k_hi, gamma,
                                  t_b[:cnt], t_c[:cnt], r_min[:cnt])
        else:
            _forward_diagonal(dd, a_diag, a_up, a_left, r_out, p_diag,
                              p_up, p_left, k_lo, k_hi, gamma)
        # Cells just outside this diagonal are read by the next two.
        r_c[lo] = BIG
        r_c[lo + cnt + 1] = BIG
        off += cnt
        r_m2, r_m1, r_c = r_m1, r_c, r_m2
    out[b] = r_m1[nb]


@njit(cache=True, error_model="numpy", fastmath={"contract"})
def _backward_diagonal(s_up, q_up, s_left, q_left, s_diag, q_diag, e_out, ec,
                       start, sc, tiny, zero, k_lo, k_hi):
    """One anti-diagonal of the backward recursion (unit-stride 1-D views).

    All arrays and the scalars start, sc, tiny, zero share the dtype of P
    (float32 for float32 inputs: a loop of one width vectorises twice as
    wide; E is a float32 output then anyway).
    """
    for k in range(e_out.shape[0]):
        e = (s_up[k] * q_up[k] + s_left[k] * q_left[k]
             + s_diag[k] * q_diag[k] + start)
        inside = (k >= k_lo) & (k <= k_hi)
        # Flushing tiny weights avoids subnormal arithmetic (slow) and
        # changes E by < 1e-30 (E itself is in [0, 1]).
        e = e if (inside & (e > tiny)) else zero
        e_out[k] = e
        ec[k] = e * sc


@njit(parallel=True, cache=True, error_model="numpy")
def backward_kernel(P, p_base, n, m, band, scale, E, rs, cs, work):
    """Expected alignment E = scale * dR[n-1, m-1] / dD, plus its row/column sums, items in parallel.

    P, p_base, n, m, band: as given to / filled by ``forward_kernel``;
    scale: (B,) float64 upstream gradient per item (incl. normalisation);
    E: (B, N, M) output, zero outside [:n_b, :m_b]; rs: (B, N), cs: (B, M)
    outputs: sum of E over j and over i; work: as in ``forward_kernel``,
    dtype of E.
    """
    for b in prange(E.shape[0]):
        _backward_item(b, P, p_base, n, m, band, scale, E, rs, cs, work[get_thread_id()])


@njit(cache=True, error_model="numpy")
def backward_kernel_serial(P, p_base, n, m, band, scale, E, rs, cs, work):
    """:func:`backward_kernel` item after item, without numba's parallel runtime."""
    for b in range(E.shape[0]):
        _backward_item(b, P, p_base, n, m, band, scale, E, rs, cs, work[0])


@njit(inline="always")
def _backward_item(b, P, p_base, n, m, band, scale, E, rs, cs, e_skew):
    """Item ``b`` of :func:`backward_kernel`; ``e_skew``: this thread's scratch row."""
    n_max = E.shape[1]
    m_max = E.shape[2]
    nb = n[b]
    mb = m[b]
    su, sv, radius = band_radius(nb, mb, band)
    # Padding of the reused output buffers must read as exact zeros.
    for i in range(nb):
        for j in range(mb, m_max):
            E[b, i, j] = 0.0
    for i in range(nb, n_max):
        for j in range(m_max):
            E[b, i, j] = 0.0
    for i in range(n_max):
        rs[b, i] = 0.0
    for j in range(m_max):
        cs[b, j] = 0.0
    e_c = np.zeros(nb + 2, dtype=P.dtype)
    e_1 = np.zeros(nb + 2, dtype=P.dtype)  # diagonal d + 1, indexed by p = i + 1
    e_2 = np.zeros(nb + 2, dtype=P.dtype)  # diagonal d + 2
    # Scalars in P's dtype (a float64 literal would widen the loop).
    consts = np.empty(4, dtype=P.dtype)
    consts[0] = 1.0  # start: dR/dR at the last cell
    consts[1] = scale[b]
    consts[2] = 1e-30
    consts[3] = 0.0
    last = nb + mb - 2
    off_1 = p_base[b] + nb * mb  # start of diagonal d + 1 in P
    off_2 = off_1
    doff = np.empty(nb + mb - 1, dtype=np.int64)
    _diagonal_offsets(nb, mb, doff)
    # E (times scale) in diagonal-major order; written row-major at the end
    # (scattering each diagonal into E directly misses cache per cell).
    for d in range(last, -1, -1):
        lo = max(0, d - mb + 1)
        cnt = min(nb - 1, d) - lo + 1
        lo_1 = max(0, d - mb + 2)
        lo_2 = max(0, d - mb + 3)
        off_0 = off_1 - cnt
        start = consts[0] if d == last else consts[3]
        # Successors (i+1, j), (i, j+1), (i+1, j+1) and the probability
        # with which each chose this cell; out-of-range successors have
        # E == 0 exactly, their P entry is finite (margin / neighbour).
        s_up = e_1[lo + 2:lo + 2 + cnt]
        s_left = e_1[lo + 1:lo + 1 + cnt]
        s_diag = e_2[lo + 2:lo + 2 + cnt]
        q_up = P[1, off_1 + lo + 1 - lo_1:off_1 + lo + 1 - lo_1 + cnt]
        q_left = P[2, off_1 + lo - lo_1:off_1 + lo - lo_1 + cnt]
        q_diag = P[0, off_2 + lo + 1 - lo_2:off_2 + lo + 1 - lo_2 + cnt]
        e_out = e_c[lo + 1:lo + 1 + cnt]
        k_lo, k_hi = band_range(lo, cnt, d, su, sv, radius)
        _backward_diagonal(s_up, q_up, s_left, q_left, s_diag, q_diag,
                           e_out, e_skew[doff[d]:doff[d] + cnt], start, consts[1],
                           consts[2], consts[3], k_lo, k_hi)
        e_c[lo] = 0.0
        e_c[lo + cnt + 1] = 0.0
        off_2 = off_1
        off_1 = off_0
        e_2, e_1, e_c = e_1, e_c, e_2
    base = np.empty(nb + mb - 1, dtype=np.int64)
    _diagonal_bases(nb, mb, doff, base)
    _unskew(e_skew, nb, mb, base, E[b], rs[b], cs[b])


_FORCED: list[bool] = []  # stack of overrides set by forced_variant()


def kernels(threads: int, batch: int) -> tuple:
    """(forward, backward) kernels for a process with ``threads`` numba threads and a batch
    of ``batch`` items: the parallel ones only where there is parallelism to gain.

    Why: with one thread, numba's parallel runtime (workqueue layer) still hands every
    call to its pool; measured on the 2-core machine with the other core idle, a
    hybrid-loss training process (one thread) ran ~15 % faster overall with the serial
    kernels, more than the whole soft-DTW share of its step."""
    parallel = _FORCED[-1] if _FORCED else (threads > 1 and batch > 1)
    return (forward_kernel, backward_kernel) if parallel else (forward_kernel_serial, backward_kernel_serial)


@contextmanager
def forced_variant(parallel: bool):
    """Within the block, :func:`kernels` returns the parallel (True) or serial (False) pair
    whatever the thread count: for the JIT warm-up (lib.jit_cache compiles both) and tests."""
    _FORCED.append(bool(parallel))
    try:
        yield
    finally:
        _FORCED.pop()
