"""lib.render: the face changes where (and only where) a channel says; videos last as long
as their audio; clipping, GIF fallback, strip/player; the render and speak CLIs end to end.

Image coordinates: x to the right, y down. The face looks at the viewer, so the
subject's LEFT (ARKit ``...Left``) is the IMAGE RIGHT half.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lib.channels import T2A_37
from lib.config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS, label_frames
from lib.io import read_audio, read_label_csv, write_label_csv
from lib.layout import Corpus
from lib.render import frame_strip, player, render_frame, render_side_by_side, render_video
from lib.render import cli_main
from lib.render import video as video_mod

W = H = 256
HAS_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg/ffprobe not installed")


def face(**weights: float) -> np.ndarray:
    v = np.zeros(len(T2A_37), np.float32)
    for k, x in weights.items():
        v[T2A_37.index(k)] = x
    return v


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ visibly between two frames."""
    return np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 8


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max(), ys.max()


# ----------------------------------------------------------------------------- where a channel acts
def test_jaw_open_moves_only_the_lower_face_and_drops_the_chin():
    a, b = render_frame(face()), render_frame(face(JawOpen=0.8))
    m = changed(a, b)
    assert m.sum() > 200
    assert bbox(m)[1] > 0.5 * H  # the jaw hinges at mid-height: nothing above moves
    assert not m[: int(0.6 * H), int(0.25 * W): int(0.75 * W)].any()  # eyes, brows, nose stay
    bg = np.array(video_mod.BACKGROUND)

    def chin_y(img):  # lowest non-background pixel in the middle column
        col = np.abs(img[:, W // 2].astype(int) - bg).max(axis=1) > 8
        return np.nonzero(col)[0].max()

    assert chin_y(b) > chin_y(a) + 0.05 * H


def test_mouth_close_changes_only_the_mouth_and_closes_it():
    dark = np.array((66, 18, 28))  # lib.render.face.MOUTH, the open mouth's inside

    def inside(img):
        return (np.abs(img.astype(int) - dark).max(axis=2) < 20).sum()

    a, b = render_frame(face(JawOpen=0.6)), render_frame(face(JawOpen=0.6, MouthClose=0.6))
    m = changed(a, b)
    x0, y0, x1, y1 = bbox(m)
    assert 0.3 * W < x0 and x1 < 0.7 * W and 0.55 * H < y0 and y1 < 0.9 * H  # the mouth's box
    assert inside(a) > 100 and inside(b) < 0.05 * inside(a)  # open -> closed lips


@pytest.mark.parametrize("side", ["Left", "Right"])
def test_one_sided_channels_change_only_their_side(side):
    """MouthSmileLeft (the subject's left) changes only image-right pixels, and vice versa."""
    for stem in ("MouthSmile", "MouthFrown", "MouthStretch", "CheekSquint", "NoseSneer", "BrowOuterUp"):
        m = changed(render_frame(face()), render_frame(face(**{stem + side: 1.0})))
        assert m.sum() > 10, stem
        x0, _, x1, _ = bbox(m)
        if side == "Left":
            assert x0 >= W // 2 - 1, (stem, x0)
        else:
            assert x1 <= W // 2, (stem, x1)


def test_brows_do_not_touch_the_mouth_and_the_mouth_does_not_touch_the_brows():
    base = render_frame(face())
    for ch in ("BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight"):
        m = changed(base, render_frame(face(**{ch: 1.0})))
        assert m.sum() > 10 and bbox(m)[3] < 0.45 * H, ch  # above the eyes' lower edge
    open_ = render_frame(face(JawOpen=0.3))
    for ch in ("MouthFunnel", "MouthPucker", "MouthRollLower", "MouthPressLeft", "MouthLowerDownLeft"):
        m = changed(open_, render_frame(face(JawOpen=0.3, **{ch: 1.0})))
        assert m.sum() > 10 and bbox(m)[1] > 0.55 * H, ch  # below the nose


def test_every_channel_changes_the_picture():
    base = render_frame(face(JawOpen=0.2))
    for ch in T2A_37:
        v = face(JawOpen=0.2)
        v[T2A_37.index(ch)] = 1.0
        assert changed(base, render_frame(v)).sum() > 0, ch


def test_out_of_range_values_are_clipped_with_a_warning():
    v = face(JawOpen=1.7, MouthSmileLeft=-0.4, BrowInnerUp=2.0)
    with pytest.warns(UserWarning, match="3 value"):
        img = render_frame(v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in-range values: no warning
        ref = render_frame(np.clip(v, 0, 1))
    np.testing.assert_array_equal(img, ref)
    assert img.shape == (H, W, 3) and img.dtype == np.uint8
    assert render_frame(face(), size=(200, 120)).shape == (120, 200, 3)


def test_other_channel_sets_are_accepted():
    names = ("JawOpen", "SomeRigControl")
    img = render_frame(np.array([0.8, 0.5], np.float32), channels=names)
    np.testing.assert_array_equal(img, render_frame(face(JawOpen=0.8)))


# ----------------------------------------------------------------------------- video
def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def tone(duration_s: float) -> np.ndarray:
    n = int(round(duration_s * AUDIO_SAMPLE_RATE_HZ))
    return (0.2 * np.sin(2 * np.pi * 220 * np.arange(n) / AUDIO_SAMPLE_RATE_HZ)).astype(np.float32)


@needs_ffmpeg
@pytest.mark.parametrize("label_frames_delta", [0, -7, 5])  # labels as long as, shorter or longer than the audio
def test_video_lasts_as_long_as_its_audio(tmp_path, label_frames_delta):
    dur = 2.37
    wav = tone(dur)
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 0.6, (label_frames(dur) + label_frames_delta, 37)).astype(np.float32)
    out = render_video(labels, wav, tmp_path / "v.mp4")
    info = probe(out)
    streams = {s["codec_type"]: float(s["duration"]) for s in info["streams"]}
    assert set(streams) == {"video", "audio"}
    assert abs(streams["audio"] - dur) < 1e-3
    assert abs(streams["video"] - dur) <= 1 / FACE_FPS
    assert abs(float(info["format"]["duration"]) - dur) <= 1 / FACE_FPS
    assert not list(tmp_path.glob(".*part"))  # the temporary file was renamed away


@needs_ffmpeg
def test_side_by_side_has_one_titled_panel_each(tmp_path):
    wav = tone(0.6)
    labs = [np.full((15, 37), x, np.float32) for x in (0.0, 0.3, 0.6)]
    out = render_side_by_side(labs, ["ground truth", "baseline", "TTS-augmented"], wav, tmp_path / "s.mp4",
                              size=(128, 128))
    png = tmp_path / "f.png"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-frames:v", "1", str(png)], check=True)
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (128 + video_mod.TITLE_BAR_PX, 3 * 128, 3)
    bar = img[:video_mod.TITLE_BAR_PX]
    for k in range(3):  # some text drawn in each panel's title area
        assert (bar[:, k * 128:(k + 1) * 128].max(axis=2) > 150).sum() > 20


def test_gif_fallback_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(video_mod.shutil, "which", lambda name: None)
    wav = tone(1.0)
    with pytest.warns(UserWarning, match="ffmpeg not found"):
        out = render_video(np.linspace(0, 1, 25)[:, None].repeat(37, 1), wav, tmp_path / "x.mp4", size=(64, 64))
    assert out == tmp_path / "x.gif" and out.is_file() and not (tmp_path / "x.mp4").exists()
    gif = Image.open(out)
    durations_ms = []
    for k in range(gif.n_frames):
        gif.seek(k)
        durations_ms.append(gif.info["duration"])
    assert gif.n_frames == 25 and sum(durations_ms) == pytest.approx(1000, abs=1000 / FACE_FPS)
    np.testing.assert_allclose(read_audio(out.with_suffix(".wav")), wav, atol=1e-4)


# ----------------------------------------------------------------------------- notebook views
def test_frame_strip_and_player(tmp_path):
    labs = {"ground truth": np.zeros((50, 37), np.float32), "pred": np.full((40, 37), 0.4, np.float32)}
    img = frame_strip(labs, every_s=0.4, out_path=tmp_path / "s.png", size=(64, 64))
    n_cols = 5  # 50 frames at 25 fps: last frame at 1.96 s, so columns at 0, 0.4, ..., 1.6 s
    assert img.shape[0] == 20 + 2 * 64 and img.shape[1] == 120 + n_cols * 64
    assert (tmp_path / "s.png").is_file()
    pytest.importorskip("ipywidgets")
    box = player(labs, wav=tone(2.0))
    before = box.faces["ground truth"].value, box.faces["pred"].value, box.curves.value
    labs_moving = {"a": np.linspace(0, 1, 30)[:, None].repeat(37, 1).astype(np.float32)}
    moving = player(labs_moving)
    first = moving.faces["a"].value
    moving.slider.value = 29
    assert moving.faces["a"].value != first
    box.slider.value = 45  # past pred's end: it holds its last frame, the curve cursor moves
    assert box.faces["pred"].value == before[1] and box.curves.value != before[2]


# ----------------------------------------------------------------------------- CLIs
@needs_ffmpeg
def test_render_cli_on_t2a_demo(t2a_demo, tmp_path):
    out = tmp_path / "a8.mp4"
    assert cli_main(["render", "--root_dir", str(t2a_demo), "--speaker", "org", "--split", "train", "--utt", "a8",
                     "--out", str(out), "--no_progress", "--size", "128x128"]) == 0
    dur = len(read_audio(t2a_demo / "wavs" / "org" / "train" / "a8.wav")) / AUDIO_SAMPLE_RATE_HZ
    streams = {s["codec_type"]: float(s["duration"]) for s in probe(out)["streams"]}
    assert abs(streams["audio"] - dur) < 1e-2 and abs(streams["video"] - dur) <= 1 / FACE_FPS
    # A prediction folder as lib.train writes it (org: <pred_dir>/<utt>.csv) adds a panel.
    gt, _ = Corpus(t2a_demo).labels("org", "train", "a8")
    write_label_csv(tmp_path / "baseline" / "a8.csv", 0.5 * gt, T2A_37)
    out2 = tmp_path / "a8_2.mp4"
    assert cli_main(["render", "--root_dir", str(t2a_demo), "--split", "train", "--utt", "a8", "--pred_dir",
                     str(tmp_path / "baseline"), "--titles", "ground truth", "baseline", "--out", str(out2),
                     "--no_progress", "--size", "128x128"]) == 0
    width = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width",
                            "-of", "csv=p=0", str(out2)], capture_output=True, text=True, check=True).stdout
    assert int(width) == 2 * 128
    assert cli_main(["render", "--root_dir", str(t2a_demo), "--split", "train", "--utt", "a8", "--pred_dir",
                     str(tmp_path / "nowhere"), "--out", str(out2), "--no_progress"]) == 1  # names the missing file


@needs_ffmpeg
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
@pytest.mark.filterwarnings("ignore:.*outside \\[0, 1\\] clipped")  # a 1-epoch model overshoots
def test_speak_cli_end_to_end(tmp_path, restore_torch_globals):
    from lib.train import cli_main as train_main
    from tiny_corpus import make_tiny_corpus  # tests/tiny_corpus.py

    root = make_tiny_corpus(tmp_path / "corpus")
    assert train_main(["train", "--root_dir", str(root), "--output_path", str(tmp_path / "runs"), "--name", "tiny",
                       "--train_speaker_list", "org", "--train_batch_size", "4", "--loss_type", "L2",
                       "--threads", "1", "--no_progress", "--max_epoch", "1",
                       "--set", "model.d_model=16", "--set", "model.ff_dim=32", "--set", "model.n_heads=2"]) == 0
    out, csv = tmp_path / "hello.mp4", tmp_path / "hello.csv"
    assert cli_main(["speak", "hello there, how are you", "--voice", "espeak:en-us",
                     "--checkpoint", str(tmp_path / "runs" / "tiny"), "--out", str(out), "--csv_out", str(csv),
                     "--no_progress", "--size", "96x96"]) == 0
    streams = {s["codec_type"]: float(s["duration"]) for s in probe(out)["streams"]}
    assert streams["audio"] > 0.5
    assert abs(streams["video"] - streams["audio"]) <= 1 / FACE_FPS
    pred, names = read_label_csv(csv)
    assert names == T2A_37 and len(pred) == label_frames(streams["audio"])
