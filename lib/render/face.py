"""A 2-D cartoon face drawn from blendshape weights with PIL (no matplotlib: ~1 ms a frame).

Geometry lives in a unit square (x to the right, y down) and is scaled to the
image. The face looks at the viewer, so the subject's LEFT side (ARKit's
``...Left`` channels) is drawn on the IMAGE RIGHT, as when facing a person.

What moves what:
- jaw/chin outline: JawOpen (drops), JawLeft/JawRight (shifts), JawForward (slight drop),
  CheekPuff (bulges the cheeks of the outline)
- lips (outer and inner contours of both lips): JawOpen - MouthClose (opening),
  MouthFunnel (round opening, flared lips), MouthPucker (narrow, thick lips),
  MouthSmile*/MouthFrown* (corners up/down), MouthStretch*/MouthDimple* (corners out),
  MouthPress* (thin lips), MouthRollLower/Upper (lip rolled in: thinner red),
  MouthUpperUp*/MouthLowerDown* (lip raised/lowered on that side),
  MouthShrugUpper/Lower (lip pushed up), MouthLeft/MouthRight (whole mouth shifts)
- brows: BrowDown*, BrowInnerUp, BrowOuterUp*;  cheeks: CheekPuff, CheekSquint*
  (cheek raised, lower eyelid pushed up);  nose: NoseSneer* (nostril wing raised, wrinkle)

Corner movers (smile, frown, stretch, dimple) act only on their own half of the
mouth, so ``MouthSmileLeft`` changes only image-right pixels (tests rely on it).
Eyes have no channels in the 37 set and stay still.
"""
from __future__ import annotations

import functools
import warnings
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..channels import T2A_37

SUPERSAMPLE = 2  # draw at 2x and box-filter down: cheap anti-aliasing

BACKGROUND = (38, 42, 50)
SKIN = (233, 196, 170)
SKIN_SHADE = (196, 150, 126)
OUTLINE = (120, 84, 66)
LIP = (186, 86, 92)
LIP_LINE = (120, 40, 50)
MOUTH = (66, 18, 28)
TEETH = (242, 240, 232)
BROW = (78, 54, 40)
EYE_WHITE = (250, 250, 248)
IRIS = (62, 96, 128)
CHEEK = (238, 160, 150)

# Neutral geometry (unit square).
HEAD_C = (0.5, 0.5)
HEAD_RX, HEAD_RY_UP, HEAD_RY_LOW = 0.32, 0.40, 0.36  # chin at y = 0.86
MOUTH_C = (0.5, 0.695)
MOUTH_HW = 0.10  # half-width
EYE_Y, EYE_DX, EYE_HW, EYE_HH = 0.42, 0.13, 0.055, 0.024
BROW_Y = 0.335

_U = np.linspace(-1.0, 1.0, 33)  # lateral position along the mouth; +1 = subject's left (image right)
_TH_LOW = np.linspace(0.0, np.pi, 41)  # lower half of the head outline, image right -> left
_TH_UP = np.linspace(np.pi, 2 * np.pi, 41)[1:-1]  # cranium, image left -> right


@functools.lru_cache(maxsize=16)
def _channel_index(channels: tuple[str, ...]) -> np.ndarray:
    """For each T2A_37 name, its column in ``channels`` or -1 (other rigs: missing = 0)."""
    pos = {c: i for i, c in enumerate(channels)}
    return np.array([pos.get(n, -1) for n in T2A_37])


def to_t2a(values: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """values (..., len(channels)) -> (..., 37) in T2A_37 order; absent channels are 0."""
    values = np.asarray(values, dtype=np.float32)
    idx = _channel_index(tuple(channels))
    padded = np.concatenate([values, np.zeros(values.shape[:-1] + (1,), np.float32)], axis=-1)
    return padded[..., idx]  # index -1 picks the zero column


def clip_values(values: np.ndarray, where: str = "face values") -> np.ndarray:
    """Clip to [0, 1], warning with the number of values outside it; NaN/inf raise."""
    values = np.asarray(values, dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{where}: {int((~np.isfinite(values)).sum())} NaN/inf values")
    n_out = int(((values < 0) | (values > 1)).sum())
    if n_out:
        warnings.warn(f"{where}: {n_out} value(s) outside [0, 1] clipped", stacklevel=3)
        values = np.clip(values, 0.0, 1.0)
    return values


class _P:
    """Named access to one frame's 37 weights, with per-side blends along the mouth."""

    def __init__(self, v37: np.ndarray):
        self.v = dict(zip(T2A_37, map(float, v37)))

    def __getattr__(self, name: str) -> float:
        return self.v[name]

    def blend(self, stem: str) -> np.ndarray:
        """A paired channel along _U: smooth crossover at the midline (lip-region movers)."""
        w = 0.5 * (1 + np.tanh(_U / 0.3))  # weight of the subject's left side
        return self.v[stem + "Left"] * w + self.v[stem + "Right"] * (1 - w)

    def corner(self, stem: str, power: float = 2.0) -> np.ndarray:
        """A paired channel along _U acting only on its own half, strongest at the corner."""
        return np.where(_U > 0, self.v[stem + "Left"], self.v[stem + "Right"]) * np.abs(_U) ** power


# ----------------------------------------------------------------------------- shapes
def mouth_shapes(p: _P) -> dict[str, np.ndarray]:
    """Outer/inner lip contours, each (len(_U), 2), corners at _U = +-1."""
    rnd = max(p.MouthPucker, p.MouthFunnel)
    # Half-width per side: corner movers act on their side only; pucker/funnel narrow both.
    narrow = 1 - 0.32 * p.MouthPucker - 0.25 * p.MouthFunnel
    hw = {s: MOUTH_HW * (narrow + 0.22 * p.v[f"MouthSmile{s}"] + 0.3 * p.v[f"MouthStretch{s}"]
                         + 0.1 * p.v[f"MouthDimple{s}"]) for s in ("Left", "Right")}
    cx = MOUTH_C[0] + 0.04 * (p.MouthLeft - p.MouthRight)  # MouthLeft: towards the subject's left
    x = cx + _U * np.where(_U > 0, hw["Left"], hw["Right"])
    cy = MOUTH_C[1] - 0.012 * p.MouthShrugUpper - 0.008 * p.MouthShrugLower
    dy_corner = (-0.035 * p.corner("MouthSmile") + 0.03 * p.corner("MouthFrown")
                 + 0.006 * p.corner("MouthStretch"))
    # Envelope: 0 at the corners so all four contours meet there; rounder when puckered.
    env = (1 - _U**2) ** (0.55 - 0.3 * rnd)
    opening = 0.13 * max(0.0, p.JawOpen - p.MouthClose) + 0.03 * p.MouthFunnel
    up_in = env * (0.22 * opening + 0.022 * p.blend("MouthUpperUp"))
    lo_in = env * (0.78 * opening + 0.03 * p.blend("MouthLowerDown") - 0.006 * p.MouthShrugLower)
    lo_in = np.maximum(lo_in, -up_in)  # the lower lip never passes above the upper one
    press = 1 - 0.45 * p.blend("MouthPress")
    full = 1 + 0.7 * p.MouthPucker + 0.35 * p.MouthFunnel
    t_up = env * 0.022 * (1 - 0.7 * p.MouthRollUpper) * press * full
    t_lo = env * 0.03 * (1 - 0.7 * p.MouthRollLower) * press * full
    bow = 0.006 * env * np.exp(-((_U / 0.12) ** 2)) * (1 - 0.7 * p.MouthRollUpper)  # cupid's bow dip
    jaw_dx = 0.02 * (p.JawLeft - p.JawRight) * (1 - _U**2)  # the jaw carries the lower lip
    y0 = cy + dy_corner
    return {
        "upper_outer": np.stack([x, y0 - up_in - t_up + bow], 1),
        "upper_inner": np.stack([x, y0 - up_in], 1),
        "lower_inner": np.stack([x + jaw_dx, y0 + lo_in], 1),
        "lower_outer": np.stack([x + jaw_dx, y0 + lo_in + t_lo], 1),
    }


def head_outline(p: _P) -> np.ndarray:
    """Closed head outline (N, 2): fixed cranium, lower half moved by the jaw and cheeks."""
    cxh, cyh = HEAD_C
    sin, cos = np.sin(_TH_LOW), np.cos(_TH_LOW)
    drop = 0.075 * p.JawOpen + 0.012 * p.JawForward
    w_jaw = sin**2  # 0 at the jaw hinges, 1 at the chin
    from_side = np.minimum(_TH_LOW, np.pi - _TH_LOW)  # angle below the horizontal, either side
    puff = 0.035 * p.CheekPuff * np.exp(-(((from_side - 0.55) / 0.3) ** 2))  # bulge at mouth level
    x = cxh + (HEAD_RX + puff) * cos + 0.02 * (p.JawLeft - p.JawRight) * w_jaw
    y = cyh + HEAD_RY_LOW * sin + drop * w_jaw
    low = np.stack([x, y], 1)
    up = np.stack([cxh + HEAD_RX * np.cos(_TH_UP), cyh + HEAD_RY_UP * np.sin(_TH_UP)], 1)
    return np.concatenate([low, up])


def brow_shape(p: _P, side: str) -> np.ndarray:
    """Closed brow polygon (2n, 2) for 'Left' (image right) or 'Right' (image left)."""
    sx = 1.0 if side == "Left" else -1.0
    t = np.linspace(0, 1, 9)  # 0 = inner end, 1 = outer end
    down = p.v[f"BrowDown{side}"]
    inner = -0.035 * p.BrowInnerUp + 0.025 * down
    outer = -0.035 * p.v[f"BrowOuterUp{side}"] + 0.01 * down
    x = 0.5 + sx * (0.045 - 0.01 * down + t * 0.16)
    y = BROW_Y - 0.018 * np.sin(np.pi * t**0.8) + inner * (1 - t) + outer * t
    half = 0.007 * (1.2 - 0.6 * t)  # tapers towards the outer end
    return np.concatenate([np.stack([x, y - half], 1), np.stack([x, y + half], 1)[::-1]])


def _pts(a: np.ndarray, scale: float, off: tuple[float, float]) -> list[tuple[float, float]]:
    """(N, 2) unit-square points -> pixel tuples for PIL."""
    return list(map(tuple, (a * scale + off).tolist()))


def draw_face(img: Image.Image, v37: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Draw the face for one frame's (37,) weights (in [0, 1]) into ``box`` = (x0, y0, x1, y1)."""
    p = _P(v37)
    d = ImageDraw.Draw(img)
    side_px = min(box[2] - box[0], box[3] - box[1])
    off = (box[0] + (box[2] - box[0] - side_px) / 2, box[1] + (box[3] - box[1] - side_px) / 2)
    s = float(side_px)
    P = lambda a: _pts(np.asarray(a, dtype=np.float64), s, off)  # noqa: E731
    lw = max(1, round(s / 170))  # line width scales with the image

    d.polygon(P(head_outline(p)), fill=SKIN, outline=OUTLINE, width=lw)
    # Cheeks: blush patches, raised by CheekSquint, grown by CheekPuff.
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        sq = p.v[f"CheekSquint{side}"]
        r = 0.045 * (1 + 0.4 * p.CheekPuff)
        cx, cy = 0.5 + sx * (0.2 + 0.015 * p.CheekPuff), 0.585 - 0.03 * sq
        d.ellipse(P([[cx - r, cy - 0.7 * r], [cx + r, cy + 0.7 * r]]), fill=CHEEK)
    _draw_eyes(d, p, P, lw)
    for side in ("Left", "Right"):
        d.polygon(P(brow_shape(p, side)), fill=BROW)
    _draw_nose(d, p, P, lw)
    _draw_mouth(d, p, P, lw)


def _mix(c0: tuple[int, ...], c1: tuple[int, ...], a: float) -> tuple[int, ...]:
    return tuple(int(round(x0 + (x1 - x0) * a)) for x0, x1 in zip(c0, c1))


def _draw_eyes(d: ImageDraw.ImageDraw, p: _P, P, lw: int) -> None:
    u = np.linspace(-1, 1, 15)
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        ex = 0.5 + sx * EYE_DX
        x = ex + u * EYE_HW
        top = EYE_Y - EYE_HH * np.sqrt(1 - u**2)
        bottom = EYE_Y + EYE_HH * np.sqrt(1 - u**2)
        d.polygon(P(np.concatenate([np.stack([x, top], 1), np.stack([x, bottom], 1)[::-1]])), fill=EYE_WHITE)
        r = 0.019
        d.ellipse(P([[ex - r, EYE_Y - r], [ex + r, EYE_Y + r]]), fill=IRIS)
        d.ellipse(P([[ex - r / 2.5, EYE_Y - r / 2.5], [ex + r / 2.5, EYE_Y + r / 2.5]]), fill=(20, 20, 24))
        # Upper-lid skin over the iris top, then the lower lid pushed up by CheekSquint.
        lid = np.concatenate([np.stack([x, top], 1), np.stack([x, top - 0.03], 1)[::-1]])
        d.polygon(P(lid), fill=SKIN)
        low = EYE_Y + EYE_HH * (1 - 0.65 * p.v[f"CheekSquint{side}"]) * np.sqrt(1 - u**2)
        cover = np.concatenate([np.stack([x, low], 1), np.stack([x, bottom + 0.03], 1)[::-1]])
        d.polygon(P(cover), fill=SKIN)
        d.line(P(np.stack([x, top], 1)), fill=OUTLINE, width=lw + 1)
        d.line(P(np.stack([x, low], 1)), fill=_mix(SKIN, OUTLINE, 0.6), width=lw)


def _draw_nose(d: ImageDraw.ImageDraw, p: _P, P, lw: int) -> None:
    d.line(P([[0.515, 0.45], [0.53, 0.545]]), fill=SKIN_SHADE, width=lw)
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        sn = p.v[f"NoseSneer{side}"]
        lift = 0.014 * sn
        wing = np.stack([0.5 + sx * np.array([0.012, 0.035, 0.045, 0.035]),
                         np.array([0.592, 0.592, 0.575, 0.555]) - lift], 1)
        d.line(P(wing), fill=OUTLINE, width=lw)
        nx, ny = 0.5 + sx * 0.022, 0.585 - lift
        d.ellipse(P([[nx - 0.009, ny - 0.005], [nx + 0.009, ny + 0.005]]), fill=_mix(SKIN, (60, 30, 30), 0.7))
        # Sneer wrinkles beside the bridge: invisible at 0, dark at 1.
        if sn > 0.02:
            for k in range(2):
                y = 0.47 + 0.018 * k
                d.line(P([[0.5 + sx * 0.018, y], [0.5 + sx * 0.045, y - 0.008]]),
                       fill=_mix(SKIN, OUTLINE, min(1.0, sn)), width=lw)


def _draw_mouth(d: ImageDraw.ImageDraw, p: _P, P, lw: int) -> None:
    m = mouth_shapes(p)
    uo, ui, li, lo = m["upper_outer"], m["upper_inner"], m["lower_inner"], m["lower_outer"]
    n = len(_U)
    # Folds from the nose wings to the mouth corners, darker with a smile; dimples beside the corners.
    for side, k, sx in (("Left", n - 1, 1.0), ("Right", 0, -1.0)):
        c = uo[k]
        fold = np.array([[0.5 + sx * 0.05, 0.6], [c[0] + sx * 0.028, c[1] - 0.02], [c[0] + sx * 0.022, c[1] + 0.02]])
        d.line(P(fold), fill=_mix(SKIN, SKIN_SHADE, 0.3 + 0.7 * p.v[f"MouthSmile{side}"]), width=lw)
        dim = p.v[f"MouthDimple{side}"]
        if dim > 0.02:
            dx = c[0] + sx * 0.016
            d.line(P([[dx, c[1] - 0.008], [dx + sx * 0.004, c[1] + 0.008]]), fill=_mix(SKIN, OUTLINE, dim), width=lw)
    d.polygon(P(np.concatenate([uo, lo[::-1]])), fill=LIP)
    gap = li[:, 1] - ui[:, 1]
    if gap.max() > 0.002:  # open: dark mouth, then upper teeth hanging below the upper lip
        d.polygon(P(np.concatenate([ui, li[::-1]])), fill=MOUTH)
        teeth_low = np.stack([ui[:, 0], np.minimum(ui[:, 1] + 0.022 * (1 - _U**2) ** 0.3, li[:, 1])], 1)
        d.polygon(P(np.concatenate([ui, teeth_low[::-1]])), fill=TEETH)
        d.line(P(li), fill=LIP_LINE, width=lw)
    d.line(P(ui), fill=LIP_LINE, width=lw)
    d.line(P(uo), fill=_mix(LIP, LIP_LINE, 0.5), width=lw)
    d.line(P(lo), fill=_mix(LIP, LIP_LINE, 0.4), width=lw)


# ----------------------------------------------------------------------------- public
def face_image(v37: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """(37,) weights in [0, 1], T2A_37 order -> PIL RGB image of ``size`` = (width, height)."""
    w, h = size
    big = Image.new("RGB", (w * SUPERSAMPLE, h * SUPERSAMPLE), BACKGROUND)
    draw_face(big, v37, (0, 0, w * SUPERSAMPLE, h * SUPERSAMPLE))
    return big.reduce(SUPERSAMPLE)


def render_frame(values: np.ndarray, channels: Sequence[str] = T2A_37,
                 size: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Draw one frame of the face.

    Args:
        values: (C,) weights in ``channels`` order, nominally in [0, 1]; values
            outside are clipped with a warning. Channels of the 37 set that are
            absent from ``channels`` count as 0; others are ignored.
        size: (width, height) in pixels; the face fills the largest centred square.
    Returns:
        (height, width, 3) uint8 RGB.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (len(channels),):
        raise ValueError(f"values shape {values.shape} != ({len(channels)},) channels")
    v37 = to_t2a(clip_values(values), channels)
    return np.asarray(face_image(v37, size))
