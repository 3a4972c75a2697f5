"""Cached feature extraction over a corpus: ``python -m lib extract``.

Reads ``<root>/wavs/<speaker>/<split>/<utt>.wav`` and writes
``<root>/wav_features/<speaker>/<feature>/<split>/<utt>.npy`` plus a sidecar
``<utt>.json`` (extractor, version, rate_hz, shape, time_axis, checkpoint and the
source wav's size/mtime). A file whose sidecar matches the current extractor,
checkpoint and wav is skipped, so a second run costs only a stat per file.

Extractors live in :data:`EXTRACTORS`; adding one (e.g. PPG) is one entry.
Bad wavs are listed by path at the end and make ``cli_main`` return 1; the good
files are all written. A worker process that dies (segfault, SIGKILL, out of
memory) fails the file it was extracting, named; the others go on (lib.pool).

Past one machine: ``--executor submitit --shards N`` splits the files still to
do into N submitit jobs (SLURM, or submitit's local executor without one; see
lib.cluster). Each shard pins its threads to its cores, skips files finished by
an earlier attempt, and reports its bad files; the report merges every shard's
and lists by path the files of a shard whose job died.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import io
import json
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..config import FEATURE_RATES_HZ
from ..io import DataError, atomic_write_bytes, atomic_write_text, read_audio


@dataclasses.dataclass(frozen=True)
class ExtractorSpec:
    """How to build one feature extractor.

    ``target`` is "module:attribute". kind "function": a picklable function
    wav (samples,) -> array, run in a process pool. kind "model": a class built
    once as ``cls(checkpoint, device=...)`` (or ``cls(device=...)`` without a
    checkpoint) whose instances map wav -> array and may offer ``extract_batch``.
    Bump ``version`` when the extractor's output changes so caches are redone.
    """

    name: str
    target: str
    kind: str  # "function" | "model"
    rate_hz: int
    time_axis: int  # axis of the saved array that is time
    version: int = 1
    default_checkpoint: str | None = None  # relative to the repository root


EXTRACTORS: dict[str, ExtractorSpec] = {
    "mfcc": ExtractorSpec("mfcc", "lib.features.mfcc:mfcc", "function", FEATURE_RATES_HZ["mfcc"], 0),
    "mfcc_t2a": ExtractorSpec("mfcc_t2a", "lib.features.mfcc:mfcc_t2a", "function", FEATURE_RATES_HZ["mfcc_t2a"], 0),
    "ppg": ExtractorSpec("ppg", "lib.features.ppg:PPGExtractor", "model", FEATURE_RATES_HZ["ppg"], 0,
                         default_checkpoint="data/pretrained/ppg/ppg.pt"),
    "hubert": ExtractorSpec("hubert", "lib.features.hubert:HubertExtractor", "model", FEATURE_RATES_HZ["hubert"], 1,
                            default_checkpoint="data/pretrained/chinese-hubert-large-fairseq-ckpt.pt"),
}


def _resolve(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass
class ExtractReport:
    """Outcome of one :func:`extract_corpus` run."""

    feature: str
    total: int = 0
    written: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (wav path, problem)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.feature}: {self.total} wavs, {self.written} written, {self.skipped} up to date, "
                 f"{len(self.failed)} failed ({self.seconds:.1f} s)"]
        lines += [f"  FAILED {path}: {problem}" for path, problem in self.failed]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- paths
def feature_path(root: str | Path, speaker: str, feature: str, split: str, utt: str) -> Path:
    """``<root>/wav_features/<speaker>/<feature>/<split>/<utt>.npy``."""
    return Path(root) / "wav_features" / speaker / feature / split / f"{utt}.npy"


def find_wavs(root: str | Path, speakers: Sequence[str] | None = None,
              splits: Sequence[str] | None = None) -> list[tuple[str, str, Path]]:
    """(speaker, split, wav path) for every ``<root>/wavs/<speaker>/<split>/*.wav``, sorted.

    ``None`` means every speaker / split folder present.
    """
    wav_root = Path(root) / "wavs"
    if not wav_root.is_dir():
        raise DataError(wav_root, "no wavs/ folder (expected <root>/wavs/<speaker>/<split>/<utt>.wav)")
    out = []
    for spk_dir in sorted(p for p in wav_root.iterdir() if p.is_dir()):
        if speakers is not None and spk_dir.name not in speakers:
            continue
        for split_dir in sorted(p for p in spk_dir.iterdir() if p.is_dir()):
            if splits is not None and split_dir.name not in splits:
                continue
            out += [(spk_dir.name, split_dir.name, w) for w in sorted(split_dir.glob("*.wav"))]
    return out


def _source_id(wav: Path) -> dict:
    st = wav.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def checkpoint_id(checkpoint: str | Path | None) -> dict | None:
    """Identity of a checkpoint file or folder (path, total size, newest mtime), for cache keys."""
    if checkpoint is None:
        return None
    p = Path(checkpoint).resolve()
    files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p]
    stats = [f.stat() for f in files]
    return {"path": str(p), "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def _identity(spec: ExtractorSpec, ckpt: dict | None, wav: Path) -> dict:
    return {"extractor": spec.name, "version": spec.version, "checkpoint": ckpt, "source": _source_id(wav)}


def is_up_to_date(npy: Path, identity: dict) -> bool:
    """True when ``npy`` exists and its sidecar records the same identity."""
    side = npy.with_suffix(".json")
    if not (npy.exists() and side.exists()):
        return False
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        return False
    return all(meta.get(k) == v for k, v in identity.items())


def _save(npy: Path, arr: np.ndarray, spec: ExtractorSpec, identity: dict, wav: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, arr)
    atomic_write_bytes(npy, buf.getvalue())
    dims = [d for i, d in enumerate(arr.shape) if i != spec.time_axis]
    meta = {**identity, "rate_hz": spec.rate_hz, "shape": list(arr.shape), "time_axis": spec.time_axis,
            "dims": dims, "dtype": str(arr.dtype), "wav": str(wav)}
    # The sidecar goes last: a crash between the two writes leaves a stale sidecar, never a fresh one.
    atomic_write_text(npy.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")


# ----------------------------------------------------------------------------- workers
def _function_job(feature: str, wav: str, npy: str, identity: dict) -> tuple[str, str | None]:
    """One file in a worker process; returns (wav, problem or None)."""
    from ..workers import maybe_die

    maybe_die(wav)  # test hook (T2A_TEST_KILL_TASK): this process dies as if out of memory
    spec = EXTRACTORS[feature]
    try:
        arr = _resolve(spec.target)(read_audio(wav))
        _save(Path(npy), arr, spec, identity, Path(wav))
        return wav, None
    except Exception as e:  # any failure is this file's, reported by name
        return wav, str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"


def extract_corpus(root: str | Path, feature: str, checkpoint: str | Path | None = None,
                   speakers: Sequence[str] | None = None, splits: Sequence[str] | None = None,
                   workers: int = 2, device: str | None = None, batch_size: int | None = None,
                   progress: bool = True, executor: str | None = None, shards: int | None = None,
                   options: "SubmititOptions | None" = None) -> ExtractReport:
    """Extract ``feature`` for every wav under ``<root>/wavs`` not already up to date.

    Args:
        workers: processes for function extractors; torch threads for model ones
            (per shard with the submitit executor).
        device: for model extractors ("cpu", "cuda"; default cuda when available).
        batch_size: utterances per forward pass of model extractors (default 8 on
            GPU, 1 on CPU).
        executor: "local" (this machine) or "submitit" (default ``$T2A_EXECUTOR``,
            else local).
        shards: submitit jobs to split the files into (default ``options.max_parallel``).
        options: lib.cluster.SubmititOptions (default from ``$T2A_SUBMITIT``).
    Returns:
        An :class:`ExtractReport`; ``report.failed`` lists bad wavs by path.
    """
    from ..cluster import executor_choice

    if feature not in EXTRACTORS:
        raise ValueError(f"unknown feature {feature!r}; known: {sorted(EXTRACTORS)}")
    spec = EXTRACTORS[feature]
    t0 = time.perf_counter()
    if spec.kind == "model" and checkpoint is None and spec.default_checkpoint:
        from ..paths import REPO_ROOT

        checkpoint = REPO_ROOT / spec.default_checkpoint
    if checkpoint is not None and not Path(checkpoint).exists():
        # Fail before walking the corpus; the model class says where to get its checkpoint.
        _resolve(spec.target)(checkpoint)
    ckpt = checkpoint_id(checkpoint) if spec.kind == "model" and checkpoint is not None else None
    jobs = []
    report = ExtractReport(feature)
    for speaker, split, wav in find_wavs(root, speakers, splits):
        npy = feature_path(root, speaker, feature, split, wav.stem)
        identity = _identity(spec, ckpt, wav)
        report.total += 1
        if is_up_to_date(npy, identity):
            report.skipped += 1
        else:
            jobs.append((wav, npy, identity))
    if jobs and executor_choice(executor) == "submitit":
        from .shards import extract_sharded

        extract_sharded(root, spec, jobs, report, checkpoint, workers, device, batch_size, shards, options)
    elif jobs:
        extract_jobs(spec, jobs, report, checkpoint, workers, device, batch_size, progress)
    report.failed.sort()
    report.seconds = time.perf_counter() - t0
    return report


def extract_jobs(spec: ExtractorSpec, jobs: list, report: ExtractReport, checkpoint, workers: int,
                 device: str | None, batch_size: int | None, progress: bool) -> None:
    """Extract ``jobs`` [(wav, npy, identity)] on this machine, counting into ``report``."""
    run = _run_functions if spec.kind == "function" else _run_model
    run(spec, jobs, report, checkpoint, workers, device, batch_size, progress)


def _run_functions(spec, jobs, report, checkpoint, workers, device, batch_size, progress) -> None:
    bar = tqdm(total=len(jobs), desc=spec.name, unit="file", disable=not progress)
    if workers <= 1:
        results = (_function_job(spec.name, str(w), str(n), i) for w, n, i in jobs)
        for wav, problem in results:
            _tally(report, wav, problem)
            bar.update()
    else:
        # Warm the extractor here (imports, numba JIT: seconds) so forked workers start warm. Fork
        # only while torch is not loaded: forking a process that holds torch's OpenMP threads can hang.
        _resolve(spec.target)(np.zeros(1600, np.float32))
        method = "spawn" if "torch" in sys.modules else "fork"
        from ..pool import run_tasks
        from ..threads import child_thread_env

        def outcome(o) -> None:  # lib.pool.Outcome, named by the wav's path
            _tally(report, *(o.result if o.error is None else (o.name, o.error)))
            bar.update()

        tasks = [(str(w), (spec.name, str(w), str(n), i)) for w, n, i in jobs]
        with child_thread_env(1):  # one thread per worker: `workers` of them share the cores
            run_tasks(_function_job, tasks, workers, get_context(method), outcome, initializer=_pin_one)
    bar.close()


def _pin_one() -> None:
    from ..threads import pin_threads

    pin_threads(1)


def _tally(report: ExtractReport, wav: str, problem: str | None) -> None:
    if problem is None:
        report.written += 1
    else:
        report.failed.append((wav, problem))


def _run_model(spec, jobs, report, checkpoint, workers, device, batch_size, progress) -> None:
    import torch

    torch.set_num_threads(max(1, workers))
    cls = _resolve(spec.target)
    kwargs = {} if device is None else {"device": device}  # else the class's own default
    model = cls(checkpoint, **kwargs) if checkpoint is not None else cls(**kwargs)
    on_gpu = str(getattr(model, "device", "cpu")).startswith("cuda")
    batch_size = batch_size or (8 if on_gpu else 1)
    bar = tqdm(total=len(jobs), desc=spec.name, unit="file", disable=not progress)
    loaded = []  # (wav, npy, identity, audio) of readable files
    for wav, npy, identity in jobs:
        try:
            loaded.append((wav, npy, identity, read_audio(wav)))
        except DataError as e:
            report.failed.append((str(wav), str(e)))
            bar.update()
    loaded.sort(key=lambda j: len(j[3]))  # similar lengths per batch: little padding
    for start in range(0, len(loaded), batch_size):
        batch = loaded[start : start + batch_size]
        try:
            outs = model.extract_batch([j[3] for j in batch]) if len(batch) > 1 else [model(batch[0][3])]
        except Exception:
            outs = None  # retry one by one so one bad file does not sink its batch
        for k, (wav, npy, identity, audio) in enumerate(batch):
            try:
                arr = outs[k] if outs is not None else model(audio)
                _save(npy, arr, spec, identity, wav)
                report.written += 1
            except Exception as e:
                report.failed.append((str(wav), f"{type(e).__name__}: {e}"))
            bar.update()
    bar.close()


# ----------------------------------------------------------------------------- reading back
def load_features(root: str | Path, speaker: str, feature: str, split: str, utt: str) -> np.ndarray:
    """Cached features of one utterance: (T, D) for MFCC, (layers, T, D) for HuBERT."""
    npy = feature_path(root, speaker, feature, split, utt)
    if not npy.exists():
        raise DataError(npy, f"no {feature} features; run `python -m lib extract --root_dir {root} "
                             f"--feature {feature}`")
    try:
        return np.load(npy)
    except Exception as e:
        raise DataError(npy, f"unreadable .npy ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------- CLI
def cli_main(argv: list[str]) -> int:
    """``python -m lib extract --root_dir DIR --feature NAME [...]``; 1 if any file failed."""
    ap = argparse.ArgumentParser(prog="python -m lib extract", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root_dir", required=True, help="corpus root holding wavs/<speaker>/<split>/*.wav")
    ap.add_argument("--feature", required=True, choices=sorted(EXTRACTORS))
    ap.add_argument("--checkpoint", default=None, help="model checkpoint (HuBERT: fairseq .pt or HF folder)")
    ap.add_argument("--speakers", nargs="+", default=None, help="default: every speaker folder")
    ap.add_argument("--splits", nargs="+", default=None, help="default: every split folder")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--device", default=None, help="cpu / cuda (model extractors)")
    ap.add_argument("--batch_size", type=int, default=None)
    ap.add_argument("--shards", type=int, default=None,
                    help="with --executor submitit: jobs to split the files into (default --max_parallel)")
    from ..cluster import add_submitit_arguments, options_from_args

    add_submitit_arguments(ap, unit="shard")
    args, extra = ap.parse_known_args(argv)
    try:
        options = options_from_args(args, extra)  # also rejects stray arguments
        report = extract_corpus(args.root_dir, args.feature, args.checkpoint, args.speakers, args.splits,
                                workers=args.workers, device=args.device, batch_size=args.batch_size,
                                executor=args.executor, shards=args.shards, options=options)
    except (DataError, FileNotFoundError, ValueError, ImportError, NameError) as e:  # NameError: bad --slurm_*
        print(f"error: {e}")
        return 2
    print(report.summary())
    return 1 if report.failed else 0
