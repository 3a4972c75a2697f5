"""Batched soft-DTW (Cuturi & Blondel 2017) for training on unaligned pairs.

``soft_dtw(pred, target, ...)`` / ``SoftDTW`` (api.py) on (B, N, C) and
(B, M, C) tensors with per-item lengths, channel weights, Sakoe-Chiba band,
length normalisation and the divergence variant. CPU: numba anti-diagonal
kernels (cpu.py, fastmath.py); CUDA tensors: numba.cuda kernels (cuda.py);
autograd glue with an explicit backward (function.py).
"""
from lib.soft_dtw.api import SoftDTW, soft_dtw

__all__ = ["SoftDTW", "soft_dtw"]
