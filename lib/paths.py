"""Where things live in the repository, independent of the working directory
(papermill runs notebooks with notebooks/ as cwd; scripts run from the root)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
# Results go under results/ unless T2A_RESULTS_DIR names another folder (set by
# ``run_all.py --results-dir``; the tests use it so they never touch results/).
# Each profile has its own folder below it, results/<profile>/<study>/: only the
# reference profile's is committed, so running another profile never rewrites
# tracked files. The run cache results/runs/ is shared (runs are keyed by config).
RESULTS_ENV = "T2A_RESULTS_DIR"
RESULTS_DIR = Path(os.environ.get(RESULTS_ENV) or REPO_ROOT / "results").resolve()
REFERENCE_PROFILE = "default"  # the committed tables and the README's results block
TRACKED_PROFILES = ("default", "full")  # results/<profile>/ committed (full: resumable across machines)
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PRETRAINED_DIR = DATA_DIR / "pretrained"
# Real sample data in the original layout, shipped beside the project (never copied in).
SHARED_DEMO_DIR = REPO_ROOT.parent / "shared" / "t2a_demo"

PROFILES = ("tiny", "quick", "default", "full", "paper")
# Profiles that only change the studies and share another profile's corpus (and its
# features and PPG model): ``full`` runs every arm, converged, on the default corpus.
CORPUS_PROFILE = {"full": "default"}


def corpus_profile(profile: str) -> str:
    """The corpus profile a (study) profile reads: itself, or the one it shares."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {PROFILES}")
    return CORPUS_PROFILE.get(profile, profile)


def corpus_root(profile: str) -> Path:
    """Root of the built-in corpus of a profile: data/corpus/<corpus profile>/."""
    return DATA_DIR / "corpus" / corpus_profile(profile)


def profile_results_dir(profile: str) -> Path:
    """results/<profile>/: everything the notebooks of one profile write."""
    if not profile or "/" in profile or profile.startswith("."):
        raise ValueError(f"bad profile name {profile!r}")
    return RESULTS_DIR / profile


def results_dir(study: str, profile: str) -> Path:
    """results/<profile>/<study>/, created on demand."""
    d = profile_results_dir(profile) / study
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


BENCH_DIR = REPO_ROOT / "benchmarks" / "results"


def benchmark_csv(name: str, record: bool = False) -> Path:
    """Where a benchmark writes its CSV: benchmarks/results/local/<name>.csv (git-ignored),
    or, with ``record`` (the benchmarks' ``--record`` flag), the committed
    benchmarks/results/<name>.csv that the README quotes."""
    return (BENCH_DIR if record else BENCH_DIR / "local") / f"{name}.csv"
