#!/usr/bin/env python
"""Write README.md's generated "Results" block from the committed tables of the
reference profile, results/default/*.csv (`make readme-results`; nothing else
rewrites the README).

    python scripts/make_results_readme.py [--readme README.md] [--results results/default]

Only the text between `<!-- results:start -->` and `<!-- results:end -->` is
replaced (the rest of the README is written by hand); a second run changes nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from lib.paths import REFERENCE_PROFILE  # noqa: E402
from lib.studies.report import update_readme  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readme", default=str(REPO / "README.md"))
    ap.add_argument("--results", default=str(REPO / "results" / REFERENCE_PROFILE))
    a = ap.parse_args(argv)
    try:
        changed = update_readme(a.readme, a.results)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.readme}: results block {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
