"""Channel sets: the names (and order) of the face parameters a label array carries.

Every face-parameter array in the toolkit travels with its channel names; these
are the sets the toolkit knows by name. Names follow Apple ARKit's blendshape
locations with a capital first letter, as Live Link Face writes them.
"""
from __future__ import annotations

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
