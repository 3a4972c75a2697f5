"""Rig mapping: predictions of one rig onto another (e.g. ARKit 52 -> a studio's custom rig).

A mapping file is a CSV with a header ``source,target,weight`` and one row per
(source channel, target channel) pair; a target channel is the weighted sum of
its sources, and targets with no row are 0::

    source,target,weight
    JawOpen,jaw_open_c,1.0
    MouthSmileLeft,mouth_smile_l,0.8
    MouthSmileLeft,cheek_raise_l,0.3

Targets keep the order of their first row. The map is a (S, T) matrix, so
applying it is one matrix product over the frames.
"""
from __future__ import annotations

import csv
import io as _io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import DataError

RIG_MAP_COLUMNS = ("source", "target", "weight")


@dataclass(frozen=True)
class RigMap:
    """A linear map from ``sources`` channels to ``targets`` channels; ``matrix`` (S, T) float32."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    matrix: np.ndarray
    path: str = "<rig map>"

    def apply(self, values: np.ndarray, channels: Sequence[str]) -> np.ndarray:
        """values (frames, len(channels)) -> (frames, len(targets)).

        Every source channel must be among ``channels`` (a map made for another
        rig is an error naming the map file); extra channels are ignored.
        """
        pos = {c: i for i, c in enumerate(channels)}
        missing = [s for s in self.sources if s not in pos]
        if missing:
            raise DataError(self.path, f"source channels not in the predictions: {missing}")
        x = np.asarray(values, dtype=np.float32)[:, [pos[s] for s in self.sources]]  # (frames, S)
        return x @ self.matrix  # (frames, T)


def read_rig_map(path: str | Path) -> RigMap:
    """Read a ``source,target,weight`` CSV (see the module docstring); errors name the file and row."""
    path = Path(path)
    try:
        rows = list(csv.reader(_io.StringIO(path.read_text())))
    except OSError as e:
        raise DataError(path, f"cannot read rig map ({e.strerror})") from None
    rows = [r for r in rows if r and any(x.strip() for x in r)]
    if not rows or tuple(h.strip().lower() for h in rows[0]) != RIG_MAP_COLUMNS:
        raise DataError(path, f"rig map must start with the header {','.join(RIG_MAP_COLUMNS)}")
    sources: dict[str, int] = {}
    targets: dict[str, int] = {}
    entries: dict[tuple[str, str], float] = {}
    for n, r in enumerate(rows[1:], start=2):
        if len(r) != 3:
            raise DataError(path, f"row {n}: expected 3 fields (source, target, weight), got {len(r)}")
        src, tgt, w = (x.strip() for x in r)
        try:
            weight = float(w)
        except ValueError:
            raise DataError(path, f"row {n}: weight {w!r} is not a number") from None
        if not src or not tgt or not math.isfinite(weight):
            raise DataError(path, f"row {n}: empty channel name or non-finite weight")
        if (src, tgt) in entries:
            raise DataError(path, f"row {n}: pair {src} -> {tgt} given twice")
        sources.setdefault(src, len(sources))
        targets.setdefault(tgt, len(targets))
        entries[(src, tgt)] = weight
    if not entries:
        raise DataError(path, "rig map has no rows")
    m = np.zeros((len(sources), len(targets)), np.float32)  # (S, T)
    for (src, tgt), w in entries.items():
        m[sources[src], targets[tgt]] = w
    return RigMap(tuple(sources), tuple(targets), m, str(path))


def write_rig_map(path: str | Path, rows: Sequence[tuple[str, str, float]]) -> None:
    """Write (source, target, weight) rows as a rig-map CSV (atomically)."""
    from ..io import atomic_write_text

    lines = [",".join(RIG_MAP_COLUMNS)] + [f"{s},{t},{float(w)!r}" for s, t, w in rows]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")
