"""Face rig on hand-made phone sequences: closure, rounding anticipation, lead, ranges, frames."""
from __future__ import annotations

import numpy as np
import pytest

from lib.channels import T2A_37
from lib.config import AUDIO_SAMPLE_RATE_HZ, label_frames
from lib.corpus.phones import VOWELS
from lib.corpus.rig import ORACLE_STYLE, RigStyle, check_phones, rig_trajectories, utterance_rng
from lib.corpus.rig_targets import neutral_pose

CH = {c: i for i, c in enumerate(T2A_37)}
SR = AUDIO_SAMPLE_RATE_HZ


def seq(*items: tuple[str, float]) -> list[tuple[str, float, float]]:
    """(phone, duration_s) pairs -> contiguous (phone, start_s, end_s)."""
    out, t = [], 0.0
    for p, d in items:
        out.append((p, t, t + d))
        t += d
    return out


def voice_like(phones, f0_hz: float = 140.0) -> np.ndarray:
    """A harmonic buzz loud on vowels, faint on consonants, silent on pauses: (samples,) float32."""
    n = int(round(phones[-1][2] * SR))
    t = np.arange(n) / SR
    buzz = sum(np.sin(2 * np.pi * k * f0_hz * t) / k for k in range(1, 6))
    env = np.zeros(n)
    for p, s, e in phones:
        env[int(s * SR): int(e * SR)] = 1.0 if p in VOWELS else (0.0 if p == "sil" else 0.1)
    return (0.2 * buzz * env).astype(np.float32)


def frame_at(t_s: float, fps: int = 25) -> int:
    """Index of the frame whose centre (k + 0.5) / fps is nearest to ``t_s``."""
    return int(round(t_s * fps - 0.5))


@pytest.mark.parametrize("dur", [0.37, 1.0, 1.23, 2.519])
def test_frame_count_and_range(dur):
    phones = seq(("sil", 0.1), ("M", dur * 0.2), ("AA", dur * 0.4), ("S", dur * 0.2), ("sil", dur * 0.8 - 0.1))
    wav = voice_like(phones)
    y = rig_trajectories(phones, wav, RigStyle(noise_std=0.3), utterance_rng(1, "org", "u1"))
    assert y.shape == (label_frames(len(wav) / SR), len(T2A_37))
    assert y.dtype == np.float32 and y.min() >= 0.0 and y.max() <= 1.0


def test_bilabial_closes_lips():
    phones = seq(("sil", 0.2), ("AA", 0.18), ("B", 0.07), ("AA", 0.2), ("M", 0.08), ("IY", 0.15),
                 ("P", 0.06), ("AO", 0.2), ("sil", 0.25))
    wav = voice_like(phones)
    style = RigStyle()
    y = rig_trajectories(phones, wav, ORACLE_STYLE)
    for p, s, e in phones:
        k = frame_at(0.5 * (s + e) - style.lead_s)
        if p in ("B", "M", "P"):
            assert y[k, CH["MouthClose"]] > 0.4, (p, y[k, CH["MouthClose"]])
            assert min(y[k, CH["MouthPressLeft"]], y[k, CH["MouthPressRight"]]) > 0.3
            assert y[k, CH["JawOpen"]] < 0.15
        elif p in ("AA", "AO"):
            assert y[k, CH["JawOpen"]] > 0.25 and y[k, CH["MouthClose"]] < 0.2


def test_rounding_is_anticipated():
    """Lips round during the consonants before UW (not before IY), ahead of the vowel."""
    lead = RigStyle().lead_s
    common = [("sil", 0.3), ("AH", 0.15), ("S", 0.1), ("T", 0.08)]
    rounded = seq(*common, ("UW", 0.25), ("sil", 0.3))
    spread = seq(*common, ("IY", 0.25), ("sil", 0.3))
    yr = rig_trajectories(rounded, voice_like(rounded), ORACLE_STYLE)
    ys = rig_trajectories(spread, voice_like(spread), ORACLE_STYLE)
    v_start = rounded[4][1]
    k = frame_at(v_start - lead - 0.06)  # during S/T on the face's time line
    pucker = CH["MouthPucker"]
    assert yr[k, pucker] - ys[k, pucker] > 0.1
    assert yr[k, pucker] > neutral_pose()[pucker] + 0.1
    # and the rounding keeps rising into the vowel
    k_v = frame_at(0.5 * (rounded[4][1] + rounded[4][2]) - lead)
    assert yr[k_v, pucker] > yr[k, pucker]


def test_face_leads_sound():
    """At a high frame rate the closure peak sits lead_s before the bilabial's centre."""
    phones = seq(("sil", 0.3), ("AA", 0.25), ("M", 0.1), ("AA", 0.25), ("sil", 0.3))
    wav = voice_like(phones)
    centre = 0.5 * (phones[2][1] + phones[2][2])
    for lead in (0.04, 0.08):
        y = rig_trajectories(phones, wav, RigStyle(lead_s=lead, strength_jitter=0, brow_jitter=0,
                                                   smile_jitter=0, noise_std=0), face_fps=100)
        t_peak = (np.argmax(y[:, CH["MouthClose"]]) + 0.5) / 100
        assert abs(t_peak - (centre - lead)) <= 0.011


def test_seeded_randomness():
    phones = seq(("sil", 0.2), ("HH", 0.08), ("AH", 0.2), ("L", 0.07), ("OW", 0.25), ("sil", 0.2))
    wav = voice_like(phones)
    a = rig_trajectories(phones, wav, RigStyle(), utterance_rng(0, "org", "u0001"))
    b = rig_trajectories(phones, wav, RigStyle(), utterance_rng(0, "org", "u0001"))
    c = rig_trajectories(phones, wav, RigStyle(), utterance_rng(0, "org", "u0002"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    clean = rig_trajectories(phones, wav, ORACLE_STYLE)
    # noise of std 0.04 (clipped at 0) stays near its nominal size
    assert 0.02 < np.std(a - clean) < 0.12
    with pytest.raises(ValueError):
        rig_trajectories(phones, wav, RigStyle())  # random style without an rng


def test_loudness_scales_opening():
    phones = seq(("sil", 0.2), ("AA", 0.3), ("sil", 0.2))
    wav = voice_like(phones)
    loud = rig_trajectories(phones, wav, ORACLE_STYLE)
    soft = rig_trajectories(phones, wav * 0.05, ORACLE_STYLE)
    # loudness is relative to the utterance, so a uniformly softer clip opens the same...
    assert np.allclose(loud, soft, atol=0.02)
    # ...while a weaker vowel within an utterance opens less than a strong one
    two = seq(("sil", 0.2), ("AA", 0.3), ("HH", 0.1), ("AA", 0.3), ("sil", 0.2))
    w2 = voice_like(two)
    w2[int(0.6 * SR): int(0.9 * SR)] *= 0.1
    y = rig_trajectories(two, w2, ORACLE_STYLE)
    k1, k2 = frame_at(0.35 - 0.06), frame_at(0.75 - 0.06)
    assert y[k1, CH["JawOpen"]] > y[k2, CH["JawOpen"]] + 0.05


def test_bad_phones_are_rejected():
    with pytest.raises(ValueError, match="inventory"):
        check_phones([("sil", 0, 0.1), ("XX", 0.1, 0.2)], 0.2)
    with pytest.raises(ValueError, match="contiguous"):
        check_phones([("sil", 0, 0.1), ("AA", 0.15, 0.2)], 0.2)
    with pytest.raises(ValueError, match="clip lasts"):
        check_phones([("sil", 0, 0.1)], 0.5)
