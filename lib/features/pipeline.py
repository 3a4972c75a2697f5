"""What notebook 02 does, as library calls: every feature of a corpus, one table."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import FEATURE_RATES_HZ
from ..paths import REPO_ROOT
from .extract import extract_corpus, find_wavs, load_features


def prepare_features(root: str | Path, profile: str, features: Sequence[str],
                     hubert_checkpoint: str | Path | None = None, workers: int = 2):
    """Extract ``features`` over the corpus at ``root``; returns a summary DataFrame.

    ``ppg`` first trains (or reuses) the profile's PPG model (:func:`lib.features.ppg.ensure_ppg`);
    ``hubert`` runs only when ``hubert_checkpoint`` exists, otherwise its row says why not.
    Raises at the end, naming the files, if any wav failed (the good ones are all written).
    """
    import pandas as pd

    rows, failed = [], []
    for feature in features:
        checkpoint, note = None, ""
        if feature == "ppg":
            from .ppg import ensure_ppg

            checkpoint, metrics = ensure_ppg(root, profile)
            note = (f"PPG frame accuracy: {metrics['heldout_frame_accuracy']:.3f} on held-out voices "
                    f"{metrics['eval_speakers']}, {metrics['train_frame_accuracy']:.3f} on training clips")
        elif feature == "hubert":
            ckpt = Path(hubert_checkpoint) if hubert_checkpoint else None
            ckpt = ckpt if ckpt is None or ckpt.is_absolute() else REPO_ROOT / ckpt
            if ckpt is None or not ckpt.exists():
                rows.append(dict(feature=feature, written=0, up_to_date=0, failed=0, seconds=0.0,
                                 note=f"skipped: no checkpoint at {ckpt} (see README, 'HuBERT checkpoint')"))
                continue
            checkpoint = ckpt
        report = extract_corpus(root, feature, checkpoint=checkpoint, workers=workers)
        failed += report.failed
        rows.append(dict(feature=feature, written=report.written, up_to_date=report.skipped,
                         failed=len(report.failed), seconds=round(report.seconds, 1), note=note))
    table = pd.DataFrame(rows)
    if failed:
        listing = "\n".join(f"  {path}: {why}" for path, why in failed)
        raise RuntimeError(f"{len(failed)} wav(s) failed feature extraction (the others are written):\n{listing}")
    return table


def plot_feature_matrices(root: str | Path, features: Sequence[str], out_path: str | Path):
    """One panel per feature of the corpus's first wav (each dimension standardised)."""
    import matplotlib.pyplot as plt

    speaker, split, wav = find_wavs(root)[0]
    present = [f for f in features if (Path(root) / "wav_features" / speaker / f / split / f"{wav.stem}.npy").exists()]
    fig, axes = plt.subplots(len(present), 1, figsize=(10, 2.6 * len(present)), squeeze=False)
    for ax, feature in zip(axes[:, 0], present):
        feats = load_features(root, speaker, feature, split, wav.stem)
        shown = np.asarray(feats[-1] if feats.ndim == 3 else feats, dtype=np.float32)  # HuBERT: last layer (T, D)
        # Standardise each dimension so deltas and high coefficients are visible beside c0.
        shown = (shown - shown.mean(0)) / (shown.std(0) + 1e-6)
        seconds = shown.shape[0] / FEATURE_RATES_HZ[feature]
        ax.imshow(shown.T, aspect="auto", origin="lower", cmap="magma", extent=(0, seconds, 0, shown.shape[1]),
                  vmin=-3, vmax=3)
        ax.set_title(f"{feature}: {speaker}/{split}/{wav.stem}, array {feats.shape} at {FEATURE_RATES_HZ[feature]} Hz")
        ax.set_ylabel("dim")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    return fig
