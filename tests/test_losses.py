"""Losses: L1/L2 against per-item numpy loops, pair-type selection, soft-DTW wiring, gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import lib.soft_dtw
from lib.channels import T2A_37
from lib.config import LossConfig
from lib.losses import T2A_CHANNEL_WEIGHTS, build_loss, channel_weight_vector

C = len(T2A_37)


def ref_soft_dtw(x, y, gamma, w, cost, normalize):
    """Plain soft-DTW of one pair (tests only): x (n, C), y (m, C), weights w (C,)."""
    n, m = len(x), len(y)
    d = (x[:, None, :] - y[None, :, :]).pow(2) * w  # (n, m, C)
    D = d.mean(-1) if cost == "mean" else d.sum(-1)
    inf = torch.tensor(float("inf"), dtype=x.dtype)
    R = [[inf] * (m + 1) for _ in range(n + 1)]
    R[0][0] = torch.tensor(0.0, dtype=x.dtype)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            prev = torch.stack([R[i - 1][j - 1], R[i - 1][j], R[i][j - 1]])
            R[i][j] = D[i - 1, j - 1] - gamma * torch.logsumexp(-prev / gamma, 0)
    return R[n][m] / m if normalize else R[n][m]


def ref_batch(pred, target, pred_lengths=None, target_lengths=None, gamma=0.001, channel_weights=None,
              band=None, normalize_by="target_length", exact_weight_grad=True, cost="mean"):
    """Stand-in with lib.soft_dtw.soft_dtw's signature, used until that module lands."""
    assert band is None
    w = torch.ones(pred.shape[-1], dtype=pred.dtype) if channel_weights is None else channel_weights
    return torch.stack([
        ref_soft_dtw(pred[b, : pred_lengths[b]], target[b, : target_lengths[b]], gamma, w, cost,
                     normalize_by == "target_length")
        for b in range(len(pred))
    ])


@pytest.fixture
def sdtw(monkeypatch):
    """lib.soft_dtw.soft_dtw, or the test reference while the kernel is not there yet."""
    if not hasattr(lib.soft_dtw, "soft_dtw"):
        monkeypatch.setattr(lib.soft_dtw, "soft_dtw", ref_batch, raising=False)
    return lib.soft_dtw.soft_dtw


def batch(seed=0, B=4, T=9, M=8, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    pred = torch.rand(B, T, C, generator=g, dtype=dtype)
    target = torch.rand(B, M, C, generator=g, dtype=dtype)
    pl = torch.tensor([9, 5, 7, 3])[:B]
    tl = torch.tensor([6, 8, 7, 8])[:B]
    return pred, target, pl, tl


def np_framewise(pred, target, pl, tl, w, p):
    """Per-item loop: mean over common frames of channel-mean w_c |e|^p."""
    out = []
    for b in range(len(pred)):
        k = min(int(pl[b]), int(tl[b]))
        tot = 0.0
        for t in range(k):
            tot += np.mean(w * np.abs(pred[b, t] - target[b, t]) ** p)
        out.append(tot / k)
    return np.array(out)


@pytest.mark.parametrize("kind,p", [("l2", 2), ("l1", 1)])
@pytest.mark.parametrize("weights", ["t2a", "none"])
def test_framewise_equals_loop(kind, p, weights):
    pred, target, pl, tl = batch()
    cfg = LossConfig(aligned=kind, unaligned=kind, channel_weights=weights)
    loss, parts = build_loss(cfg, T2A_37)(pred, target, pl, tl, torch.ones(4, dtype=torch.bool))
    w = channel_weight_vector(weights, T2A_37).numpy()
    ref = np_framewise(pred.numpy(), target.numpy(), pl, tl, w, p)
    assert np.isclose(loss.item(), ref.mean(), rtol=1e-10)
    assert np.isclose(parts["loss_aligned"].item(), ref.mean(), rtol=1e-10)
    assert "loss_unaligned" not in parts


def test_unit_weights_l2_is_mse():
    pred, target, _, _ = batch(B=2, T=8, M=8)
    full = torch.tensor([8, 8])
    loss, _ = build_loss(LossConfig("l2", "l2", channel_weights="none"), T2A_37)(
        pred, target, full, full, torch.tensor([True, False]))
    assert torch.isclose(loss, torch.nn.functional.mse_loss(pred, target))


def test_pair_type_selection(sdtw):
    pred, target, pl, tl = batch()
    aligned = torch.tensor([True, False, True, False])
    w = channel_weight_vector("t2a", T2A_37).numpy()
    l2 = np_framewise(pred.numpy(), target.numpy(), pl, tl, w, 2)
    l1 = np_framewise(pred.numpy(), target.numpy(), pl, tl, w, 1)
    grads = {}
    for unaligned in ("l1", "softdtw"):
        p = pred.clone().requires_grad_(True)
        loss, parts = build_loss(LossConfig("l2", unaligned), T2A_37)(p, target, pl, tl, aligned)
        loss.backward()
        grads[unaligned] = p.grad
        # aligned items always use l2, whatever the unaligned choice
        assert np.isclose(parts["loss_aligned"].item(), l2[[0, 2]].mean(), rtol=1e-10)
        if unaligned == "l1":
            assert np.isclose(loss.item(), np.mean([l2[0], l1[1], l2[2], l1[3]]), rtol=1e-10)
            assert np.isclose(parts["loss_unaligned"].item(), l1[[1, 3]].mean(), rtol=1e-10)
    assert torch.allclose(grads["l1"][[0, 2]], grads["softdtw"][[0, 2]])
    assert not torch.allclose(grads["l1"][[1, 3]], grads["softdtw"][[1, 3]])


@pytest.mark.parametrize("cost,normalize,weights", [("mean", True, "t2a"), ("sum", False, "none"),
                                                     ("mean", False, "none")])
def test_softdtw_equals_reference(sdtw, cost, normalize, weights):
    pred, target, pl, tl = batch(T=7, M=8)
    pl = torch.tensor([7, 5, 7, 3])
    cfg = LossConfig("softdtw", "softdtw", gamma=0.01, channel_weights=weights, sdtw_cost=cost,
                     sdtw_normalize=normalize)
    loss, parts = build_loss(cfg, T2A_37)(pred, target, pl, tl, torch.tensor([True, False, True, False]))
    w = channel_weight_vector(weights, T2A_37).double()
    ref = [ref_soft_dtw(pred[b, : pl[b]], target[b, : tl[b]], 0.01, w, cost, normalize) for b in range(4)]
    assert np.isclose(loss.item(), torch.stack(ref).mean().item(), rtol=1e-6)
    assert np.isclose(parts["loss_unaligned"].item(), (ref[1] + ref[3]).item() / 2, rtol=1e-6)


@pytest.mark.parametrize("kind", ["l1", "l2", "softdtw"])
def test_gradient_only_on_valid_frames(sdtw, kind):
    pred, target, pl, tl = batch(T=9, M=8, dtype=torch.float32)
    pred.requires_grad_(True)
    loss, _ = build_loss(LossConfig(kind, kind), T2A_37)(pred, target, pl, tl, torch.tensor([1, 0, 1, 0]))
    loss.backward()
    g = pred.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    used = torch.minimum(pl, tl) if kind != "softdtw" else pl  # frames each loss reads
    for b in range(4):
        assert torch.all(g[b, used[b]:] == 0)  # padding never receives gradient
        assert g[b, : used[b]].abs().sum() > 0


def test_weights_and_config():
    w = channel_weight_vector("t2a", T2A_37)
    assert w[T2A_37.index("JawOpen")] == pytest.approx(1.3)
    assert w[T2A_37.index("MouthShrugUpper")] == pytest.approx(1.2)
    assert w[T2A_37.index("JawForward")] == pytest.approx(1.1)
    assert (w == 1).sum() == C - len(T2A_CHANNEL_WEIGHTS)
    assert LossConfig.from_loss_type("SoftDTW").aligned == "softdtw"
    assert LossConfig.from_loss_type("hybrid").unaligned == "softdtw"
    with pytest.raises(ValueError):
        build_loss(LossConfig("l3"), T2A_37)
