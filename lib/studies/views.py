"""What the notebooks show of a finished run or study, read back from its files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import DataError, read_audio, read_label_csv
from ..layout import Corpus
from .runner import TEST_SPLIT


def test_prediction(run_dir: str | Path, utt: str | None = None, speaker: str = "org") -> dict:
    """A test utterance of a run: {"utt", "wav" (samples,), "gt" (M, C), "pred" (M, C), "channels", "face_fps"}.

    ``utt`` defaults to the first test_a utterance. The prediction is the CSV
    that lib.train.test wrote with the run's best checkpoint.
    """
    from ..train.evaluate import prediction_path
    from ..train.state import read_run_config

    run_dir = Path(run_dir)
    _, _, tcfg = read_run_config(run_dir)
    corpus = Corpus(tcfg.root_dir)
    utt = utt or corpus.utterances(speaker, TEST_SPLIT)[0]
    pred, _ = read_label_csv(prediction_path(run_dir, corpus, speaker, utt), channels=corpus.channels)
    gt = corpus.labels(speaker, TEST_SPLIT, utt)[0] if speaker == corpus.org else \
        corpus.oracle_labels(speaker, TEST_SPLIT, utt)
    return {"utt": utt, "speaker": speaker, "wav": read_audio(corpus.wav_path(speaker, TEST_SPLIT, utt)),
            "gt": gt, "pred": pred, "channels": corpus.channels, "face_fps": corpus.face_fps}


def layer_weights(run_dir: str | Path) -> np.ndarray:
    """(L,) learned softmax weights over feature layers of a run's best checkpoint."""
    import torch

    from ..train.state import load_checkpoint

    path = Path(run_dir) / "best.pt"
    ck = load_checkpoint(path)
    logits = ck["model"].get("layer_logits")
    if logits is None:
        raise DataError(path, "this run has no learned layer weights (feature_combine was off)")
    return torch.softmax(logits.float(), dim=0).numpy()


def voice_groups(root: str | Path) -> dict[str, str]:
    """speaker -> "org" | "training voice" | "held-out voice"."""
    from ..data import held_out_speakers

    corpus = Corpus(root)
    held = held_out_speakers(corpus)
    return {s: "org" if s == corpus.org else ("held-out voice" if s in held else "training voice")
            for s in corpus.speakers}


def with_voice_groups(metrics: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """metrics.csv rows with a ``group`` column (see :func:`voice_groups`)."""
    out = metrics.copy()
    out["group"] = out["speaker"].astype(str).map(voice_groups(root)).fillna("other")
    return out


def tts_driven_table(metrics: pd.DataFrame, root: str | Path, metric: str = "mse_score") -> pd.DataFrame:
    """Per run, the mean over voices of each group (TTS clips scored against their oracle
    labels, org against its own); then mean ± std over seeds per (arm, group)."""
    m = with_voice_groups(metrics, root)
    m = m[(m["metric"] == metric) & (((m["group"] != "org") & (m["reference"] == "oracle"))
                                     | ((m["group"] == "org") & (m["reference"] == "labels")))]
    per_run = m.groupby(["arm", "seed", "group"], sort=False)["value"].mean().reset_index()
    agg = per_run.groupby(["arm", "group"], sort=False)["value"]
    out = agg.agg(n_seeds="count", mean="mean").reset_index()
    out["std"] = agg.std(ddof=1).to_numpy()
    out.insert(2, "metric", metric)
    return out


def write_tts_driven(metrics: pd.DataFrame, root: str | Path, out_path: str | Path,
                     metrics_names=("mse_score", "dtw_score")) -> pd.DataFrame:
    """:func:`tts_driven_table` for each score, written to ``out_path`` (atomic)."""
    from ..io import atomic_write_text

    table = pd.concat([tts_driven_table(metrics, root, m) for m in metrics_names], ignore_index=True)
    atomic_write_text(Path(out_path), table.to_csv(index=False))
    return table


def write_layer_weights(result, arm: str, out_path: str | Path) -> pd.DataFrame:
    """Learned layer weights of every seed of ``arm`` in a StudyResult: (run_id, seed, layer, weight)."""
    from ..io import atomic_write_text

    rows = []
    for p in result.planned:
        if p.arm.label == arm and (p.run_dir / "best.pt").is_file():
            for i, w in enumerate(layer_weights(p.run_dir)):
                rows.append({"run_id": p.key, "seed": p.seed, "layer": i, "weight": float(w)})
    df = pd.DataFrame(rows, columns=["run_id", "seed", "layer", "weight"])
    atomic_write_text(Path(out_path), df.to_csv(index=False))
    return df
