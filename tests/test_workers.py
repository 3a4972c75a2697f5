"""A worker process that dies is a named error within seconds, never a wait, and
what was finished before stays on disk (issue: the corpus build hung forever
when a worker segfaulted). The test hook T2A_TEST_KILL_TASK makes the worker
about to run the named task send itself SIGKILL, as the OOM killer would."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_corpus import installed_voices  # tests/tiny_corpus.py

REPO = Path(__file__).resolve().parent.parent




def _build(root: Path, kill: str | None, timeout_s: float = 90) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.pop("T2A_TEST_KILL_TASK", None)
    if kill:
        env["T2A_TEST_KILL_TASK"] = kill
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "lib", "build-corpus", "--profile", "tiny", "--root_dir", str(root),
                        "--workers", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    return r, time.monotonic() - t0


def test_corpus_build_names_the_clip_whose_worker_died_and_resumes(tmp_path):
    voices = installed_voices()
    if "piper:joe" not in voices or "flite:slt" not in voices:
        pytest.skip("the tiny profile's voices (piper joe, flite slt) are not installed")
    root = tmp_path / "c"
    r, wall_s = _build(root, kill="org/train/u0003")
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert wall_s < 60, f"a dead worker took {wall_s:.0f} s to be noticed"
    err = r.stderr
    assert "worker process died" in err and "org/train/u0003" in err, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    org = root / "wavs" / "org" / "train"
    # The org worker made u0001 and u0002 before it died on u0003: they are kept.
    assert (org / "u0001.wav").is_file() and (org / "u0002.wav").is_file()
    assert not (org / "u0003.wav").exists()
    # A rerun without the hook finishes the corpus from there.
    r2, _ = _build(root, kill=None)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "0 already there" not in r2.stdout, r2.stdout
    assert len(list((root / "wavs").glob("*/*/*.wav"))) == 24


def test_espeak_child_that_dies_is_an_engine_error_and_the_next_call_works(monkeypatch):
    if not any(v.startswith("espeak:") for v in installed_voices()):
        pytest.skip("espeak-ng not installed")
    from lib.corpus.engines import espeak
    from lib.corpus.engines.base import EngineError

    if espeak._worker["pool"] is not None:  # a child started by an earlier test never saw the hook
        espeak._worker["pool"].shutdown()
        espeak._worker["pool"] = None
    monkeypatch.setenv("T2A_TEST_KILL_TASK", "espeak:*doomed*")  # read by the child spawned next
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="child process died.*doomed sentence"):
        espeak.raw_phonemes("en-us", 1.0, "a doomed sentence")
    assert time.monotonic() - t0 < 60
    wav, sr, events = espeak.raw_phonemes("en-us", 1.0, "a fine sentence")
    assert len(wav) > sr // 10 and events


ORPHAN_SCRIPT = '''
import multiprocessing, os, sys, time
sys.path.insert(0, {repo!r})
from lib.pool import run_tasks

def task(pid_file):
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(120)  # far longer than the test waits

if __name__ == "__main__":
    run_tasks(task, [("sleeper", ({pid_file!r},))], 1, multiprocessing.get_context("spawn"), lambda o: None)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; /proc says which.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_pool_worker_stops_when_its_parent_is_killed(tmp_path):
    pid_file = tmp_path / "worker.pid"
    script = tmp_path / "orphan.py"
    script.write_text(ORPHAN_SCRIPT.format(repo=str(REPO), pid_file=str(pid_file)))
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the worker never started"
            assert parent.poll() is None, "the pool's process exited early"
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.kill()  # SIGKILL: no clean-up code runs in the parent
        parent.wait()
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the orphaned worker kept running its task"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pid_file.is_file() and pid_file.read_text().strip() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), 9)
