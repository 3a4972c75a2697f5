#!/usr/bin/env python
"""Where a training step's time goes: torch.profiler over a few steps of the real loop.

    python benchmarks/profile_train_step.py [--root_dir data/corpus/default] [--loss_type hybrid]
        [--steps 30] [--bucket_batches 0] [--threads 1]

Runs `lib.train.train` itself (so data loading, collation, the loss and the
optimiser are all in the picture) under torch.profiler, then prints the
operators by self CPU time and the padding share of the batches. Writes
benchmarks/results/local/profile_train_step.csv (--record: the committed one).
"""
from __future__ import annotations

import argparse
import tempfile

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root_dir", default="data/corpus/default")
    ap.add_argument("--loss_type", default="hybrid")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--bucket_batches", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args()

    from lib.threads import pin_threads

    pin_threads(a.threads)
    import torch
    from torch.profiler import ProfilerActivity, profile

    from lib.config import LossConfig, ModelConfig, TrainConfig
    from lib.data import padding_fraction
    from lib.paths import benchmark_csv
    from lib.train.loop import build_datasets, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(name="profile", root_dir=a.root_dir, train_speakers=("all",) if a.loss_type != "L2" else
                          ("org",), output_path=tmp, max_steps=a.steps, eval_every_steps=10**6, batch_size=16,
                          lr_decay_per_epoch=1.0, threads=a.threads, progress=False, keep_eval_checkpoints=False,
                          bucket_batches=a.bucket_batches)
        model = ModelConfig(d_model=128, ff_dim=256, dropout=0.1)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train(cfg, model, LossConfig.from_loss_type(a.loss_type))
        _, train_ds, _ = build_datasets(cfg)
    rows = [{"op": e.key, "self_cpu_ms": e.self_cpu_time_total / 1e3, "calls": e.count}
            for e in prof.key_averages()]
    df = pd.DataFrame(rows).sort_values("self_cpu_ms", ascending=False)
    df["share"] = (df["self_cpu_ms"] / df["self_cpu_ms"].sum()).round(4)
    out = benchmark_csv("profile_train_step", a.record)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(df.head(25).to_string(index=False))
    from lib.data import OrgShareBatchSampler

    frames = train_ds.feature_frames()
    for k in (0, 20):
        s = OrgShareBatchSampler(train_ds.aligned, 16, 0.5, 0, frames if k else None, k)
        print(f"padding share of feature frames, bucket_batches={k}: "
              f"{padding_fraction([b for e in range(3) for b in s.batches(e)], frames):.3f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
