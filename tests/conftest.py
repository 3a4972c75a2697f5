"""Shared fixtures. Tests run on CPU only and must stay fast."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
SHARED_DEMO = REPO.parent / "shared" / "t2a_demo"


@pytest.fixture(scope="module")
def restore_torch_globals():
    """lib.train sets torch's thread count and deterministic mode; leave other tests as found."""
    import torch

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


@pytest.fixture(scope="session")
def t2a_demo() -> Path:
    """The real sample data in the original layout; tests using it skip without it."""
    if not (SHARED_DEMO / "wavs").is_dir():
        pytest.skip(f"{SHARED_DEMO} not present")
    return SHARED_DEMO
