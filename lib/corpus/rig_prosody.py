"""Acoustic cues the face rig follows: loudness envelope, pitch accents, vowel prominence.

All curves are sampled on a uniform grid of ``GRID_HZ`` (100 Hz, 10 ms), the rig's
internal time base, and normalised per utterance so the rig reacts to relative
prominence, not to a voice's absolute level or register.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..config import AUDIO_SAMPLE_RATE_HZ, hop_samples

GRID_HZ = 100  # rig's internal rate; divides 16 kHz exactly (hop 160 samples)
_F0_MIN_HZ = 60.0
_F0_MAX_HZ = 400.0


def gaussian_smooth(x: np.ndarray, sigma_samples: float, axis: int = 0) -> np.ndarray:
    """Gaussian smoothing along ``axis`` with edge padding (no darkening at the ends)."""
    if sigma_samples <= 0:
        return x
    half = int(np.ceil(3 * sigma_samples))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_samples) ** 2)
    k /= k.sum()
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)], 0)
    out = np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(padded.shape[1])], 1) \
        if padded.ndim == 2 else np.convolve(padded, k, mode="valid")
    return np.moveaxis(out, 0, axis)


def loudness_envelope(wav: np.ndarray, n_grid: int, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ) -> np.ndarray:
    """Syllable-rate loudness in [0, 1] on the 100 Hz grid.

    Args:
        wav: (samples,) float waveform.
        n_grid: number of grid points to return (padded with silence past the audio).
    Returns:
        (n_grid,) float64: dB RMS mapped from [p95 - 30 dB, p95] to [0, 1], smoothed 40 ms.
    """
    hop = hop_samples(GRID_HZ, sample_rate_hz)
    n = int(np.ceil(len(wav) / hop))
    padded = np.zeros(n * hop + hop, dtype=np.float64)
    padded[: len(wav)] = wav
    # 20 ms windows centred on each grid point (hop 10 ms), energy per window.
    frames = np.lib.stride_tricks.sliding_window_view(padded, 2 * hop)[::hop][:n]  # (n, 2*hop)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)
    top = np.percentile(db, 95) if n else 0.0
    loud = np.clip((db - (top - 30.0)) / 30.0, 0.0, 1.0)
    loud = gaussian_smooth(loud, 4.0)
    out = np.zeros(n_grid)
    m = min(n_grid, len(loud))
    out[:m] = loud[:m]
    return out


def pitch_semitones(wav: np.ndarray, n_grid: int, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ) -> np.ndarray:
    """F0 in semitones relative to the utterance's median voiced f0, NaN where unvoiced.

    Uses YIN (fast, deterministic) on 64 ms windows; a frame counts as voiced when
    it is loud enough and YIN's estimate lies strictly inside the search range and
    within 9 semitones of the median (further is an octave error).
    Returns (n_grid,) float64.
    """
    import librosa

    hop = hop_samples(GRID_HZ, sample_rate_hz)
    frame_length = 1024  # 64 ms: two periods of the 60 Hz floor
    y = np.asarray(wav, dtype=np.float32)
    if len(y) < frame_length:
        y = np.pad(y, (0, frame_length - len(y)))
    f0 = librosa.yin(y, fmin=_F0_MIN_HZ, fmax=_F0_MAX_HZ, sr=sample_rate_hz,
                     frame_length=frame_length, hop_length=hop, center=True)
    loud = loudness_envelope(wav, len(f0), sample_rate_hz)
    voiced = (loud > 0.45) & (f0 > _F0_MIN_HZ * 1.05) & (f0 < _F0_MAX_HZ * 0.95)
    out = np.full(n_grid, np.nan)
    if voiced.sum() >= 3:
        st = 12 * np.log2(f0 / np.median(f0[voiced]))
        # Jumps beyond +-9 semitones are YIN octave errors, not intonation: drop them,
        # or they raise the brows on creaky or breathy frames.
        st[~voiced | (np.abs(st) > 9.0)] = np.nan
        m = min(n_grid, len(st))
        out[:m] = st[:m]
    return out


def accent_curve(pitch_st: np.ndarray, loud: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pitch accent and energy accent in [0, 1] on the grid, smoothed ~120 ms.

    Pitch accent: f0 more than 1 semitone above the median, saturating at +5.
    Energy accent: loudness above 0.75 of the utterance's scale.
    """
    st = np.nan_to_num(pitch_st, nan=0.0)
    pitch_acc = gaussian_smooth(np.clip((st - 1.0) / 4.0, 0.0, 1.0), 12.0)
    energy_acc = gaussian_smooth(np.clip((loud - 0.75) / 0.25, 0.0, 1.0), 12.0)
    return pitch_acc, energy_acc


def vowel_prominence(
    segments: Sequence[tuple[float, float]], loud: np.ndarray, pitch_st: np.ndarray
) -> np.ndarray:
    """Acoustic prominence (a stress proxy) of each vowel segment, in [-1, 1].

    The common phone inventory carries no lexical stress, so stress is read off the
    audio as speakers realise it: longer, louder, higher vowels. z-scores of the
    three cues over the utterance's vowels are averaged and squashed with tanh.

    Args:
        segments: (start_s, end_s) of each vowel.
        loud, pitch_st: grid curves from :func:`loudness_envelope` / :func:`pitch_semitones`.
    Returns:
        (n_vowels,) float64.
    """
    if len(segments) < 2:
        return np.zeros(len(segments))
    feats = []
    for s, e in segments:
        a, b = int(s * GRID_HZ), max(int(s * GRID_HZ) + 1, int(e * GRID_HZ))
        p = pitch_st[a:b]
        p = p[np.isfinite(p)]
        feats.append([e - s, float(np.mean(loud[a:b])) if b <= len(loud) else 0.0,
                      float(np.mean(p)) if len(p) else 0.0])
    f = np.asarray(feats)  # (n_vowels, 3)
    z = (f - f.mean(0)) / (f.std(0) + 1e-6)
    return np.tanh(z.mean(1))
