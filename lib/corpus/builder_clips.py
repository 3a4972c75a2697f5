"""One clip of the built-in corpus: its file paths and how it is made (in a worker).

A clip is finished when its wav, phone CSV and label CSV all exist. Each file is
written atomically and the wav last, so an interrupted build never leaves a
half-written file and a clip whose wav exists is complete.
"""
from __future__ import annotations

import io as _io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..channels import T2A_37
from ..config import AUDIO_SAMPLE_RATE_HZ, ORG_SPEAKER
from ..io import atomic_write_bytes, atomic_write_text, write_label_csv
from ..workers import maybe_die
from .rig import RigStyle, oracle_style, rig_trajectories, utterance_rng


@dataclass(frozen=True)
class ClipJob:
    """Everything a worker needs to make one clip (picklable)."""

    root: str
    speaker: str  # folder name: "org" or the voice's name
    voice: str  # engine:voice[@rate] spec
    split: str
    utt: str
    text: str
    seed: int
    style: RigStyle

    @property
    def is_org(self) -> bool:
        return self.speaker == ORG_SPEAKER


def wav_path(root: Path, speaker: str, split: str, utt: str) -> Path:
    return Path(root) / "wavs" / speaker / split / f"{utt}.wav"


def phones_path(root: Path, speaker: str, split: str, utt: str) -> Path:
    return Path(root) / "phones" / speaker / split / f"{utt}.csv"


def label_path(root: Path, speaker: str, split: str, utt: str) -> Path:
    """org: the recorded labels; any other speaker: its oracle labels."""
    if speaker == ORG_SPEAKER:
        return Path(root) / "labels" / ORG_SPEAKER / split / f"{utt}.csv"
    return Path(root) / "labels_oracle" / speaker / split / f"{utt}.csv"


def clip_paths(job: ClipJob) -> tuple[Path, Path, Path]:
    """(phones, labels, wav) in the order they are written."""
    args = (Path(job.root), job.speaker, job.split, job.utt)
    return phones_path(*args), label_path(*args), wav_path(*args)


def is_done(job: ClipJob) -> bool:
    return all(p.exists() for p in clip_paths(job))


def write_phones_csv(path: Path, phones: list[tuple[str, float, float]]) -> None:
    """phone,start_s,end_s rows (seconds, 5 decimals = 10 us), atomically."""
    lines = ["phone,start_s,end_s"] + [f"{p},{s:.5f},{e:.5f}" for p, s, e in phones]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_phones_csv(path: str | Path) -> list[tuple[str, float, float]]:
    """Read a phone CSV written by :func:`write_phones_csv`."""
    from ..io import DataError

    rows = Path(path).read_text().splitlines()
    if not rows or rows[0].strip() != "phone,start_s,end_s":
        raise DataError(path, "not a phone CSV (header must be phone,start_s,end_s)")
    out = []
    for r in rows[1:]:
        if r.strip():
            p, s, e = r.split(",")
            out.append((p, float(s), float(e)))
    return out


def _pcm16_roundtrip(wav: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Encode as 16-bit WAV and decode again: the rig must see exactly what is on disk."""
    import soundfile as sf

    buf = _io.BytesIO()
    sf.write(buf, np.clip(wav, -1.0, 1.0), AUDIO_SAMPLE_RATE_HZ, subtype="PCM_16", format="WAV")
    data = buf.getvalue()
    decoded, _ = sf.read(_io.BytesIO(data), dtype="float32")
    return data, decoded


# Engines whose output depends on what the process synthesised before (piper: VITS noise
# drawn from one onnxruntime generator per session; espeak-ng: internal synthesiser
# state). Their clips are made in a canonical order in a fresh process, replaying the
# earlier clips of the group on resume, so a clip never depends on worker scheduling.
STATEFUL_ENGINES = frozenset({"piper", "espeak"})


def _make_clip(job: ClipJob, write: bool) -> None:
    from .voices import parse_voice, synthesize

    syn = synthesize(parse_voice(job.voice), job.text)
    if not write:
        return
    data, wav = _pcm16_roundtrip(syn.wav)
    if job.is_org:
        labels = rig_trajectories(syn.phones, wav, job.style, utterance_rng(job.seed, job.speaker, job.utt))
    else:
        # Oracle: the same face as org (same lead and gains), no style draw, no noise.
        labels = rig_trajectories(syn.phones, wav, oracle_style(job.style))
    p_phones, p_labels, p_wav = clip_paths(job)
    write_phones_csv(p_phones, syn.phones)
    write_label_csv(p_labels, labels, T2A_37)
    atomic_write_bytes(p_wav, data)  # last: its presence marks the clip finished


def _deterministic_onnxruntime(seed: int) -> None:
    """Make this (fresh) process's onnxruntime sessions reproducible: seed the random
    ops (VITS noise), created lazily at the first synthesis, and run every session on
    one thread (multi-threaded kernels may sum in a different order under load, which
    flips PCM16 roundings). Process-local: it runs in a child that only builds clips."""
    import onnxruntime

    onnxruntime.set_seed(seed)
    base = onnxruntime.SessionOptions
    if getattr(base, "_single_thread", False):
        return

    class _SingleThreadOptions(base):  # piper builds its session with SessionOptions()
        _single_thread = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.intra_op_num_threads = 1
            self.inter_op_num_threads = 1

    onnxruntime.SessionOptions = _SingleThreadOptions


def build_group(jobs: list[ClipJob], progress=None) -> list[tuple[ClipJob, str, str]]:
    """Make the unfinished clips of one voice, in order; meant to run in a
    fresh process. ``progress``: a queue that gets ("start", clip) before and
    ("end", clip) after each clip made (or failed), clip = speaker/split/utt.
    Returns [(job, status, message)], status built | skipped | failed; never raises
    (a worker must not kill the pool)."""
    from .voices import parse_voice

    if not jobs:
        return []
    engine = parse_voice(jobs[0].voice).engine
    stateful = engine in STATEFUL_ENGINES
    if engine == "piper":
        _deterministic_onnxruntime(int(utterance_rng(jobs[0].seed, jobs[0].voice).integers(2**31)))
    done = [is_done(j) for j in jobs]
    last_todo = max((i for i, d in enumerate(done) if not d), default=-1)
    if engine == "espeak":
        from .engines import espeak

        espeak.synthesize_in_this_process()  # this fresh process is the clean child
    results = []
    for i, job in enumerate(jobs):
        if done[i] and (not stateful or i > last_todo):
            results.append((job, "skipped", ""))
            continue
        name = f"{job.speaker}/{job.split}/{job.utt}"
        if progress is not None and not done[i]:
            progress.put(("start", name))
        maybe_die(name)  # test hook (lib.workers): simulates a crash on this clip
        try:
            _make_clip(job, write=not done[i])  # a finished clip of a stateful engine is replayed, not rewritten
            results.append((job, "skipped" if done[i] else "built", ""))
        except Exception as e:  # noqa: BLE001 - reported per clip, the batch goes on
            results.append((job, "failed", f"{type(e).__name__}: {e}"))
        if progress is not None and results[-1][1] != "skipped":
            progress.put(("end", name))
    return results
