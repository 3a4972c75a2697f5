#!/usr/bin/env python
"""Training throughput: label frames per second per core, every arm in fresh
processes, in alternating order, optionally against another commit.

    python benchmarks/bench_train.py [--root_dir data/corpus/default] [--compare REV]
        [--busy] [--rounds 2] [--steps 15 75] [--record]

Each measurement is one real `python -m lib train` process (the same command
line for every code version, so data loading, collation, the loss and the
optimiser all count), run twice, for the short and the long step budget with
no evaluation in between; the difference of the wall times over the
difference of the steps is the time of one step, free of start-up costs. Label
frames per step = batch size x the mean label frames of org's training clips
(the org-share sampler draws org and TTS clips, whose targets are org's labels,
uniformly over utterances). Per core: divided by the threads the run was given
(`--threads 1`: the studies' setting, one run per core).

Arms: `l2` (org clips only) and `hybrid` (L2 on org, soft-DTW on TTS clips,
every training voice). `--compare REV` runs the same commands against REV's
`lib/` (a git worktree), alternating which version goes first each round;
`--busy` repeats everything with one core kept busy by another process (a
spinning loop), the case where numba's runtime used to slow torch 2.8x.
Writes benchmarks/results/local/bench_train.csv (--record: the committed one).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ARMS = {"l2": ("L2", "org"), "hybrid": ("hybrid", "all")}
MODEL_FLAGS = ["--set", "model.d_model=128", "--set", "model.ff_dim=256", "--set", "model.dropout=0.1"]


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def mean_label_frames(root: Path) -> float:
    from lib.layout import Corpus

    c = Corpus(root)
    return statistics.fmean(c.labels(c.org, "train", u)[0].shape[0] for u in c.utterances(c.org, "train"))


def worktree(rev: str) -> Path:
    """A checkout of ``rev`` beside the repository (reused when present)."""
    sha = subprocess.run(["git", "rev-parse", "--short=12", rev], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.strip()
    path = Path(tempfile.gettempdir()) / f"t2a_bench_{sha}"
    if not (path / "lib").is_dir():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), sha], cwd=REPO, check=True,
                       capture_output=True)
    return path


def supports(code: Path, field: str) -> bool:
    return f"{field}:" in (code / "lib" / "config.py").read_text()


def run_once(code: Path, root: Path, arm: str, steps: int, batch: int, extra: list[str]) -> float:
    """Wall seconds of one `python -m lib train` of ``steps`` steps with ``code``'s lib."""
    loss, speakers = ARMS[arm]
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "lib", "train", "--root_dir", str(root), "--arch", "mfcc", "--loss_type", loss,
               "--train_speaker_list", speakers, "--max_steps", str(steps), "--eval_every_steps", "1000000",
               "--train_batch_size", str(batch), "--threads", "1", "--output_path", out, "--name", "bench",
               "--no_progress", "--set", "train.keep_eval_checkpoints=false",
               "--set", "train.lr_decay_per_epoch=1.0", *MODEL_FLAGS, *extra]
        env = {**os.environ, "PYTHONPATH": str(code)}  # this version's lib/ before the installed one
        for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_THREADING_LAYER"):
            env.pop(k, None)  # each version sets (or does not set) its own
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode:
            raise RuntimeError(f"{code}: {' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root_dir", default="data/corpus/default")
    ap.add_argument("--compare", metavar="REV", help="also time REV's code (git worktree), alternating")
    ap.add_argument("--busy", action="store_true", help="repeat with one core kept busy by another process")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, nargs=2, default=[15, 75], metavar=("SHORT", "LONG"))
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--bucket_batches", type=int, default=20, help="this tree's length bucketing (0: off)")
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--record", action="store_true",
                    help="write the committed CSV that the README quotes (default: benchmarks/results/local/)")
    a = ap.parse_args()
    import pandas as pd

    from lib.paths import benchmark_csv

    root = (REPO / a.root_dir).resolve()
    frames_per_step = a.batch_size * mean_label_frames(root)
    versions = {"this tree": REPO}
    if a.compare:
        versions[f"{a.compare}"] = worktree(a.compare)
    def extra_of(code: Path) -> list[str]:
        return (["--set", f"train.bucket_batches={a.bucket_batches}"]
                if a.bucket_batches and supports(code, "bucket_batches") else [])

    for code in versions.values():  # untimed: numba compiles each version's kernels into its cache once
        for arm in a.arms:
            run_once(code, root, arm, 2, a.batch_size, extra_of(code))
    rows = []
    for load in (["idle", "one core busy"] if a.busy else ["idle"]):
        for rnd in range(a.rounds):
            order = list(versions.items())
            if rnd % 2:
                order.reverse()  # alternate who goes first
            for arm in a.arms:
                for name, code in order:
                    extra = extra_of(code)
                    spinner = None
                    if load != "idle":
                        spinner = mp.get_context("spawn").Process(target=_spin, args=(time.monotonic() + 3600,))
                        spinner.start()
                    try:
                        short = run_once(code, root, arm, a.steps[0], a.batch_size, extra)
                        long = run_once(code, root, arm, a.steps[1], a.batch_size, extra)
                    finally:
                        if spinner is not None:
                            spinner.terminate()
                            spinner.join()
                    step_s = (long - short) / (a.steps[1] - a.steps[0])
                    rows.append({"load": load, "round": rnd, "arm": arm, "code": name, "step_s": round(step_s, 4),
                                 "label_frames_per_s_per_core": round(frames_per_step / step_s),
                                 "bucket_batches": a.bucket_batches if extra else 0, "threads": 1,
                                 "wall_short_s": round(short, 2), "wall_long_s": round(long, 2)})
                    print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    out = benchmark_csv("bench_train", a.record)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    med = df.groupby(["load", "arm", "code"], sort=False)["label_frames_per_s_per_core"].median().unstack("code")
    print(med.to_string())
    if a.compare:
        print((med["this tree"] / med[a.compare]).rename("speed-up").to_string())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
