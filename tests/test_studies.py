"""Study machinery (lib.studies) on the tiny corpus: tables, cache, parallel == serial, stats, README block."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.studies import StudyError, make_arm, run_study, study_profile
from lib.studies import stats
from lib.studies.report import END, START, update_readme
from lib.studies.runner import CURVE_COLUMNS, METRIC_COLUMNS
from tests.tiny_corpus import make_tiny_corpus

PROFILE = study_profile("tiny", max_steps=4, eval_every_steps=2, patience_evals=5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_tiny_corpus(tmp_path_factory.mktemp("tiny") / "corpus")


@pytest.fixture(scope="module")
def study(corpus, tmp_path_factory):
    """2 arms x 2 seeds, run serially in this process."""
    out = tmp_path_factory.mktemp("results")
    arms = [make_arm("org_l2"), make_arm("tts_hybrid")]
    res = run_study("99_test", arms, PROFILE, corpus, seeds=(0, 1), workers=1, results_dir=out,
                    runs_dir=out / "runs", progress=False)
    return res, out


def test_tables_have_tidy_columns_and_rows(study):
    res, out = study
    metrics = pd.read_csv(out / "99_test" / "metrics.csv")
    assert tuple(metrics.columns) == METRIC_COLUMNS
    # One row per run and score: the scores a run's own per-utterance file holds.
    per_utt = pd.read_csv(res.planned[0].run_dir / "metrics.csv")
    n_scores = per_utt["metric"].nunique()
    assert len(metrics) == 2 * 2 * n_scores
    assert set(metrics["speaker"]) == {"org"} and set(metrics["reference"]) == {"labels"}
    assert metrics.groupby(["arm", "seed"]).size().eq(n_scores).all()
    # The study row is the mean over utterances of the run's file.
    p = res.planned[0]
    want = per_utt[(per_utt.metric == "mse_score") & (per_utt.speaker == "org")]["value"].mean()
    got = metrics[(metrics.run_id == p.key) & (metrics.metric == "mse_score")]["value"].iloc[0]
    assert got == pytest.approx(want, rel=1e-12)
    curves = pd.read_csv(out / "99_test" / "curves.csv")
    assert tuple(curves.columns) == CURVE_COLUMNS and curves["run_id"].nunique() == 4
    index = pd.read_csv(out / "index.csv")
    row = index[index.study == "99_test"].iloc[0]
    assert row["n_runs"] == 4 and row["seeds"] == "0;1" and row["arms"] == "org_l2;tts_hybrid"
    assert row["command"] == "python run_all.py --profile tiny --only 99"
    for p in res.planned:  # config.json is written by every run
        assert json.loads((p.run_dir / "config.json").read_text())["train"]["seed"] == p.seed


def test_rerun_skips_finished_runs(study, corpus):
    res, out = study
    stamps = {p.key: (p.run_dir / "last.pt").stat().st_mtime_ns for p in res.planned}
    again = run_study("99_test", [make_arm("org_l2"), make_arm("tts_hybrid")], PROFILE, corpus, seeds=(0, 1),
                      workers=1, results_dir=out, runs_dir=out / "runs", progress=False)
    assert set(again.runs["status"]) == {"cached"}
    assert {p.key: (p.run_dir / "last.pt").stat().st_mtime_ns for p in again.planned} == stamps
    pd.testing.assert_frame_equal(again.metrics, res.metrics)


def test_identical_arms_share_one_run(corpus, tmp_path):
    """org-only runs ignore the unaligned loss: differently named arms are one run."""
    from lib.studies.runner import plan_runs

    a = plan_runs([make_arm("org_l2"), make_arm("org_l2", label="voices_0", n_voices=3)], PROFILE, corpus,
                  seeds=(0,), runs_dir=tmp_path)
    b = plan_runs([make_arm("tts_l2"), make_arm("tts_hybrid")], PROFILE, corpus, seeds=(0,), runs_dir=tmp_path)
    assert a[0].key == a[1].key and b[0].key != b[1].key


def test_parallel_equals_serial(study, corpus, tmp_path):
    res, _ = study
    # Two runs in two spawned workers; the tts_hybrid seed-0 run must equal the serial one exactly.
    par = run_study("99_par", [make_arm("org_l2"), make_arm("tts_hybrid")], PROFILE, corpus, seeds=(0,),
                    workers=2, results_dir=tmp_path, runs_dir=tmp_path / "runs", progress=False)
    assert set(par.runs["status"]) == {"done"}
    key = par.planned[1].key
    serial = next(p for p in res.planned if p.key == key)  # the same configs hash to the same key
    a = pd.read_csv(serial.run_dir / "metrics.csv")
    b = pd.read_csv(par.planned[1].run_dir / "metrics.csv")
    np.testing.assert_array_equal(a["value"].to_numpy(), b["value"].to_numpy())
    np.testing.assert_array_equal(pd.read_csv(serial.run_dir / "curves.csv")["value"],
                                  pd.read_csv(par.planned[1].run_dir / "curves.csv")["value"])


def test_bad_run_is_listed_and_others_finish(corpus, tmp_path):
    arms = [make_arm("org_l2"), make_arm("tts_hybrid", label="no_features", feature="ppg")]
    with pytest.raises(StudyError, match="no_features"):
        run_study("99_bad", arms, PROFILE, corpus, seeds=(0,), workers=1, results_dir=tmp_path,
                  runs_dir=tmp_path / "runs", progress=False)
    runs = pd.read_csv(tmp_path / "99_bad" / "runs.csv")
    assert dict(zip(runs["arm"], runs["status"])) == {"org_l2": "done", "no_features": "failed"}


def test_summary_matches_numpy():
    rng = np.random.default_rng(0)
    rows = [{"run_id": f"{a}{s}", "arm": a, "seed": s, "split": "test_a", "speaker": "org", "reference": "labels",
             "metric": "mse_score", "value": float(rng.uniform())} for a in ("x", "y") for s in range(5)]
    df = pd.DataFrame(rows)
    summary = stats.summarize(df, metrics_names=("mse_score",))
    for arm in ("x", "y"):
        v = df[df.arm == arm]["value"].to_numpy()
        r = summary[summary.arm == arm].iloc[0]
        assert r["n_seeds"] == 5
        assert r["mean"] == pytest.approx(np.mean(v)) and r["std"] == pytest.approx(np.std(v, ddof=1))
    one = stats.summarize(df[df.seed == 0], metrics_names=("mse_score",))
    assert one["std"].isna().all()


def test_seed_spread_rule_and_improvement():
    assert stats.exceeds_spread(1.0, 0.1, 1.5, 0.2) is True  # gap 0.5 > 0.3
    assert stats.exceeds_spread(1.0, 0.3, 1.5, 0.3) is False  # gap 0.5 < 0.6
    assert stats.exceeds_spread(1.0, float("nan"), 2.0, 0.1) is None
    assert stats.relative_improvement(1.0, 0.83) == pytest.approx(0.17)
    assert stats.relative_improvement(0.5, 0.6, "jaw_open_corr") == pytest.approx(0.2)


def test_worth_table_compares_each_size_with_the_next_org_size():
    # Means and stds chosen so the answers are known by hand: hybrid@20 (0.9 ± 0.01)
    # beats org_l2@50 (1.0 ± 0.02) by 10 %, beyond the spread (0.1 > 0.03); l2@20
    # (1.05 ± 0.1) loses by 5 %, within it; nothing at 50 has a larger org size to meet.
    rows = []
    for arm, mean, std in [("org_l2@20", 1.2, 0.02), ("org_l2@50", 1.0, 0.02), ("tts_hybrid@20", 0.9, 0.01),
                           ("tts_l2@20", 1.05, 0.1), ("tts_hybrid@50", 0.8, 0.01), ("voices_1@20", 0.1, 0.01)]:
        for metric in ("mse_score", "dtw_score"):
            rows.append({"arm": arm, "metric": metric, "n_seeds": 3, "mean": mean, "std": std})
    from lib.studies.report import worth_table

    w = worth_table(pd.DataFrame(rows)).set_index("arm at n")
    assert sorted(w.index) == ["tts_hybrid@20", "tts_l2@20"]
    assert set(w["vs org_l2 at m"]) == {"org_l2@50"}
    assert w.at["tts_hybrid@20", "mse_score better by"] == "+10.0 %"
    assert w.at["tts_hybrid@20", "dtw_score beyond spread"] == "yes"
    assert w.at["tts_l2@20", "mse_score better by"] == "-5.0 %"
    assert w.at["tts_l2@20", "mse_score beyond spread"] == "no"


def test_convergence_line_names_the_truncated_arms():
    from lib.studies.report import convergence_line

    runs = pd.DataFrame({"arm": ["a", "a", "b"], "stopped_early": [True, True, False], "max_steps": [600] * 3})
    assert convergence_line(runs) == ("2 of 3 runs stopped early, on validation (step cap 600); the rest reached "
                                      "the cap, so these arms are truncated, not converged: b.")
    assert convergence_line(runs.assign(stopped_early=True)).startswith("3 of 3 runs stopped early")
    assert convergence_line(runs.drop(columns="stopped_early")) == ""


def test_readme_block_only_and_idempotent(study, tmp_path):
    _, out = study
    readme = tmp_path / "README.md"
    head, tail = "# Title\n\nhand-written text\n\n## Results\n", "\n## After\nmore text\n"
    readme.write_text(f"{head}{START}\nold generated text\n{END}{tail}")
    assert update_readme(readme, out) is True
    text = readme.read_text()
    assert text.startswith(head + START) and text.endswith(END + tail)
    assert "old generated text" not in text and "99_test" in text
    assert update_readme(readme, out) is False and readme.read_text() == text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError):
        update_readme(readme, out)
    assert readme.read_text() == "no markers\n"


def test_runs_table_says_whether_each_run_stopped_on_validation(study):
    _, out = study
    runs = pd.read_csv(out / "99_test" / "runs.csv")
    assert {"best_step", "steps_run", "max_steps", "stopped_early"} <= set(runs.columns)
    assert (runs["max_steps"] == PROFILE.max_steps).all()
    for r in runs.itertuples():
        curves = pd.read_csv(out / "99_test" / "curves.csv")
        last = curves[curves.run_id == r.run_id]["step"].max()
        assert r.steps_run == last  # the last evaluation is where the run ended
        assert bool(r.stopped_early) == (r.steps_run < r.max_steps)
        assert r.best_step <= r.steps_run


def test_runs_recorded_in_the_tables_survive_a_new_machine(study, corpus, tmp_path):
    """The committed tables are enough: with the run cache gone (a fresh clone on
    another machine), a rerun trains nothing and rewrites the same tables."""
    import shutil

    res, out = study
    moved = tmp_path / "results"
    shutil.copytree(out / "99_test", moved / "99_test")  # the tables only, not results/runs
    before = {n: (moved / "99_test" / f"{n}.csv").read_text() for n in ("metrics", "curves", "runs")}
    arms = [make_arm("org_l2"), make_arm("tts_hybrid")]
    again = run_study("99_test", arms, PROFILE, corpus, seeds=(0, 1), workers=1, results_dir=moved,
                      runs_dir=tmp_path / "empty_runs", progress=False)
    assert not (tmp_path / "empty_runs").exists() or not any((tmp_path / "empty_runs").iterdir())
    for n in ("metrics", "curves"):
        a = pd.read_csv(moved / "99_test" / f"{n}.csv").sort_values(list(pd.read_csv(moved / "99_test" / f"{n}.csv").columns))
        b = pd.read_csv(out / "99_test" / f"{n}.csv").sort_values(list(a.columns))
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert pd.read_csv(moved / "99_test" / "runs.csv")["status"].isin(["done", "cached"]).all()
    assert len(again.summary) and before["runs"].count("\n") == (moved / "99_test" / "runs.csv").read_text().count("\n")


def test_arm_max_utts_limits_an_arm_to_small_sizes_in_06_and_07():
    """default plans the oracle arm only up to 20 org utterances (budget); every other arm
    keeps every size, and a profile without limits plans the whole grid."""
    from lib.studies import data_arms
    from lib.studies.arms import tts_driven_arms

    default = study_profile("default")
    labels = {a.label for a in data_arms(default)} | {a.label for a in tts_driven_arms(default)}
    assert {"tts_oracle@5", "tts_oracle@20"} <= labels
    assert not {"tts_oracle@50", "tts_oracle@all"} & labels
    for arm in ("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid"):
        assert {f"{arm}@5", f"{arm}@20", f"{arm}@50", f"{arm}@all"} <= labels
    full = {a.label for a in data_arms(study_profile("full"))}
    assert {"tts_oracle@50", "tts_oracle@all"} <= full
    assert default.planned_at("tts_oracle", 20) and not default.planned_at("tts_oracle", None)
