"""Fast training-time building blocks of the Transformer models: dropout, attention, encoder.

Why not ``nn.TransformerEncoder`` as it is: at this project's model size (d_model
128, clips of a few seconds) a CPU training step is dominated by small-tensor
overheads, and the torch profile of a step (``benchmarks/profile_train_step.py``)
showed dropout's Bernoulli sampling as one of the largest items: torch's CPU
``bernoulli_`` draws one Mersenne-Twister number per element. Here:

* :func:`dropout` draws 64-bit random words and uses each as four 16-bit
  uniform numbers (a quarter of the generator calls); the drop probability is
  ``p`` rounded to a multiple of 1/65536 (0.1 -> 0.100006) and the kept values
  are scaled by ``1 / (1 - p_rounded)``, so E[dropout(x)] = x exactly. It uses
  torch's global generator, so ``torch.manual_seed`` and the RNG state saved
  in checkpoints keep runs reproducible and resumable. On devices other than
  the CPU it is ``F.dropout`` (their generators are fast already).
* :class:`Encoder` runs the post-norm layers of ``nn.TransformerEncoderLayer``
  (their own parameters, so state dicts and checkpoints are unchanged) written
  out with :func:`encoder_layer`: the padding mask becomes one additive bias
  instead of torch's per-call mask checks and conversions. In eval mode it
  equals ``nn.TransformerEncoder`` to float rounding (tested).

The written-out layer also serves the bounded-context live model (banded
attention bias: torch's fused inference path returns NaN rows for such float
masks) and the ONNX export, whose tracer would freeze nn.MultiheadAttention's
reshapes at the traced length.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MASKED_LOGIT = -1e9  # added to logits of masked keys: exp() of it is exactly 0 in float32
_LEVELS = 1 << 16  # one random number = 16 bits


def drop_threshold(p: float) -> int:
    """Drop probability ``p`` as a count of the 65536 16-bit values (the rounded p is that / 65536)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return round(p * _LEVELS)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout of any-shape ``x``: each element zeroed with probability
    p_rounded = round(p * 65536) / 65536, the rest scaled by 1 / (1 - p_rounded).
    Identity when not training or p == 0 (see module docstring for why not F.dropout)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    q = drop_threshold(p)
    n = x.numel()
    # Each int64 word over its full range = four independent uniform 16-bit lanes (any byte order).
    words = torch.empty(-(-n // 4), dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)
    r = words.view(torch.int16)[:n].view(x.shape)  # uniform in [-32768, 32767]
    keep = (r >= q - (_LEVELS >> 1)).to(x.dtype).mul_(_LEVELS / (_LEVELS - q))  # P(drop) = q / 65536
    return x * keep


class Dropout(nn.Module):
    """``nn.Dropout`` with :func:`dropout` (no parameters: state dicts are unchanged)."""

    def __init__(self, p: float):
        super().__init__()
        drop_threshold(p)  # validates
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attention(mha: nn.MultiheadAttention, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Self-attention with an additive logit bias, from ``mha``'s own weights: x (B, T, d),
    bias broadcastable to (B, H, T, T) -> (B, T, d). Scaled dot product, softmax, dropout on
    the weights in training, output projection: the arithmetic of ``nn.MultiheadAttention``.
    Every reshape keeps the time axis as -1, so an ONNX export takes any length."""
    B, d, H = x.shape[0], x.shape[2], mha.num_heads
    q, k, v = F.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)  # 3 x (B, T, d)
    q, k, v = (t.reshape(B, -1, H, d // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d/H)
    w = torch.softmax(q @ k.transpose(-1, -2) * (d // H) ** -0.5 + bias, dim=-1)  # (B, H, T, T)
    w = dropout(w, mha.dropout, mha.training)
    out = (w @ v).transpose(1, 2).reshape(B, -1, d)  # (B, T, d)
    return mha.out_proj(out)


def encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """One post-norm ``nn.TransformerEncoderLayer`` step written out, with :func:`dropout`:
    x (B, T, d), bias broadcastable to (B, H, T, T) -> (B, T, d)."""
    if layer.norm_first:
        raise ValueError("encoder_layer implements post-norm layers (norm_first=False)")
    p, train = layer.dropout.p, layer.training
    x = layer.norm1(x + dropout(attention(layer.self_attn, x, bias), p, train))
    f = layer.linear2(dropout(layer.activation(layer.linear1(x)), p, train))
    return layer.norm2(x + dropout(f, p, train))


def key_padding_bias(valid: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, T) bool, True on valid frames -> (B, 1, 1, T) additive logit bias: 0 on valid keys,
    MASKED_LOGIT on padded ones (finite, so a row is never all -inf)."""
    zero = torch.zeros((), dtype=dtype, device=valid.device)
    masked = torch.full((), MASKED_LOGIT, dtype=dtype, device=valid.device)
    return torch.where(valid, zero, masked)[:, None, None, :]


class Encoder(nn.Module):
    """A stack of post-norm Transformer encoder layers over padded batches.

    Holds ``nn.TransformerEncoderLayer`` modules under ``layers`` (the parameter
    names of ``nn.TransformerEncoder``, so its checkpoints load unchanged) and runs
    them with :func:`encoder_layer`."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int, dropout_p: float, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, ff_dim, dropout_p, batch_first=True)
            for _ in range(n_layers))

    def forward(self, x: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, d); src_key_padding_mask (B, T) bool, True on PADDED frames (torch's
        convention) -> (B, T, d)."""
        if src_key_padding_mask is None:
            bias = torch.zeros(1, 1, 1, 1, dtype=x.dtype, device=x.device)
        else:
            bias = key_padding_bias(~src_key_padding_mask, x.dtype)
        for layer in self.layers:
            x = encoder_layer(layer, x, bias)
        return x
