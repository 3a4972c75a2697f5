"""Figures come from the tidy CSVs alone and stay readable: one question per panel,
at most MAX_LINES lines in it, legend outside the data, labelled axes."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from lib.plots import plot_training_curves, plot_validation_curves, study_figures
from lib.plots.studies import MAX_LINES, curve_panels

BASES = ("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid", "tts_oracle")
SIZES = ("1", "5", "20", "all")


def _study(seeds=(0, 1)) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """curves.csv, arms.csv, runs.csv of a made-up few-shot study (plus a voices series)."""
    rng = np.random.default_rng(0)
    arms = [(f"{b}@{n}", b, n) for n, b in itertools.product(SIZES, BASES)]
    arms += [(f"voices_{v}@20", "tts_hybrid", "20") for v in ("0", "1", "3", "all")]
    curves, runs = [], []
    for label, _base, _n in arms:
        for seed in seeds:
            run_id = f"{label}-{seed}"
            last = int(rng.integers(3, 7)) * 50  # early stopping: runs end at different steps
            for step in range(50, last + 1, 50):
                for split in ("train", "val_1"):
                    curves.append((run_id, label, seed, step, step / 10, split, "loss", 1.0 / step + rng.random() * 1e-3))
            runs.append((run_id, label, seed, last - 50))
    curves_df = pd.DataFrame(curves, columns=["run_id", "arm", "seed", "step", "epoch", "split", "metric", "value"])
    arms_df = pd.DataFrame([(lab, base, n) for lab, base, n in arms], columns=["label", "base", "n_utts"])
    runs_df = pd.DataFrame(runs, columns=["run_id", "arm", "seed", "best_step"])
    return curves_df, arms_df, runs_df


def _lines_per_panel(fig) -> list[int]:
    return [len(ax.get_legend().get_texts()) for ax in fig.axes if ax.get_visible() and ax.get_legend()]


def test_a_few_shot_study_gets_one_panel_per_size_and_the_voices_apart():
    curves, arms_df, runs = _study()
    panels = curve_panels(list(dict.fromkeys(curves["arm"])), arms_df)
    titles = [t for t, _ in panels]
    assert titles == [f"{n} org utterances" for n in SIZES] + ["TTS voices, 20 org utterances"]
    for title, members in panels:
        assert 1 <= len(members) <= MAX_LINES
        if title.startswith("TTS voices"):
            assert all(m.startswith("voices_") for m in members)
        else:
            assert {m.split("@")[1] for m in members} == {title.split()[0]}


def test_a_long_list_of_arms_is_split_into_panels_of_max_lines():
    arms = [f"arm{i}" for i in range(19)]
    panels = curve_panels(arms)
    assert [len(m) for _, m in panels] == [8, 8, 3]
    assert sum((m for _, m in panels), []) == arms


def test_validation_curves_are_readable():
    import matplotlib.pyplot as plt

    curves, arms_df, runs = _study()
    fig = plot_validation_curves(curves, arms_df, runs)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(SIZES) + 1
    assert all(n <= MAX_LINES for n in _lines_per_panel(fig)) and sum(_lines_per_panel(fig)) == arms_df.shape[0]
    fig.canvas.draw()
    for ax in visible:
        assert ax.get_xlabel() == "optimizer step" and "val_1" in ax.get_ylabel()
        legend_box = ax.get_legend().get_window_extent()
        assert legend_box.x0 >= ax.get_window_extent().x1, "legend drawn over the data"
        tick_boxes = [t.get_window_extent() for t in ax.get_yticklabels() if t.get_text()]
        assert tick_boxes, "no y tick labels"
        for a, b in zip(tick_boxes, tick_boxes[1:]):
            assert not a.overlaps(b), "y tick labels overlap"
    # each seed's best step is marked on its curve: one dot per run
    dots = sum(1 for ax in visible for line in ax.get_lines() if line.get_marker() == "o")
    assert dots == len(runs)
    plt.close(fig)


def test_training_curves_refuse_a_squashed_panel():
    curves, _, _ = _study()
    with pytest.raises(ValueError, match="plot_validation_curves"):
        plot_training_curves(curves)


def test_study_figures_come_from_the_csv_files_alone(tmp_path):
    curves, arms_df, runs = _study()
    study = tmp_path / "06_ablation_data"
    study.mkdir()
    metrics = pd.DataFrame([(r.run_id, r.arm, r.seed, "test_a", "org", "labels", "", m, 0.01 + 0.001 * r.seed)
                            for r in runs.itertuples() for m in ("mse_score", "dtw_score")],
                           columns=["run_id", "arm", "seed", "split", "speaker", "reference", "utt", "metric", "value"])
    arms_df = arms_df.assign(n_voices="all")
    for name, df in (("curves", curves), ("arms", arms_df), ("runs", runs), ("metrics", metrics)):
        df.to_csv(study / f"{name}.csv", index=False)
    made = study_figures(study, tmp_path / "figs")
    names = sorted(p.name for p in made)
    assert "06_ablation_data_curves.png" in names and "06_ablation_data_few_shot_mse_score.png" in names
    assert all(p.stat().st_size > 10_000 for p in made)


def test_study_tables_say_which_arms_stopped_early():
    from lib.studies.report import arms_table

    summary = pd.DataFrame([("a", "mse_score", 2, 0.1, 0.01), ("b", "mse_score", 2, 0.2, 0.02)],
                           columns=["arm", "metric", "n_seeds", "mean", "std"])
    runs = pd.DataFrame({"arm": ["a", "a", "b", "b"], "stopped_early": [True, True, True, False]})
    t = arms_table(summary, runs)
    assert t.set_index("arm")["stopped early"].to_dict() == {"a": "2/2", "b": "1/2"}
    assert "stopped early" not in arms_table(summary).columns  # old tables without the column
