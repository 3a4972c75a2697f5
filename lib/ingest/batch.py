"""Run many independent file jobs, in this process or in a spawn process pool.

The ingest commands (label-video, import-videos, augment) share one contract: a
batch finishes every good item, collects the bad ones with their message, and
never waits on a dead worker. Workers are fresh ``spawn`` processes (forking a
process that holds torch or MediaPipe threads can hang), and every job returns
``(ok, value_or_message)`` instead of raising, because the toolkit's
``DataError`` (two constructor arguments) does not survive pickling back.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

# Each worker runs one job at a time on one core: libraries must not start
# their own thread pools on a machine whose cores the pool already fills.
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass
class BatchResult:
    """Outcome of a batch: ``values[name]`` for the jobs that worked, ``failures``
    as ``(name, message)`` pairs for the ones that did not, in submission order."""

    values: dict[str, Any] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _guarded(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    """Call ``fn(*args)``; an exception becomes ``(False, "Type: message")``."""
    try:
        return True, fn(*args)
    except Exception as e:  # noqa: BLE001 - reported per job; the batch goes on
        return False, f"{type(e).__name__}: {e}"


def _init_worker(env: dict[str, str]) -> None:
    os.environ.update(env)


def run_jobs(fn: Callable[..., Any], jobs: Sequence[tuple[str, tuple]], workers: int = 2,
             desc: str = "jobs", unit: str = "job", progress: bool = True,
             fresh_process_per_job: bool = False) -> BatchResult:
    """Run ``fn(*args)`` for every ``(name, args)`` in ``jobs``.

    ``workers <= 1`` runs in this process (tests, debugging); otherwise in a
    process pool with the spawn context (:func:`lib.pool.run_tasks`). ``fn`` must
    be a module-level function and its arguments picklable. A worker that dies
    (killed, out of memory, a crash inside a C extension) fails the job it was
    running, by name, so the caller can list it and rerun (finished outputs are
    skipped on rerun); the jobs of the other workers finish in a fresh pool.
    ``fresh_process_per_job``: each job gets a new worker process (engines whose
    state depends on what the process did before; children they start end with it).
    """
    from tqdm.auto import tqdm

    result = BatchResult()
    outcomes: dict[str, tuple[bool, Any]] = {}
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress or not jobs)
    if workers <= 1 or len(jobs) <= 1:
        for name, args in jobs:
            outcomes[name] = _guarded(fn, args)
            bar.update()
    else:
        import multiprocessing as mp

        from ..pool import run_tasks  # the toolkit's pool: a dead worker is named, the rest finish

        def record(o) -> None:
            outcomes[o.name] = o.result if o.error is None else (False, o.error)
            bar.update()

        env = {k: os.environ.get(k, "1") for k in _THREAD_ENV}
        run_tasks(_guarded, [(name, (fn, args)) for name, args in jobs], workers, mp.get_context("spawn"), record,
                  initializer=_init_worker, initargs=(env,),
                  max_tasks_per_child=1 if fresh_process_per_job else None)
    bar.close()
    for name, _ in jobs:
        ok, value = outcomes[name]
        if ok:
            result.values[name] = value
        else:
            result.failures.append((name, value))
    return result
