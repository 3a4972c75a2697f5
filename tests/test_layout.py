"""The corpus reader and checker on the original layout (real sample + made-up corpora)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from lib import io
from lib.channels import T2A_37
from lib.layout import Corpus, check_corpus

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_t2a_demo_loads(t2a_demo):
    c = Corpus(t2a_demo)
    assert c.speakers[0] == "org" and len(c.speakers) == 14
    for split in ("train", "val_1", "test_a"):
        for utt in c.utterances("org", split):
            labels, aligned = c.labels("org", split, utt)
            assert aligned and labels.shape[1] == 37 and labels.dtype == np.float32
            dur = sf.info(str(c.wav_path("org", split, utt))).duration
            assert abs(labels.shape[0] - round(dur * 25)) <= 1, (split, utt)


def test_t2a_demo_tts_pairs_with_org_by_name(t2a_demo):
    c = Corpus(t2a_demo)
    n = 0
    for clip in c.clips(speakers=c.speakers[1:]):
        labels, aligned = c.labels(clip.speaker, clip.split, clip.utt)
        assert not aligned
        np.testing.assert_array_equal(labels, c.own_labels("org", clip.split, clip.utt))
        n += 1
    assert n == 30  # every TTS wav of the sample (13 voices) has an org partner
    assert c.dataset_json("train_small_1") == c.dataset_json("train_276")[:1]


def test_t2a_demo_check_passes(t2a_demo):
    problems, n = check_corpus(t2a_demo, progress=False)
    assert n == 33 and problems == []


def _make_corpus(root, n=3):
    """A small corpus with CSV labels for org and one TTS speaker without labels."""
    rng = np.random.default_rng(0)
    for split in ("train", "val_1"):
        for i in range(n):
            utt = f"{split}_{i}"
            dur = 1.0 + 0.2 * i
            io.write_audio(root / "wavs/org" / split / f"{utt}.wav", 0.1 * rng.standard_normal(int(dur * 16000)))
            io.write_label_csv(root / "labels/org" / split / f"{utt}.csv", rng.random((round(dur * 25), 37)), T2A_37)
            io.write_audio(root / "wavs/tts1" / split / f"{utt}.wav", 0.1 * rng.standard_normal(int(0.7 * dur * 16000)))
    (root / "dataset_json").mkdir()
    (root / "dataset_json/train_small_2.json").write_text(json.dumps(["train_0", "train_1"]))
    return root


def test_csv_corpus_and_pairing(tmp_path):
    c = Corpus(_make_corpus(tmp_path))
    assert c.speakers == ["org", "tts1"]
    assert c.splits("org") == ["train", "val_1"]
    y, aligned = c.labels("tts1", "val_1", "val_1_2")
    assert not aligned and y.shape == (round(1.4 * 25), 37)
    assert c.dataset_json("train_small_2") == ["train_0", "train_1"]
    m = c.manifest()
    assert list(m.columns[:7]) == ["speaker", "split", "utt", "text", "duration_s", "frames", "source"]
    assert len(m) == 12 and set(m.source) == {"org", "tts"}
    assert check_corpus(tmp_path, progress=False)[0] == []


def _problems(root):
    return [str(p) for p in check_corpus(root, progress=False)[0]]


def test_check_reports_every_problem_at_once(tmp_path):
    root = _make_corpus(tmp_path)
    # 1. unreadable audio  2. empty audio  3. NaN label  4. unknown channel  5. missing channel
    # 6. duration mismatch > 1 s  7. duplicate utterance name across splits  8. TTS clip without partner
    (root / "wavs/org/train/train_0.wav").write_bytes(b"garbage")
    sf.write(root / "wavs/org/train/train_1.wav", np.zeros(0), 16000)
    y = np.random.default_rng(1).random((35, 37))
    y[3, 5] = np.nan
    io.write_audio(root / "wavs/org/val_1/val_1_2.wav", np.zeros(int(1.4 * 16000), np.float32))
    (root / "labels/org/val_1/val_1_2.csv").write_text(
        ",".join(T2A_37) + "\n" + "\n".join(",".join(map(str, r)) for r in y))
    io.write_label_csv(root / "labels/org/val_1/val_1_1.csv", np.zeros((30, 38)), T2A_37 + ("Blink",))
    io.write_label_csv(root / "labels/org/val_1/val_1_0.csv", np.zeros((25, 36)), T2A_37[:36])
    io.write_label_csv(root / "labels/org/train/train_2.csv", np.zeros((80, 37)), T2A_37)  # 3.2 s vs 1.4 s
    io.write_audio(root / "wavs/org/val_1/train_2.wav", np.zeros(16000, np.float32))
    io.write_label_csv(root / "labels/org/val_1/train_2.csv", np.zeros((25, 37)), T2A_37)
    io.write_audio(root / "wavs/tts1/val_1/orphan.wav", np.zeros(16000, np.float32))
    probs = _problems(root)
    expected = [
        ("train/train_0.wav", "unreadable audio"),
        ("train/train_1.wav", "empty audio"),
        ("val_1/val_1_2.csv", "NaN/inf"),
        ("val_1/val_1_1.csv", "unknown channels ['Blink']"),
        ("val_1/val_1_0.csv", "missing channels ['NoseSneerRight']"),
        ("train/train_2.wav", "label duration 3.20 s vs audio 1.40 s"),
        ("val_1/train_2.wav", "duplicate utterance name"),
        ("tts1/val_1/orphan.wav", "no org utterance of the same name"),
    ]
    for where, what in expected:
        assert any(where in p and what in p for p in probs), (where, what, probs)
    assert len(probs) == len(expected)


def test_check_data_cli_exit_codes(tmp_path):
    root = _make_corpus(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "lib", "check-data", "--root_dir", str(root)],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    (root / "wavs/org/train/train_0.wav").write_bytes(b"garbage")
    bad = subprocess.run([sys.executable, "-m", "lib", "check-data", "--root_dir", str(root)],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1
    assert "train_0.wav" in bad.stderr and "1 problem" in bad.stdout


def test_pkl_labels_preferred_names(tmp_path):
    # The original names per-split pickles by stem: val_1 -> val.pkl.
    rng = np.random.default_rng(2)
    io.write_audio(tmp_path / "wavs/org/val_1/a.wav", np.zeros(16000, np.float32))
    io.write_pkl_labels(tmp_path / "wavs/org/val.pkl", {"a": rng.random((25, 37))})
    c = Corpus(tmp_path)
    assert c.labels("org", "val_1", "a")[0].shape == (25, 37)
    with pytest.raises(io.DataError, match="no labels"):
        c.labels("org", "test_a", "zzz")
