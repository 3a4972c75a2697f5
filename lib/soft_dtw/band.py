"""Sakoe-Chiba band geometry, shared by the CPU and CUDA kernels.

Plain Python functions compiled for each target (``numba.njit`` in cpu.py,
``numba.cuda.jit(device=True)`` in cuda.py), so both kernels visit exactly the
same cells and agree to rounding.
"""
from __future__ import annotations

import math

NO_BAND = 1e300  # radius meaning "no band" (finite: the CUDA target has no inf constant)
_ALL_ROWS = 1 << 30


def band_geometry(n, m, band):
    """Per-item band geometry: (scale of i, scale of j, effective radius).

    Both axes are scaled onto the longer one (i * su, j * sv); a cell is in
    the band when |i * su - j * sv| <= radius. The radius is widened to at
    least the slope so a warping path from (0, 0) to (n-1, m-1) always exists.
    ``band < 0`` disables the band (radius NO_BAND).
    """
    long_ = max(n, m) - 1
    su = long_ / (n - 1) if n > 1 else 0.0
    sv = long_ / (m - 1) if m > 1 else 0.0
    if band < 0.0:
        return su, sv, NO_BAND
    slope = max(su, sv) if min(n, m) > 1 else float(long_)
    return su, sv, max(band, slope)


def band_rows(d, su, sv, radius):
    """(i_lo, i_hi): the rows i of anti-diagonal d (j = d - i) inside the band, unclipped.

    |i su - j sv| <= radius with j = d - i is |i (su + sv) - d sv| <= radius, an
    interval of i; computing it once per diagonal keeps the per-cell test to two
    integer compares.
    """
    if radius >= NO_BAND or su + sv == 0.0:
        return -_ALL_ROWS, _ALL_ROWS
    i_lo = int(math.ceil((d * sv - radius) / (su + sv)))
    i_hi = int(math.floor((d * sv + radius) / (su + sv)))
    # Settle rounding at the edges with the per-cell predicate itself, so the
    # band is exactly {|i su - (d - i) sv| <= radius} as documented.
    while abs((i_lo - 1) * su - (d - i_lo + 1) * sv) <= radius:
        i_lo -= 1
    while abs(i_lo * su - (d - i_lo) * sv) > radius and i_lo <= i_hi:
        i_lo += 1
    while abs((i_hi + 1) * su - (d - i_hi - 1) * sv) <= radius:
        i_hi += 1
    while abs(i_hi * su - (d - i_hi) * sv) > radius and i_hi >= i_lo:
        i_hi -= 1
    return i_lo, i_hi
