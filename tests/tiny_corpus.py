"""A tiny corpus in the original layout, made in a temporary folder for tests.

Speakers: ``org`` (own labels, train/val_1/test_a), ``tts1`` (a TTS voice
speaking org's utterances with other durations; oracle labels for test_a) and
``held`` (a held-out voice, marked in manifest.csv). Audio: tones whose loudness
follows the JawOpen label, so a model has something to learn. Features: real
MFCC through lib.features.extract (in-process, one worker).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lib import io
from lib.channels import T2A_37
from lib.config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS, label_frames

# The smallest model the training tests use (python -m lib train --set ...).
TINY_MODEL = ["--set", "model.d_model=16", "--set", "model.ff_dim=32", "--set", "model.n_heads=2",
              "--set", "model.dropout=0.1"]
SPLIT_UTTS = {"train": [f"u{i:03d}" for i in range(8)], "val_1": ["u100", "u101"], "test_a": ["u200", "u201"]}
JAW = T2A_37.index("JawOpen")


def _clip(rng: np.random.Generator, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(wav (samples,), labels (frames, 37)) with loudness tracking JawOpen."""
    frames = label_frames(duration_s)
    t = np.arange(frames) / FACE_FPS
    jaw = 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, 6))
    labels = np.clip(0.05 * rng.standard_normal((frames, len(T2A_37))), 0, 1)
    labels[:, JAW] = jaw
    n = int(round(duration_s * AUDIO_SAMPLE_RATE_HZ))
    env = np.interp(np.arange(n) / AUDIO_SAMPLE_RATE_HZ, t, jaw)
    wav = env * np.sin(2 * np.pi * rng.uniform(150, 300) * np.arange(n) / AUDIO_SAMPLE_RATE_HZ)
    return (0.5 * wav + 0.01 * rng.standard_normal(n)).astype(np.float32), labels.astype(np.float32)


def installed_voices() -> list[str]:
    """The TTS voices installed here (engine:voice), [] when no engine is."""
    import warnings

    try:
        from lib.corpus.voices import list_voices

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return [str(v) for v in list_voices()]
    except Exception:  # no engine module or engine -> nothing can be synthesised here
        return []


def make_tiny_corpus(root: Path, seed: int = 0) -> Path:
    from lib.features.extract import extract_corpus

    rng = np.random.default_rng(seed)
    rows = []
    for split, utts in SPLIT_UTTS.items():
        for utt in utts:
            dur = round(float(rng.uniform(0.6, 1.2)), 3)
            for spk in ("org", "tts1", "held"):
                if spk == "held" and split == "val_1":
                    continue
                d = dur if spk == "org" else round(dur * float(rng.uniform(0.8, 1.25)), 3)
                wav, labels = _clip(rng, d)
                io.write_audio(root / "wavs" / spk / split / f"{utt}.wav", wav)
                if spk == "org":
                    io.write_label_csv(root / "labels" / spk / split / f"{utt}.csv", labels, T2A_37)
                elif split == "test_a":
                    io.write_label_csv(root / "labels_oracle" / spk / split / f"{utt}.csv", labels, T2A_37)
                rows.append(f"{spk},{split},{utt},,{d},{label_frames(d)},{'org' if spk == 'org' else 'tts'},"
                            f"{int(spk == 'held')}")
    io.atomic_write_text(root / "manifest.csv",
                         "speaker,split,utt,text,duration_s,frames,source,held_out\n" + "\n".join(rows) + "\n")
    (root / "dataset_json").mkdir(exist_ok=True)
    (root / "dataset_json" / "first_two.json").write_text(json.dumps(SPLIT_UTTS["train"][:2]))
    report = extract_corpus(root, "mfcc", workers=1, progress=False)
    assert not report.failed, report.summary()
    return root
