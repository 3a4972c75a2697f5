"""Batched soft-DTW against independent references.

References: a plain O(NM) Python soft-DTW / DTW written here, tslearn's
soft_dtw, torch.autograd.gradcheck, per-item loops, numpy exp/log, and the
CPU kernel itself for the CUDA kernel (under numba's CUDA simulator).
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.soft_dtw import SoftDTW, soft_dtw

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- references
def band_ok(i: int, j: int, n: int, m: int, band: float | None) -> bool:
    """The documented band: both axes scaled onto the longer one, radius
    widened to the slope (see soft_dtw's docstring)."""
    if band is None:
        return True
    long_ = max(n, m) - 1
    su = long_ / (n - 1) if n > 1 else 0.0
    sv = long_ / (m - 1) if m > 1 else 0.0
    slope = max(su, sv) if min(n, m) > 1 else float(long_)
    return abs(i * su - j * sv) <= max(band, slope)


def ref_soft_dtw(x: np.ndarray, y: np.ndarray, gamma: float, w=None, band=None,
                 cost: str = "sum") -> float:
    """Textbook soft-DTW recursion (gamma = 0: hard DTW), unnormalised."""
    n, m = len(x), len(y)
    w = np.ones(x.shape[1]) if w is None else np.asarray(w)
    div = x.shape[1] if cost == "mean" else 1
    R = np.full((n + 1, m + 1), np.inf)
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            if not band_ok(i - 1, j - 1, n, m, band):
                continue
            prev = np.array([R[i - 1, j - 1], R[i - 1, j], R[i, j - 1]])
            if gamma == 0:
                soft = prev.min()
            else:
                lo = prev.min()
                soft = lo - gamma * math.log(np.exp(-(prev - lo) / gamma).sum())
            R[i, j] = float((w * (x[i - 1] - y[j - 1]) ** 2).sum() / div) + soft
    return R[n, m]


def smooth_batch(B: int, T: int, C: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    """Blendshape-like curves in [0, 1]: smoothed random walks."""
    g = torch.Generator().manual_seed(seed)
    walk = torch.cumsum(torch.randn(B, T, C, generator=g, dtype=torch.float64) * 0.2, dim=1)
    return torch.sigmoid(walk).to(dtype)


# --------------------------------------------------------------------- tests
def test_fast_exp_log_match_numpy():
    from numba import njit

    from lib.soft_dtw.fastmath import exp_nonpos, exp_nonpos_f32, log_1_to_3, log_1_to_3_f32

    @njit
    def apply(f, a):
        out = np.empty_like(a)
        for k in range(a.size):
            out[k] = f(a[k])
        return out

    t = -np.linspace(0, 79.9, 20001)
    s = np.linspace(1.0, 3.0, 20001)
    assert np.max(np.abs(apply(exp_nonpos, t) / np.exp(t) - 1)) < 1e-14
    assert np.max(np.abs(apply(log_1_to_3, s) - np.log(s))) < 1e-15
    t32, s32 = t.astype(np.float32), s.astype(np.float32)
    assert np.max(np.abs(apply(exp_nonpos_f32, t32) / np.exp(t32.astype(float)) - 1)) < 1e-6
    assert np.max(np.abs(apply(log_1_to_3_f32, s32) - np.log(s32.astype(float)))) < 1e-6


@pytest.mark.parametrize("band", [None, 1.5])
def test_small_gamma_equals_brute_force_dtw(band):
    x = smooth_batch(2, 9, 3, seed=1)
    y = smooth_batch(2, 7, 3, seed=2)
    got = soft_dtw(x, y, gamma=1e-4, cost="sum", normalize_by=None, band=band)
    for b in range(2):
        want = ref_soft_dtw(x[b].numpy(), y[b].numpy(), 0.0, band=band)
        # soft-min >= min - gamma log 3 per step, and <= min
        assert want - 1e-4 * math.log(3) * 16 - 1e-9 <= float(got[b]) <= want + 1e-9


@pytest.mark.parametrize("cost,band", [("mean", None), ("sum", 2.0), ("mean", 0.0)])
def test_values_match_reference_recursion(cost, band):
    x = smooth_batch(3, 8, 4, seed=3)
    y = smooth_batch(3, 11, 4, seed=4)
    n = torch.tensor([8, 5, 1])
    m = torch.tensor([11, 6, 3])
    w = torch.tensor([0.5, 2.0, 1.0, 0.0], dtype=torch.float64)
    got = soft_dtw(x, y, n, m, gamma=0.3, channel_weights=w, band=band, cost=cost)
    for b in range(3):
        want = ref_soft_dtw(x[b, :n[b]].numpy(), y[b, :m[b]].numpy(), 0.3, w.numpy(), band, cost)
        assert float(got[b]) == pytest.approx(want / int(m[b]), rel=1e-10, abs=1e-12)


def test_matches_tslearn():
    tslearn_metrics = pytest.importorskip("tslearn.metrics")
    x = smooth_batch(3, 12, 5, seed=5)
    y = smooth_batch(3, 9, 5, seed=6)
    # tslearn: squared euclidean distance summed over channels, no normalisation
    got = soft_dtw(x, y, gamma=0.1, cost="sum", normalize_by=None)
    for b in range(3):
        want = tslearn_metrics.soft_dtw(x[b].numpy(), y[b].numpy(), gamma=0.1)
        assert float(got[b]) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("case", ["weights", "lengths", "band", "divergence"])
def test_gradcheck(case):
    x = smooth_batch(2, 6, 3, seed=7).requires_grad_()
    y = smooth_batch(2, 5, 3, seed=8).requires_grad_()
    kw = dict(gamma=0.2)
    if case == "weights":
        kw["channel_weights"] = torch.tensor([0.3, 1.0, 2.5], dtype=torch.float64)
    if case == "lengths":
        kw.update(pred_lengths=torch.tensor([6, 3]), target_lengths=torch.tensor([2, 5]))
    if case == "band":
        kw["band"] = 1.0
    if case == "divergence":
        kw["divergence"] = True
    assert torch.autograd.gradcheck(lambda a, b: soft_dtw(a, b, **kw), (x, y), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_batch_equals_loop_and_padding_is_inert(dtype, tol):
    B, N, M, C = 4, 13, 10, 5
    x = smooth_batch(B, N, C, seed=9, dtype=dtype)
    y = smooth_batch(B, M, C, seed=10, dtype=dtype)
    n = torch.tensor([13, 4, 9, 1])
    m = torch.tensor([10, 10, 2, 6])
    for b in range(B):  # large, finite garbage in the padding
        x[b, n[b]:] = 1e6
        y[b, m[b]:] = -1e6
    x.requires_grad_()
    w = torch.linspace(0.2, 2.0, C, dtype=dtype)
    vals = soft_dtw(x, y, n, m, gamma=0.05, channel_weights=w, band=3.0)
    (grad,) = torch.autograd.grad(vals.sum(), x)
    for b in range(B):
        xb = x[b:b + 1, :n[b]].detach().clone().requires_grad_()
        vb = soft_dtw(xb, y[b:b + 1, :m[b]], gamma=0.05, channel_weights=w, band=3.0)
        (gb,) = torch.autograd.grad(vb.sum(), xb)
        assert float(vals[b].detach()) == pytest.approx(float(vb[0].detach()), rel=tol)
        torch.testing.assert_close(grad[b, :n[b]], gb[0], rtol=tol, atol=tol)
        assert torch.all(grad[b, n[b]:] == 0)
    assert torch.isfinite(vals).all()


def test_float32_path_agrees_with_float64_at_small_gamma():
    x = smooth_batch(3, 60, 37, seed=11)
    y = smooth_batch(3, 50, 37, seed=12)
    w = torch.linspace(0.5, 1.5, 37, dtype=torch.float64)
    out = {}
    for dtype in (torch.float64, torch.float32):
        xd = x.to(dtype).requires_grad_()
        v = soft_dtw(xd, y.to(dtype), gamma=1e-3, channel_weights=w)
        (g,) = torch.autograd.grad(v.sum(), xd)
        out[dtype] = (v.double(), g.double())
    v64, g64 = out[torch.float64]
    v32, g32 = out[torch.float32]
    torch.testing.assert_close(v32, v64, rtol=1e-5, atol=1e-7)
    assert (g32 - g64).abs().max() <= 2e-3 * g64.abs().max()


def test_float32_path_with_tied_predecessors():
    """Piecewise-constant curves give many exactly equal costs, so the float32
    kernel's assignment of its two exponentials to directions meets ties and
    every ordering of the three predecessors; it must agree with float64."""
    g = torch.Generator().manual_seed(21)
    x = (torch.randint(0, 3, (2, 30, 4), generator=g) * 0.5).double()
    y = (torch.randint(0, 3, (2, 25, 4), generator=g) * 0.5).double()
    out = {}
    for dtype in (torch.float64, torch.float32):
        xd = x.to(dtype).requires_grad_()
        v = soft_dtw(xd, y.to(dtype), gamma=0.1)
        (gx,) = torch.autograd.grad(v.sum(), xd)
        out[dtype] = (v.double(), gx.double())
    (v64, g64), (v32, g32) = out[torch.float64], out[torch.float32]
    torch.testing.assert_close(v32, v64, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g32, g64, rtol=1e-4, atol=1e-5)


def test_exact_weight_grad_flag():
    x = smooth_batch(2, 8, 4, seed=13).requires_grad_()
    y = smooth_batch(2, 8, 4, seed=14)

    def grads(w, exact):
        v = soft_dtw(x, y, gamma=0.1, channel_weights=w, exact_weight_grad=exact)
        return v.detach(), torch.autograd.grad(v.sum(), x)[0]

    w = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=torch.float64)
    (v1, g1), (v2, g2) = grads(w, True), grads(w, False)
    torch.testing.assert_close(v1, v2)  # the flag only changes the backward
    assert (g1 - g2).abs().max() > 1e-3
    ones = torch.ones(4, dtype=torch.float64)
    torch.testing.assert_close(grads(ones, True)[1], grads(ones, False)[1], rtol=0, atol=0)


def test_divergence_nonnegative_and_zero_on_identity():
    x = smooth_batch(4, 15, 3, seed=15)
    y = smooth_batch(4, 12, 3, seed=16)
    div = soft_dtw(x, y, gamma=0.5, divergence=True)
    assert bool((div > -1e-12).all())
    same = soft_dtw(x, x, gamma=0.5, divergence=True)
    assert same.abs().max() < 1e-12


@pytest.mark.parametrize("n,m", [(1, 1), (1, 9), (9, 1), (5, 17), (17, 5), (30, 29)])
def test_band_always_leaves_a_path(n, m):
    x = smooth_batch(1, n, 2, seed=17)
    y = smooth_batch(1, m, 2, seed=18)
    v = soft_dtw(x, y, gamma=0.01, band=0.0)
    assert float(v[0]) < 1e3


def test_module_wrapper_and_validation():
    x = smooth_batch(2, 6, 3, seed=19)
    y = smooth_batch(2, 7, 3, seed=20)
    torch.testing.assert_close(SoftDTW(gamma=0.1, band=2.0)(x, y), soft_dtw(x, y, gamma=0.1, band=2.0))
    raw = soft_dtw(x, y, gamma=0.1, normalize_by=None)
    torch.testing.assert_close(soft_dtw(x, y, gamma=0.1), raw / 7)
    with pytest.raises(ValueError):
        soft_dtw(x, y, pred_lengths=torch.tensor([7, 2]))
    with pytest.raises(ValueError):
        soft_dtw(x, y, channel_weights=torch.tensor([1.0, -1.0, 1.0]))


CUDA_SIM_SCRIPT = textwrap.dedent("""
    import numba
    import numpy as np
    try:
        from lib.soft_dtw import cuda as sc
    except Exception as exc:  # simulator not importable here
        print("SKIP", exc)
        raise SystemExit(0)
    from lib.soft_dtw import cpu
    rng = np.random.default_rng(0)
    B, N, M = 3, 6, 7
    D = rng.random((B, N, M))
    n = np.array([6, 4, 1]); m = np.array([7, 3, 5]); scale = np.array([1.0, 2.0, -0.5])
    for band in (-1.0, 0.0, 1.5):
        v, E = sc.run_arrays(D, n, m, 0.1, band, scale, threads=4)
        v, E = v.copy_to_host(), E.copy_to_host()
        mar = cpu.p_margin(N, M)
        base = mar + np.concatenate([[0], np.cumsum(n * m)[:-1]])
        P = np.zeros((3, int((n * m).sum()) + 2 * mar)); out = np.empty(B)
        work = np.zeros((numba.config.NUMBA_NUM_THREADS, N * M))
        # the kernel finishes D = xx + yy - 2 XY itself: feed XY = -D / 2
        cpu.forward_kernel(-D / 2, np.zeros((B, N)), np.zeros((B, M)), n, m, 0.1, band,
                           P, base, out, work)
        E2 = np.zeros((B, N, M)); rs = np.zeros((B, N)); cs = np.zeros((B, M))
        cpu.backward_kernel(P, base, n, m, band, scale, E2, rs, cs, work)
        assert np.allclose(v, out, rtol=1e-12, atol=1e-12), (band, v, out)
        assert np.allclose(E, E2, rtol=1e-10, atol=1e-12), band
    print("OK")
""")


def test_cuda_kernel_matches_cpu_under_simulator():
    # The simulator must be chosen before numba is imported: fresh process.
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", CUDA_SIM_SCRIPT], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if proc.stdout.startswith("SKIP"):
        pytest.skip(proc.stdout.strip())
    assert proc.stdout.strip().endswith("OK")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("band", [None, 2.0])
def test_serial_and_parallel_kernels_agree_exactly(dtype, band):
    """The serial kernels (one-thread processes) run the same per-item code as the parallel
    ones: values and gradients must be bit-identical, with padding in the batch."""
    from lib.soft_dtw import cpu

    x0 = smooth_batch(3, 11, 4, seed=3, dtype=dtype)
    y = smooth_batch(3, 9, 4, seed=4, dtype=dtype)
    n, m = torch.tensor([11, 6, 1]), torch.tensor([9, 9, 4])
    out = []
    for parallel in (True, False):
        x = x0.clone().requires_grad_()
        with cpu.forced_variant(parallel):
            assert cpu.kernels(1, 3)[0] is (cpu.forward_kernel if parallel else cpu.forward_kernel_serial)
            v = soft_dtw(x, y, n, m, gamma=0.01, band=band)
            (g,) = torch.autograd.grad(v.sum(), x)
        out.append((v.detach(), g))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])


def test_kernel_choice_follows_threads_and_batch():
    from lib.soft_dtw import cpu

    assert cpu.kernels(1, 8) == (cpu.forward_kernel_serial, cpu.backward_kernel_serial)
    assert cpu.kernels(4, 1) == (cpu.forward_kernel_serial, cpu.backward_kernel_serial)
    assert cpu.kernels(2, 8) == (cpu.forward_kernel, cpu.backward_kernel)
