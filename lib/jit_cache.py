"""Compile every cached numba function the worker processes use, once, in the parent.

Why: numba compiles on first call and writes the machine code to an on-disk cache
(``__pycache__`` beside the package, or ``NUMBA_CACHE_DIR``). Two processes that
compile the same function at the same moment both write its index and object
files; a worker that then loads the half-written file segfaults, and so does
every later process in that environment until the files are deleted (seen with
librosa's ``yin`` in the 2-worker corpus build). librosa also compiles a dozen
``guvectorize`` kernels at *import*, so two fresh workers importing it at once
race too.

The fix chosen here: the parent process, which is alone, compiles (or loads)
every cached function its workers will call, with the argument types they use,
before it starts them. The workers then only read complete cache files. The
alternatives were worse on this machine: a private ``NUMBA_CACHE_DIR`` per
process makes each of the builder's fresh per-speaker processes recompile
everything (tens of seconds each), and replacing librosa's YIN would change the
built corpus and so every committed result. ``tests/test_jit_cache.py`` checks
that after the warm-up a 2-worker build writes no cache file at all, so a new
cached function used by a worker cannot slip past this list unnoticed.
"""
from __future__ import annotations

import numpy as np

# What each kind of worker calls: the corpus builder (librosa: import + YIN), the
# feature extractor (librosa: import), the study runner (soft-DTW kernels, exact DTW).
GROUPS = ("librosa", "soft_dtw", "metrics")
_warm: set[str] = set()


def _librosa() -> None:
    import librosa  # noqa: F401 - the import compiles its eager guvectorize kernels

    from .corpus.rig_prosody import pitch_semitones

    # The builder's exact call (float32 audio, its frame and hop sizes): YIN's
    # parabolic interpolation is compiled lazily on first use.
    t = np.arange(4000) / 16000.0
    pitch_semitones((0.3 * np.sin(2 * np.pi * 140.0 * t)).astype(np.float32), 10)


def _soft_dtw() -> None:
    import torch

    from .soft_dtw.api import soft_dtw
    from .soft_dtw.cpu import forced_variant

    # Training runs float32; tests and references float64. The band is always passed
    # to the kernels as a float (-1 = none), so one call per dtype covers every signature;
    # both the parallel and the serial kernels (one-thread workers use the serial ones).
    for parallel in (True, False):
        for dtype in (torch.float32, torch.float64):
            g = torch.Generator().manual_seed(0)
            x = torch.rand(2, 6, 3, generator=g, dtype=dtype, requires_grad=True)
            y = torch.rand(2, 5, 3, generator=g, dtype=dtype)
            with forced_variant(parallel):
                soft_dtw(x, y, torch.tensor([6, 4]), torch.tensor([5, 3])).sum().backward()


def _metrics() -> None:
    from .metrics import exact_dtw

    exact_dtw(np.zeros((3, 2)), np.ones((4, 2)))


_WARMERS = {"librosa": _librosa, "soft_dtw": _soft_dtw, "metrics": _metrics}


def warm_numba_caches(*groups: str) -> list[str]:
    """Compile (or load) the cached numba functions of ``groups`` in this process,
    before any worker starts; each group once per process. Returns the groups warmed
    now. Call it in a parent, never concurrently in two processes."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown numba warm-up groups {unknown}; known: {GROUPS}")
    done = []
    for g in groups or GROUPS:
        if g not in _warm:
            _WARMERS[g]()
            _warm.add(g)
            done.append(g)
    return done
