"""Metrics against straightforward re-implementations, on the real T2A demo labels."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib import metrics
from lib.channels import MOUTH_CHANNELS, T2A_37
from lib.io import read_pkl_labels, write_label_csv


@pytest.fixture(scope="module")
def labels(t2a_demo):
    org = t2a_demo / "wavs" / "org"
    # float64 so the plain-loop references accumulate without float32 rounding
    return {s: {k: v.astype(np.float64) for k, v in read_pkl_labels(org / f"{s}.pkl").items()}
            for s in ("train", "val", "test")}


def pairs(labels):
    """(pred, gt) pairs of different lengths, both ways round (pad and truncate)."""
    tr, va, te = labels["train"], labels["val"], labels["test"]
    return [(va["a10"], tr["a10"]), (tr["a10"], va["a10"]), (te["A1"], tr["a8"]), (tr["a8"], te["A1"])]


def loop_mse(pred, gt):
    """The original rule, spelled out: zero-pad / truncate pred to len(gt), mean over frames x channels."""
    total = 0.0
    for t in range(len(gt)):
        for c in range(gt.shape[1]):
            p = pred[t, c] if t < len(pred) else 0.0
            total += (p - gt[t, c]) ** 2
    return total / (len(gt) * gt.shape[1])


def loop_dtw(pred, gt):
    """Brute-force full DTW (steps diag/up/left), frame distance mean_c squared error."""
    n, m = len(gt), len(pred)
    R = [[math.inf] * (m + 1) for _ in range(n + 1)]
    R[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d = float(np.mean((gt[i - 1] - pred[j - 1]) ** 2))
            R[i][j] = d + min(R[i - 1][j - 1], R[i - 1][j], R[i][j - 1])
    return R[n][m]


def test_mse_score_matches_loop(labels):
    for pred, gt in pairs(labels):
        assert len(pred) != len(gt)
        assert metrics.mse_score(pred, gt) == pytest.approx(loop_mse(pred, gt), rel=1e-12)
    a = labels["train"]["a8"]
    assert metrics.mse_score(a, a) == 0.0


def test_dtw_score_is_documented_fastdtw_call(labels):
    from fastdtw import fastdtw

    for pred, gt in pairs(labels)[:2]:
        ref, _ = fastdtw(gt, pred, radius=1, dist=lambda a, b: np.mean((a - b) ** 2))
        assert metrics.dtw_score(pred, gt) == pytest.approx(ref, rel=1e-12)


def test_dtw_score_equals_original_sklearn_call(labels):
    """The original evaluate_score.py: fastdtw(true, pred, dist=sklearn mean_squared_error)."""
    skm = pytest.importorskip("sklearn.metrics")
    from fastdtw import fastdtw

    pred, gt = pairs(labels)[0]
    pred, gt = pred[:60], gt[:45]  # sklearn's per-call input checks are slow; a slice suffices
    ref, _ = fastdtw(gt, pred, dist=skm.mean_squared_error)
    assert metrics.dtw_score(pred, gt) == pytest.approx(ref, rel=1e-12)


def test_exact_dtw_brute_force_and_bound(labels):
    for pred, gt in pairs(labels)[1:3]:
        exact = metrics.exact_dtw(pred, gt)
        assert exact == pytest.approx(loop_dtw(pred, gt), rel=1e-9)
        assert exact <= metrics.dtw_score(pred, gt) + 1e-12
    a = labels["train"]["a8"]
    assert metrics.exact_dtw(a, a) == pytest.approx(0.0, abs=1e-12)
    # a time-stretched copy (every frame twice) aligns at zero cost
    assert metrics.exact_dtw(np.repeat(a, 2, axis=0), a) == pytest.approx(0.0, abs=1e-12)


def test_lip_metrics(labels):
    mouth = [T2A_37.index(c) for c in MOUTH_CHANNELS]
    jaw = T2A_37.index("JawOpen")
    for pred, gt in pairs(labels):
        per_frame = []
        for t in range(len(gt)):
            p = pred[t] if t < len(pred) else np.zeros(gt.shape[1])
            per_frame.append(max(abs(p[c] - gt[t, c]) for c in mouth))
        assert metrics.lip_max_error(pred, gt, T2A_37) == pytest.approx(np.mean(per_frame), rel=1e-12)
        k = min(len(pred), len(gt))
        r = np.corrcoef(pred[:k, jaw], gt[:k, jaw])[0, 1]
        assert metrics.jaw_open_corr(pred, gt, T2A_37) == pytest.approx(r, rel=1e-9)


def test_score_and_summarize_and_files(labels, tmp_path):
    gts = {"a10": labels["val"]["a10"], "A1": labels["test"]["A1"]}
    preds = {"a10": labels["train"]["a10"], "A1": labels["train"]["a8"]}
    df = metrics.score_utterances(preds, gts, T2A_37, progress=False)
    assert list(df.columns) == ["utt", "metric", "value"]
    assert set(df.metric) == {"mse_score", "dtw_score", "exact_dtw", "lip_max_error", "jaw_open_corr"}
    summ = metrics.summarize(df).set_index("metric")["value"]
    want = np.mean([loop_mse(preds[u], gts[u]) for u in gts])
    assert summ["mse_score"] == pytest.approx(want, rel=1e-12)
    # From prediction CSVs: a missing file is listed, the others scored.
    write_label_csv(tmp_path / "a10.csv", preds["a10"], T2A_37)
    df2 = metrics.score_files(tmp_path, gts, T2A_37, progress=False)
    assert set(df2.utt) == {"a10"} and len(df2.attrs["bad_files"]) == 1
    got = df2.set_index("metric")["value"]["mse_score"]
    assert got == pytest.approx(loop_mse(preds["a10"].astype(np.float32), gts["a10"]), rel=1e-5)


def test_write_metrics_csv_appends_and_replaces(tmp_path):
    path = tmp_path / "run" / "metrics.csv"
    row = dict(run_id="r1", arm="baseline", seed=0, split="test_a", speaker="org",
               reference="labels", utt="a1", metric="mse_score", value=0.5)
    metrics.write_metrics_csv(path, [row])
    metrics.write_metrics_csv(path, [{**row, "speaker": "tts1", "value": 0.25}])
    df = pd.read_csv(path)
    assert list(df.columns) == list(metrics.METRICS_COLUMNS)
    assert df.speaker.tolist() == ["org", "tts1"] and df.value.tolist() == [0.5, 0.25]
    # A rerun of org's test replaces org's rows only.
    metrics.write_metrics_csv(path, [{**row, "value": 0.125}], replace={"split": ["test_a"], "speaker": ["org"]})
    df = pd.read_csv(path)
    assert sorted(zip(df.speaker, df.value)) == [("org", 0.125), ("tts1", 0.25)]
    assert [p.name for p in path.parent.iterdir()] == ["metrics.csv"]  # no temp files left
    with pytest.raises(ValueError):
        metrics.write_metrics_csv(path, [{"metric": "x", "value": 1.0}])
