"""Length bucketing and the in-memory feature cache: faster steps, same data."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from lib.data import OrgShareBatchSampler, padding_fraction


def _pool(n=400, org_frac=0.25, seed=0):
    rng = np.random.default_rng(seed)
    aligned = rng.random(n) < org_frac
    lengths = rng.integers(50, 900, n)  # feature frames: 0.5 s to 9 s at 100 Hz
    return aligned, lengths


@pytest.mark.parametrize("org_share", [0.5, "uniform"])
def test_bucketing_keeps_share_and_items_and_cuts_padding(org_share):
    aligned, lengths = _pool()
    plain = OrgShareBatchSampler(aligned, 16, org_share, seed=3)
    bucketed = OrgShareBatchSampler(aligned, 16, org_share, seed=3, lengths=lengths, bucket_batches=20)
    for epoch in range(3):
        a, b = plain.batches(epoch), bucketed.batches(epoch)
        assert len(a) == len(b) == len(plain)
        for k in range(0, len(a), 20):  # each chunk of 20 batches holds the same clips
            assert Counter(i for x in a[k:k + 20] for i in x) == Counter(i for x in b[k:k + 20] for i in x)
        # every batch keeps its number of org clips (the share of the draw)
        assert sorted(sum(aligned[i] for i in x) for x in a) == sorted(sum(aligned[i] for i in x) for x in b)
        assert padding_fraction(b, lengths) < 0.5 * padding_fraction(a, lengths)
        assert bucketed.batches(epoch) == b  # a pure function of (seed, epoch): resume stays exact
    assert bucketed.batches(0) != bucketed.batches(1)


def test_bucketing_needs_lengths():
    aligned, _ = _pool()
    with pytest.raises(ValueError, match="one length per item"):
        OrgShareBatchSampler(aligned, 16, 0.5, bucket_batches=10)


def test_padding_fraction_by_hand():
    assert padding_fraction([[0, 1], [2]], [2, 4, 3]) == pytest.approx(1 - 9 / 11)


def test_features_are_read_once(tmp_path, monkeypatch):
    from lib.data import FaceDataset
    from lib.features import extract
    from lib.layout import Corpus
    from tests.tiny_corpus import make_tiny_corpus

    root = make_tiny_corpus(tmp_path / "c")
    calls = Counter()
    real = extract.load_features

    def counting(root_, speaker, fdir, split, utt):
        calls[(speaker, utt)] += 1
        return real(root_, speaker, fdir, split, utt)

    monkeypatch.setattr(extract, "load_features", counting)
    ds = FaceDataset(Corpus(root), ["org", "tts1"], "train", "mfcc")
    first = [ds.item(i)["features"].clone() for i in range(len(ds))]
    again = [ds.item(i)["features"] for i in range(len(ds))]
    assert all(v == 1 for v in calls.values()) and len(calls) == len(ds)
    assert all(bool((x == y).all()) for x, y in zip(first, again))
    monkeypatch.setenv("T2A_FEATURE_CACHE_MB", "0")  # no budget: read from disk every time, as before
    ds2 = FaceDataset(Corpus(root), ["org"], "train", "mfcc")
    ds2.features(0), ds2.features(0)
    assert calls[("org", ds2.keys[0].utt)] == 1 + 2


def test_soft_dtw_first_called_under_inference_mode_still_trains():
    """Validation runs under torch.inference_mode; the soft-DTW scratch buffers it
    allocates first must serve the training steps that follow."""
    import torch

    from lib.soft_dtw import function as f
    from lib.soft_dtw.api import soft_dtw

    f._SCRATCH.clear()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 40, 3, generator=g)
    y = torch.rand(2, 30, 3, generator=g)
    with torch.inference_mode():
        ref = soft_dtw(x, y)
    xg = x.clone().requires_grad_(True)
    v = soft_dtw(xg, y)
    v.sum().backward()
    assert torch.allclose(v.detach(), ref) and xg.grad is not None and torch.isfinite(xg.grad).all()
