"""Audio features -> per-frame face parameters at ``face_fps``.

Pipeline (``forward`` returns predictions only; losses live in lib.losses):

1. layered features (B, L, T, D) (HuBERT): learned softmax weights over the L
   layers (``feature_combine``) or the last layer -> (B, T, D);
2. stride-2 front end (``lib.config.front_end_plan``): where rate / fps is not a
   power of two (100 Hz at 30 fps) the sequence is first resampled in time to
   ``fps * 2**k`` by linear interpolation (:func:`resample_time`); then ``k``
   blocks of Conv1d(in, 2*d, kernel 3, stride 2, padding 1) + GLU (one block for
   50 Hz -> 25 fps, two for 100 Hz -> 25 fps) -> (B, T', d) at ``face_fps``;
3. LayerNorm -> Linear(d, d_model);
4. Transformer encoder (sinusoidal positions, key padding mask from lengths;
   ``nn.TransformerEncoderLayer`` weights run by lib.layers.Encoder) or
   BiLSTM (packed sequences);
5. Linear -> (B, T', C), zero beyond each item's valid length, then trimmed or
   zero-padded to ``out_frames``.

Padding never reaches valid frames: padded input frames are zeroed before every
convolution (so the frame after an item's end looks like the conv's own zero
padding, exactly as when the item is alone), attention ignores padded keys and
the LSTM runs packed. An item's prediction is therefore the same whether it is
batched with longer items or alone (tested).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig, front_end_plan
from .layers import Dropout, Encoder

CONV_KERNEL = 3  # the original's Conv1dSubsampler kernel
CONV_STRIDE = 2
CONV_PADDING = CONV_KERNEL // 2


def label_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """(B,) valid lengths -> (B, T) bool, True on valid frames."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def conv_output_length(lengths: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Valid frames after ``n_layers`` stride-2 convs: L -> (L + 2p - k) // s + 1 per layer."""
    out = lengths.clone()
    for _ in range(n_layers):
        out = torch.div(out + 2 * CONV_PADDING - CONV_KERNEL, CONV_STRIDE, rounding_mode="floor") + 1
    return out


def resampled_lengths(lengths: torch.Tensor, rate_hz: int, new_rate_hz: int) -> torch.Tensor:
    """Frames after resampling ``lengths`` frames from ``rate_hz`` to ``new_rate_hz``: the new
    frames whose times lie within the input's span [0, (L - 1) / rate], floor((L - 1) * new / old) + 1
    (no extrapolation past the last input frame)."""
    if new_rate_hz == rate_hz:
        return lengths
    return torch.div((lengths - 1).clamp(min=0) * new_rate_hz, rate_hz, rounding_mode="floor") + 1


def resample_time(x: torch.Tensor, lengths: torch.Tensor, rate_hz: int, new_rate_hz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear interpolation of (B, T, D) frames at ``rate_hz`` onto ``new_rate_hz``.

    Frame i of the input is at time i / rate_hz (the frame convention of the
    front end: stride-2 output j is centred on input 2j), so output frame i' is
    the input at position i' * rate / new_rate. Each item reads only its own
    valid frames (positions past its end hold its last frame), so an item's
    result does not depend on the batch it is in. Returns ((B, T'', D), (B,) lengths).
    """
    if new_rate_hz == rate_hz:
        return x, lengths
    new_len = resampled_lengths(lengths, rate_hz, new_rate_hz)
    T_new = (x.shape[1] - 1) * new_rate_hz // rate_hz + 1
    pos = torch.arange(T_new, device=x.device, dtype=torch.float64) * (rate_hz / new_rate_hz)  # (T'',)
    i0 = pos.floor().long()
    w = (pos - i0.to(torch.float64)).to(x.dtype)  # (T'',)
    last = (lengths - 1).clamp(min=0)[:, None]  # (B, 1)
    i0b = torch.minimum(i0[None, :], last)  # (B, T'')
    i1b = torch.minimum(i0[None, :] + 1, last)
    D = x.shape[2]
    a = torch.gather(x, 1, i0b[:, :, None].expand(-1, -1, D))  # (B, T'', D)
    b = torch.gather(x, 1, i1b[:, :, None].expand(-1, -1, D))
    return a + (b - a) * w[None, :, None], new_len


def strided_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for the front end's Conv1d(kernel 3, stride 2, padding 1): (B, D, T) -> (B, 2d, T').

    In a CPU training step, an input that needs no gradient (the first conv, reading the
    features) goes through im2col and one matrix product, which measured faster there than
    oneDNN's convolution (forward and weight gradient) at this size; same arithmetic up to
    float rounding (tested against the module). Inference and export keep the module
    (ONNX has no Unfold of dynamic length)."""
    if (x.requires_grad or x.device.type != "cpu" or not (torch.is_grad_enabled() and conv.weight.requires_grad)
            or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        return conv(x)
    cols = F.pad(x, (CONV_PADDING, CONV_PADDING)).unfold(2, CONV_KERNEL, CONV_STRIDE)  # (B, D, T', K)
    B, D, T_out, K = cols.shape
    cols = cols.permute(0, 2, 1, 3).reshape(B, T_out, D * K)  # (B, T', D*K), index d*K + k as the weight's
    y = F.linear(cols, conv.weight.reshape(conv.out_channels, D * K), conv.bias)  # (B, T', 2d)
    return y.transpose(1, 2)  # (B, 2d, T')


class SinusoidalPositions(nn.Module):
    """Adds the fixed sin/cos positional encoding of "Attention is all you need"."""

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.d_model = d_model
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, d_model) -> (B, T, d_model). Built on the fly: no length cap."""
        T = x.shape[1]
        pos = torch.arange(T, device=x.device, dtype=torch.float32)[:, None]  # (T, 1)
        freq = torch.exp(
            torch.arange(0, self.d_model, 2, device=x.device, dtype=torch.float32)
            * (-math.log(10000.0) / self.d_model)
        )  # (ceil(d/2),)
        pe = torch.zeros(T, self.d_model, device=x.device)
        pe[:, 0::2] = torch.sin(pos * freq)
        pe[:, 1::2] = torch.cos(pos * freq[: self.d_model // 2])
        return self.dropout(x + pe.to(x.dtype)[None])


class TalkingFaceModel(nn.Module):
    """Speech features -> face parameters at ``cfg.face_fps`` (see module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.arch not in ("transformer", "lstm"):
            raise ValueError(f"unknown arch {cfg.arch!r}; expected 'transformer' or 'lstm'")
        self.cfg = cfg
        # Exact power-of-two ratios keep the features as they are; others are resampled first.
        self.front_rate_hz, self.n_conv = front_end_plan(cfg.feature_rate_hz, cfg.face_fps)
        d = cfg.d_model
        # Uniform start, like the original (softmax of equal logits).
        self.layer_logits = (
            nn.Parameter(torch.ones(cfg.n_feature_layers) / cfg.n_feature_layers)
            if cfg.feature_combine else None
        )
        self.convs = nn.ModuleList(
            nn.Conv1d(cfg.input_dim if i == 0 else d, 2 * d, CONV_KERNEL, CONV_STRIDE, CONV_PADDING)
            for i in range(self.n_conv)
        )
        self.norm = nn.LayerNorm(d)
        self.proj_in = nn.Linear(d, d)
        if cfg.arch == "transformer":
            self.positions = SinusoidalPositions(d, cfg.dropout)
            # nn.TransformerEncoderLayer's parameters, run written out (lib.layers: faster on
            # the CPU, same numbers in eval mode, same state dict as nn.TransformerEncoder).
            self.encoder = Encoder(d, cfg.n_heads, cfg.ff_dim, cfg.dropout, cfg.n_layers)
            head_in = d
        else:
            self.lstm = nn.LSTM(
                d, cfg.rnn_hidden, cfg.n_layers, batch_first=True, bidirectional=True,
                dropout=cfg.dropout if cfg.n_layers > 1 else 0.0,
            )
            head_in = 2 * cfg.rnn_hidden
        self.head = nn.Linear(head_in, cfg.n_channels)

    # ------------------------------------------------------------------ helpers
    def layer_weights(self) -> torch.Tensor:
        """(L,) softmax weights over HuBERT layers (sum to 1); uniform-one if not combining."""
        if self.layer_logits is None:
            return torch.ones(1)
        return torch.softmax(self.layer_logits, dim=0)

    def output_lengths(self, feat_lengths: torch.Tensor) -> torch.Tensor:
        """(B,) valid feature frames -> (B,) long valid output frames (resampling, then the exact conv formula)."""
        lengths = resampled_lengths(feat_lengths.long(), self.cfg.feature_rate_hz, self.front_rate_hz)
        return conv_output_length(lengths, self.n_conv)

    def _select_layers(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, D) or (B, L, T, D) -> (B, T, D) float32."""
        feats = feats.float()
        if feats.dim() == 3:
            if self.layer_logits is not None:
                raise ValueError("feature_combine=True needs layered features (B, L, T, D)")
            return feats
        if feats.dim() != 4:
            raise ValueError(f"features must be (B, T, D) or (B, L, T, D), got {tuple(feats.shape)}")
        if self.layer_logits is None:
            return feats[:, -1]
        if feats.shape[1] != self.layer_logits.numel():
            raise ValueError(
                f"features have {feats.shape[1]} layers but n_feature_layers={self.layer_logits.numel()}"
            )
        w = self.layer_weights()
        return torch.einsum("bltd,l->btd", feats, w)  # (B, T, D)

    # ------------------------------------------------------------------ forward
    def front_end(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer selection, resampling to fps * 2**k (when needed) and the stride-2 convs.

        feats (B, T, D) or (B, L, T, D) at ``cfg.feature_rate_hz``, feat_lengths (B,)
        -> ((B, T', d) at ``cfg.face_fps``, (B,) valid frames). Output frame j is
        centred on the time j / face_fps.
        """
        feat_lengths = feat_lengths.to(feats.device).long()
        if bool((feat_lengths < 1).any()):
            raise ValueError(f"feature lengths must be >= 1, got {feat_lengths.tolist()}")
        x = self._select_layers(feats)  # (B, T, D)
        # 30 fps from 100 Hz etc.: onto fps * 2**k first (a no-op for power-of-two ratios).
        x, lengths = resample_time(x, feat_lengths, self.cfg.feature_rate_hz, self.front_rate_hz)  # (B, T'', D)
        x = x.transpose(1, 2)  # (B, D, T) for Conv1d
        for conv in self.convs:
            # Zero padded frames so they act like the conv's own zero padding.
            x = x * label_mask(lengths, x.shape[2])[:, None, :].to(x.dtype)
            x = F.glu(strided_conv(conv, x), dim=1)  # (B, d, ceil(T/2))
            lengths = conv_output_length(lengths, 1)
        return x.transpose(1, 2), lengths  # (B, T', d)

    def forward(self, feats: torch.Tensor, feat_lengths: torch.Tensor, out_frames: int) -> torch.Tensor:
        """Predict face parameters.

        Args:
            feats: (B, T, D) or (B, L, T, D) features at ``cfg.feature_rate_hz``.
            feat_lengths: (B,) long, valid feature frames per item (>= 1).
            out_frames: frames of the returned tensor (max label frames of the batch).
        Returns:
            (B, out_frames, C) float32; frames at or beyond ``output_lengths(feat_lengths)``
            are exactly zero.
        """
        x, lengths = self.front_end(feats, feat_lengths)  # (B, T', d) at face_fps
        T = x.shape[1]
        valid = label_mask(lengths, T)  # (B, T')
        x = self.proj_in(self.norm(x))
        if self.cfg.arch == "transformer":
            x = self.positions(x)
            x = self.encoder(x, src_key_padding_mask=~valid)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            out, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T', 2h)
        y = self.head(x) * valid[:, :, None].to(x.dtype)  # (B, T', C), zero on padding
        if T >= out_frames:
            return y[:, :out_frames]
        return F.pad(y, (0, 0, 0, out_frames - T))  # (B, out_frames, C)
