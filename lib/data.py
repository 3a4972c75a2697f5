"""Training data over the on-disk layout: datasets, padding collate, org-share batches.

An item is one clip of one speaker: its cached features
(``<root>/wav_features/<speaker>/<feature_dir>/<split>/<utt>.npy``) and its
target labels from :class:`lib.layout.Corpus` (a speaker's own labels, or the
recorded speaker's labels of the same utterance name: an unaligned pair).

Batches mix aligned (org) and unaligned (TTS) clips in a fixed share
(:class:`OrgShareBatchSampler`), because with 13 TTS voices a uniform draw would
leave about one org clip per batch of 8 and the aligned evidence would be
drowned out. The batch order of an epoch is a pure function of (seed, epoch),
so training resumes mid-epoch by regenerating the epoch and skipping the
batches already done.

Long takes (:meth:`FaceDataset.set_window`): each training item is a random
window of ``window_s`` seconds, so a step's memory does not grow with the take.
Aligned pairs cut features and labels at the same times (window starts on a
grid where both frame rates meet exactly). Unaligned pairs (a TTS clip with
org's labels of the same sentence) have no frame correspondence to cut at:
they are kept whole when the labels fit in the window (TTS clips are
sentences), else both sides are cut at the same FRACTION of their lengths
(same relative start and span), the best guess without an alignment; soft-DTW
absorbs the local tempo difference inside the window. The window of an item is
a pure function of (seed, epoch, batch, position), so resume stays exact.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .io import DataError
from .layout import Corpus


def held_out_speakers(corpus: Corpus) -> set[str]:
    """Speakers with any manifest row whose ``held_out`` column is true (1/True/yes)."""
    if not (corpus.root / "manifest.csv").is_file():
        return set()  # a scanned manifest has no held_out column: skip the scan
    m = corpus.manifest()
    if "held_out" not in m.columns:
        return set()
    flag = m["held_out"].astype(str).str.strip().str.lower().isin(("1", "true", "yes"))
    return set(m.loc[flag, "speaker"].astype(str))


def resolve_speakers(corpus: Corpus, speakers: Sequence[str]) -> list[str]:
    """Training speakers: "all" expands to every speaker folder; held-out voices are
    always dropped (with a warning when named explicitly); unknown names are errors."""
    held = held_out_speakers(corpus)
    names = list(corpus.speakers) if list(speakers) == ["all"] else list(dict.fromkeys(speakers))
    unknown = [s for s in names if s not in corpus.speakers]
    if unknown:
        raise DataError(corpus.root / "wavs", f"unknown speakers {unknown}; present: {corpus.speakers}")
    dropped = [s for s in names if s in held]
    if dropped and list(speakers) != ["all"]:
        warnings.warn(f"held-out voices {dropped} are never trained on; dropped from the training speakers")
    return [s for s in names if s not in held]


def read_subset(corpus: Corpus, train_json: str | None) -> set[str] | None:
    """Utterance names of a ``train_json`` subset: a name under ``<root>/dataset_json``,
    the original's ``dataset_json/<name>.json`` form, or a path to a JSON file."""
    if not train_json:
        return None
    p = Path(train_json)
    if p.is_file() and p.suffix == ".json" and not (corpus.root / "dataset_json" / p.name).is_file():
        import json

        try:
            return set(json.loads(p.read_text()))
        except ValueError as e:
            raise DataError(p, f"unreadable subset list ({e})") from None
    return set(corpus.dataset_json(p.name))


FEATURE_CACHE_ENV = "T2A_FEATURE_CACHE_MB"


def feature_cache_mb() -> float:
    """In-memory feature budget per dataset (MB): ``$T2A_FEATURE_CACHE_MB``, default 2048."""
    return float(os.environ.get(FEATURE_CACHE_ENV, 2048))


@dataclass(frozen=True)
class ItemKey:
    speaker: str
    split: str
    utt: str


class FaceDataset(Dataset):
    """Clips of ``speakers`` in ``split`` with their features and target labels.

    Args:
        corpus: the corpus to read.
        speakers: speaker folders (already resolved; see :func:`resolve_speakers`).
        split: "train", "val_1", "test_a", ...
        feature_dir: folder name under ``wav_features/<speaker>/`` (e.g. "mfcc").
        subset: utterance names to keep (None: all); applies to every speaker,
            since TTS clips carry org's names.
    Items are dicts: features (T, D) or (L, T, D) float32 tensor, labels (M, C)
    float32 tensor, aligned bool, speaker, utt.
    """

    def __init__(self, corpus: Corpus, speakers: Sequence[str], split: str, feature_dir: str,
                 subset: set[str] | None = None):
        from .features.extract import feature_path

        self.corpus, self.split, self.feature_dir = corpus, split, feature_dir
        self.keys = [ItemKey(s, split, u) for s in speakers for u in corpus.utterances(s, split)
                     if subset is None or u in subset]
        missing = [feature_path(corpus.root, k.speaker, feature_dir, split, k.utt) for k in self.keys]
        missing = [p for p in missing if not p.is_file()]
        if missing:
            raise DataError(missing[0], f"no {feature_dir} features ({len(missing)} missing in split {split}); "
                                        f"run `python -m lib extract --root_dir {corpus.root} --feature ...`")
        # Labels are small and read from CSV/pickle: read once, keep. Features are kept
        # in memory too once read (a step used to read one .npy per item; collate
        # copies them into the batch, so the cached arrays are never written), up to
        # FEATURE_CACHE_MB per dataset: HuBERT's all-layer features may not fit, and
        # beyond the budget items are read from disk as before.
        self._labels: dict[ItemKey, tuple[np.ndarray, bool]] = {}
        self._feats: dict[int, np.ndarray] = {}
        self._feat_bytes = 0
        self.aligned = [self._target(k)[1] for k in self.keys]
        self.window_frames: int | None = None  # label frames per window; None = whole clips
        self.feature_rate_hz: int | None = None

    def set_window(self, window_s: float | None, feature_rate_hz: int) -> None:
        """Cut items to windows of ``window_s`` seconds (None: whole clips)."""
        if window_s is not None and window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        fps = self.corpus.face_fps
        self.window_frames = None if window_s is None else max(1, int(round(window_s * fps)))
        self.feature_rate_hz = int(feature_rate_hz)

    def _target(self, k: ItemKey) -> tuple[np.ndarray, bool]:
        if k not in self._labels:
            self._labels[k] = self.corpus.labels(k.speaker, k.split, k.utt)
        return self._labels[k]

    def __len__(self) -> int:
        return len(self.keys)

    def features(self, i: int) -> np.ndarray:
        """Features of item ``i``, (T, D) or (L, T, D) float32 (cached in memory within the budget)."""
        from .features.extract import load_features

        if i in self._feats:
            return self._feats[i]
        k = self.keys[i]
        x = np.asarray(load_features(self.corpus.root, k.speaker, self.feature_dir, k.split, k.utt), np.float32)
        if self._feat_bytes + x.nbytes <= feature_cache_mb() * 2**20:
            self._feats[i] = x
            self._feat_bytes += x.nbytes
        return x

    def feature_frames(self) -> list[int]:
        """Feature frames of every item (reads, and so caches, every item's features)."""
        return [int(self.features(i).shape[-2]) for i in range(len(self))]

    def __getitem__(self, i: int) -> dict:
        return self.item(i)

    def item(self, i: int, crop_key: Sequence[int] | None = None) -> dict:
        """Item ``i``; with a window set and a ``crop_key`` (seed, epoch, batch, slot), a random window of it."""
        k = self.keys[i]
        labels, aligned = self._target(k)
        feats = self.features(i)  # (T, D) or (L, T, D) float32
        if self.window_frames is not None and crop_key is not None and labels.shape[0] > self.window_frames:
            rng = np.random.default_rng([int(x) % 2**32 for x in crop_key])
            (fs, fe), (ls, le) = self._crop(rng, feats.shape[-2], labels.shape[0], aligned)
            feats, labels = feats[..., fs:fe, :], labels[ls:le]
        return {"features": torch.from_numpy(np.ascontiguousarray(feats)),
                "labels": torch.from_numpy(labels.astype(np.float32)), "aligned": aligned,
                "speaker": k.speaker, "utt": k.utt}

    def _crop(self, rng: np.random.Generator, n_feat: int, n_lab: int,
              aligned: bool) -> tuple[tuple[int, int], tuple[int, int]]:
        """((feature start, end), (label start, end)) of a random window."""
        W, fps, rate = self.window_frames, self.corpus.face_fps, self.feature_rate_hz
        if aligned:
            # Starts on multiples of fps / gcd(rate, fps) label frames: there a * rate / fps is an
            # integer, so the feature cut is exactly at the label cut (30 fps, 100 Hz: every 0.1 s).
            step = fps // math.gcd(rate, fps)
            a = step * int(rng.integers((n_lab - W) // step + 1))
            fs = a * rate // fps
            fe = min(n_feat, -(-(a + W) * rate // fps))
            if fs >= fe:  # features shorter than the labels claim: check-data reports it; keep the item whole
                return (0, n_feat), (0, n_lab)
            return (fs, fe), (a, a + W)
        a = int(rng.integers(n_lab - W + 1))
        fs = int(round(a / n_lab * n_feat))
        fe = max(fs + 1, min(n_feat, int(round((a + W) / n_lab * n_feat))))
        return (fs, fe), (a, a + W)

    def windows_per_epoch(self) -> list[int]:
        """Per item, how many windows an epoch draws from it: ceil(label frames / window), so an
        epoch covers about every frame once, as an epoch of whole clips does (1 each without a window)."""
        if self.window_frames is None:
            return [1] * len(self)
        return [max(1, math.ceil(self._target(k)[0].shape[0] / self.window_frames)) for k in self.keys]

    def tiles(self, i: int) -> list[dict]:
        """Item ``i`` as consecutive windows covering every label frame (for validation in
        bounded memory); the whole item when no window is set, it fits, or it is unaligned."""
        it = self.item(i)
        W = self.window_frames
        M = it["labels"].shape[0]
        if W is None or M <= W or not it["aligned"]:
            return [it]
        fps, rate = self.corpus.face_fps, self.feature_rate_hz
        step = fps // math.gcd(rate, fps)
        W = max(step, W // step * step)  # tile starts on the exact grid too
        feats, labels = it["features"], it["labels"]
        out = []
        for a in range(0, M, W):
            fs, fe = a * rate // fps, min(feats.shape[-2], -(-min(a + W, M) * rate // fps))
            if fs >= fe:
                break
            out.append({**it, "features": feats[..., fs:fe, :], "labels": labels[a:a + W]})
        return out


@dataclass
class Batch:
    """A padded batch. features (B, T, D) or (B, L, T, D); labels (B, M, C); lengths (B,) long."""

    features: torch.Tensor
    feat_lengths: torch.Tensor
    labels: torch.Tensor
    label_lengths: torch.Tensor
    aligned: torch.Tensor  # (B,) bool
    speakers: list[str]
    utts: list[str]

    def to(self, device: str | torch.device) -> "Batch":
        return Batch(self.features.to(device), self.feat_lengths.to(device), self.labels.to(device),
                     self.label_lengths.to(device), self.aligned.to(device), self.speakers, self.utts)


def collate(items: list[dict]) -> Batch:
    """Zero-pad features along time and labels along frames; keep the true lengths."""
    time_axis = items[0]["features"].ndim - 2  # (T, D) -> 0; (L, T, D) -> 1
    feat_len = [it["features"].shape[time_axis] for it in items]
    lab_len = [it["labels"].shape[0] for it in items]
    shape = list(items[0]["features"].shape)
    shape[time_axis] = max(feat_len)
    feats = torch.zeros((len(items), *shape), dtype=torch.float32)  # (B, [L,] T, D)
    labels = torch.zeros((len(items), max(lab_len), items[0]["labels"].shape[1]), dtype=torch.float32)  # (B, M, C)
    for b, it in enumerate(items):
        if time_axis == 0:
            feats[b, : feat_len[b]] = it["features"]
        else:
            feats[b, :, : feat_len[b]] = it["features"]
        labels[b, : lab_len[b]] = it["labels"]
    return Batch(feats, torch.tensor(feat_len, dtype=torch.long), labels, torch.tensor(lab_len, dtype=torch.long),
                 torch.tensor([bool(it["aligned"]) for it in items]), [it["speaker"] for it in items],
                 [it["utt"] for it in items])


class OrgShareBatchSampler:
    """Batches of indices with a fixed share of aligned clips, seeded per epoch.

    ``org_share`` in [0, 1]: each batch holds round(org_share * batch_size)
    aligned clips and the rest unaligned, both drawn without replacement from
    pools reshuffled each epoch and recycled when a pool runs dry (the smaller
    pool is seen several times per epoch). "uniform": one shuffled pool, the
    original's DataLoader(shuffle=True). Without unaligned clips (or without
    aligned ones) both modes reduce to "uniform". An epoch has
    ceil(len(dataset) / batch_size) batches either way, so steps per epoch do
    not depend on the share.
    """

    def __init__(self, aligned: Sequence[bool], batch_size: int, org_share: float | str = 0.5, seed: int = 0,
                 lengths: Sequence[int] | None = None, bucket_batches: int = 0):
        if bucket_batches and (lengths is None or len(lengths) != len(aligned)):
            raise ValueError("bucket_batches needs one length per item")
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.bucket_batches = int(bucket_batches)
        if org_share != "uniform" and not (isinstance(org_share, (int, float)) and 0.0 <= org_share <= 1.0):
            raise ValueError(f"org_share must be in [0, 1] or 'uniform', got {org_share!r}")
        if batch_size < 1 or not len(aligned):
            raise ValueError(f"need batch_size >= 1 and a non-empty dataset (got {batch_size}, {len(aligned)})")
        self.aligned = np.asarray(aligned, dtype=bool)
        self.batch_size, self.org_share, self.seed = batch_size, org_share, seed
        self.epoch = 0
        mixed = self.aligned.any() and not self.aligned.all()
        self.mode = "share" if (org_share != "uniform" and mixed) else "uniform"

    def __len__(self) -> int:
        return math.ceil(len(self.aligned) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int) -> list[list[int]]:
        """The batch list of ``epoch``: a pure function of (seed, epoch)."""
        rng = np.random.default_rng([self.seed, epoch])
        n, bs = len(self.aligned), self.batch_size
        if self.mode == "uniform":
            order = rng.permutation(n)
            out = [order[i : i + bs].tolist() for i in range(0, n, bs)]
            return self._bucketed(out, rng) if self.bucket_batches > 1 else out
        n_org = int(round(self.org_share * bs))
        pools = [np.flatnonzero(self.aligned), np.flatnonzero(~self.aligned)]
        streams = [_cycled(rng, p) for p in pools]
        out = []
        for _ in range(len(self)):
            batch = [next(streams[0]) for _ in range(n_org)] + [next(streams[1]) for _ in range(bs - n_org)]
            out.append([int(i) for i in rng.permutation(batch)])
        return self._bucketed(out, rng) if self.bucket_batches > 1 else out

    def _bucketed(self, batches: list[list[int]], rng: np.random.Generator) -> list[list[int]]:
        """Regroup each run of ``bucket_batches`` batches by length.

        Within a chunk, the org items and the TTS items are each sorted by length
        and dealt back out in order, so batch j gets the j-th shortest slice of each
        pool: every batch keeps its org share, every chunk keeps its items (an
        epoch sees the same clips), and a batch's clips have similar lengths, so
        little of it is padding. The order of the batches in a chunk is then
        shuffled (seeded), so length does not grow along the epoch.
        """
        out = []
        for c in range(0, len(batches), self.bucket_batches):
            chunk = batches[c : c + self.bucket_batches]
            sizes = [(sum(self.aligned[i] for i in b), sum(not self.aligned[i] for i in b)) for b in chunk]
            pools = [sorted((i for b in chunk for i in b if self.aligned[i] == flag),
                            key=lambda i: (self.lengths[i], i)) for flag in (True, False)]
            pos = [0, 0]
            regrouped = []
            for n_org, n_tts in sizes:
                b = pools[0][pos[0]:pos[0] + n_org] + pools[1][pos[1]:pos[1] + n_tts]
                pos[0] += n_org
                pos[1] += n_tts
                regrouped.append([int(i) for i in b])
            out += [regrouped[k] for k in rng.permutation(len(regrouped))]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches(self.epoch))


def _cycled(rng: np.random.Generator, pool: np.ndarray) -> Iterator[int]:
    """Endless stream over ``pool``: a fresh permutation each pass."""
    while True:
        yield from rng.permutation(pool).tolist()


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of the padded (B x max length) frames of ``batches`` that are padding."""
    real = padded = 0
    for b in batches:
        ls = [int(lengths[i]) for i in b]
        real += sum(ls)
        padded += len(ls) * max(ls)
    return 1.0 - real / padded if padded else 0.0


def sequential_batches(n: int, batch_size: int) -> list[list[int]]:
    """In-order batches for evaluation."""
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]

