"""lib.threads: one call pins torch, numba and the OpenMP/MKL environment of a process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter: pinning this test process would change the other tests' thread counts.
CHILD = r"""
import json, os, subprocess, sys
import numba, torch  # loaded before the pin, with the machine's defaults
from lib.threads import pin_threads, thread_counts, usable_cpus
n = pin_threads()
child = subprocess.run([sys.executable, "-c", "import os, torch; print(os.environ['NUMBA_NUM_THREADS'], torch.get_num_threads())"],
                       capture_output=True, text=True, check=True).stdout.split()
print(json.dumps({"usable": usable_cpus(), "n": n, "torch": torch.get_num_threads(), "numba": numba.get_num_threads(),
                  "omp": os.environ["OMP_NUM_THREADS"], "child": child, "counts": thread_counts()}))
"""


def _child(env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **env}, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pin_threads_follows_slurm_allocation():
    got = _child({"SLURM_CPUS_PER_TASK": "1", "NUMBA_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    assert got["usable"] == got["n"] == got["torch"] == got["numba"] == 1
    # Children start pinned too (OMP/MKL: torch's 1 thread); numba had sized its pool (2)
    # before the pin, so NUMBA_NUM_THREADS stays at that size in this process (numba
    # raises at its next config reload otherwise) and only its active count drops to 1.
    assert got["omp"] == "1" and got["child"] == ["2", "1"]
    assert got["counts"] == "torch 1, numba 1"


def test_pin_threads_defaults_to_affinity_mask():
    env = {k: v for k, v in os.environ.items() if k != "SLURM_CPUS_PER_TASK"}
    cores = len(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", "from lib.threads import usable_cpus; print(usable_cpus())"],
                         capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert int(out.stdout) == cores


def test_pin_threads_rejects_nonsense():
    from lib.threads import pin_threads

    with pytest.raises(ValueError, match="at least one thread"):
        pin_threads(-1)
