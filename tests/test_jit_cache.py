"""No two processes compile the same numba function into the same cache at once.

The corpus build used to crash (segfault, then a hang) when its two workers
compiled librosa's numba functions into the same cache at the same moment. The
parent now compiles them alone first (lib/jit_cache.py). These tests start from
an empty cache they own (NUMBA_CACHE_DIR in a temporary folder) and check the
stronger property that makes the race impossible: after the parent's warm-up,
the 2-worker build writes no cache file at all — and it does so build after
build, each from a cold cache.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_corpus import installed_voices  # tests/tiny_corpus.py

REPO = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter so that numba reads NUMBA_CACHE_DIR at import.
_SCRIPT = r"""
import json, sys
from pathlib import Path
import lib.jit_cache as jc

def snapshot(d):
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(d).rglob("*") if p.is_file()}

cache, root = sys.argv[1], sys.argv[2]
seen = {}
real = jc.warm_numba_caches
def spy(*groups):  # the builder's own warm-up call, then a snapshot before any worker starts
    done = real(*groups)
    seen["groups"], seen["before"] = list(groups), snapshot(cache)
    return done
jc.warm_numba_caches = spy
from lib.corpus.builder import build_corpus
from lib.corpus.profiles import profile_config
summary = build_corpus(profile_config("tiny", workers=2), root)
print(json.dumps({**seen, "after": snapshot(cache), "failures": summary["failures"], "n_clips": summary["n_clips"]}))
"""




def test_cold_cache_two_worker_builds_never_compile_in_a_worker(tmp_path):
    if not {"piper:joe", "flite:slt"} <= set(installed_voices()):
        pytest.skip("the tiny profile's voices (piper joe, flite slt) are not installed")
    for attempt in range(2):  # two builds in a row, each from an empty cache
        cache = tmp_path / f"numba_cache_{attempt}"
        cache.mkdir()
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        r = subprocess.run([sys.executable, "-c", _SCRIPT, str(cache), str(tmp_path / f"corpus_{attempt}")],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
        assert r.returncode == 0, f"build {attempt} crashed (rc {r.returncode}):\n{r.stderr[-3000:]}"
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert not out["failures"] and out["n_clips"] == 24, out
        assert "before" in out, "the builder started its workers without warming the numba caches"
        assert any(k.endswith(".nbi") for k in out["before"]), "the warm-up compiled nothing into the cache"
        written = sorted(k for k in out["after"] if out["after"][k] != out["before"].get(k))
        assert not written, f"workers wrote numba cache files (a race is possible): {written}"


def test_unknown_warm_up_group_is_an_error():
    from lib.jit_cache import warm_numba_caches

    with pytest.raises(ValueError, match="unknown numba warm-up groups"):
        warm_numba_caches("nope")
