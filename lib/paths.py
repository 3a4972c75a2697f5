"""Where things live in the repository, independent of the working directory
(papermill runs notebooks with notebooks/ as cwd; scripts run from the root)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
# Results go to results/ unless T2A_RESULTS_DIR names another folder (set by
# ``run_all.py --results-dir``; the tests use it so they never touch results/).
RESULTS_ENV = "T2A_RESULTS_DIR"
RESULTS_DIR = Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "results").resolve()
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PRETRAINED_DIR = DATA_DIR / "pretrained"
# Real sample data in the original layout, shipped beside the project (never copied in).
SHARED_DEMO_DIR = REPO_ROOT.parent / "shared" / "t2a_demo"

PROFILES = ("tiny", "quick", "default", "paper")


def corpus_root(profile: str) -> Path:
    """Root of the built-in corpus of a profile: data/corpus/<profile>/."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {PROFILES}")
    return DATA_DIR / "corpus" / profile


def results_dir(study: str) -> Path:
    """results/<study>/, created on demand."""
    d = RESULTS_DIR / study
    d.mkdir(parents=True, exist_ok=True)
    return d


def resolve_root(root_dir: str | None, profile: str, prefer_demo: bool = False) -> Path:
    """The corpus a notebook works on: ``root_dir`` when given (relative paths are
    taken from the repository root); else the shared demo data when
    ``prefer_demo`` and it is present; else the built-in corpus of ``profile``."""
    if root_dir:
        p = Path(root_dir)
        return p if p.is_absolute() else REPO_ROOT / p
    if prefer_demo and SHARED_DEMO_DIR.is_dir():
        return SHARED_DEMO_DIR
    return corpus_root(profile)
