"""Notebook views of face sequences: an interactive ipywidgets player and a static frame strip.

Widgets show nothing in a headless (papermill) run, so notebooks call
:func:`show_player_or_strip`: it always saves (and displays) a PNG strip of
frames, and returns the interactive player for live sessions.
"""
from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..channels import T2A_37
from ..config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS
from ..io import atomic_write_bytes, write_audio
from ..plots import KEY_CHANNELS
from .face import BACKGROUND, clip_values, face_image, to_t2a
from .video import TITLE_COLOR, font

ROW_LABEL_PX = 120
HEADER_PX = 20


def _checked(labels_dict: Mapping[str, np.ndarray], channels: Sequence[str]) -> dict[str, np.ndarray]:
    """name -> (T, C) float32 in [0, 1] (clipped with a warning), shapes checked."""
    if not labels_dict:
        raise ValueError("no label sequences given")
    out = {}
    for name, lab in labels_dict.items():
        lab = np.asarray(lab, dtype=np.float32)
        if lab.ndim != 2 or lab.shape[1] != len(channels) or lab.shape[0] == 0:
            raise ValueError(f"{name}: labels shape {lab.shape}, expected (frames>0, {len(channels)})")
        out[str(name)] = clip_values(lab, str(name))
    return out


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def frame_strip(labels_dict: Mapping[str, np.ndarray], every_s: float = 0.2, out_path: str | Path | None = None,
                channels: Sequence[str] = T2A_37, face_fps: float = FACE_FPS, size: tuple[int, int] = (96, 96),
                max_columns: int = 30) -> np.ndarray:
    """A grid of faces: one row per sequence, one column every ``every_s`` seconds.

    Args:
        labels_dict: name -> (T, C) weights at ``face_fps``; rows keep this order.
        every_s: time step between columns; widened (and the header says so) when the
            longest sequence would need more than ``max_columns`` columns.
        out_path: where to save the PNG (atomically); None = do not save.
    Returns:
        (H, W, 3) uint8 RGB image.
    """
    seqs = _checked(labels_dict, channels)
    t_max = (max(len(v) for v in seqs.values()) - 1) / face_fps  # time of the last frame
    n_cols = int(np.floor(t_max / every_s + 1e-9)) + 1
    if n_cols > max_columns:
        every_s = float(np.ceil(t_max / (max_columns - 1) / 0.05) * 0.05)  # a round step that fits
        n_cols = int(np.floor(t_max / every_s + 1e-9)) + 1
    w, h = size
    img = Image.new("RGB", (ROW_LABEL_PX + n_cols * w, HEADER_PX + len(seqs) * h), BACKGROUND)
    d = ImageDraw.Draw(img)
    f = font(12)
    for j in range(n_cols):
        d.text((ROW_LABEL_PX + j * w + 4, 4), f"{j * every_s:.2f} s", fill=TITLE_COLOR, font=f)
    for r, (name, lab) in enumerate(seqs.items()):
        d.text((4, HEADER_PX + r * h + h / 2 - 7), name[:18], fill=TITLE_COLOR, font=f)
        v37 = to_t2a(lab, channels)  # (T, 37)
        for j in range(n_cols):
            k = int(np.floor(j * every_s * face_fps + 1e-6))
            if k < len(v37):  # a shorter sequence leaves its tail empty
                img.paste(face_image(v37[k], size), (ROW_LABEL_PX + j * w, HEADER_PX + r * h))
    if out_path is not None:
        atomic_write_bytes(Path(out_path), _png(img))
    return np.asarray(img)


def _curves_base(seqs: dict[str, np.ndarray], channels: Sequence[str], shown: Sequence[str], face_fps: float,
                 n_frames: int) -> tuple[np.ndarray, float, float, int, int]:
    """Plot the chosen channels once: (RGB (H, W, 3), x0_px, x1_px, y0_px, y1_px) of the axes
    area, so the cursor can be drawn per frame without replotting."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 2.6), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = ["-", "--", ":", "-."]
    colors = [f"C{i}" for i in range(10)]
    for s, (name, lab) in enumerate(seqs.items()):
        t = np.arange(len(lab)) / face_fps
        for c, ch in enumerate(shown):
            ax.plot(t, lab[:, list(channels).index(ch)], styles[s % 4], color=colors[c % 10], lw=1.2,
                    label=f"{ch} ({name})" if len(seqs) > 1 else ch)
    ax.set_xlim(0, max(n_frames - 1, 1) / face_fps)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    if shown:
        ax.legend(fontsize=7, loc="upper right", ncol=2)
    fig.tight_layout()
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
    bb = ax.get_window_extent()  # display coords, origin bottom-left
    height = rgb.shape[0]
    return rgb, bb.x0, bb.x1, int(height - bb.y1), int(height - bb.y0)


def player(labels_dict: Mapping[str, np.ndarray], wav: np.ndarray | None = None,
           channels: Sequence[str] = T2A_37, face_fps: float = FACE_FPS, size: tuple[int, int] = (192, 192),
           show: Sequence[str] = KEY_CHANNELS, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ):
    """Interactive player (ipywidgets): a face per sequence, a frame slider with a Play
    button, a channel picker and the picked channels' curves with a moving cursor.

    Args:
        labels_dict: name -> (T, C) weights at ``face_fps`` (lengths may differ; a
            shorter sequence holds its last frame).
        wav: optional (samples,) audio for an audio control (not synchronised).
    Returns:
        ipywidgets.VBox; its ``.slider``, ``.picker``, ``.faces`` and ``.curves``
        attributes are the parts (used by tests).
    """
    import ipywidgets as widgets

    seqs = _checked(labels_dict, channels)
    v37 = {k: to_t2a(v, channels) for k, v in seqs.items()}
    n_frames = max(len(v) for v in seqs.values())
    slider = widgets.IntSlider(value=0, min=0, max=n_frames - 1, description="frame", continuous_update=True)
    play = widgets.Play(value=0, min=0, max=n_frames - 1, step=1, interval=int(round(1000 / face_fps)))
    widgets.jslink((play, "value"), (slider, "value"))  # the browser advances the slider while playing
    time_label = widgets.Label("t = 0.00 s")
    picker = widgets.SelectMultiple(options=list(channels), value=[c for c in show if c in channels],
                                    rows=8, description="channels")
    faces = {k: widgets.Image(format="png", width=size[0], height=size[1]) for k in seqs}
    curves = widgets.Image(format="png")
    base: dict[str, object] = {}

    def redraw_curves(*_):
        base["plot"] = _curves_base(seqs, channels, list(picker.value), face_fps, n_frames)
        update_cursor()

    def update_cursor():
        rgb, x0, x1, y0, y1 = base["plot"]
        img = Image.fromarray(rgb)
        x = x0 + (x1 - x0) * slider.value / max(n_frames - 1, 1)
        ImageDraw.Draw(img).line([(x, y0), (x, y1)], fill=(200, 30, 30), width=2)
        curves.value = _png(img)

    def on_frame(*_):
        i = slider.value
        for k, v in v37.items():
            faces[k].value = _png(face_image(v[min(i, len(v) - 1)], size))
        time_label.value = f"t = {i / face_fps:.2f} s"
        update_cursor()

    picker.observe(redraw_curves, names="value")
    slider.observe(on_frame, names="value")
    base["plot"] = _curves_base(seqs, channels, list(picker.value), face_fps, n_frames)
    on_frame()
    face_row = widgets.HBox([widgets.VBox([widgets.Label(k), faces[k]]) for k in seqs])
    controls = [play, slider, time_label]
    if wav is not None:
        with tempfile.TemporaryDirectory() as tmp:
            write_audio(Path(tmp) / "a.wav", np.asarray(wav, dtype=np.float32), sample_rate_hz)
            controls.append(widgets.Audio(value=(Path(tmp) / "a.wav").read_bytes(), format="wav", autoplay=False,
                                          loop=False))
    box = widgets.VBox([face_row, widgets.HBox(controls), widgets.HBox([picker, curves])])
    box.slider, box.play, box.picker, box.faces, box.curves = slider, play, picker, faces, curves
    return box


def show_player_or_strip(labels_dict: Mapping[str, np.ndarray], out_path: str | Path, wav: np.ndarray | None = None,
                         channels: Sequence[str] = T2A_37, every_s: float = 0.2, face_fps: float = FACE_FPS,
                         display_strip: bool = True):
    """For notebooks: save the static strip to ``out_path`` (PNG) and display it, so a
    headless run keeps a picture; return the interactive player (None without ipywidgets)."""
    frame_strip(labels_dict, every_s=every_s, out_path=out_path, channels=channels, face_fps=face_fps)
    if display_strip:
        try:
            from IPython.display import Image as IPImage, display

            display(IPImage(filename=str(out_path)))
        except ImportError:
            pass
    try:
        return player(labels_dict, wav=wav, channels=channels, face_fps=face_fps)
    except ImportError as e:
        warnings.warn(f"interactive player unavailable ({e}); the strip is at {out_path}")
        return None
