"""Bring your own capture, measured: a 116-control custom rig at 30 fps in 2-minute takes.

Stand-in for a production capture: the built-in corpus's org sentences (piper
TTS + the face rig) are concatenated into takes of about two minutes, and their
37 T2A labels are re-keyed at 30 fps onto 116 studio-style controls
(``jaw_thrust_c``, ``mouth_funnel_ul``, ``tongue_Rot_1X``, ...): 37 renamed
channels plus 79 fixed sparse non-negative mixes of them (as a custom rig's
corrective and secondary controls are), with a face.json saying so. Then the
toolkit's own commands, as a user would run them:

    python -m lib check-data --root_dir R
    python -m lib extract    --root_dir R --feature mfcc
    python -m lib train      --root_dir R --window_s 10 ...
    python -m lib test       --arch mfcc --root_dir R ...        (the original's flags)
    python -m lib infer      --checkpoint .../best.pt ...        (1, 5, 10 minutes of audio; peak RSS)

and the test MSE against the mean-pose baseline (every frame = the mean of the
training labels). Writes benchmarks/results/local/<name>.json.

    python benchmarks/bench_rig116.py [--work /tmp/rig116] [--max_steps 300] [--name r116]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REGIONS = ["jaw", "mouth", "lip", "cheek", "brow", "nose", "tongue", "chin", "lid", "neck"]
ACTIONS = ["thrust", "funnel", "press", "roll", "stretch", "raise", "lower", "curl", "puff", "suck", "sneer",
           "open", "close", "wide", "narrow", "Rot"]
SIDES = ["c", "l", "r", "ul", "ur", "ll", "lr", "1X", "1Y", "2X"]


def rig_names(n: int = 116, seed: int = 0) -> list[str]:
    """``n`` distinct studio-style control names."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    while len(names) < n:
        name = f"{rng.choice(REGIONS)}_{rng.choice(ACTIONS)}_{rng.choice(SIDES)}"
        if name not in names:
            names.append(name)
    return names


def rig_matrix(n_out: int = 116, n_in: int = 37, seed: int = 1) -> np.ndarray:
    """(37, 116): the first 37 controls are the T2A channels renamed; the rest mix 2-3 of them."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n_in, n_out), np.float32)
    m[np.arange(n_in), np.arange(n_in)] = 1.0
    for j in range(n_in, n_out):
        src = rng.choice(n_in, size=int(rng.integers(2, 4)), replace=False)
        m[src, j] = rng.uniform(0.2, 0.8, len(src))
    return m


def make_takes(base: Path, out: Path, fps: int, take_s: float) -> dict:
    """Concatenate base org sentences into ~take_s takes at ``fps`` on the 116-control rig."""
    from lib.channels import FaceFormat
    from lib.config import AUDIO_SAMPLE_RATE_HZ, label_frames
    from lib.ingest.livelink import resample_frames
    from lib.io import read_audio, write_audio, write_label_csv
    from lib.layout import Corpus

    corpus = Corpus(base)
    names, m = rig_names(), rig_matrix()
    FaceFormat.make(names, fps).save(out)
    stats = {}
    for split in ("train", "val_1", "test_a"):
        takes, cur_w, cur_l, dur = [], [], [], 0.0
        for utt in corpus.utterances("org", split):
            w = read_audio(corpus.wav_path("org", split, utt))
            lab = corpus.own_labels("org", split, utt)[: label_frames(len(w) / AUDIO_SAMPLE_RATE_HZ)]
            # Each sentence's labels resampled on its own: no drift across the take.
            n30 = label_frames(len(w) / AUDIO_SAMPLE_RATE_HZ, fps)
            cur_w.append(w)
            cur_l.append(resample_frames(lab, 25, fps, n30))
            dur += len(w) / AUDIO_SAMPLE_RATE_HZ
            if dur >= take_s:
                takes.append((np.concatenate(cur_w), np.concatenate(cur_l)))
                cur_w, cur_l, dur = [], [], 0.0
        if cur_w:
            takes.append((np.concatenate(cur_w), np.concatenate(cur_l)))
        for k, (w, lab) in enumerate(takes):
            utt = f"{split}_take{k:02d}"
            n = label_frames(len(w) / AUDIO_SAMPLE_RATE_HZ, fps)
            lab = np.concatenate([lab, np.repeat(lab[-1:], max(0, n - len(lab)), 0)])[:n]
            write_audio(out / "wavs" / "org" / split / f"{utt}.wav", w)
            write_label_csv(out / "labels" / "org" / split / f"{utt}.csv", np.clip(lab @ m, 0, 1), names)
        stats[split] = {"takes": len(takes), "seconds": [round(len(w) / AUDIO_SAMPLE_RATE_HZ, 1) for w, _ in takes]}
    return stats


def run(cmd: list[str], log: list, **kw) -> subprocess.CompletedProcess:
    t0 = time.time()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, **kw)
    log.append({"cmd": " ".join(cmd), "rc": p.returncode, "wall_s": round(time.time() - t0, 1),
                "tail": (p.stdout + p.stderr)[-600:]})
    print(f"[{p.returncode}] {time.time() - t0:6.1f} s  {' '.join(cmd[2:5])} ...", flush=True)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return p


def peak_rss_mb(cmd: list[str], log: list) -> float:
    """Peak RSS (MB) of a command, from GNU time or, without it, from wait4's rusage."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    out, err = p.stdout.read(), p.stderr.read()
    rc = os.waitstatus_to_exitcode(status)
    log.append({"cmd": " ".join(cmd), "rc": rc, "wall_s": round(time.time() - t0, 1), "peak_rss_mb": ru.ru_maxrss / 1024,
                "tail": (out + err)[-400:]})
    if rc != 0:
        raise SystemExit(f"failed ({rc}): {' '.join(cmd)}\n{out[-2000:]}\n{err[-2000:]}")
    return ru.ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/rig116")
    ap.add_argument("--n_train", type=int, default=200)
    ap.add_argument("--take_s", type=float, default=120.0)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--max_steps", type=int, default=300)
    ap.add_argument("--window_s", type=float, default=10.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--name", default="r116")
    ap.add_argument("--skip_infer_memory", action="store_true")
    a = ap.parse_args()
    work = Path(a.work)
    py = sys.executable
    log: list = []
    summary: dict = {"args": vars(a)}
    from lib.corpus.builder import build_corpus
    from lib.corpus.profiles import CorpusConfig

    t0 = time.time()
    base = work / "base"
    b = build_corpus(CorpusConfig(profile="rig116_base", n_train=a.n_train, n_val=20, n_test=30, tts_voices=(),
                                  workers=2), base)
    assert not b["failures"], b["failures"][:5]
    summary["base_build_s"] = round(time.time() - t0, 1)
    rig = work / f"rig116_{a.fps}fps"
    if not (rig / "face.json").is_file():
        summary["takes"] = make_takes(base, rig, a.fps, a.take_s)
    run([py, "-m", "lib", "check-data", "--root_dir", str(rig)], log)
    run([py, "-m", "lib", "extract", "--root_dir", str(rig), "--feature", "mfcc", "--workers", "2"], log)
    runs = work / "runs"
    # The studies' settings (lib.studies.profiles): constant lr, dropout 0.1, feed-forward 256.
    run([py, "-m", "lib", "train", "--root_dir", str(rig), "--output_path", str(runs), "--name", a.name,
         "--arch", "mfcc", "--loss_type", "L2", "--window_s", str(a.window_s), "--max_steps", str(a.max_steps),
         "--eval_every_steps", str(max(1, a.max_steps // 6)), "--train_batch_size", "8", "--threads", "2",
         "--lr", str(a.lr), "--set", "train.lr_decay_per_epoch=1.0", "--set", "model.ff_dim=256",
         "--set", f"model.dropout={a.dropout}", "--no_progress"], log)
    run([py, "-m", "lib", "test", "--arch", "mfcc", "--root_dir", str(rig), "--feature_dir", "mfcc", "--freq", "100",
         "--input_dim", "39", "--output_path", str(runs), "--name", a.name, "--no_progress"], log)
    import pandas as pd

    from lib.io import read_label_csv
    from lib.layout import Corpus
    from lib.metrics import mse_score

    corpus = Corpus(rig)
    train = np.concatenate([corpus.own_labels("org", "train", u) for u in corpus.utterances("org", "train")])
    mean_pose = train.mean(0, keepdims=True)
    run_dir = runs / a.name
    m = pd.read_csv(run_dir / "metrics.csv")
    model_mse = m[(m.metric == "mse_score") & (m.speaker == "org")].groupby("utt")["value"].mean()
    base_mse = {}
    header_ok = True
    for u in corpus.utterances("org", "test_a"):
        gt = corpus.own_labels("org", "test_a", u)
        pred, names = read_label_csv(run_dir / f"{u}.csv")
        header_ok &= names == corpus.channels and len(pred) == len(gt)
        base_mse[u] = mse_score(np.repeat(mean_pose, len(gt), 0), gt)
    summary.update(channels=corpus.face.n_channels, face_fps=corpus.face_fps, prediction_header_and_frames_ok=bool(header_ok),
                   test_mse=float(model_mse.mean()), mean_pose_mse=float(np.mean(list(base_mse.values()))),
                   per_take={u: {"model": float(model_mse[u]), "mean_pose": base_mse[u]} for u in base_mse})
    if not a.skip_infer_memory:
        from lib.io import read_audio, write_audio

        audio = np.concatenate([read_audio(corpus.wav_path("org", "train", u)) for u in corpus.utterances("org", "train")])
        mem = {}
        for minutes in (1, 5, 10):
            d = work / f"infer_{minutes}min"
            n = minutes * 60 * 16000
            write_audio(d / f"long_{minutes}min.wav", np.resize(audio, n))
            mem[f"{minutes}_min"] = round(peak_rss_mb([py, "-m", "lib", "infer", "--checkpoint",
                                                       str(run_dir / "best.pt"), "--wav_dir", str(d),
                                                       "--out_dir", str(d / "out"), "--no_progress"], log), 1)
            pred, names = read_label_csv(d / "out" / f"long_{minutes}min.csv")
            assert len(pred) == minutes * 60 * a.fps and names == corpus.channels
            if minutes <= 5:  # the same take in one full-attention pass (what infer did before windows)
                mem[f"{minutes}_min_one_pass"] = round(peak_rss_mb(
                    [py, "-m", "lib", "infer", "--checkpoint", str(run_dir / "best.pt"), "--wav_dir", str(d),
                     "--out_dir", str(d / "out_one_pass"), "--infer_window_s", "1e9", "--no_progress"], log), 1)
                whole, _ = read_label_csv(d / "out_one_pass" / f"long_{minutes}min.csv")
                mem[f"{minutes}_min_max_abs_diff_windowed_vs_one_pass"] = float(np.abs(whole - pred).max())
                mem[f"{minutes}_min_mean_abs_diff_windowed_vs_one_pass"] = float(np.abs(whole - pred).mean())
        summary["infer_peak_rss_mb"] = mem
    summary["log"] = log
    out = REPO / "benchmarks" / "results" / "local" / f"{a.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("log", "per_take")}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
