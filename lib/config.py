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


def front_end_plan(feature_rate_hz: int, face_fps: int = FACE_FPS) -> tuple[int, int]:
    """(rate the model's stride-2 front end runs at, number of stride-2 layers).

    Rates that divide keep the exact-division check: ``feature_rate_hz / face_fps``
    must be a power of two (50 or 100 Hz to 25 fps, 100 Hz to 50 fps), and the
    features are used as they are, the original's path unchanged; another
    integer ratio (75 Hz at 25 fps = 3) is an error, as before. Rates that do
    not divide (100 Hz to 30 fps is 3.33) and the ratio 1 (50 Hz at 50 fps) are
    resampled in time to ``face_fps * 2**k`` with
    ``k = max(1, round(log2(rate / fps)))``: the nearest such rate on a log scale,
    but at least one stride-2 layer, so every rate gets the same conv + GLU
    front end. E.g. 100 Hz -> 30 fps: 120 Hz, 2 layers; 50 Hz -> 30 fps: 60 Hz,
    1 layer; 100 Hz -> 24 fps: 96 Hz, 2 layers; 50 Hz -> 60 fps: 120 Hz, 1 layer.
    """
    if feature_rate_hz <= 0 or face_fps <= 0:
        raise ValueError(f"rates must be positive, got {feature_rate_hz} Hz, {face_fps} fps")
    if feature_rate_hz % face_fps == 0 and feature_rate_hz != face_fps:
        return feature_rate_hz, n_stride2_layers(feature_rate_hz, face_fps)  # raises unless a power of two
    k = max(1, int(round(math.log2(feature_rate_hz / face_fps))))
    return face_fps * 2**k, k


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


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Audio-to-face model (lib.model.TalkingFaceModel).

    ``feature_rate_hz`` / ``face_fps`` fixes the number of stride-2 conv layers
    (:func:`n_stride2_layers`). For layered features (HuBERT, (L, T, D) per
    utterance) ``feature_combine`` learns softmax weights over the
    ``n_feature_layers`` layers; otherwise the last layer is used.
    """

    arch: str = "transformer"  # "transformer" | "lstm" (the original's default)
    input_dim: int = 39  # feature dimension D
    feature_rate_hz: int = FEATURE_RATES_HZ["mfcc"]
    face_fps: int = FACE_FPS
    n_channels: int = 37
    d_model: int = 128
    n_layers: int = 1
    n_heads: int = 4
    ff_dim: int = 2048
    dropout: float = 0.5
    rnn_hidden: int = 128
    feature_combine: bool = False
    n_feature_layers: int = 1


# --loss_type of the original CLI -> (loss on aligned pairs, loss on unaligned pairs)
LOSS_TYPES: dict[str, tuple[str, str]] = {
    "SoftDTW": ("softdtw", "softdtw"),
    "L2": ("l2", "l2"),
    "L1": ("l1", "l1"),
    "hybrid": ("l2", "softdtw"),
}


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Training loss per pair type (lib.losses.build_loss).

    Aligned pairs (a speaker's own labels) use ``aligned``; unaligned pairs (a
    TTS clip with the recorded speaker's labels) use ``unaligned``. Soft-DTW
    frame cost is the channel-weighted squared error, averaged over channels
    (``sdtw_cost="mean"``) or summed (``"sum"``, the original), and the value is
    divided by the label length when ``sdtw_normalize`` (the original: not).
    """

    aligned: str = "l2"  # "l1" | "l2" | "softdtw"
    unaligned: str = "softdtw"
    gamma: float = 0.001
    channel_weights: str = "t2a"  # "t2a" (by ARKit name, 1.0 otherwise) | "none" | path to {name: weight} JSON
    sdtw_cost: str = "mean"  # "mean" | "sum"
    sdtw_normalize: bool = True
    exact_weight_grad: bool = True
    band_frames: int | None = None  # Sakoe-Chiba radius in label frames; None = no band

    @classmethod
    def from_loss_type(cls, loss_type: str, **overrides: Any) -> "LossConfig":
        """Map the original ``--loss_type`` (SoftDTW, L2, L1, hybrid) to a config."""
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"unknown loss_type {loss_type!r}; known: {sorted(LOSS_TYPES)}")
        aligned, unaligned = LOSS_TYPES[loss_type]
        return cls(aligned=aligned, unaligned=unaligned, **overrides)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training run (lib.train): data selection, optimiser, budget, checkpoints.

    Defaults follow the original: Adam (lr 1e-3, weight decay 1e-5), lr x 0.95
    per epoch, 30 epochs, batch 8, seed 999. The budget is ``max_epochs`` or,
    when set, ``max_steps`` (optimizer steps); validation on org ``val_split``
    runs after every epoch, or every ``eval_every_steps`` steps when set.
    ``org_share_per_batch``: share of aligned (org) clips in each batch once TTS
    clips are present, or "uniform" (the original's plain shuffle).
    """

    name: str = "demo"
    root_dir: str = "data/corpus/quick"
    feature: str = "mfcc"  # extractor name (lib.features.extract.EXTRACTORS)
    feature_dir: str | None = None  # folder under wav_features/<speaker>/ (default: ``feature``)
    train_speakers: tuple[str, ...] = (ORG_SPEAKER,)  # ("all",): every non-held-out speaker
    train_json: str | None = None  # dataset_json subset name or path; None = the whole train split
    train_split: str = "train"
    val_split: str = "val_1"
    output_path: str = "results/runs"  # run folder = <output_path>/<name>
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_decay_per_epoch: float = 0.95
    max_epochs: int = 30
    max_steps: int | None = None
    eval_every_steps: int | None = None
    checkpoint_every_steps: int = 50  # last.pt also written at every evaluation
    early_stop_patience_evals: int | None = None  # evaluations without improvement; None = off
    batch_size: int = 8
    org_share_per_batch: float | str = 0.5
    grad_clip_norm: float | None = None
    seed: int = 999
    threads: int | None = None  # torch CPU threads; None = torch's default
    device: str | None = None  # None: cuda when available, else cpu
    deterministic: bool = True  # torch.use_deterministic_algorithms (CPU runs repeat exactly)
    keep_eval_checkpoints: bool = True  # model weights at every evaluation (for --test_epoch N)
    progress: bool = True
    # Long takes: each training item is a random window of this many seconds
    # (aligned pairs: features and labels cut at the same times); None = whole clips.
    window_s: float | None = None
    # Length bucketing: within each run of this many batches, the batches are
    # regrouped so that each holds clips of similar length (same share of org
    # clips, same clips per chunk, so an epoch covers the same data); 0 = off, the
    # original's draw. Cuts the padded frames a step computes on (lib.data).
    bucket_batches: int = 0


# Fields added after runs were first keyed, with the value that means "as before":
# run keys (lib.studies.runner) leave them out at that value, so existing runs keep their keys.
KEY_NEUTRAL_DEFAULTS: dict[str, Any] = {"window_s": None, "bucket_batches": 0}
