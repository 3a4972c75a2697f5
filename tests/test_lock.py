"""The environment is the lock: installed versions equal requirements.lock, the
lock covers every hand-written requirement, and environment.yml installs it."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_lock", REPO / "scripts" / "check_lock.py")
check_lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_lock)


def test_installed_versions_equal_the_lock():
    found = check_lock.problems()
    assert not found, "the venv differs from requirements.lock:\n" + "\n".join(found)


def test_the_checker_names_each_kind_of_drift():
    lock = check_lock.read_pins(check_lock.LOCK)
    have = dict(lock)
    assert "numpy" in have and "torch" in have
    have["numpy"] = "0.0.1"  # another version
    del have["torch"]  # missing
    have["left-pad"] = "1.0"  # not in the lock
    found = "\n".join(check_lock.problems(have))
    assert f"numpy: installed 0.0.1, locked {lock['numpy']}" in found
    assert f"torch=={lock['torch']} is locked but not installed" in found
    assert "left-pad==1.0 is installed but not in the lock" in found


def test_every_pin_is_exact_and_torch_is_the_cpu_build():
    lock = check_lock.read_pins(check_lock.LOCK)
    assert lock["torch"].endswith("+cpu"), lock["torch"]
    assert not [n for n in lock if n.startswith("nvidia-")], "a CUDA build's dependencies are locked"
    with pytest.raises(ValueError, match="not an exact pin"):
        bad = REPO / "requirements.txt"  # ranges are for the human files, never the lock
        check_lock.read_pins(bad)


def test_environment_yml_installs_the_lock():
    import yaml

    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_part = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip_part == ["-r requirements.lock"]
    assert f"pip={check_lock.pip_pin()}" in deps
