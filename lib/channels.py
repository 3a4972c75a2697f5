"""Channel sets: the names (and order) of the face parameters a label array carries.

Every face-parameter array in the toolkit travels with its channel names; these
are the sets the toolkit knows by name. Names follow Apple ARKit's blendshape
locations with a capital first letter, as Live Link Face writes them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

# Eye blendshapes of ARKit, in Live Link Face CSV order.
_EYES_14 = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft",
    "EyeLookUpLeft", "EyeSquintLeft", "EyeWideLeft",
    "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight",
    "EyeLookUpRight", "EyeSquintRight", "EyeWideRight",
)

# The 37 channels of the original system (T2A): the Live Link Face order with the
# eye, tongue and head channels removed. This order is the column order of its
# per-split .pkl label files, so it must never change.
T2A_37: tuple[str, ...] = (
    "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight",
    "MouthFrownLeft", "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight",
    "MouthStretchLeft", "MouthStretchRight", "MouthRollLower", "MouthRollUpper",
    "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft",
    "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp",
    "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight",
)

# ARKit's 52 blendshapes in Live Link Face column order.
ARKIT_52: tuple[str, ...] = _EYES_14 + T2A_37 + ("TongueOut",)

# Live Link Face CSV: the 52 blendshapes followed by 9 head/eye rotations.
LIVE_LINK_FACE_61: tuple[str, ...] = ARKIT_52 + (
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)

CHANNEL_SETS: dict[str, tuple[str, ...]] = {
    "t2a37": T2A_37,
    "arkit52": ARKIT_52,
    "livelinkface61": LIVE_LINK_FACE_61,
}
DEFAULT_CHANNEL_SET = "t2a37"

# Mouth channels used by the lip-focused metrics and the renderer.
MOUTH_CHANNELS: tuple[str, ...] = tuple(
    c for c in T2A_37 if c.startswith(("Mouth", "Jaw"))
)


def mouth_channels(channels: Sequence[str], user: Sequence[str] | None = None) -> tuple[str, ...]:
    """The mouth channels of a rig, for lip-focused metrics.

    ``user`` (face.json ``mouth_channels``) wins and must name channels of the
    rig; else the ARKit mouth and jaw names present (:data:`MOUTH_CHANNELS`);
    else, for a rig with no ARKit names, every channel (the documented
    fallback: a lip metric over the whole face is still a bounded error).
    """
    channels = tuple(channels)
    if user:
        missing = [c for c in user if c not in set(channels)]
        if missing:
            raise ValueError(f"mouth_channels not in the rig's channels: {missing}")
        return tuple(user)
    known = tuple(c for c in MOUTH_CHANNELS if c in set(channels))
    return known or channels


def get_channels(spec: str | Sequence[str] = DEFAULT_CHANNEL_SET) -> tuple[str, ...]:
    """Resolve a channel-set name (``t2a37``, ``arkit52``, ``livelinkface61``) or a
    custom list of names into a tuple of channel names.

    A custom list may hold any names (any rig's controls) but no duplicates.
    """
    if isinstance(spec, str):
        key = spec.lower().replace("_", "").replace("-", "")
        if key not in CHANNEL_SETS:
            raise ValueError(
                f"unknown channel set {spec!r}; known: {sorted(CHANNEL_SETS)} "
                "(or pass a list of channel names)"
            )
        return CHANNEL_SETS[key]
    names = tuple(str(s) for s in spec)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"duplicate channel names: {dup}")
    if not names:
        raise ValueError("empty channel list")
    return names


def channel_index(channels: Sequence[str], names: Sequence[str]) -> list[int]:
    """Positions of ``names`` inside ``channels``; raises naming any missing one."""
    pos = {c: i for i, c in enumerate(channels)}
    missing = [n for n in names if n not in pos]
    if missing:
        raise KeyError(f"channels not in set: {missing}")
    return [pos[n] for n in names]


# ---------------------------------------------------------------- face format
FACE_JSON = "face.json"  # <corpus root>/face.json: the corpus's face format
COMMON_FPS = (24, 25, 30, 50, 60)  # frame rates rigs and capture apps commonly key at
FACE_KEYS = ("face_fps", "channels", "mouth_channels")


def fps_hint(n_label_frames: int, audio_s: float, face_fps: int, tolerance: float = 0.03) -> int | None:
    """A common frame rate other than ``face_fps`` that explains a label/audio length ratio.

    ``n_label_frames / audio_s`` is the frame rate the labels would have if they
    spanned the audio; when it is within ``tolerance`` (relative) of one of
    :data:`COMMON_FPS` other than ``face_fps``, that rate is returned (labels
    keyed at 30 fps but read as 25 look 20% too long), else None.
    """
    if audio_s <= 0:
        return None
    implied = n_label_frames / audio_s
    best = min(COMMON_FPS, key=lambda f: abs(implied - f) / f)
    if best != face_fps and abs(implied - best) / best <= tolerance:
        return best
    return None


@dataclass(frozen=True)
class FaceFormat:
    """The face format of a corpus: channel names (in column order) and frame rate.

    One value carried from the corpus (``<root>/face.json``) into every
    checkpoint, prediction, metric and video, so no module below the corpus
    reader needs to assume 37 channels or 25 fps. ``channel_set`` keeps the set
    name when the channels came from one (``t2a37``), for readable configs.
    """

    channels: tuple[str, ...]
    face_fps: int
    # Display only: two formats with the same names and fps are equal.
    channel_set: str | None = field(default=None, compare=False)
    # Optional: the rig's mouth channels for lip metrics (see mouth_channels()).
    mouth: tuple[str, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", get_channels(list(self.channels)))
        if isinstance(self.face_fps, bool) or not isinstance(self.face_fps, (int, float)) \
                or int(self.face_fps) != self.face_fps or self.face_fps <= 0:
            raise ValueError(f"face_fps must be a positive integer, got {self.face_fps!r}")
        object.__setattr__(self, "face_fps", int(self.face_fps))
        if self.mouth is not None:
            object.__setattr__(self, "mouth", mouth_channels(self.channels, tuple(self.mouth)))

    @classmethod
    def make(cls, channels: str | Sequence[str] = DEFAULT_CHANNEL_SET, face_fps: int = 25,
             mouth: Sequence[str] | None = None) -> "FaceFormat":
        """From a set name or a list of names, and a frame rate."""
        return cls(get_channels(channels), face_fps, channels if isinstance(channels, str) else None,
                   tuple(mouth) if mouth else None)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def mouth_channels(self) -> tuple[str, ...]:
        """The channels lip metrics use (face.json's list, else ARKit mouth names, else all)."""
        return mouth_channels(self.channels, self.mouth)

    def to_dict(self) -> dict:
        """JSON form (the set name when there is one, else the list of names)."""
        out = {"face_fps": self.face_fps,
               "channels": self.channel_set if self.channel_set else list(self.channels)}
        if self.mouth:
            out["mouth_channels"] = list(self.mouth)
        return out

    @classmethod
    def from_dict(cls, raw: dict, source: str = "<dict>") -> "FaceFormat":
        unknown = sorted(set(raw) - set(FACE_KEYS))
        if unknown:
            raise ValueError(f"{source}: unknown face-format keys {unknown} (known: {', '.join(FACE_KEYS)})")
        try:
            return cls.make(raw.get("channels", DEFAULT_CHANNEL_SET), raw.get("face_fps", 25),
                            raw.get("mouth_channels"))
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    @classmethod
    def of_corpus(cls, root: str | Path) -> "FaceFormat":
        """``<root>/face.json`` when present; else the original's format (t2a37 at 25 fps)."""
        path = Path(root) / FACE_JSON
        if not path.is_file():
            return cls.make()
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read face format ({e})") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a JSON object with face_fps and channels")
        return cls.from_dict(raw, source=str(path))

    def save(self, root: str | Path) -> Path:
        """Write ``<root>/face.json`` (atomically)."""
        from .io import atomic_write_text

        path = Path(root) / FACE_JSON
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path
