"""Figures made from data and result files (never from notebook state)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS
from ._style import legend_outside, save_figure

KEY_CHANNELS = ("JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthSmileLeft",
                "MouthStretchLeft", "MouthPressLeft", "BrowInnerUp")


def plot_utterance(
    wav: np.ndarray,
    labels: np.ndarray,
    channels: Sequence[str],
    show: Sequence[str] = KEY_CHANNELS,
    title: str = "",
    out_path: str | Path | None = None,
    face_fps: int = FACE_FPS,
    sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ,
):
    """Waveform on top, the chosen label channels below, on one time axis (seconds).

    Args:
        wav: (samples,) mono audio at ``sample_rate_hz``.
        labels: (frames, C) face parameters at ``face_fps`` in ``channels`` order.
    Returns the matplotlib Figure (also saved as PNG when ``out_path`` is given).
    """
    import matplotlib.pyplot as plt

    show = [c for c in show if c in channels]
    fig, (ax_w, ax_l) = plt.subplots(2, 1, figsize=(11, 5), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    ax_w.plot(np.arange(len(wav)) / sample_rate_hz, wav, lw=0.4, color="0.3")
    ax_w.set_ylabel("audio")
    ax_w.set_title(title)
    t = np.arange(labels.shape[0]) / face_fps
    for c in show:
        ax_l.plot(t, labels[:, list(channels).index(c)], lw=1.2, label=c)
    ax_l.set_xlabel("time (s)")
    ax_l.set_ylabel("weight")
    legend_outside(ax_l)
    return save_figure(fig, out_path, dpi=110)
