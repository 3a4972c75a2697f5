#!/usr/bin/env python3
"""Compare this interpreter's installed packages with requirements.lock.

`python scripts/check_lock.py` prints every difference and exits 1 if there is
one: a package whose version differs from its pin, one the lock has and the
venv lacks, or one the venv has and the lock does not know. It also checks the
lock against the human-edited requirements*.txt (every requirement is pinned, at
a version its specifier admits), so a dependency added by hand but not locked
is an error too. Run at the end of `make` set-up and by tests/test_lock.py.

Outside the lock by design: the project itself (editable), pip (pinned in the
Makefile), and the --no-deps packages of requirements-nodeps.txt (pinned there;
each is optional, fairseq is only installed by `make test`).
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
NODEPS = REPO / "requirements-nodeps.txt"
HUMAN = (REPO / "requirements.txt", REPO / "requirements-test.txt")
PROJECT = "t2a-toolkit"
PIP_PIN_RE = re.compile(r"^PIP_VERSION\s*:=\s*(\S+)", re.M)


def read_pins(path: Path) -> dict[str, str]:
    """name -> exact version of every `name==version` line (comments and blanks skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        if len(spec) != 1 or spec[0].operator != "==":
            raise ValueError(f"{path}: {line!r} is not an exact pin (name==version)")
        pins[canonicalize_name(req.name)] = spec[0].version
    return pins


def read_requirements(path: Path) -> list[Requirement]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(Requirement(line))
    return out


def installed() -> dict[str, str]:
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def pip_pin() -> str | None:
    m = PIP_PIN_RE.search((REPO / "Makefile").read_text())
    return m.group(1) if m else None


def problems(have: dict[str, str] | None = None) -> list[str]:
    """Every way the environment and the lock files disagree (empty: they agree)."""
    have = installed() if have is None else have
    lock, nodeps = read_pins(LOCK), read_pins(NODEPS)
    out = []
    for path in HUMAN:
        for req in read_requirements(path):
            name = canonicalize_name(req.name)
            if name not in lock:
                out.append(f"{path.name}: {req.name} is not in requirements.lock (run `make lock`)")
            elif not req.specifier.contains(Version(lock[name]), prereleases=True):
                out.append(f"{path.name}: {req} but the lock pins {lock[name]} (run `make lock`)")
    for name in sorted(set(lock) & set(nodeps)):
        out.append(f"{name} is both locked and installed --no-deps")
    for name, version in sorted(lock.items()):
        if name not in have:
            out.append(f"{name}=={version} is locked but not installed")
        elif Version(have[name]) != Version(version):
            out.append(f"{name}: installed {have[name]}, locked {version}")
    for name, version in sorted(nodeps.items()):
        if name in have and Version(have[name]) != Version(version):
            out.append(f"{name}: installed {have[name]}, pinned {version} in {NODEPS.name}")
    want_pip = pip_pin()
    if "pip" in have and want_pip and Version(have["pip"]) != Version(want_pip):
        out.append(f"pip: installed {have['pip']}, the Makefile pins {want_pip}")
    known = set(lock) | set(nodeps) | {canonicalize_name(PROJECT), "pip"}
    for name in sorted(set(have) - known):
        out.append(f"{name}=={have[name]} is installed but not in the lock (add it to requirements*.txt, "
                   "run `make lock`, or rebuild the venv: rm -rf .venv)")
    return out


def main() -> int:
    found = problems()
    for p in found:
        print(f"lock: {p}", file=sys.stderr)
    if not found:
        print(f"lock: the environment equals {LOCK.name} ({len(read_pins(LOCK))} packages)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
