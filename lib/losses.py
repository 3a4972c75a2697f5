"""Training losses by pair type: L1, L2 and soft-DTW behind one registry.

Definitions (pred (B, T, C), target (B, M, C), per-item lengths n_b, m_b,
channel weights w_c):

* ``l2`` / ``l1``: frame by frame over the common length k_b = min(n_b, m_b):
  ``mean_{t<k_b} mean_c w_c * |pred - target|^p`` (p = 2 / 1). With unit weights
  this is ``nn.MSELoss`` / ``nn.L1Loss`` on the overlapping frames.
* ``softdtw``: lib.soft_dtw.soft_dtw with frame cost
  ``mean_c w_c (pred_i,c - target_j,c)^2`` (``sdtw_cost="mean"``; ``"sum"`` is the
  original's unweighted-sum style) and the value divided by m_b when
  ``sdtw_normalize`` (so gamma does not depend on channel count or length).
  The original is ``sdtw_cost="sum", sdtw_normalize=False, channel_weights="none"``.

Each item gets the loss of its pair type: aligned pairs (a speaker's own
labels) ``cfg.aligned``, unaligned pairs (TTS clip + recorded speaker's labels)
``cfg.unaligned``. The batch loss is the mean over items of the per-item
losses (every item counts once, whatever its length or pair type).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .config import LossConfig
from .model import label_mask

# Per-channel weights of the original system's mouth-focused loss; 1.0 otherwise.
T2A_CHANNEL_WEIGHTS: dict[str, float] = {
    "JawForward": 1.1, "MouthSmileLeft": 1.1, "MouthSmileRight": 1.1,
    "JawOpen": 1.3, "MouthClose": 1.3, "MouthFunnel": 1.3,
    "MouthLowerDownLeft": 1.3, "MouthLowerDownRight": 1.3,
    "MouthStretchLeft": 1.2, "MouthStretchRight": 1.2, "MouthShrugUpper": 1.2,
}

# (pred (B,T,C), target (B,M,C), pred_lengths (B,), target_lengths (B,), weights (C,), cfg) -> (B,)
ItemLoss = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, LossConfig], torch.Tensor
]


def channel_weight_vector(kind: str, channels: Sequence[str]) -> torch.Tensor:
    """(C,) float32 weights by channel NAME, for any rig.

    ``"t2a"``: the original's weights for the ARKit names it weights
    (T2A_CHANNEL_WEIGHTS), 1.0 for every other name, so a custom rig gets
    unit weights; ``"none"``: ones; a path to a JSON object ``{name: weight}``:
    those weights, 1.0 for channels it does not name (a name that is not a
    channel of the rig is an error naming the file: a typo must not pass).
    """
    if kind == "none":
        return torch.ones(len(channels))
    if kind == "t2a":
        return torch.tensor([T2A_CHANNEL_WEIGHTS.get(c, 1.0) for c in channels], dtype=torch.float32)
    if str(kind).endswith(".json"):
        return torch.tensor([w for w in user_channel_weights(kind, channels)], dtype=torch.float32)
    raise ValueError(f"unknown channel_weights {kind!r}; expected 't2a', 'none' or a path to a .json file")


def user_channel_weights(path: str, channels: Sequence[str]) -> list[float]:
    """Weights of ``channels`` from a JSON file {name: weight}; 1.0 for names it omits."""
    import json
    import math
    from pathlib import Path

    from .io import DataError

    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(path, f"unreadable channel weights ({e})") from None
    if not isinstance(raw, dict):
        raise DataError(path, "channel weights must be a JSON object {channel name: weight}")
    unknown = sorted(set(raw) - set(channels))
    if unknown:
        raise DataError(path, f"weights for channels the rig does not have: {unknown}")
    bad = [k for k, v in raw.items() if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0]
    if bad:
        raise DataError(path, f"weights must be finite numbers >= 0 (bad: {bad})")
    return [float(raw.get(c, 1.0)) for c in channels]


def _framewise(pred, target, pred_lengths, target_lengths, weights, power: int) -> torch.Tensor:
    """(B,) mean over common valid frames of the channel-mean weighted |error|^power."""
    k = torch.minimum(pred_lengths, target_lengths).clamp(min=1)  # (B,)
    T = min(pred.shape[1], target.shape[1])
    diff = (pred[:, :T] - target[:, :T]).abs()  # (B, T, C)
    err = (diff.pow(power) * weights).mean(dim=2)  # (B, T)
    mask = label_mask(k, T).to(err.dtype)
    return (err * mask).sum(dim=1) / k.to(err.dtype)


def l2_items(pred, target, pred_lengths, target_lengths, weights, cfg) -> torch.Tensor:
    """(B,) weighted MSE over the common length."""
    return _framewise(pred, target, pred_lengths, target_lengths, weights, 2)


def l1_items(pred, target, pred_lengths, target_lengths, weights, cfg) -> torch.Tensor:
    """(B,) weighted mean absolute error over the common length."""
    return _framewise(pred, target, pred_lengths, target_lengths, weights, 1)


def softdtw_items(pred, target, pred_lengths, target_lengths, weights, cfg) -> torch.Tensor:
    """(B,) soft-DTW values (lib.soft_dtw), optionally divided by the label length."""
    from .soft_dtw import soft_dtw  # imported late: the kernel package is heavy (numba)

    return soft_dtw(
        pred, target, pred_lengths=pred_lengths, target_lengths=target_lengths,
        gamma=cfg.gamma, channel_weights=weights, band=cfg.band_frames,
        normalize_by="target_length" if cfg.sdtw_normalize else None,
        exact_weight_grad=cfg.exact_weight_grad, cost=cfg.sdtw_cost,
    )


LOSSES: dict[str, ItemLoss] = {"l1": l1_items, "l2": l2_items, "softdtw": softdtw_items}


class PairLoss:
    """Per-pair-type loss; call as ``loss, parts = f(pred, target, pred_lengths, target_lengths, aligned)``."""

    def __init__(self, cfg: LossConfig, channels: Sequence[str]):
        for kind in (cfg.aligned, cfg.unaligned):
            if kind not in LOSSES:
                raise ValueError(f"unknown loss {kind!r}; known: {sorted(LOSSES)}")
        if cfg.sdtw_cost not in ("mean", "sum"):
            raise ValueError(f"unknown sdtw_cost {cfg.sdtw_cost!r}; expected 'mean' or 'sum'")
        self.cfg = cfg
        self.channels = tuple(channels)
        self.weights = channel_weight_vector(cfg.channel_weights, self.channels)

    def __call__(
        self, pred: torch.Tensor, target: torch.Tensor, pred_lengths: torch.Tensor,
        target_lengths: torch.Tensor, aligned: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Batch loss.

        Args:
            pred: (B, T, C) predictions; pred_lengths (B,) valid frames (<= T).
            target: (B, M, C) labels; target_lengths (B,) valid frames (<= M).
            aligned: (B,) bool, True for aligned pairs.
        Returns:
            scalar loss = mean over items of each item's loss, and detached parts:
            ``loss_aligned`` / ``loss_unaligned`` (mean over items of that type,
            present only when the batch has such items).
        """
        if pred.shape[-1] != len(self.channels) or target.shape[-1] != len(self.channels):
            raise ValueError(
                f"pred {tuple(pred.shape)} / target {tuple(target.shape)} do not have "
                f"{len(self.channels)} channels"
            )
        dev = pred.device
        # Lengths past the tensors (e.g. model output_lengths > out_frames) mean "all of it".
        pred_lengths = pred_lengths.to(dev).long().clamp(max=pred.shape[1])
        target_lengths = target_lengths.to(dev).long().clamp(max=target.shape[1])
        aligned = aligned.to(dev).bool()
        w = self.weights.to(dev, pred.dtype)
        total = pred.new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        for name, sel, kind in (("aligned", aligned, self.cfg.aligned),
                                ("unaligned", ~aligned, self.cfg.unaligned)):
            idx = sel.nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            # Compute each loss only on its items (soft-DTW is the expensive one).
            vals = LOSSES[kind](pred[idx], target[idx], pred_lengths[idx], target_lengths[idx], w, self.cfg)
            total = total + vals.to(total.dtype).sum()
            parts[f"loss_{name}"] = vals.detach().mean()
        # Sum of per-item losses / B = mean over items (no scatter: deterministic on GPU).
        return total / pred.shape[0], parts


def build_loss(cfg: LossConfig, channels: Sequence[str]) -> PairLoss:
    """The training loss for ``cfg`` over label channels ``channels``."""
    return PairLoss(cfg, channels)
