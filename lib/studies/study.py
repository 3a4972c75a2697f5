"""A study: plan its runs, execute them (cached), write its tidy tables and its index row.

``run_study("05_ablation_losses", loss_arms(profile), profile, root)`` is all a
notebook calls. Outputs in ``results/<study>/``: metrics.csv (run_id, arm,
seed, split, speaker, reference, metric, value: one row per run and score, the
mean over test utterances), curves.csv (run_id, arm, seed, step, epoch, split,
metric, value), arms.csv (what each arm is), runs.csv (status and wall time of
each run), summary.csv (mean ± std over seeds); and one row of
``results/index.csv`` (study, profile, arms, seeds, best arm and score, git
commit, command, wall time).
"""
from __future__ import annotations

import datetime
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io import atomic_write_text
from ..paths import REPO_ROOT, profile_results_dir
from . import stats
from .arms import Arm
from .profiles import StudyProfile
from .runner import (RUNS_DIR, PlannedRun, StudyError, execute_all, plan_runs, read_done, recorded_runs,
                     write_study_tables)

INDEX_COLUMNS = ("study", "profile", "n_arms", "arms", "seeds", "n_runs", "best_arm", "best_mse_score",
                 "git_commit", "command", "run_wall_s", "elapsed_s", "machine", "finished_at")


@dataclass
class StudyResult:
    study: str
    out_dir: Path
    planned: list[PlannedRun]
    metrics: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame
    failed: list[str] = field(default_factory=list)

    def run_dir(self, arm: str, seed: int | None = None) -> Path:
        """Run folder of an arm (its first seed unless given)."""
        for p in self.planned:
            if p.arm.label == arm and (seed is None or p.seed == seed):
                return p.run_dir
        raise KeyError(f"no run of arm {arm!r} (seed {seed}) in {self.study}")


def git_commit() -> str:
    """HEAD's commit (read-only), '+dirty' when the work tree differs; 'unknown' outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    import os

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()} {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"


def notebook_command(study: str, profile: str) -> str:
    return f"python run_all.py --profile {profile} --only {study[:2]}" if study[:2].isdigit() else study


def write_index_row(row: dict, path: Path | None = None) -> pd.DataFrame:
    """Insert or replace the row of ``row['study']`` in results/<profile>/index.csv (atomic)."""
    path = path or profile_results_dir(row["profile"]) / "index.csv"
    new = pd.DataFrame([{k: row.get(k, "") for k in INDEX_COLUMNS}])
    if path.is_file():
        old = pd.read_csv(path, keep_default_na=False)
        old = old[old["study"] != row["study"]]
        new = pd.concat([old, new], ignore_index=True).sort_values("study", kind="stable")
    atomic_write_text(path, new.to_csv(index=False))
    return new


def run_study(study: str, arms: Sequence[Arm], profile: StudyProfile, root: str | Path,
              tests: Sequence[str] = ("org",), workers: int | None = None,
              seeds: Sequence[int] | None = None, results_dir: Path | None = None, runs_dir: Path | None = None,
              progress: bool = True, raise_on_failure: bool = True, executor: str | None = None,
              submitit=None) -> StudyResult:
    """Run every (arm, seed) of a study that is not cached, then write its tables.

    Args:
        tests: speakers to test on test_a: ("org",), or ("all",) for every voice.
        workers: parallel runs (default ``profile.workers``).
        executor: "local" or "submitit" (default ``$T2A_EXECUTOR``, else "local"); see lib.studies.executors.
        submitit: a lib.cluster.SubmititOptions (default from ``$T2A_SUBMITIT``).
    Raises StudyError after all runs, naming the failed ones (unless raise_on_failure=False).
    """
    t0 = time.perf_counter()
    base = results_dir or profile_results_dir(profile.name)  # results/<profile>/
    out_dir = base / study
    out_dir.mkdir(parents=True, exist_ok=True)
    planned = plan_runs(arms, profile, root, tests, seeds, runs_dir or RUNS_DIR)
    # Runs the study's tables already record (e.g. committed from another machine) are
    # not trained again: their rows are kept (runner.write_study_tables).
    recorded = recorded_runs(out_dir)
    todo = [p for p in planned if p.key not in recorded or read_done(p.run_dir) is not None]
    results = execute_all(todo, workers or profile.workers, progress,
                          on_done=lambda _r: write_study_tables(out_dir, planned), executor=executor,
                          options=submitit, name=study)
    paths = write_study_tables(out_dir, planned, results)
    failed = [r for r in results if r["status"] == "failed"]
    metrics = pd.read_csv(paths["metrics"], keep_default_na=False, na_values=["nan", "NaN"])
    summary = stats.summarize(metrics, arm_order=[a.label for a in arms])
    atomic_write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    runs = pd.read_csv(paths["runs"])
    best = stats.best_arm(summary, "mse_score")
    best_score = summary[(summary.arm == best) & (summary.metric == "mse_score")]["mean"]
    write_index_row({
        "study": study, "profile": profile.name, "n_arms": len(arms), "arms": ";".join(a.label for a in arms),
        "seeds": ";".join(sorted({str(p.seed) for p in planned}, key=int)), "n_runs": len(planned),
        "best_arm": best or "", "best_mse_score": float(best_score.iloc[0]) if len(best_score) else "",
        "git_commit": git_commit(), "command": notebook_command(study, profile.name),
        "run_wall_s": round(float(pd.to_numeric(runs["wall_s"], errors="coerce").sum()), 1),
        "elapsed_s": round(time.perf_counter() - t0, 1), "machine": machine(),
        "finished_at": datetime.datetime.now().isoformat(timespec="seconds")}, base / "index.csv")
    curves = pd.read_csv(paths["curves"])
    res = StudyResult(study, out_dir, planned, metrics, curves, summary, runs, [r["key"] for r in failed])
    if failed and raise_on_failure:
        by_key = {p.key: p for p in planned}
        lines = [f"{r['key']} ({by_key[r['key']].arm.label}, seed {by_key[r['key']].seed}): "
                 f"{r['error'].splitlines()[0]}" for r in failed]
        raise StudyError(f"{len(failed)} of {len(results)} runs of {study} failed:\n  " + "\n  ".join(lines)
                         + "\n(the others finished; each failed run's traceback is in its folder's error.txt)")
    return res
