"""Using a trained run: ``validate`` (pick the best evaluation), ``test`` (predict a
split and score it), ``infer`` (predict label CSVs for any folder of wavs).

Predictions are one utterance at a time (the original's test batch size of 1)
and exactly ``round(duration_s * face_fps)`` frames long, the label convention,
so a prediction CSV lines up frame for frame with a label CSV of the same clip.
They are written in the run's face format (channel names + fps), which the
checkpoint stores (``ck["face"]``; a checkpoint from before it has t2a37 at the
model's face_fps, 25). Clips longer than ``window_s`` are predicted in
overlapping windows with a crossfade (:func:`predict_windowed`), so memory is
bounded whatever the length of the take.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

import math

from ..channels import FACE_JSON, FaceFormat
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


# Inference windows: a clip up to WINDOW_S long is one pass (the original's whole-clip
# inference, unchanged); longer ones go in windows of WINDOW_S overlapping by OVERLAP_S.
WINDOW_S = 30.0
OVERLAP_S = 2.0


@torch.inference_mode()
def predict(model: TalkingFaceModel, feats: np.ndarray, frames: int, window_s: float | None = WINDOW_S,
            overlap_s: float = OVERLAP_S) -> np.ndarray:
    """features (T, D) or (L, T, D) at the model's feature rate -> prediction (frames, C) float32.

    One pass when ``frames`` fits in ``window_s`` (or ``window_s`` is None), else
    :func:`predict_windowed`.
    """
    if window_s is not None and frames > _window_plan(model, window_s, overlap_s)[0]:
        return predict_windowed(model, feats, frames, window_s, overlap_s)
    return _predict_once(model, feats, frames)


def _predict_once(model: TalkingFaceModel, feats: np.ndarray, frames: int) -> np.ndarray:
    dev = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(feats, dtype=np.float32), device=dev)[None]  # (1, [L,] T, D)
    lengths = torch.tensor([x.shape[-2]], device=dev)
    return model(x, lengths, frames)[0].cpu().numpy()


def _window_plan(model: TalkingFaceModel, window_s: float, overlap_s: float) -> tuple[int, int, int]:
    """(window W, overlap O, grid step) in label frames; W and O are multiples of the step,
    the label frames where feature and label times meet exactly (fps / gcd(rate, fps))."""
    fps, rate = model.cfg.face_fps, model.cfg.feature_rate_hz
    step = fps // math.gcd(rate, fps)
    O = max(4 * step, int(round(overlap_s * fps)) // step * step)
    W = max(2 * O, int(round(window_s * fps)) // step * step)
    return W, O, step


def crossfade_weights(n: int, starts: list[int], W: int, O: int) -> list[np.ndarray]:
    """Per window k (frames starts[k] .. starts[k]+W, cut at n), its weight per frame.

    In the overlap of windows k and k+1 (O frames) the weight of k+1 rises
    linearly from 0 to 1 across the middle half of the overlap, and k's is 1
    minus it: the outer quarters, where a window sees the edge of its context,
    are never used, and the weights sum to 1 at every frame.
    """
    ramp = np.clip((np.arange(O) - O / 4 + 0.5) / (O / 2), 0.0, 1.0)  # (O,) 0 -> 1 over the middle half
    out = []
    for k, a in enumerate(starts):
        w = np.ones(min(W, n - a))
        if k > 0:
            w[:O] = ramp
        if k + 1 < len(starts):
            w[starts[k + 1] - a:] = 1.0 - ramp[: len(w) - (starts[k + 1] - a)]
        out.append(w)
    return out


@torch.inference_mode()
def predict_windowed(model: TalkingFaceModel, feats: np.ndarray, frames: int, window_s: float = WINDOW_S,
                     overlap_s: float = OVERLAP_S) -> np.ndarray:
    """Prediction (frames, C) of a clip of any length in bounded memory.

    Windows of ``window_s`` seconds (label frames [a, a + W)) overlapping by
    ``overlap_s``; each is predicted alone from the features at the same times
    (window starts on the exact feature/label grid), and neighbours are
    crossfaded (:func:`crossfade_weights`). Peak memory is that of one window.
    """
    fps, rate = model.cfg.face_fps, model.cfg.feature_rate_hz
    W, O, _ = _window_plan(model, window_s, overlap_s)
    hop = W - O
    starts = [0]
    while starts[-1] + W < frames:
        starts.append(starts[-1] + hop)
    feats = np.asarray(feats, dtype=np.float32)
    T = feats.shape[-2]
    out = None
    for k, (a, w) in enumerate(zip(starts, crossfade_weights(frames, starts, W, O))):
        # The last window takes every remaining feature frame, as the whole-clip pass does.
        fs = a * rate // fps
        fe = T if k == len(starts) - 1 else min(T, -(-(a + len(w)) * rate // fps))
        if fs >= fe:  # features end before the labels would: the tail stays zero, as the whole-clip pass pads
            break
        p = _predict_once(model, feats[..., fs:fe, :], len(w))  # (len(w), C)
        if out is None:
            out = np.zeros((frames, p.shape[1]), np.float32)
        out[a:a + len(w)] += w[:, None].astype(np.float32) * p
    return out


def checkpoint_face(ck: dict) -> FaceFormat:
    """The face format a checkpoint predicts in. Checkpoints from before the face format
    was stored: their channel names (t2a37 when absent) at the model's face_fps (25)."""
    if ck.get("face"):
        return FaceFormat.from_dict(ck["face"], "checkpoint")
    fps = (ck.get("configs") or {}).get("model", {}).get("face_fps", 25)
    names = ck.get("channels")
    return FaceFormat.make(list(names) if names else "t2a37", fps)


def check_same_face(corpus: Corpus, ck: dict, checkpoint: str | Path) -> None:
    """A checkpoint can only be tested on a corpus of its own face format."""
    face = checkpoint_face(ck)
    if face != corpus.face:
        raise DataError(corpus.root / FACE_JSON,
                        f"corpus face format ({corpus.face.n_channels} channels at {corpus.face_fps} fps) differs "
                        f"from the checkpoint {checkpoint}'s ({face.n_channels} channels at {face.face_fps} fps)")


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
        curves = pd.read_csv(path, float_precision="round_trip")  # repr-written floats, read back exactly
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
         checkpoint: str | int = "best", arm: str = "", progress: bool = True,
         window_s: float | None = WINDOW_S, overlap_s: float = OVERLAP_S) -> pd.DataFrame:
    """Predict every utterance of ``split`` for ``speakers`` and score it.

    Writes one label CSV per utterance (see :func:`prediction_path`) and
    ``<run_dir>/metrics.csv``: tidy rows (run_id, arm, seed, split, speaker,
    reference, utt, metric, value) from lib.metrics. ``reference`` is "labels"
    (the clip's own labels, or org's of the same name for a TTS clip: unaligned,
    so only DTW-type scores are meaningful there) and, where the corpus has them,
    "oracle" (time-aligned labels of a TTS clip). Rows of an earlier test of the
    same split and speakers are replaced. Predictions are in the corpus's face
    format, which must be the checkpoint's; clips longer than ``window_s`` are
    predicted in windows (:func:`predict_windowed`). Returns the new rows.
    """
    run_dir = run_dir_of(cfg)
    corpus = Corpus(cfg.root_dir)
    ckpt_path = find_checkpoint(run_dir, checkpoint)
    model, ck = load_model(ckpt_path, cfg.device)
    check_same_face(corpus, ck, ckpt_path)
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
            pred = predict(model, load_features(corpus.root, spk, fdir, split, utt), frames, window_s, overlap_s)
            write_label_csv(prediction_path(run_dir, corpus, spk, utt), pred, corpus.channels)
            refs = {"labels": corpus.labels(spk, split, utt)[0]}
            if spk != corpus.org and (corpus.root / "labels_oracle" / spk / split / f"{utt}.csv").is_file():
                refs["oracle"] = corpus.oracle_labels(spk, split, utt)
        except DataError as e:
            bad.append(e)
            continue
        for ref, gt in refs.items():
            for metric, value in score_pair(pred, gt, corpus.channels, corpus.face.mouth).items():
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


OUTPUT_FORMATS = ("csv", "livelink")


def infer(checkpoint: str | Path, wav_dir: str | Path, out_dir: str | Path, feature: str | None = None,
          feature_checkpoint: str | Path | None = None, device: str | None = None,
          progress: bool = True, fmt: str = "csv", rig_map: str | Path | None = None,
          window_s: float | None = WINDOW_S, overlap_s: float = OVERLAP_S) -> list[DataError]:
    """Predict ``<out_dir>/<stem>.csv`` for every ``<wav_dir>/*.wav`` (features made on the fly).

    ``feature`` defaults to the one the model was trained on. ``fmt``: "csv" (a
    label CSV in the checkpoint's face format: its header, its fps; through
    ``rig_map`` when given, the map's target rig) or "livelink" (Live Link Face
    CSV at 60 fps; a non-ARKit rig needs ``rig_map`` onto ARKit names). Clips
    longer than ``window_s`` are predicted in overlapping windows (bounded
    memory). Returns the bad files (each a DataError naming the file); the good
    ones are all written.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; known: {list(OUTPUT_FORMATS)}")
    model, ck = load_model(checkpoint, device)
    face = checkpoint_face(ck)
    feature = feature or ck["configs"]["train"]["feature"]
    extract = feature_function(feature, feature_checkpoint, device)
    wavs = sorted(Path(wav_dir).glob("*.wav"))
    if not wavs:
        raise DataError(wav_dir, "no .wav files")
    from ..ingest.livelink import write_live_link
    from ..ingest.rig_map import read_rig_map

    mapping = read_rig_map(rig_map) if rig_map is not None else None
    bad: list[DataError] = []
    for wav in tqdm(wavs, desc="infer", disable=not progress):
        try:
            audio = read_audio(wav)
            frames = label_frames(len(audio) / AUDIO_SAMPLE_RATE_HZ, face.face_fps)
            pred = predict(model, extract(audio), frames, window_s, overlap_s)  # (frames, C) at face_fps
            out = Path(out_dir) / f"{wav.stem}.csv"
            if fmt == "livelink":
                write_live_link(out, pred, face.channels, face.face_fps, mapping)
            elif mapping is not None:
                write_label_csv(out, mapping.apply(pred, face.channels), mapping.targets)
            else:
                write_label_csv(out, pred, face.channels)
        except DataError as e:
            bad.append(e)
        except Exception as e:  # a failure is this file's, reported by name
            bad.append(DataError(wav, f"{type(e).__name__}: {e}"))
    return bad


def checkpoint_channels(ck: dict) -> tuple[str, ...]:
    """Channel names a checkpoint predicts (its corpus's face format)."""
    return checkpoint_face(ck).channels


test.__test__ = False  # a library function named test: not for pytest to collect when imported
