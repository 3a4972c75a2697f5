"""Streamable PPG (``ppg_live``): lib.features.ppg's network with a causal normalisation.

Why a variant: PPGNet normalises each log-mel band by the mean / std of the WHOLE
utterance, which no stream knows. ``ppg_live`` normalises frame t by the mean / std
of the trailing ``NORM_FRAMES`` (2 s) of log-mel up to t (fewer at the start),
then runs the same trained network (lib.features.ppg checkpoints, unchanged).

Framing (as lib.features.ppg.log_mel): 40 ms Hann window in a 1024-point FFT, 20 ms
hop, 80 mel bands, ``log(mel + 1e-6)``, frame t centred on sample 320 t, the clip
zero-padded by 512 samples at both ends: T = 1 + samples // 320.

Right context: the network's dilated convolutions read 32 frames each side (kernel
5, dilations 1, 2, 4, 8, 1), so PPG frame t is final once log-mel frame t + 32 is,
i.e. once sample 320 (t + 32) + 512 has arrived: :data:`PPG_LOOKAHEAD_MS` = 672 ms.
That is the price of a phone classifier with 1.3 s of context; MFCC's is 36 ms.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ..config import AUDIO_SAMPLE_RATE_HZ
from ..features.ppg import HOP, PPGConfig, PPGExtractor, PPGNet
from .features import ChunkedStream

FEATURE_NAME = "ppg_live"
RATE_HZ = AUDIO_SAMPLE_RATE_HZ // HOP  # 50
N_FFT = 1024
HALF = N_FFT // 2
NORM_FRAMES = 100  # 2 s of trailing statistics
NORM_EPS = 1e-5  # as PPGNet


def net_radius(cfg: PPGConfig) -> int:
    """Frames each side a PPGNet output reads: sum of 2 * dilation over its kernel-5 blocks."""
    return sum(2 * d for d in cfg.dilations)


def ppg_lookahead_ms(cfg: PPGConfig = PPGConfig()) -> float:
    return 1000 * (net_radius(cfg) * HOP + HALF) / AUDIO_SAMPLE_RATE_HZ


PPG_LOOKAHEAD_MS = ppg_lookahead_ms()  # 672.0


@functools.lru_cache(maxsize=4)
def _mel_basis(n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=AUDIO_SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=n_mels).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _window(win: int) -> np.ndarray:
    import scipy.signal

    w = scipy.signal.get_window("hann", win, fftbins=True)
    lpad = (N_FFT - win) // 2
    return np.pad(w, (lpad, N_FFT - win - lpad)).astype(np.float32)


def log_mel_from_padded(p: np.ndarray, cfg: PPGConfig) -> np.ndarray:
    """log-mel of every full 1024-sample frame of a padded signal (frame k = p[320 k:][:1024])
    -> (K, n_mels) float32; each frame from its own samples only."""
    if len(p) < N_FFT:
        return np.zeros((0, cfg.n_mels), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(p, N_FFT)[::HOP]  # (K, 1024)
    spec = (np.abs(np.fft.rfft(frames * _window(cfg.win_samples), axis=1)) ** 2).astype(np.float32)  # (K, 513)
    return np.log(spec @ _mel_basis(cfg.n_mels).T + 1e-6).astype(np.float32)  # (K, n_mels)


def trailing_norm(mel: np.ndarray, first: int = 0, history: np.ndarray | None = None) -> np.ndarray:
    """Normalise rows of ``mel`` (K, M) by the mean / unbiased std of the trailing NORM_FRAMES
    rows up to each (``history``: the rows before, at most NORM_FRAMES - 1). -> (K, M) float32."""
    hist = np.zeros((0, mel.shape[1]), np.float32) if history is None else history
    full = np.concatenate([hist, mel]).astype(np.float64)  # (H + K, M)
    out = np.empty(mel.shape, np.float32)
    for i in range(len(mel)):
        j = len(hist) + i
        win = full[max(0, j - NORM_FRAMES + 1): j + 1]
        std = win.std(0, ddof=1) if len(win) > 1 else np.zeros(mel.shape[1])
        out[i] = (full[j] - win.mean(0)) / (std + NORM_EPS)
    return out


def _net(model: PPGNet, x: np.ndarray) -> np.ndarray:
    """PPGNet without its utterance normalisation: normalised log-mel (T, M) -> posteriors (T, 40)."""
    with torch.no_grad():
        h = model.inp(torch.from_numpy(x).T[None])  # (1, channels, T)
        for block in model.blocks:
            h = h + block(h)
        return torch.softmax(model.out(h)[0].T, -1).numpy().astype(np.float32)  # (T, 40)


def ppg_live(wav: np.ndarray, model: PPGNet) -> np.ndarray:
    """Whole clip -> (T, 40) posteriors at 50 Hz, T = 1 + len(wav) // 320 (the offline reference)."""
    mel = log_mel_from_padded(np.pad(np.asarray(wav, np.float32), (HALF, HALF)), model.cfg)
    return _net(model.eval(), trailing_norm(mel))


def load_ppg_net(checkpoint: str | Path) -> PPGNet:
    return PPGExtractor(checkpoint).model.eval()


class StreamingPpg(ChunkedStream):
    """Incremental :func:`ppg_live`: push chunks of any size, get each frame once final.
    Memory is bounded: audio under one FFT frame + a chunk, 2 s of log-mel history, and
    2 * radius normalised frames for the network's window."""

    DIM, PAD = 40, HALF

    def __init__(self, model: PPGNet):
        self.model = model.eval()
        self.cfg = model.cfg
        self.radius = net_radius(self.cfg)
        self._p = np.zeros(HALF, np.float32)
        self._p_start = 0
        self._n_mel = 0
        self._hist = np.zeros((0, self.cfg.n_mels), np.float32)  # last NORM_FRAMES - 1 log-mel rows
        self._x = np.zeros((0, self.cfg.n_mels), np.float32)  # normalised rows [x_start, n_mel)
        self._x_start = 0
        self.n_frames = 0
        self.n_samples = 0
        self._done = False
        self.lookahead_ms = ppg_lookahead_ms(self.cfg)

    def _advance(self) -> None:
        mel = log_mel_from_padded(self._p[self._n_mel * HOP - self._p_start:], self.cfg)
        if len(mel):
            self._x = np.concatenate([self._x, trailing_norm(mel, history=self._hist)])
            self._hist = np.concatenate([self._hist, mel])[-(NORM_FRAMES - 1):]
            self._n_mel += len(mel)
            keep = self._n_mel * HOP
            self._p = self._p[keep - self._p_start:]
            self._p_start = keep

    def _emit(self, final: bool) -> np.ndarray:
        upto = self._n_mel if final else max(self._n_mel - self.radius, self.n_frames)
        if upto <= self.n_frames:
            return np.zeros((0, 40), np.float32)
        lo = max(self.n_frames - self.radius, 0)  # the window reaches radius frames back (or the start)
        hi = self._n_mel if final else upto + self.radius
        out = _net(self.model, self._x[lo - self._x_start: hi - self._x_start])[self.n_frames - lo: upto - lo]
        self.n_frames = upto
        drop = max(self.n_frames - self.radius, 0) - self._x_start
        if drop > 0:
            self._x = self._x[drop:]
            self._x_start += drop
        return out

