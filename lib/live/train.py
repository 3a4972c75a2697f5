"""Training and scoring a bounded-context model through lib.train's own loop.

``train_live`` = ``lib.train.loop.train`` with :class:`LiveFaceModel` (the
attention band and causal convs in every training step, so training sees the
context streaming will see) and the :class:`LiveConfig` stored in every
checkpoint (``ck["live"]``) and in ``<run>/live.json``, next to config.json.
Features default to ``mfcc_live`` (lib.live.features), written on first use.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import LossConfig, ModelConfig, TrainConfig, config_from_dict, label_frames
from ..io import DataError, atomic_write_text
from .features import FEATURE_NAME, extract_live_features
from .model import LiveConfig, LiveFaceModel, load_live_model


def train_live(cfg: TrainConfig, live: LiveConfig, model_cfg: ModelConfig | None = None,
               loss_cfg: LossConfig | None = None, given: Sequence[str] = (),
               ppg_checkpoint: str | Path | None = None) -> Path:
    """Train (or resume) a live run ``<cfg.output_path>/<cfg.name>``; returns its folder.

    ``cfg.feature``: ``mfcc_live`` or ``ppg_live`` (then ``ppg_checkpoint``, a
    lib.features.ppg checkpoint, whose network is copied into every checkpoint of the run
    so the server needs nothing else). A folder holding another live config is refused."""
    from ..train.loop import train
    from ..train.state import run_dir_of

    extra: dict = {}
    if cfg.feature == "ppg_live":
        if ppg_checkpoint is None:
            raise ValueError("feature ppg_live needs --ppg_checkpoint (a `python -m lib train-ppg` checkpoint)")
        from .ppg import load_ppg_net

        net = load_ppg_net(ppg_checkpoint)
        extra["ppg_net"] = {"state_dict": net.state_dict(), "config": dataclasses.asdict(net.cfg)}
        extract_live_features(cfg.root_dir, feature="ppg_live", ppg_net=net, progress=cfg.progress)
    elif cfg.feature == FEATURE_NAME:
        extract_live_features(cfg.root_dir, progress=cfg.progress)
    run_dir = run_dir_of(cfg)
    path = run_dir / "live.json"
    new = dataclasses.asdict(live)
    if path.is_file() and json.loads(path.read_text()) != new:
        raise DataError(path, f"run folder holds a live run with {json.loads(path.read_text())}, not {new}")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(new, indent=2) + "\n")
    return train(cfg, model_cfg, loss_cfg, given, build_model=lambda c: LiveFaceModel(c, live),
                 checkpoint_extra={"live": new, **extra})


def checkpoint_features(ck: dict):
    """(feature name, PPG network or None) of a live checkpoint, for streaming its features."""
    feature = ck["configs"]["train"]["feature"]
    net = None
    if ck.get("ppg_net"):
        from ..features.ppg import ppg_net_from_state

        net = ppg_net_from_state(ck["ppg_net"]["config"], ck["ppg_net"]["state_dict"])
    return feature, net


def score_live(run_dir: str | Path, split: str = "test_a", checkpoint: str = "best") -> list[dict]:
    """Offline (whole-clip, same context mask) predictions of a live run on org ``split``,
    scored by lib.metrics against the labels: rows {utt, metric, value}."""
    from ..features.extract import load_features
    from ..io import audio_duration_s
    from ..layout import Corpus
    from ..metrics import score_pair
    from ..train.evaluate import predict
    from ..train.state import find_checkpoint, read_run_config

    run_dir = Path(run_dir)
    _, _, tcfg = read_run_config(run_dir)
    model, _ = load_live_model(find_checkpoint(run_dir, checkpoint))
    corpus = Corpus(tcfg.root_dir)
    rows = []
    for utt in corpus.utterances(corpus.org, split):
        frames = label_frames(audio_duration_s(corpus.wav_path(corpus.org, split, utt)), corpus.face_fps)
        feats = load_features(corpus.root, corpus.org, tcfg.feature_dir or tcfg.feature, split, utt)
        pred = predict(model, feats, frames, window_s=None)  # (frames, C): one pass, the model's own band
        gt = corpus.labels(corpus.org, split, utt)[0]
        rows += [{"utt": utt, "metric": k, "value": float(v)}
                 for k, v in score_pair(pred, gt, corpus.channels, corpus.face.mouth).items()]
    return rows


def _add_fields(ap: argparse.ArgumentParser, cls, skip: Sequence[str] = ()) -> None:
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        d = f.default
        kind = {bool: lambda s: s.lower() in ("1", "true", "yes"), int: int, float: float}.get(type(d), str)
        if d is None:
            kind = str
        ap.add_argument(f"--{f.name}", type=kind, default=argparse.SUPPRESS)


def cli_main(argv: list[str]) -> int:
    """python -m lib train-live --root_dir DIR --name NAME --lookahead_ms 80 [TrainConfig/ModelConfig fields]"""
    ap = argparse.ArgumentParser(prog="python -m lib train-live", description=__doc__.split("\n\n")[0])
    _add_fields(ap, LiveConfig)
    _add_fields(ap, TrainConfig, skip=("train_speakers",))
    _add_fields(ap, ModelConfig, skip=("input_dim", "feature_rate_hz", "face_fps", "n_channels", "arch",
                                       "feature_combine", "n_feature_layers", "rnn_hidden"))
    ap.add_argument("--train_speakers", nargs="+", default=argparse.SUPPRESS)
    ap.add_argument("--ppg_checkpoint", default=None, help="with --feature ppg_live: the PPG network")
    a = vars(ap.parse_args(argv))
    pick = lambda cls: {k: (tuple(v) if isinstance(v, list) else v) for k, v in a.items()
                        if k in {f.name for f in dataclasses.fields(cls)}}
    # Nullable fields typed str on the command line: "none" -> None, numbers -> numbers.
    fix = lambda d: {k: (None if v in ("none", "None") else (int(v) if isinstance(v, str) and v.isdigit() else v))
                     for k, v in d.items()}
    tc = config_from_dict(TrainConfig, {"feature": FEATURE_NAME, **fix(pick(TrainConfig))})
    mc = config_from_dict(ModelConfig, pick(ModelConfig))
    try:
        run = train_live(tc, LiveConfig(**pick(LiveConfig)), mc, given=(), ppg_checkpoint=a.get("ppg_checkpoint"))
    except (DataError, ValueError) as e:
        print(f"error: {e}")
        return 2
    print(run)
    return 0
