"""Figure of the live lookahead study (lib.live.study): quality against lookahead."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ._style import save_figure


def plot_lookahead(df: pd.DataFrame, metrics: tuple[str, ...] = ("mse_score", "dtw_score"),
                   out_path: str | Path | None = None):
    """One panel per metric: per-seed scores (dots) and their mean (line) against lookahead_ms;
    the full-context arm (lookahead_ms = -1 in the table) as a dashed line with its seeds' range."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        d = df[df.metric == metric]
        live = d[d.lookahead_ms >= 0]
        full = d[d.lookahead_ms < 0]
        ax.plot(live.lookahead_ms, live.value, "o", alpha=0.4, color="C0", label="seeds")
        mean = live.groupby("lookahead_ms")["value"].mean()
        ax.plot(mean.index, mean.values, "-", color="C0", label="bounded context, mean")
        if len(full):
            ax.axhline(full.value.mean(), color="C3", ls="--", label="full context, mean")
            ax.axhspan(full.value.min(), full.value.max(), color="C3", alpha=0.12)
        ax.set_xlabel("lookahead (ms)")
        ax.set_ylabel(f"{metric} (org test_a, lower is better)")
        ax.set_xticks(sorted(live.lookahead_ms.unique()))
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    return save_figure(fig, out_path)
