"""`python -m lib import-videos`: a folder of videos + transcripts -> a corpus in the layout.

    python -m lib import-videos --videos DIR --transcripts DIR_OR_CSV --root_dir OUT
        [--n_val N --n_test N --seed S | --split_lists train=F val_1=F test_a=F]

Every video becomes the recorded speaker's clip: ``wavs/org/<split>/<utt>.wav``
and ``labels/org/<split>/<utt>.csv`` (MediaPipe ARKit estimates, see
:mod:`lib.ingest.video`), named by the video's stem. Transcripts come from a
folder with ``<utt>.align`` (GRID word alignments: ``start end word`` lines,
``sil``/``sp`` skipped) or ``<utt>.txt`` per clip, or a CSV with ``utt,text``
columns. Also written: ``face.json`` (ARKit 52 at ``--face_fps``),
``manifest.csv`` (the built-in corpus's columns; ``text`` filled) and
``dataset_json/`` subsets as the built-in corpus has them (``train_small_N``
prefixes of one seeded shuffle of the train pool, ``train_all``, ``val_1``,
``test_a``). Resumable: labelled clips are skipped; a rerun with other split
settings is refused. Bad clips are listed, left out, and make the exit status 1.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io as _io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import DEFAULT_SPLITS, ORG_SPEAKER, label_frames, save_config
from ..io import DataError, atomic_write_text, audio_duration_s

GRID_SILENCES = frozenset({"sil", "sp"})  # GRID's pause tokens, not words


@dataclass(frozen=True)
class ImportConfig:
    """What was imported and how it was split (saved as ``import_config.json``)."""

    videos_dir: str
    transcripts: str
    seed: int = 0
    n_val: int | None = None  # None: 10% of the clips (at least 1 when there are 3 or more)
    n_test: int | None = None
    split_lists: tuple[tuple[str, str], ...] = ()  # ((split, path), ...): given lists instead
    max_clips: int | None = None  # only the first N videos by name (a small trial corpus)
    face_fps: int | None = None  # None: <root>/face.json, else 25
    channels: str | None = None  # None: <root>/face.json, else arkit52; or t2a37, or comma-separated names
    max_gap_s: float = 0.2


# ----------------------------------------------------------------------------- transcripts
def read_grid_align(path: str | Path) -> str:
    """The sentence of a GRID ``.align`` file: its words in order, pauses skipped.

    Lines are ``start end word`` with times in 1/25000 s; a malformed line or a
    file with no words is a DataError naming the file and line.
    """
    path = Path(path)
    words = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()) or int(parts[1]) < int(parts[0]):
            raise DataError(path, f"line {k}: expected 'start end word' (integer times), got {line!r}")
        if parts[2].lower() not in GRID_SILENCES:
            words.append(parts[2])
    if not words:
        raise DataError(path, "no words (only silence)")
    return " ".join(words)


def read_transcript_csv(path: str | Path) -> dict[str, str]:
    """``utt,text`` CSV (header row naming both columns; other columns ignored)."""
    path = Path(path)
    try:
        rows = list(csv.DictReader(_io.StringIO(path.read_text())))
    except (OSError, csv.Error) as e:
        raise DataError(path, f"unreadable transcript CSV ({e})") from None
    if not rows or not {"utt", "text"} <= set(rows[0]):
        raise DataError(path, "transcript CSV needs a header with columns 'utt' and 'text'")
    out: dict[str, str] = {}
    for k, r in enumerate(rows, 2):
        utt = (r["utt"] or "").strip()
        if utt in out:
            raise DataError(path, f"line {k}: utterance {utt!r} appears twice")
        out[utt] = " ".join((r["text"] or "").split())
    return out


def read_transcripts(source: str | Path, utts: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Text of each utterance in ``utts``, from a CSV or a folder of ``.align`` / ``.txt`` files.

    Returns (texts, problems): problems are (utt, message) for clips without usable text.
    """
    source = Path(source)
    texts: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    if source.is_file():
        table = read_transcript_csv(source)
        for u in utts:
            if u not in table:
                problems.append((u, f"{source}: no row for this utterance"))
            elif not table[u]:
                problems.append((u, f"{source}: empty text"))
            else:
                texts[u] = table[u]
        return texts, problems
    if not source.is_dir():
        raise DataError(source, "transcripts must be a folder (.align / .txt per clip) or a CSV file")
    for u in utts:
        align, txt = source / f"{u}.align", source / f"{u}.txt"
        try:
            if align.is_file():
                texts[u] = read_grid_align(align)
            elif txt.is_file():
                text = " ".join(txt.read_text().split())
                if not text:
                    raise DataError(txt, "empty transcript")
                texts[u] = text
            else:
                problems.append((u, f"no transcript ({align} or {txt})"))
        except (DataError, OSError, UnicodeDecodeError) as e:
            problems.append((u, str(e)))
    return texts, problems


# ----------------------------------------------------------------------------- splits
def _read_name_list(path: Path) -> list[str]:
    """A JSON list of names, or one name per line."""
    text = path.read_text()
    if text.lstrip().startswith("["):
        names = json.loads(text)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(path, "expected a JSON list of utterance names")
        return names
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def assign_splits(utts: list[str], cfg: ImportConfig) -> dict[str, str]:
    """utt -> split. Given lists: as listed (names not listed are left out; a listed name
    without a video, or in two lists, is an error). Else a seeded shuffle: the first
    ``n_test`` go to test_a, the next ``n_val`` to val_1, the rest to train."""
    if cfg.split_lists:
        have, out = set(utts), {}
        for split, path in cfg.split_lists:
            for name in _read_name_list(Path(path)):
                if name not in have:
                    raise DataError(path, f"lists {name!r}, which has no video")
                if name in out:
                    raise DataError(path, f"{name!r} is also in split {out[name]}")
                out[name] = split
        return out
    n = len(utts)
    default = max(1, round(0.1 * n)) if n >= 3 else 0
    n_val = default if cfg.n_val is None else cfg.n_val
    n_test = default if cfg.n_test is None else cfg.n_test
    if n_val + n_test >= n:
        raise ValueError(f"{n} clips cannot hold {n_val} val + {n_test} test clips and a train pool")
    order = [sorted(utts)[i] for i in np.random.default_rng(cfg.seed).permutation(n)]
    split_of = {u: "test_a" for u in order[:n_test]}
    split_of.update({u: "val_1" for u in order[n_test:n_test + n_val]})
    split_of.update({u: "train" for u in order[n_test + n_val:]})
    return split_of


# ----------------------------------------------------------------------------- corpus files
def write_org_manifest(root: Path, rows: list[dict]) -> None:
    """manifest.csv with the org rows replaced by ``rows``; rows of other speakers (TTS
    voices added by ``augment``) are kept, so re-importing does not forget them."""
    from ..corpus.builder import MANIFEST_COLUMNS

    path = root / "manifest.csv"
    keep = []
    if path.is_file():
        keep = [r for r in csv.DictReader(_io.StringIO(path.read_text())) if r.get("speaker") != ORG_SPEAKER]
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows + keep)
    atomic_write_text(path, buf.getvalue())


def write_subsets(root: Path, split_of: dict[str, str], seed: int) -> list[str]:
    """dataset_json as the built-in corpus has them (same names, same construction)."""
    from ..corpus.builder import SUBSET_SIZES

    by_split = {s: sorted(u for u, sp in split_of.items() if sp == s) for s in DEFAULT_SPLITS}
    pool = by_split["train"]
    order = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    written = {f"train_small_{n}": order[:n] for n in SUBSET_SIZES if n <= len(pool)}
    written.update({"train_all": order, "val_1": by_split["val_1"], "test_a": by_split["test_a"]})
    for name, utts in written.items():
        atomic_write_text(root / "dataset_json" / f"{name}.json", json.dumps(utts) + "\n")
    return sorted(written)


def _check_same_import(cfg: ImportConfig, root: Path) -> None:
    """Refuse to resume into a root imported with other settings (clips would sit in stale splits)."""
    path = root / "import_config.json"
    if not path.is_file():
        return
    old, new = json.loads(path.read_text()), json.loads(json.dumps(dataclasses.asdict(cfg)))
    diff = sorted(k for k in new if k != "max_gap_s" and old.get(k) != new[k])
    if diff:
        raise ValueError(f"{root} was imported with other settings (fields {diff}); use another --root_dir")


# ----------------------------------------------------------------------------- the import
def import_videos(cfg: ImportConfig, root: str | Path, model_path: str | None = None, workers: int = 2,
                  progress: bool = True) -> dict:
    """Build (or finish) the corpus of ``cfg`` under ``root``; see the module docstring.

    Returns {root, counts (split -> clips), n_labelled, n_skipped, failures [(utt, message)], subsets}.
    """
    from ..channels import FaceFormat
    from .video import LabelVideoConfig
    from .video_cli import label_videos, list_videos, resolve_face_format

    root = Path(root)
    listed = list_videos(cfg.videos_dir)[: cfg.max_clips]
    videos = {v.stem: v for v in listed}
    if len(videos) != len(listed):
        raise DataError(cfg.videos_dir, "several videos share a name stem (utterances are named by stem)")
    fmt: FaceFormat = resolve_face_format(root, cfg.channels, cfg.face_fps)
    _check_same_import(cfg, root)
    split_of = assign_splits(sorted(videos), cfg)
    texts, failures = read_transcripts(cfg.transcripts, sorted(split_of))
    root.mkdir(parents=True, exist_ok=True)
    fmt.save(root)
    save_config(cfg, root / "import_config.json")
    label_cfg = LabelVideoConfig(face_fps=fmt.face_fps, channels=fmt.channels, model_path=model_path,
                                 max_gap_s=cfg.max_gap_s)
    jobs = [(u, videos[u], root / "wavs" / ORG_SPEAKER / s / f"{u}.wav",
             root / "labels" / ORG_SPEAKER / s / f"{u}.csv") for u, s in sorted(split_of.items()) if u in texts]
    result = label_videos(jobs, label_cfg, workers=workers, progress=progress)
    failures += result.failures
    good = [(u, w) for u, _, w, _ in jobs if u in result.values]
    rows = []
    for u, wav in good:
        dur = audio_duration_s(wav)
        rows.append({"speaker": ORG_SPEAKER, "split": split_of[u], "utt": u, "text": texts[u],
                     "duration_s": f"{dur:.5f}", "frames": label_frames(dur, fmt.face_fps), "source": "org",
                     "engine": "video", "voice": videos[u].name, "held_out": 0})
    rows.sort(key=lambda r: (DEFAULT_SPLITS.index(r["split"]) if r["split"] in DEFAULT_SPLITS else 99,
                             r["split"], r["utt"]))
    write_org_manifest(root, rows)
    good_split = {u: split_of[u] for u, _ in good}
    subsets = write_subsets(root, good_split, cfg.seed)
    counts = {s: sum(1 for v in good_split.values() if v == s) for s in DEFAULT_SPLITS}
    skipped = sum(1 for v in result.values.values() if v.get("skipped"))
    order = {u: i for i, u in enumerate(sorted(videos))}
    return {"root": str(root), "counts": counts, "n_labelled": len(result.values) - skipped, "n_skipped": skipped,
            "failures": sorted(failures, key=lambda f: order.get(f[0], -1)), "subsets": subsets,
            "left_out": len(videos) - len(split_of)}


def cli_main(argv: list[str]) -> int:
    from .video_cli import add_label_options

    ap = argparse.ArgumentParser(prog="python -m lib import-videos", description=__doc__.split("\n\n")[0],
                                 epilog="The labels are MediaPipe estimates from video, not motion capture.")
    ap.add_argument("--videos", required=True, help="folder of videos (utterance = file stem)")
    ap.add_argument("--transcripts", required=True, help="folder of <utt>.align / <utt>.txt, or a utt,text CSV")
    ap.add_argument("--root_dir", required=True, help="corpus folder to write")
    ap.add_argument("--seed", type=int, default=0, help="seed of the split and of the train_small_N order")
    ap.add_argument("--n_val", type=int, default=None, help="val_1 clips (default 10%%)")
    ap.add_argument("--n_test", type=int, default=None, help="test_a clips (default 10%%)")
    ap.add_argument("--channels", default=None,
                    help="label columns: arkit52 (default), t2a37 (no eyes/tongue), or comma-separated ARKit names")
    ap.add_argument("--max_clips", type=int, default=None, help="only the first N videos by name")
    ap.add_argument("--split_lists", nargs="+", default=[], metavar="SPLIT=FILE",
                    help="given lists instead of a seeded split (JSON list or one name per line)")
    add_label_options(ap)
    a = ap.parse_args(argv)
    try:
        lists = tuple(tuple(s.split("=", 1)) for s in a.split_lists)
        if any(len(p) != 2 or not p[0] for p in lists):
            raise ValueError(f"--split_lists wants SPLIT=FILE, got {a.split_lists}")
        lists = tuple((s, str(Path(f).resolve())) for s, f in lists)
        cfg = ImportConfig(videos_dir=str(Path(a.videos).resolve()), transcripts=str(Path(a.transcripts).resolve()),
                           seed=a.seed, n_val=a.n_val, n_test=a.n_test, split_lists=lists, max_clips=a.max_clips,
                           face_fps=a.face_fps, channels=a.channels, max_gap_s=a.max_gap_s)
        summary = import_videos(cfg, a.root_dir, model_path=a.model, workers=a.workers,
                                progress=not a.no_progress)
    except (DataError, ValueError, FileNotFoundError) as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 2
    print(f"{summary['root']}: {summary['counts']} org clips; {summary['n_labelled']} labelled now, "
          f"{summary['n_skipped']} already done; subsets {summary['subsets']}")
    if summary["left_out"]:
        print(f"{summary['left_out']} videos are in none of the given split lists (left out)")
    for utt, msg in summary["failures"]:
        print(f"FAILED {utt}: {msg}", file=sys.stderr)
    return 1 if summary["failures"] else 0
