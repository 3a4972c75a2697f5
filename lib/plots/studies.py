"""Study figures, made from the tidy CSVs of results/<profile>/<study>/ only (never
from notebook state).

Every function takes DataFrames read from those files (metrics.csv, curves.csv,
arms.csv, runs.csv, summary.csv) and returns a matplotlib Figure, saved as PNG
when ``out_path`` is given. :func:`study_figures` makes every figure a study's
files allow; notebook 08 calls it for each study folder. Figures answer one
question per panel, with at most :data:`MAX_LINES` lines in it and the legend
outside the data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ._style import colors as _colors
from ._style import legend_outside, log_y, save_figure

SCORES = ("mse_score", "dtw_score")
MAX_LINES = 8  # more lines than this in one panel cannot be told apart


def curve_panels(arms: Sequence[str], arms_df: pd.DataFrame | None = None,
                 max_lines: int = MAX_LINES) -> list[tuple[str, list[str]]]:
    """Split a study's arms into panels of one question each: [(title, arms)].

    A study over data sizes (several ``n_utts`` in arms.csv) gets one panel per
    size (the arms trained on that many org utterances) and one per voice-count
    series; any other study gets its arms in order, at most ``max_lines`` a panel.
    """
    arms = list(arms)
    if arms_df is not None and len(arms_df) and "n_utts" in arms_df and arms_df["n_utts"].astype(str).nunique() > 1:
        info = arms_df.set_index("label")
        panels: dict[str, list[str]] = {}
        for a in arms:
            if a not in info.index:
                continue
            size = str(info.at[a, "n_utts"])
            key = f"TTS voices, {size} org utterances" if a.startswith("voices_") else f"{size} org utterances"
            panels.setdefault(key, []).append(a)
        out = []
        for title, members in panels.items():
            for k in range(0, len(members), max_lines):
                out.append((title, members[k:k + max_lines]))
        return out
    return [(f"arms {k + 1}-{min(k + max_lines, len(arms))} of {len(arms)}" if len(arms) > max_lines else "",
             arms[k:k + max_lines]) for k in range(0, len(arms), max_lines)]


def plot_validation_curves(curves: pd.DataFrame, arms_df: pd.DataFrame | None = None,
                           runs: pd.DataFrame | None = None, val_split: str = "val_1", metric: str = "loss",
                           ncols: int = 3, out_path: str | Path | None = None):
    """Validation loss against optimizer steps, one panel per question (:func:`curve_panels`).

    Each arm is its mean over seeds at each evaluation (a seed that stopped early
    drops out of later means), with the seeds' range shaded; with ``runs``
    (runs.csv) each seed's best step, where early stopping kept its weights, is a
    dot. A plateau before the dots means the run converged; a curve still falling
    at its last step means it was cut by the step cap.
    """
    import matplotlib.pyplot as plt

    sel = curves[(curves["split"] == val_split) & (curves["metric"] == metric)]
    arms = list(dict.fromkeys(sel["arm"]))
    panels = curve_panels(arms, arms_df)
    if not panels:
        panels = [("no validation curves", [])]
    nc = min(ncols, len(panels))
    nr = -(-len(panels) // nc)
    fig, axes = plt.subplots(nr, nc, figsize=(5.6 * nc, 3.3 * nr), squeeze=False)
    best = {} if runs is None or "best_step" not in runs else dict(zip(runs["run_id"], runs["best_step"]))
    for ax, (title, members) in zip(axes.flat, panels):
        col = _colors(members)
        for arm in members:
            g = sel[sel["arm"] == arm]
            by_step = g.groupby("step")["value"].agg(["mean", "min", "max"])
            ax.plot(by_step.index, by_step["mean"], color=col[arm], lw=1.4, label=arm)
            if g["run_id"].nunique() > 1:
                ax.fill_between(by_step.index, by_step["min"], by_step["max"], color=col[arm], alpha=0.15, lw=0)
            for run_id, r in g.groupby("run_id"):
                step = best.get(run_id)
                if step is not None and not pd.isna(step) and (r["step"] == step).any():
                    ax.plot([step], r.loc[r["step"] == step, "value"].iloc[:1], "o", color=col[arm], ms=3.5)
        if members:
            log_y(ax)
            legend_outside(ax)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step")
        # Each arm's validation loss is its own aligned-pair loss (L2, L1 or soft-DTW):
        # compare a curve with itself over steps, not arms with each other.
        ax.set_ylabel(f"org {val_split} {metric}\n(each arm's own loss)", fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return save_figure(fig, out_path)


def plot_training_curves(curves: pd.DataFrame, arms: Sequence[str] | None = None, val_split: str = "val_1",
                         out_path: str | Path | None = None):
    """Training loss (left) and org validation loss (right) against steps for a few
    arms (at most :data:`MAX_LINES`; use :func:`plot_validation_curves` for a whole
    study); one colour per arm, one line per seed. Losses of different arms are on
    the scale of their own loss."""
    import matplotlib.pyplot as plt

    arms = list(arms or dict.fromkeys(curves["arm"]))
    if len(arms) > MAX_LINES:
        raise ValueError(f"{len(arms)} arms in one panel; use plot_validation_curves (one panel per question)")
    col = _colors(arms)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for ax, split in zip(axes, ("train", val_split)):
        sel = curves[(curves["split"] == split) & (curves["metric"] == "loss") & curves["arm"].isin(arms)]
        for (arm, run), g in sel.groupby(["arm", "run_id"], sort=False):
            first = run == sel[sel["arm"] == arm]["run_id"].iloc[0]
            ax.plot(g["step"], g["value"], color=col[arm], lw=1.2, alpha=0.8, label=arm if first else None)
        log_y(ax)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(f"{split} loss")
        ax.set_title(f"{split} loss")
    legend_outside(axes[1])
    return save_figure(fig, out_path)


def plot_prediction(gt: np.ndarray, pred: np.ndarray, channels: Sequence[str],
                    show: Sequence[str] = ("JawOpen", "MouthClose", "MouthFunnel", "MouthPucker"),
                    face_fps: int = 25, title: str = "", out_path: str | Path | None = None):
    """Ground truth (M, C) and prediction (T, C) of one utterance, a few channels, against time (s)."""
    import matplotlib.pyplot as plt

    show = [c for c in show if c in channels]
    fig, axes = plt.subplots(len(show), 1, figsize=(10, 1.6 * len(show)), sharex=True, squeeze=False)
    for ax, ch in zip(axes[:, 0], show):
        j = list(channels).index(ch)
        ax.plot(np.arange(len(gt)) / face_fps, gt[:, j], color="k", lw=1.5, label="ground truth")
        ax.plot(np.arange(len(pred)) / face_fps, pred[:, j], color="tab:red", lw=1.2, label="prediction")
        ax.set_ylabel(ch, fontsize=8)
    legend_outside(axes[0, 0])
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("time (s)")
    return save_figure(fig, out_path)


def plot_arms(metrics: pd.DataFrame, metric: str = "mse_score", arms: Sequence[str] | None = None,
              speaker: str = "org", reference: str = "labels", title: str = "", out_path: str | Path | None = None):
    """Mean ± std over seeds per arm (bars) with each seed's score (dots); lower is better."""
    import matplotlib.pyplot as plt

    m = metrics[(metrics["metric"] == metric) & (metrics["speaker"].astype(str) == speaker)
                & (metrics["reference"] == reference)]
    arms = [a for a in (arms or dict.fromkeys(m["arm"])) if a in set(m["arm"])]
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(arms) + 2), 3.8))
    for i, arm in enumerate(arms):
        v = m[m["arm"] == arm]["value"].to_numpy(float)
        ax.bar(i, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, color="tab:blue", alpha=0.6, capsize=3)
        ax.plot(np.full(len(v), i), v, "k.", ms=4)
    ax.set_xticks(range(len(arms)), arms, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (test_a, {speaker})")
    ax.set_title(title or f"{metric}: mean ± std over seeds (dots: seeds)")
    return save_figure(fig, out_path)


def _by_size(metrics: pd.DataFrame, arms_df: pd.DataFrame, metric: str, prefix_filter) -> pd.DataFrame:
    m = metrics[(metrics["metric"] == metric) & (metrics["speaker"].astype(str) == "org")
                & (metrics["reference"] == "labels")]
    a = arms_df[arms_df["label"].map(prefix_filter)][["label", "base", "n_utts", "n_voices"]]
    return m.merge(a, left_on="arm", right_on="label")


def _size_order(values) -> list[str]:
    vals = sorted({str(v) for v in values}, key=lambda s: (s == "all", int(s) if s.isdigit() else 0))
    return vals


def plot_few_shot(metrics: pd.DataFrame, arms_df: pd.DataFrame, metric: str = "mse_score",
                  out_path: str | Path | None = None):
    """The few-shot curve: score against org training utterances, one line per base arm
    (mean ± std over seeds; thin dots: seeds). The size axis is categorical."""
    import matplotlib.pyplot as plt

    d = _by_size(metrics, arms_df, metric, lambda s: not str(s).startswith("voices_"))
    sizes = _size_order(d["n_utts"])
    pos = {s: i for i, s in enumerate(sizes)}
    bases = list(dict.fromkeys(d["base"]))
    col = _colors(bases)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for k, base in enumerate(bases):
        g = d[d["base"] == base]
        agg = g.groupby(g["n_utts"].astype(str))["value"].agg(["mean", "std", "count"])
        agg = agg.loc[[s for s in sizes if s in agg.index]]
        x = np.array([pos[s] for s in agg.index]) + (k - len(bases) / 2) * 0.04  # dodge overlapping bars
        ax.errorbar(x, agg["mean"], yerr=agg["std"].fillna(0), color=col[base], marker="o", capsize=3, label=base)
        ax.plot([pos[str(s)] + (k - len(bases) / 2) * 0.04 for s in g["n_utts"]], g["value"], ".",
                color=col[base], alpha=0.35, ms=3)
    ax.set_xticks(range(len(sizes)), sizes)
    ax.set_xlabel("org training utterances")
    ax.set_ylabel(f"{metric} (org test_a)")
    log_y(ax)
    legend_outside(ax)
    ax.set_title(f"few-shot curve: {metric}, mean ± std over seeds")
    return save_figure(fig, out_path)


def plot_voices(metrics: pd.DataFrame, arms_df: pd.DataFrame, metric: str = "mse_score",
                out_path: str | Path | None = None):
    """Score against the number of TTS voices trained on (hybrid loss)."""
    import matplotlib.pyplot as plt

    d = _by_size(metrics, arms_df, metric, lambda s: str(s).startswith("voices_"))
    order = _size_order(d["n_voices"])
    agg = d.groupby(d["n_voices"].astype(str))["value"].agg(["mean", "std"]).loc[order]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.errorbar(range(len(order)), agg["mean"], yerr=agg["std"].fillna(0), marker="o", capsize=3)
    ax.plot([order.index(str(v)) for v in d["n_voices"]], d["value"], "k.", alpha=0.4, ms=3)
    ax.set_xticks(range(len(order)), order)
    sizes = sorted({str(v) for v in d["n_utts"]})
    ax.set_xlabel(f"TTS voices (org utterances: {', '.join(sizes)})")
    ax.set_ylabel(f"{metric} (org test_a)")
    return save_figure(fig, out_path)


def plot_layer_weights(weights: np.ndarray, title: str = "learned layer weights",
                       out_path: str | Path | None = None):
    """(L,) softmax weights over feature layers; the dashed line is the uniform start."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(np.arange(len(weights)), weights)
    ax.axhline(1 / len(weights), ls="--", color="k", lw=1, label="uniform (start)")
    ax.set_xlabel("layer")
    ax.set_ylabel("weight")
    ax.set_title(title)
    legend_outside(ax)
    return save_figure(fig, out_path)


def plot_tts_driven(table: pd.DataFrame, out_path: str | Path | None = None):
    """Grouped bars from lib.studies.views.tts_driven_table: arm x (org, training voices, held-out voices)."""
    import matplotlib.pyplot as plt

    groups = [g for g in ("org", "training voice", "held-out voice") if g in set(table["group"])]
    arms = list(dict.fromkeys(table["arm"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(arms) + 2), 3.8))
    width = 0.8 / max(len(groups), 1)
    for k, grp in enumerate(groups):
        t = table[table["group"] == grp].set_index("arm").reindex(arms)
        ax.bar(np.arange(len(arms)) + k * width, t["mean"], width, yerr=t["std"].fillna(0), capsize=2, label=grp)
    ax.set_xticks(np.arange(len(arms)) + width * (len(groups) - 1) / 2, arms, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{table['metric'].iloc[0]} (test_a; TTS vs oracle labels)")
    legend_outside(ax)
    return save_figure(fig, out_path)


def study_figures(study_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Every figure a study's CSVs allow, as ``<out_dir>/<study>_<figure>.png``."""
    import matplotlib.pyplot as plt

    study_dir, out_dir = Path(study_dir), Path(out_dir)
    name = study_dir.name
    read = lambda f: pd.read_csv(study_dir / f)  # noqa: E731
    if not (study_dir / "metrics.csv").is_file():
        return []
    metrics, made = read("metrics.csv"), []
    arms_df = read("arms.csv") if (study_dir / "arms.csv").is_file() else pd.DataFrame()
    if metrics.empty:
        return []

    def keep(fig, stem):
        made.append(out_dir / f"{name}_{stem}.png")
        save_figure(fig, made[-1])
        plt.close(fig)

    out_dir.mkdir(parents=True, exist_ok=True)
    if (study_dir / "curves.csv").is_file():
        runs = read("runs.csv") if (study_dir / "runs.csv").is_file() else None
        keep(plot_validation_curves(read("curves.csv"), arms_df, runs), "curves")
    sizes = set(arms_df["n_utts"].astype(str)) if "n_utts" in arms_df else set()
    for metric in SCORES:
        if len(sizes) > 1:
            keep(plot_few_shot(metrics, arms_df, metric), f"few_shot_{metric}")
            if arms_df["label"].astype(str).str.startswith("voices_").any():
                keep(plot_voices(metrics, arms_df, metric), f"voices_{metric}")
        else:
            keep(plot_arms(metrics, metric), f"arms_{metric}")
    if (study_dir / "tts_driven.csv").is_file():  # notebook 07: TTS clips scored against oracle labels
        table = read("tts_driven.csv")
        for metric, t in table.groupby("metric", sort=False):
            keep(plot_tts_driven(t), f"tts_driven_{metric}")
    if (study_dir / "layer_weights.csv").is_file():  # notebook 04: learned HuBERT layer weights
        w = read("layer_weights.csv")
        if not w.empty:
            mean = w.groupby("layer")["weight"].mean()
            keep(plot_layer_weights(mean.to_numpy(), f"learned layer weights (mean over {w['seed'].nunique()} "
                                                     f"seeds)"), "layer_weights")
    return made
