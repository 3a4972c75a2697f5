"""Autograd glue for batched soft-DTW: frame costs, kernels, explicit backward.

Frame cost (``cost="mean"``, default): D[i, j] = sum_c w_c (x_ic - y_jc)^2 / C,
the channel mean of the weighted squared error, so gamma does not depend on
the channel count. ``cost="sum"`` drops the 1/C (the original system's and
tslearn's squared euclidean distance). D comes from one batched matrix
product (|x|^2 + |y|^2 - 2 x.y, weights folded in; on CPU the kernel finishes
the expansion while reordering D by anti-diagonals) and the gradient of the
soft-DTW value with respect to x and y from the expected alignment E (B, N, M):
    dL/dx_i = 2 w / C * (sum_j E_ij x_i - sum_j E_ij y_j)   (and alike for y).
Channel weights are constants (no gradient). ``exact_weight_grad=False``
reproduces the original T2A backward, which ignored the weights (w = 1 there).
"""
from __future__ import annotations

import numba
import numpy as np
import torch

from lib.soft_dtw import cpu

_POOL: list[np.ndarray] = []  # free probability buffers, reused across calls
_POOL_MAX = 4
_SCRATCH: dict[tuple, torch.Tensor] = {}  # per (name, dtype): reusable tensors


def _scratch(name: str, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """A reusable tensor of ``shape`` (fresh large allocations cost ~10 ms here)."""
    numel = int(np.prod(shape))
    buf = _SCRATCH.get((name, dtype))
    if buf is None or buf.numel() < numel:
        # Never an inference tensor: a buffer first made while evaluating under
        # torch.inference_mode would refuse the in-place writes of later training steps.
        with torch.inference_mode(False):
            buf = torch.empty(numel, dtype=dtype)
        _SCRATCH[(name, dtype)] = buf
    return buf[:numel].view(shape)  # (shape)


def _work(cells: int, dtype: torch.dtype) -> np.ndarray:
    """Per-thread scratch (threads, cells) for the CPU kernels' diagonal reordering."""
    return _scratch("work", (numba.config.NUMBA_NUM_THREADS, cells), dtype).numpy()


def _take_prob_buffer(numel: int, dtype: np.dtype) -> np.ndarray:
    """A (3, >= numel) probability buffer from the pool, or a new one."""
    for k, buf in enumerate(_POOL):
        if buf.dtype == dtype and buf.shape[1] >= numel:
            return _POOL.pop(k)
    return np.empty((3, numel), dtype=dtype)


def _give_back(buf: np.ndarray) -> None:
    if len(_POOL) < _POOL_MAX:
        _POOL.append(buf)


class _Lease:
    """Holds a pooled buffer for an autograd graph; returns it when the graph
    (and so the ctx holding this lease) is freed, e.g. after backward() without
    retain_graph. Repeated backward passes (gradcheck) keep using it."""

    __slots__ = ("buf",)

    def __init__(self, buf: np.ndarray):
        self.buf = buf

    def __del__(self):
        _give_back(self.buf)


def cost_matrix(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted squared-error frame costs via one batched product.

    x: (B, N, C), y: (B, M, C), w: (C,) per-channel factors (>= 0, incl. any
    1/C). Returns D (B, N, M) = sum_c w_c (x_ic - y_jc)^2, clamped at 0
    (the expansion can round to tiny negatives).
    """
    sw = w.sqrt()
    xs = x * sw  # (B, N, C)
    ys = y * sw  # (B, M, C)
    xx = (xs * xs).sum(-1)  # (B, N)
    yy = (ys * ys).sum(-1)  # (B, M)
    if out is None:
        out = torch.empty(x.shape[0], x.shape[1], y.shape[1], dtype=x.dtype, device=x.device)
    torch.add(xx[:, :, None], yy[:, None, :], out=out)  # (B, N, M)
    out.baddbmm_(xs, ys.transpose(1, 2), alpha=-2.0)
    return out.clamp_(min=0.0)


class SoftDTWFunction(torch.autograd.Function):
    """Raw (unnormalised) soft-DTW of padded, masked batches; explicit backward.

    forward(x (B,N,C), y (B,M,C), n (B,) int64, m (B,) int64, w_cost (C,),
    w_grad (C,), gamma, band) -> (B,) float64-accurate values in x.dtype.
    Padded frames of x and y must already be zero.
    """

    @staticmethod
    def forward(ctx, x, y, n, m, w_cost, w_grad, gamma: float, band: float):
        if x.is_cuda:
            from lib.soft_dtw import cuda as sdtw_cuda
            D = cost_matrix(x, y, w_cost)
            values, state = sdtw_cuda.forward(D, n, m, gamma, band)
            ctx.save_for_backward(x, y, n, m, w_grad, *state)
            ctx.cuda_band = (gamma, band)
            return values.to(x.dtype)
        B, N, _ = x.shape
        M = y.shape[1]
        with torch.no_grad():
            sw = w_cost.sqrt()
            xs = x * sw  # (B, N, C)
            ys = y * sw  # (B, M, C)
            XY = torch.bmm(xs, ys.transpose(1, 2),
                           out=_scratch("XY", (B, N, M), x.dtype))  # (B, N, M)
            xx = (xs * xs).sum(-1)  # (B, N)
            yy = (ys * ys).sum(-1)  # (B, M)
        n_np = n.numpy()
        m_np = m.numpy()
        cells = n_np * m_np
        margin = cpu.p_margin(N, M)
        p_base = margin + np.concatenate([[0], np.cumsum(cells)[:-1]]).astype(np.int64)
        P = _take_prob_buffer(int(cells.sum()) + 2 * margin, XY.numpy().dtype)
        # The backward reads finite values around the used part (see cpu.py).
        P[:, :margin] = 0.0
        P[:, margin + int(cells.sum()):] = 0.0
        out = np.empty(B)
        forward_kernel, _ = cpu.kernels(numba.get_num_threads(), B)
        forward_kernel(XY.numpy(), xx.numpy(), yy.numpy(), n_np, m_np, float(gamma),
                       float(band), P, p_base, out, _work(N * M, x.dtype))
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ctx.prob = (_Lease(P), p_base)
            ctx.band = float(band)
            ctx.save_for_backward(x, y, n, m, w_grad)
        else:
            _give_back(P)
        return torch.from_numpy(out).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        if hasattr(ctx, "cuda_band"):
            from lib.soft_dtw import cuda as sdtw_cuda
            x, y, n, m, w_grad, *state = ctx.saved_tensors
            E = sdtw_cuda.backward(state, n, m, *ctx.cuda_band, grad_out.double())
            rs = E.sum(2)  # (B, N)
            cs = E.sum(1)  # (B, M)
        else:
            x, y, n, m, w_grad = ctx.saved_tensors
            lease, p_base = ctx.prob
            P = lease.buf
            B, N, _ = x.shape
            M = y.shape[1]
            E = _scratch("E", (B, N, M), x.dtype)
            rs = _scratch("rs", (B, N), x.dtype)
            cs = _scratch("cs", (B, M), x.dtype)
            scale = grad_out.detach().double().contiguous().numpy()  # (B,)
            _, backward_kernel = cpu.kernels(numba.get_num_threads(), B)
            backward_kernel(P, p_base, n.numpy(), m.numpy(), ctx.band, scale, E.numpy(),
                            rs.numpy(), cs.numpy(), _work(N * M, x.dtype))
        E, rs, cs = E.to(x.dtype), rs.to(x.dtype), cs.to(x.dtype)
        gx = gy = None
        # dL/dx = 2 w (x * rowsum(E) - E y): one fused baddbmm, then the weights.
        if ctx.needs_input_grad[0]:
            gx = torch.baddbmm(x * rs[:, :, None], E, y, alpha=-1.0).mul_(2.0 * w_grad)  # (B, N, C)
        if ctx.needs_input_grad[1]:
            gy = torch.baddbmm(y * cs[:, :, None], E.transpose(1, 2), x, alpha=-1.0).mul_(2.0 * w_grad)  # (B, M, C)
        return gx, gy, None, None, None, None, None, None
