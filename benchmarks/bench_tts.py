"""Synthesis speed of every installed TTS voice of the built-in corpus.

Speed = seconds of 16 kHz audio produced per second of wall time, over
``--sentences`` generated sentences, after one warm-up sentence per voice
(process/model start-up is reported separately as ``first_call_s``).

    .venv/bin/python benchmarks/bench_tts.py --sentences 20 [--csv results/bench_tts.csv]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.corpus.text import generate_sentences  # noqa: E402
from lib.corpus.voices import list_voices, parse_voice, synthesize  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--voices", nargs="*", help="engine:voice[@rate] (default: all installed)")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")
    args = parser.parse_args(argv)

    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        specs = list_voices([parse_voice(v) for v in args.voices] if args.voices else None)
    for w in skipped:
        print(f"skipped: {w.message}", file=sys.stderr)
    sentences = generate_sentences(args.sentences + 1, args.seed)
    rows = []
    for spec in specs:
        t0 = time.perf_counter()
        synthesize(spec, sentences[0])  # warm-up: process start, model load, imports
        first = time.perf_counter() - t0
        audio_s = 0.0
        t0 = time.perf_counter()
        for text in sentences[1:]:
            audio_s += synthesize(spec, text).duration_s
        wall = time.perf_counter() - t0
        rows.append((spec.name, spec.engine, first, audio_s, wall, audio_s / wall))
        print(f"{spec.name:34s} first_call {first:6.2f} s   audio {audio_s:7.1f} s   wall {wall:6.2f} s"
              f"   speed {audio_s / wall:7.1f} x real time", flush=True)
    if args.csv:
        from lib.io import atomic_write_text

        lines = ["voice,engine,first_call_s,audio_s,wall_s,audio_s_per_wall_s"]
        lines += [f"{n},{e},{f:.3f},{a:.3f},{w:.3f},{s:.2f}" for n, e, f, a, w, s in rows]
        atomic_write_text(args.csv, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
