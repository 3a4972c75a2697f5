"""What lookahead costs: live models with lookahead 0 / 80 / 200 ms vs full context, >= 3 seeds.

Data: the org speaker of a built-in corpus (aligned pairs, L2 loss), seen through a small
corpus view ``data/corpus/live_<profile>/`` (links to org's wavs and labels, its own
``mfcc_live`` features), so the source corpus is never written to. Every arm uses the same
features, model size, budget and seeds; "full" is lib.model.TalkingFaceModel (bidirectional,
symmetric convs), the others lib.live.model.LiveFaceModel. Scores: lib.metrics on org test_a
(mean over utterances), one row per (arm, seed, metric) in
``results/<profile>/11_live_lookahead/metrics.csv``; runs cached in ``results/runs/11_live_lookahead/<profile>/``.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..config import LossConfig, ModelConfig, TrainConfig
from ..io import DataError, atomic_write_text
from ..paths import DATA_DIR, RESULTS_DIR, results_dir
from .features import FEATURE_NAME, extract_live_features
from .model import LiveConfig

STUDY = "11_live_lookahead"  # the notebook's folder: its CSV, figure and executed copy together
FULL = None  # the arm without bounds


# Budget per corpus profile: the tiny corpus only checks the plumbing; default is the reported study.
SETTINGS = {"tiny": dict(max_steps=30, eval_every_steps=15, seeds=(0, 1, 2)),
            "quick": dict(max_steps=150, eval_every_steps=50, seeds=(0, 1, 2)),
            "default": dict(max_steps=300, eval_every_steps=100, seeds=(0, 1, 2)),
            "paper": dict(max_steps=300, eval_every_steps=100, seeds=(0, 1, 2)),
            "full": dict(max_steps=300, eval_every_steps=100, seeds=(0, 1, 2, 3, 4))}


def study_settings(profile: str) -> dict:
    """Keyword arguments of :func:`run_lookahead_study` for a corpus profile."""
    if profile not in SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(SETTINGS)}")
    return dict(SETTINGS[profile])


def arm_name(lookahead_ms: int | None) -> str:
    return "full" if lookahead_ms is None else f"lookahead_{lookahead_ms}ms"


def org_view(source_root: str | Path, view_root: str | Path) -> Path:
    """A corpus root holding only org (links to its wavs/labels, face.json, org manifest rows)."""
    src, view = Path(source_root).resolve(), Path(view_root)
    for sub in ("wavs", "labels"):
        if not (src / sub / "org").is_dir():
            raise DataError(src / sub / "org", "no org folder: build the corpus first")
        (view / sub).mkdir(parents=True, exist_ok=True)
        link = view / sub / "org"
        if not link.exists():
            os.symlink(src / sub / "org", link)
    if (src / "face.json").is_file():
        shutil.copyfile(src / "face.json", view / "face.json")
    m = pd.read_csv(src / "manifest.csv", keep_default_na=False)
    atomic_write_text(view / "manifest.csv", m[m.speaker == "org"].to_csv(index=False))
    return view


def run_lookahead_study(profile: str = "default", lookaheads_ms: Sequence[int | None] = (0, 80, 200, None),
                        seeds: Sequence[int] = (0, 1, 2), left_context_ms: int = 1000, max_steps: int = 300,
                        eval_every_steps: int = 100, d_model: int = 64, n_layers: int = 2, n_heads: int = 2,
                        ff_dim: int = 128, dropout: float = 0.1, batch_size: int = 8,
                        source_root: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Train and score every (arm, seed); finished runs are reused. Returns the tidy rows
    (run_id, arm, lookahead_ms, seed, split, metric, value) and writes them to metrics.csv."""
    import torch

    from ..metrics import score_pair
    from ..train.evaluate import load_model
    from ..train.loop import train
    from .train import score_live, train_live

    torch.set_num_threads(1)
    view = org_view(source_root or DATA_DIR / "corpus" / profile, DATA_DIR / "corpus" / f"live_{profile}")
    extract_live_features(view, speakers=["org"], progress=progress)
    out = results_dir(STUDY, profile)
    runs = RESULTS_DIR / "runs" / STUDY / profile  # the git-ignored run cache, not the committed tables
    mcfg = ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, ff_dim=ff_dim, dropout=dropout)
    rows = []
    for la in lookaheads_ms:
        for seed in seeds:
            name = f"{arm_name(la)}_left{left_context_ms}_s{seed}"
            tcfg = TrainConfig(name=name, root_dir=str(view), feature=FEATURE_NAME, output_path=str(runs),
                               max_steps=max_steps, eval_every_steps=eval_every_steps, batch_size=batch_size,
                               seed=seed, threads=1, progress=progress, keep_eval_checkpoints=False)
            if la is FULL:
                run = train(tcfg, mcfg, LossConfig())
                scored = _score_full(run, load_model, score_pair)
            else:
                run = train_live(tcfg, LiveConfig(la, left_context_ms), mcfg, LossConfig())
                scored = score_live(run)
            means = pd.DataFrame(scored).groupby("metric")["value"].mean()
            rows += [{"run_id": name, "arm": arm_name(la), "lookahead_ms": -1 if la is None else la, "seed": seed,
                      "split": "test_a", "metric": k, "value": float(v)} for k, v in means.items()]
    df = pd.DataFrame(rows)
    atomic_write_text(out / "metrics.csv", df.to_csv(index=False))
    return df


def _score_full(run: Path, load_model, score_pair) -> list[dict]:
    """Whole-clip predictions of a full-context run on org test_a -> rows {utt, metric, value}."""
    from ..config import label_frames
    from ..features.extract import load_features
    from ..io import audio_duration_s
    from ..layout import Corpus
    from ..train.evaluate import predict
    from ..train.state import read_run_config

    _, _, tcfg = read_run_config(run)
    model, _ = load_model(run / "best.pt", "cpu")
    corpus = Corpus(tcfg.root_dir)
    rows = []
    for utt in corpus.utterances("org", "test_a"):
        frames = label_frames(audio_duration_s(corpus.wav_path("org", "test_a", utt)), corpus.face_fps)
        pred = predict(model, load_features(corpus.root, "org", FEATURE_NAME, "test_a", utt), frames, window_s=None)
        rows += [{"utt": utt, "metric": k, "value": float(v)}
                 for k, v in score_pair(pred, corpus.labels("org", "test_a", utt)[0], corpus.channels,
                                        corpus.face.mouth).items()]
    return rows


def summary(df: pd.DataFrame, metrics: Sequence[str] = ("mse_score", "dtw_score")) -> pd.DataFrame:
    """Mean, std and seeds per (arm, metric), arms in lookahead order, full context last."""
    d = df[df.metric.isin(metrics)]
    g = d.groupby(["lookahead_ms", "arm", "metric"])["value"].agg(["mean", "std", "count"]).reset_index()
    g["order"] = g.lookahead_ms.where(g.lookahead_ms >= 0, 10**9)
    return g.sort_values(["metric", "order"]).drop(columns="order").reset_index(drop=True)
