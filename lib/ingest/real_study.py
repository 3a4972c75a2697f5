"""Notebook 10: the paper's experiment on real speech (GRID s1 through the ingest commands).

One table of sizes (:data:`REAL_VIDEO_PROFILES`) so the notebook's only switch is
``profile``; :func:`prepare_real_corpus` runs import-videos, augment and feature
extraction (all resumable); :func:`real_video_arms` gives the few-shot arms of
one feature; :func:`sim_to_real` sets the real-data curve beside the built-in
corpus's (notebook 06) to see whether the synthetic conclusions carry over.

The org labels are MediaPipe estimates from video, not capture: scores measure
agreement with those estimates.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import paths

GRID_DIR = paths.REPO_ROOT.parent / "shared" / "grid_s1"
REAL_ROOT = paths.DATA_DIR / "grid_s1"  # the imported corpus (git-ignored)


@dataclass(frozen=True)
class RealVideoProfile:
    """Sizes of notebook 10. ``sizes``: org training utterances (None = the whole pool);
    ``study_profile``: the run budget of :mod:`lib.studies.profiles`."""

    name: str
    max_clips: int | None
    voices: tuple[str, ...]
    held_out_voices: tuple[str, ...]
    sizes: tuple[int | None, ...]
    features: tuple[str, ...]
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    study_profile: str
    ppg_profile: str  # PPG training steps: lib.features.ppg.STEPS_BY_PROFILE[ppg_profile]


# The quick profile of the built-in corpus's voices (festival x2, flite x2, espeak x2) and
# its held-out voice: six voices keep augment + extraction of 600 clips within ~15 min on 2 cores.
_VOICES_6 = ("festival:cmu_us_slt_arctic_hts", "festival:kal_diphone", "flite:awb", "flite:slt", "espeak:en-us",
             "espeak:en-gb+m3@1.15")
_ARMS = ("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid")

REAL_VIDEO_PROFILES: dict[str, RealVideoProfile] = {
    # Smoke run: 12 clips, one voice, seconds per run.
    "tiny": RealVideoProfile("tiny", 12, ("flite:slt",), ("flite:kal16",), (5, None), ("mfcc",),
                             ("org_l2", "tts_hybrid"), (0,), "tiny", "tiny"),
    # Every step on a fifth of the clips, two voices, MFCC: minutes, so `make reproduce`
    # (profile quick) stays short; the reported study is `default`.
    "quick": RealVideoProfile("quick", 120, ("flite:slt", "espeak:en-us"), ("festival:ked_diphone",), (5, None),
                              ("mfcc",), _ARMS, (0,), "quick", "quick"),
    "default": RealVideoProfile("default", None, _VOICES_6, ("festival:ked_diphone",), (5, 20, 100, None),
                                ("mfcc", "ppg"), _ARMS, (0, 1, 2), "default", "quick"),
    # Every run_all profile has a notebook-10 size: full and paper with 5 seeds at their budgets.
    "full": RealVideoProfile("full", None, _VOICES_6, ("festival:ked_diphone",), (5, 20, 100, None),
                             ("mfcc", "ppg"), _ARMS, (0, 1, 2, 3, 4), "full", "quick"),
    "paper": RealVideoProfile("paper", None, _VOICES_6, ("festival:ked_diphone",), (5, 20, 100, None),
                              ("mfcc", "ppg"), _ARMS, (0, 1, 2, 3, 4), "paper", "quick"),
}


def real_video_profile(name: str) -> RealVideoProfile:
    if name not in REAL_VIDEO_PROFILES:
        raise ValueError(f"unknown profile {name!r}; known: {sorted(REAL_VIDEO_PROFILES)}")
    return REAL_VIDEO_PROFILES[name]


def missing_inputs(videos_dir: Path) -> str | None:
    """Why the real-video study cannot run here (None when it can)."""
    import importlib.util
    import shutil

    from .video import find_model

    if not videos_dir.is_dir():
        return f"{videos_dir} is not present"
    if importlib.util.find_spec("mediapipe") is None or importlib.util.find_spec("cv2") is None:
        return "mediapipe is not installed (pip install mediapipe==0.10.21)"
    if shutil.which("ffmpeg") is None:
        return "the ffmpeg program is not installed"
    try:
        find_model()
    except FileNotFoundError as e:
        return str(e)
    return None


def prepare_real_corpus(prof: RealVideoProfile, root: str | Path | None = None, videos_dir: str | Path | None = None,
                        transcripts: str | Path | None = None, workers: int = 2, progress: bool = True) -> dict | None:
    """import-videos -> augment -> MFCC (+ PPG, trained on the corpus's own TTS clips).

    Every step skips finished files, so a rerun costs seconds. Bad clips do not
    stop the study: they are returned (``failures``) for the notebook to show.
    Returns {root, steps: {step: wall_s}, counts, failures, ppg (metrics or None)},
    or None (saying why) when the videos, mediapipe, ffmpeg or the model are absent.
    """
    from ..features.extract import extract_corpus
    from .augment import AugmentConfig, augment
    from .import_videos import ImportConfig, import_videos

    why = missing_inputs(Path(videos_dir or GRID_DIR / "video"))
    if why:
        print(f"real-video study skipped: {why}")
        return None
    root = Path(root) if root else (REAL_ROOT if prof.max_clips is None else REAL_ROOT.with_name(
        f"grid_s1_{prof.name}"))
    videos_dir = Path(videos_dir or GRID_DIR / "video")
    transcripts = Path(transcripts or GRID_DIR / "align")
    steps, failures = {}, []
    t = time.perf_counter()
    imp = import_videos(ImportConfig(videos_dir=str(videos_dir.resolve()), transcripts=str(transcripts.resolve()),
                                     max_clips=prof.max_clips), root, workers=workers, progress=progress)
    failures += [("import-videos", u, m) for u, m in imp["failures"]]
    steps["import-videos"] = time.perf_counter() - t
    t = time.perf_counter()
    aug = augment(root, AugmentConfig(voices=prof.voices, held_out_voices=prof.held_out_voices, workers=workers),
                  strict=False, progress=progress)
    failures += [("augment", c, m) for c, m in aug["failures"]]
    steps["augment"] = time.perf_counter() - t
    ppg = None
    for feature in prof.features:
        t = time.perf_counter()
        checkpoint = None
        if feature == "ppg":
            from ..features.ppg import ensure_ppg

            # Trained on this corpus's own training TTS voices (their phone timings), so the
            # study needs nothing but the videos; tested on the held-out voice.
            checkpoint, ppg = ensure_ppg(root, prof.ppg_profile, out_dir=paths.PRETRAINED_DIR / f"ppg_{root.name}")
        rep = extract_corpus(root, feature, checkpoint=checkpoint, workers=workers, progress=progress)
        failures += [(f"extract {feature}", str(p), "") for p in rep.failed]
        steps[f"extract {feature}"] = time.perf_counter() - t
    return {"root": root, "steps": {k: round(v, 1) for k, v in steps.items()}, "counts": imp["counts"],
            "voices": aug["voices"], "held_out_voices": aug["held_out_voices"], "failures": failures, "ppg": ppg}


def real_video_arms(prof: RealVideoProfile, feature: str):
    """The few-shot arms of one feature: base arm x org size, labelled ``<base>@<size>``."""
    from ..studies import make_arm

    return [make_arm(a, label=f"{a}@{'all' if n is None else n}", n_utts=n, feature=feature)
            for n in prof.sizes for a in prof.arms]


def study_budget(prof: RealVideoProfile):
    """The run budget (steps, model size) of ``prof.study_profile`` with ``prof.seeds`` everywhere."""
    from ..studies import study_profile

    return study_profile(prof.study_profile, seeds=prof.seeds, few_shot_seeds=prof.seeds)


def run_real_studies(prof: RealVideoProfile, prep: dict | None, workers: int | None = None) -> dict | None:
    """One study per feature (``10_real_video_<feature>``) on the prepared corpus:
    {feature: StudyResult}; None when ``prep`` is None (inputs absent)."""
    from ..studies import run_study

    if prep is None:
        return None
    return {f: run_study(f"10_real_video_{f}", real_video_arms(prof, f), study_budget(prof), prep["root"],
                         workers=workers) for f in prof.features}


def sim_to_real(real_summary: pd.DataFrame, synthetic_summary: str | Path,
                metric: str = "mse_score") -> pd.DataFrame | None:
    """The few-shot arms on the built-in corpus (notebook 06's summary.csv) beside the
    same arms on real video, at the sizes both have ("all" = each corpus's whole pool).

    Columns: size, arm, synthetic, real (means over seeds), their std, and each arm's
    improvement over org_l2 at that size (positive = better than org only).
    """
    from ..studies.stats import relative_improvement

    path = Path(synthetic_summary)
    if not path.is_file():
        print(f"sim-to-real skipped: {path} has no synthetic few-shot results (run notebook 06)")
        return None
    rows = []
    syn = pd.read_csv(path)
    for name, df in (("synthetic", syn), ("real", real_summary)):
        d = df[df["metric"] == metric].copy()
        d[["arm_base", "size"]] = d["arm"].str.split("@", n=1, expand=True)
        d["corpus"] = name
        rows.append(d)
    both = pd.concat(rows, ignore_index=True)
    wide = both.pivot_table(index=["size", "arm_base"], columns="corpus", values=["mean", "std"])
    wide.columns = [f"{c}_{s}" if s != "mean" else c for s, c in wide.columns]
    wide = wide.dropna(subset=["synthetic", "real"]).reset_index()
    for name in ("synthetic", "real"):
        base = wide[wide["arm_base"] == "org_l2"].set_index("size")[name]
        wide[f"{name}_vs_org_l2"] = [relative_improvement(base.get(s, float("nan")), v, metric)
                                     for s, v in zip(wide["size"], wide[name])]
    return wide.rename(columns={"arm_base": "arm"})
