"""Executors of studies and extraction: dead workers are named, submitit equals local, jobs resume.

The submitit tests use submitit's local executor (the same pickling, job
folders and requeue path as on SLURM) and skip when submitit is missing. Every
result is compared with the local executor's on the same configs, never with
copied numbers.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib.cluster import SubmititOptions
from lib.features import extract
from lib.features.mfcc import mfcc
from lib.io import read_audio
from lib.pool import KILL_ENV
from lib.studies import StudyError, make_arm, run_study, study_profile
from lib.studies.executors import SIGNAL_ENV
from lib.studies.runner import plan_runs
from tests.tiny_corpus import make_tiny_corpus

# 6 steps, checkpoints at every evaluation (steps 2, 4, 6): a job killed at its first
# last.pt has work left to resume.
PROFILE = study_profile("tiny", max_steps=6, eval_every_steps=2, patience_evals=5)
ARMS = [make_arm("org_l2"), make_arm("tts_hybrid")]
BAD_ARM = make_arm("tts_hybrid", label="no_features", feature="ppg")  # the tiny corpus has no PPG: raises


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_tiny_corpus(tmp_path_factory.mktemp("tiny") / "corpus")


@pytest.fixture(scope="module")
def local_study(corpus, tmp_path_factory):
    """The reference: ARMS run serially in this process by the local executor."""
    out = tmp_path_factory.mktemp("local")
    return run_study("99_local", ARMS, PROFILE, corpus, seeds=(0,), workers=1, results_dir=out,
                     runs_dir=out / "runs", progress=False, executor="local")


def _run_values(run_dir: Path, name: str) -> np.ndarray:
    return pd.read_csv(run_dir / name)["value"].to_numpy()


def test_local_pool_names_the_run_whose_worker_died(corpus, local_study, tmp_path, monkeypatch):
    keys = {p.arm.label: p.key for p in local_study.planned}
    monkeypatch.setenv(KILL_ENV, keys["org_l2"])  # that run's worker SIGKILLs itself as it starts it
    t0 = time.monotonic()
    with pytest.raises(StudyError) as err:
        run_study("99_killed", ARMS, PROFILE, corpus, seeds=(0,), workers=2, results_dir=tmp_path,
                  runs_dir=tmp_path / "runs", progress=False, executor="local")
    assert time.monotonic() - t0 < 60
    message = str(err.value)
    assert keys["org_l2"] in message and "worker process died" in message and keys["tts_hybrid"] not in message
    runs = pd.read_csv(tmp_path / "99_killed" / "runs.csv")
    assert dict(zip(runs["arm"], runs["status"])) == {"org_l2": "failed", "tts_hybrid": "done"}
    # The other run, stopped with the broken pool or not, finished in a fresh pool, with the local numbers.
    ref = next(p for p in local_study.planned if p.arm.label == "tts_hybrid").run_dir
    done = tmp_path / "runs" / keys["tts_hybrid"]
    np.testing.assert_array_equal(_run_values(done, "metrics.csv"), _run_values(ref, "metrics.csv"))


def test_extraction_pool_names_the_file_whose_worker_died(corpus, tmp_path, monkeypatch, capsys):
    root = tmp_path / "copy"
    shutil.copytree(corpus / "wavs", root / "wavs")
    victim = root / "wavs" / "org" / "train" / "u003.wav"
    monkeypatch.setenv(KILL_ENV, str(victim))
    t0 = time.monotonic()
    rc = extract.cli_main(["--root_dir", str(root), "--feature", "mfcc", "--workers", "2"])
    assert time.monotonic() - t0 < 60
    out = capsys.readouterr().out
    assert rc == 1 and f"FAILED {victim}: worker process died" in out
    wavs = [w for _s, _p, w in extract.find_wavs(root)]
    written = [w for w in wavs if extract.feature_path(root, w.parts[-3], "mfcc", w.parts[-2], w.stem).exists()]
    assert sorted(written) == sorted(w for w in wavs if w != victim)  # every other file was written
    monkeypatch.delenv(KILL_ENV)
    again = extract.extract_corpus(root, "mfcc", workers=1, progress=False)
    assert (again.written, again.skipped, again.failed) == (1, len(wavs) - 1, [])


# ----------------------------------------------------------------------------- submitit (local executor)
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None, reason="submitit not installed")
OPTIONS = SubmititOptions(cluster="local", max_parallel=2, poll_s=0.2, timeout_min=10)


@needs_submitit
def test_submitit_study_equals_local_resumes_and_lists_failures(corpus, local_study, tmp_path, monkeypatch):
    keys = {p.arm.label: p.key for p in plan_runs(ARMS + [BAD_ARM], PROFILE, corpus, seeds=(0,))}
    # org_l2's job is killed (SIGKILL) at its first checkpoint and must be resubmitted; tts_hybrid's job
    # gets submitit's preemption signal (SIGUSR2) there and must be requeued by submitit itself.
    monkeypatch.setenv(SIGNAL_ENV, f"{keys['org_l2']}:KILL,{keys['tts_hybrid']}:USR2")
    runs_dir = tmp_path / "runs"
    with pytest.raises(StudyError) as err:
        run_study("99_submitit", ARMS + [BAD_ARM], PROFILE, corpus, seeds=(0,), results_dir=tmp_path,
                  runs_dir=runs_dir, progress=False, executor="submitit", submitit=OPTIONS)
    message = str(err.value)
    assert "1 of 3 runs" in message and "no_features" in message
    log = Path(message.split("(log: ")[1].split(")")[0])
    assert log.is_file() and log.parent == runs_dir / "_submitit" / "99_submitit"
    runs = pd.read_csv(tmp_path / "99_submitit" / "runs.csv")
    assert dict(zip(runs["arm"], runs["status"])) == {"org_l2": "done", "tts_hybrid": "done", "no_features": "failed"}

    for arm in ("org_l2", "tts_hybrid"):
        ref = next(p for p in local_study.planned if p.arm.label == arm).run_dir
        run_dir = runs_dir / keys[arm]
        assert (run_dir / ".test_signal_sent").exists()  # the hook fired: the job really was interrupted
        job = json.loads((run_dir / "job.json").read_text())
        assert job["attempt"] == (2 if arm == "org_l2" else 1)  # resubmitted by us / requeued by submitit
        stdout = Path(job["stdout"]).read_text()
        assert f"run {keys[arm]}: resuming from" in stdout
        # CPU jobs stay pinned to their one core after soft-DTW started numba's pool.
        assert f"run {keys[arm]}: done; threads at the end: torch 1, numba 1" in stdout
        for name in ("metrics.csv", "curves.csv"):  # resumed runs end with the uninterrupted numbers
            np.testing.assert_array_equal(_run_values(run_dir, name), _run_values(ref, name))
    study = pd.read_csv(tmp_path / "99_submitit" / "metrics.csv")
    want = local_study.metrics
    got = study[study.arm.isin(want.arm.unique())].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_exact=True)

    # A rerun submits nothing for finished runs.
    monkeypatch.delenv(SIGNAL_ENV)
    again = run_study("99_submitit", ARMS, PROFILE, corpus, seeds=(0,), results_dir=tmp_path, runs_dir=runs_dir,
                      progress=False, executor="submitit", submitit=OPTIONS)
    assert set(again.runs["status"]) == {"cached"}


def test_options_from_command_line_and_env(monkeypatch):
    import argparse

    from lib.cluster import OPTIONS_ENV, add_submitit_arguments, options_from_args

    ap = argparse.ArgumentParser()
    add_submitit_arguments(ap, unit="run")
    args, extra = ap.parse_known_args(["--gpus_per_run", "1", "--slurm_partition", "gpu", "--max_parallel", "8",
                                       "--slurm_account", "lab", "--slurm_exclude=node3",
                                       "--slurm_setup", "module load cuda", "--slurm_setup=echo hi"])
    monkeypatch.setenv(OPTIONS_ENV, SubmititOptions(timeout_min=30).to_env())
    o = options_from_args(args, extra)
    assert (o.gpus_per_job, o.slurm_partition, o.max_parallel, o.timeout_min) == (1, "gpu", 8, 30)
    assert o.slurm == {"account": "lab", "exclude": "node3", "setup": ["module load cuda", "echo hi"]}
    assert SubmititOptions.from_env() == SubmititOptions(timeout_min=30)
    with pytest.raises(SystemExit, match="unrecognized"):
        options_from_args(args, ["--bogus", "1"])
    monkeypatch.setenv(OPTIONS_ENV, '{"nope": 1}')
    with pytest.raises(ValueError, match="nope"):
        SubmititOptions.from_env()


@needs_submitit
def test_slurm_job_array_script(tmp_path, monkeypatch):
    """Without a cluster: fake srun/sbatch on PATH, and read the sbatch script submitit writes for a study."""
    from lib.cluster import make_executor

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\nfor a; do last=$a; done\ncp "$last" {tmp_path}/script.sh\n'
                                    'echo "Submitted batch job 4242"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    opts = SubmititOptions(slurm_partition="gpu", gpus_per_job=1, cpus_per_job=4, timeout_min=90, max_parallel=2,
                           mem_gb=32, slurm={"account": "lab"})
    ex = make_executor(opts, tmp_path / "logs", "t2a-06")
    assert ex.cluster == "slurm"  # picked because srun is on PATH
    with ex.batch():
        jobs = [ex.submit(print, i) for i in range(3)]
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1", "4242_2"]
    script = (tmp_path / "script.sh").read_text()
    for line in ("--array=0-2%2", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4", "--time=90",
                 "--mem=32GB", "--account=lab", "--job-name=t2a-06", f"--error={tmp_path}/logs/%A_%a_0_log.err",
                 "--signal=USR2@"):
        assert f"#SBATCH {line}" in script, line
    with pytest.raises(NameError, match="slurm_acount"):  # a misspelt passthrough fails before submitting
        make_executor(SubmititOptions(slurm={"acount": "lab"}), tmp_path / "logs", "x")


@needs_submitit
def test_run_jobs_lists_a_job_that_raises_with_its_log(tmp_path):
    from lib.cluster import run_jobs

    outcomes = {}
    # Builtins: the jobs need no import of the toolkit, so this costs two Python start-ups.
    tasks = [("fine", abs, (-3,)), ("broken", int, ("not a number",))]
    cluster = run_jobs(tasks, OPTIONS, tmp_path / "logs", lambda o: outcomes.__setitem__(o.name, o))
    assert cluster == "local"
    assert outcomes["fine"].result == 3 and outcomes["fine"].error is None
    bad = outcomes["broken"]
    assert bad.result is None and "ValueError: invalid literal for int()" in bad.error and bad.attempts == 1
    assert "ValueError" in Path(bad.log).read_text()  # the log named in the outcome holds the traceback


@needs_submitit
def test_submitit_shards_name_bad_and_lost_files_then_equal_in_process_extraction(corpus, tmp_path, monkeypatch,
                                                                                 capsys):
    root = tmp_path / "copy"
    shutil.copytree(corpus / "wavs", root / "wavs")
    bad = root / "wavs" / "tts1" / "test_a" / "zz_bad.wav"
    bad.write_bytes(b"not a wav")
    wavs = [w for _s, _p, w in extract.find_wavs(root)]
    k = 1 - wavs.index(bad) % 2  # shards are interleaved (files k, k+2, ...): kill the shard without the bad file
    shard = wavs[k::2]
    victim = shard[len(shard) // 2]  # its job dies in the middle of its list
    lost = shard[len(shard) // 2:]  # the victim and the files after it
    good = [w for w in wavs if w != bad]
    monkeypatch.setenv(KILL_ENV, str(victim))
    argv = ["--root_dir", str(root), "--feature", "mfcc", "--executor", "submitit", "--cluster", "local",
            "--shards", "2", "--workers", "1"]
    assert extract.cli_main(argv + ["--retries", "0"]) == 1
    out = capsys.readouterr().out
    assert f"{len(good) - len(lost)} written" in out and f"{len(lost) + 1} failed" in out
    for w in lost:
        assert f"FAILED {w}: not extracted: shard {k + 1}/2 (job " in out
    assert "ended without a result" in out and "_log.err)" in out
    assert f"FAILED {bad}:" in out and "unreadable audio" in out  # the other shard's bad file, by path
    # Without the kill, the rerun does only the lost files and still names the bad one.
    monkeypatch.delenv(KILL_ENV)
    assert extract.cli_main(argv) == 1
    assert f"{len(lost)} written, {len(good) - len(lost)} up to date, 1 failed" in capsys.readouterr().out
    for wav in good:  # shards write exactly what an in-process extraction computes
        got = extract.load_features(root, wav.parts[-3], "mfcc", wav.parts[-2], wav.stem)
        np.testing.assert_array_equal(got, mfcc(read_audio(wav)))
    assert len(list((root / "wav_features" / "_submitit" / "mfcc").glob("*_log.err"))) == 4
