"""`python -m lib augment --root_dir DIR`: TTS voices speaking every org utterance of any corpus.

The paper's augmentation for a corpus that has text: every org utterance listed
in ``manifest.csv`` (with its ``text``) is synthesised by each offline TTS voice
of :mod:`lib.corpus.voices` (festival, flite, espeak-ng, piper) and written as
``wavs/<voice>/<split>/<utt>.wav`` under org's utterance name, so the training
code pairs it with org's labels of the same name (the unaligned pairs). The
engine's phone timings go to ``phones/<voice>/<split>/<utt>.csv``. Held-out
voices speak only ``test_a`` and are marked ``held_out`` in the manifest, so
training never uses them, as in the built-in corpus.

Defaults: the voices of a built-in corpus profile (``--profile default``: 10
training voices, 2 held out); missing engines are skipped with a warning, but a
voice named on the command line that is not installed is an error. Resumable (a
clip whose wav exists is skipped), parallel over ``--workers`` processes; a text
a voice cannot say is named at the end and makes the exit status 1.
"""
from __future__ import annotations

import argparse
import csv
import io as _io
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_SPLITS, ORG_SPEAKER, label_frames, save_config
from ..io import DataError, atomic_write_text, audio_duration_s

# Clips per pool job. Each job runs in a fresh process (see synth_chunk), so a chunk
# must be large enough to amortise the start-up (~1-2 s) and small enough for a moving bar.
CHUNK_CLIPS = 60


@dataclass(frozen=True)
class AugmentConfig:
    """Voices to add (``engine:voice[@rate]``); held-out voices speak test_a only."""

    voices: tuple[str, ...]
    held_out_voices: tuple[str, ...] = ()
    splits: tuple[str, ...] = DEFAULT_SPLITS
    held_out_split: str = "test_a"
    workers: int = 2


def org_texts(root: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Org utterances with text from ``<root>/manifest.csv``: ([(split, utt, text)], problems)."""
    path = root / "manifest.csv"
    if not path.is_file():
        raise DataError(path, "no manifest.csv: augment needs the org utterances and their text "
                              "(import-videos and build-corpus write it)")
    rows = list(csv.DictReader(_io.StringIO(path.read_text())))
    if not rows or not {"speaker", "split", "utt", "text"} <= set(rows[0]):
        raise DataError(path, "manifest needs the columns speaker, split, utt, text")
    clips, problems = [], []
    for r in rows:
        if r["speaker"] != ORG_SPEAKER:
            continue
        text = " ".join((r["text"] or "").split())
        if text:
            clips.append((r["split"], r["utt"], text))
        else:
            problems.append((f"{ORG_SPEAKER}/{r['split']}/{r['utt']}", f"{path}: no text for this utterance"))
    if not clips:
        raise DataError(path, f"no {ORG_SPEAKER} utterance has text; nothing to synthesise")
    return clips, problems


def _out_paths(root: Path, speaker: str, split: str, utt: str) -> tuple[Path, Path]:
    return root / "phones" / speaker / split / f"{utt}.csv", root / "wavs" / speaker / split / f"{utt}.wav"


def synth_chunk(root: str, voice: str, clips: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Pool job: speak ``clips`` [(split, utt, text)] with ``voice``; skip finished ones.

    Returns [(clip name, status built | skipped | failed, message)]; a text the
    voice cannot say is a failed entry, never an exception (the chunk goes on).
    """
    from ..corpus.builder_clips import write_phones_csv
    from ..corpus.voices import parse_voice, synthesize
    from ..io import write_audio

    import multiprocessing as mp

    spec = parse_voice(voice)
    if spec.engine == "espeak" and mp.parent_process() is not None:
        from ..corpus.engines import espeak

        # A fresh pool process that speaks one voice is the clean process espeak-ng
        # needs (lib.corpus.engines.espeak): synthesise here, not in a grandchild
        # (which a pool worker's exit would wait for).
        espeak.synthesize_in_this_process()
    out = []
    for split, utt, text in clips:
        name = f"{spec.name}/{split}/{utt}"
        p_phones, p_wav = _out_paths(Path(root), spec.name, split, utt)
        if p_wav.is_file():
            out.append((name, "skipped", ""))
            continue
        try:
            syn = synthesize(spec, text)
            write_phones_csv(p_phones, syn.phones)
            write_audio(p_wav, syn.wav)  # last: its presence marks the clip finished
            out.append((name, "built", ""))
        except Exception as e:  # noqa: BLE001 - one bad text must not stop the voice
            out.append((name, "failed", f"text {text!r}: {type(e).__name__}: {e}"))
    return out


def resolve_voices(voices: list[str], held: list[str], strict: bool) -> tuple[list[str], list[str]]:
    """Installed (training, held-out) voices. ``strict``: a missing voice is an error
    (the user named it); else it is skipped with the warning ``list_voices`` gives."""
    from ..corpus.voices import list_voices, parse_voice

    specs = {v: parse_voice(v) for v in [*voices, *held]}  # raises on a malformed spec
    both = sorted({parse_voice(v).name for v in voices} & {parse_voice(v).name for v in held})
    if both:
        raise ValueError(f"voices {both} are both training and held-out voices")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        have = {str(s) for s in list_voices(list(specs.values()))}
    missing = [v for v in specs if str(specs[v]) not in have]
    if missing and strict:
        raise ValueError(f"TTS voices not installed here: {missing} ({'; '.join(str(w.message) for w in caught)})")
    for w in caught:
        warnings.warn(str(w.message))
    keep = lambda vs: [str(specs[v]) for v in vs if str(specs[v]) in have]  # noqa: E731
    return keep(voices), keep(held)


def update_manifest(root: Path, voices: list[str], held: list[str], planned: list[tuple[str, str, str, str]]) -> int:
    """Replace the manifest rows of these voices by their finished clips; returns that count.

    ``planned``: (voice, split, utt, text) of every clip asked for.
    """
    from ..channels import FaceFormat
    from ..corpus.builder import MANIFEST_COLUMNS
    from ..corpus.voices import parse_voice

    fps = FaceFormat.of_corpus(root).face_fps
    path = root / "manifest.csv"
    rows = list(csv.DictReader(_io.StringIO(path.read_text())))
    names = {parse_voice(v).name for v in [*voices, *held]}
    rows = [r for r in rows if r.get("speaker") not in names]
    columns = list(MANIFEST_COLUMNS) + [c for c in (rows[0] if rows else {}) if c not in MANIFEST_COLUMNS]
    n = 0
    for voice, split, utt, text in planned:
        spec = parse_voice(voice)
        wav = _out_paths(root, spec.name, split, utt)[1]
        if not wav.is_file():
            continue
        dur = audio_duration_s(wav)
        rows.append({"speaker": spec.name, "split": split, "utt": utt, "text": text, "duration_s": f"{dur:.5f}",
                     "frames": label_frames(dur, fps), "source": "tts", "engine": spec.engine, "voice": voice,
                     "held_out": int(voice in held)})
        n += 1
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
    return n


def augment(root: str | Path, cfg: AugmentConfig, strict: bool = True, progress: bool = True) -> dict:
    """Add ``cfg``'s voices to the corpus at ``root``. Returns {voices, held_out_voices,
    n_built, n_skipped, n_clips (in the manifest for these voices), failures [(clip, message)]}."""
    from ..corpus.voices import parse_voice
    from .batch import run_jobs

    root = Path(root)
    clips, failures = org_texts(root)
    voices, held = resolve_voices(list(cfg.voices), list(cfg.held_out_voices), strict)
    if not voices and not held:
        raise ValueError("no requested TTS voice is installed")
    planned, jobs = [], []
    for voice in [*voices, *held]:
        splits = (cfg.held_out_split,) if voice in held else cfg.splits
        mine = [c for c in clips if c[0] in splits]
        planned += [(voice, s, u, t) for s, u, t in mine]
        for i in range(0, len(mine), CHUNK_CLIPS):
            jobs.append((f"{parse_voice(voice).name}[{i}:{i + CHUNK_CLIPS}]",
                         (str(root), voice, mine[i:i + CHUNK_CLIPS])))
    result = run_jobs(synth_chunk, jobs, workers=cfg.workers, desc="augment", unit="chunk", progress=progress,
                      fresh_process_per_job=True)
    failures += result.failures  # a chunk whose worker died
    statuses = [r for rs in result.values.values() for r in rs]
    failures += [(name, msg) for name, status, msg in statuses if status == "failed"]
    save_config(cfg, root / "augment_config.json")
    n_clips = update_manifest(root, voices, held, planned)
    return {"voices": voices, "held_out_voices": held, "n_clips": n_clips,
            "n_built": sum(s == "built" for _, s, _ in statuses),
            "n_skipped": sum(s == "skipped" for _, s, _ in statuses), "failures": failures}


def cli_main(argv: list[str]) -> int:
    from ..corpus.profiles import PROFILES

    ap = argparse.ArgumentParser(prog="python -m lib augment", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root_dir", required=True, help="corpus with manifest.csv (org rows with text)")
    ap.add_argument("--voices", nargs="+", default=None, metavar="ENGINE:VOICE[@RATE]",
                    help="training voices (default: those of --profile)")
    ap.add_argument("--held_out_voices", nargs="*", default=None, metavar="ENGINE:VOICE[@RATE]",
                    help="voices that speak test_a only and are never trained on (default: --profile's; "
                         "give the flag alone for none)")
    ap.add_argument("--profile", default="default", choices=sorted(PROFILES),
                    help="built-in corpus profile whose voice lists are the defaults")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no_progress", action="store_true")
    a = ap.parse_args(argv)
    prof = PROFILES[a.profile]
    strict = a.voices is not None or a.held_out_voices is not None
    cfg = AugmentConfig(voices=tuple(a.voices if a.voices is not None else prof.tts_voices),
                        held_out_voices=tuple(a.held_out_voices if a.held_out_voices is not None
                                              else prof.held_out_voices), workers=a.workers)
    try:
        s = augment(a.root_dir, cfg, strict=strict, progress=not a.no_progress)
    except (DataError, ValueError) as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 2
    print(f"{a.root_dir}: {s['n_built']} clips synthesised, {s['n_skipped']} already there; "
          f"{s['n_clips']} TTS clips in the manifest; voices {s['voices']}, held out {s['held_out_voices']}")
    for clip, msg in s["failures"]:
        print(f"FAILED {clip}: {msg}", file=sys.stderr)
    return 1 if s["failures"] else 0
