"""A stand-in for a production rig, made in a temporary folder for tests.

The labels of tests/tiny_corpus.py (T2A channels at 25 fps, loudness tracking
JawOpen) are re-keyed as a studio would deliver them: a renamed, non-ARKit
subset of the channels (``jaw_open_c``, ``mouth_funnel_ul``, ...), resampled to
``face_fps`` (30 or 60), in takes of several concatenated sentences, with a
``face.json`` saying so. Features: real MFCC (100 Hz) through lib.features.extract.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lib import io
from lib.channels import T2A_37, FaceFormat
from lib.config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS, label_frames
from lib.ingest.livelink import resample_frames
from tiny_corpus import _clip

# T2A name -> the studio's name for it (a subset, in the studio's own order).
RENAMED = {
    "JawOpen": "jaw_open_c", "JawForward": "jaw_thrust_c", "MouthFunnel": "mouth_funnel_ul",
    "MouthPucker": "mouth_pucker_c", "MouthClose": "lips_seal_c", "MouthSmileLeft": "mouth_corner_up_l",
    "MouthSmileRight": "mouth_corner_up_r", "MouthStretchLeft": "mouth_stretch_l",
    "MouthRollLower": "lip_roll_lo_c", "BrowInnerUp": "brow_inner_raise_c", "CheekPuff": "cheek_puff_c",
    "NoseSneerLeft": "nose_wrinkle_l",
}
RIG_CHANNELS = tuple(RENAMED.values())
RIG_JAW = RIG_CHANNELS.index("jaw_open_c")
SPLIT_TAKES = {"train": 6, "val_1": 1, "test_a": 2}
SENTENCES_PER_TAKE = 5  # takes of 6-10 s: a 30 fps take read at 25 fps is > 1 s too long


def make_take(rng: np.random.Generator, face_fps: int, sentences: int = SENTENCES_PER_TAKE,
              sentence_s: tuple[float, float] = (1.2, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """(wav (samples,), labels (round(duration_s * face_fps), len(RIG_CHANNELS))) of one take."""
    cols = [T2A_37.index(n) for n in RENAMED]
    wavs, labs = [], []
    for _ in range(sentences):
        d = round(float(rng.uniform(*sentence_s)), 3)
        wav, lab = _clip(rng, d)  # 25 fps, T2A_37
        n = len(wav)
        wavs.append(wav)
        # Exactly the sentence's own samples at 25 fps (frames = round(d * 25)).
        labs.append(lab[:, cols])
        assert lab.shape[0] == label_frames(n / AUDIO_SAMPLE_RATE_HZ)
    wav = np.concatenate(wavs)
    lab25 = np.concatenate(labs, axis=0)
    duration_s = len(wav) / AUDIO_SAMPLE_RATE_HZ
    labels = resample_frames(lab25, FACE_FPS, face_fps, label_frames(duration_s, face_fps))
    return wav, labels


def make_rig_corpus(root: Path, face_fps: int = 30, seed: int = 0, extract: bool = True,
                    with_face_json: bool = True) -> Path:
    """Corpus of one speaker (org) with the stand-in rig at ``face_fps``; returns root."""
    rng = np.random.default_rng(seed)
    for split, n in SPLIT_TAKES.items():
        for k in range(n):
            wav, labels = make_take(rng, face_fps)
            io.write_audio(root / "wavs" / "org" / split / f"{split}_take{k:02d}.wav", wav)
            io.write_label_csv(root / "labels" / "org" / split / f"{split}_take{k:02d}.csv", labels, RIG_CHANNELS)
    if with_face_json:
        FaceFormat.make(list(RIG_CHANNELS), face_fps).save(root)
    if extract:
        from lib.features.extract import extract_corpus

        report = extract_corpus(root, "mfcc", workers=1, progress=False)
        assert not report.failed, report.summary()
    return root
