"""Run the arms x seeds of a study: cached, resumable, two at a time.

Every run lives in ``results/runs/<key>/`` where ``key`` hashes its full
configs (model, loss, train, minus where-not-what fields) and the identity of
its data (the corpus manifest and the training subset). Two studies that ask
for the same experiment share one run; a rerun of a killed study skips every
run with a ``done.json`` and resumes the others from their ``last.pt``
(lib.train). A run writes, in order: ``config.json`` (lib.train, first),
checkpoints and ``curves.csv``, the test predictions and ``metrics.csv``
(lib.train.test), then ``done.json`` (wall time, tests done).

Parallel runs use spawned worker processes with one torch thread and one numba
thread each, the same arithmetic as a serial run with one thread: results are
identical (tested). A run that raises is listed and the study finishes the
others, then raises :class:`StudyError` naming the failures.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..config import LossConfig, ModelConfig, TrainConfig
from ..io import atomic_write_text
from ..metrics import METRICS_COLUMNS
from ..paths import REPO_ROOT, RESULTS_DIR
from .arms import Arm, arm_configs
from .profiles import StudyProfile

RUNS_DIR = RESULTS_DIR / "runs"
# A study table: a run's metrics.csv (lib.metrics.METRICS_COLUMNS) averaged over utterances.
METRIC_COLUMNS = tuple(c for c in METRICS_COLUMNS if c != "utt")
CURVE_COLUMNS = ("run_id", "arm", "seed", "step", "epoch", "split", "metric", "value")
# Fields that change where or how visibly a run happens, never its numbers.
KEY_FREE_FIELDS = ("name", "output_path", "progress", "device")
TEST_SPLIT = "test_a"


class StudyError(RuntimeError):
    """Some runs of a study failed; the others finished."""


@dataclass(frozen=True)
class PlannedRun:
    arm: Arm
    seed: int
    key: str
    configs: tuple[ModelConfig, LossConfig, TrainConfig]
    tests: tuple[str, ...]  # speakers to test on test_a: ("org",) or ("all",)

    @property
    def run_dir(self) -> Path:
        return Path(self.configs[2].output_path) / self.key


# ----------------------------------------------------------------------------- keys
def _rel(path: str) -> str:
    p = Path(path).resolve()
    return p.relative_to(REPO_ROOT).as_posix() if p.is_relative_to(REPO_ROOT) else p.as_posix()


def _file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def run_key(model: ModelConfig, loss: LossConfig, train: TrainConfig) -> str:
    """12 hex digits identifying a run: its configs and its data (manifest, subset)."""
    t = {k: v for k, v in dataclasses.asdict(train).items() if k not in KEY_FREE_FIELDS}
    t["root_dir"] = _rel(train.root_dir)  # the same corpus anywhere the repository is checked out
    root = Path(train.root_dir)
    subset = root / "dataset_json" / f"{train.train_json}.json" if train.train_json else None
    material = {"model": dataclasses.asdict(model), "loss": dataclasses.asdict(loss), "train": t,
                "manifest": _file_digest(root / "manifest.csv"),
                "subset": _file_digest(subset) if subset else None}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:12]


def plan_runs(arms: Sequence[Arm], profile: StudyProfile, root: str | Path, tests: Sequence[str] = ("org",),
              seeds: Sequence[int] | None = None, runs_dir: str | Path = RUNS_DIR) -> list[PlannedRun]:
    """One PlannedRun per (arm, seed); seeds default to ``profile.seeds_for(arm.n_utts)``."""
    out = []
    for arm in arms:
        for seed in (seeds if seeds is not None else profile.seeds_for(arm.n_utts)):
            m, lo, t = arm_configs(arm, seed, profile, root, runs_dir)
            key = run_key(m, lo, t)
            out.append(PlannedRun(arm, seed, key, (m, lo, dataclasses.replace(t, name=key)), tuple(tests)))
    return out


# ----------------------------------------------------------------------------- one run (in a worker)
def _tests_cover(done: dict, tests: Sequence[str]) -> bool:
    have = set(done.get("tests", []))
    return all(t in have or "all" in have for t in tests)


def read_done(run_dir: Path) -> dict | None:
    p = Path(run_dir) / "done.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def execute_run(model: ModelConfig, loss: LossConfig, train_cfg: TrainConfig, tests: Sequence[str]) -> dict:
    """Train (or resume) one run, test it on test_a for ``tests``, write done.json.

    Returns {"key", "status": "done"|"failed", "wall_s", "error"}; never raises,
    so one bad run cannot stop the others.
    """
    t0 = time.perf_counter()
    run_dir = Path(train_cfg.output_path) / train_cfg.name
    try:
        from ..train import best_summary, test, train

        train(train_cfg, model, loss)
        done = read_done(run_dir) or {"tests": [], "train_wall_s": round(time.perf_counter() - t0, 2)}
        for speakers in tests:
            if not _tests_cover(done, [speakers]):
                df = test(train_cfg, TEST_SPLIT, [speakers], "best", progress=False)
                if df.attrs.get("bad_files"):
                    raise RuntimeError(f"test {speakers}: bad files {df.attrs['bad_files'][:3]}")
                done["tests"] = sorted(set(done["tests"]) | {speakers})
        done.update(best_summary(run_dir))
        done["wall_s"] = round(done.get("wall_s", 0.0) + time.perf_counter() - t0, 2)
        atomic_write_text(run_dir / "done.json", json.dumps(done, indent=1) + "\n")  # last: marks the run finished
        return {"key": train_cfg.name, "status": "done", "wall_s": done["wall_s"], "error": ""}
    except Exception as e:  # reported by run, the study goes on
        tb = traceback.format_exc()
        try:
            atomic_write_text(run_dir / "error.txt", tb)
        except OSError:
            pass
        return {"key": train_cfg.name, "status": "failed", "wall_s": round(time.perf_counter() - t0, 2),
                "error": f"{type(e).__name__}: {e}\n{tb}"}


@contextmanager
def _single_threaded_children():
    """Spawned workers inherit these: one OpenMP / numba thread each (2 workers on 2 cores)."""
    names = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in names}
    os.environ.update({k: "1" for k in names})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_all(planned: Sequence[PlannedRun], workers: int = 2, progress: bool = True,
                on_done=None) -> list[dict]:
    """Run the unfinished runs of ``planned`` (each key once), ``workers`` at a time.

    ``on_done(result)`` is called in this process after each run (the study
    rewrites its tidy CSVs there). Returns one result per distinct key, cached
    runs included (status "cached").
    """
    from tqdm.auto import tqdm

    todo, results = {}, []
    for p in planned:
        if p.key in todo or any(r["key"] == p.key for r in results):
            continue
        done = read_done(p.run_dir)
        if done is not None and _tests_cover(done, p.tests):
            results.append({"key": p.key, "status": "cached", "wall_s": done.get("wall_s", 0.0), "error": ""})
        else:
            todo[p.key] = p
    bar = tqdm(total=len(todo), desc=f"runs ({len(results)} cached)", disable=not progress or not todo)
    jobs = [(*p.configs, p.tests) for p in todo.values()]
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            res = execute_run(*job)
            results.append(res)
            bar.update()
            on_done and on_done(res)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from multiprocessing import get_context

        # spawn, not fork: the parent holds torch's thread pools, and a forked copy of them can hang.
        with _single_threaded_children(), ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(execute_run, *job): job[2].name for job in jobs}
            for fut in as_completed(futures):
                try:
                    res = fut.result()
                except Exception as e:  # a worker died (killed, out of memory): that run failed
                    res = {"key": futures[fut], "status": "failed", "wall_s": 0.0,
                           "error": f"worker process failed: {type(e).__name__}: {e}"}
                results.append(res)
                bar.update()
                on_done and on_done(res)
    bar.close()
    return results


# ----------------------------------------------------------------------------- tidy tables
def run_metrics(p: PlannedRun) -> pd.DataFrame:
    """Mean over test utterances per (split, speaker, reference, metric) of one run, labelled."""
    path = p.run_dir / "metrics.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
    df = pd.read_csv(path, keep_default_na=False, na_values=["nan", "NaN"])
    df = df[df["split"] == TEST_SPLIT]
    if "all" not in p.tests:
        df = df[df["speaker"].isin(p.tests)]
    g = df.groupby(["split", "speaker", "reference", "metric"], sort=True)["value"].mean().reset_index()
    g.insert(0, "seed", p.seed)
    g.insert(0, "arm", p.arm.label)
    g.insert(0, "run_id", p.key)
    return g[list(METRIC_COLUMNS)]


def run_curves(p: PlannedRun) -> pd.DataFrame:
    path = p.run_dir / "curves.csv"
    if not path.is_file():
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    df = pd.read_csv(path)
    df.insert(0, "seed", p.seed)
    df.insert(0, "arm", p.arm.label)
    df.insert(0, "run_id", p.key)
    return df[list(CURVE_COLUMNS)]


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_text(path, df.to_csv(index=False))


def write_study_tables(out_dir: Path, planned: Sequence[PlannedRun], results: Sequence[dict] = ()) -> dict[str, Path]:
    """Rewrite the study's metrics.csv, curves.csv, arms.csv and runs.csv from its finished runs (atomic)."""
    status = {r["key"]: r for r in results}
    finished = [p for p in planned if read_done(p.run_dir) is not None]
    metrics = [run_metrics(p) for p in finished]
    curves = [run_curves(p) for p in finished]
    paths = {"metrics": out_dir / "metrics.csv", "curves": out_dir / "curves.csv", "arms": out_dir / "arms.csv",
             "runs": out_dir / "runs.csv"}
    _write_csv(paths["metrics"], pd.concat(metrics, ignore_index=True) if metrics else
               pd.DataFrame(columns=list(METRIC_COLUMNS)))
    _write_csv(paths["curves"], pd.concat(curves, ignore_index=True) if curves else
               pd.DataFrame(columns=list(CURVE_COLUMNS)))
    arms = {p.arm.label: p.arm.row() for p in planned}
    _write_csv(paths["arms"], pd.DataFrame(list(arms.values())))
    rows = []
    for p in planned:
        done = read_done(p.run_dir) or {}
        r = status.get(p.key, {})
        rows.append({"run_id": p.key, "arm": p.arm.label, "seed": p.seed,
                     "status": r.get("status", "done" if done else "pending"),
                     "wall_s": done.get("wall_s", r.get("wall_s")), "steps": done.get("steps"),
                     "best_step": done.get("best_step"), "best_val_loss": done.get("best_val_loss"),
                     "run_dir": _rel(str(p.run_dir))})
    _write_csv(paths["runs"], pd.DataFrame(rows))
    return paths
