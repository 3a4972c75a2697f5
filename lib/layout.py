"""The on-disk corpus layout of the original system, and a reader and checker for it.

    <root>/wavs/<speaker>/<split>/<utt>.wav         audio (any rate; read as 16 kHz mono)
    <root>/face.json                                face format: {"face_fps": 30, "channels": [...] or a set name}
                                                    (absent: t2a37 at 25 fps, the original's)
    <root>/labels/<speaker>/<split>/<utt>.csv       labels, header = channel names, at face_fps
    <root>/wavs/<speaker>/<split-stem>.pkl          or the original per-split pickle
    <root>/labels_oracle/<voice>/<split>/<utt>.csv  time-aligned labels of TTS clips (built-in corpus)
    <root>/dataset_json/<name>.json                 list of utterance names (a training subset)
    <root>/manifest.csv                             one row per utterance

A speaker without labels of its own (a TTS voice) is paired with the recorded
speaker's labels of the same utterance name: the unaligned pairs of the paper.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .channels import FACE_JSON, FaceFormat, fps_hint
from .config import DEFAULT_SPLITS, ORG_SPEAKER, label_frames
from .io import DataError, audio_duration_s, read_audio, read_label_csv, read_pkl_labels

MANIFEST_COLUMNS = ("speaker", "split", "utt", "text", "duration_s", "frames", "source")


def pkl_candidates(split: str) -> tuple[str, ...]:
    """Pickle names that may hold a split's labels: the original names its files by
    the split's stem (``val_1`` -> ``val.pkl``, ``test_a`` -> ``test.pkl``)."""
    stem = split.split("_")[0]
    return (f"{split}.pkl",) if stem == split else (f"{split}.pkl", f"{stem}.pkl")


@dataclass(frozen=True)
class Clip:
    """One audio clip and where its labels come from."""

    speaker: str
    split: str
    utt: str
    wav_path: Path
    aligned: bool  # True: the speaker's own labels; False: paired with org's by name


class Corpus:
    """Read-only view of a corpus root in the original layout.

    The face format (channel names + fps) is the corpus's own: ``<root>/face.json``
    when present, else t2a37 at 25 fps (:meth:`FaceFormat.of_corpus`). ``channels``
    / ``face_fps`` override it (check-data's flags, for a corpus without face.json).
    """

    def __init__(
        self,
        root: str | Path,
        org_speaker: str = ORG_SPEAKER,
        channels: str | Sequence[str] | None = None,
        face_fps: int | None = None,
    ):
        self.root = Path(root)
        if not (self.root / "wavs").is_dir():
            raise DataError(self.root, "not a corpus root (no wavs/ folder)")
        self.org = org_speaker
        try:
            face = FaceFormat.of_corpus(self.root)
            if channels is not None or face_fps is not None:
                face = FaceFormat.make(face.channel_set or face.channels if channels is None else channels,
                                       face.face_fps if face_fps is None else face_fps,
                                       face.mouth if channels is None else None)
        except ValueError as e:
            raise DataError(self.root / FACE_JSON, str(e)) from None
        self.face: FaceFormat = face
        self.channels = face.channels
        self.face_fps = face.face_fps
        self._pkl_cache: dict[Path, dict[str, np.ndarray]] = {}

    # ------------------------------------------------------------------ listing
    @cached_property
    def speakers(self) -> list[str]:
        """Speaker folders under wavs/, org first."""
        names = sorted(p.name for p in (self.root / "wavs").iterdir() if p.is_dir())
        return sorted(names, key=lambda s: s != self.org)

    def splits(self, speaker: str) -> list[str]:
        d = self.root / "wavs" / speaker
        found = sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []
        # The conventional splits first, in their usual order.
        return sorted(found, key=lambda s: (DEFAULT_SPLITS.index(s) if s in DEFAULT_SPLITS else 99, s))

    def utterances(self, speaker: str, split: str) -> list[str]:
        d = self.root / "wavs" / speaker / split
        return sorted(p.stem for p in d.glob("*.wav")) if d.is_dir() else []

    def wav_path(self, speaker: str, split: str, utt: str) -> Path:
        return self.root / "wavs" / speaker / split / f"{utt}.wav"

    def clips(self, speakers: Sequence[str] | None = None, splits: Sequence[str] | None = None) -> Iterator[Clip]:
        for spk in speakers or self.speakers:
            for split in splits or self.splits(spk):
                for utt in self.utterances(spk, split):
                    yield Clip(spk, split, utt, self.wav_path(spk, split, utt), self.has_own_labels(spk, split, utt))

    # ------------------------------------------------------------------ labels
    def _csv_path(self, speaker: str, split: str, utt: str, folder: str = "labels") -> Path:
        return self.root / folder / speaker / split / f"{utt}.csv"

    def _pkl(self, speaker: str, split: str) -> tuple[Path | None, dict[str, np.ndarray]]:
        for name in pkl_candidates(split):
            p = self.root / "wavs" / speaker / name
            if p.is_file():
                if p not in self._pkl_cache:
                    self._pkl_cache[p] = read_pkl_labels(p, self.channels)
                return p, self._pkl_cache[p]
        return None, {}

    def has_own_labels(self, speaker: str, split: str, utt: str) -> bool:
        if self._csv_path(speaker, split, utt).is_file():
            return True
        return utt in self._pkl(speaker, split)[1]

    def own_labels(self, speaker: str, split: str, utt: str) -> np.ndarray:
        """A speaker's own labels (frames, C) float32, from CSV or else the split pickle."""
        csv_path = self._csv_path(speaker, split, utt)
        if csv_path.is_file():
            return read_label_csv(csv_path, channels=self.channels, known=self.channels)[0]
        pkl_path, table = self._pkl(speaker, split)
        if utt in table:
            return table[utt].astype(np.float32)
        where = f"{csv_path} or {pkl_path or self.root / 'wavs' / speaker / pkl_candidates(split)[-1]}"
        raise DataError(self.wav_path(speaker, split, utt), f"no labels ({where})")

    def labels(self, speaker: str, split: str, utt: str) -> tuple[np.ndarray, bool]:
        """Training target of a clip: (labels (frames, C), aligned).

        A speaker's own labels when it has them (aligned=True); otherwise the
        recorded speaker's labels of the same utterance name (aligned=False).
        """
        if self.has_own_labels(speaker, split, utt):
            return self.own_labels(speaker, split, utt), True
        if speaker == self.org:
            return self.own_labels(speaker, split, utt), True  # raises "no labels"
        if not self.has_own_labels(self.org, split, utt):
            raise DataError(
                self.wav_path(speaker, split, utt),
                f"TTS clip has no {self.org} utterance of the same name to pair with in split {split}",
            )
        # Errors in the partner's label file name that file.
        return self.own_labels(self.org, split, utt), False

    def oracle_labels(self, speaker: str, split: str, utt: str) -> np.ndarray:
        """Time-aligned labels of a TTS clip (built-in corpus only)."""
        p = self._csv_path(speaker, split, utt, folder="labels_oracle")
        if not p.is_file():
            raise DataError(p, "no oracle labels (only the built-in corpus has them)")
        return read_label_csv(p, channels=self.channels, known=self.channels)[0]

    # ------------------------------------------------------------------ subsets, manifest
    def dataset_names(self) -> list[str]:
        d = self.root / "dataset_json"
        return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []

    def dataset_json(self, name: str) -> list[str]:
        """Utterance names of a training subset ``dataset_json/<name>.json``."""
        p = self.root / "dataset_json" / (name if name.endswith(".json") else f"{name}.json")
        try:
            names = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise DataError(p, f"unreadable subset list ({e})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(p, "expected a JSON list of utterance names")
        return names

    def manifest(self):
        """manifest.csv as a DataFrame (built from a scan when the file is absent)."""
        import pandas as pd

        p = self.root / "manifest.csv"
        if p.is_file():
            return pd.read_csv(p, keep_default_na=False)
        return pd.DataFrame(self.scan_manifest_rows(), columns=list(MANIFEST_COLUMNS))

    def scan_manifest_rows(self) -> list[dict]:
        rows = []
        for c in self.clips():
            dur = audio_duration_s(c.wav_path)
            rows.append(dict(speaker=c.speaker, split=c.split, utt=c.utt, text="", duration_s=round(dur, 4),
                             frames=label_frames(dur, self.face_fps), source="org" if c.aligned else "tts"))
        return rows

    def summary(self):
        """Speakers x splits table: utterances, minutes of audio, label frames."""
        import pandas as pd

        m = self.manifest()
        g = m.groupby(["speaker", "split", "source"], sort=False)
        out = g.agg(utterances=("utt", "count"), minutes=("duration_s", "sum"), frames=("frames", "sum"))
        out["minutes"] = (out["minutes"] / 60).round(2)
        return out.reset_index()


# ---------------------------------------------------------------------- checking
def check_corpus(root: str | Path, channels: str | Sequence[str] | None = None, org_speaker: str = ORG_SPEAKER,
                 max_mismatch_s: float = 1.0, progress: bool = True,
                 face_fps: int | None = None) -> tuple[list[DataError], int]:
    """Scan a whole corpus and collect every problem instead of stopping at the first.

    Checks: audio readable and non-empty; labels present (own or paired by name),
    finite, with exactly the expected channels; own-label duration within
    ``max_mismatch_s`` of the audio; no utterance name in two splits of one speaker.
    The face format is the corpus's (face.json, else t2a37 at 25 fps) unless
    ``channels`` / ``face_fps`` are given. A duration mismatch whose label/audio
    ratio matches another common fps says so ("labels look like 30 fps").
    Returns (problems, number of clips checked).
    """
    from tqdm.auto import tqdm

    problems: list[DataError] = []
    try:
        corpus = Corpus(root, org_speaker=org_speaker, channels=channels, face_fps=face_fps)
    except DataError as e:
        return [e], 0
    has_face_json = (corpus.root / FACE_JSON).is_file()
    clips = []
    for spk in corpus.speakers:
        seen: dict[str, str] = {}
        for split in corpus.splits(spk):
            for utt in corpus.utterances(spk, split):
                if utt in seen:
                    problems.append(DataError(corpus.wav_path(spk, split, utt),
                                              f"duplicate utterance name {utt!r} (also in split {seen[utt]})"))
                seen[utt] = split
                clips.append((spk, split, utt))
    for spk, split, utt in tqdm(clips, desc="check-data", disable=not progress):
        wav_path = corpus.wav_path(spk, split, utt)
        try:
            n_audio = read_audio(wav_path).shape[0]
            labels, aligned = corpus.labels(spk, split, utt)
        except DataError as e:
            if "unknown channels" in e.problem and not has_face_json:
                e = DataError(e.path, f"{e.problem}; a rig of its own: list its channels in "
                                      f"{corpus.root / FACE_JSON} (or pass --channels)")
            # A bad org label file also breaks every TTS clip paired with it: report it once.
            if str(e) not in {str(p) for p in problems}:
                problems.append(e)
            continue
        if aligned:
            audio_s = n_audio / 16_000
            label_s = labels.shape[0] / corpus.face_fps
            if abs(audio_s - label_s) > max_mismatch_s:
                msg = (f"label duration {label_s:.2f} s vs audio {audio_s:.2f} s "
                       f"(labels read at {corpus.face_fps} fps; differ by more than {max_mismatch_s} s)")
                hint = fps_hint(labels.shape[0], audio_s, corpus.face_fps)
                if hint is not None:
                    msg += (f"; labels look like {hint} fps: add {corpus.root / FACE_JSON} "
                            f'with {{"face_fps": {hint}, "channels": ...}}')
                problems.append(DataError(wav_path, msg))
    return problems, len(clips)


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib check-data", description=check_corpus.__doc__)
    ap.add_argument("--root_dir", required=True)
    ap.add_argument("--channels", default=None,
                    help="channel set name or comma-separated names (default: the corpus's face.json, else t2a37)")
    ap.add_argument("--face_fps", type=int, default=None,
                    help="label frame rate (default: the corpus's face.json, else 25)")
    ap.add_argument("--org_speaker", default=ORG_SPEAKER)
    ap.add_argument("--max_mismatch_s", type=float, default=1.0)
    a = ap.parse_args(argv)
    channels = None if a.channels is None else (a.channels.split(",") if "," in a.channels else a.channels)
    problems, n = check_corpus(a.root_dir, channels, a.org_speaker, a.max_mismatch_s, face_fps=a.face_fps)
    for p in problems:
        print(f"ERROR {p}", file=sys.stderr)
    try:
        face = Corpus(a.root_dir, channels=channels, face_fps=a.face_fps).face
        fmt = f" ({face.n_channels} channels at {face.face_fps} fps)"
    except DataError:
        fmt = ""
    print(f"checked {n} clips under {a.root_dir}{fmt}: {len(problems)} problem(s)")
    return 1 if problems else 0
