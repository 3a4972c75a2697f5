#!/usr/bin/env python
"""Run the numbered notebooks headless with papermill, in order, for one profile.

    python run_all.py [--profile tiny|quick|default|paper] [--only 00 03 ...] [--force]
                      [--executor local|submitit --slurm_partition P --gpus_per_run N --max_parallel K
                       --timeout_min M --slurm_NAME VALUE ...]

Each notebook `notebooks/NN_verb_object.ipynb` runs with `profile` injected into
its `parameters` cell; the executed copy goes to `results/<profile>/NN_verb_object/ (only results/default/ is committed)`.
A notebook is skipped when its last run succeeded with the same inputs (its own
text, the profile, the code under lib/, and the runs of the notebooks before it).
The first failure stops the run, naming the notebook and the cell.
With ``--executor submitit`` the studies' runs (and notebook 02's extraction)
become submitit jobs: SLURM when ``srun`` is on PATH, else submitit's local
executor; results are the same as the local executor's (README, "Run on a cluster").
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
NOTEBOOKS = REPO / "notebooks"
# Same rule as lib.paths: T2A_RESULTS_DIR, when set, replaces results/.
RESULTS_ENV = "T2A_RESULTS_DIR"
RESULTS = Path(os.environ.get(RESULTS_ENV) or REPO / "results").resolve()
PROFILES = ("tiny", "quick", "default", "full", "paper")
STATE_FILE = ".run_state.json"


class NotebookRejected(Exception):
    pass


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def check_notebook(path: Path) -> None:
    """Refuse notebooks with logic in them: def/class anywhere, or not exactly one
    cell tagged `parameters`."""
    nb = json.loads(path.read_text())
    n_params = 0
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            n_params += 1
        # IPython magics are not Python: blank them before parsing.
        py = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())
        try:
            tree = ast.parse(py)
        except SyntaxError as e:
            raise NotebookRejected(f"{path.name} cell {i}: syntax error: {e}") from None
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                raise NotebookRejected(
                    f"{path.name} cell {i}: defines {kind} {node.name!r}; logic belongs in lib/")
    if n_params != 1:
        raise NotebookRejected(f"{path.name}: needs exactly one cell tagged 'parameters', found {n_params}")


def lib_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((REPO / "lib").rglob("*.py")):
        h.update(p.relative_to(REPO).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def input_digest(nb_path: Path, profile: str, lib: str, upstream: str) -> str:
    h = hashlib.sha256()
    for part in (nb_path.read_bytes(), profile.encode(), lib.encode(), upstream.encode()):
        h.update(part)
    return h.hexdigest()


def select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    if not only:
        return notebooks
    wanted = {o.zfill(2) for o in only}
    chosen = [p for p in notebooks if p.name[:2] in wanted]
    unknown = wanted - {p.name[:2] for p in chosen}
    if unknown:
        raise SystemExit(f"no notebook numbered {sorted(unknown)} in {NOTEBOOKS}")
    return chosen


def run(profile: str, only: list[str] | None, force: bool) -> int:
    import papermill as pm

    notebooks = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    lib = lib_digest()
    upstream = ""
    chosen = set(select(notebooks, only))
    for nb_path in notebooks:
        out_dir = RESULTS / profile / nb_path.stem  # each profile has its own folder (lib.paths)
        state_path = out_dir / STATE_FILE
        digest = input_digest(nb_path, profile, lib, upstream)
        upstream = digest  # later notebooks depend on this one's inputs
        if nb_path not in chosen:
            continue
        try:
            check_notebook(nb_path)
        except NotebookRejected as e:
            print(f"REFUSED {e}", file=sys.stderr)
            return 2
        out_nb = out_dir / nb_path.name
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        if not force and state.get("digest") == digest and state.get("status") == "ok" and out_nb.is_file():
            print(f"skip  {nb_path.name} (up to date for profile {profile})")
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"run   {nb_path.name} (profile {profile}) -> {out_nb}", flush=True)
        t0 = time.time()
        try:
            pm.execute_notebook(
                str(nb_path), str(out_nb), parameters={"profile": profile}, cwd=str(NOTEBOOKS),
                kernel_name="python3", language="python", progress_bar=True,
            )
        except pm.PapermillExecutionError as e:
            state_path.write_text(json.dumps({"digest": digest, "status": "failed"}))
            # papermill counts the injected-parameters cell; cell_index is in the executed copy.
            print(f"FAILED {nb_path.name} cell {e.cell_index} (execution count {e.exec_count}): "
                  f"{e.ename}: {e.evalue}\n  executed copy with the traceback: {out_nb}", file=sys.stderr)
            return 1
        wall = time.time() - t0
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"digest": digest, "status": "ok", "profile": profile, "wall_s": round(wall, 1)}))
        tmp.replace(state_path)
        print(f"done  {nb_path.name} in {wall:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=PROFILES)
    ap.add_argument("--only", nargs="+", metavar="NN", help="run only these notebook numbers")
    ap.add_argument("--force", action="store_true", help="rerun even if up to date")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="write executed notebooks and results under DIR/<profile>/ instead of results/<profile>/")
    from lib.cluster import EXECUTOR_ENV, OPTIONS_ENV, add_submitit_arguments, options_from_args

    add_submitit_arguments(ap, unit="run")  # --executor submitit --slurm_partition P --gpus_per_run N ...
    a, extra = ap.parse_known_args(argv)
    try:
        options = options_from_args(a, extra)  # also rejects stray arguments
    except ValueError as e:
        ap.error(str(e))
    if a.executor:
        os.environ[EXECUTOR_ENV] = a.executor  # read by lib.studies / lib.features in the notebook kernels
    if (a.executor or os.environ.get(EXECUTOR_ENV)) == "submitit":
        os.environ[OPTIONS_ENV] = options.to_env()
    if a.results_dir is not None:
        global RESULTS
        RESULTS = a.results_dir.resolve()
        os.environ[RESULTS_ENV] = str(RESULTS)  # read by lib.paths in the notebook kernels
    return run(a.profile, a.only, a.force)


if __name__ == "__main__":
    sys.exit(main())
