"""The oracle view of a built-in corpus: TTS clips labelled with their own aligned labels.

The upper-bound arm of the data study trains each TTS clip against its oracle
(time-aligned) labels, as if every voice had been captured with its own face.
Rather than teach the data pipeline a third kind of pair, we lay out a second
corpus root in the original layout beside the first, made of symbolic links:

    <root>_oracle/wavs, wav_features, dataset_json, manifest.csv, labels_oracle, face.json -> <root>/...
    <root>_oracle/labels/org        -> <root>/labels/org
    <root>_oracle/labels/<voice>   -> <root>/labels_oracle/<voice>

so every TTS clip there has labels of its own (an aligned pair) and org is
unchanged. Nothing is copied; the view is rebuilt when a link is missing.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..io import DataError

SHARED_ENTRIES = ("wavs", "wav_features", "dataset_json", "manifest.csv", "labels_oracle", "corpus_config.json",
                  "face.json")  # the view has the corpus's face format


def oracle_view_path(root: str | Path) -> Path:
    root = Path(root).resolve()
    return root.parent / f"{root.name}_oracle"


def _link(target: Path, link: Path) -> None:
    """Make ``link`` point at ``target`` (replacing a stale link atomically)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def oracle_view(root: str | Path) -> Path:
    """Create (or refresh) the oracle view of ``root``; returns its path.

    Raises DataError when the corpus has no oracle labels (only the built-in
    corpus has them).
    """
    root = Path(root).resolve()
    oracle = root / "labels_oracle"
    if not oracle.is_dir():
        raise DataError(oracle, "no oracle labels: the oracle arm needs the built-in corpus")
    view = oracle_view_path(root)
    (view / "labels").mkdir(parents=True, exist_ok=True)
    for name in SHARED_ENTRIES:
        if (root / name).exists():
            _link(root / name, view / name)
    own = root / "labels"
    for spk_dir in sorted(p for p in own.iterdir() if p.is_dir()) if own.is_dir() else []:
        _link(spk_dir, view / "labels" / spk_dir.name)  # org (and any voice with own labels)
    for voice_dir in sorted(p for p in oracle.iterdir() if p.is_dir()):
        if not (own / voice_dir.name).exists():
            _link(voice_dir, view / "labels" / voice_dir.name)
    return view
