"""A study's runs: plan its arms x seeds, run one, tabulate them all (cached, resumable).

Every run lives in ``results/runs/<key>/`` where ``key`` hashes its full
configs (model, loss, train, minus where-not-what fields) and the identity of
its data (the corpus manifest and the training subset). Two studies that ask
for the same experiment share one run; a rerun of a killed study skips every
run with a ``done.json`` and resumes the others from their ``last.pt``
(lib.train). A run writes, in order: ``config.json`` (lib.train, first),
checkpoints and ``curves.csv``, the test predictions and ``metrics.csv``
(lib.train.test), then ``done.json`` (wall time, tests done).

Runs are executed by :mod:`lib.studies.executors`: local spawned worker
processes (default) or one submitit job per run (SLURM, or submitit's local
executor), each with one torch thread and one numba thread per CPU run, the
same arithmetic as a serial run with one thread: results are identical
(tested). A run that raises, or whose worker or job dies, is listed with its
log and the study finishes the others, then raises :class:`StudyError`
naming the failures.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import traceback
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
    from ..config import KEY_NEUTRAL_DEFAULTS  # fields added later, at their "as before" value: no key change

    t = {k: v for k, v in dataclasses.asdict(train).items() if k not in KEY_FREE_FIELDS
         and not (k in KEY_NEUTRAL_DEFAULTS and v == KEY_NEUTRAL_DEFAULTS[k])}
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
def tests_cover(done: dict, tests: Sequence[str]) -> bool:
    """True when a done.json covers the test speakers ``tests`` ("all" covers every one)."""
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

    Returns {"key", "status": "done"|"failed", "wall_s", "error", "log"}; never raises,
    so one bad run cannot stop the others.
    """
    t0 = time.perf_counter()
    run_dir = Path(train_cfg.output_path) / train_cfg.name
    try:
        from ..train import best_summary, test, train

        train(train_cfg, model, loss)
        done = read_done(run_dir) or {"tests": [], "train_wall_s": round(time.perf_counter() - t0, 2)}
        for speakers in tests:
            if not tests_cover(done, [speakers]):
                df = test(train_cfg, TEST_SPLIT, [speakers], "best", progress=False)
                if df.attrs.get("bad_files"):
                    raise RuntimeError(f"test {speakers}: bad files {df.attrs['bad_files'][:3]}")
                done["tests"] = sorted(set(done["tests"]) | {speakers})
        done.update(best_summary(run_dir))
        done["wall_s"] = round(done.get("wall_s", 0.0) + time.perf_counter() - t0, 2)
        atomic_write_text(run_dir / "done.json", json.dumps(done, indent=1) + "\n")  # last: marks the run finished
        return {"key": train_cfg.name, "status": "done", "wall_s": done["wall_s"], "error": "", "log": ""}
    except Exception as e:  # reported by run, the study goes on
        tb = traceback.format_exc()
        try:
            atomic_write_text(run_dir / "error.txt", tb)
        except OSError:
            pass
        return {"key": train_cfg.name, "status": "failed", "wall_s": round(time.perf_counter() - t0, 2),
                "error": f"{type(e).__name__}: {e}\n{tb}", "log": str(run_dir / "error.txt")}


def execute_all(planned: Sequence[PlannedRun], workers: int = 2, progress: bool = True, on_done=None,
                executor: str | None = None, options=None, name: str = "study") -> list[dict]:
    """Run the unfinished runs of ``planned``: see :func:`lib.studies.executors.execute_all`."""
    from .executors import execute_all as _execute_all

    return _execute_all(planned, workers, progress, on_done, executor, options, name)


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


def convergence(done: dict, train_cfg: TrainConfig) -> dict:
    """steps_run, max_steps and stopped_early of a run: did early stopping end it
    (converged on validation), or the step cap (a truncated run)?"""
    steps = done.get("steps")
    cap = train_cfg.max_steps
    stopped = None if steps is None or cap is None else bool(steps < cap)
    return {"steps_run": steps, "max_steps": cap, "stopped_early": stopped}


def recorded_runs(out_dir: Path) -> set[str]:
    """Keys of the runs a study's runs.csv already records as done.

    The tables are results (committed for the reference profiles), the run cache
    (results/runs/) is not: a run in the tables but not in the cache, on a new
    machine, is taken from the tables instead of being trained again.
    """
    path = Path(out_dir) / "runs.csv"
    if not path.is_file():
        return set()
    runs = pd.read_csv(path, dtype={"run_id": str})
    return set(runs.loc[runs["status"].isin(["done", "cached"]), "run_id"])  # cached: done in an earlier call


def _old_rows(out_dir: Path, name: str, keys: set[str], columns: Sequence[str]) -> pd.DataFrame:
    path = out_dir / f"{name}.csv"
    if not keys or not path.is_file():
        return pd.DataFrame(columns=list(columns))
    old = pd.read_csv(path, dtype={"run_id": str}, keep_default_na=False, na_values=["nan", "NaN", ""],
                      float_precision="round_trip")
    return old[old["run_id"].isin(keys)]


def write_study_tables(out_dir: Path, planned: Sequence[PlannedRun], results: Sequence[dict] = ()) -> dict[str, Path]:
    """Rewrite the study's metrics.csv, curves.csv, arms.csv and runs.csv from its finished runs (atomic).

    A planned run with no done.json here but recorded as done in the existing
    tables (:func:`recorded_runs`) keeps its rows from them.
    """
    status = {r["key"]: r for r in results}
    finished = [p for p in planned if read_done(p.run_dir) is not None]
    kept = recorded_runs(out_dir) & ({p.key for p in planned} - {p.key for p in finished})
    metrics = [run_metrics(p) for p in finished] + [_old_rows(out_dir, "metrics", kept, METRIC_COLUMNS)]
    curves = [run_curves(p) for p in finished] + [_old_rows(out_dir, "curves", kept, CURVE_COLUMNS)]
    old_runs = _old_rows(out_dir, "runs", kept, ["run_id"]).set_index("run_id")
    paths = {"metrics": out_dir / "metrics.csv", "curves": out_dir / "curves.csv", "arms": out_dir / "arms.csv",
             "runs": out_dir / "runs.csv"}
    _write_csv(paths["metrics"], pd.concat([m for m in metrics if len(m)], ignore_index=True)
               if any(len(m) for m in metrics) else pd.DataFrame(columns=list(METRIC_COLUMNS)))
    _write_csv(paths["curves"], pd.concat([c for c in curves if len(c)], ignore_index=True)
               if any(len(c) for c in curves) else pd.DataFrame(columns=list(CURVE_COLUMNS)))
    arms = {p.arm.label: p.arm.row() for p in planned}
    _write_csv(paths["arms"], pd.DataFrame(list(arms.values())))
    rows = []
    for p in planned:
        if p.key in old_runs.index:  # from the recorded tables
            rows.append({"run_id": p.key, **old_runs.loc[p.key].to_dict()})
            continue
        done = read_done(p.run_dir) or {}
        r = status.get(p.key, {})
        rows.append({"run_id": p.key, "arm": p.arm.label, "seed": p.seed,
                     "status": r.get("status", "done" if done else "pending"),
                     "wall_s": done.get("wall_s", r.get("wall_s")), "steps": done.get("steps"),
                     "best_step": done.get("best_step"), "best_val_loss": done.get("best_val_loss"),
                     **convergence(done, p.configs[2]),
                     "run_dir": _rel(str(p.run_dir)), "log": r.get("log", "")})
    _write_csv(paths["runs"], pd.DataFrame(rows))
    return paths
