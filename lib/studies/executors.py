"""Executors of a study's planned runs: local worker processes, or one submitit job per run.

Both run :func:`lib.studies.runner.execute_run` with the same configs and one
torch / numba thread per CPU run, so their numbers are identical (tested);
both skip a run with a ``done.json`` and resume the others from ``last.pt``.

- ``local``: spawned worker processes (:mod:`lib.pool`). A worker that dies
  (SIGKILL, segfault, out of memory) fails the run it was running, named; the
  other runs go on in a fresh pool.
- ``submitit`` (:mod:`lib.cluster`): on SLURM one job array, locally submitit's
  local executor. Job logs go to ``<runs_dir>/_submitit/<study>/`` and each
  run's ``job.json`` points at its latest job's log. A preempted or timed-out
  job is requeued by submitit and resumes from ``last.pt``; a job that ended
  without a result is resubmitted (``retries``) and resumes the same way.

Test hook: ``T2A_TEST_SIGNAL_RUN=<run key>:<KILL|USR2>[,...]`` makes that run's job
send itself the signal once, as soon as its first ``last.pt`` exists (SIGKILL:
a killed job; SIGUSR2: submitit's preemption signal).
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from ..cluster import SubmititOptions, executor_choice, run_jobs
from ..io import atomic_write_text
from .runner import PlannedRun, execute_run, read_done, tests_cover

SIGNAL_ENV = "T2A_TEST_SIGNAL_RUN"


def _pending(planned: Sequence[PlannedRun]) -> tuple[dict[str, PlannedRun], list[dict]]:
    """(runs to execute by key, results of cached runs); each key once."""
    todo: dict[str, PlannedRun] = {}
    cached: list[dict] = []
    for p in planned:
        if p.key in todo or any(r["key"] == p.key for r in cached):
            continue
        done = read_done(p.run_dir)
        if done is not None and tests_cover(done, p.tests):
            cached.append({"key": p.key, "status": "cached", "wall_s": done.get("wall_s", 0.0), "error": "",
                           "log": ""})
        else:
            todo[p.key] = p
    return todo, cached


def execute_all(planned: Sequence[PlannedRun], workers: int = 2, progress: bool = True,
                on_done: Callable[[dict], None] | None = None, executor: str | None = None,
                options: SubmititOptions | None = None, name: str = "study") -> list[dict]:
    """Run the unfinished runs of ``planned`` (each key once); cached runs are not touched.

    Args:
        workers: local executor: runs in parallel (1: in this process).
        executor: "local" or "submitit" (default ``$T2A_EXECUTOR``, else local).
        options: submitit options (default from ``$T2A_SUBMITIT``); ``max_parallel``
            defaults to ``workers`` there.
        name: the study, for job names and the log folder.
    Returns one result per distinct key: {"key", "status" ("done", "failed",
    "cached"), "wall_s", "error", "log"}. ``on_done(result)`` is called in this
    process after each run.
    """
    from tqdm.auto import tqdm

    todo, results = _pending(planned)
    bar = tqdm(total=len(todo), desc=f"runs ({len(results)} cached)", disable=not progress or not todo)

    def finish(res: dict) -> None:
        results.append(res)
        bar.update()
        on_done and on_done(res)

    try:
        if todo and executor_choice(executor) == "submitit":
            if options is None:
                options = SubmititOptions.from_env(defaults={"max_parallel": max(1, workers)})
            _execute_submitit(list(todo.values()), options, name, finish)
        elif todo:
            _execute_local(list(todo.values()), workers, finish)
    finally:
        bar.close()
    return results


def _warm_numba() -> None:
    """Compile (or load) the soft-DTW / DTW kernels here first, so that parallel
    workers only read numba's on-disk cache: two processes writing the same cache
    file at once can leave one that segfaults its readers (lib/jit_cache.py)."""
    try:
        from ..jit_cache import warm_numba_caches
    except ImportError:  # a checkout without lib/jit_cache.py: workers compile as before
        return
    warm_numba_caches("soft_dtw", "metrics")


# ----------------------------------------------------------------------------- local processes
def _local_worker_init() -> None:
    from ..threads import pin_threads

    pin_threads(1)


def _execute_local(todo: list[PlannedRun], workers: int, finish: Callable[[dict], None]) -> None:
    jobs = [(p.key, (*p.configs, p.tests)) for p in todo]
    if workers <= 1 or len(jobs) <= 1:
        for _key, args in jobs:
            finish(execute_run(*args))
        return
    from multiprocessing import get_context

    from ..pool import run_tasks
    from ..threads import child_thread_env

    by_key = {p.key: p for p in todo}

    def outcome(o) -> None:
        if o.error is None:
            finish(o.result)
        else:
            p = by_key[o.name]
            finish({"key": o.name, "status": "failed", "wall_s": 0.0, "log": str(p.run_dir),
                    "error": f"{o.error} (run {o.name}, {p.arm.label} seed {p.seed}; what it wrote so far is in "
                             f"{p.run_dir}, and a rerun resumes it from last.pt)"})

    _warm_numba()
    # spawn, not fork: the parent holds torch's thread pools, and a forked copy of them can hang.
    with child_thread_env(1):
        run_tasks(execute_run, jobs, workers, get_context("spawn"), outcome, initializer=_local_worker_init)


# ----------------------------------------------------------------------------- submitit jobs
class RunJob:
    """One planned run as a submitit job: pin threads, then :func:`execute_run`.

    ``checkpoint`` makes submitit requeue the job with the same arguments after
    a preemption or time-out signal; the requeued job resumes from ``last.pt``.
    """

    def __init__(self, cpus: int, device: str | None = None) -> None:
        self.cpus, self.device = cpus, device

    def __call__(self, model, loss, train_cfg, tests) -> dict:
        from ..threads import pin_threads

        pin_threads(self.cpus)  # before torch/numba load in this job: its cores only
        import torch

        # device is not part of a run's key: the same run on a GPU job is the same experiment.
        device = self.device or ("cuda" if torch.cuda.is_available() else None)
        if device:  # None (no GPU) leaves the config as the local executor writes it: cpu
            train_cfg = dataclasses.replace(train_cfg, device=device)
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        print(f"run {train_cfg.name}: device {device or 'cpu'} (CUDA_VISIBLE_DEVICES={gpus!r}), {self.cpus} core(s)",
              flush=True)
        run_dir = Path(train_cfg.output_path) / train_cfg.name
        last = run_dir / "last.pt"
        print(f"run {train_cfg.name}: " + (f"resuming from {last}" if last.is_file() else "starting"), flush=True)
        _arm_test_signal(train_cfg.name, run_dir)
        result = execute_run(model, loss, train_cfg, tests)
        from ..threads import thread_counts

        print(f"run {train_cfg.name}: {result['status']}; threads at the end: {thread_counts()}", flush=True)
        return result

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def _arm_test_signal(key: str, run_dir: Path) -> None:
    specs = dict(item.partition(":")[::2] for item in os.environ.get(SIGNAL_ENV, "").split(",") if item)
    fired = run_dir / ".test_signal_sent"
    if key not in specs or fired.exists():
        return
    name = specs[key] or "KILL"
    signum = {"KILL": signal.SIGKILL, "USR2": signal.SIGUSR2}[name]

    def watch() -> None:
        while not (run_dir / "last.pt").is_file():
            time.sleep(0.01)
        fired.touch()
        print(f"test hook: sending SIG{name} to myself after {run_dir / 'last.pt'}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, daemon=True).start()


def _execute_submitit(todo: list[PlannedRun], options: SubmititOptions, name: str,
                      finish: Callable[[dict], None]) -> None:
    runs_dir = Path(todo[0].configs[2].output_path)
    folder = Path(options.folder) if options.folder else runs_dir / "_submitit" / name
    by_key = {p.key: p for p in todo}
    tasks = [(p.key, RunJob(options.cpus_per_job, options.device), (*p.configs, p.tests)) for p in todo]

    def submitted(key: str, job, attempt: int) -> None:
        run_dir = by_key[key].run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "job.json", json.dumps(
            {"job_id": str(job.job_id), "attempt": attempt, "stderr": str(job.paths.stderr),
             "stdout": str(job.paths.stdout)}, indent=1) + "\n")

    def outcome(o) -> None:
        p = by_key[o.name]
        if o.error is None and isinstance(o.result, dict):
            res = dict(o.result)
            res["log"] = o.log
            if res["status"] == "failed":
                first, _, rest = res["error"].partition("\n")
                res["error"] = f"{first} (log: {o.log})\n{rest}"
            finish(res)
        else:
            finish({"key": o.name, "status": "failed", "wall_s": 0.0, "log": o.log,
                    "error": f"{o.error} (job {o.job_id}, {o.attempts} attempt(s), {p.arm.label} seed {p.seed}; "
                             f"log: {o.log})"})

    _warm_numba()
    run_jobs(tasks, options, folder, outcome, job_name=f"t2a-{name}", on_submit=submitted)
