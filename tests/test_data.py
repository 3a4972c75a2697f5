"""lib.data: held-out voices, train_json subsets, padding collate, org-share batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.data import FaceDataset, OrgShareBatchSampler, collate, read_subset, resolve_speakers
from lib.layout import Corpus

from tiny_corpus import make_tiny_corpus  # tests/tiny_corpus.py


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    return Corpus(make_tiny_corpus(tmp_path_factory.mktemp("tiny")))


def test_held_out_voice_never_trained(corpus):
    assert resolve_speakers(corpus, ["all"]) == ["org", "tts1"]  # "held" is held out in the manifest
    with pytest.warns(UserWarning, match="held"):
        assert resolve_speakers(corpus, ["org", "held", "tts1"]) == ["org", "tts1"]
    with pytest.raises(ValueError, match="nobody"):
        resolve_speakers(corpus, ["org", "nobody"])


def test_items_pair_tts_with_org_labels_and_subset_applies_to_all_speakers(corpus):
    subset = read_subset(corpus, "first_two")
    ds = FaceDataset(corpus, ["org", "tts1"], "train", "mfcc", subset)
    assert sorted({(k.speaker, k.utt) for k in ds.keys}) == sorted((s, u) for s in ("org", "tts1") for u in subset)
    for i, k in enumerate(ds.keys):
        item = ds[i]
        org_labels = corpus.own_labels("org", "train", k.utt)
        np.testing.assert_array_equal(item["labels"].numpy(), org_labels)  # TTS clips carry org's labels
        assert item["aligned"] == (k.speaker == "org")
        assert item["features"].shape[1] == 39 and item["features"].dtype == torch.float32


def test_collate_pads_with_zeros_and_keeps_lengths(corpus):
    ds = FaceDataset(corpus, ["org", "tts1"], "train", "mfcc")
    items = [ds[i] for i in range(len(ds))]
    b = collate(items)
    assert b.features.shape == (len(items), max(it["features"].shape[0] for it in items), 39)
    for j, it in enumerate(items):
        n, m = it["features"].shape[0], it["labels"].shape[0]
        assert b.feat_lengths[j] == n and b.label_lengths[j] == m
        torch.testing.assert_close(b.features[j, :n], it["features"], rtol=0, atol=0)
        assert b.features[j, n:].abs().sum() == 0 and b.labels[j, m:].abs().sum() == 0
        assert bool(b.aligned[j]) == it["aligned"]
    # Layered (L, T, D) features pad along time, axis 1.
    lay = collate([{**it, "features": torch.ones(3, it["features"].shape[0], 5)} for it in items[:2]])
    assert lay.features.shape == (2, 3, max(lay.feat_lengths).item(), 5)


def test_org_share_per_batch():
    aligned = [True] * 5 + [False] * 27
    s = OrgShareBatchSampler(aligned, batch_size=8, org_share=0.5, seed=3)
    for epoch in range(3):
        batches = s.batches(epoch)
        assert len(batches) == len(s) == 4
        for b in batches:
            assert len(b) == 8 and sum(aligned[i] for i in b) == 4
        # the unaligned pool is drawn without replacement within one pass
        tts = [i for b in batches for i in b if not aligned[i]]
        assert len(set(tts)) == len(tts) == 16
    assert s.batches(1) == OrgShareBatchSampler(aligned, 8, 0.5, seed=3).batches(1)  # seeded, stateless
    assert s.batches(1) != s.batches(2)
    u = OrgShareBatchSampler(aligned, batch_size=8, org_share="uniform", seed=3)
    assert sorted(i for b in u.batches(0) for i in b) == list(range(32))  # a plain shuffle: each clip once
    only_org = OrgShareBatchSampler([True] * 10, batch_size=4, org_share=0.75, seed=0)
    assert only_org.mode == "uniform" and sorted(i for b in only_org.batches(0) for i in b) == list(range(10))
    with pytest.raises(ValueError):
        OrgShareBatchSampler(aligned, 8, org_share=1.5)
