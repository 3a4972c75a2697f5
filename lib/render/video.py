"""Face videos with the audio muxed in: one panel or several side by side.

Frames are drawn with :mod:`lib.render.face` and piped as raw RGB into ffmpeg
(H.264 + AAC in MP4). Without ffmpeg a silent GIF is written instead (with a
warning) and the audio goes beside it as a WAV. The video lasts as long as the
audio, within one frame: its frame count is ``round(duration_s * fps)``, and
label sequences of another length are padded with their last frame or trimmed
(no ``-shortest``, which would cut whichever stream is longer).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from ..channels import T2A_37
from ..config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS
from ..io import atomic_write_bytes, write_audio
from .face import BACKGROUND, SUPERSAMPLE, clip_values, draw_face, to_t2a

TITLE_BAR_PX = 22
TITLE_COLOR = (235, 235, 235)


def ffmpeg_path() -> str | None:
    """The ffmpeg executable, or None (looked up at each call so tests can hide it)."""
    return shutil.which("ffmpeg")


def font(size_px: int = 14) -> ImageFont.ImageFont:
    """PIL's built-in font (scalable when Pillow has FreeType; the bitmap one otherwise)."""
    try:
        return ImageFont.load_default(size=size_px)
    except TypeError:  # Pillow < 10.1 has only the fixed-size bitmap font
        return ImageFont.load_default()


def video_frame_count(duration_s: float, fps: float) -> int:
    """Frames of a video as long as the audio, within half a frame: round(duration_s * fps)."""
    return max(1, int(round(duration_s * fps)))


def label_index(n_video: int, n_labels: int, fps: float, face_fps: float = FACE_FPS) -> np.ndarray:
    """Label frame shown in each video frame (n_video,): the one whose time slot holds the
    frame's start; past the labels' end, the last one (padding)."""
    t = np.arange(n_video) / fps  # (n_video,) seconds
    return np.minimum(np.floor(t * face_fps + 1e-6).astype(int), n_labels - 1)


def _title_bar(titles: Sequence[str], panel_w: int, width: int) -> np.ndarray:
    """(TITLE_BAR_PX, width, 3) uint8 strip with each title centred over its panel."""
    img = Image.new("RGB", (width, TITLE_BAR_PX), BACKGROUND)
    d = ImageDraw.Draw(img)
    f = font(14)
    for k, title in enumerate(titles):
        text = str(title)
        while text and d.textlength(text, font=f) > panel_w - 6:  # shorten to fit its panel
            text = text[:-2] + "…" if len(text) > 2 else ""
        x = k * panel_w + (panel_w - d.textlength(text, font=f)) / 2
        d.text((x, 3), text, fill=TITLE_COLOR, font=f)
    return np.asarray(img)


def panel_frames(labels_list: Sequence[np.ndarray], n_frames: int, channels: Sequence[str] = T2A_37,
                 size: tuple[int, int] = (256, 256), titles: Sequence[str] | None = None,
                 fps: float = FACE_FPS, face_fps: float = FACE_FPS) -> Iterator[np.ndarray]:
    """Yield ``n_frames`` composite frames, panels left to right, each (H, W, 3) uint8.

    Args:
        labels_list: per panel, (T_k, C) weights in ``channels`` order at ``face_fps``;
            clipped to [0, 1] with a warning per panel that needs it.
        size: (width, height) of one panel's face area; the total is rounded up to
            even numbers (H.264 in yuv420p needs them).
        titles: one per panel, drawn in a bar above the faces; None = no bar.
    """
    if titles is not None and len(titles) != len(labels_list):
        raise ValueError(f"{len(titles)} titles for {len(labels_list)} panels")
    faces = []
    for k, lab in enumerate(labels_list):
        lab = np.asarray(lab, dtype=np.float32)
        if lab.ndim != 2 or lab.shape[1] != len(channels) or lab.shape[0] == 0:
            raise ValueError(f"panel {k}: labels shape {lab.shape}, expected (frames>0, {len(channels)})")
        where = f"panel {k}" + (f" ({titles[k]})" if titles else "")
        faces.append(to_t2a(clip_values(lab, where), channels))  # (T_k, 37)
    pw, ph = size
    bar = TITLE_BAR_PX if titles is not None else 0
    width, height = len(faces) * pw, ph + bar
    width, height = width + width % 2, height + height % 2  # even sizes for yuv420p
    header = _title_bar(titles, pw, width) if titles is not None else None
    idx = [label_index(n_frames, len(f), fps, face_fps) for f in faces]
    ss = SUPERSAMPLE
    for i in range(n_frames):
        big = Image.new("RGB", (width * ss, ph * ss), BACKGROUND)
        for k, f in enumerate(faces):
            draw_face(big, f[idx[k][i]], (k * pw * ss, 0, (k + 1) * pw * ss, ph * ss))
        face_row = np.asarray(big.reduce(ss))  # (ph, width, 3)
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = BACKGROUND
        if header is not None:
            frame[:bar] = header
        frame[bar:bar + ph] = face_row
        yield frame


def render_video(labels: np.ndarray, wav: np.ndarray, out_path: str | Path, fps: float = FACE_FPS,
                 panels: Sequence[np.ndarray] | None = None, titles: Sequence[str] | None = None,
                 channels: Sequence[str] = T2A_37, size: tuple[int, int] = (256, 256),
                 face_fps: float = FACE_FPS, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ,
                 progress: bool = False) -> Path:
    """Write a face video with ``wav`` as its sound track.

    Args:
        labels: (T, C) weights at ``face_fps`` in ``channels`` order (first panel).
        wav: (samples,) mono audio at ``sample_rate_hz``; its duration sets the video's.
        panels: more (T_k, C) label arrays, drawn to the right of ``labels``.
        titles: one per panel (``labels`` first); None = no title bar.
    Returns:
        The path written: ``out_path`` (MP4, H.264 + AAC), or, when ffmpeg is
        missing, ``out_path`` with suffix .gif (silent) plus the audio as .wav beside it.
    """
    out_path = Path(out_path)
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1 or len(wav) == 0:
        raise ValueError(f"{out_path}: audio must be (samples,) mono and non-empty, got shape {wav.shape}")
    labels_list = [labels, *(panels or [])]
    n = video_frame_count(len(wav) / sample_rate_hz, fps)
    frames = panel_frames(labels_list, n, channels, size, titles, fps, face_fps)
    frames = iter(tqdm(frames, total=n, desc=f"render {out_path.name}", disable=not progress))
    exe = ffmpeg_path()
    if exe is None:
        gif = out_path.with_suffix(".gif")
        warnings.warn(f"ffmpeg not found: writing a silent GIF {gif} (audio beside it as .wav) instead of {out_path}")
        write_gif(frames, gif, fps)
        write_audio(gif.with_suffix(".wav"), wav, sample_rate_hz)
        return gif
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="render_") as tmp:
        audio = Path(tmp) / "audio.wav"
        write_audio(audio, wav, sample_rate_hz)
        first = next(frames)
        h, w = first.shape[:2]
        # The temporary output sits beside the target so the final rename is atomic.
        fd, part = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".part")
        os.close(fd)
        cmd = [exe, "-y", "-hide_banner", "-loglevel", "error",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "-",
               "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0",
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", "-f", "mp4", part]
        err_path = Path(tmp) / "ffmpeg.log"
        try:
            with open(err_path, "wb") as err:  # a file, not a pipe: a chatty ffmpeg cannot block on it
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
                try:
                    proc.stdin.write(first.tobytes())
                    for frame in frames:
                        proc.stdin.write(frame.tobytes())
                    proc.stdin.close()
                except BrokenPipeError:
                    pass  # ffmpeg died: its log says why (below)
                rc = proc.wait()
            if rc != 0:
                raise RuntimeError(f"ffmpeg failed ({rc}) writing {out_path}: {err_path.read_text()[-2000:]}")
            os.replace(part, out_path)
        finally:
            if os.path.exists(part):
                os.unlink(part)
    return out_path


def render_side_by_side(labels_list: Sequence[np.ndarray], titles: Sequence[str] | None, wav: np.ndarray,
                        out_path: str | Path, **kwargs) -> Path:
    """Panels side by side (e.g. ground truth, baseline, TTS-augmented), each titled,
    over one sound track. ``kwargs`` go to :func:`render_video`."""
    if not labels_list:
        raise ValueError("no label sequences to render")
    return render_video(labels_list[0], wav, out_path, panels=list(labels_list[1:]), titles=titles, **kwargs)


def write_gif(frames: Iterator[np.ndarray], out_path: str | Path, fps: float = FACE_FPS) -> Path:
    """Frames (each (H, W, 3) uint8) -> looping GIF, atomically. GIF delays are in
    10 ms steps, so non-divisor rates play slightly off."""
    import io

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
    atomic_write_bytes(Path(out_path), buf.getvalue())
    return Path(out_path)
