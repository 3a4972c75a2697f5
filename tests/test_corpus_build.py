"""The corpus builder on the tiny profile: determinism, frame counts, lip closure,
voice timing, DTW pairing, resume. Built once per session (two real builds)."""
from __future__ import annotations

import filecmp
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.channels import T2A_37
from lib.config import label_frames
from lib.io import audio_duration_s, read_label_csv

CH = {c: i for i, c in enumerate(T2A_37)}


def _installed_voices():
    try:
        from lib.corpus.voices import list_voices

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list_voices()
    except Exception:  # no engine module or engine -> the corpus cannot be built here
        return []


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two real builds of the tiny profile (2 workers and 1 worker) into two folders."""
    if not _installed_voices():
        pytest.skip("no TTS engine installed")
    from lib.corpus.builder import build_corpus
    from lib.corpus.profiles import profile_config

    base = tmp_path_factory.mktemp("corpus")
    a, b = base / "a", base / "b"
    sa = build_corpus(profile_config("tiny", workers=2), a)
    sb = build_corpus(profile_config("tiny", workers=1), b)
    assert not sa["failures"] and not sb["failures"], (sa["failures"], sb["failures"])
    return {"a": a, "b": b, "summary": sa, "manifest": pd.read_csv(a / "manifest.csv")}


def label_file(root: Path, row) -> Path:
    sub = "labels" if row.speaker == "org" else "labels_oracle"
    return root / sub / row.speaker / row.split / f"{row.utt}.csv"


def read_phones(root: Path, row) -> list[tuple[str, float, float]]:
    df = pd.read_csv(root / "phones" / row.speaker / row.split / f"{row.utt}.csv")
    return list(df.itertuples(index=False, name=None))


def test_layout_and_manifest(built):
    m, root = built["manifest"], built["a"]
    assert list(m.columns) == ["speaker", "split", "utt", "text", "duration_s", "frames", "source", "engine",
                               "voice", "held_out"]
    org = m[m.speaker == "org"]
    assert set(org.split) == {"train", "val_1", "test_a"} and (org.source == "org").all()
    tts = m[m.source == "tts"]
    assert len(tts) > 0
    for row in tts.itertuples():
        # TTS clips are paired with org's labels by name: no labels/ of their own
        assert not (root / "labels" / row.speaker).exists()
        assert (root / "labels" / "org" / row.split / f"{row.utt}.csv").exists()
    train = sorted(org[org.split == "train"].utt)
    subset_all = json.loads((root / "dataset_json" / "train_all.json").read_text())
    assert sorted(subset_all) == train
    for n in (1, 5):
        assert json.loads((root / "dataset_json" / f"train_small_{n}.json").read_text()) == subset_all[:n]


def test_same_seed_gives_identical_files(built):
    a, b = built["a"], built["b"]
    assert filecmp.cmp(a / "manifest.csv", b / "manifest.csv", shallow=False)
    for sub in ("labels", "labels_oracle", "phones", "wavs", "dataset_json"):
        files = sorted(p.relative_to(a) for p in (a / sub).rglob("*") if p.is_file())
        assert files, sub
        assert files == sorted(p.relative_to(b) for p in (b / sub).rglob("*") if p.is_file())
        _, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
        assert not mismatch and not errors, (sub, mismatch[:3], errors[:3])


def test_label_frames_follow_duration(built):
    root = built["a"]
    for row in built["manifest"].itertuples():
        dur = audio_duration_s(root / "wavs" / row.speaker / row.split / f"{row.utt}.wav")
        labels, names = read_label_csv(label_file(root, row))
        assert names == T2A_37
        assert labels.shape[0] == label_frames(dur) == row.frames
        phones = read_phones(root, row)
        assert phones[0][1] == 0 and abs(phones[-1][2] - dur) < 1e-4


def test_lips_close_at_bilabials(built):
    from lib.corpus.rig import RigStyle

    root, lead = built["a"], RigStyle().lead_s
    org = built["manifest"][built["manifest"].speaker == "org"]
    n = 0
    for row in org.itertuples():
        labels, _ = read_label_csv(label_file(root, row))
        for p, s, e in read_phones(root, row):
            if p in ("P", "B", "M"):
                # frame centred nearest the closure on the face's time line (which may fall
                # before frame 0 for a clip-initial bilabial: then frame 0 is the nearest)
                k = min(max(int(round((0.5 * (s + e) - lead) * 25 - 0.5)), 0), len(labels) - 1)
                closed = max(labels[k, CH["MouthClose"]], labels[k, [CH["MouthPressLeft"], CH["MouthPressRight"]]].mean())
                assert closed > 0.25, (row.utt, p, s, labels[k, CH["MouthClose"]])
                assert labels[k, CH["JawOpen"]] < 0.25, (row.utt, p, s)
                n += 1
    assert n >= 5


def test_voices_differ_in_timing(built):
    m = built["manifest"]
    for (split, utt), g in m.groupby(["split", "utt"]):
        assert g.speaker.nunique() >= 2
        assert g.duration_s.nunique() == len(g), (split, utt, g.duration_s.tolist())


def dtw_mean_cost(x: np.ndarray, y: np.ndarray) -> float:
    """Brute-force DTW (steps (1,0), (0,1), (1,1)) of squared-Euclidean frame costs,
    divided by the length of the optimal path."""
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)  # (n, m)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = [(acc[i - 1, j - 1], steps[i - 1, j - 1]), (acc[i - 1, j], steps[i - 1, j]),
                    (acc[i, j - 1], steps[i, j - 1])]
            best = min(prev, key=lambda t: t[0])
            acc[i, j] = cost[i - 1, j - 1] + best[0]
            steps[i, j] = best[1] + 1
    return float(acc[n, m] / steps[n, m])


def test_oracle_is_a_time_warp_of_org(built):
    """A TTS clip's oracle labels align with org's labels of the same name under DTW far
    better than frame by frame after stretching to the same length, and better than
    with org's labels of another sentence."""
    root, m = built["a"], built["manifest"]
    org_utts = sorted(m[m.speaker == "org"].utt)
    ratios = []
    for row in m[m.source == "tts"].itertuples():
        oracle, _ = read_label_csv(label_file(root, row))
        org, _ = read_label_csv(root / "labels" / "org" / row.split / f"{row.utt}.csv")
        # linear length matching: resample the oracle to org's frame count
        pos = np.linspace(0, len(oracle) - 1, len(org))
        stretched = np.stack([np.interp(pos, np.arange(len(oracle)), oracle[:, c])
                              for c in range(oracle.shape[1])], 1)  # (org frames, 37)
        frame_cost = float(((stretched - org) ** 2).sum(1).mean())
        matched = dtw_mean_cost(oracle, org)
        ratios.append(matched / frame_cost)
        other = org_utts[(org_utts.index(row.utt) + 1) % len(org_utts)]
        other_split = m[(m.speaker == "org") & (m.utt == other)].split.iloc[0]
        wrong, _ = read_label_csv(root / "labels" / "org" / other_split / f"{other}.csv")
        assert matched < dtw_mean_cost(oracle, wrong), (row.speaker, row.utt, other)
    assert np.median(ratios) < 0.6, ratios
    assert max(ratios) < 0.9, ratios


def test_resume_rebuilds_only_missing_clip(built):
    from lib.corpus.builder import build_corpus
    from lib.corpus.profiles import profile_config

    a, b = built["a"], built["b"]
    row = built["manifest"][built["manifest"].speaker == "org"].iloc[-1]
    rel = [Path("wavs/org") / row.split / f"{row.utt}.wav", Path("labels/org") / row.split / f"{row.utt}.csv",
           Path("phones/org") / row.split / f"{row.utt}.csv"]
    for r in rel:
        (b / r).unlink()
    shutil.rmtree(b / "dataset_json")
    (b / "manifest.csv").unlink()
    summary = build_corpus(profile_config("tiny", workers=2), b)
    assert summary["n_built"] == 1 and not summary["failures"]
    for r in rel + [Path("manifest.csv"), Path("dataset_json/train_all.json")]:
        assert filecmp.cmp(a / r, b / r, shallow=False), r
