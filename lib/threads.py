"""Thread counts per process: torch and numba must not fight over the cores.

Measured on a 2-core machine with the other core busy: numba's default
parallel runtime, once started by the first soft-DTW call, slowed torch's
training steps about 2.8x, and two torch threads on one free core ran at about
a quarter of the speed. So every process that trains or extracts (a study
worker, a submitit job, an extraction shard, ``python -m lib train``) calls
:func:`pin_threads` once with the number of cores it may use, before it
computes anything.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

# Read by OpenMP / MKL / OpenBLAS / numba when they start: set for this process's
# libraries that are not loaded yet and for every child process it spawns.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def usable_cpus() -> int:
    """Cores this process may use: SLURM's allocation when inside a job, else the CPU affinity mask.

    ``SLURM_CPUS_PER_TASK`` wins because a SLURM job step may see every core of
    the node in its affinity mask on clusters without cgroup confinement.
    """
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all CPUs from /proc/stat; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])  # idle + iowait; no guest time


def free_cores(sample_s: float = 0.25) -> int:
    """Cores of :func:`usable_cpus` that other processes are not using right now (at least 1).

    Samples the machine's CPU time for ``sample_s`` while this process sleeps,
    so what is busy is someone else. Why: with the other core taken, two torch
    threads on the one free core ran at about a quarter of their speed, and
    numba's parallel soft-DTW fought torch for it; a count that follows the free
    cores keeps both at full speed. Inside a SLURM job its allocation is ours
    alone, so no sampling there.
    """
    usable = usable_cpus()
    if os.environ.get("SLURM_CPUS_PER_TASK", "").strip().isdigit():
        return usable
    import time

    a = _cpu_times()
    if a is None:
        return usable
    time.sleep(sample_s)
    b = _cpu_times()
    total = b[1] - a[1]
    if total <= 0:
        return usable
    busy_cores = (1.0 - (b[0] - a[0]) / total) * (os.cpu_count() or usable)
    return max(1, min(usable, usable - int(round(busy_cores))))


def pin_threads(n: int | None = None) -> int:
    """Use ``n`` threads (default :func:`free_cores`: the cores not busy right now) in
    torch, numba and OpenMP/MKL; returns ``n``.

    Sets the environment, which libraries read when they load (in this
    process and in every child it starts), then adjusts the ones already
    loaded: torch's intra-op (and, while still allowed, inter-op) pool and
    numba's active thread count. Nothing is imported here, so a worker that
    never needs torch does not pay for it. numba can only lower its count below
    the pool size it started with (``NUMBA_NUM_THREADS`` at its import), which
    is why the environment is set first.
    """
    n = int(n) if n else free_cores()
    if n < 1:
        raise ValueError(f"pin_threads: need at least one thread, got {n}")
    for name in THREAD_ENV:
        os.environ[name] = str(n)
    # numba's default threading layer (OpenMP here) kept its threads spinning after
    # each parallel soft-DTW call and slowed torch's steps ~2.8x when a core was
    # busy; its own "workqueue" layer measured no slowdown and still runs the
    # kernel in parallel on the cores we have. Read when numba starts its pool.
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:
            pass  # only settable before the first parallel op; the intra-op count is the one that matters
    if "numba" in sys.modules:
        import numba

        # numba sized its pool when it started and checks the variable against it at
        # every later config reload (a mismatch raises): keep the variable at that size
        # here and lower only the active count.
        os.environ["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n


@contextmanager
def child_thread_env(n: int):
    """Within the block, child processes start with ``n`` threads per library (the environment only).

    For pools whose workers must be pinned before their first import (spawned
    workers re-import their parent's main module), without pinning this process.
    """
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: str(n) for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def thread_counts() -> str:
    """"torch N, numba M" for the libraries loaded in this process (for job logs and tests)."""
    parts = []
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].get_num_threads()}")
    if "numba" in sys.modules:
        parts.append(f"numba {sys.modules['numba'].get_num_threads()}")
    return ", ".join(parts) or "no threaded library loaded"
