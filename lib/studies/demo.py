"""Notebook 09: the pipeline on the real sample in the original layout (../shared/t2a_demo).

The sample is never copied into the repository and never written to: a work
root under the git-ignored ``data/`` links to its ``wavs/`` and
``dataset_json/``, and the features go into the work root's own
``wav_features/``. With one training utterance (org ``a8`` and its 13 TTS
clips), one validation and one test utterance, it shows that the pipeline runs
on real data, nothing more.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..paths import DATA_DIR, SHARED_DEMO_DIR

WORK_DIR = DATA_DIR / "t2a_demo_work"
LINKED = ("wavs", "dataset_json")


def demo_available(source: str | Path = SHARED_DEMO_DIR) -> tuple[bool, str]:
    """(present, message): whether the real sample can be used, and why not."""
    source = Path(source)
    if not (source / "wavs" / "org").is_dir():
        return False, (f"SKIPPED: the real sample is not at {source} (it ships beside the project, never in it); "
                       "this notebook then only says so.")
    return True, f"real sample found at {source}"


def prepare_demo(source: str | Path = SHARED_DEMO_DIR, work_dir: str | Path = WORK_DIR,
                 feature: str = "mfcc", workers: int = 2) -> Path:
    """Link the sample into ``work_dir`` and extract ``feature`` there; returns the work root."""
    from ..features.extract import extract_corpus
    from ..io import DataError

    source, work_dir = Path(source).resolve(), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = work_dir / name
        if not link.is_symlink():
            if link.exists():
                raise DataError(link, "expected a link to the shared sample, found a real folder")
            os.symlink(source / name, link)
    report = extract_corpus(work_dir, feature, workers=workers, progress=False)
    if report.failed:
        raise DataError(work_dir, report.summary())
    return work_dir


def run_demo(profile, feature: str = "mfcc"):
    """Notebook 09 in one call: prepare the sample, train and test one run (``profile.demo_max_steps``
    steps, first seed), draw its curves, a prediction and a face strip into results/<profile>/09_real_sample/.

    Returns the StudyResult, or None (after printing why) when the sample is absent.
    """
    import dataclasses

    from ..plots import plot_prediction, plot_training_curves
    from ..render import show_player_or_strip
    from .arms import make_arm
    from .study import run_study
    from .views import test_prediction

    available, message = demo_available()
    print(message)
    if not available:
        return None
    root = prepare_demo(feature=feature, workers=profile.workers)
    prof = dataclasses.replace(profile, max_steps=profile.demo_max_steps)
    res = run_study("09_real_sample", [make_arm("tts_hybrid", feature=feature)], prof, root, seeds=prof.seeds[:1])
    plot_training_curves(res.curves, out_path=res.out_dir / "curves.png")
    ex = test_prediction(res.run_dir("tts_hybrid"))
    plot_prediction(ex["gt"], ex["pred"], ex["channels"], face_fps=ex["face_fps"],
                    title=f"real sample: org/test_a/{ex['utt']}",
                    out_path=res.out_dir / "prediction.png")
    show_player_or_strip({"ground truth": ex["gt"], "prediction": ex["pred"]}, res.out_dir / "strip.png",
                         wav=ex["wav"], channels=ex["channels"], face_fps=ex["face_fps"])
    return res
