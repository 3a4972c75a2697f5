"""Streaming inference: PCM chunks of any size in, face frames out at a constant latency.

Per push: the new audio goes through the incremental features
(:class:`~lib.live.features.StreamingMfcc`, or :class:`~lib.live.ppg.StreamingPpg`);
every face frame whose whole context has now arrived (features up to
``stride * (j + lookahead)``) is computed by running the model on a window that
starts ``warmup_frames`` before it (its band and conv receptive field), so it
equals the frame of one offline pass over the whole clip with the same mask
(:func:`offline_predict`; tested on clips cut into random chunk sizes).

Latency: frame j (the instant j / fps) leaves once audio reaches
j / fps + lookahead_ms + the features' right context (36 ms for mfcc_live: FFT window
and delta; 672 ms for ppg_live: the PPG network's convolutions),
plus at most one chunk of waiting for the chunk that holds that sample:
:attr:`StreamingPredictor.algorithmic_latency_ms` + chunk. Memory is bounded by
the window (features of warmup + lookahead + one chunk), whatever the stream's length.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..channels import FaceFormat
from ..config import AUDIO_SAMPLE_RATE_HZ, label_frames
from .features import LIVE_FEATURES, StreamingMfcc, live_feature_function, mfcc_live
from .model import LiveFaceModel


@dataclasses.dataclass
class Frames:
    """Face frames out of one push: ``values`` (k, C) float32 for frames start .. start + k - 1,
    frame j at ``j / fps`` seconds of the stream's audio."""

    start: int
    values: np.ndarray
    fps: int

    @property
    def times_s(self) -> np.ndarray:
        return (self.start + np.arange(len(self.values))) / self.fps  # (k,)


def check_live_feature(feature: str) -> None:
    if feature not in LIVE_FEATURES:
        raise ValueError(f"streaming computes {' / '.join(LIVE_FEATURES)} features, the model was trained on "
                         f"{feature!r} (MFCC's top_db and PPG's per-utterance normalisation depend on the "
                         f"whole clip); train with lib.live.train (--feature mfcc_live or ppg_live)")


class StreamingPredictor:
    """One audio stream through a :class:`LiveFaceModel` (see module docstring).

    ``push(pcm)`` with (n,) float32 16 kHz samples returns the :class:`Frames` that became
    final; ``flush()`` ends the clip (the end cuts the right context, as offline) and
    returns the rest, up to the label frame count round(duration * fps).
    """

    def __init__(self, model: LiveFaceModel, face: FaceFormat | None = None, features=None):
        self.model = model.eval()
        self.face = face
        self.fps = model.cfg.face_fps
        self.stride = model.stride
        # Window starts on the grid where feature and face times meet exactly: face frames
        # multiple of ``grid_face`` <-> feature frames multiple of ``grid_feat`` (1 <-> stride at
        # 25 fps from 100 Hz; 3 <-> 10 at 30 fps, 3 <-> 5 at 60 fps).
        g = math.gcd(model.cfg.feature_rate_hz, model.cfg.face_fps)
        self.grid_face, self.grid_feat = model.cfg.face_fps // g, model.cfg.feature_rate_hz // g
        self.R = model.lookahead_frames
        self.warmup = model.warmup_frames
        self.features = features if features is not None else StreamingMfcc()  # or StreamingPpg
        self._feats = np.zeros((0, model.cfg.input_dim), np.float32)  # features [f_start, n_feat)
        self._f_start = 0
        self.n_emitted = 0
        self._done = False

    @property
    def algorithmic_latency_ms(self) -> float:
        """Audio time from a frame's instant to the sample that completes it: lookahead + the
        features' right context (36 ms for mfcc_live, 672 ms for ppg_live), plus at most one feature
        frame for resampled rates (30 / 60 fps)."""
        extra = 1000 / self.model.cfg.feature_rate_hz if self.model.resampled else 0.0  # interpolation: < 1 frame
        return self.model.live.lookahead_ms + self.features.lookahead_ms + extra

    @property
    def n_samples(self) -> int:
        return self.features.n_samples

    def _window_start(self, j: int) -> int:
        """First face frame of the window for frame j: warmup frames back, down to the grid."""
        return max(0, j - self.warmup) // self.grid_face * self.grid_face

    def _feat_index(self, j_grid: int) -> int:
        return j_grid // self.grid_face * self.grid_feat  # exact on the grid

    def _features_needed(self, j: int) -> int:
        """Features that must have arrived before frame j is final: frame j + R's front-end
        input (resampled index stride * (j + R)) reads feature floor(pos) and, off the feature
        grid, the next one too."""
        r = self.stride * (j + self.R)
        num, den = r * self.model.cfg.feature_rate_hz, self.model.front_rate_hz
        return num // den + (2 if num % den else 1)

    def _run(self, upto: int, final: bool) -> np.ndarray:
        """Frames [n_emitted, upto) from one window pass -> (k, C)."""
        k = upto - self.n_emitted
        if k <= 0:
            return np.zeros((0, self.model.cfg.n_channels), np.float32)
        w0 = self._window_start(self.n_emitted)  # face frames, on the grid
        x = self._feats[self._feat_index(w0) - self._f_start:]  # (Tw, D)
        n_out = int(self.model.output_lengths(torch.tensor([len(x)]))[0])
        with torch.no_grad():
            y = self.model(torch.from_numpy(x)[None], torch.tensor([len(x)]), max(n_out, upto - w0))[0]
        out = y[self.n_emitted - w0: upto - w0].numpy()  # (k, C)
        self.n_emitted = upto
        # Keep only what the next window needs.
        keep = self._feat_index(self._window_start(self.n_emitted))
        if keep > self._f_start:
            self._feats = self._feats[keep - self._f_start:]
            self._f_start = keep
        return out

    def push(self, pcm: np.ndarray) -> Frames:
        """pcm (n,) float32 in [-1, 1] at 16 kHz -> the frames that became final (maybe none)."""
        if self._done:
            raise RuntimeError("stream already flushed; start a new StreamingPredictor")
        start = self.n_emitted
        new = self.features.push(pcm)  # (k, D)
        if len(new):
            self._feats = np.concatenate([self._feats, new])
        n_feat = self._f_start + len(self._feats)
        upto = self.n_emitted
        while self._features_needed(upto) <= n_feat:
            upto += 1
        return Frames(start, self._run(upto, final=False), self.fps)

    def flush(self, out_frames: int | None = None) -> Frames:
        """End of the clip -> the remaining frames up to ``out_frames`` (default: the label
        convention round(samples / 16 kHz * fps), as offline inference)."""
        start = self.n_emitted
        if self._done:
            return Frames(start, np.zeros((0, self.model.cfg.n_channels), np.float32), self.fps)
        new = self.features.flush()
        if len(new):
            self._feats = np.concatenate([self._feats, new])
        self._done = True
        if out_frames is None:
            out_frames = label_frames(self.n_samples / AUDIO_SAMPLE_RATE_HZ, self.fps)
        if not len(self._feats):
            return Frames(start, np.zeros((0, self.model.cfg.n_channels), np.float32), self.fps)
        return Frames(start, self._run(max(out_frames, self.n_emitted), final=True), self.fps)


def offline_predict(model: LiveFaceModel, wav: np.ndarray, out_frames: int | None = None,
                    features=mfcc_live) -> np.ndarray:
    """The reference: one pass over the whole clip with the same context mask.
    wav (samples,) float32 16 kHz -> (out_frames, C); ``features``: wav -> (T, D)."""
    feats = features(wav)  # (T, D)
    if out_frames is None:
        out_frames = label_frames(len(wav) / AUDIO_SAMPLE_RATE_HZ, model.cfg.face_fps)
    with torch.no_grad():
        return model(torch.from_numpy(feats)[None], torch.tensor([len(feats)]), out_frames)[0].numpy()


def stream_clip(model: LiveFaceModel, wav: np.ndarray, chunk_samples: list[int] | int,
                features=None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Feed ``wav`` in chunks (a size or a list of sizes, cycled) -> ((frames, C) concatenated,
    [(samples pushed so far, frames emitted so far)] after each push)."""
    sp = StreamingPredictor(model, features=features)
    sizes = [chunk_samples] if isinstance(chunk_samples, int) else list(chunk_samples)
    outs, trace, i, k = [], [], 0, 0
    while i < len(wav):
        n = sizes[k % len(sizes)]
        outs.append(sp.push(wav[i:i + n]).values)
        i, k = min(i + n, len(wav)), k + 1
        trace.append((i, sp.n_emitted))
    outs.append(sp.flush().values)
    return np.concatenate(outs), trace
