"""Statistics over seeds: mean ± std per arm, the seed-spread rule, relative improvement.

A run's score is the mean over its test utterances (lib.studies.runner);
an arm's score is the mean over its seeds, with the sample standard deviation
(ddof=1; undefined with one seed). Two arms differ "beyond the seed spread"
when ``|mean_a - mean_b| > std_a + std_b``: a deliberately plain rule (each
mean is more than its own spread away from the other arm's band), not a
significance test; with one seed it is undecided (None).

Lower is better for every score here except ``jaw_open_corr``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

# What the paper reports for its best system over its baseline (relative improvement).
PAPER_IMPROVEMENT = {"mse_score": 0.17, "dtw_score": 0.14}
HIGHER_IS_BETTER = {"jaw_open_corr"}


def select(metrics: pd.DataFrame, metric: str, split: str = "test_a", speaker: str = "org",
           reference: str = "labels") -> pd.DataFrame:
    """Rows of one score: (arm, seed, value), one per run."""
    m = metrics
    keep = (m["metric"] == metric) & (m["split"] == split) & (m["speaker"].astype(str) == speaker) \
        & (m["reference"] == reference)
    return m.loc[keep, ["arm", "seed", "value"]].reset_index(drop=True)


def summarize(metrics: pd.DataFrame, metrics_names=("mse_score", "dtw_score"), split: str = "test_a",
              speaker: str = "org", reference: str = "labels", arm_order=None) -> pd.DataFrame:
    """(arm, metric, n_seeds, mean, std) over seeds; std is the sample std (NaN for one seed)."""
    rows = []
    for metric in metrics_names:
        sel = select(metrics, metric, split, speaker, reference)
        for arm, g in sel.groupby("arm", sort=False):
            v = g["value"].to_numpy(dtype=float)
            rows.append({"arm": arm, "metric": metric, "n_seeds": len(v), "mean": float(np.mean(v)),
                         "std": float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")})
    out = pd.DataFrame(rows, columns=["arm", "metric", "n_seeds", "mean", "std"])
    if arm_order is not None:
        rank = {a: i for i, a in enumerate(arm_order)}
        out = out.sort_values(["metric", "arm"], key=lambda s: s.map(rank) if s.name == "arm" else s, kind="stable")
    return out.reset_index(drop=True)


def exceeds_spread(mean_a: float, std_a: float, mean_b: float, std_b: float) -> bool | None:
    """True when |mean_a - mean_b| > std_a + std_b; None when a spread is unknown (one seed)."""
    if any(math.isnan(x) for x in (mean_a, std_a, mean_b, std_b)):
        return None
    return abs(mean_a - mean_b) > std_a + std_b


def relative_improvement(baseline: float, other: float, metric: str = "mse_score") -> float:
    """Share by which ``other`` improves on ``baseline``: (baseline - other) / baseline for
    lower-is-better scores (0.17 = 17 % lower), sign flipped for higher-is-better ones."""
    if baseline == 0:
        return float("nan")
    rel = (baseline - other) / abs(baseline)
    return -rel if metric in HIGHER_IS_BETTER else rel


def compare(summary: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Each arm against ``baseline`` per metric: rel_improvement and exceeds_seed_spread."""
    rows = []
    for metric, g in summary.groupby("metric", sort=False):
        base = g[g["arm"] == baseline]
        if base.empty:
            continue
        b = base.iloc[0]
        for _, r in g.iterrows():
            rows.append({**r.to_dict(), "baseline": baseline,
                         "rel_improvement": relative_improvement(b["mean"], r["mean"], metric),
                         "exceeds_seed_spread": None if r["arm"] == baseline else
                         exceeds_spread(r["mean"], r["std"], b["mean"], b["std"])})
    return pd.DataFrame(rows)


def best_arm(summary: pd.DataFrame, metric: str, among=None) -> str | None:
    g = summary[summary["metric"] == metric]
    if among is not None:
        g = g[g["arm"].isin(list(among))]
    if g.empty:
        return None
    idx = g["mean"].idxmax() if metric in HIGHER_IS_BETTER else g["mean"].idxmin()
    return str(g.loc[idx, "arm"])


def paper_comparison(summary: pd.DataFrame, baseline: str, candidates=None) -> pd.DataFrame:
    """Best arm (per metric, among ``candidates``) vs ``baseline`` beside the paper's 17 % / 14 %."""
    rows = []
    for metric, paper in PAPER_IMPROVEMENT.items():
        g = summary[summary["metric"] == metric]
        base = g[g["arm"] == baseline]
        best = best_arm(summary, metric, [a for a in (candidates or g["arm"]) if a != baseline])
        if base.empty or best is None:
            continue
        b, r = base.iloc[0], g[g["arm"] == best].iloc[0]
        rows.append({"metric": metric, "baseline": baseline, "baseline_mean": b["mean"], "baseline_std": b["std"],
                     "best_arm": best, "best_mean": r["mean"], "best_std": r["std"],
                     "rel_improvement": relative_improvement(b["mean"], r["mean"], metric), "paper": paper,
                     "exceeds_seed_spread": exceeds_spread(r["mean"], r["std"], b["mean"], b["std"])})
    return pd.DataFrame(rows)


def format_mean_std(mean: float, std: float, digits: int = 4) -> str:
    """'0.0123 ± 0.0011' (just the mean when the spread is unknown)."""
    return f"{mean:.{digits}g}" if math.isnan(std) else f"{mean:.{digits}g} ± {std:.2g}"
