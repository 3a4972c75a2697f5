"""run_all.py: executes notebooks headless, refuses logic in notebooks, resumes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import run_all  # noqa: E402


def _nb(tmp_path, sources, tagged=0):
    import nbformat as nbf

    nb = nbf.v4.new_notebook()
    nb.cells = [nbf.v4.new_code_cell(s, metadata={"tags": ["parameters"]} if i == tagged else {})
                for i, s in enumerate(sources)]
    p = tmp_path / "99_x.ipynb"
    nbf.write(nb, p)
    return p


def test_refuses_def_and_class(tmp_path):
    with pytest.raises(run_all.NotebookRejected, match="defines function 'f'"):
        run_all.check_notebook(_nb(tmp_path, ["profile = 'quick'", "def f():\n    pass"]))
    with pytest.raises(run_all.NotebookRejected, match="defines class 'K'"):
        run_all.check_notebook(_nb(tmp_path, ["profile = 'quick'", "%matplotlib inline\nclass K: pass"]))
    with pytest.raises(run_all.NotebookRejected, match="exactly one cell tagged"):
        run_all.check_notebook(_nb(tmp_path, ["x = 1"], tagged=5))
    run_all.check_notebook(_nb(tmp_path, ["profile = 'quick'", "%matplotlib inline\nprint(1)"]))


def test_committed_notebooks_are_clean():
    for p in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        run_all.check_notebook(p)
        nb = json.loads(p.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", p.name
        for c in nb["cells"]:
            if c["cell_type"] == "code":
                assert not c.get("outputs") and c.get("execution_count") is None, f"{p.name}: outputs not stripped"


def test_run_notebook_00_tiny_then_skip(t2a_demo, tmp_path):
    # Without a built corpus, notebook 00 reads the shared sample data (its default root).
    # --results-dir keeps the committed results/ untouched; the tiny profile's outputs
    # go to its own folder below it.
    cmd = [sys.executable, str(REPO / "run_all.py"), "--profile", "tiny", "--only", "00",
           "--results-dir", str(tmp_path / "results")]
    before = (REPO / "results/default/00_inspect_data/00_inspect_data.ipynb").read_bytes()
    first = subprocess.run(cmd + ["--force"], capture_output=True, text=True, cwd=REPO)
    assert first.returncode == 0, first.stdout + first.stderr
    out = tmp_path / "results/tiny/00_inspect_data"
    assert (out / "00_inspect_data.ipynb").is_file() and (out / "summary.csv").is_file()
    assert (out / "utterance.png").stat().st_size > 10_000
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert again.returncode == 0 and "skip  00_inspect_data" in again.stdout
    assert (REPO / "results/default/00_inspect_data/00_inspect_data.ipynb").read_bytes() == before
    assert not (tmp_path / "results/default").exists()


def test_failure_names_notebook_and_cell(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _nb(nbdir, ["profile = 'quick'", "x = 1", "raise RuntimeError('boom')"]).rename(nbdir / "07_fail.ipynb")
    monkeypatch.setattr(run_all, "NOTEBOOKS", nbdir)
    monkeypatch.setattr(run_all, "RESULTS", tmp_path / "results")
    import io as _io
    from contextlib import redirect_stderr

    err = _io.StringIO()
    with redirect_stderr(err):
        rc = run_all.run("tiny", None, force=False)
    assert rc == 1
    assert "FAILED 07_fail.ipynb cell" in err.getvalue() and "boom" in err.getvalue()


def test_only_the_reference_profile_results_are_tracked():
    """Running any other profile (make reproduce: quick) can never dirty the tree:
    its folder under results/ is ignored, the reference profile's is not."""
    from lib import paths

    assert paths.profile_results_dir("quick") == paths.RESULTS_DIR / "quick"
    probe = ["results/quick/06_ablation_data/metrics.csv", "results/tiny/00_inspect_data/x.png",
             "results/paper/index.csv", "results/runs/abc/last.pt"]
    tracked = [f"results/{p}/06_ablation_data/metrics.csv" for p in paths.TRACKED_PROFILES]
    assert paths.REFERENCE_PROFILE in paths.TRACKED_PROFILES
    r = subprocess.run(["git", "check-ignore", "--no-index", *probe, *tracked], capture_output=True, text=True,
                       cwd=REPO)
    ignored = set(r.stdout.split())
    assert ignored == set(probe), ignored
