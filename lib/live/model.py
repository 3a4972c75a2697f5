"""A bounded-context TalkingFaceModel: what a stream can compute, trained as it will run.

Same architecture as lib.model.TalkingFaceModel (stride-2 conv + GLU front end,
LayerNorm, Linear, Transformer encoder, Linear head; same parameter names, so
the same optimiser and checkpoints), with three changes that bound every output
frame's context, in training and streaming alike:

1. causal front end: each stride-2 conv is padded (2, 0) instead of (1, 1), so face
   frame j reads features up to index 2**k * j (its own instant) and never after (for rates
   resampled to fps * 2**k, e.g. 30 fps from 100 Hz, the interpolation adds one feature frame);
2. banded attention: in every encoder layer a frame attends to the
   ``left_frames`` frames before it and to ``right_frames`` after it. The whole
   lookahead is spent in the FIRST layer (later layers look back only), so the
   model's right context is exactly ``lookahead_ms``, whatever the depth; the
   left context is ``n_layers * left_context_ms``;
3. relative positions: absolute sinusoidal positions would make a frame depend on
   its distance from the stream's start (unbounded, and never seen in training
   past a clip's length); instead each layer learns a bias per head and relative
   offset inside its band (zero-initialised), added to the attention logits.

Padding: padded keys are masked as in the base model (a padded query still sees
itself, so no row of the softmax is empty), the convs are causal so nothing
right of an item's end reaches it: an item's prediction does not depend on its
batch. Output length and trimming are the base model's (``output_lengths``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig, config_from_dict
from ..layers import MASKED_LOGIT, Dropout, encoder_layer
from ..model import CONV_KERNEL, CONV_STRIDE, TalkingFaceModel, conv_output_length, label_mask, resample_time


@dataclasses.dataclass(frozen=True)
class LiveConfig:
    """Context limits of a streaming model, in milliseconds of face time.

    ``lookahead_ms``: right context of every output frame (the model's share of the
    stream's latency), a multiple of one face frame (40 ms at 25 fps).
    ``left_context_ms``: how far back each encoder layer attends (memory and compute
    per chunk grow with it; quality saturates), a multiple of one face frame.
    """

    lookahead_ms: int = 80
    left_context_ms: int = 1000

    def frames(self, face_fps: int) -> tuple[int, int]:
        """(lookahead frames, left frames per layer); raises unless both divide exactly."""
        out = []
        for name in ("lookahead_ms", "left_context_ms"):
            ms = getattr(self, name)
            if ms < 0 or (ms * face_fps) % 1000:
                raise ValueError(f"{name}={ms} is not a non-negative multiple of one face frame "
                                 f"({1000 / face_fps:g} ms at {face_fps} fps)")
            out.append(ms * face_fps // 1000)
        return out[0], out[1]


class LiveFaceModel(TalkingFaceModel):
    """Bounded-context variant of :class:`TalkingFaceModel` (see module docstring)."""

    def __init__(self, cfg: ModelConfig, live: LiveConfig):
        super().__init__(cfg)
        if cfg.arch != "transformer":
            raise ValueError(f"a live model needs arch='transformer' (banded attention), got {cfg.arch!r}")
        self.live = live
        self.lookahead_frames, self.left_frames = live.frames(cfg.face_fps)
        # All the lookahead in layer 0, the rest causal: total right context = lookahead exactly.
        self.right_frames = [self.lookahead_frames] + [0] * (cfg.n_layers - 1)
        self.rel_bias = nn.ParameterList(
            nn.Parameter(torch.zeros(cfg.n_heads, self.left_frames + r + 1)) for r in self.right_frames)
        self.in_dropout = Dropout(cfg.dropout)  # where the base model drops out after its positions
        del self.positions  # no absolute positions (see module docstring, 3.)

    # ------------------------------------------------------------------ context
    @property
    def stride(self) -> int:
        """Front-end frames per face frame (2 ** n_conv); feature frames per face frame when the
        rate needs no resampling."""
        return CONV_STRIDE ** self.n_conv

    @property
    def resampled(self) -> bool:
        """True when features are first interpolated to fps * 2**k (30 / 60 fps from 100 Hz)."""
        return self.front_rate_hz != self.cfg.feature_rate_hz

    @property
    def front_margin_frames(self) -> int:
        """Face frames at the start of a window whose front end output differs from the whole
        clip's (their conv inputs reach before the window): the conv receptive field reaches
        sum_l 2**l * (kernel - 1) feature frames back, i.e. ceil(that / stride) face frames."""
        back = sum(CONV_STRIDE ** l * (CONV_KERNEL - 1) for l in range(self.n_conv))
        return -(-back // self.stride)

    @property
    def warmup_frames(self) -> int:
        """Face frames a window must hold before a frame for it to equal the whole clip's."""
        return self.front_margin_frames + self.cfg.n_layers * self.left_frames

    def attention_bias(self, lengths: torch.Tensor, T: int, layer: int) -> torch.Tensor:
        """(B,) valid frames -> (B, n_heads, T, T) float additive mask of encoder ``layer``:
        the learned relative bias inside the band [i - left, i + right] on valid keys, MASKED_LOGIT elsewhere."""
        i = torch.arange(T, device=lengths.device)
        rel = i[None, :] - i[:, None]  # (T, T): key - query
        right = self.right_frames[layer]
        band = (rel >= -self.left_frames) & (rel <= right)  # (T, T)
        valid_key = label_mask(lengths, T)[:, None, :] | (rel == 0)[None]  # (B, T, T); not torch.eye: ONNX has no bool EyeLike
        allowed = band[None] & valid_key  # (B, T, T); a padded query keeps itself: no empty softmax row
        table = self.rel_bias[layer]  # (H, left + right + 1)
        bias = table[:, (rel + self.left_frames).clamp(0, self.left_frames + right)]  # (H, T, T)
        # Finite, not -inf: torch's inference fast path turns -inf float masks into NaN rows.
        neg = torch.tensor(MASKED_LOGIT, dtype=bias.dtype, device=bias.device)
        return torch.where(allowed[:, None], bias[None], neg)  # (B, H, T, T)

    # ------------------------------------------------------------------ forward
    def front_end(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal stride-2 convs. feats (B, T, D) or (B, L, T, D), feat_lengths (B,) ->
        ((B, T', d) at face_fps, (B,) valid frames); frame j reads features <= stride * j."""
        feat_lengths = feat_lengths.to(feats.device).long()
        if bool((feat_lengths < 1).any()):
            raise ValueError(f"feature lengths must be >= 1, got {feat_lengths.tolist()}")
        x = self._select_layers(feats)  # (B, T, D)
        # 30 / 60 fps from 100 Hz: onto fps * 2**k first (linear interpolation reads one frame ahead).
        x, lengths = resample_time(x, feat_lengths, self.cfg.feature_rate_hz, self.front_rate_hz)
        x = x.transpose(1, 2)  # (B, D, T'')
        for conv in self.convs:
            x = x * label_mask(lengths, x.shape[2])[:, None, :].to(x.dtype)
            x = F.pad(x, (CONV_KERNEL - 1, 0))  # all padding on the left: causal
            x = F.glu(F.conv1d(x, conv.weight, conv.bias, stride=CONV_STRIDE), dim=1)  # (B, d, ceil(T/2))
            lengths = conv_output_length(lengths, 1)  # same lengths as the base model's
        return x.transpose(1, 2), lengths  # (B, T', d)

    def forward(self, feats: torch.Tensor, feat_lengths: torch.Tensor, out_frames: int) -> torch.Tensor:
        """As :meth:`TalkingFaceModel.forward`: (B, T, D) features -> (B, out_frames, C), zero
        beyond each item's valid length; frame j sees face frames [j - n_layers*left, j + lookahead]."""
        x, lengths = self.front_end(feats, feat_lengths)  # (B, T', d)
        T = x.shape[1]
        valid = label_mask(lengths, T)  # (B, T')
        x = self.in_dropout(self.proj_in(self.norm(x)))
        for li, layer in enumerate(self.encoder.layers):
            x = encoder_layer(layer, x, self.attention_bias(lengths, T, li))
        y = self.head(x) * valid[:, :, None].to(x.dtype)  # (B, T', C)
        if T >= out_frames:
            return y[:, :out_frames]
        return F.pad(y, (0, 0, 0, out_frames - T))  # (B, out_frames, C)


def load_live_model(checkpoint: str | Path, device: str = "cpu") -> tuple[LiveFaceModel, dict]:
    """A LiveFaceModel from a checkpoint of :func:`lib.live.train.train_live` (eval mode).

    A full-context checkpoint (no ``live`` entry) is refused with the reason: its
    bidirectional attention needs the whole utterance."""
    from ..train.state import load_checkpoint

    ck = load_checkpoint(checkpoint, device)
    if not ck.get("live"):
        from ..io import DataError

        raise DataError(checkpoint, "not a live checkpoint (full-context attention needs the whole utterance); "
                                    "train one with `python -m lib train-live --lookahead_ms 80 ...`")
    cfg = config_from_dict(ModelConfig, ck["configs"]["model"], str(checkpoint))
    model = LiveFaceModel(cfg, config_from_dict(LiveConfig, ck["live"], str(checkpoint))).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck
