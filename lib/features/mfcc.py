"""MFCC features at 100 Hz (10 ms hop), two 39-dim recipes.

Framing (both recipes): 25 ms Hann window (400 samples) zero-padded to a
512-point FFT, 10 ms hop (``hop_samples(100)`` = 160 samples), ``center=True``:
frame ``t`` is centred on sample ``160 * t`` and the signal is reflect-padded
by half an FFT at both ends. A clip of ``n`` samples therefore has exactly

    T = 1 + n // 160  frames  (see :func:`mfcc_frames`).

A label frame is 40 ms (25 fps), i.e. 4 MFCC frames: a clip of ``d`` seconds
has ``round(25 d)`` label frames and about ``4 * round(25 d) + 1`` MFCC frames.
The model's two stride-2 layers reduce T to ceil(T / 4) and trim/pad that to
the label length, so the one extra frame (or a fraction of a frame from
rounding) never shifts the alignment: frame ``4k`` of MFCC and frame ``k`` of
labels start at the same instant ``k * 40 ms``.

Recipes:
    ``mfcc``:     13 MFCC + delta + delta-delta (librosa's Savitzky-Golay deltas,
                  width 9), the standard ASR recipe.
    ``mfcc_t2a``: 13 MFCC + regression delta with N=1 + regression delta with
                  N=2 (both first order, computed on the static MFCC), the recipe
                  of the original T2A system. See :func:`regression_delta`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..config import AUDIO_SAMPLE_RATE_HZ, FEATURE_RATES_HZ, hop_samples


@dataclasses.dataclass(frozen=True)
class MfccConfig:
    """Static MFCC settings shared by both recipes."""

    n_mfcc: int = 13
    win_samples: int = 400  # 25 ms at 16 kHz
    n_fft: int = 512
    n_mels: int = 40  # librosa's default of 128 leaves empty filters with a 512-point FFT
    fmin_hz: float = 0.0
    fmax_hz: float = AUDIO_SAMPLE_RATE_HZ / 2
    rate_hz: int = FEATURE_RATES_HZ["mfcc"]


DEFAULT_MFCC = MfccConfig()
DELTA_WIDTH = 9  # librosa.feature.delta default


def mfcc_frames(n_samples: int, rate_hz: int = FEATURE_RATES_HZ["mfcc"]) -> int:
    """Number of MFCC frames of a clip of ``n_samples`` samples (center=True framing)."""
    return 1 + n_samples // hop_samples(rate_hz)


def static_mfcc(wav: np.ndarray, cfg: MfccConfig = DEFAULT_MFCC) -> np.ndarray:
    """13 static MFCCs.

    Args:
        wav: (samples,) float32 at 16 kHz.
    Returns:
        (T, n_mfcc) float32, T = :func:`mfcc_frames` (len(wav)).
    """
    import librosa

    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono (samples,), got shape {wav.shape}")
    c = librosa.feature.mfcc(
        y=wav,
        sr=AUDIO_SAMPLE_RATE_HZ,
        n_mfcc=cfg.n_mfcc,
        n_fft=cfg.n_fft,
        win_length=cfg.win_samples,
        hop_length=hop_samples(cfg.rate_hz),
        n_mels=cfg.n_mels,
        fmin=cfg.fmin_hz,
        fmax=cfg.fmax_hz,
        center=True,
    )  # (n_mfcc, T)
    return np.ascontiguousarray(c.T, dtype=np.float32)  # (T, n_mfcc)


def regression_delta(c: np.ndarray, n: int) -> np.ndarray:
    """First-order regression delta along time with half-width ``n``.

    d_t = sum_{k=1..n} k (c_{t+k} - c_{t-k}) / (2 sum_{k=1..n} k^2),
    with the first/last frame replicated beyond the edges (HTK / python_speech_features
    convention).

    Args:
        c: (T, D) features.
    Returns:
        (T, D) float32.
    """
    if n < 1:
        raise ValueError(f"delta half-width must be >= 1, got {n}")
    t = c.shape[0]
    padded = np.pad(c, ((n, n), (0, 0)), mode="edge")  # (T + 2n, D)
    num = np.zeros_like(c, dtype=np.float64)
    for k in range(1, n + 1):
        num += k * (padded[n + k : n + k + t] - padded[n - k : n - k + t])
    return (num / (2 * sum(k * k for k in range(1, n + 1)))).astype(np.float32)


def mfcc(wav: np.ndarray, cfg: MfccConfig = DEFAULT_MFCC) -> np.ndarray:
    """Standard recipe: 13 MFCC + delta + delta-delta.

    Deltas are librosa's Savitzky-Golay estimates (width 9, ``mode='interp'``);
    clips shorter than 9 frames (< 90 ms) use ``mode='nearest'`` because the
    interpolating fit needs a full window.

    Args:
        wav: (samples,) float32 at 16 kHz.
    Returns:
        (T, 39) float32 at 100 Hz, T = 1 + len(wav) // 160.
    """
    import librosa

    c = static_mfcc(wav, cfg)  # (T, 13)
    mode = "interp" if c.shape[0] >= DELTA_WIDTH else "nearest"
    d1 = librosa.feature.delta(c, width=DELTA_WIDTH, order=1, axis=0, mode=mode)
    d2 = librosa.feature.delta(c, width=DELTA_WIDTH, order=2, axis=0, mode=mode)
    return np.concatenate([c, d1, d2], axis=1).astype(np.float32)  # (T, 39)


def mfcc_t2a(wav: np.ndarray, cfg: MfccConfig = DEFAULT_MFCC) -> np.ndarray:
    """Original T2A recipe: 13 MFCC + regression delta (N=1) + regression delta (N=2).

    Args:
        wav: (samples,) float32 at 16 kHz.
    Returns:
        (T, 39) float32 at 100 Hz, T = 1 + len(wav) // 160.
    """
    c = static_mfcc(wav, cfg)  # (T, 13)
    return np.concatenate([c, regression_delta(c, 1), regression_delta(c, 2)], axis=1)  # (T, 39)
