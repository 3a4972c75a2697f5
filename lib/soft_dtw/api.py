"""Public soft-DTW API: ``soft_dtw(pred, target, ...)`` and ``SoftDTW`` module."""
from __future__ import annotations

import torch

from lib.soft_dtw.function import SoftDTWFunction

_COSTS = ("mean", "sum")
_NORMS = ("target_length", None)


def _lengths(lengths: torch.Tensor | None, batch: int, full: int, name: str) -> torch.Tensor:
    """(B,) int64 CPU lengths, checked to lie in [1, full]."""
    if lengths is None:
        return torch.full((batch,), full, dtype=torch.int64)
    out = torch.as_tensor(lengths).detach().to("cpu", torch.int64).reshape(-1)  # (B,)
    if out.numel() != batch:
        raise ValueError(f"{name}: {out.numel()} lengths for a batch of {batch}")
    if int(out.min()) < 1 or int(out.max()) > full:
        raise ValueError(f"{name} must lie in [1, {full}], got {out.tolist()}")
    return out


def _zero_padding(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, T, C) with frames t >= lengths[b] set to 0 (and cut from the graph)."""
    if int(lengths.min()) == x.shape[1]:
        return x
    keep = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
    return torch.where(keep.to(x.device)[:, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))


def soft_dtw(pred: torch.Tensor, target: torch.Tensor,
             pred_lengths: torch.Tensor | None = None,
             target_lengths: torch.Tensor | None = None,
             gamma: float = 0.001,
             channel_weights: torch.Tensor | None = None,
             band: float | None = None,
             normalize_by: str | None = "target_length",
             exact_weight_grad: bool = True,
             cost: str = "mean",
             divergence: bool = False) -> torch.Tensor:
    """Batched soft-DTW between predicted and target frame sequences.

    pred: (B, N, C), target: (B, M, C) float32/float64, CPU or CUDA.
    pred_lengths, target_lengths: (B,) valid frames per item (default: all);
    padded frames never influence values and get exactly zero gradient.
    gamma: soft-min temperature (> 0; -> 0 gives DTW).
    channel_weights: (C,) non-negative per-channel weights w_c (constants).
    band: Sakoe-Chiba radius in frames (None: no band); i and j are scaled
    onto the longer sequence, and radii below its slope are widened to it so
    a path always exists.
    normalize_by: "target_length" divides each value by its target length;
    None keeps the raw sum (the original T2A/tslearn convention).
    exact_weight_grad: False reproduces the original backward that ignored the
    channel weights (gradient as if w = 1).
    cost: "mean" (D = sum_c w_c (x-y)^2 / C) or "sum" (no 1/C).
    divergence: return sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2 instead
    (>= 0, zero for x == y; Blondel et al. 2021), normalised as above.
    Returns: (B,) values in pred's dtype.
    """
    if pred.dim() != 3 or target.dim() != 3:
        raise ValueError(f"expected (B, N, C) and (B, M, C), got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    B, N, C = pred.shape
    if target.shape[0] != B or target.shape[2] != C:
        raise ValueError(f"batch/channel mismatch: {tuple(pred.shape)} vs {tuple(target.shape)}")
    if cost not in _COSTS or normalize_by not in _NORMS:
        raise ValueError(f"cost must be one of {_COSTS}, normalize_by one of {_NORMS}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    target = target.to(pred.dtype)
    n = _lengths(pred_lengths, B, N, "pred_lengths")
    m = _lengths(target_lengths, B, target.shape[1], "target_lengths")
    w = torch.ones(C, dtype=pred.dtype, device=pred.device)
    if channel_weights is not None:
        w = torch.as_tensor(channel_weights).detach().to(pred.device, pred.dtype).reshape(-1)  # (C,)
        if w.numel() != C or bool((w < 0).any()):
            raise ValueError(f"channel_weights must be {C} non-negative numbers")
    per_channel = 1.0 / C if cost == "mean" else 1.0
    w_cost = (w * per_channel).contiguous()
    w_grad = w_cost if exact_weight_grad else torch.full_like(w, per_channel)
    band_r = -1.0 if band is None else float(band)
    x = _zero_padding(pred, n).contiguous()
    y = _zero_padding(target, m).contiguous()

    def raw(a, b, la, lb):
        return SoftDTWFunction.apply(a, b, la, lb, w_cost, w_grad, float(gamma), band_r)

    value = raw(x, y, n, m)
    if divergence:
        value = value - 0.5 * (raw(x, x, n, n) + raw(y, y, m, m))
    if normalize_by == "target_length":
        value = value / m.to(value.device, value.dtype)
    return value


class SoftDTW(torch.nn.Module):
    """Module wrapper of :func:`soft_dtw`; forward(pred, target, pred_lengths,
    target_lengths) -> (B,) values. Keyword options as in ``soft_dtw``."""

    def __init__(self, gamma: float = 0.001, channel_weights: torch.Tensor | None = None,
                 band: float | None = None, normalize_by: str | None = "target_length",
                 exact_weight_grad: bool = True, cost: str = "mean", divergence: bool = False):
        super().__init__()
        self.gamma = gamma
        self.band = band
        self.normalize_by = normalize_by
        self.exact_weight_grad = exact_weight_grad
        self.cost = cost
        self.divergence = divergence
        self.register_buffer("channel_weights", None if channel_weights is None
                             else torch.as_tensor(channel_weights, dtype=torch.float32))

    def forward(self, pred: torch.Tensor, target: torch.Tensor,
                pred_lengths: torch.Tensor | None = None,
                target_lengths: torch.Tensor | None = None) -> torch.Tensor:
        return soft_dtw(pred, target, pred_lengths, target_lengths, gamma=self.gamma,
                        channel_weights=self.channel_weights, band=self.band,
                        normalize_by=self.normalize_by, exact_weight_grad=self.exact_weight_grad,
                        cost=self.cost, divergence=self.divergence)
