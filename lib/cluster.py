"""Jobs through submitit: SLURM on a cluster, submitit's local executor on one machine.

The toolkit writes no scheduler. :func:`run_jobs` submits each task as one
submitit job (on SLURM: one job array, at most ``max_parallel`` running;
locally: a window of ``max_parallel`` jobs), waits for them, resubmits a job
that ended without a result (killed, out of memory, node failure) up to
``retries`` times, and hands each task's outcome back as it finishes.
Preemption and time limits are submitit's: a task callable with a
``checkpoint`` method is requeued with the same arguments, and the task code
resumes from its own files (a run's ``last.pt``, an extraction's sidecars).

Without SLURM (no ``srun`` on PATH) ``cluster=None`` picks submitit's local
executor, which runs the same pickling, job-folder and requeue path in local
processes: what the tests exercise. The options reach notebook kernels as JSON
in ``T2A_SUBMITIT`` (set by ``run_all.py --executor submitit ...``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

EXECUTOR_ENV = "T2A_EXECUTOR"  # "local" (default) or "submitit"
OPTIONS_ENV = "T2A_SUBMITIT"  # JSON of SubmititOptions fields
EXECUTORS = ("local", "submitit")


@dataclass(frozen=True)
class SubmititOptions:
    """How jobs are submitted. Units in the names; ``None`` leaves submitit's / the cluster's default."""

    cluster: str | None = None  # "slurm", "local" or "debug"; None: slurm when srun is on PATH, else local
    folder: str | None = None  # job pickles and logs; None: the caller's default (beside its outputs)
    slurm_partition: str | None = None
    gpus_per_job: int = 0  # GPUs of one job (SLURM --gpus-per-node); the job uses cuda when it has one
    device: str | None = None  # torch device of a job: None = cuda when the job sees a GPU, else cpu
    cpus_per_job: int = 1  # cores of one job (SLURM --cpus-per-task); torch/numba are pinned to these
    mem_gb: float | None = None  # memory of one job (SLURM --mem)
    timeout_min: int = 120  # wall-clock limit of one job (SLURM --time); a job past it is requeued
    max_parallel: int = 2  # jobs running at once (SLURM array parallelism; locally a window)
    retries: int = 2  # resubmissions of a job that ended without a result (killed, OOM, node failure)
    max_num_timeout: int = 3  # requeues after a time-out or preemption (submitit's own counter)
    poll_s: float = 1.0  # seconds between job state checks in this process
    slurm: dict[str, Any] = field(default_factory=dict)  # any other SlurmExecutor parameter: account, qos, ...

    def __post_init__(self) -> None:
        if self.cluster not in (None, "slurm", "local", "debug"):
            raise ValueError(f"SubmititOptions.cluster must be slurm, local, debug or None, got {self.cluster!r}")
        for name in ("cpus_per_job", "max_parallel"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SubmititOptions.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.gpus_per_job < 0 or self.retries < 0:
            raise ValueError("SubmititOptions: gpus_per_job and retries must be >= 0")

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, defaults: dict[str, Any] | None = None, **overrides: Any) -> "SubmititOptions":
        """Options from ``T2A_SUBMITIT`` (JSON), over ``defaults``, under non-None ``overrides``."""
        raw = os.environ.get(OPTIONS_ENV, "").strip()
        try:
            d = json.loads(raw) if raw else {}
        except ValueError as e:
            raise ValueError(f"{OPTIONS_ENV} is not JSON ({e}): {raw[:200]!r}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{OPTIONS_ENV}: unknown option(s) {unknown}; known: {sorted(known)}")
        d = {**(defaults or {}), **d, **{k: v for k, v in overrides.items() if v is not None}}
        return cls(**d)


def executor_choice(executor: str | None) -> str:
    """``executor``, else ``$T2A_EXECUTOR``, else "local"; checked."""
    choice = (executor or os.environ.get(EXECUTOR_ENV) or "local").strip()
    if choice not in EXECUTORS:
        raise ValueError(f"unknown executor {choice!r} (from {'argument' if executor else EXECUTOR_ENV}); "
                         f"choose one of {EXECUTORS}")
    return choice


def require_submitit():
    try:
        import submitit
    except ImportError:
        raise ImportError("executor 'submitit' needs the submitit package: pip install submitit") from None
    return submitit


def make_executor(options: SubmititOptions, folder: str | Path, job_name: str):
    """A submitit AutoExecutor for ``options``; its ``cluster`` says which one was picked."""
    submitit = require_submitit()
    ex = submitit.AutoExecutor(folder=str(folder), cluster=options.cluster,
                               slurm_max_num_timeout=options.max_num_timeout)
    params: dict[str, Any] = {"name": job_name, "timeout_min": int(options.timeout_min),
                              "cpus_per_task": int(options.cpus_per_job), "gpus_per_node": int(options.gpus_per_job),
                              "slurm_array_parallelism": int(options.max_parallel)}
    if options.mem_gb:
        params["mem_gb"] = float(options.mem_gb)
    if options.slurm_partition:
        params["slurm_partition"] = options.slurm_partition
    params.update({k if k.startswith("slurm_") else f"slurm_{k}": v for k, v in options.slurm.items()})
    ex.update_parameters(**params)  # an unknown slurm_* name fails here, also without a cluster
    return ex


@dataclass
class JobOutcome:
    """What became of one task: its return value, or why it has none."""

    name: str
    result: Any = None
    error: str | None = None  # first line of what went wrong (None: the task returned)
    log: str = ""  # the job's stderr file (stdout beside it)
    job_id: str = ""
    attempts: int = 1


def _trace_last_line(message: str) -> str:
    lines = [ln.strip() for ln in message.splitlines() if ln.strip() and not set(ln.strip()) <= {"-"}]
    trace = [ln for ln in lines if not ln.startswith(("You can check", "or at paths", "- /"))]
    return trace[-1] if trace else message.strip()[:200]


def _collect(job, name: str, attempts: int) -> tuple[JobOutcome, bool]:
    """(outcome, died): ``died`` when the job left no result at all (worth resubmitting)."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    log = str(job.paths.stderr)
    try:
        return JobOutcome(name, job.result(), None, log, str(job.job_id), attempts), False
    except FailedJobError as e:  # first: it subclasses UncompletedJobError. The task raised: not worth retrying
        return JobOutcome(name, None, _trace_last_line(str(e)), log, str(job.job_id), attempts), False
    except UncompletedJobError as e:
        why = f"job {job.job_id} ended without a result (killed, out of memory, node failure or out of time): " \
              f"{_trace_last_line(str(e))}"
        return JobOutcome(name, None, why, log, str(job.job_id), attempts), True


def run_jobs(tasks: Sequence[tuple[str, Callable, tuple]], options: SubmititOptions, folder: str | Path,
             on_outcome: Callable[[JobOutcome], None], job_name: str = "t2a",
             on_submit: Callable[[str, Any, int], None] | None = None) -> str:
    """Run each (name, fn, args) as one job; ``on_outcome`` gets each task's outcome as it ends.

    ``on_submit(name, job, attempt)`` is called after each submission (e.g. to
    note the job's log path in the task's own folder). Jobs still running when
    this process is interrupted are cancelled (their tasks resume from their
    own files when resubmitted). Returns the cluster used ("slurm", "local", ...).
    """
    from .paths import REPO_ROOT

    ex = make_executor(options, folder, job_name)
    # Jobs unpickle lib.* by reference: make the checkout importable there without an install.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    as_array = ex.cluster == "slurm"  # one sbatch for all; SLURM enforces max_parallel
    queue = deque(range(len(tasks)))
    attempts = [0] * len(tasks)
    inflight: dict[int, Any] = {}

    def submit(indices: list[int]) -> None:
        if as_array and len(indices) > 1:
            with ex.batch():
                jobs = [ex.submit(tasks[i][1], *tasks[i][2]) for i in indices]
        else:
            jobs = [ex.submit(tasks[i][1], *tasks[i][2]) for i in indices]
        for i, job in zip(indices, jobs):
            if ex.cluster == "local":
                job._results_timeout_s = 2  # a local job's result is on disk when its process ends
            attempts[i] += 1
            inflight[i] = job
            on_submit and on_submit(tasks[i][0], job, attempts[i])

    try:
        if as_array and queue:
            submit(list(queue))
            queue.clear()
        while queue or inflight:
            while queue and len(inflight) < options.max_parallel:
                submit([queue.popleft()])
            ended = [i for i, job in inflight.items() if job.done()]
            for i in ended:
                outcome, died = _collect(inflight.pop(i), tasks[i][0], attempts[i])
                if died and attempts[i] <= options.retries:
                    if as_array:
                        submit([i])
                    else:
                        queue.appendleft(i)  # next free slot; the task resumes from its own files
                    continue
                on_outcome(outcome)
            if not ended:
                time.sleep(options.poll_s)
    except BaseException:
        for job in inflight.values():
            try:
                job.cancel(check=False)
            except Exception:
                pass
        raise
    return ex.cluster


# ----------------------------------------------------------------------------- command lines
def add_submitit_arguments(ap, unit: str = "job") -> None:
    """The executor options shared by ``run_all.py`` and ``python -m lib extract``.

    ``unit`` names what one job is ("run", "shard") in the flags' aliases
    (``--gpus_per_run`` = ``--gpus_per_job``). Any other ``--slurm_NAME VALUE``
    is passed to submitit's SlurmExecutor (see :func:`options_from_args`).
    """
    g = ap.add_argument_group("cluster (with --executor submitit; any other --slurm_NAME VALUE goes to SLURM)")
    g.add_argument("--executor", choices=EXECUTORS, default=None,
                   help=f"local processes, or submitit jobs (SLURM; its local executor without one). "
                        f"Default: ${EXECUTOR_ENV}, else local")
    g.add_argument("--cluster", choices=("slurm", "local", "debug"), default=None,
                   help="submitit executor (default: slurm when srun is on PATH, else local)")
    g.add_argument("--slurm_partition", default=None, metavar="P")
    names = {"gpus": f"--gpus_per_{unit}", "cpus": f"--cpus_per_{unit}"}
    g.add_argument(names["gpus"], *(["--gpus_per_job"] if unit != "job" else []), dest="gpus_per_job", type=int,
                   default=None, metavar="N", help=f"GPUs per {unit} (default 0; with one, the {unit} runs on cuda)")
    g.add_argument(names["cpus"], *(["--cpus_per_job"] if unit != "job" else []), dest="cpus_per_job", type=int,
                   default=None, metavar="N", help=f"cores per {unit}; torch and numba are pinned to them (default 1)")
    if unit == "run":  # (extraction has its own --device)
        g.add_argument("--device", default=None, help="torch device of each run job (default: cuda when it has a GPU)")
    g.add_argument("--mem_gb", type=float, default=None, help=f"memory per {unit}, GB")
    g.add_argument("--timeout_min", type=int, default=None, help=f"time limit per {unit}, minutes (default 120)")
    g.add_argument("--max_parallel", type=int, default=None, help=f"{unit}s running at once (default 2)")
    g.add_argument("--retries", type=int, default=None, help="resubmissions of a job that died (default 2)")
    g.add_argument("--submitit_folder", default=None, help="job pickles and logs (default beside the outputs)")


def options_from_args(args, extra: Sequence[str] = ()) -> SubmititOptions:
    """SubmititOptions from parsed :func:`add_submitit_arguments` flags (over ``$T2A_SUBMITIT``).

    ``extra``: the unparsed ``--slurm_NAME VALUE`` / ``--slurm_NAME=VALUE``
    words; values that look like integers become ints; ``--slurm_setup LINE``
    may repeat (a list of shell lines). Anything else is an error.
    """
    slurm: dict[str, Any] = {}
    words = list(extra)
    while words:
        word = words.pop(0)
        if not word.startswith("--slurm_"):
            raise SystemExit(f"unrecognized argument {word!r} (only --slurm_NAME VALUE passes through to SLURM)")
        name, eq, value = word[len("--slurm_"):].partition("=")
        if not eq:
            if not words or words[0].startswith("--"):
                raise SystemExit(f"{word} needs a value")
            value = words.pop(0)
        if name == "setup":  # shell lines run before the job (module load ...): repeatable, a list
            slurm.setdefault("setup", []).append(value)
        else:
            slurm[name] = int(value) if value.lstrip("-").isdigit() else value
    base = SubmititOptions.from_env()
    given = {k: getattr(args, k) for k in ("cluster", "slurm_partition", "gpus_per_job", "cpus_per_job", "mem_gb",
                                           "timeout_min", "max_parallel", "retries", "device")
             if getattr(args, k, None) is not None}
    if args.submitit_folder:
        given["folder"] = args.submitit_folder
    return dataclasses.replace(base, **given, slurm={**base.slurm, **slurm})
