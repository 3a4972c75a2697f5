"""Thread counts follow the cores that are actually free (issue: two torch threads on
the one free core ran at a quarter of their speed)."""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import pytest

from lib import threads


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def test_free_cores_arithmetic(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    samples = iter([(1000, 4000), (1000 + 150, 4000 + 400)])  # 150 of 400 jiffies idle: 2.5 cores busy
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    assert threads.free_cores(sample_s=0) == 2  # 4 - round(2.5)
    samples = iter([(0, 0), (400, 400)])  # all idle
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    assert threads.free_cores(sample_s=0) == 4
    samples = iter([(0, 0), (0, 400)])  # all busy: still one thread
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    assert threads.free_cores(sample_s=0) == 1


def test_slurm_allocation_is_ours_whatever_the_load(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    monkeypatch.setattr(threads, "_cpu_times", lambda: pytest.fail("sampled the load inside a SLURM job"))
    assert threads.free_cores() == 3


def test_busy_cores_are_not_counted_as_free(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    usable = threads.usable_cpus()
    if usable < 2 or threads._cpu_times() is None:
        pytest.skip("needs two cores and /proc/stat")
    ctx = mp.get_context("spawn")
    spinners = [ctx.Process(target=_spin, args=(time.monotonic() + 8.0,)) for _ in range(usable)]
    for p in spinners:
        p.start()
    try:
        time.sleep(1.0)  # let them start spinning
        assert threads.free_cores(sample_s=0.5) == 1
    finally:
        for p in spinners:
            p.terminate()
            p.join()


def test_pin_threads_picks_the_threading_layer_that_does_not_spin():
    """In a fresh process (pinning is process-wide: numba's pool cannot be resized
    once launched, so this must not run inside the test process)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, os\n"
        "from lib.threads import pin_threads\n"
        "n = pin_threads(1)\n"
        "import torch, numba\n"
        "from lib.soft_dtw.api import soft_dtw\n"
        "x = torch.rand(2, 8, 3)\n"
        "soft_dtw(x, x)  # launches numba's parallel runtime\n"
        "print(json.dumps({'n': n, 'torch': torch.get_num_threads(), 'numba': numba.get_num_threads(),\n"
        "                  'layer': numba.threading_layer(), 'env': os.environ['NUMBA_NUM_THREADS']}))\n")
    env = {k: v for k, v in os.environ.items() if k not in threads.THREAD_ENV and k != "NUMBA_THREADING_LAYER"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got == {"n": 1, "torch": 1, "numba": 1, "layer": "workqueue", "env": "1"}, got
