"""import-videos + augment: transcripts, splits, and five GRID clips -> a corpus that
check-data passes and train runs on. The GRID/MediaPipe parts skip cleanly without
../shared/grid_s1, mediapipe (and its model), ffmpeg or the flite TTS voices."""
from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lib.io import DataError
from lib.ingest.import_videos import ImportConfig, assign_splits, read_grid_align, read_transcripts

GRID = Path(__file__).resolve().parent.parent.parent / "shared" / "grid_s1"
FIVE = ["bbaf3s", "bbaf5a", "bbal6n", "bbas2p", "bbaszn"]


# ----------------------------------------------------------------------------- transcripts, splits
def test_grid_align_gives_the_words_without_pauses_and_names_bad_lines(tmp_path):
    p = tmp_path / "x.align"
    p.write_text("0 17750 sil\n17750 22500 bin\n22500 23000 sp\n23000 27000 blue\n27000 74500 sil\n")
    assert read_grid_align(p) == "bin blue"
    p.write_text("0 17750 sil\n17750 bin\n")
    with pytest.raises(DataError, match=r"x\.align.*line 2"):
        read_grid_align(p)


def test_transcripts_from_csv_or_txt_list_missing_and_empty_ones(tmp_path):
    (tmp_path / "t.csv").write_text('utt,text\na,"Hello  there"\nb,\n')
    texts, problems = read_transcripts(tmp_path / "t.csv", ["a", "b", "c"])
    assert texts == {"a": "Hello there"}
    assert [u for u, _ in problems] == ["b", "c"]
    d = tmp_path / "txt"
    d.mkdir()
    (d / "a.txt").write_text("one\ntwo\n")
    texts, problems = read_transcripts(d, ["a", "z"])
    assert texts == {"a": "one two"} and problems[0][0] == "z" and "z.txt" in problems[0][1]


def test_seeded_split_is_disjoint_repeatable_and_sized(tmp_path):
    utts = [f"u{i:03d}" for i in range(50)]
    cfg = ImportConfig(videos_dir="v", transcripts="t", seed=3, n_val=5, n_test=7)
    a, b = assign_splits(utts, cfg), assign_splits(list(reversed(utts)), cfg)
    assert a == b and set(a) == set(utts)
    assert [sum(s == k for s in a.values()) for k in ("train", "val_1", "test_a")] == [38, 5, 7]
    assert assign_splits(utts, ImportConfig("v", "t", seed=4, n_val=5, n_test=7)) != a
    (tmp_path / "test.json").write_text(json.dumps(["u001", "u002"]))
    (tmp_path / "train.txt").write_text("u003\nu004\n")
    given = ImportConfig("v", "t", split_lists=(("test_a", str(tmp_path / "test.json")),
                                                ("train", str(tmp_path / "train.txt"))))
    assert assign_splits(utts, given) == {"u001": "test_a", "u002": "test_a", "u003": "train", "u004": "train"}
    (tmp_path / "bad.txt").write_text("nope\n")
    with pytest.raises(DataError, match=r"bad\.txt.*'nope'"):
        assign_splits(utts, ImportConfig("v", "t", split_lists=(("val_1", str(tmp_path / "bad.txt")),)))


def _need_flite() -> None:
    import warnings

    from lib.corpus.voices import list_voices, parse_voice

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # list_voices warns about each missing voice
        if len(list_voices([parse_voice("flite:slt"), parse_voice("flite:kal16")])) < 2:
            pytest.skip("flite voices slt/kal16 not installed")


def test_augment_names_a_text_it_cannot_use_and_speaks_the_rest(tmp_path, capsys):
    _need_flite()
    from lib.cli import main

    (tmp_path / "wavs" / "org").mkdir(parents=True)
    (tmp_path / "manifest.csv").write_text("speaker,split,utt,text\norg,train,a,hello there\norg,train,b,\n"
                                           "org,test_a,c,good night\n")
    args = ["augment", "--root_dir", str(tmp_path), "--voices", "flite:slt", "--held_out_voices", "flite:kal16",
            "--workers", "1", "--no_progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "org/train/b" in err and "no text" in err
    assert (tmp_path / "wavs" / "flite_slt" / "train" / "a.wav").is_file()
    assert (tmp_path / "wavs" / "flite_slt" / "test_a" / "c.wav").is_file()
    assert sorted(p.name for p in (tmp_path / "wavs" / "flite_kal16").rglob("*.wav")) == ["c.wav"]  # test_a only


# ----------------------------------------------------------------------------- five GRID clips end to end
@pytest.fixture(scope="module")
def grid5(tmp_path_factory) -> Path:
    """import-videos (2 worker processes) + augment (flite, one held-out voice) on five GRID clips."""
    if not (GRID / "video").is_dir():
        pytest.skip(f"{GRID} not present")
    if importlib.util.find_spec("mediapipe") is None or shutil.which("ffmpeg") is None:
        pytest.skip("mediapipe or ffmpeg not installed")
    from lib.ingest.video import find_model

    try:
        find_model()
    except FileNotFoundError:
        pytest.skip("no FaceLandmarker model file")
    _need_flite()
    from lib.cli import main

    vids = tmp_path_factory.mktemp("videos")
    for u in FIVE:
        (vids / f"{u}.mp4").symlink_to(GRID / "video" / f"{u}.mp4")
    root = tmp_path_factory.mktemp("corpus")
    assert main(["import-videos", "--videos", str(vids), "--transcripts", str(GRID / "align"), "--root_dir",
                 str(root), "--n_val", "1", "--n_test", "1", "--workers", "2", "--no_progress"]) == 0
    assert main(["augment", "--root_dir", str(root), "--voices", "flite:slt", "--held_out_voices", "flite:kal16",
                 "--workers", "1", "--no_progress"]) == 0
    return root


def _manifest(root: Path) -> list[dict]:
    return list(csv.DictReader((root / "manifest.csv").open()))


def test_imported_corpus_has_org_text_splits_subsets_and_tts_pairs_by_name(grid5):
    rows = _manifest(grid5)
    org = {r["utt"]: r for r in rows if r["speaker"] == "org"}
    assert sorted(org) == FIVE
    # Text: the .align words without sil/sp, read here independently of the importer.
    for u, r in org.items():
        words = [ln.split()[2] for ln in (GRID / "align" / f"{u}.align").read_text().splitlines() if ln.strip()]
        assert r["text"] == " ".join(w for w in words if w not in ("sil", "sp"))
        assert (grid5 / "labels" / "org" / r["split"] / f"{u}.csv").is_file()
    assert sorted(r["split"] for r in org.values()) == ["test_a", "train", "train", "train", "val_1"]
    train = sorted(u for u, r in org.items() if r["split"] == "train")
    assert sorted(json.loads((grid5 / "dataset_json" / "train_all.json").read_text())) == train
    assert json.loads((grid5 / "dataset_json" / "train_small_1.json").read_text())[0] in train
    assert json.loads((grid5 / "face.json").read_text()) == {"face_fps": 25, "channels": "arkit52"}
    tts = [r for r in rows if r["speaker"] == "flite_slt"]
    assert sorted((r["split"], r["utt"]) for r in tts) == sorted((r["split"], u) for u, r in org.items())
    held = [r for r in rows if r["speaker"] == "flite_kal16"]
    assert [(r["split"], r["held_out"]) for r in held] == [("test_a", "1")]
    for r in tts + held:
        assert (grid5 / "wavs" / r["speaker"] / r["split"] / f"{r['utt']}.wav").is_file()


def test_augment_rerun_makes_nothing_new(grid5, capsys):
    from lib.cli import main

    assert main(["augment", "--root_dir", str(grid5), "--voices", "flite:slt", "--held_out_voices", "flite:kal16",
                 "--workers", "1", "--no_progress"]) == 0
    assert "0 clips synthesised, 6 already there" in capsys.readouterr().out


def test_check_data_passes_and_train_runs_on_the_real_corpus(grid5, tmp_path):
    from lib.cli import main
    from lib.features.extract import extract_corpus

    assert main(["check-data", "--root_dir", str(grid5)]) == 0
    report = extract_corpus(grid5, "mfcc", workers=1, progress=False)
    assert not report.failed
    out = tmp_path / "runs"
    assert main(["train", "--root_dir", str(grid5), "--output_path", str(out), "--name", "g", "--train_speaker_list",
                 "all", "--loss_type", "hybrid", "--max_steps", "2", "--train_batch_size", "4", "--threads", "1",
                 "--no_progress", "--set", "model.d_model=16", "--set", "model.ff_dim=32", "--set",
                 "model.n_heads=2"]) == 0
    cfg = json.loads((out / "g" / "config.json").read_text())
    assert cfg["model"]["n_channels"] == 52
    assert (out / "g" / "best.pt").is_file()
    import pandas as pd

    curves = pd.read_csv(out / "g" / "curves.csv")
    assert len(curves) and np.isfinite(curves.select_dtypes("number").to_numpy()).all()


# ----------------------------------------------------------------------------- the batch runner
def _exit_on(name: str) -> str:
    """Pool job for the test below: the worker running job "b" dies without a word."""
    import os

    if name == "b":
        os._exit(3)
    return name.upper()


def test_a_dead_worker_is_a_named_failure_not_a_wait():
    from lib.ingest.batch import run_jobs

    res = run_jobs(_exit_on, [(n, (n,)) for n in "abc"], workers=2, progress=False)
    failed = dict(res.failures)
    assert "b" in failed and "worker process died" in failed["b"]
    assert set(res.values) | set(failed) == {"a", "b", "c"}
    assert all(res.values[k] == k.upper() for k in res.values)
