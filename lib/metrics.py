"""Evaluation metrics per file, as tidy rows.

The two scores of the original system (its ``utils/evaluate_score.py``):

* ``mse_score``: the prediction is zero-padded or truncated to the ground-truth
  length, then the MSE over frames x channels; the score of a set is the mean
  over files.
* ``dtw_score``: ``fastdtw(gt, pred, radius=1, dist=frame MSE)`` where the frame
  distance is the mean over channels of the squared error; the value is the
  returned distance (the sum of frame distances along fastdtw's path, so it
  grows with length); mean over files.

Lip-focused additions:

* ``lip_max_error``: prediction padded/truncated to the ground-truth length as
  for mse_score; per frame the largest absolute error over the rig's mouth
  channels (lib.channels.mouth_channels: face.json's ``mouth_channels``, else
  the ARKit mouth and jaw names present, else every channel); mean over frames.
* ``jaw_open_corr``: Pearson correlation of JawOpen over the common length
  (NaN when either side is constant there).
* ``exact_dtw``: the full dynamic programme with the same frame distance and
  steps (diagonal, up, left): the optimum that fastdtw's radius-1 search
  approximates from above.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from numba import njit
from tqdm import tqdm

from .channels import channel_index, mouth_channels
from .io import DataError, atomic_write_text, read_label_csv

log = logging.getLogger(__name__)

# One row per (run, test utterance, reference, metric): the schema of every
# run's metrics.csv. ``reference`` is "labels" or "oracle" (see
# lib.train.evaluate.test); study tables average over ``utt``.
METRICS_COLUMNS = ("run_id", "arm", "seed", "split", "speaker", "reference", "utt", "metric", "value")


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.ndim != 2 or gt.ndim != 2 or pred.shape[1] != gt.shape[1]:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must be (frames, same channels)")
    if len(pred) == 0 or len(gt) == 0:
        raise ValueError(f"empty sequence: pred {pred.shape}, gt {gt.shape}")
    return pred, gt


def fit_to_length(pred: np.ndarray, frames: int) -> np.ndarray:
    """(T, C) -> (frames, C): truncate, or append zero frames (the original's rule)."""
    if len(pred) >= frames:
        return pred[:frames]
    return np.concatenate([pred, np.zeros((frames - len(pred), pred.shape[1]), pred.dtype)], axis=0)


def frame_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Distance of two frames (C,): mean over channels of the squared error."""
    return float(np.mean((a - b) ** 2))


def mse_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Original MSE score of one file: pred (T, C) fitted to gt (M, C), MSE over M x C."""
    pred, gt = _check(pred, gt)
    return float(np.mean((fit_to_length(pred, len(gt)) - gt) ** 2))


def dtw_score(pred: np.ndarray, gt: np.ndarray) -> float:
    """Original DTW score of one file: fastdtw distance (radius 1, frame MSE)."""
    from fastdtw import fastdtw

    pred, gt = _check(pred, gt)
    distance, _ = fastdtw(gt, pred, radius=1, dist=frame_mse)
    return float(distance)


@njit(cache=True)
def _dtw_dp(D: np.ndarray) -> float:
    n, m = D.shape
    R = np.full((n + 1, m + 1), np.inf)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            R[i, j] = D[i - 1, j - 1] + min(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1])
    return R[n, m]


def exact_dtw(pred: np.ndarray, gt: np.ndarray) -> float:
    """Exact DTW distance (full DP, frame MSE, steps diag/up/left); <= dtw_score."""
    pred, gt = _check(pred, gt)
    # (M, T) frame distances: mean_c (gt_i - pred_j)^2, vectorised over all pairs.
    D = ((gt**2).sum(1)[:, None] + (pred**2).sum(1)[None, :] - 2.0 * gt @ pred.T) / gt.shape[1]
    return float(_dtw_dp(np.maximum(D, 0.0)))  # clip tiny negative rounding


def lip_max_error(pred: np.ndarray, gt: np.ndarray, channels: Sequence[str],
                  mouth: Sequence[str] | None = None) -> float:
    """Mean over gt frames of the largest |error| over the mouth channels (pred fitted to gt length).

    ``mouth``: the rig's mouth channels; None -> :func:`lib.channels.mouth_channels`
    (ARKit mouth/jaw names present, else all channels).
    """
    pred, gt = _check(pred, gt)
    idx = channel_index(channels, mouth_channels(channels, mouth))
    err = np.abs(fit_to_length(pred, len(gt))[:, idx] - gt[:, idx])  # (M, mouth)
    return float(err.max(axis=1).mean())


def jaw_open_corr(pred: np.ndarray, gt: np.ndarray, channels: Sequence[str]) -> float:
    """Pearson correlation of JawOpen over the common length (NaN if constant)."""
    pred, gt = _check(pred, gt)
    (j,) = channel_index(channels, ["JawOpen"])
    k = min(len(pred), len(gt))
    a, b = pred[:k, j] - pred[:k, j].mean(), gt[:k, j] - gt[:k, j].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def score_pair(pred: np.ndarray, gt: np.ndarray, channels: Sequence[str],
               mouth: Sequence[str] | None = None) -> dict[str, float]:
    """All metrics of one file: name -> value. ``mouth``: see :func:`lip_max_error`."""
    out = {"mse_score": mse_score(pred, gt), "dtw_score": dtw_score(pred, gt),
           "exact_dtw": exact_dtw(pred, gt)}
    out["lip_max_error"] = lip_max_error(pred, gt, channels, mouth)
    if "JawOpen" in channels:
        out["jaw_open_corr"] = jaw_open_corr(pred, gt, channels)
    return out


def score_utterances(
    preds: Mapping[str, np.ndarray], gts: Mapping[str, np.ndarray], channels: Sequence[str],
    progress: bool = True, mouth: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score every utterance of ``gts``; tidy DataFrame (utt, metric, value).

    preds / gts: utt -> (T, C) / (M, C) arrays in ``channels`` order. An
    utterance without a prediction raises (a silent skip would bias the mean).
    """
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise KeyError(f"no prediction for {len(missing)} utterances, e.g. {missing[:5]}")
    rows = []
    for utt in tqdm(sorted(gts), desc="scoring", disable=not progress, leave=False):
        for metric, value in score_pair(preds[utt], gts[utt], channels, mouth).items():
            rows.append({"utt": utt, "metric": metric, "value": value})
    return pd.DataFrame(rows, columns=["utt", "metric", "value"])


def score_files(
    pred_dir: str | Path, gts: Mapping[str, np.ndarray], channels: Sequence[str], progress: bool = True,
    mouth: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Score prediction CSVs ``<pred_dir>/<utt>.csv`` against ``gts`` (utt -> (M, C)).

    Unreadable or missing prediction files are logged and listed in
    ``df.attrs["bad_files"]``; the good files are still scored.
    """
    preds, bad = {}, []
    for utt in sorted(gts):
        path = Path(pred_dir) / f"{utt}.csv"
        try:
            preds[utt], _ = read_label_csv(path, channels=channels)
        except DataError as e:
            bad.append(str(e))
            log.error("%s", e)
    df = score_utterances(preds, {u: gts[u] for u in preds}, channels, progress, mouth)
    df.attrs["bad_files"] = bad
    return df


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Tidy per-file rows -> (metric, value): mean over files (NaN files ignored)."""
    out = df.groupby("metric", sort=True)["value"].mean().reset_index()
    return out[["metric", "value"]]


def write_metrics_csv(path: str | Path, rows: Iterable[Mapping],
                      replace: Mapping[str, Iterable] | None = None) -> pd.DataFrame:
    """Merge tidy rows (``METRICS_COLUMNS``) into ``path`` atomically.

    ``replace``: column -> values; existing rows matching all of them are
    dropped first (a rerun of the same test replaces its rows instead of
    doubling them). The file is rewritten whole through a temporary file, so
    a crash never leaves a torn CSV. Returns the full table.
    """
    path = Path(path)
    new = pd.DataFrame(list(rows))
    lacking = [c for c in METRICS_COLUMNS if c not in new.columns] if len(new) else []
    if lacking:
        raise ValueError(f"{path}: rows lack columns {lacking}")
    new = new.reindex(columns=list(METRICS_COLUMNS))
    if path.exists():
        try:
            old = pd.read_csv(path, keep_default_na=False, na_values=["nan", "NaN"],
                              dtype={"arm": str, "run_id": str})
        except Exception as e:
            raise DataError(path, f"unreadable metrics CSV ({type(e).__name__}: {e})") from None
        if list(old.columns) != list(METRICS_COLUMNS):
            raise DataError(path, f"columns {list(old.columns)} != {list(METRICS_COLUMNS)}")
        if replace:
            hit = pd.Series(True, index=old.index)
            for col, values in replace.items():
                hit &= old[col].isin(list(values))
            old = old[~hit]
        new = pd.concat([old, new], ignore_index=True) if len(new) else old
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, new.to_csv(index=False))
    return new
