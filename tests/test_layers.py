"""lib.layers: the fast dropout and the written-out encoder, against torch's own modules."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from lib.config import ModelConfig
from lib.layers import Encoder, dropout, drop_threshold
from lib.model import TalkingFaceModel, label_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.03])
def test_dropout_drops_at_rate_p_and_keeps_the_mean(p):
    """Binomial bounds (6 sigma over 2**20 elements): the drop rate is p (to 1/65536), kept
    values are x / (1 - p_rounded), so the sum of a dropped tensor of ones estimates n."""
    n = 1 << 20
    torch.manual_seed(0)
    x = torch.ones(n)
    y = dropout(x, p, training=True)
    q = drop_threshold(p) / 65536
    assert abs(q - p) <= 0.5 / 65536
    dropped = float((y == 0).float().mean())
    assert abs(dropped - p) < 6 * math.sqrt(p * (1 - p) / n)
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 1 / (1 - q)))
    assert abs(float(y.mean()) - 1.0) < 6 * math.sqrt(p / (1 - p) / n)


def test_dropout_lanes_are_independent_and_shape_is_kept():
    """The four 16-bit lanes of each random word must not drop together: the rate of
    "both dropped" for neighbouring elements is p**2, as for independent draws."""
    torch.manual_seed(1)
    p, n = 0.5, 1 << 20
    y = dropout(torch.ones(n // 4, 4), p, True)
    assert y.shape == (n // 4, 4)
    d = (y == 0).float()
    for a, b in ((0, 1), (1, 2), (2, 3), (3, 0)):
        both = float((d[:, a] * d[:, b]).mean())
        assert abs(both - p * p) < 6 * math.sqrt(p * p * (1 - p * p) / (n // 4))


def test_dropout_is_seeded_by_torch_and_identity_when_not_training():
    x = torch.randn(3, 50, 7)
    torch.manual_seed(5)
    a = dropout(x, 0.2, True)
    torch.manual_seed(5)
    b = dropout(x, 0.2, True)
    assert torch.equal(a, b)
    assert not torch.equal(a, dropout(x, 0.2, True))  # the generator moved on
    assert dropout(x, 0.2, False) is x and dropout(x, 0.0, True) is x
    with pytest.raises(ValueError):
        dropout(x, 1.0, True)


def test_dropout_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(2)
    x = torch.randn(4, 33, requires_grad=True)
    y = dropout(x, 0.3, True)
    y.sum().backward()
    q = drop_threshold(0.3) / 65536
    expected = (y != 0).float() / (1 - q)
    assert torch.allclose(x.grad, expected)


def _torch_encoder(enc: Encoder) -> nn.TransformerEncoder:
    """torch's own TransformerEncoder holding ``enc``'s weights (the independent reference)."""
    layer = enc.layers[0]
    ref = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(layer.self_attn.embed_dim, layer.self_attn.num_heads,
                                   layer.linear1.out_features, layer.dropout.p, batch_first=True),
        len(enc.layers), enable_nested_tensor=False)
    ref.load_state_dict(enc.state_dict())
    return ref


@pytest.mark.parametrize("training", [False, True])
def test_encoder_equals_torch_transformer_encoder(training):
    """Same weights, padded batch: eval mode equals torch's module; so does training mode with
    dropout 0 (autograd through the written-out layers gives torch's gradients)."""
    torch.manual_seed(0)
    p = 0.0 if training else 0.1
    enc = Encoder(d_model=32, n_heads=4, ff_dim=48, dropout_p=p, n_layers=2)
    ref = _torch_encoder(enc)
    enc.train(training)
    ref.train(training)
    lengths = torch.tensor([20, 13, 7])
    x = torch.randn(3, 20, 32, requires_grad=True)
    pad = ~label_mask(lengths, 20)
    ours = enc(x, src_key_padding_mask=pad)
    theirs = ref(x, src_key_padding_mask=pad)
    valid = ~pad
    assert torch.allclose(ours[valid], theirs[valid], atol=1e-5)
    if training:
        g1, = torch.autograd.grad((ours[valid] ** 2).sum(), x)
        g2, = torch.autograd.grad((theirs[valid] ** 2).sum(), x)
        assert torch.allclose(g1, g2, atol=1e-5)


def test_model_state_dict_keeps_torch_encoder_names():
    """Checkpoints written with nn.TransformerEncoder load into the model unchanged."""
    cfg = ModelConfig(input_dim=5, d_model=16, n_heads=2, ff_dim=24, n_layers=2, n_channels=3)
    keys = set(TalkingFaceModel(cfg).state_dict())
    ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 24, batch_first=True), 2,
                                enable_nested_tensor=False)
    assert {f"encoder.{k}" for k in ref.state_dict()} <= keys


@pytest.mark.parametrize("T", [1, 2, 7, 40])
def test_strided_conv_equals_the_conv_module(T):
    """The im2col path of the first conv (input without gradient) against nn.Conv1d itself,
    values and weight gradients."""
    from lib.model import strided_conv

    torch.manual_seed(T)
    conv = nn.Conv1d(6, 10, 3, 2, 1)
    x = torch.randn(3, 6, T)
    ours = strided_conv(conv, x)
    ref = conv(x)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-5)
    g1 = torch.autograd.grad(ours.square().sum(), conv.weight)[0]
    g2 = torch.autograd.grad(ref.square().sum(), conv.weight)[0]
    assert torch.allclose(g1, g2, atol=1e-4)
