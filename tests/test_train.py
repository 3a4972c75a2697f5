"""lib.train end to end on a tiny corpus: CLI, config first, best checkpoint, resume after SIGKILL, test, infer."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lib.config import label_frames
from lib.io import audio_duration_s, read_label_csv
from lib.layout import Corpus
from lib.losses import build_loss
from lib.train import cli_main, infer, validate
from lib.train import test as run_test
from lib.train.evaluate import load_model
from lib.train.loop import build_datasets, evaluate_loss
from lib.train.state import load_checkpoint, read_run_config
from tiny_corpus import SPLIT_UTTS, TINY_MODEL, make_tiny_corpus  # tests/tiny_corpus.py

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("restore_torch_globals")  # tests/conftest.py


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_tiny_corpus(tmp_path_factory.mktemp("corpus"))


def train_args(root: Path, out: Path, name: str, *extra: str) -> list[str]:
    return ["train", "--root_dir", str(root), "--output_path", str(out), "--name", name,
            "--train_speaker_list", "org,tts1", "--train_batch_size", "4", "--loss_type", "hybrid",
            "--threads", "1", "--no_progress", *TINY_MODEL, *extra]


@pytest.fixture(scope="module")
def run(root, tmp_path_factory) -> Path:
    """A 2-epoch run through the CLI."""
    out = tmp_path_factory.mktemp("runs")
    assert cli_main(train_args(root, out, "two", "--max_epoch", "2")) == 0
    return out / "two"


def test_cli_train_writes_config_first_and_curves(run):
    files = [p for p in run.rglob("*") if p.is_file()]
    first = min(files, key=lambda p: p.stat().st_mtime_ns)
    assert first.name == "config.json"
    cfg = json.loads((run / "config.json").read_text())
    assert set(cfg) == {"model", "loss", "train"}
    assert cfg["model"]["input_dim"] == 39 and cfg["model"]["feature_rate_hz"] == 100  # filled from the data
    assert (cfg["loss"]["aligned"], cfg["loss"]["unaligned"]) == ("l2", "softdtw")
    assert cfg["train"]["train_speakers"] == ["org", "tts1"] and cfg["train"]["max_epochs"] == 2
    curves = pd.read_csv(run / "curves.csv", float_precision="round_trip")
    assert list(curves.columns) == ["step", "epoch", "split", "metric", "value"]
    val = curves[(curves.split == "val_1") & (curves.metric == "loss")]
    assert val.epoch.tolist() == [1.0, 2.0]
    steps_per_epoch = -(-2 * len(SPLIT_UTTS["train"]) // 4)  # org + tts1 clips, batch 4
    assert val.step.tolist() == [steps_per_epoch, 2 * steps_per_epoch]
    lr = curves[curves.metric == "lr"].value.to_numpy()
    np.testing.assert_allclose(lr, [1e-3 * 0.95, 1e-3 * 0.95**2])  # x 0.95 per epoch
    assert load_checkpoint(run / "last.pt")["state"]["done"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch_001.pt", "epoch_002.pt"]


def test_best_checkpoint_is_the_lowest_validation_loss(root, run):
    curves = pd.read_csv(run / "curves.csv", float_precision="round_trip")
    val = curves[(curves.split == "val_1") & (curves.metric == "loss")]
    best_row = val.loc[val.value.idxmin()]
    picked = validate(run)
    assert picked["step"] == best_row.step and picked["value"] == best_row.value
    best = load_checkpoint(run / "best.pt")
    assert best["step"] == best_row.step and best["val_loss"] == best_row.value
    same_epoch = load_checkpoint(Path(picked["checkpoint"]))
    for k, v in best["model"].items():
        assert torch.equal(v, same_epoch["model"][k])
    # Recompute the validation loss of best.pt independently of the training loop.
    model_cfg, loss_cfg, tcfg = read_run_config(run)
    corpus, _, val_ds = build_datasets(tcfg)
    model, _ = load_model(run / "best.pt", "cpu")
    got = evaluate_loss(model, build_loss(loss_cfg, corpus.channels), val_ds, 1, "cpu")["loss"]
    assert got == pytest.approx(best_row.value, rel=1e-5)


def test_test_writes_predictions_with_label_frame_counts_and_metrics(root, run):
    corpus = Corpus(root)
    rc = cli_main(["test", "--output_path", str(run.parent), "--name", run.name, "--test_speakers", "org", "tts1",
                   "--no_progress"])
    assert rc == 0
    for spk, folder in (("org", run), ("tts1", run / "tts1")):
        for utt in SPLIT_UTTS["test_a"]:
            pred, names = read_label_csv(folder / f"{utt}.csv")
            assert names == corpus.channels
            assert len(pred) == label_frames(audio_duration_s(corpus.wav_path(spk, "test_a", utt)))
    m = pd.read_csv(run / "metrics.csv")
    assert {"mse_score", "dtw_score"} <= set(m.metric)
    n_metrics = m.metric.nunique()
    org = m[m.speaker == "org"]
    assert set(org.reference) == {"labels"} and len(org) == n_metrics * len(SPLIT_UTTS["test_a"])
    tts = m[m.speaker == "tts1"]
    assert set(tts.reference) == {"labels", "oracle"}  # oracle labels of the TTS clips are scored too
    # The metric of a written file equals lib.metrics on that file against its labels.
    from lib.metrics import mse_score

    utt = SPLIT_UTTS["test_a"][0]
    want = mse_score(read_label_csv(run / f"{utt}.csv")[0], corpus.own_labels("org", "test_a", utt))
    got = org[(org.utt == utt) & (org.metric == "mse_score")].value.item()
    assert got == pytest.approx(want, rel=1e-6)


def test_infer_any_wav_folder(root, run, tmp_path):
    wav_dir = root / "wavs" / "held" / "test_a"  # a voice never trained on
    assert infer(run / "best.pt", wav_dir, tmp_path / "out", progress=False) == []
    for wav in sorted(wav_dir.glob("*.wav")):
        pred, _ = read_label_csv(tmp_path / "out" / f"{wav.stem}.csv")
        assert len(pred) == label_frames(audio_duration_s(wav))


def test_resume_after_sigkill_matches_uninterrupted_run(root, tmp_path):
    extra = ["--max_epoch", "6", "--checkpoint_every_steps", "1"]
    # Uninterrupted reference, in this process.
    assert cli_main(train_args(root, tmp_path / "ref", "r", *extra)) == 0
    cmd = [sys.executable, "-m", "lib", *train_args(root, tmp_path / "kill", "r", *extra)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "kill" / "r" / "last.pt"
    deadline = time.time() + 120
    # Kill mid-epoch 2, after the first evaluation (so best.pt and curves exist to be redone).
    while proc.poll() is None and time.time() < deadline:
        if last.exists() and load_checkpoint(last)["state"]["step"] >= 6:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), proc.stderr.read().decode()[-2000:]
    state = load_checkpoint(last)["state"]
    assert not state["done"], "the run ended before it could be killed"
    print(f"killed after step {state['step']} (epoch {state['epoch']}, batch {state['batch_in_epoch']})")
    # The same command again resumes from last.pt and finishes.
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    ref, res = tmp_path / "ref" / "r", tmp_path / "kill" / "r"
    a, b = pd.read_csv(ref / "curves.csv"), pd.read_csv(res / "curves.csv")
    pd.testing.assert_frame_equal(a[["step", "epoch", "split", "metric"]], b[["step", "epoch", "split", "metric"]])
    np.testing.assert_array_equal(a.value, b.value)  # bit for bit on CPU
    wa, wb = load_checkpoint(ref / "last.pt")["model"], load_checkpoint(res / "last.pt")["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    _, _, cfg_a = read_run_config(ref)
    _, _, cfg_b = read_run_config(res)
    ma = run_test(cfg_a, speakers=["org"], progress=False)
    mb = run_test(cfg_b, speakers=["org"], progress=False)
    np.testing.assert_array_equal(ma.value, mb.value)


def test_step_budget_eval_every_steps_and_early_stopping(root, tmp_path):
    args = train_args(root, tmp_path, "steps", "--max_steps", "7", "--eval_every_steps", "2", "--patience", "1",
                      "--set", "train.lr=0.05")
    assert cli_main(args) == 0
    run = tmp_path / "steps"
    curves = pd.read_csv(run / "curves.csv")
    val = curves[(curves.split == "val_1") & (curves.metric == "loss")]
    state = load_checkpoint(run / "last.pt")["state"]
    # Evaluations every 2 steps, plus one at the end of the budget when it falls between them.
    expected = [s for s in (2, 4, 6) if s <= state["step"]] + ([7] if state["step"] == 7 else [])
    assert val.step.tolist() == expected
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [f"step_{s:07d}.pt" for s in expected]
    after_best = (val.step > state["best_step"]).sum()
    if state["step"] < 7:  # stopped early: exactly `patience` evaluations without improvement
        assert after_best == 1
    else:
        assert after_best == 0 or (after_best == 1 and val.step.iloc[-1] == 7)


def test_training_speakers_exclude_held_out_voices(root, tmp_path):
    from lib.config import TrainConfig

    _, train_ds, val_ds = build_datasets(TrainConfig(root_dir=str(root), train_speakers=("all",)))
    assert {k.speaker for k in train_ds.keys} == {"org", "tts1"}
    assert {k.speaker for k in val_ds.keys} == {"org"} and {k.split for k in val_ds.keys} == {"val_1"}
