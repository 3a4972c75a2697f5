"""A process pool that notices a dead worker and names the task it was running.

``concurrent.futures.ProcessPoolExecutor`` answers a worker that dies
(SIGKILL, segfault, the kernel's out-of-memory killer) with
``BrokenProcessPool`` on *every* unfinished future and terminates the other
workers, so by itself it cannot say which task killed it. :func:`run_tasks`
keeps a marker file per running task (its worker's pid) and has each worker
note a SIGTERM from the pool's clean-up before it exits. After a break, a
marker whose worker left no such note is the task that was running when its
worker died: it is reported as failed (not retried: a task that kills its
worker once will usually do it again). Tasks that were running in the other
workers, or not started, go to a fresh pool. Results already returned are
kept, and so is everything the tasks wrote.

Test hook: a worker about to run a task whose name matches the fnmatch
pattern in ``T2A_TEST_KILL_TASK`` sends itself SIGKILL (tests/test_executors.py).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .workers import KILL_ENV, maybe_die  # noqa: F401 - KILL_ENV: the hook's variable, for tests

DIED = ("worker process died while running it (killed by a signal, segfault or out of memory; "
        "see the kernel log, e.g. `dmesg`, for an OOM kill)")


@dataclass
class Outcome:
    """What became of one task: its return value, or why it has none."""

    name: str
    result: Any = None
    error: str | None = None  # set when the task raised past its function or its worker died
    died: bool = False  # its worker process died while running it


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this worker when the pool's process dies.

    Without it, a worker whose parent was killed (``kill``, an OOM kill, a closed
    notebook kernel) trains on to the end of its task, minutes of a core, for a
    result nobody reads. The task's own checkpoints make the next run resume.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _init_worker(ctl_dir: str, initializer: Callable | None, initargs: tuple, parent_pid: int) -> None:
    def on_term(signum, frame):  # the pool terminates the survivors of a break: say so, then go
        Path(ctl_dir, f"stopped.{os.getpid()}").touch()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    _die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def _run_one(ctl_dir: str, index: int, name: str, fn: Callable, args: tuple) -> Any:
    marker = Path(ctl_dir, f"{index}.run")
    marker.write_text(str(os.getpid()))
    maybe_die(name)  # test hook (lib.workers)
    result = fn(*args)
    marker.unlink()
    return result


def run_tasks(fn: Callable, tasks: Sequence[tuple[str, tuple]], workers: int, mp_context,
              on_outcome: Callable[[Outcome], None], initializer: Callable | None = None,
              initargs: tuple = (), max_tasks_per_child: int | None = None) -> None:
    """Run ``fn(*args)`` for each (name, args) of ``tasks`` in ``workers`` processes.

    ``on_outcome`` is called in this process once per task, as each finishes,
    with its :class:`Outcome`. Never raises for a task's failure: a task that
    raises, or whose worker dies, gets an Outcome with ``error`` set; the
    other tasks still run.
    """
    pending = list(enumerate(tasks))
    while pending:
        ctl = tempfile.mkdtemp(prefix="t2a-pool-")
        finished: set[int] = set()
        broken = False
        try:
            with ProcessPoolExecutor(min(workers, len(pending)), mp_context=mp_context, initializer=_init_worker,
                                     max_tasks_per_child=max_tasks_per_child,
                                     initargs=(ctl, initializer, initargs, os.getpid())) as pool:
                futures = {pool.submit(_run_one, ctl, i, name, fn, args): (i, name) for i, (name, args) in pending}
                for fut in as_completed(futures):
                    i, name = futures[fut]
                    try:
                        res = fut.result()
                    except BrokenProcessPool:
                        broken = True  # attributed below, once every worker has exited
                        continue
                    except Exception as e:  # raised past fn (e.g. unpicklable result): this task's
                        finished.add(i)
                        on_outcome(Outcome(name, error=f"{type(e).__name__}: {e}"))
                        continue
                    finished.add(i)
                    on_outcome(Outcome(name, res))
            # Leaving the with-block joined the pool's processes: every marker and note is on disk now.
            if not broken:
                return
            stopped = {p.name.split(".", 1)[1] for p in Path(ctl).glob("stopped.*")}
            died = set()
            for m in Path(ctl).glob("*.run"):
                i = int(m.stem)
                if i not in finished and m.read_text().strip() not in stopped:
                    died.add(i)
            names = {i: name for i, (name, _args) in pending}
            for i in sorted(died):
                on_outcome(Outcome(names[i], error=DIED, died=True))
            rest = [(i, t) for i, t in pending if i not in finished and i not in died]
            if not died and not finished:
                # Workers died before running anything (e.g. at start-up): another pool would too.
                for i, (name, _args) in rest:
                    on_outcome(Outcome(name, error="worker processes died before running any task", died=True))
                return
            pending = rest
        finally:
            shutil.rmtree(ctl, ignore_errors=True)
