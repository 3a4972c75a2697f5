"""label-video: resampling onto the label grid, gap handling, and MediaPipe on a real GRID clip.

The MediaPipe tests skip cleanly without ../shared/grid_s1, mediapipe, its
model file, or ffmpeg. References are independent of the code under test:
analytic ramps for the resampling, the audio's own RMS envelope for JawOpen.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lib.channels import ARKIT_52
from lib.io import DataError, read_label_csv
from lib.ingest.label_grid import to_label_grid

GRID = Path(__file__).resolve().parent.parent.parent / "shared" / "grid_s1"
CLIP = "bbaf3s"  # any clip of the set; 3 s, 75 video frames at 25 fps


# ----------------------------------------------------------------------------- pure resampling
def test_same_rate_is_identity_and_other_rates_interpolate_linearly():
    t25 = np.arange(75) / 25
    w = np.random.default_rng(0).uniform(0, 1, (75, 3)).astype(np.float32)
    np.testing.assert_allclose(to_label_grid(t25, w, 75, 25, 0.2), w, atol=1e-6)
    # 30 fps video of ramps -> 25 fps labels: values of the same ramps at k / 25 s.
    t30 = np.arange(90) / 30
    ramps = np.stack([0.1 + 0.2 * t30, 0.9 - 0.25 * t30], axis=1)  # (90, 2), inside [0, 1]
    out = to_label_grid(t30, ramps, 74, 25, 0.2)
    tk = np.arange(74) / 25
    np.testing.assert_allclose(out, np.stack([0.1 + 0.2 * tk, 0.9 - 0.25 * tk], axis=1), atol=1e-5)


def test_short_face_gap_is_interpolated_and_long_gap_names_the_clip():
    t = np.arange(50) / 25
    w = np.stack([0.5 * t, 1 - 0.5 * t], axis=1)  # (50, 2)
    short = w.copy()
    short[10:14] = np.nan  # 4 frames = 0.16 s without a face
    np.testing.assert_allclose(to_label_grid(t, short, 50, 25, 0.2), w, atol=1e-6)
    long = w.copy()
    long[10:20] = np.nan  # 0.4 s
    with pytest.raises(DataError, match=r"clip\.mp4.*no face for 0\.40 s"):
        to_label_grid(t, long, 50, 25, 0.2, where="clip.mp4")
    with pytest.raises(DataError, match="no face found in any frame"):
        to_label_grid(t, np.full_like(w, np.nan), 50, 25, 0.2, where="clip.mp4")
    with pytest.raises(DataError, match="past the last video frame"):
        to_label_grid(t, w, 70, 25, 0.2, where="clip.mp4")  # audio 0.8 s longer than the video


# ----------------------------------------------------------------------------- MediaPipe
def _need_mediapipe() -> None:
    if not (GRID / "video").is_dir():
        pytest.skip(f"{GRID} not present")
    if importlib.util.find_spec("mediapipe") is None or importlib.util.find_spec("cv2") is None:
        pytest.skip("mediapipe / opencv not installed")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not installed")
    from lib.ingest.video import find_model

    try:
        find_model()
    except FileNotFoundError:
        pytest.skip("no FaceLandmarker model file")


def _log_rms(wav: np.ndarray, n_frames: int, sr: int = 16_000, fps: int = 25) -> np.ndarray:
    """(n_frames,) log RMS of the audio in each label frame's 1/fps window."""
    hop = sr // fps
    frames = [wav[k * hop:(k + 1) * hop] for k in range(n_frames)]
    return np.log(np.array([np.sqrt(np.mean(f ** 2)) if len(f) else 0.0 for f in frames]) + 1e-4)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """label-video on a folder holding one GRID clip and one faceless clip (black frames)."""
    _need_mediapipe()
    from lib.cli import main

    d = tmp_path_factory.mktemp("videos")
    (d / f"{CLIP}.mp4").symlink_to(GRID / "video" / f"{CLIP}.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=black:s=160x120:r=25:d=1", "-f", "lavfi",
                    "-i", "sine=frequency=220:duration=1", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(d / "noface.mp4")], check=True)
    out = tmp_path_factory.mktemp("labels")
    rc = main(["label-video", str(d), "--out_dir", str(out), "--workers", "1", "--no_progress"])
    return d, out, rc


def test_label_video_grid_clip_has_75_frames_of_52_channels_in_unit_range(labelled):
    _, out, _ = labelled
    values, names = read_label_csv(out / f"{CLIP}.csv")
    assert names == ARKIT_52
    assert abs(values.shape[0] - 75) <= 1  # 3 s at 25 fps
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert values[:, names.index("JawOpen")].max() > 0.1  # the mouth does open
    assert json.loads((out / "face.json").read_text()) == {"face_fps": 25, "channels": "arkit52"}
    import soundfile as sf

    info = sf.info(str(out / f"{CLIP}.wav"))
    assert (info.samplerate, info.channels) == (16_000, 1)
    assert values.shape[0] == round(info.frames / info.samplerate * 25)  # the corpus's frame rule


def test_jaw_open_follows_the_loudness_of_the_speech(labelled):
    """Bound: Pearson r(JawOpen, log RMS per label frame) > 0.3 at the true timing, and
    0.1 above r with the face shifted by 0.48 s. Measured over the 595 clips of grid_s1
    that import: r mean 0.64, 5th percentile 0.37; shifted mean 0.15."""
    import soundfile as sf

    _, out, _ = labelled
    values, names = read_label_csv(out / f"{CLIP}.csv")
    jaw = values[:, names.index("JawOpen")]
    wav, _ = sf.read(str(out / f"{CLIP}.wav"), dtype="float32")
    energy = _log_rms(wav, len(jaw))
    r = np.corrcoef(jaw, energy)[0, 1]
    r_shifted = np.corrcoef(jaw[12:], energy[:-12])[0, 1]
    assert r > 0.3, r
    assert r > r_shifted + 0.1, (r, r_shifted)


def test_faceless_clip_is_named_bad_the_good_one_written_and_rerun_skips(labelled, capsys):
    from lib.cli import main

    d, out, rc = labelled
    assert rc == 1
    assert (out / f"{CLIP}.csv").is_file() and not (out / "noface.csv").exists()
    rc2 = main(["label-video", str(d), "--out_dir", str(out), "--workers", "1", "--no_progress"])
    cap = capsys.readouterr()
    assert rc2 == 1
    assert "noface.mp4" in cap.err and "no face found in any frame" in cap.err
    assert "1 already done" in cap.out
