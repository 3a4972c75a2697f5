"""Vectorisable exp / log for the soft-DTW CPU kernel (numba, float64).

Why not ``math.exp``/``math.log``: without Intel SVML (not shipped here) LLVM
calls scalar libm for them, which blocks loop vectorisation; the soft-min then
runs at libm latency. These versions are plain arithmetic plus one integer ->
float bit cast, so LLVM vectorises the anti-diagonal loops (AVX2/AVX-512).
Both are accurate to a few ulp in float64 over the ranges the kernel uses
(checked against numpy in tests/test_soft_dtw.py).
"""
from __future__ import annotations

import math

import numpy as np

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two so k*ln2 is exact
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
# exp(-80) ~ 1.8e-35: terms this small cannot change a sum that contains 1.0,
# and clamping keeps the soft-min probabilities normal float32 numbers
# (subnormal results and float64 -> float32 underflow cost ~100-cycle
# microcode assists each, which made the kernel 6x slower).
_EXP_MIN_ARG = -80.0


@intrinsic
def _bits_as_float64(typingctx, bits):
    """Reinterpret an int64 bit pattern as float64 (LLVM bitcast; vectorises)."""
    if not (isinstance(bits, types.Integer) and bits.bitwidth == 64):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(bits), codegen


@njit(inline="always", fastmath=False)
def exp_nonpos(t: float) -> float:
    """exp(t) for t <= 0; arguments below -80 are clamped (result ~1.8e-35).

    Range reduction t = k ln2 + f, |f| <= ln2/2, degree-12 Taylor polynomial on
    f (truncation error < 2e-17), 2**k built from its exponent bits.
    """
    t = max(t, _EXP_MIN_ARG)
    k = math.floor(t * _LOG2E + 0.5)
    f = (t - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 479001600.0
    p = p * f + 1.0 / 39916800.0
    p = p * f + 1.0 / 3628800.0
    p = p * f + 1.0 / 362880.0
    p = p * f + 1.0 / 40320.0
    p = p * f + 1.0 / 5040.0
    p = p * f + 1.0 / 720.0
    p = p * f + 1.0 / 120.0
    p = p * f + 1.0 / 24.0
    p = p * f + 1.0 / 6.0
    p = p * f + 0.5
    p = p * f + 1.0
    p = p * f + 1.0
    scale = _bits_as_float64((types.int64(k) + 1023) << 52)
    return p * scale


@njit(inline="always", fastmath=False)
def log_1_to_3(s: float) -> float:
    """log(s) for s in [1, 3] (the soft-min sum of three terms, one of them 1).

    Halve s above 1.5 so s' is in [0.75, 1.5], then log s' = 2 atanh(z),
    z = (s'-1)/(s'+1) in [-1/7, 1/5], odd series to z**23 (error < 1e-18).
    """
    big = s > 1.5
    s2 = s * 0.5 if big else s
    add = _LN2 if big else 0.0
    z = (s2 - 1.0) / (s2 + 1.0)
    z2 = z * z
    q = 1.0 / 23.0
    q = q * z2 + 1.0 / 21.0
    q = q * z2 + 1.0 / 19.0
    q = q * z2 + 1.0 / 17.0
    q = q * z2 + 1.0 / 15.0
    q = q * z2 + 1.0 / 13.0
    q = q * z2 + 1.0 / 11.0
    q = q * z2 + 1.0 / 9.0
    q = q * z2 + 1.0 / 7.0
    q = q * z2 + 1.0 / 5.0
    q = q * z2 + 1.0 / 3.0
    q = q * z2 + 1.0
    return add + 2.0 * z * q


# float32 versions: half the vector width cost of float64. Used where the
# result only feeds float32 outputs (probabilities of float32 inputs) or is
# multiplied by gamma before meeting the float64 R (log), see cpu.py.
_F_LOG2E = np.float32(_LOG2E)
_F_LN2_HI = np.float32(0.693359375)  # 8 significant bits: k * hi is exact
_F_LN2_LO = np.float32(-2.12194440e-4)
_F_LN2 = np.float32(_LN2)
_F_MIN_ARG = np.float32(-80.0)
_F_HALF = np.float32(0.5)
_F_ONE = np.float32(1.0)
_F_1_5 = np.float32(1.5)
_F_ZERO = np.float32(0.0)
_F_TWO = np.float32(2.0)
# Taylor degree 6 for exp on |f| <= ln2/2 (truncation 1.7e-7 relative) and
# the atanh series to z**9 for log (4e-9): each a few float32 ulps at most.
_F_EXP_C = tuple(np.float32(1.0 / math.factorial(i)) for i in range(7))
_F_ROUND = np.float32(12582912.0)  # 1.5 * 2**23: adding it rounds to an integer
_F_ROUND_BITS = 0x4B400000  # bit pattern of 1.5 * 2**23
_F_LOG_C = tuple(np.float32(1.0 / (2 * i + 1)) for i in range(5))


@intrinsic
def _pow2_of_rounded(typingctx, kf):
    """2**k from kf = k + 1.5 * 2**23 (float32, k an integer in [-126, 127]).

    Adding 1.5 * 2**23 to a float32 of magnitude < 2**22 rounds it to an
    integer and leaves that integer in the low mantissa bits, so the
    exponent field of 2**k (k + 127) is plain int32 arithmetic on the bits.
    Why not float -> int64 -> bits: AVX2 has no vector float -> int64
    conversion, and one such op in the loop made LLVM run the whole
    anti-diagonal loop 4 lanes wide (8 with this version).
    """
    if kf != types.float32:
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        bits = builder.bitcast(args[0], i32)
        biased = builder.add(bits, ir.Constant(i32, 127 - _F_ROUND_BITS))
        return builder.bitcast(builder.shl(biased, ir.Constant(i32, 23)), ir.FloatType())

    return types.float32(kf), codegen


@njit(inline="always")
def exp_nonpos_f32(t):
    """float32 exp(t) for t <= 0 (clamped at -80); relative error ~3e-7.

    Only float32 and int32 operations, so a loop calling it vectorises at
    the full float32 width.
    """
    # (the cast is a no-op for float32 callers; it lets the kernel's float32
    # branch type-check when numba compiles it for float64 buffers)
    t = np.float32(max(t, _F_MIN_ARG))
    kf = t * _F_LOG2E + _F_ROUND  # k = round(t / ln 2), held in kf's mantissa
    k = kf - _F_ROUND
    f = (t - k * _F_LN2_HI) - k * _F_LN2_LO
    c = _F_EXP_C
    p = c[6]
    p = p * f + c[5]
    p = p * f + c[4]
    p = p * f + c[3]
    p = p * f + c[2]
    p = p * f + c[1]
    p = p * f + c[0]
    return p * _pow2_of_rounded(kf)


@njit(inline="always")
def log_1_to_3_f32(s):
    """float32 log(s) for s in [1, 3]; absolute error ~1e-7."""
    big = s > _F_1_5
    s2 = s * _F_HALF if big else s
    add = _F_LN2 if big else _F_ZERO
    z = (s2 - _F_ONE) / (s2 + _F_ONE)
    z2 = z * z
    c = _F_LOG_C
    q = c[4]
    q = q * z2 + c[3]
    q = q * z2 + c[2]
    q = q * z2 + c[1]
    q = q * z2 + c[0]
    return add + _F_TWO * z * q
