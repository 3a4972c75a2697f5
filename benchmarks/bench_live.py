#!/usr/bin/env python
"""Live inference on one CPU core: compute per 40 ms chunk, end-to-end latency, streams per core.

    python benchmarks/bench_live.py [--checkpoint RUN/best.pt] [--seconds 10] [--clients 1 4 8] [--record]

Arms: the lookahead study's model size (d_model 64, 2 layers, ff 128) and the toolkit's default
size (d_model 128, 1 layer, ff 2048), both with lookahead 80 ms and left context 1000 ms
(random weights: compute does not depend on their values), or the model of --checkpoint.
Per arm:

* ``chunk_cpu_ms_p50/p99``: CPU time (this thread) of StreamingPredictor.push for one 40 ms
  chunk (features + model), torch on one thread; ``chunk_wall_ms_p50`` the same in wall time
  (inflated on a busy machine: ``load_avg_1min`` is recorded); ``features_chunk_cpu_ms_p50``:
  the MFCC part alone;
* ``streaming_vs_offline``: total streaming compute / one offline pass over the same audio
  (the peer: what a whole-clip model costs for the same seconds);
* ``realtime_streams_per_core`` = 40 ms / mean chunk compute;
* through the WebSocket server (``python -m lib serve`` in its own process, loopback, K paced
  clients): ``frame_latency_ms_p50/p99`` (chunk sent -> frame received) and
  ``server_streams_per_core`` (audio seconds / server CPU seconds), and
  ``end_to_end_latency_ms_p50`` = algorithmic (lookahead + 36 ms features + one 40 ms chunk)
  + the measured p50.

Writes benchmarks/results/local/bench_live.csv (--record: the committed benchmarks/results/ one).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.channels import FaceFormat  # noqa: E402
from lib.config import LossConfig, ModelConfig, TrainConfig  # noqa: E402
from lib.live.features import StreamingMfcc  # noqa: E402
from lib.live.loadtest import LoadConfig, load_test  # noqa: E402
from lib.live.model import LiveConfig, LiveFaceModel, load_live_model  # noqa: E402
from lib.live.stream import StreamingPredictor, offline_predict  # noqa: E402
from lib.paths import benchmark_csv  # noqa: E402

ARMS = {"study_size": dict(d_model=64, n_layers=2, n_heads=2, ff_dim=128),
        "default_size": dict(d_model=128, n_layers=1, n_heads=4, ff_dim=2048)}
CHUNK = 640  # 40 ms at 16 kHz


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced tone with a syllable-rate envelope plus noise (no corpus needed)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.3 * env * np.sin(2 * np.pi * 180 * t) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def save_random_checkpoint(path: Path, sizes: dict, live: LiveConfig) -> LiveFaceModel:
    torch.manual_seed(0)
    cfg = ModelConfig(**sizes, dropout=0.0)
    model = LiveFaceModel(cfg, live).eval()
    torch.save({"model": model.state_dict(), "live": dataclasses.asdict(live), "face": FaceFormat.make().to_dict(),
                "configs": {"model": dataclasses.asdict(cfg), "loss": dataclasses.asdict(LossConfig()),
                            "train": dataclasses.asdict(TrainConfig(feature="mfcc_live"))}}, path)
    return model


def time_stream(model: LiveFaceModel, wav: np.ndarray) -> dict:
    for _ in range(2):  # warm-up pass (allocators, first kernels)
        sp = StreamingPredictor(model)
        sp.push(wav[:16000])
    # CPU time of this thread (compute on one core, whatever else the machine runs), and wall time.
    sp, times, walls = StreamingPredictor(model), [], []
    for i in range(0, len(wav) - CHUNK + 1, CHUNK):
        t0, w0 = time.thread_time(), time.perf_counter()
        sp.push(wav[i:i + CHUNK])
        times.append(time.thread_time() - t0)
        walls.append(time.perf_counter() - w0)
    feat, ft = StreamingMfcc(), []
    for i in range(0, len(wav) - CHUNK + 1, CHUNK):
        t0 = time.thread_time()
        feat.push(wav[i:i + CHUNK])
        ft.append(time.thread_time() - t0)
    t0 = time.thread_time()
    offline_predict(model, wav)
    offline = time.thread_time() - t0
    ms = np.array(times) * 1000
    return {"chunk_cpu_ms_p50": float(np.median(ms)), "chunk_cpu_ms_p99": float(np.percentile(ms, 99)),
            "chunk_wall_ms_p50": float(np.median(np.array(walls) * 1000)),
            "features_chunk_cpu_ms_p50": float(np.median(np.array(ft) * 1000)),
            "offline_cpu_ms_per_40ms_audio": 1000 * offline / len(times),
            "streaming_vs_offline": float(np.sum(times) / offline),
            "realtime_streams_per_core": float(40.0 / ms.mean())}


def time_server(ckpt: Path, wav: np.ndarray, clients: list[int], seconds: float, latency_ms: float) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "lib", "serve", "--checkpoint", str(ckpt), "--port", "0",
                             "--max_clients", str(max(clients))], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)
    rows = []
    try:
        line = proc.stdout.readline()
        m = re.search(r":(\d+)/", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r}")
        port = int(m.group(1))
        for k in clients:
            r = load_test(port, wav, LoadConfig(clients=k, duration_s=seconds, chunk_ms=40, timeout_s=seconds * 10 + 60))
            rows += [{"clients": k, "metric": "frame_latency_ms_p50", "value": r["p50_ms"]},
                     {"clients": k, "metric": "frame_latency_ms_p99", "value": r["p99_ms"]},
                     {"clients": k, "metric": "server_streams_per_core", "value": r["streams_per_core"]},
                     {"clients": k, "metric": "end_to_end_latency_ms_p50", "value": latency_ms + 40 + r["p50_ms"]}]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None, help="a live checkpoint instead of the two random-weight arms")
    ap.add_argument("--seconds", type=float, default=10.0, help="audio per stream")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--record", action="store_true", help="write the committed CSV the README quotes")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    wav = speech_like(a.seconds)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        arms = {"checkpoint": None} if a.checkpoint else ARMS
        for arm, sizes in arms.items():
            if sizes is None:
                ckpt = Path(a.checkpoint)
                model, _ = load_live_model(ckpt)
            else:
                ckpt = Path(tmp) / f"{arm}.pt"
                model = save_random_checkpoint(ckpt, sizes, LiveConfig(80, 1000))
            lat = StreamingPredictor(model).algorithmic_latency_ms
            base = {"arm": arm, "lookahead_ms": model.live.lookahead_ms, "left_context_ms": model.live.left_context_ms,
                    "params": sum(p.numel() for p in model.parameters()),
                    "load_avg_1min": os.getloadavg()[0], "cpus": os.cpu_count()}  # a busy machine inflates wall times
            for k, v in {**time_stream(model, wav), "algorithmic_latency_ms": lat}.items():
                rows.append({**base, "clients": 0, "metric": k, "value": v})
            for r in time_server(ckpt, wav, a.clients, a.seconds, lat):
                rows.append({**base, **r})
            print(pd.DataFrame([r for r in rows if r["arm"] == arm]).to_string(index=False), flush=True)
    out = benchmark_csv("bench_live", a.record)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
