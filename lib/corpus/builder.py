"""Build the built-in synthetic corpus: text -> TTS voices -> face rig -> files on disk.

Layout under ``root`` (the original system's, plus the synthetic extras):

    wavs/<speaker>/<split>/<utt>.wav            16 kHz mono PCM16, speaker "org" or a voice name
    labels/org/<split>/<utt>.csv                recorded-speaker labels (TTS clips have none:
                                                they are paired with org's by name)
    labels_oracle/<voice>/<split>/<utt>.csv     org's face in that TTS clip's own timing
    phones/<speaker>/<split>/<utt>.csv          phone,start_s,end_s (common inventory)
    dataset_json/train_small_<N>.json, train_all.json, val_1.json, test_a.json
    manifest.csv, corpus_config.json

`python -m lib build-corpus --profile quick [--root_dir DIR] [--text_file F]`
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io as _io
import json
import queue
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .. import paths
from ..config import DEFAULT_SPLITS, ORG_SPEAKER, label_frames, save_config
from ..io import atomic_write_text, audio_duration_s
from .builder_clips import ClipJob, build_group, is_done, wav_path
from .profiles import PROFILES, CorpusConfig, profile_config
from .rig import RigStyle

SPLITS = DEFAULT_SPLITS  # train pool, validation, test
SUBSET_SIZES = (1, 5, 10, 20, 30, 40, 50, 100, 150, 200, 250, 300, 400, 500, 1000)
MANIFEST_COLUMNS = ("speaker", "split", "utt", "text", "duration_s", "frames", "source", "engine", "voice",
                    "held_out")


def _sentences(cfg: CorpusConfig) -> dict[str, list[tuple[str, str]]]:
    """split -> [(utt, text)], utterances numbered u0001.. over train, val_1, test_a."""
    from .text import generate_sentences, read_sentences

    sizes = [cfg.n_train, cfg.n_val, cfg.n_test]
    if cfg.text_file:
        texts = read_sentences(cfg.text_file)
        short = sum(sizes) - len(texts)
        if short > 0:
            if len(texts) < cfg.n_val + cfg.n_test + 1:
                raise ValueError(f"{cfg.text_file}: {len(texts)} sentences, need > {cfg.n_val + cfg.n_test}")
            warnings.warn(f"{cfg.text_file}: only {len(texts)} sentences; train shrinks to {cfg.n_train - short}")
            sizes[0] -= short
    else:
        texts = generate_sentences(sum(sizes), cfg.seed)
    out, k = {}, 0
    for split, n in zip(SPLITS, sizes):
        out[split] = [(f"u{k + i + 1:04d}", texts[k + i]) for i in range(n)]
        k += n
    return out


def resolve_voices(cfg: CorpusConfig) -> tuple[str, list[str], list[str]]:
    """(org, training voices, held-out voices) among the installed ones.

    Missing voices are skipped with a warning; the training list is topped up from
    other installed voices so the profile keeps its size where possible.
    """
    from .voices import list_voices, parse_voice

    wanted = list(dict.fromkeys([cfg.org_voice, *cfg.tts_voices, *cfg.held_out_voices]))
    have = {str(v) for v in list_voices([parse_voice(w) for w in wanted])}  # warns about missing ones
    spare = [str(v) for v in list_voices()]
    org = cfg.org_voice
    if org not in have:
        org = next((s for s in spare if s not in cfg.held_out_voices), None)
        if org is None:
            raise RuntimeError("no TTS voice is installed (festival, flite, espeak-ng or piper)")
        warnings.warn(f"org voice {cfg.org_voice} is not installed; org is spoken by {org}")
    held = [v for v in cfg.held_out_voices if v in have and v != org]
    train = [v for v in cfg.tts_voices if v in have and v not in (org, *held)]
    spare = [v for v in spare if v not in (org, *held, *train)]
    while len(train) < len(cfg.tts_voices) and spare:
        train.append(spare.pop(0))
        warnings.warn(f"voice {train[-1]} stands in for a missing one")
    return org, train, held


def plan_jobs(cfg: CorpusConfig, root: Path, org: str, train_voices: list[str], held: list[str]) -> list[ClipJob]:
    """Every clip of the corpus: org and training voices in all splits, held-out in test_a."""
    from .voices import parse_voice

    sents = _sentences(cfg)
    style = RigStyle(lead_s=cfg.lead_s, strength_jitter=cfg.strength_jitter, noise_std=cfg.noise_std)
    jobs = []
    speakers = [(ORG_SPEAKER, org, SPLITS)] + [(parse_voice(v).name, v, SPLITS) for v in train_voices] \
        + [(parse_voice(v).name, v, ("test_a",)) for v in held]
    for speaker, voice, splits in speakers:
        for split in splits:
            jobs += [ClipJob(str(root), speaker, voice, split, utt, text, cfg.seed, style)
                     for utt, text in sents[split]]
    return jobs


def _check_same_config(cfg: CorpusConfig, root: Path) -> None:
    """Refuse to resume into a root built with a different config (stale clips would mix in)."""
    path = root / "corpus_config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    new = dataclasses.asdict(cfg)
    diff = sorted(k for k in new if k != "workers" and json.dumps(old.get(k)) != json.dumps(new[k]))
    if diff:
        raise ValueError(f"{root} was built with a different config (fields {diff}); use another --root_dir")


def write_manifest(root: Path, jobs: list[ClipJob], held: list[str]) -> list[dict]:
    """manifest.csv over the finished clips (sorted by speaker order, split, utt), atomically."""
    from .voices import parse_voice

    rows = []
    for j in jobs:
        if not is_done(j):
            continue
        spec = parse_voice(j.voice)
        dur = audio_duration_s(wav_path(root, j.speaker, j.split, j.utt))
        rows.append({
            "speaker": j.speaker, "split": j.split, "utt": j.utt, "text": j.text, "duration_s": f"{dur:.5f}",
            "frames": label_frames(dur), "source": "org" if j.is_org else "tts", "engine": spec.engine,
            "voice": j.voice, "held_out": int(j.voice in held and not j.is_org),
        })
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(root / "manifest.csv", buf.getvalue())
    return rows


def write_dataset_json(root: Path, cfg: CorpusConfig, jobs: list[ClipJob]) -> list[str]:
    """train_small_N (prefixes of one seeded shuffle of the org train pool), train_all, val_1, test_a."""
    by_split = {s: [j.utt for j in jobs if j.is_org and j.split == s] for s in SPLITS}
    pool = by_split["train"]
    order = [pool[i] for i in np.random.default_rng(cfg.seed).permutation(len(pool))]
    written = {f"train_small_{n}": order[:n] for n in SUBSET_SIZES if n <= len(pool)}
    written.update({"train_all": order, "val_1": by_split["val_1"], "test_a": by_split["test_a"]})
    for name, utts in written.items():
        atomic_write_text(root / "dataset_json" / f"{name}.json", json.dumps(utts) + "\n")
    return sorted(written)


def _run(jobs: list[ClipJob], workers: int) -> list[tuple[ClipJob, str, str]]:
    """Make all unfinished clips, one fresh process per speaker (its clips in plan order).

    Raises :class:`lib.workers.WorkerDiedError` naming the clips in progress when a
    worker process dies; every clip finished before is on disk and a rerun resumes.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, wait, FIRST_COMPLETED
    from concurrent.futures.process import BrokenProcessPool

    from tqdm.auto import tqdm

    from ..jit_cache import warm_numba_caches
    from ..workers import WorkerDiedError

    groups: dict[str, list[ClipJob]] = {}
    for j in jobs:
        groups.setdefault(j.speaker, []).append(j)
    todo = [g for g in groups.values() if not all(is_done(j) for j in g)]
    results = [(j, "skipped", "") for g in groups.values() if all(is_done(j) for j in g) for j in g]
    n_todo = sum(not is_done(j) for g in todo for j in g)
    if not todo:
        return results
    # The workers call librosa (import + YIN): compile its numba caches here, alone,
    # so two workers never write the same cache file at once (lib/jit_cache.py).
    warm_numba_caches("librosa")
    # spawn + one speaker per child (max_tasks_per_child=1): every speaker starts from
    # a fresh engine state, and no child inherits the parent's threads (forking a
    # process that holds torch can hang). ProcessPoolExecutor, not multiprocessing.Pool:
    # it notices a worker that dies instead of waiting for it forever.
    ctx = mp.get_context("spawn")
    running: set[str] = set()  # clips a worker has started and not finished

    def drain(bar) -> None:
        while True:
            try:
                kind, clip = progress.get_nowait()
            except queue.Empty:
                return
            if kind == "start":
                running.add(clip)
            else:
                running.discard(clip)
                bar.update()

    with tqdm(total=n_todo, desc="clips", unit="clip", disable=not n_todo) as bar, ctx.Manager() as manager:
        progress = manager.Queue()  # children report each clip's start and end
        with ProcessPoolExecutor(max(1, workers), mp_context=ctx, max_tasks_per_child=1) as pool:
            pending = {pool.submit(build_group, g, progress) for g in todo}
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                drain(bar)
                for f in finished:
                    try:
                        results += f.result()
                    except BrokenProcessPool:
                        for other in pending:
                            other.cancel()
                        n_kept = sum(is_done(j) for j in jobs)
                        raise WorkerDiedError("corpus build", sorted(running), kept=n_kept) from None
        drain(bar)
    return results


def build_corpus(cfg: CorpusConfig, root: str | Path | None = None) -> dict:
    """Build (or finish building) the corpus of ``cfg`` under ``root``.

    Returns a summary dict: root, clip counts (built/skipped/failed), failures
    [(clip, message)], voices, per-(speaker, split) counts, build_time_s.
    Same config and seed -> byte-identical labels, phones and manifest.
    """
    t0 = time.time()
    root = Path(root) if root is not None else paths.corpus_root(cfg.profile)
    root.mkdir(parents=True, exist_ok=True)
    _check_same_config(cfg, root)
    save_config(cfg, root / "corpus_config.json")
    org, train_voices, held = resolve_voices(cfg)
    jobs = plan_jobs(cfg, root, org, train_voices, held)
    results = _run(jobs, cfg.workers)
    rows = write_manifest(root, jobs, held)
    subsets = write_dataset_json(root, cfg, jobs)
    counts: dict[str, int] = {}
    for r in rows:
        counts[f"{r['speaker']}/{r['split']}"] = counts.get(f"{r['speaker']}/{r['split']}", 0) + 1
    failures = [(f"{j.speaker}/{j.split}/{j.utt}", msg) for j, status, msg in results if status == "failed"]
    return {
        "root": str(root), "profile": cfg.profile, "org_voice": org, "tts_voices": train_voices,
        "held_out_voices": held, "n_clips": len(rows),
        "n_built": sum(s == "built" for _, s, _ in results), "n_skipped": sum(s == "skipped" for _, s, _ in results),
        "failures": failures, "counts": counts, "subsets": subsets,
        "audio_s": round(sum(float(r["duration_s"]) for r in rows), 2), "build_time_s": round(time.time() - t0, 1),
    }


def cli_main(argv: list[str]) -> int:
    """`python -m lib build-corpus --profile quick [--root_dir DIR] [--text_file F] [--seed N] [--workers N]`"""
    ap = argparse.ArgumentParser(prog="python -m lib build-corpus", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    ap.add_argument("--root_dir", default=None, help="output folder (default data/corpus/<profile>)")
    ap.add_argument("--text_file", default=None, help="one sentence per line instead of the generator")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    cfg = profile_config(args.profile, seed=args.seed, workers=args.workers,
                         text_file=str(Path(args.text_file).resolve()) if args.text_file else None)
    from ..workers import WorkerDiedError

    try:
        summary = build_corpus(cfg, args.root_dir)
    except WorkerDiedError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    print(f"{summary['root']}: {summary['n_clips']} clips ({summary['audio_s']} s of audio), "
          f"{summary['n_built']} built, {summary['n_skipped']} already there, in {summary['build_time_s']} s")
    print(f"org = {summary['org_voice']}; training voices {summary['tts_voices']}; "
          f"held out {summary['held_out_voices']}")
    for clip, msg in summary["failures"]:
        print(f"FAILED {clip}: {msg}", file=sys.stderr)
    return 1 if summary["failures"] else 0


def ensure_corpus(root_dir: str | None, profile: str, prefer_demo: bool = False) -> Path:
    """The corpus a notebook works on (:func:`lib.paths.resolve_root`); when that is
    the built-in corpus of ``profile`` and it is not built yet, build it first (a
    later build of the same profile finds every clip done and costs nothing)."""
    from ..paths import resolve_root

    root = resolve_root(root_dir, profile, prefer_demo)
    if not root_dir and not (root / "manifest.csv").is_file() and root == paths.corpus_root(profile):
        build_corpus(profile_config(profile), root)
    return root
