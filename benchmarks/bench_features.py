"""Speed of the feature extractors: real-time factor on CPU (or GPU with --device cuda).

RTF = compute seconds / audio seconds (lower is better; < 1 is faster than real
time); the CSV also has speed_x = audio seconds / compute seconds. HuBERT is
timed with random weights (speed does not depend on them): a tiny model and the
HuBERT-large architecture (24 layers, 1024 dim, layer-norm CNN, pre-norm), all
layers returned, fp16 output. Each row is the best of ``--repeats`` runs after
one warm-up.

    .venv/bin/python benchmarks/bench_features.py [--device cuda] [--seconds 5]

Writes benchmarks/results/local/bench_features.csv (with --record: benchmarks/results/, the
committed figures the README quotes).
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lib.features.hubert import HubertExtractor  # noqa: E402
from lib.features.mfcc import mfcc, mfcc_t2a  # noqa: E402
from lib.io import atomic_write_text  # noqa: E402
from lib.paths import benchmark_csv  # noqa: E402



def _hubert(arch: str, device: str) -> HubertExtractor:
    from lib.features.fairseq_ckpt import transformers_hubert

    HubertConfig, HubertModel = transformers_hubert()
    if arch == "tiny":
        cfg = HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                           conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    else:  # HuBERT large / chinese-hubert-large
        cfg = HubertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                           feat_extract_norm="layer", do_stable_layer_norm=True)
    torch.manual_seed(0)
    return HubertExtractor.from_model(HubertModel(cfg), normalize=arch != "tiny", device=device)


def _ppg():
    """The PPG extractor with random weights (same architecture and cost as a trained one)."""
    import dataclasses
    import tempfile

    from lib.corpus.phones import PHONES
    from lib.features.ppg import PPGConfig, PPGExtractor, PPGNet

    cfg = PPGConfig()
    path = Path(tempfile.mkdtemp()) / "ppg.pt"
    torch.save({"state_dict": PPGNet(cfg).state_dict(), "config": dataclasses.asdict(cfg), "phones": list(PHONES),
                "metrics": {}}, path)
    return PPGExtractor(path)


def _time(fn, wav: np.ndarray, repeats: int, device: str) -> float:
    fn(wav)  # warm-up: JIT, allocator, cuDNN autotune
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn(wav)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=5.0, help="audio length per call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--skip_large", action="store_true")
    ap.add_argument("--record", action="store_true",
                    help="write the committed CSV that the README quotes (default: benchmarks/results/local/)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    wav = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * 16000))).astype(np.float32)
    rows = []

    def record(feature: str, model: str, device: str, fn) -> None:
        s = _time(fn, wav, args.repeats, device)
        rows.append({"feature": feature, "model": model, "device": device, "threads": args.threads,
                     "audio_s": args.seconds, "compute_s": round(s, 5), "rtf": round(s / args.seconds, 5),
                     "speed_x": round(args.seconds / s, 2)})
        print(f"{feature:9s} {model:13s} {device:5s} compute {s:8.4f} s for {args.seconds} s audio: "
              f"RTF {s / args.seconds:.4f} ({args.seconds / s:.1f}x real time)", flush=True)

    record("mfcc", "-", "cpu", mfcc)
    record("mfcc_t2a", "-", "cpu", mfcc_t2a)
    record("ppg", "conv_random", "cpu", _ppg())
    archs = ["tiny"] + ([] if args.skip_large else ["large_random"])
    for arch in archs:
        ext = _hubert(arch, args.device)
        record("hubert", arch, args.device, ext)
        del ext
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    out = benchmark_csv("bench_features" if args.device == "cpu" else f"bench_features_{args.device}", args.record)
    atomic_write_text(out,
                      buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
