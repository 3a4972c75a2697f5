"""Viseme targets and dominance parameters of the face rig.

Each viseme class of :mod:`lib.corpus.phones` has a target pose over the 37
channels of :data:`lib.channels.T2A_37` and a dominance (how strongly and how
far in time it pulls the face towards its target). Values are calibrated to the
ranges of the original system's real labels (e.g. JawOpen mean 0.23, max 0.57;
MouthLowerDown up to 0.7; brows and cheeks with a resting offset), so the
synthetic corpus has the same scale as recorded data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..channels import T2A_37
from .phones import PHONE_CLASS, VISEME_CLASSES

CHANNEL_INDEX: dict[str, int] = {c: i for i, c in enumerate(T2A_37)}

# Channels the rig drives for opening the mouth: scaled by loudness and stress.
OPENING_CHANNELS: tuple[str, ...] = (
    "JawOpen", "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight",
)
# Lip rounding: these follow their own, longer-reaching dominance (anticipatory rounding).
ROUNDING_CHANNELS: tuple[str, ...] = ("MouthFunnel", "MouthPucker")

# Resting face while talking (not a slack face): the real labels never sit at 0 on
# stretch/dimple/brow/cheek/nose channels, so neither does the rig.
_NEUTRAL: dict[str, float] = {
    "JawForward": 0.08, "JawLeft": 0.01, "JawOpen": 0.04, "MouthClose": 0.08, "MouthFunnel": 0.08,
    "MouthPucker": 0.06, "MouthLeft": 0.01, "MouthSmile": 0.10, "MouthFrown": 0.01, "MouthDimple": 0.07,
    "MouthStretch": 0.18, "MouthRollLower": 0.06, "MouthRollUpper": 0.05, "MouthShrugLower": 0.05,
    "MouthShrugUpper": 0.15, "MouthPress": 0.05, "MouthLowerDown": 0.08, "MouthUpperUp": 0.03,
    "BrowDown": 0.15, "BrowInnerUp": 0.08, "CheekPuff": 0.01, "CheekSquint": 0.12, "NoseSneer": 0.08,
}

# Class targets as overrides of the neutral pose ("MouthSmile" sets Left and Right).
_CLASS_TARGETS: dict[str, dict[str, float]] = {
    "silence": {"JawOpen": 0.02, "MouthClose": 0.10, "MouthLowerDown": 0.05},
    # lips pressed together, jaw nearly shut
    "bilabial": {"JawOpen": 0.05, "MouthClose": 0.60, "MouthPress": 0.50, "MouthLowerDown": 0.02,
                 "MouthUpperUp": 0.0, "MouthRollLower": 0.16, "MouthRollUpper": 0.12,
                 "MouthShrugUpper": 0.25, "MouthShrugLower": 0.12},
    # lower lip tucked under the upper teeth
    "labiodental": {"JawOpen": 0.10, "MouthClose": 0.20, "MouthRollLower": 0.50, "MouthUpperUp": 0.35,
                    "MouthLowerDown": 0.05, "MouthShrugUpper": 0.20, "MouthPress": 0.08},
    "dental": {"JawOpen": 0.18, "MouthLowerDown": 0.28, "MouthUpperUp": 0.10, "MouthStretch": 0.25,
               "MouthClose": 0.05},
    "alveolar": {"JawOpen": 0.15, "MouthLowerDown": 0.22, "MouthStretch": 0.22, "MouthClose": 0.06,
                 "MouthSmile": 0.12},
    "lateral": {"JawOpen": 0.20, "MouthLowerDown": 0.28, "MouthStretch": 0.22},
    # teeth close together, lips spread
    "sibilant": {"JawOpen": 0.08, "MouthLowerDown": 0.20, "MouthStretch": 0.32, "MouthSmile": 0.18,
                 "MouthUpperUp": 0.08, "MouthClose": 0.10},
    # lips protruded a little
    "postalveolar": {"JawOpen": 0.10, "MouthFunnel": 0.40, "MouthPucker": 0.30, "MouthLowerDown": 0.20,
                     "MouthUpperUp": 0.15, "MouthClose": 0.08, "MouthStretch": 0.10},
    "velar": {"JawOpen": 0.20, "MouthLowerDown": 0.25, "MouthStretch": 0.20},
    "glottal": {"JawOpen": 0.22, "MouthLowerDown": 0.25},
    "rhotic": {"JawOpen": 0.15, "MouthFunnel": 0.30, "MouthPucker": 0.25, "MouthLowerDown": 0.20,
               "MouthShrugUpper": 0.20, "MouthStretch": 0.10},
    "labial_glide": {"JawOpen": 0.08, "MouthPucker": 0.60, "MouthFunnel": 0.45, "MouthClose": 0.15,
                     "MouthLowerDown": 0.05, "MouthStretch": 0.05, "MouthSmile": 0.02},
    "palatal_glide": {"JawOpen": 0.12, "MouthStretch": 0.35, "MouthSmile": 0.25, "MouthLowerDown": 0.20},
    "open_vowel": {"JawOpen": 0.45, "MouthLowerDown": 0.55, "MouthUpperUp": 0.08, "MouthStretch": 0.22,
                   "MouthFunnel": 0.10, "MouthClose": 0.0, "MouthShrugUpper": 0.10},
    "mid_vowel": {"JawOpen": 0.30, "MouthLowerDown": 0.42, "MouthStretch": 0.30, "MouthSmile": 0.20,
                  "MouthClose": 0.02},
    "spread_vowel": {"JawOpen": 0.16, "MouthLowerDown": 0.30, "MouthStretch": 0.45, "MouthSmile": 0.40,
                     "MouthDimple": 0.12, "MouthPucker": 0.02, "MouthFunnel": 0.03, "CheekSquint": 0.16},
    "rounded_vowel": {"JawOpen": 0.22, "MouthLowerDown": 0.20, "MouthFunnel": 0.50, "MouthPucker": 0.55,
                      "MouthStretch": 0.05, "MouthSmile": 0.03, "MouthClose": 0.05},
}

# Phone-level refinements inside a class (e.g. AA opens wider than AH).
_PHONE_TARGETS: dict[str, dict[str, float]] = {
    "AA": {"JawOpen": 0.55, "MouthLowerDown": 0.62},
    "AH": {"JawOpen": 0.34, "MouthLowerDown": 0.45},
    "AE": {"MouthStretch": 0.35, "MouthSmile": 0.20},
    "AO": {"JawOpen": 0.38, "MouthLowerDown": 0.35, "MouthPucker": 0.35},
    "UW": {"JawOpen": 0.12, "MouthPucker": 0.70, "MouthFunnel": 0.45},
    "UH": {"MouthPucker": 0.40, "MouthFunnel": 0.35},
    "IY": {"JawOpen": 0.12, "MouthSmile": 0.48},
    "ER": {"JawOpen": 0.20, "MouthLowerDown": 0.28},
}


@dataclass(frozen=True)
class Dominance:
    """Cohen–Massaro dominance of a segment: alpha * exp(-theta * tau), tau in seconds
    outside the segment's core. ``theta_before_per_s`` shapes the reach towards
    earlier times (anticipation), ``theta_after_per_s`` the carry-over."""

    alpha: float
    theta_before_per_s: float
    theta_after_per_s: float


# Bilabials and labiodentals dominate strongly and narrowly: the lips must close /
# touch whatever the neighbours do. Vowels and silence are weak and broad.
_DOMINANCE: dict[str, Dominance] = {
    "silence": Dominance(0.8, 12.0, 12.0),
    "bilabial": Dominance(8.0, 30.0, 30.0),
    "labiodental": Dominance(5.0, 30.0, 30.0),
    "dental": Dominance(2.0, 25.0, 25.0),
    "alveolar": Dominance(1.5, 25.0, 25.0),
    "lateral": Dominance(1.2, 25.0, 25.0),
    "sibilant": Dominance(2.5, 25.0, 25.0),
    "postalveolar": Dominance(2.5, 22.0, 25.0),
    "velar": Dominance(1.0, 25.0, 25.0),
    "glottal": Dominance(0.3, 30.0, 30.0),
    "rhotic": Dominance(1.5, 20.0, 20.0),
    "labial_glide": Dominance(3.0, 20.0, 20.0),
    "palatal_glide": Dominance(1.5, 22.0, 22.0),
    "open_vowel": Dominance(1.0, 15.0, 15.0),
    "mid_vowel": Dominance(1.0, 15.0, 15.0),
    "spread_vowel": Dominance(1.2, 15.0, 15.0),
    "rounded_vowel": Dominance(1.2, 15.0, 15.0),
}

# For the rounding channels: rounded segments reach much further ahead (lips round
# during the consonants before a rounded vowel, as in "strew"); consonants that do
# not use the lips barely resist, spread vowels and silence do.
_ROUNDING_DOMINANCE: dict[str, Dominance] = {
    "rounded_vowel": Dominance(2.0, 5.0, 12.0),
    "labial_glide": Dominance(3.0, 5.0, 15.0),
    "postalveolar": Dominance(2.0, 8.0, 20.0),
    "rhotic": Dominance(1.5, 8.0, 18.0),
    "spread_vowel": Dominance(1.5, 15.0, 15.0),
    "silence": Dominance(0.8, 12.0, 12.0),
}
_ROUNDING_TRANSPARENT_ALPHA = 0.15  # consonants without their own rounding gesture

# Fraction of a segment's half-duration over which its dominance stays at alpha:
# long segments (pauses, long vowels) hold their target instead of peaking at one instant.
CORE_FRACTION = 0.5


def _expand(overrides: dict[str, float]) -> dict[str, float]:
    """Expand symmetric stems ("MouthSmile") to their Left/Right channels."""
    out: dict[str, float] = {}
    for name, value in overrides.items():
        if name in CHANNEL_INDEX:
            out[name] = value
        else:
            sides = [name + s for s in ("Left", "Right")]
            if not all(s in CHANNEL_INDEX for s in sides):
                raise KeyError(f"rig target names unknown channel {name!r}")
            out.update({s: value for s in sides})
    return out


def neutral_pose() -> np.ndarray:
    """Resting pose, (37,) float64 in T2A_37 order."""
    pose = np.zeros(len(T2A_37))
    for name, v in _expand(_NEUTRAL).items():
        pose[CHANNEL_INDEX[name]] = v
    return pose


def phone_target(phone: str) -> np.ndarray:
    """Target pose of one phone of the common inventory, (37,) float64."""
    pose = neutral_pose()
    for table in (_CLASS_TARGETS[PHONE_CLASS[phone]], _PHONE_TARGETS.get(phone, {})):
        for name, v in _expand(table).items():
            pose[CHANNEL_INDEX[name]] = v
    return pose


def dominance_of(phone: str, rounding: bool) -> Dominance:
    """Dominance of a phone for the general channels or (``rounding``) for Funnel/Pucker."""
    cls = PHONE_CLASS[phone]
    if not rounding:
        return _DOMINANCE[cls]
    if cls in _ROUNDING_DOMINANCE:
        return _ROUNDING_DOMINANCE[cls]
    d = _DOMINANCE[cls]
    if cls.endswith("_vowel"):
        return d
    return Dominance(d.alpha * _ROUNDING_TRANSPARENT_ALPHA, d.theta_before_per_s, d.theta_after_per_s)


def noise_weights() -> np.ndarray:
    """Per-channel scale of capture noise, (37,): 1 on channels the rig moves, 0.35 on the
    ones it keeps still (a tracker's jitter is smaller where the face does not move)."""
    from .phones import PHONES

    poses = np.stack([phone_target(p) for p in PHONES])  # (40, 37)
    moving = (poses.max(0) - poses.min(0)) > 0.05
    for name in ("BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "BrowDownLeft", "BrowDownRight",
                 "CheekSquintLeft", "CheekSquintRight"):
        moving[CHANNEL_INDEX[name]] = True  # driven by pitch/energy accents
    return np.where(moving, 1.0, 0.35)


assert set(_CLASS_TARGETS) == set(VISEME_CLASSES) == set(_DOMINANCE), "every viseme class needs a target"
