"""The README's generated "Results" block, from results/*.csv only (never typed by hand).

``update_readme(readme, results_dir)`` replaces the text between
``<!-- results:start -->`` and ``<!-- results:end -->`` and nothing else; running
it twice gives the same file.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..io import atomic_write_text
from . import stats

START, END = "<!-- results:start -->", "<!-- results:end -->"


def md_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(v) for v in r.tolist()) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def _pct(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:+.1f} %"


def _spread(x) -> str:
    return {True: "yes", False: "no"}.get(x if isinstance(x, bool) else None, "n/a (1 seed)")


def _stopped_flags(runs: pd.DataFrame) -> pd.Series:
    """runs.csv's ``stopped_early`` as True / False / NaN (unknown), however the CSV typed it."""
    return runs["stopped_early"].astype(str).str.lower().map({"true": True, "false": False})


def arms_table(summary: pd.DataFrame, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """summary.csv -> one row per arm: seeds, MSE score, DTW score as 'mean ± std'.

    With runs.csv carrying ``stopped_early``, a column says how many of the arm's
    runs stopped on validation rather than at the step cap: "3/3" is a converged
    arm, anything less a truncated one whose numbers are not a finding.
    """
    rows = {}
    for _, r in summary.iterrows():
        row = rows.setdefault(r["arm"], {"arm": r["arm"], "seeds": int(r["n_seeds"])})
        row[r["metric"]] = stats.format_mean_std(float(r["mean"]), float(r["std"]))
    df = pd.DataFrame(list(rows.values()))
    if runs is not None and "stopped_early" in runs and len(df):
        by_arm = _stopped_flags(runs).groupby(runs["arm"]).agg(["sum", "count"])
        df["stopped early"] = [f"{int(by_arm.at[a, 'sum'])}/{int(by_arm.at[a, 'count'])}"
                               if a in by_arm.index else "" for a in df["arm"]]
    return df


def convergence_line(runs: pd.DataFrame | None) -> str:
    """"k of n runs stopped early (on validation) ...": a study-level view of the "stopped early" column."""
    if runs is None or "stopped_early" not in runs or not len(runs):
        return ""
    known = _stopped_flags(runs).dropna()
    if not len(known):
        return ""
    caps = sorted({int(c) for c in pd.to_numeric(runs.get("max_steps"), errors="coerce").dropna()})
    cap = f" (step cap {', '.join(map(str, caps))})" if caps else ""
    line = f"{int(known.sum())} of {len(known)} runs stopped early, on validation{cap}"
    if known.all():
        return line + "."
    short = sorted(set(runs.loc[known.index[~known.astype(bool)], "arm"]))
    return line + f"; the rest reached the cap, so these arms are truncated, not converged: {', '.join(short)}."


def baseline_comparisons(summary: pd.DataFrame) -> pd.DataFrame:
    """Per data size ("@n" suffix of arm labels): best TTS arm (oracle excluded) vs org_l2, both scores."""
    out = []
    arms = list(dict.fromkeys(summary["arm"]))
    for suffix in dict.fromkeys(a[a.index("@"):] if "@" in a else "" for a in arms):
        base = f"org_l2{suffix}"
        cands = [a for a in arms if (a[a.index("@"):] if "@" in a else "") == suffix
                 and a.startswith("tts_") and not a.startswith("tts_oracle")]
        if base in arms and cands:
            out.append(stats.paper_comparison(summary, base, cands))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _size_of(arm: str) -> float | None:
    """The org utterance count of an "@n" arm label (inf for "@all"), None without one."""
    if "@" not in arm:
        return None
    n = arm[arm.index("@") + 1:]
    return math.inf if n == "all" else (float(n) if n.isdigit() else None)


def worth_table(summary: pd.DataFrame, baseline: str = "org_l2") -> pd.DataFrame:
    """The few-shot question: is a TTS arm at n org utterances worth org-only at the next size m?

    For each size n of the curve and the next larger size m that the baseline was
    run at, each TTS arm at n (oracle included, as the ceiling of augmentation)
    against ``baseline`` at m, per score: relative difference (positive: the TTS
    arm at n is better than org-only at m) and whether it is beyond the seed spread.
    A "yes" row at 20 vs 50 with positive differences is the paper's claim.
    """
    size = {a: _size_of(a) for a in dict.fromkeys(summary["arm"])}
    sizes = sorted({n for a, n in size.items() if a.startswith(f"{baseline}@") and n is not None})
    label = {n: ("all" if n == math.inf else str(int(n))) for n in sizes}
    by_metric = {metric: summary[summary["metric"] == metric].set_index("arm")
                 for metric in ("mse_score", "dtw_score")}
    rows = []
    for n, m in zip(sizes, sizes[1:]):
        base = f"{baseline}@{label[m]}"
        for arm, arm_size in size.items():
            if not arm.startswith("tts_") or arm_size != n:
                continue
            row = {"arm at n": arm, f"vs {baseline} at m": base}
            for metric, g in by_metric.items():
                if arm not in g.index or base not in g.index:
                    continue
                a, b = g.loc[arm], g.loc[base]
                row[f"{metric} (arm)"] = stats.format_mean_std(float(a["mean"]), float(a["std"]))
                row[f"{metric} ({baseline} at m)"] = stats.format_mean_std(float(b["mean"]), float(b["std"]))
                row[f"{metric} better by"] = _pct(stats.relative_improvement(float(b["mean"]), float(a["mean"]), metric))
                row[f"{metric} beyond spread"] = _spread(stats.exceeds_spread(float(a["mean"]), float(a["std"]),
                                                                              float(b["mean"]), float(b["std"])))
            rows.append(row)
    return pd.DataFrame(rows)


def notebook_walls(results_dir: Path) -> pd.DataFrame:
    rows = []
    for p in sorted(results_dir.glob("*/.run_state.json")):
        st = json.loads(p.read_text())
        if st.get("status") == "ok":
            rows.append({"notebook": p.parent.name, "profile": st.get("profile", ""), "wall_s": st.get("wall_s")})
    return pd.DataFrame(rows, columns=["notebook", "profile", "wall_s"])


def results_block(results_dir: str | Path) -> str:
    """The markdown between the markers."""
    results_dir = Path(results_dir)
    parts = ["_Generated by `python scripts/make_results_readme.py` from `results/default/*.csv`; do not edit by hand._", ""]
    index_path = results_dir / "index.csv"
    if not index_path.is_file():
        return "\n".join(parts + ["No study has run yet: `python run_all.py --profile quick`."])
    index = pd.read_csv(index_path, keep_default_na=False)
    walls = notebook_walls(results_dir)
    profiles = sorted(set(index["profile"].astype(str)))
    commits = ", ".join(sorted(set(index["git_commit"].astype(str))))
    parts.append(f"**Profile:** {', '.join(profiles)} (per study below) · **machine:** {index['machine'].iloc[-1]} · "
                 f"**commits:** {commits}")
    if len(walls):
        total = float(pd.to_numeric(walls["wall_s"], errors="coerce").sum())
        parts.append(f"**Wall time** (run_all.py, notebooks that ran): {total / 60:.1f} min — "
                     + ", ".join(f"{r.notebook} {float(r.wall_s):.0f} s" for r in walls.itertuples()))
    parts += ["", "Scores on org `test_a` (lower is better), mean ± std over seeds (sample std; one seed: no "
                  "spread). \"Beyond seed spread\": |Δmean| > std₁ + std₂.", ""]
    comparisons = []
    profile_of = dict(zip(index["study"], index["profile"].astype(str)))
    for study in index["study"]:
        summary_path = results_dir / study / "summary.csv"
        if not summary_path.is_file():
            continue
        summary = pd.read_csv(summary_path)
        if summary.empty:
            continue
        runs_path = results_dir / study / "runs.csv"
        runs = pd.read_csv(runs_path) if runs_path.is_file() else None
        parts += [f"#### {study} (profile {profile_of[study]})", ""]
        line = convergence_line(runs)
        if line:
            parts += [line, ""]
        parts += [md_table(arms_table(summary, runs)), ""]
        comp = baseline_comparisons(summary)
        if len(comp):
            comp.insert(0, "study", study)
            comparisons.append(comp)
    if comparisons:
        c = pd.concat(comparisons, ignore_index=True)
        table = pd.DataFrame({
            "study": c["study"], "score": c["metric"], "baseline": c["baseline"],
            "baseline score": [stats.format_mean_std(m, s) for m, s in zip(c["baseline_mean"], c["baseline_std"])],
            "best TTS arm": c["best_arm"],
            "best score": [stats.format_mean_std(m, s) for m, s in zip(c["best_mean"], c["best_std"])],
            "improvement": [_pct(x) for x in c["rel_improvement"]], "paper": [_pct(x) for x in c["paper"]],
            "beyond seed spread": [_spread(x) for x in c["exceeds_seed_spread"]]})
        parts += ["#### Best TTS-augmented arm vs the org-only baseline (paper: 17 % MSE, 14 % DTW)", "",
                  md_table(table), ""]
    data_summary = results_dir / "06_ablation_data" / "summary.csv"
    if data_summary.is_file():
        worth = worth_table(pd.read_csv(data_summary))
        if len(worth):
            parts += ["#### Is a TTS arm at n org utterances worth org-only at the next size m? (06)", "",
                      "\"Better by\": how much lower the TTS arm's score at n is than org-only L2's at m "
                      "(positive: the TTS arm with fewer recordings wins).", "", md_table(worth), ""]
    tts_path = results_dir / "07_tts_driven" / "tts_driven.csv"
    if tts_path.is_file():
        t = pd.read_csv(tts_path)
        t["value"] = [stats.format_mean_std(m, s) for m, s in zip(t["mean"], t["std"])]
        wide = t.pivot_table(index="arm", columns=["metric", "group"], values="value", aggfunc="first", sort=False)
        wide.columns = [f"{m} · {g}" for m, g in wide.columns]
        parts += ["#### 07: faces driven by TTS audio, scored against each clip's oracle labels (org: its own labels)",
                  "", md_table(wide.reset_index()), ""]
    cols = ["study", "profile", "n_runs", "seeds", "best_arm", "best_mse_score", "run_wall_s", "command"]
    parts += ["#### Index (`results/index.csv`)", "", md_table(index[[c for c in cols if c in index.columns]])]
    return "\n".join(parts).rstrip() + "\n"


def update_readme(readme: str | Path, results_dir: str | Path) -> bool:
    """Replace the block between the markers; returns True if the file changed.

    Raises ValueError when the markers are missing or out of order (nothing is written).
    """
    readme = Path(readme)
    text = readme.read_text()
    i, j = text.find(START), text.find(END)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"{readme}: needs the markers {START} ... {END} (in that order)")
    new = text[: i + len(START)] + "\n" + results_block(results_dir) + text[j:]
    if new == text:
        return False
    atomic_write_text(readme, new)
    return True
