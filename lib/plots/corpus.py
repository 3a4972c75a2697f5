"""Figures of the built-in corpus: the rig's curves of one sentence under its audio."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS
from ._style import legend_outside, save_figure

KEY_CHANNELS = ("JawOpen", "MouthClose", "MouthPucker", "MouthFunnel", "MouthSmileLeft", "BrowInnerUp")


def plot_rig_example(
    root: str | Path,
    utt: str,
    split: str = "train",
    speaker: str = "org",
    out_path: str | Path | None = None,
    channels: Sequence[str] = KEY_CHANNELS,
    oracle_speaker: str | None = None,
):
    """Waveform with phone segments on top, a few label channels below.

    Args:
        root: corpus root (see lib.corpus.builder).
        speaker: whose clip; its labels are org's labels (``speaker == "org"``) or its oracle labels.
        oracle_speaker: optionally a TTS voice whose clip of the same ``utt`` is drawn too
            (its own waveform row and its oracle curves, dashed), to show the timing mismatch.
        out_path: PNG to write (folders created); None -> not saved.
    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    from ..corpus.builder_clips import label_path, phones_path, read_phones_csv, wav_path
    from ..io import read_audio, read_label_csv

    root = Path(root)
    speakers = [speaker] + ([oracle_speaker] if oracle_speaker else [])
    fig, axes = plt.subplots(len(speakers) + 1, 1, figsize=(11, 2.2 * len(speakers) + 3.5), sharex=True,
                             gridspec_kw={"height_ratios": [1] * len(speakers) + [2.2]})
    ax_curves = axes[-1]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, spk in enumerate(speakers):
        wav = read_audio(wav_path(root, spk, split, utt))
        phones = read_phones_csv(phones_path(root, spk, split, utt))
        ax = axes[row]
        ax.plot(np.arange(len(wav)) / AUDIO_SAMPLE_RATE_HZ, wav, lw=0.4, color="0.3")
        top = float(np.abs(wav).max()) or 1.0
        for i, (p, s, e) in enumerate(phones):
            ax.axvspan(s, e, color="C0" if i % 2 else "C1", alpha=0.08)
            ax.text(0.5 * (s + e), 1.05 * top, p if p != "sil" else "", ha="center", va="bottom", fontsize=7)
        ax.set_ylim(-1.1 * top, 1.35 * top)
        ax.set_ylabel(spk, rotation=0, ha="right")
        ax.set_yticks([])
        labels, names = read_label_csv(label_path(root, spk, split, utt), channels=list(channels))
        t = (np.arange(labels.shape[0]) + 0.5) / FACE_FPS
        for j, c in enumerate(names):
            ax_curves.plot(t, labels[:, j], color=colors[j % len(colors)], ls="-" if row == 0 else "--",
                           lw=1.4 if row == 0 else 1.0, label=c if row == 0 else None)
    axes[0].set_title(f"{utt} ({split}): face rig curves"
                      + (f"; dashed = oracle labels of {oracle_speaker}" if oracle_speaker else ""))
    ax_curves.set_ylim(0, 1)
    ax_curves.set_ylabel("weight")
    ax_curves.set_xlabel("time (s); frame k drawn at (k + 0.5) / 25 s")
    legend_outside(ax_curves)
    return save_figure(fig, out_path)
