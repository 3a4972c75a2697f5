"""Live Link Face takes in and out: ``python -m lib import-take`` and Live Link Face CSV export.

In: a take recorded with Apple's Live Link Face app (CSV at 60 fps, header
Timecode, BlendShapeCount or BlendshapeCount, 61 named columns; the calibrated
``*_cal.csv`` alike) and its audio become one utterance of a corpus in the
original layout, at the corpus's face format (``<root>/face.json``):

    <root>/wavs/<speaker>/<split>/<utt>.wav      16 kHz mono
    <root>/labels/<speaker>/<split>/<utt>.csv    round(audio_s * face_fps) frames, the corpus's channels

A new corpus (no ``wavs/`` yet) gets a face.json of ``--channels`` (default
arkit52) at ``--face_fps`` (default 60, the app's rate). Channels are taken by
name, or through a rig map (lib.ingest.rig_map) when the corpus's rig is not
ARKit's.

Out: :func:`write_live_link` resamples predictions of any face format to 60 fps
and writes Live Link Face's CSV (absent channels 0), which Unreal's Live Link
Face importer and Blender add-ons read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ..channels import FACE_JSON, LIVE_LINK_FACE_61, FaceFormat
from ..config import AUDIO_SAMPLE_RATE_HZ, label_frames
from ..io import (DataError, LIVE_LINK_FACE_FPS, interp_channels, read_audio, read_live_link_face_csv, write_audio,
                  write_label_csv, write_live_link_face_csv)
from .rig_map import RigMap, read_rig_map


def resample_frames(values: np.ndarray, src_fps: float, dst_fps: float, n_out: int | None = None) -> np.ndarray:
    """(n, C) frames at ``src_fps`` (frame k at k / src_fps) -> (n_out, C) at ``dst_fps``,
    by linear interpolation; n_out defaults to round(n / src_fps * dst_fps). Past the
    last source frame the last value holds."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    n_out = int(round(n / src_fps * dst_fps)) if n_out is None else int(n_out)
    if src_fps == dst_fps and n_out == n:
        return values.astype(np.float32)
    t_src = np.arange(n) / src_fps
    t_out = np.arange(n_out) / dst_fps
    return interp_channels(t_out, t_src, values).astype(np.float32)  # (n_out, C)


def fit_frames(values: np.ndarray, n: int) -> np.ndarray:
    """Cut to ``n`` frames, or hold the last frame up to ``n`` (a take's CSV and audio
    rarely end on the same frame)."""
    if len(values) >= n:
        return values[:n]
    return np.concatenate([values, np.repeat(values[-1:], n - len(values), axis=0)], axis=0)


def import_take(csv_path: str | Path, wav_path: str | Path, root_dir: str | Path, speaker: str, split: str,
                utt: str, rig_map: str | Path | None = None, channels: str | Sequence[str] = "arkit52",
                face_fps: int = LIVE_LINK_FACE_FPS, max_mismatch_s: float = 1.0,
                overwrite: bool = False) -> tuple[Path, Path]:
    """Import one Live Link Face take into ``root_dir`` (see the module docstring).

    ``channels`` / ``face_fps`` only apply to a new corpus (they become its
    face.json); an existing corpus keeps its own format. The labels get
    round(audio duration * face_fps) frames (the layout's convention); a CSV
    and audio that differ by more than ``max_mismatch_s`` are an error naming
    both files. Returns (wav written, labels written).
    """
    root = Path(root_dir)
    csv_path, wav_path = Path(csv_path), Path(wav_path)
    if (root / "wavs").is_dir() or (root / FACE_JSON).is_file():
        try:
            face = FaceFormat.of_corpus(root)
        except ValueError as e:
            raise DataError(root / FACE_JSON, str(e)) from None
    else:
        face = FaceFormat.make(channels, face_fps)
        face.save(root)
    out_wav = root / "wavs" / speaker / split / f"{utt}.wav"
    out_csv = root / "labels" / speaker / split / f"{utt}.csv"
    if not overwrite and (out_wav.exists() or out_csv.exists()):
        raise DataError(out_wav, "utterance exists already (pass --overwrite to replace it)")
    audio = read_audio(wav_path)  # (samples,) 16 kHz mono
    audio_s = len(audio) / AUDIO_SAMPLE_RATE_HZ
    # Read at 60 fps with all its columns, then map and resample once.
    values, names = read_live_link_face_csv(csv_path, face_fps=LIVE_LINK_FACE_FPS, channels=None)
    if rig_map is not None:
        m = read_rig_map(rig_map)
        values, names = m.apply(values, names), m.targets
    missing = [c for c in face.channels if c not in set(names)]
    if missing:
        raise DataError(csv_path, f"the take has no channels {missing[:8]}{'...' if len(missing) > 8 else ''} "
                                  f"of the corpus's face format ({root / FACE_JSON}); pass --rig_map")
    pos = {c: i for i, c in enumerate(names)}
    values = values[:, [pos[c] for c in face.channels]]  # (frames at 60 fps, C)
    take_s = len(values) / LIVE_LINK_FACE_FPS
    if abs(take_s - audio_s) > max_mismatch_s:
        raise DataError(csv_path, f"take lasts {take_s:.2f} s but its audio {wav_path} {audio_s:.2f} s "
                                  f"(differ by more than {max_mismatch_s} s)")
    labels = fit_frames(resample_frames(values, LIVE_LINK_FACE_FPS, face.face_fps),
                        label_frames(audio_s, face.face_fps))
    write_audio(out_wav, audio)
    write_label_csv(out_csv, labels, face.channels)
    return out_wav, out_csv


def to_live_link(values: np.ndarray, channels: Sequence[str], face_fps: int,
                 rig_map: RigMap | None = None) -> np.ndarray:
    """Predictions (frames, C) at ``face_fps`` -> (round(frames / face_fps * 60), 61) in
    Live Link Face order at 60 fps; channels it does not name are 0. ``rig_map`` maps
    a non-ARKit rig onto Live Link names first."""
    values = np.asarray(values, dtype=np.float32)
    if rig_map is not None:
        values, channels = rig_map.apply(values, channels), rig_map.targets
    pos = {c: i for i, c in enumerate(LIVE_LINK_FACE_61)}
    known = [j for j, c in enumerate(channels) if c in pos]
    if not known:
        raise ValueError(f"no Live Link Face channel among {list(channels)[:8]}...: pass a rig map "
                         "(source,target,weight) onto ARKit names")
    full = np.zeros((values.shape[0], len(LIVE_LINK_FACE_61)), np.float32)  # (frames, 61)
    for j in known:
        full[:, pos[channels[j]]] = values[:, j]
    return resample_frames(full, face_fps, LIVE_LINK_FACE_FPS)


def write_live_link(path: str | Path, values: np.ndarray, channels: Sequence[str], face_fps: int,
                    rig_map: RigMap | None = None) -> None:
    """Write predictions as a Live Link Face CSV at 60 fps (see :func:`to_live_link`), atomically."""
    write_live_link_face_csv(path, to_live_link(values, channels, face_fps, rig_map), LIVE_LINK_FACE_61,
                             LIVE_LINK_FACE_FPS)


def cli_main(argv: list[str]) -> int:
    """``python -m lib import-take --csv take.csv --wav take.wav --root_dir DIR --speaker org
    --split train --utt NAME``; several takes: repeat --csv/--wav/--utt in order."""
    ap = argparse.ArgumentParser(prog="python -m lib import-take", description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", nargs="+", required=True, help="Live Link Face CSV (or _cal.csv), 60 fps")
    ap.add_argument("--wav", nargs="+", required=True, help="the take's audio (any rate, mono or stereo)")
    ap.add_argument("--utt", nargs="+", required=True, help="utterance name(s) in the corpus")
    ap.add_argument("--root_dir", required=True)
    ap.add_argument("--speaker", default="org")
    ap.add_argument("--split", default="train")
    ap.add_argument("--rig_map", default=None, help="CSV source,target,weight: Live Link names -> the corpus's rig")
    ap.add_argument("--channels", default="arkit52", help="a NEW corpus's channels (set name or comma list)")
    ap.add_argument("--face_fps", type=int, default=LIVE_LINK_FACE_FPS, help="a NEW corpus's frame rate")
    ap.add_argument("--max_mismatch_s", type=float, default=1.0)
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    if not len(a.csv) == len(a.wav) == len(a.utt):
        ap.error(f"--csv, --wav and --utt need the same number of items ({len(a.csv)}, {len(a.wav)}, {len(a.utt)})")
    channels = a.channels.split(",") if "," in a.channels else a.channels
    bad = []
    for csv_path, wav_path, utt in zip(a.csv, a.wav, a.utt):
        try:
            w, c = import_take(csv_path, wav_path, a.root_dir, a.speaker, a.split, utt, a.rig_map, channels,
                               a.face_fps, a.max_mismatch_s, a.overwrite)
            print(f"imported {utt}: {w} + {c}")
        except (DataError, ValueError) as e:
            bad.append(e)
            print(f"ERROR {e}", file=sys.stderr)
    if bad:
        print(f"{len(bad)} of {len(a.csv)} take(s) failed (the others are imported)", file=sys.stderr)
    return 1 if bad else 0
