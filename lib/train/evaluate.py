"""Using a trained run: ``validate`` (pick the best evaluation), ``test`` (predict a
split and score it), ``infer`` (predict label CSVs for any folder of wavs).

Predictions are one utterance at a time (the original's test batch size of 1)
and exactly ``round(duration_s * face_fps)`` frames long, the label convention,
so a prediction CSV lines up frame for frame with a label CSV of the same clip.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..config import AUDIO_SAMPLE_RATE_HZ, ModelConfig, TrainConfig, config_from_dict, label_frames
from ..io import DataError, audio_duration_s, read_audio, write_label_csv
from ..layout import Corpus
from ..metrics import METRICS_COLUMNS, score_pair, write_metrics_csv
from ..model import TalkingFaceModel
from .loop import pick_device
from .state import CURVE_COLUMNS, find_checkpoint, load_checkpoint, read_run_config, run_dir_of



def load_model(checkpoint: str | Path, device: str | torch.device | None = None) -> tuple[TalkingFaceModel, dict]:
    """A model from a checkpoint written by ``train`` (weights + its configs), in eval mode."""
    device = pick_device(None if device is None else str(device))
    ck = load_checkpoint(checkpoint, device)
    model = TalkingFaceModel(config_from_dict(ModelConfig, ck["configs"]["model"], str(checkpoint))).to(device)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


@torch.no_grad()
def predict(model: TalkingFaceModel, feats: np.ndarray, frames: int) -> np.ndarray:
    """features (T, D) or (L, T, D) -> prediction (frames, C) float32."""
    dev = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(feats, dtype=np.float32), device=dev)[None]  # (1, [L,] T, D)
    lengths = torch.tensor([x.shape[-2]], device=dev)
    return model(x, lengths, frames)[0].cpu().numpy()


# ----------------------------------------------------------------------------- validate
def validate(run_dir: str | Path, split: str | None = None) -> dict:
    """Pick the best evaluation of a run by its validation loss (curves.csv).

    Returns {"step", "epoch", "value", "checkpoint"}: the checkpoint is the
    per-evaluation weights file when kept, else best.pt (which holds the same
    weights). Ties go to the earliest evaluation.
    """
    run_dir = Path(run_dir)
    _, _, tcfg = read_run_config(run_dir)
    split = split or tcfg.val_split
    path = run_dir / "curves.csv"
    try:
        curves = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise DataError(path, f"no readable curves ({e})") from None
    if list(curves.columns) != list(CURVE_COLUMNS):
        raise DataError(path, f"columns {list(curves.columns)} != {list(CURVE_COLUMNS)}")
    val = curves[(curves["split"] == split) & (curves["metric"] == "loss")]
    if val.empty:
        raise DataError(path, f"no {split} loss rows: has the run evaluated yet?")
    best = val.loc[val["value"].idxmin()]
    step, epoch = int(best["step"]), float(best["epoch"])
    by_steps = tcfg.eval_every_steps is not None
    ckpt = find_checkpoint(run_dir, f"step_{step}" if by_steps else str(int(round(epoch))))
    return {"step": step, "epoch": epoch, "value": float(best["value"]),
            "checkpoint": str(ckpt if ckpt.is_file() else run_dir / "best.pt")}


# ----------------------------------------------------------------------------- test
def prediction_path(run_dir: Path, corpus: Corpus, speaker: str, utt: str) -> Path:
    """org: ``<run_dir>/<utt>.csv`` (the original's place); other voices share org's
    utterance names, so theirs go to ``<run_dir>/<speaker>/<utt>.csv``."""
    return run_dir / f"{utt}.csv" if speaker == corpus.org else run_dir / speaker / f"{utt}.csv"


def test(cfg: TrainConfig, split: str = "test_a", speakers: Sequence[str] = ("org",),
         checkpoint: str | int = "best", arm: str = "", progress: bool = True) -> pd.DataFrame:
    """Predict every utterance of ``split`` for ``speakers`` and score it.

    Writes one label CSV per utterance (see :func:`prediction_path`) and
    ``<run_dir>/metrics.csv``: tidy rows (run_id, arm, seed, split, speaker,
    reference, utt, metric, value) from lib.metrics. ``reference`` is "labels"
    (the clip's own labels, or org's of the same name for a TTS clip: unaligned,
    so only DTW-type scores are meaningful there) and, where the corpus has them,
    "oracle" (time-aligned labels of a TTS clip). Rows of an earlier test of the
    same split and speakers are replaced. Returns the new rows.
    """
    run_dir = run_dir_of(cfg)
    corpus = Corpus(cfg.root_dir)
    model, ck = load_model(find_checkpoint(run_dir, checkpoint), cfg.device)
    fdir = cfg.feature_dir or cfg.feature
    speakers = list(corpus.speakers) if list(speakers) == ["all"] else list(speakers)
    from ..features.extract import load_features

    rows, bad = [], []
    jobs = [(s, u) for s in speakers for u in corpus.utterances(s, split)]
    if not jobs:
        raise DataError(corpus.root / "wavs", f"no clips of {speakers} in split {split}")
    for spk, utt in tqdm(jobs, desc=f"test {split}", disable=not progress):
        try:
            frames = label_frames(audio_duration_s(corpus.wav_path(spk, split, utt)), corpus.face_fps)
            pred = predict(model, load_features(corpus.root, spk, fdir, split, utt), frames)
            write_label_csv(prediction_path(run_dir, corpus, spk, utt), pred, corpus.channels)
            refs = {"labels": corpus.labels(spk, split, utt)[0]}
            if spk != corpus.org and (corpus.root / "labels_oracle" / spk / split / f"{utt}.csv").is_file():
                refs["oracle"] = corpus.oracle_labels(spk, split, utt)
        except DataError as e:
            bad.append(e)
            continue
        for ref, gt in refs.items():
            for metric, value in score_pair(pred, gt, corpus.channels).items():
                rows.append({"run_id": cfg.name, "arm": arm, "seed": ck["configs"]["train"]["seed"], "split": split,
                             "speaker": spk, "reference": ref, "utt": utt, "metric": metric, "value": value})
    new = pd.DataFrame(rows, columns=list(METRICS_COLUMNS))
    write_metrics_csv(run_dir / "metrics.csv", rows, replace={"split": [split], "speaker": speakers})
    if bad:
        new.attrs["bad_files"] = [str(e) for e in bad]
        for e in bad:
            print(f"ERROR {e}")
    return new


def summarize_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Per-utterance rows -> mean per (split, speaker, reference, metric)."""
    return df.groupby(["split", "speaker", "reference", "metric"], sort=True)["value"].mean().reset_index()


# ----------------------------------------------------------------------------- infer
def feature_function(feature: str, feature_checkpoint: str | Path | None = None, device: str | None = None):
    """wav (samples,) 16 kHz -> features, by the extractor registry of lib.features.extract."""
    from ..features.extract import EXTRACTORS, _resolve
    from ..paths import REPO_ROOT

    if feature not in EXTRACTORS:
        raise ValueError(f"unknown feature {feature!r}; known: {sorted(EXTRACTORS)}")
    spec = EXTRACTORS[feature]
    target = _resolve(spec.target)
    if spec.kind == "function":
        return target
    ckpt = feature_checkpoint or (REPO_ROOT / spec.default_checkpoint if spec.default_checkpoint else None)
    return target(ckpt, device=device) if ckpt is not None else target(device=device)


def infer(checkpoint: str | Path, wav_dir: str | Path, out_dir: str | Path, feature: str | None = None,
          feature_checkpoint: str | Path | None = None, device: str | None = None,
          progress: bool = True) -> list[DataError]:
    """Predict ``<out_dir>/<stem>.csv`` for every ``<wav_dir>/*.wav`` (features made on the fly).

    ``feature`` defaults to the one the model was trained on. Returns the bad
    files (each a DataError naming the file); the good ones are all written.
    """
    model, ck = load_model(checkpoint, device)
    feature = feature or ck["configs"]["train"]["feature"]
    extract = feature_function(feature, feature_checkpoint, device)
    wavs = sorted(Path(wav_dir).glob("*.wav"))
    if not wavs:
        raise DataError(wav_dir, "no .wav files")
    bad: list[DataError] = []
    channels = checkpoint_channels(ck)
    for wav in tqdm(wavs, desc="infer", disable=not progress):
        try:
            audio = read_audio(wav)
            frames = label_frames(len(audio) / AUDIO_SAMPLE_RATE_HZ, model.cfg.face_fps)
            write_label_csv(Path(out_dir) / f"{wav.stem}.csv", predict(model, extract(audio), frames), channels)
        except DataError as e:
            bad.append(e)
        except Exception as e:  # a failure is this file's, reported by name
            bad.append(DataError(wav, f"{type(e).__name__}: {e}"))
    return bad


def checkpoint_channels(ck: dict) -> tuple[str, ...]:
    """Channel names a checkpoint predicts (its corpus's channel set)."""
    from ..channels import get_channels

    names = ck.get("channels")
    return tuple(names) if names else get_channels("t2a37")  # the toolkit's default set


test.__test__ = False  # a library function named test: not for pytest to collect when imported
