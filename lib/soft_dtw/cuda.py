"""Soft-DTW dynamic programme on CUDA (numba.cuda): anti-diagonal wavefront.

One thread block per batch item; its threads share the cells of one
anti-diagonal (independent of each other) and synchronise between diagonals.
R and the expected alignment E are full (B, N+2, M+2) float64 matrices in
global memory (GPU memory is not the constraint the CPU buffers are); the
backward recomputes each soft-min probability from R and D:
    p(succ chose (i, j)) = exp((R[succ] - D[succ] - R[i, j]) / gamma).
Same band geometry and boundary conventions as cpu.py, so both agree to
rounding (tested under numba's CUDA simulator in tests/test_soft_dtw.py).
Torch tensors cross over zero-copy via ``__cuda_array_interface__``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from lib.soft_dtw import band

BIG = 1e30  # as cpu.BIG: +inf stand-in that keeps inf - inf out
THREADS = 256


_band_geometry = cuda.jit(device=True, inline=True)(band.band_geometry)
_band_rows = cuda.jit(device=True, inline=True)(band.band_rows)


@cuda.jit(device=True, inline=True)
def _i_range(d, su, sv, radius, lo, hi):
    """In-band rows of diagonal d, clipped to [lo, hi] (as cpu.band_range)."""
    i_lo, i_hi = _band_rows(d, su, sv, radius)
    return max(lo, i_lo), min(hi, i_hi)


@cuda.jit
def _forward(D, n, m, gamma, band, R, out):
    b = cuda.blockIdx.x
    t0 = cuda.threadIdx.x
    nt = cuda.blockDim.x
    nb = n[b]
    mb = m[b]
    su, sv, radius = _band_geometry(nb, mb, band)
    for p in range(t0, R.shape[1] * R.shape[2], nt):
        R[b, p // R.shape[2], p % R.shape[2]] = BIG
    cuda.syncthreads()
    if t0 == 0:
        R[b, 0, 0] = 0.0
    cuda.syncthreads()
    for d in range(nb + mb - 1):
        lo = max(0, d - mb + 1)
        hi = min(nb - 1, d)
        b_lo, b_hi = _i_range(d, su, sv, radius, lo, hi)
        for i in range(b_lo + t0, b_hi + 1, nt):
            j = d - i
            r0 = R[b, i, j]
            r1 = R[b, i, j + 1]
            r2 = R[b, i + 1, j]
            rmin = min(r0, min(r1, r2))
            s = (math.exp(max((rmin - r0) / gamma, -80.0))
                 + math.exp(max((rmin - r1) / gamma, -80.0))
                 + math.exp(max((rmin - r2) / gamma, -80.0)))
            R[b, i + 1, j + 1] = D[b, i, j] + rmin - gamma * math.log(s)
        cuda.syncthreads()
    if t0 == 0:
        out[b] = R[b, nb, mb]


@cuda.jit
def _backward(D, R, n, m, gamma, band, scale, E):
    b = cuda.blockIdx.x
    t0 = cuda.threadIdx.x
    nt = cuda.blockDim.x
    nb = n[b]
    mb = m[b]
    su, sv, radius = _band_geometry(nb, mb, band)
    for p in range(t0, E.shape[1] * E.shape[2], nt):
        E[b, p // E.shape[2], p % E.shape[2]] = 0.0
    cuda.syncthreads()
    for d in range(nb + mb - 2, -1, -1):
        lo = max(0, d - mb + 1)
        hi = min(nb - 1, d)
        b_lo, b_hi = _i_range(d, su, sv, radius, lo, hi)
        for i in range(b_lo + t0, b_hi + 1, nt):
            j = d - i
            r = R[b, i + 1, j + 1]
            # Probabilities are <= 1: clamping the exponent at 0 also keeps an
            # out-of-band successor (R = BIG, E = 0) from overflowing to inf * 0.
            e = 0.0
            if i + 1 < nb:
                e += E[b, i + 2, j + 1] * math.exp(
                    max(min((R[b, i + 2, j + 1] - D[b, i + 1, j] - r) / gamma, 0.0), -80.0))
            if j + 1 < mb:
                e += E[b, i + 1, j + 2] * math.exp(
                    max(min((R[b, i + 1, j + 2] - D[b, i, j + 1] - r) / gamma, 0.0), -80.0))
            if i + 1 < nb and j + 1 < mb:
                e += E[b, i + 2, j + 2] * math.exp(
                    max(min((R[b, i + 2, j + 2] - D[b, i + 1, j + 1] - r) / gamma, 0.0), -80.0))
            if i == nb - 1 and j == mb - 1:
                e = 1.0
            E[b, i + 1, j + 1] = e
        cuda.syncthreads()
    for p in range(t0, nb * mb, nt):
        E[b, p // mb + 1, p % mb + 1] *= scale[b]


def run_arrays(D, n, m, gamma: float, band: float, scale, stream=0, threads: int = THREADS):
    """Forward + backward on device (or host, copied) arrays.

    D: (B, N, M) costs; n, m: (B,) int64; scale: (B,) float64 upstream grads.
    threads: per block (few under the simulator, which runs one Python
    thread per CUDA thread). Returns (values (B,) float64, E (B, N, M)
    float64) as device arrays.
    """
    values, R = forward_arrays(D, n, m, gamma, band, stream, threads)
    return values, backward_arrays(D, R, n, m, gamma, band, scale, stream, threads)


def forward_arrays(D, n, m, gamma: float, band: float, stream=0, threads: int = THREADS):
    """Values (B,) and the full R (B, N+2, M+2) float64, as device arrays."""
    B, N, M = D.shape
    R = cuda.device_array((B, N + 2, M + 2), dtype=np.float64, stream=stream)
    out = cuda.device_array(B, dtype=np.float64, stream=stream)
    _forward[B, threads, stream](D, n, m, float(gamma), float(band), R, out)
    return out, R


def backward_arrays(D, R, n, m, gamma: float, band: float, scale, stream=0,
                    threads: int = THREADS):
    """E (B, N, M) = scale * dvalue/dD as a device array view."""
    B, N, M = D.shape
    E = cuda.device_array((B, N + 2, M + 2), dtype=np.float64, stream=stream)
    _backward[B, threads, stream](D, R, n, m, float(gamma), float(band), scale, E)
    return E[:, 1:N + 1, 1:M + 1]


def forward(D, n, m, gamma: float, band: float):
    """Torch glue: D (B, N, M) CUDA tensor; n, m (B,) CPU int64 tensors.

    Returns (values (B,) float64 CUDA tensor, saved state for ``backward``).
    """
    import torch
    stream = cuda.external_stream(torch.cuda.current_stream(D.device).cuda_stream)
    Dc = D.detach().contiguous()
    nd = n.to(D.device)
    md = m.to(D.device)
    R = torch.empty(D.shape[0], D.shape[1] + 2, D.shape[2] + 2, dtype=torch.float64, device=D.device)
    out = torch.empty(D.shape[0], dtype=torch.float64, device=D.device)
    _forward[D.shape[0], THREADS, stream](cuda.as_cuda_array(Dc), cuda.as_cuda_array(nd),
                                          cuda.as_cuda_array(md), float(gamma), float(band),
                                          cuda.as_cuda_array(R), cuda.as_cuda_array(out))
    return out, (Dc, R)


def backward(state, n, m, gamma: float, band: float, scale):
    """Torch glue: E (B, N, M) float64 CUDA tensor from ``forward``'s state."""
    import torch
    Dc, R = state
    stream = cuda.external_stream(torch.cuda.current_stream(Dc.device).cuda_stream)
    E = torch.empty_like(R)
    _backward[Dc.shape[0], THREADS, stream](
        cuda.as_cuda_array(Dc), cuda.as_cuda_array(R), cuda.as_cuda_array(n.to(Dc.device)),
        cuda.as_cuda_array(m.to(Dc.device)), float(gamma), float(band),
        cuda.as_cuda_array(scale.to(Dc.device).contiguous()), cuda.as_cuda_array(E))
    return E[:, 1:-1, 1:-1]
