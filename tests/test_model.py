"""TalkingFaceModel: shapes, length arithmetic, padding invariance, layer weights, gradients."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lib.config import AUDIO_SAMPLE_RATE_HZ, FEATURE_RATES_HZ, ModelConfig, label_frames
from lib.features.hubert import hubert_frames
from lib.features.mfcc import mfcc_frames
from lib.model import TalkingFaceModel, label_mask

# Small model: the invariants do not depend on size, and the suite must stay fast.
SMALL = dict(d_model=32, n_heads=4, ff_dim=64, rnn_hidden=16, n_channels=37)
HUBERT_CONV = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2  # the standard HuBERT CNN


def make(arch="transformer", rate=50, dim=12, **kw) -> TalkingFaceModel:
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, input_dim=dim, feature_rate_hz=rate, **{**SMALL, **kw})
    return TalkingFaceModel(cfg).eval()


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
@pytest.mark.parametrize("rate,n_conv", [(50, 1), (100, 2)])
def test_shapes_and_lengths(arch, rate, n_conv):
    m = make(arch, rate)
    assert len(m.convs) == n_conv
    lengths = torch.tensor([37, 20, 1])
    x = torch.randn(3, 37, 12)
    out_len = m.output_lengths(lengths)
    # ceil(L / 2) per stride-2 layer (kernel 3, padding 1)
    expect = []
    for L in lengths.tolist():
        for _ in range(n_conv):
            L = -(-L // 2)  # ceil(L / 2)
        expect.append(L)
    assert out_len.tolist() == expect
    for out_frames in (5, int(out_len.max()), 40):
        y = m(x, lengths, out_frames)
        assert y.shape == (3, out_frames, 37)
        # frames beyond an item's valid output are exactly zero
        mask = label_mask(out_len, out_frames)
        assert torch.all(y[~mask] == 0)


def test_layered_features_with_and_without_combine():
    x = torch.randn(2, 5, 30, 12)  # (B, L, T, D)
    lengths = torch.tensor([30, 22])
    m_last = make(feature_combine=False)
    y = m_last(x, lengths, 15)
    # without combining, only the last layer matters
    assert torch.allclose(y, m_last(x[:, -1], lengths, 15), atol=1e-6)
    m = make(feature_combine=True, n_feature_layers=5)
    y = m(x, lengths, 15)
    assert y.shape == (2, 15, 37)
    w = m.layer_weights()
    assert w.shape == (5,) and torch.allclose(w.sum(), torch.tensor(1.0))
    assert torch.allclose(w, torch.full((5,), 0.2))  # uniform start
    with pytest.raises(ValueError):
        m(torch.randn(2, 4, 30, 12), lengths, 15)  # wrong number of layers
    # fp16 storage of HuBERT features is accepted
    assert m(x.half(), lengths, 15).dtype == torch.float32


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
@pytest.mark.parametrize("rate", [50, 100])
def test_padding_invariance(arch, rate):
    """An item's prediction is the same alone or batched with a longer (padded) item."""
    m = make(arch, rate)
    torch.manual_seed(1)
    long_len = 61
    for short_len in (23, 24, 25, 26):  # every residue mod 4: conv edge cases
        short = torch.randn(short_len, 12)
        longer = torch.randn(long_len, 12)
        batch = torch.zeros(2, long_len, 12)
        batch[0, :short_len] = short
        # Garbage (not zeros) in the padding: the model must ignore it.
        batch[0, short_len:] = 100.0 * torch.randn(long_len - short_len, 12)
        batch[1] = longer
        lengths = torch.tensor([short_len, long_len])
        n_out = int(m.output_lengths(lengths)[1])
        with torch.no_grad():
            yb = m(batch, lengths, n_out)
            ya = m(short[None], torch.tensor([short_len]), n_out)
            yl = m(longer[None], torch.tensor([long_len]), n_out)
        k = int(m.output_lengths(torch.tensor([short_len]))[0])
        assert torch.allclose(yb[0, :k], ya[0, :k], atol=1e-5)
        assert torch.all(yb[0, k:] == 0)
        assert torch.allclose(yb[1], yl[0], atol=1e-5)


def test_padding_invariance_layer_combine():
    m = make(feature_combine=True, n_feature_layers=3)
    x = torch.randn(2, 3, 40, 12)
    lengths = torch.tensor([27, 40])
    with torch.no_grad():
        yb = m(x, lengths, 20)
        ya = m(x[:1, :, :27], lengths[:1], 20)
    assert torch.allclose(yb[0], ya[0], atol=1e-5)


@pytest.mark.parametrize("feature", ["mfcc", "hubert", "ppg"])
def test_output_length_matches_label_frames(feature):
    """Real extraction lengths -> model output within +-1 frame of round(duration * 25)."""
    rate = FEATURE_RATES_HZ[feature]
    m = make(rate=rate)
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.integers(AUDIO_SAMPLE_RATE_HZ // 2, 20 * AUDIO_SAMPLE_RATE_HZ, 400),
                              np.arange(16_000, 16_000 + 1280)])  # every phase of a 640-sample frame
    if feature == "mfcc":
        feat = [mfcc_frames(int(n)) for n in samples]
    elif feature == "hubert":
        feat = [hubert_frames(int(n), HUBERT_CONV) for n in samples]
    else:  # PPG at 50 Hz, centre-framed with a 320-sample hop
        feat = [1 + int(n) // (AUDIO_SAMPLE_RATE_HZ // rate) for n in samples]
    out = m.output_lengths(torch.tensor(feat)).numpy()
    labels = np.array([label_frames(int(n) / AUDIO_SAMPLE_RATE_HZ) for n in samples])
    assert np.abs(out - labels).max() <= 1


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_gradients_flow(arch):
    m = make(arch, 100, feature_combine=True, n_feature_layers=3).train()
    x = torch.randn(2, 3, 50, 12)
    y = m(x, torch.tensor([50, 33]), 13)
    y.pow(2).mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bad_config():
    with pytest.raises(ValueError):
        make(rate=75)  # not a power-of-two multiple of 25 fps
    with pytest.raises(ValueError):
        TalkingFaceModel(dataclasses.replace(ModelConfig(), arch="gru"))
