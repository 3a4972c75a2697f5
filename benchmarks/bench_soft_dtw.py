"""Soft-DTW forward + backward throughput on CPU: ours vs pysdtw vs tslearn.

Task timed for every method: unnormalised soft-DTW with squared-euclidean
frame costs summed over channels (our ``cost="sum", normalize_by=None``; the
same arithmetic as the default ``cost="mean"`` up to a scale) on float32
inputs x (B, N, C), y (B, M, C), gamma = 0.001, then the gradient wrt x.
Throughput = B * N * M / (median wall seconds of fwd + bwd), after a warm-up
that compiles numba on a tiny batch and one untimed call at full size.
tslearn (SoftDTWLossPyTorch, one pair at a time) is timed on a few items and
scaled to the batch (said in the table). Ours and pysdtw run in ``--rounds``
alternating rounds (fresh processes each) and their repetitions are pooled,
so slow drift of the machine's speed hits both alike.

Peak memory: every method runs in a fresh subprocess; after imports and the
warm-up the kernel's peak-RSS counter is reset (/proc/self/clear_refs = 5) and
peak_mem_mb = VmHWM after the timed runs - VmRSS before them. RSS sees numpy,
numba and torch allocations alike (tracemalloc would miss torch).

Agreement: each method also computes values and d/dx in float64 on the first
two items at gamma = 0.1; max_abs_diff_* are against ours (0 for ours).
pysdtw and tslearn's torch loss copy R (and E) through float32 tensors
(``torch.Tensor(R)``) even for float64 inputs, so their values carry float32
rounding (|dv| ~ 1e-4 at values ~ 2e3) and their gradients more (at gamma =
0.001 that rounding swamps pysdtw's gradient); tests/test_soft_dtw.py checks
ours against tslearn's float64 numpy soft_dtw to 1e-9.

Threads: "all" (default) lets numba and torch use every core (2 here);
``--threads all 1`` also runs every worker single-threaded (NUMBA_NUM_THREADS
= OMP_NUM_THREADS = 1): a per-core comparison, less sensitive to other load
on a shared box. One tidy CSV holds all settings (column ``threads``).

    .venv/bin/python benchmarks/bench_soft_dtw.py [--reps 10] [--rounds 3] [--tslearn-items 2] [--threads all 1]

Writes benchmarks/results/local/bench_soft_dtw.csv (--record: the committed benchmarks/results/ one); the last line printed is our
speed-up over pysdtw at (B, N, M, C) = (32, 300, 300, 37).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHAPES = ((16, 200, 200, 37), (32, 300, 300, 37), (16, 750, 750, 37))
METHODS = ("ours", "pysdtw", "tslearn")
HEADLINE = (32, 300, 300, 37)
GAMMA_TIMED = 0.001
GAMMA_CHECK = 0.1


def _data(B: int, T: int, C: int, seed: int, dtype):
    """Blendshape-like curves in [0, 1] (smoothed random walks), (B, T, C)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    walk = torch.cumsum(torch.randn(B, T, C, generator=g) * 0.2, dim=1)  # (B, T, C)
    return torch.sigmoid(walk).to(dtype)


def _loss_fn(method: str, gamma: float):
    """(x, y) -> (B,) unnormalised soft-DTW values for one method."""
    if method == "ours":
        from lib.soft_dtw import soft_dtw

        return lambda x, y: soft_dtw(x, y, gamma=gamma, cost="sum", normalize_by=None)
    if method == "pysdtw":
        import pysdtw

        return pysdtw.SoftDTW(gamma=gamma, use_cuda=False)
    if method == "tslearn":
        from tslearn.metrics import SoftDTWLossPyTorch

        return SoftDTWLossPyTorch(gamma=gamma, normalize=False)
    raise ValueError(method)


def _mem_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def worker(method: str, B: int, N: int, M: int, C: int, reps: int, items: int, npz: str) -> None:
    """One method at one shape, in its own process; prints a JSON line."""
    import torch

    timed_b = B if method != "tslearn" else min(items, B)
    fn = _loss_fn(method, GAMMA_TIMED)
    for _ in range(2):  # warm-up: numba compilation on a tiny batch
        xw = _data(2, 16, C, 0, torch.float32).requires_grad_()
        fn(xw, _data(2, 16, C, 1, torch.float32)).sum().backward()
    x = _data(timed_b, N, C, 2, torch.float32).requires_grad_()
    y = _data(timed_b, M, C, 3, torch.float32)
    Path("/proc/self/clear_refs").write_text("5")  # reset peak RSS (VmHWM)
    rss0 = _mem_kb("VmRSS")
    # One untimed call at full size: first-touch page faults of fresh buffers
    # cost tens of ms on this VM and would dominate a handful of timed reps
    # (training calls the loss thousands of times). Peak memory is measured
    # from before it, so buffers a method keeps between calls still count.
    fn(x, y).sum().backward()
    times = []
    for _ in range(reps):
        x.grad = None
        t0 = time.perf_counter()
        fn(x, y).sum().backward()
        times.append(time.perf_counter() - t0)
    peak_mb = (_mem_kb("VmHWM") - rss0) / 1024
    # agreement run (float64, first two items, larger gamma)
    fn64 = _loss_fn(method, GAMMA_CHECK)
    x64 = _data(B, N, C, 2, torch.float64)[:2].requires_grad_()
    y64 = _data(B, M, C, 3, torch.float64)[:2]
    v = fn64(x64, y64)
    (g,) = torch.autograd.grad(v.sum(), x64)
    np.savez(npz, value=v.detach().numpy(), grad=g.numpy())
    print(json.dumps({"times_s": times, "peak_mem_mb": peak_mb, "timed_items": timed_b}))


def run_one(method: str, shape: tuple, reps: int, items: int, tmp: str, threads: str) -> dict:
    npz = os.path.join(tmp, f"{method}_{'x'.join(map(str, shape))}.npz")
    cmd = [sys.executable, __file__, "--worker", method, *map(str, shape), str(reps), str(items), npz]
    env = dict(os.environ)
    if threads != "all":
        env.update(NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} {shape} failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["arrays"] = dict(np.load(npz))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10, help="timed fwd+bwd repetitions (median)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours and pysdtw")
    ap.add_argument("--tslearn-items", type=int, default=2, help="items tslearn is timed on")
    ap.add_argument("--threads", nargs="+", default=["all"], help='threads per worker: "all" or N')
    ap.add_argument("--out", type=Path, default=None, help="CSV to write (default: see --record)")
    ap.add_argument("--record", action="store_true",
                    help="write the committed CSV that the README quotes (default: benchmarks/results/local/)")
    ap.add_argument("--worker", nargs=8, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        method, *nums, npz = args.worker
        worker(method, *map(int, nums), npz)
        return 0
    from lib.io import atomic_write_text

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            for shape in SHAPES:
                # Rounds alternate ours and pysdtw in fresh processes: this VM's
                # speed drifts by tens of percent over minutes, and interleaving
                # exposes both to the same drift. Throughput pools every timed
                # repetition of every round (median); peak memory is the largest
                # seen. tslearn (far slower) runs once.
                res = {}
                for _ in range(args.rounds):
                    for m in METHODS:
                        if m == "tslearn" and m in res:
                            continue
                        one = run_one(m, shape, args.reps if m != "tslearn" else 1, args.tslearn_items,
                                      tmp, threads)
                        if m in res:
                            res[m]["times_s"] += one["times_s"]
                            res[m]["peak_mem_mb"] = max(res[m]["peak_mem_mb"], one["peak_mem_mb"])
                        else:
                            res[m] = one
                B, N, M, C = shape
                for m in METHODS:
                    res[m]["cells_per_s"] = res[m]["timed_items"] * N * M / float(np.median(res[m]["times_s"]))
                ref = res["ours"]["arrays"]
                for m in METHODS:
                    a = res[m]["arrays"]
                    rows.append(dict(method=m, B=B, N=N, M=M, C=C, threads=threads,
                                     cells_per_s=round(res[m]["cells_per_s"]),
                                     peak_mem_mb=round(res[m]["peak_mem_mb"], 1),
                                     max_abs_diff_value=float(np.abs(a["value"] - ref["value"]).max()),
                                     max_abs_diff_grad=float(np.abs(a["grad"] - ref["grad"]).max()),
                                     timed_items=res[m]["timed_items"]))
                    print(f"done {m} {shape} threads={threads}", file=sys.stderr, flush=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    if args.out is None:
        from lib.paths import benchmark_csv

        args.out = benchmark_csv("bench_soft_dtw", args.record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, buf.getvalue())
    print(f"{'method':8s} {'thr':>3s} {'B':>3s} {'N':>4s} {'M':>4s} {'C':>3s} {'Mcells/s':>9s} "
          f"{'peak MB':>8s} {'|dv|':>9s} {'|dgrad|':>9s}  note")
    for r in rows:
        note = (f"timed on {r['timed_items']} items, scaled" if r["timed_items"] != r["B"] else "")
        print(f"{r['method']:8s} {r['threads']:>3s} {r['B']:3d} {r['N']:4d} {r['M']:4d} {r['C']:3d} "
              f"{r['cells_per_s'] / 1e6:9.1f} {r['peak_mem_mb']:8.1f} "
              f"{r['max_abs_diff_value']:9.2e} {r['max_abs_diff_grad']:9.2e}  {note}")
    print(f"wrote {args.out}; agreement: float64, gamma={GAMMA_CHECK}, first 2 items")
    ratios = []
    for threads in args.threads:
        speed = {r["method"]: r["cells_per_s"] for r in rows
                 if (r["B"], r["N"], r["M"], r["C"]) == HEADLINE and r["threads"] == threads}
        ratios.append(f"{speed['ours'] / speed['pysdtw']:.1f}x (threads={threads})")
    print(f"ours / pysdtw throughput at (B,N,M,C)={HEADLINE}: " + ", ".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
