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


def test_pin_threads_picks_the_threading_layer_that_does_not_spin(monkeypatch):
    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    for name in threads.THREAD_ENV:
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    import torch

    before = torch.get_num_threads()
    try:
        n = threads.pin_threads(1)
        assert n == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)  # the rest of the suite keeps its threads
    assert os.environ["NUMBA_THREADING_LAYER"] == "workqueue"
    assert all(os.environ[k] == "1" for k in threads.THREAD_ENV)
