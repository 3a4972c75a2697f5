"""Rates and dataclass configs.

Every rate constant of the toolkit and its derivation lives here, checked by
exact division: audio/face misalignment is the most common silent bug in this
field, so nothing else may hard-code a rate.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, TypeVar

AUDIO_SAMPLE_RATE_HZ = 16_000  # every waveform inside the library
FACE_FPS = 25  # label frame rate of the original system

# Frame rates of the audio features, and the hop (in samples at 16 kHz) that yields them.
FEATURE_RATES_HZ: dict[str, int] = {
    "mfcc": 100,  # 10 ms hop
    "mfcc_t2a": 100,
    "ppg": 50,  # 20 ms hop, like HuBERT
    "hubert": 50,  # HuBERT's conv feature encoder has a total stride of 320 samples
}


def hop_samples(rate_hz: int, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ) -> int:
    """Samples per feature frame; raises unless the rate divides the sample rate."""
    if sample_rate_hz % rate_hz:
        raise ValueError(f"feature rate {rate_hz} Hz does not divide {sample_rate_hz} Hz")
    return sample_rate_hz // rate_hz


def n_stride2_layers(feature_rate_hz: int, face_fps: int = FACE_FPS) -> int:
    """Number of stride-2 layers that take ``feature_rate_hz`` down to ``face_fps``.

    50 Hz -> 25 fps: 1 layer; 100 Hz -> 25 fps: 2 layers. Raises unless the ratio
    is an exact power of two.
    """
    if feature_rate_hz % face_fps:
        raise ValueError(f"feature rate {feature_rate_hz} Hz is not a multiple of {face_fps} fps")
    ratio = feature_rate_hz // face_fps
    n = int(round(math.log2(ratio))) if ratio >= 1 else -1
    if ratio < 1 or 2**n != ratio:
        raise ValueError(f"{feature_rate_hz} Hz / {face_fps} fps = {ratio} is not a power of two")
    return n


def label_frames(duration_s: float, face_fps: int = FACE_FPS) -> int:
    """Label frames of a clip: round(duration_s * face_fps) (the original's convention)."""
    return int(round(duration_s * face_fps))


# Sanity of the built-in rates, checked at import so a bad edit fails at once.
for _name, _rate in FEATURE_RATES_HZ.items():
    hop_samples(_rate)
    n_stride2_layers(_rate)

DEFAULT_SPLITS = ("train", "val_1", "test_a")
ORG_SPEAKER = "org"

C = TypeVar("C")


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a dataclass config as JSON (atomically)."""
    from .io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True) + "\n")


def load_config(cls: type[C], path: str | Path) -> C:
    """Read a dataclass config from JSON; unknown keys are an error (typos must not pass)."""
    raw = json.loads(Path(path).read_text())
    return config_from_dict(cls, raw, source=str(path))


def config_from_dict(cls: type[C], raw: dict, source: str = "<dict>") -> C:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} fields {unknown}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in raw:
            v = raw[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where a corpus lives and how to read it."""

    root_dir: str = "data/corpus/quick"
    org_speaker: str = ORG_SPEAKER
    splits: tuple[str, ...] = DEFAULT_SPLITS
    channel_set: str = "t2a37"
    face_fps: int = FACE_FPS
    sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ
    # Largest tolerated gap between audio duration and label duration.
    max_duration_mismatch_s: float = 1.0
