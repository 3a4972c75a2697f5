"""Worker processes that die: one error type, and a test hook that kills a worker.

A process pool must never wait for a worker that is gone (segfault, SIGKILL, the
OOM killer). ``concurrent.futures.ProcessPoolExecutor`` notices and raises
``BrokenProcessPool``; every pool of the toolkit turns that into
:class:`WorkerDiedError`, naming the task(s) that were running, after keeping
what was already written.
"""
from __future__ import annotations

import fnmatch
import os
import signal

# Test hook: a worker about to start a task whose name matches this glob pattern
# sends itself SIGKILL (as the OOM killer would). Unset in normal use.
KILL_ENV = "T2A_TEST_KILL_TASK"


class WorkerDiedError(RuntimeError):
    """A worker process died while running the named tasks."""

    def __init__(self, job: str, tasks: list[str], kept: int | None = None):
        self.job, self.tasks, self.kept = job, list(tasks), kept
        running = ", ".join(self.tasks) if self.tasks else "(no task had started)"
        kept_s = f"; {kept} finished items are kept, rerun to resume" if kept is not None else ""
        super().__init__(f"{job}: a worker process died (crash, kill or out of memory) "
                         f"while running {running}{kept_s}")


def maybe_die(task: str) -> None:
    """Kill this process if the test hook names ``task`` (see :data:`KILL_ENV`)."""
    pattern = os.environ.get(KILL_ENV)
    if pattern and fnmatch.fnmatchcase(task, pattern):
        os.kill(os.getpid(), signal.SIGKILL)
