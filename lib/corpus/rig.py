"""The face rig: phone timings + audio -> 37-channel blendshape trajectories at 25 fps.

Model (Cohen & Massaro's coarticulation model, per channel group):

    F(t, ch) = sum_i D_i(t) * T_i[ch] / sum_i D_i(t),
    D_i(t)   = alpha_i * exp(-theta_i * tau_i(t)),

where T_i is the viseme target of segment i (:mod:`lib.corpus.rig_targets`) and
tau_i is the distance in seconds from t to the core (middle half) of segment i,
with a separate theta towards earlier times (anticipation) and later times
(carry-over). Funnel/Pucker use their own dominances, in which rounded segments
reach far ahead and lip-neutral consonants are nearly transparent: the lips round
during the consonants before a rounded vowel. Bilabials dominate strongly, so the
lips close at their centres whatever the neighbours.

On top: loudness (RMS envelope) and acoustic stress scale the opening; brows and
cheeks follow pitch and energy accents; the face leads the sound by ``lead_s``;
labels of the recorded speaker ("org") also carry a per-utterance style draw and
smoothed capture-like noise. Values are clipped to [0, 1].
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..channels import T2A_37
from ..config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS, label_frames
from .phones import PHONE_CLASS, VOWELS
from .rig_prosody import GRID_HZ, accent_curve, gaussian_smooth, loudness_envelope, pitch_semitones, \
    vowel_prominence
from .rig_targets import CHANNEL_INDEX, CORE_FRACTION, OPENING_CHANNELS, ROUNDING_CHANNELS, \
    dominance_of, neutral_pose, noise_weights, phone_target

Phone = tuple[str, float, float]  # (phone, start_s, end_s)


@dataclass(frozen=True)
class RigStyle:
    """How one face renders speech. Defaults: the recorded speaker ("org")."""

    lead_s: float = 0.06  # the face moves this much before the sound (fixed, 40-80 ms in people)
    strength: float = 1.0  # articulation strength: scales deviations from the neutral pose
    strength_jitter: float = 0.12  # std of the per-utterance strength factor (style variation)
    brow_gain: float = 1.0  # how much brows/cheeks follow accents
    brow_jitter: float = 0.3  # std of log brow gain per utterance
    smile_jitter: float = 0.03  # std of a per-utterance smile offset (mood)
    loudness_gain: float = 0.5  # opening = neutral + dev * strength * (1 - g/2 + g * loudness)
    stress_gain: float = 0.3  # vowel target deviation * (1 + stress_gain * prominence)
    smoothing_s: float = 0.02  # Gaussian sigma of muscle-like smoothing
    noise_std: float = 0.04  # std of the capture-like noise (0.35x on channels the rig keeps still)
    noise_smoothing_s: float = 0.06  # Gaussian sigma of that noise (tracker jitter is not white)

    @property
    def is_random(self) -> bool:
        return self.strength_jitter > 0 or self.brow_jitter > 0 or self.smile_jitter > 0 or self.noise_std > 0


# Oracle labels of a TTS clip: the recorded speaker's face in that clip's own timing.
# Same lead (a property of the face), but no per-utterance style draw and no noise:
# a clean, exactly aligned target for judging TTS-driven predictions.
ORACLE_STYLE = RigStyle(strength_jitter=0.0, brow_jitter=0.0, smile_jitter=0.0, noise_std=0.0)


def utterance_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator seeded from (seed, keys...) by hashing, so draws do not depend on
    worker order or Python's randomised ``hash``."""
    digest = hashlib.sha256("\x1f".join([str(seed), *keys]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def check_phones(phones: Sequence[Phone], duration_s: float) -> list[Phone]:
    """Validate phone timings: known phones, increasing, contiguous, covering the clip."""
    if not phones:
        raise ValueError("no phones")
    out = []
    prev_end = 0.0
    for p, s, e in phones:
        if p not in PHONE_CLASS:
            raise ValueError(f"phone {p!r} is not in the common inventory")
        if e <= s or abs(s - prev_end) > 1e-3:
            raise ValueError(f"phone {p!r} [{s:.4f}, {e:.4f}] not contiguous after {prev_end:.4f} s")
        out.append((p, float(s), float(e)))
        prev_end = e
    if abs(prev_end - duration_s) > 0.05:
        raise ValueError(f"phones end at {prev_end:.3f} s but the clip lasts {duration_s:.3f} s")
    return out


def _dominance_matrix(phones: Sequence[Phone], t: np.ndarray, rounding: bool) -> np.ndarray:
    """(segments, len(t)) dominance of each segment at times ``t`` (seconds)."""
    d = np.empty((len(phones), len(t)))
    for i, (p, s, e) in enumerate(phones):
        dom = dominance_of(p, rounding)
        centre, half_core = 0.5 * (s + e), 0.5 * (e - s) * CORE_FRACTION
        dt = t - centre
        # dt < 0: the segment is still ahead of t -> anticipatory reach (theta_before)
        theta = np.where(dt < 0, dom.theta_before_per_s, dom.theta_after_per_s)
        d[i] = dom.alpha * np.exp(-theta * np.maximum(np.abs(dt) - half_core, 0.0))
    return d


def articulation(phones: Sequence[Phone], t: np.ndarray, prominence: dict[int, float] | None = None,
                 stress_gain: float = 0.0) -> np.ndarray:
    """Coarticulated pose at times ``t`` from phone timings alone (no prosody, lead or noise).

    Returns (len(t), 37) float64 in T2A_37 order.
    """
    neutral = neutral_pose()
    targets = np.stack([phone_target(p) for p, _, _ in phones])  # (segments, 37)
    for i, prom in (prominence or {}).items():
        targets[i] = neutral + (targets[i] - neutral) * (1.0 + stress_gain * prom)
    out = np.empty((len(t), len(T2A_37)))
    for rounding in (False, True):
        dom = _dominance_matrix(phones, t, rounding)  # (segments, T)
        w = dom / dom.sum(0, keepdims=True)
        pose = w.T @ targets  # (T, 37)
        cols = [CHANNEL_INDEX[c] for c in ROUNDING_CHANNELS]
        if rounding:
            out[:, cols] = pose[:, cols]
        else:
            keep = np.ones(len(T2A_37), bool)
            keep[cols] = False
            out[:, keep] = pose[:, keep]
    return out


def rig_trajectories(
    phones: Sequence[Phone],
    wav: np.ndarray,
    style: RigStyle = RigStyle(),
    rng: np.random.Generator | None = None,
    sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ,
    face_fps: int = FACE_FPS,
) -> np.ndarray:
    """Face trajectories of one clip.

    Args:
        phones: contiguous (phone, start_s, end_s) covering the clip, common inventory.
        wav: (samples,) float waveform at ``sample_rate_hz`` (loudness and pitch cues).
        style: rig parameters; a random style (jitter or noise) needs ``rng``.
        rng: per-utterance generator (see :func:`utterance_rng`).
    Returns:
        (label_frames(duration_s), 37) float32 in [0, 1], T2A_37 order, frame k at
        time (k + 0.5) / face_fps.
    """
    duration_s = len(wav) / sample_rate_hz
    phones = check_phones(phones, duration_s)
    if style.is_random and rng is None:
        raise ValueError("a style with jitter or noise needs an rng (use utterance_rng)")
    n_frames = label_frames(duration_s, face_fps)
    neutral = neutral_pose()

    # Per-utterance style draw (all draws happen, in a fixed order, even when a
    # jitter is 0 so that styles differing in one field stay comparable).
    strength, brow_gain, smile = style.strength, style.brow_gain, 0.0
    if rng is not None:
        z = rng.standard_normal(3)
        strength *= float(np.clip(1.0 + style.strength_jitter * z[0], 0.6, 1.4))
        brow_gain *= float(np.exp(style.brow_jitter * z[1]))
        smile = style.smile_jitter * float(z[2])

    # Acoustic cues on the 100 Hz grid, which also spans the lead past the end.
    n_grid = int(np.ceil((duration_s + style.lead_s) * GRID_HZ)) + 2
    t_grid = np.arange(n_grid) / GRID_HZ
    loud = loudness_envelope(wav, n_grid, sample_rate_hz)
    pitch = pitch_semitones(wav, n_grid, sample_rate_hz)
    vowel_idx = [i for i, (p, _, _) in enumerate(phones) if p in VOWELS]
    prom = vowel_prominence([phones[i][1:] for i in vowel_idx], loud, pitch)

    pose = articulation(phones, t_grid, dict(zip(vowel_idx, prom)), style.stress_gain)  # (n_grid, 37)
    pose = neutral + (pose - neutral) * strength
    opening = [CHANNEL_INDEX[c] for c in OPENING_CHANNELS]
    g = style.loudness_gain
    pose[:, opening] = neutral[opening] + (pose[:, opening] - neutral[opening]) * (1 - g / 2 + g * loud)[:, None]

    pitch_acc, energy_acc = accent_curve(pitch, loud)
    _add(pose, ("BrowInnerUp",), 0.22 * brow_gain * pitch_acc)
    _add(pose, ("BrowOuterUpLeft", "BrowOuterUpRight"), 0.15 * brow_gain * pitch_acc)
    _add(pose, ("BrowDownLeft", "BrowDownRight"), -0.08 * brow_gain * pitch_acc)
    _add(pose, ("CheekSquintLeft", "CheekSquintRight"), 0.10 * brow_gain * (0.5 * pitch_acc + 0.5 * energy_acc))
    _add(pose, ("MouthSmileLeft", "MouthSmileRight"), np.full(n_grid, smile))

    pose = gaussian_smooth(pose, style.smoothing_s * GRID_HZ)
    # The face leads the sound: frame time t shows the articulation of t + lead_s.
    t_frames = (np.arange(n_frames) + 0.5) / face_fps + style.lead_s
    out = np.stack([np.interp(t_frames, t_grid, pose[:, j]) for j in range(pose.shape[1])], 1)  # (frames, 37)

    if style.noise_std > 0:
        sigma = style.noise_smoothing_s * face_fps
        noise = gaussian_smooth(rng.standard_normal(out.shape), sigma)
        # Renormalise: smoothing white noise of unit std leaves std sqrt(sum k^2).
        half = int(np.ceil(3 * sigma))
        k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
        noise *= style.noise_std / np.sqrt(np.sum((k / k.sum()) ** 2)) * noise_weights()  # (frames, 37)
        out = out + noise
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _add(pose: np.ndarray, names: Sequence[str], curve: np.ndarray) -> None:
    for n in names:
        pose[:, CHANNEL_INDEX[n]] += curve


def oracle_style(style: RigStyle) -> RigStyle:
    """The oracle version of ``style``: same face (lead, gains), no randomness."""
    return dataclasses.replace(style, strength_jitter=0.0, brow_jitter=0.0, smile_jitter=0.0, noise_std=0.0)
