"""Run folders, configs, checkpoints, RNG state and curves of a training run.

A run folder ``<output_path>/<name>/`` holds:

    config.json        {"model": ModelConfig, "loss": LossConfig, "train": TrainConfig}, written first
    curves.csv         tidy rows (step, epoch, split, metric, value)
    last.pt            everything needed to resume (model, optimizer, scheduler, RNG, sampler position, curves)
    best.pt            model weights of the best validation score so far
    checkpoints/       model weights at every evaluation (epoch_NNN.pt or step_NNNNNNN.pt)

Every file is written atomically (temporary file + rename), so a process
killed at any instant leaves either the old or the new version, never a torn one.
"""
from __future__ import annotations

import dataclasses
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import LossConfig, ModelConfig, TrainConfig, config_from_dict
from ..io import DataError, atomic_write_bytes, atomic_write_text

CURVE_COLUMNS = ("step", "epoch", "split", "metric", "value")
# Fields that may differ between a run and its resumption (or a moved run folder) without changing results.
RESUME_FREE_FIELDS = ("progress", "device", "name", "output_path")  # where, not what


def run_dir_of(cfg: TrainConfig) -> Path:
    return Path(cfg.output_path) / cfg.name


def configs_to_dict(model_cfg: ModelConfig, loss_cfg: LossConfig, train_cfg: TrainConfig) -> dict:
    return {"model": dataclasses.asdict(model_cfg), "loss": dataclasses.asdict(loss_cfg),
            "train": dataclasses.asdict(train_cfg)}


def configs_from_dict(raw: dict, source: str = "<dict>") -> tuple[ModelConfig, LossConfig, TrainConfig]:
    return (config_from_dict(ModelConfig, raw["model"], source), config_from_dict(LossConfig, raw["loss"], source),
            config_from_dict(TrainConfig, raw["train"], source))


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))  # tuples -> lists, as they come back from disk


def write_or_check_config(run_dir: Path, model_cfg: ModelConfig, loss_cfg: LossConfig,
                          train_cfg: TrainConfig) -> None:
    """Write config.json, or check that an existing one describes the same run.

    A rerun of the same command resumes; a different command pointed at the same
    run folder must not silently continue someone else's run.
    """
    path = run_dir / "config.json"
    new = _jsonable(configs_to_dict(model_cfg, loss_cfg, train_cfg))
    if path.is_file():
        old = json.loads(path.read_text())
        # A config.json from before a field existed has that field at its "as before" value.
        from ..config import KEY_NEUTRAL_DEFAULTS

        old["train"] = {**KEY_NEUTRAL_DEFAULTS, **old.get("train", {})}
        strip = lambda d: {**d, "train": {k: v for k, v in d["train"].items() if k not in RESUME_FREE_FIELDS}}
        if strip(old) != strip(new):
            diff = sorted(f"{sec}.{k}" for sec in new for k in set(new[sec]) | set(old.get(sec, {}))
                          if new[sec].get(k) != old.get(sec, {}).get(k) and k not in RESUME_FREE_FIELDS)
            raise DataError(path, f"run folder holds a different run (fields differ: {diff}); "
                                  f"choose another --name or delete the folder")
        return
    atomic_write_text(path, json.dumps(new, indent=2, sort_keys=True) + "\n")


def read_run_config(run_dir: str | Path) -> tuple[ModelConfig, LossConfig, TrainConfig]:
    path = Path(run_dir) / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(path, f"no readable run config ({e})") from None
    return configs_from_dict(raw, str(path))


# ----------------------------------------------------------------------------- determinism
def seed_everything(seed: int, deterministic: bool = True, threads: int | None = None) -> None:
    """Seed python, numpy and torch; make torch pick deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    # warn_only: a GPU op without a deterministic version should warn, not stop a run.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, obj: dict) -> None:
    """torch.save to a buffer, then an atomic write: a kill never leaves a torn file."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    try:
        # Our own checkpoints hold RNG states (numpy arrays, tuples): not weights-only.
        return torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise DataError(path, "no such checkpoint") from None
    except Exception as e:
        raise DataError(path, f"unreadable checkpoint ({type(e).__name__}: {e})") from None


def eval_checkpoint_name(epoch: int, step: int, by_steps: bool) -> str:
    return f"step_{step:07d}.pt" if by_steps else f"epoch_{epoch:03d}.pt"


def find_checkpoint(run_dir: Path, which: str | int = "best") -> Path:
    """'best', 'last', an epoch number (epoch_NNN.pt), 'step_N', or a path."""
    which = str(which)
    if which in ("best", "last"):
        return run_dir / f"{which}.pt"
    if which.isdigit():
        return run_dir / "checkpoints" / f"epoch_{int(which):03d}.pt"
    if which.startswith("step_") and which[5:].isdigit():
        return run_dir / "checkpoints" / f"step_{int(which[5:]):07d}.pt"
    return Path(which)


# ----------------------------------------------------------------------------- curves
def write_curves(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite curves.csv whole (atomic); rows are (step, epoch, split, metric, value) dicts."""
    lines = [",".join(CURVE_COLUMNS)]
    lines += [f"{r['step']},{r['epoch']},{r['split']},{r['metric']},{r['value']!r}" for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
