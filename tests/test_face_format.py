"""The face format travels with the data: face.json, any fps x feature rate, channel sets by
name, windows over long takes, a stand-in production rig end to end, original flags checked."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib.channels import ARKIT_52, COMMON_FPS, T2A_37, FaceFormat, fps_hint, mouth_channels
from lib.config import AUDIO_SAMPLE_RATE_HZ, ModelConfig, front_end_plan, label_frames
from lib.io import DataError, audio_duration_s, read_label_csv, write_label_csv
from lib.layout import Corpus, check_corpus
from lib.model import TalkingFaceModel
from rig_corpus import RIG_CHANNELS, RIG_JAW, SPLIT_TAKES, make_rig_corpus
from tiny_corpus import TINY_MODEL

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("restore_torch_globals")  # tests/conftest.py


# ----------------------------------------------------------------------------- face.json and check-data
def test_face_json_read_back_and_defaults(tmp_path):
    (tmp_path / "wavs").mkdir()
    assert Corpus(tmp_path).face == FaceFormat.make("t2a37", 25)  # absent: the original's
    FaceFormat.make(["a_c", "b_l"], 30, mouth=["a_c"]).save(tmp_path)
    c = Corpus(tmp_path)
    assert (c.channels, c.face_fps, c.face.mouth_channels) == (("a_c", "b_l"), 30, ("a_c",))
    (tmp_path / "face.json").write_text(json.dumps({"face_fps": 60, "channels": "arkit52"}))
    assert Corpus(tmp_path).channels == ARKIT_52 and Corpus(tmp_path).face_fps == 60
    (tmp_path / "face.json").write_text(json.dumps({"face_fps": 30, "chanels": []}))
    with pytest.raises(DataError, match="face.json.*unknown face-format keys"):
        Corpus(tmp_path)


def test_io_readers_take_a_set_name_or_a_list_alike(tmp_path):
    from lib import io

    x = np.random.default_rng(0).random((5, 52)).astype(np.float32)
    io.write_label_csv(tmp_path / "a.csv", x, "arkit52")
    by_name, names = io.read_label_csv(tmp_path / "a.csv", channels="t2a37", known="arkit52")
    by_list, _ = io.read_label_csv(tmp_path / "a.csv", channels=list(T2A_37), known=list(ARKIT_52))
    assert names == T2A_37 and np.array_equal(by_name, by_list)
    np.testing.assert_allclose(by_name, x[:, [ARKIT_52.index(c) for c in T2A_37]], atol=1e-6)
    io.save_npy(tmp_path / "b", x, "arkit52")
    assert io.load_npy(tmp_path / "b", "t2a37")[1] == T2A_37


def test_fps_hint_names_the_rate_the_ratio_matches():
    # 10 s of audio: labels keyed at each common rate but read at 25 fps.
    for fps in COMMON_FPS:
        assert fps_hint(10 * fps, 10.0, 25) == (None if fps == 25 else fps)
    assert fps_hint(10 * 27, 10.0, 25) is None  # no common rate: no guess


def test_check_data_hints_at_30_fps_then_passes_with_face_json(tmp_path):
    root = make_rig_corpus(tmp_path / "rig", 30, extract=False, with_face_json=False)
    # Without face.json but with the header names: every take reads as 25 fps, too long.
    problems, n = check_corpus(root, list(RIG_CHANNELS), progress=False)
    assert n == sum(SPLIT_TAKES.values()) and len(problems) == n
    assert all("labels look like 30 fps: add" in str(p) and "face.json" in str(p) for p in problems)
    # The default channel set does not know the rig's names: the error says where to list them.
    problems, _ = check_corpus(root, progress=False)
    assert problems and all("unknown channels" in p.problem and "face.json" in p.problem for p in problems)
    assert check_corpus(root, list(RIG_CHANNELS), face_fps=30, progress=False)[0] == []
    FaceFormat.make(list(RIG_CHANNELS), 30).save(root)
    assert check_corpus(root, progress=False)[0] == []


# ----------------------------------------------------------------------------- any fps, any feature rate
def _energy_features(wav: np.ndarray, rate_hz: int) -> np.ndarray:
    """(T, 1) energy (max 1), frame i over samples [i*hop - hop, i*hop + hop): centred on i / rate."""
    hop = AUDIO_SAMPLE_RATE_HZ // rate_hz
    T = len(wav) // hop + 1
    padded = np.concatenate([np.zeros(hop), wav, np.zeros(2 * hop)])
    e = np.array([np.sum(padded[i * hop: i * hop + 2 * hop] ** 2) for i in range(T)])
    return (e / e.max())[:, None].astype(np.float32)


def _pass_through_front_end(model: TalkingFaceModel) -> None:
    """Conv weights that sum channel 0 over each stride-2 block's 3 taps (GLU gate open): a
    box filter, so decimation cannot step over a 2-frame click."""
    d = model.cfg.d_model
    with torch.no_grad():
        for conv in model.convs:
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, :] = 1.0
            conv.bias[d:] = 30.0  # sigmoid(30) = 1: the gate is open


@pytest.mark.parametrize("fps", COMMON_FPS)
@pytest.mark.parametrize("rate", [50, 100])
def test_any_fps_with_any_feature_rate(fps, rate):
    duration_s, t_click = 3.0, 2.345
    n = int(duration_s * AUDIO_SAMPLE_RATE_HZ)
    wav = 1e-3 * np.random.default_rng(0).standard_normal(n)
    k = int(t_click * AUDIO_SAMPLE_RATE_HZ)
    wav[k: k + 48] += 0.9  # a 3 ms click
    feats = _energy_features(wav, rate)
    model = TalkingFaceModel(ModelConfig(input_dim=1, feature_rate_hz=rate, face_fps=fps, d_model=8, n_heads=2,
                                         ff_dim=16, dropout=0.0, n_channels=3)).eval()
    _pass_through_front_end(model)
    frames = label_frames(duration_s, fps)
    x, L = torch.from_numpy(feats)[None], torch.tensor([len(feats)])
    assert abs(int(model.output_lengths(L)) - frames) <= 1
    assert model(x, L, frames).shape == (1, frames, 3)
    out, out_len = model.front_end(x, L)
    assert int(out_len) == int(model.output_lengths(L))
    peak = int(out[0, : int(out_len), 0].argmax())
    assert abs(peak - t_click * fps) <= 1, (peak, t_click * fps)
    if rate % fps == 0 and rate != fps:  # exact division: no resampling, the original's path
        assert front_end_plan(rate, fps) == (rate, int(math.log2(rate // fps)))


# ----------------------------------------------------------------------------- channel sets by name
def test_channel_weights_by_name_and_from_a_user_file(tmp_path):
    from lib.losses import T2A_CHANNEL_WEIGHTS, channel_weight_vector

    w = channel_weight_vector("t2a", ARKIT_52)
    np.testing.assert_allclose(w.numpy(), [T2A_CHANNEL_WEIGHTS.get(c, 1.0) for c in ARKIT_52], rtol=1e-7)
    assert float(w[ARKIT_52.index("JawOpen")]) == pytest.approx(1.3)
    assert torch.equal(channel_weight_vector("t2a", RIG_CHANNELS), torch.ones(len(RIG_CHANNELS)))
    p = tmp_path / "w.json"
    p.write_text(json.dumps({"jaw_open_c": 2.0, "lips_seal_c": 0.5}))
    want = [2.0 if c == "jaw_open_c" else 0.5 if c == "lips_seal_c" else 1.0 for c in RIG_CHANNELS]
    assert channel_weight_vector(str(p), RIG_CHANNELS).tolist() == want
    p.write_text(json.dumps({"jaw_open": 2.0}))
    with pytest.raises(DataError, match="w.json.*jaw_open"):
        channel_weight_vector(str(p), RIG_CHANNELS)


def test_lip_metric_uses_the_rigs_mouth_channels():
    from lib import metrics

    rng = np.random.default_rng(1)
    pred, gt = rng.random((20, len(RIG_CHANNELS))), rng.random((17, len(RIG_CHANNELS)))
    fitted = np.concatenate([pred[:17]], axis=0)
    # No ARKit names: every channel (the documented fallback).
    assert mouth_channels(RIG_CHANNELS) == RIG_CHANNELS
    assert metrics.lip_max_error(pred, gt, RIG_CHANNELS) == pytest.approx(np.abs(fitted - gt).max(1).mean())
    # A user list (face.json mouth_channels): only those columns.
    mouth = ["jaw_open_c", "mouth_funnel_ul"]
    cols = [RIG_CHANNELS.index(c) for c in mouth]
    got = metrics.score_pair(pred, gt, RIG_CHANNELS, mouth)["lip_max_error"]
    assert got == pytest.approx(np.abs(fitted[:, cols] - gt[:, cols]).max(1).mean())
    # ARKit names: the known mouth and jaw channels.
    assert set(mouth_channels(ARKIT_52)) == {c for c in T2A_37 if c.startswith(("Mouth", "Jaw"))}
    with pytest.raises(ValueError, match="not in the rig"):
        mouth_channels(RIG_CHANNELS, ["MouthClose"])


# ----------------------------------------------------------------------------- windows
def test_aligned_windows_cut_features_and_labels_at_the_same_times(tmp_path):
    from lib.data import FaceDataset
    from lib.features.extract import feature_path

    root = make_rig_corpus(tmp_path / "rig", 30, extract=False)
    corpus = Corpus(root)
    rate = 100
    for utt in corpus.utterances("org", "train"):
        # Features whose value is their own time (s): a cut shows where it was made.
        frames = corpus.own_labels("org", "train", utt).shape[0]
        T = int(math.ceil(frames / 30 * rate)) + 1
        p = feature_path(root, "org", "clock", "train", utt)
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, (np.arange(T) / rate)[:, None].astype(np.float32).repeat(2, 1))
    ds = FaceDataset(corpus, ["org"], "train", "clock")
    ds.set_window(1.0, rate)
    starts = set()
    for i in range(len(ds)):
        whole = ds[i]
        for key in range(5):
            it = ds.item(i, (0, 0, key, i))
            lab, feat = it["labels"], it["features"]
            assert lab.shape[0] == 30  # 1.0 s at 30 fps
            # The label window is a contiguous slice of the whole labels, starting at frame a...
            a = next(a for a in range(whole["labels"].shape[0]) if torch.equal(whole["labels"][a:a + 30], lab))
            starts.add(a)
            # ...and the features start at the same time a / fps, and cover the window.
            assert float(feat[0, 0]) == pytest.approx(a / 30, abs=1e-6)
            assert float(feat[-1, 0]) >= (a + 29) / 30 - 1e-6
    assert len(starts) > 3  # windows move


class _NoAttention(torch.nn.Module):
    """Stands in for the encoder: passes frames through, so the model's context is local."""

    def forward(self, x, src_key_padding_mask=None):
        return x


def test_windowed_inference_equals_whole_clip_where_context_is_local_and_is_continuous():
    """Tolerance: 1e-5 absolute (float32 sums in other orders). A model whose context is its
    conv front end gives the whole-clip result at EVERY frame; a Transformer (whole-window
    context) gets exactly the crossfade of its windows, so seams cannot jump."""
    from lib.train.evaluate import predict, predict_windowed

    torch.manual_seed(0)
    fps, rate, frames = 30, 100, 30 * 70  # a 70 s take
    feats = np.random.default_rng(0).standard_normal((frames * rate // fps + 2, 6)).astype(np.float32)
    feats = np.cumsum(feats, 0) * 0.05  # smooth-ish
    cfg = ModelConfig(input_dim=6, feature_rate_hz=rate, face_fps=fps, d_model=16, n_heads=2, ff_dim=32,
                      dropout=0.0, n_channels=4)
    local = TalkingFaceModel(cfg).eval()
    local.encoder, local.positions = _NoAttention(), torch.nn.Identity()
    whole = predict(local, feats, frames, window_s=None)
    win = predict_windowed(local, feats, frames, window_s=10.0, overlap_s=2.0)
    assert win.shape == whole.shape == (frames, 4)
    np.testing.assert_allclose(win, whole, atol=1e-5)
    # The Transformer: each window predicted alone, crossfaded over the middle half of each overlap.
    full = TalkingFaceModel(cfg).eval()
    win = predict_windowed(full, feats, frames, window_s=10.0, overlap_s=2.0)
    W, O, hop = 300, 60, 240  # 10 s, 2 s at 30 fps
    starts = list(range(0, frames - W + hop, hop))
    alone = []
    for s in starts:
        n = min(W, frames - s)
        fe = len(feats) if s == starts[-1] else -(-(s + n) * rate // fps)
        alone.append(predict(full, feats[s * rate // fps: fe], n, None))
    r = np.clip((np.arange(O) - O / 4 + 0.5) / (O / 2), 0, 1)[:, None]  # (O, 1): 0 for O/4 frames, then up
    step = np.abs(np.diff(win, axis=0))  # (frames - 1, C)
    for k, a in enumerate(starts):
        cur = alone[k]
        lo = a + (O if k else 0)
        hi = starts[k + 1] if k + 1 < len(starts) else frames
        np.testing.assert_allclose(win[lo:hi], cur[lo - a: hi - a], atol=1e-5)  # one window alone
        if k:
            prev = alone[k - 1][a - starts[k - 1]: a - starts[k - 1] + O]  # (O, C) in the overlap
            np.testing.assert_allclose(win[a:a + O], (1 - r) * prev + r * cur[:O], atol=1e-5)
            own = max(np.abs(np.diff(prev, axis=0)).max(), np.abs(np.diff(cur[:O], axis=0)).max())
            gap = np.abs(prev - cur[:O]).max()
            # |c_{t+1} - c_t| <= the windows' own largest step + their gap x the ramp slope (2 / O).
            assert step[a: a + O - 1].max() <= own + gap * 2.0 / O + 1e-5


def test_peak_memory_of_a_training_step_on_a_5_minute_take_is_bounded(tmp_path):
    """Peak RSS growth of a training step (batch of 2, 10 s windows) on a 5-minute take, in a
    fresh process, over its peak after loading torch, model and data. Bound: 150 MB.
    Without windows the same step would hold (4 heads x 7500^2) float32 attention weights per
    item (0.9 GB) plus their gradients; the child refuses to run it (it prints the item length)."""
    from lib.channels import T2A_37
    from lib.features.extract import feature_path
    from lib.io import write_audio

    root, take_s = tmp_path / "long", 300
    write_audio(root / "wavs/org/train/take.wav", np.zeros(take_s * AUDIO_SAMPLE_RATE_HZ, np.float32))
    rng = np.random.default_rng(0)
    write_label_csv(root / "labels/org/train/take.csv", rng.random((take_s * 25, 37)).astype(np.float32), T2A_37)
    p = feature_path(root, "org", "mfcc", "train", "take")
    p.parent.mkdir(parents=True)
    np.save(p, rng.standard_normal((take_s * 100, 39)).astype(np.float32))
    script = r"""
import resource, sys, torch
from lib.config import ModelConfig, LossConfig
from lib.data import FaceDataset, collate
from lib.layout import Corpus
from lib.losses import build_loss
from lib.model import TalkingFaceModel
torch.set_num_threads(1)
corpus = Corpus(sys.argv[1])
ds = FaceDataset(corpus, ["org"], "train", "mfcc")
ds.set_window(10.0, 100)
model = TalkingFaceModel(ModelConfig(d_model=64, n_heads=4, ff_dim=128))
loss = build_loss(LossConfig(), corpus.channels)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
b = collate([ds.item(0, (0, 0, 0, j)) for j in range(2)])
if b.labels.shape[1] > 250:
    print(f"item of {b.labels.shape[1]} frames: not windowed"); sys.exit(3)
pred = model(b.features, b.feat_lengths, b.labels.shape[1])
l, _ = loss(pred, b.labels, model.output_lengths(b.feat_lengths), b.label_lengths, b.aligned)
l.backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script, str(root)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    growth_mb = float(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS growth of a windowed step on a 5-minute take: {growth_mb:.1f} MB")
    assert growth_mb < 150


# ----------------------------------------------------------------------------- the stand-in rig end to end
@pytest.fixture(scope="module", params=[30, 60])
def rig(request, tmp_path_factory):
    return make_rig_corpus(tmp_path_factory.mktemp(f"rig{request.param}"), request.param), request.param


def test_stand_in_rig_end_to_end(rig, tmp_path):
    from lib.cli import main
    from lib.train.state import load_checkpoint

    root, fps = rig
    assert main(["check-data", "--root_dir", str(root)]) == 0
    out = tmp_path / "runs"
    args = ["train", "--root_dir", str(root), "--output_path", str(out), "--name", "r", "--loss_type", "L2",
            "--train_batch_size", "4", "--window_s", "1.5", "--max_steps", "6", "--eval_every_steps", "3",
            "--threads", "1", "--no_progress", *TINY_MODEL]
    assert main(args) == 0
    run = out / "r"
    ck = load_checkpoint(run / "best.pt")
    assert FaceFormat.from_dict(ck["face"]) == FaceFormat.make(list(RIG_CHANNELS), fps)
    assert json.loads((run / "config.json").read_text())["train"]["window_s"] == 1.5
    # An epoch is about one pass over the frames: ceil(frames / window) windows of each take.
    corpus = Corpus(root)
    W = round(1.5 * fps)
    n_windows = sum(-(-corpus.own_labels("org", "train", u).shape[0] // W) for u in corpus.utterances("org", "train"))
    curves = pd.read_csv(run / "curves.csv")
    row = curves[(curves.split == "val_1") & (curves.metric == "loss")].iloc[0]
    assert row.epoch == round(row.step / -(-n_windows // 4), 4) and n_windows > 2 * SPLIT_TAKES["train"]
    # test, as the original's test.sh calls it: its flags agree with the run's config.
    assert main(["test", "--arch", "mfcc", "--root_dir", str(root), "--feature_dir", "mfcc", "--freq", "100",
                 "--input_dim", "39", "--output_path", str(out), "--name", "r", "--no_progress"]) == 0
    for utt in corpus.utterances("org", "test_a"):
        pred, names = read_label_csv(run / f"{utt}.csv")
        assert names == RIG_CHANNELS
        assert len(pred) == label_frames(audio_duration_s(corpus.wav_path("org", "test_a", utt)), fps)
    m = pd.read_csv(run / "metrics.csv")
    assert {"mse_score", "dtw_score", "lip_max_error"} <= set(m.metric) and "jaw_open_corr" not in set(m.metric)
    # infer on any wav folder: the checkpoint's header and fps.
    wav_dir = root / "wavs" / "org" / "val_1"
    assert main(["infer", "--checkpoint", str(run / "best.pt"), "--wav_dir", str(wav_dir), "--out_dir",
                 str(tmp_path / "inf"), "--arch", "mfcc", "--no_progress"]) == 0
    for wav in wav_dir.glob("*.wav"):
        pred, names = read_label_csv(tmp_path / "inf" / f"{wav.stem}.csv")
        assert names == RIG_CHANNELS and len(pred) == label_frames(audio_duration_s(wav), fps)


def test_contradicting_flags_are_named_errors(rig, tmp_path, capsys):
    from lib.cli import main

    root, fps = rig
    out = tmp_path / "runs"
    assert main(["train", "--root_dir", str(root), "--output_path", str(out), "--name", "c", "--max_steps", "1",
                 "--eval_every_steps", "1", "--threads", "1", "--no_progress", *TINY_MODEL]) == 0
    for bad, field in ((["--freq", "50"], "model.feature_rate_hz=100"), (["--arch", "hubert"], "train.feature='mfcc'"),
                       (["--loss_type", "SoftDTW"], "loss.aligned='l2'"), (["--input_dim", "40"], "model.input_dim=39")):
        assert main(["test", "--output_path", str(out), "--name", "c", "--no_progress", *bad]) == 2
        err = capsys.readouterr().err
        assert "config.json" in err and bad[0] in err and field in err, err
    assert main(["validate", "--output_path", str(out), "--name", "c", "--arch", "mfcc", "--freq", "100"]) == 0
    assert main(["infer", "--checkpoint", str(out / "c" / "best.pt"), "--wav_dir", str(root / "wavs/org/val_1"),
                 "--out_dir", str(tmp_path / "o"), "--freq", "50"]) == 2
    assert "best.pt" in capsys.readouterr().err
    # A checkpoint tested on a corpus of another face format: a named error, not wrong columns.
    other = tmp_path / "other"
    (other / "wavs").mkdir(parents=True)
    FaceFormat.make(list(RIG_CHANNELS), fps + 1 if fps == 30 else 30).save(other)
    assert main(["test", "--output_path", str(out), "--name", "c", "--root_dir", str(other), "--no_progress"]) == 2
    assert "face.json" in capsys.readouterr().err


def test_checkpoint_without_a_face_format_loads_as_t2a37_at_25_fps(tmp_path):
    from lib.train.evaluate import checkpoint_face

    old = {"configs": {"model": {"face_fps": 25}, "train": {}}}  # what train wrote before face formats
    assert checkpoint_face(old) == FaceFormat.make("t2a37", 25)
    assert checkpoint_face({**old, "channels": list(ARKIT_52)}) == FaceFormat.make("arkit52", 25)


# ----------------------------------------------------------------------------- Live Link Face
def _live_link_take(path: Path, seconds: float, count_header: str, rng, tc_fps: int = 60) -> np.ndarray:
    """A take in Live Link Face's own layout (60 fps rows, HH:MM:SS:FF.fff timecodes at ``tc_fps``,
    .fff the fraction of a timecode frame); returns (frames, 61)."""
    from lib.channels import LIVE_LINK_FACE_61

    n = int(round(seconds * 60))
    t = np.arange(n) / 60
    vals = 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5, 61)[None] * t[:, None] + rng.uniform(0, 6, 61))
    lines = [f"Timecode,{count_header}," + ",".join(LIVE_LINK_FACE_61)]
    f0 = (17 * 3600 + 38 * 60 + 19) * 60 + 15  # a take starts at any time of day (frame count at 60 fps)
    for i in range(n):
        sec, f60 = divmod(f0 + i, 60)
        hh, mm, ss = sec // 3600, sec % 3600 // 60, sec % 60
        ff = f60 * tc_fps / 60 + 0.207  # frame within the second at the timecode's rate, plus a constant offset
        lines.append(f"{hh:02d}:{mm:02d}:{ss:02d}:{int(ff):02d}.{round((ff % 1) * 1000):03d},61,"
                     + ",".join(f"{v:.6f}" for v in vals[i]))
    path.write_text("\n".join(lines) + "\n")
    return vals


@pytest.mark.parametrize("count_header,tc_fps", [("BlendShapeCount", 60), ("BlendshapeCount", 30)])
def test_live_link_take_imports_at_the_corpus_fps_and_exports_round_trip(tmp_path, count_header, tc_fps):
    from lib.channels import LIVE_LINK_FACE_61
    from lib.cli import main
    from lib.io import read_live_link_face_csv, write_audio
    from lib.ingest.livelink import write_live_link

    rng = np.random.default_rng(3)
    vals = _live_link_take(tmp_path / "take_cal.csv", 4.0, count_header, rng, tc_fps)
    write_audio(tmp_path / "take.wav", 0.1 * rng.standard_normal(4 * AUDIO_SAMPLE_RATE_HZ).astype(np.float32))
    root = tmp_path / "corpus"
    (root / "wavs").mkdir(parents=True)
    FaceFormat.make("arkit52", 30).save(root)
    assert main(["import-take", "--csv", str(tmp_path / "take_cal.csv"), "--wav", str(tmp_path / "take.wav"),
                 "--root_dir", str(root), "--speaker", "org", "--split", "train", "--utt", "t1"]) == 0
    labels, names = read_label_csv(root / "labels/org/train/t1.csv")
    assert names == ARKIT_52 and labels.shape == (120, 52)  # 4 s at 30 fps
    idx = [LIVE_LINK_FACE_61.index(c) for c in ARKIT_52]
    np.testing.assert_allclose(labels, vals[::2, idx], atol=2e-6)  # 30 fps frames are every 2nd 60 fps frame
    # Out: at 60 fps in Live Link's layout; absent channels (head and eye rotations) are 0.
    write_live_link(tmp_path / "out.csv", labels, names, 30)
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert header == ["Timecode", "BlendshapeCount", *LIVE_LINK_FACE_61]
    back, back_names = read_live_link_face_csv(tmp_path / "out.csv", face_fps=60, channels=None)
    assert back_names == LIVE_LINK_FACE_61 and back.shape[0] == 240
    # Interpolating 30 fps back to 60 fps: within the curvature error of the 0.3-1.5 Hz sines.
    np.testing.assert_allclose(back[:-1, idx], vals[:-1, idx], atol=0.01)
    assert np.all(back[:, 52:] == 0)
    assert main(["check-data", "--root_dir", str(root)]) == 0
    # A batch of takes: the good ones are imported, the bad one is named, the exit code is 1.
    (tmp_path / "bad.csv").write_text("Timecode,Frames,JawOpen\n00:00:00:00.000,1,0.5\n")
    rc = main(["import-take", "--csv", str(tmp_path / "bad.csv"), str(tmp_path / "take_cal.csv"),
               "--wav", str(tmp_path / "take.wav"), str(tmp_path / "take.wav"), "--root_dir", str(root),
               "--utt", "t2", "t3"])
    assert rc == 1 and (root / "labels/org/train/t3.csv").is_file() and not (root / "wavs/org/train/t2.wav").exists()


def test_rig_map_maps_one_rig_onto_another(tmp_path):
    from lib.ingest.livelink import to_live_link
    from lib.ingest.rig_map import read_rig_map, write_rig_map

    write_rig_map(tmp_path / "m.csv", [("jaw_open_c", "JawOpen", 1.0), ("mouth_corner_up_l", "MouthSmileLeft", 0.5),
                                       ("mouth_corner_up_r", "MouthSmileLeft", 0.5)])
    m = read_rig_map(tmp_path / "m.csv")
    x = np.random.default_rng(0).random((9, len(RIG_CHANNELS))).astype(np.float32)
    y = m.apply(x, RIG_CHANNELS)
    assert m.targets == ("JawOpen", "MouthSmileLeft")
    c = {n: i for i, n in enumerate(RIG_CHANNELS)}
    np.testing.assert_allclose(y[:, 0], x[:, RIG_JAW])
    np.testing.assert_allclose(y[:, 1], 0.5 * x[:, c["mouth_corner_up_l"]] + 0.5 * x[:, c["mouth_corner_up_r"]],
                               rtol=1e-6)
    ll = to_live_link(x, RIG_CHANNELS, 60, m)  # already 60 fps: no resampling
    from lib.channels import LIVE_LINK_FACE_61

    np.testing.assert_allclose(ll[:, LIVE_LINK_FACE_61.index("JawOpen")], x[:, RIG_JAW])
    assert np.count_nonzero(ll.any(axis=0)) == 2
    (tmp_path / "bad.csv").write_text("source,target,weight\njaw_open_c,JawOpen,lots\n")
    with pytest.raises(DataError, match="bad.csv: row 2"):
        read_rig_map(tmp_path / "bad.csv")
    with pytest.raises(DataError, match="m.csv.*source channels not in"):
        m.apply(x[:, :3], RIG_CHANNELS[:3])


def test_render_draws_a_custom_rig_through_a_rig_map_at_the_corpus_fps(tmp_path, monkeypatch):
    import lib.render.cli as render_cli
    from lib.ingest.rig_map import write_rig_map
    from lib.render.video import video_frame_count

    seen = {}
    monkeypatch.setattr(render_cli, "render_side_by_side",
                        lambda panels, titles, wav, out, **kw: seen.update(panels=panels, wav=wav, **kw) or out)
    root = make_rig_corpus(tmp_path / "rig", 30, extract=False)
    corpus = Corpus(root)
    utt = corpus.utterances("org", "val_1")[0]
    write_rig_map(tmp_path / "m.csv", [("jaw_open_c", "JawOpen", 1.0), ("lips_seal_c", "MouthClose", 0.5)])
    render_cli.render_clip(root, "org", "val_1", utt, tmp_path / "v.mp4", progress=False, rig_map=tmp_path / "m.csv")
    gt = corpus.own_labels("org", "val_1", utt)
    assert seen["fps"] == seen["face_fps"] == 30 and seen["channels"] == ("JawOpen", "MouthClose")
    np.testing.assert_allclose(seen["panels"][0], gt[:, [RIG_JAW, RIG_CHANNELS.index("lips_seal_c")]] * [1, 0.5],
                               rtol=1e-6)
    # One video frame per label frame: the video runs at the corpus's rate, as long as the audio.
    assert video_frame_count(len(seen["wav"]) / AUDIO_SAMPLE_RATE_HZ, seen["fps"]) == len(gt)
