#!/usr/bin/env python
"""Training throughput (label frames per second) and inference real-time factor of an
MFCC model on CPU, on the built-in corpus.

    python benchmarks/bench_train.py [--root_dir data/corpus/quick] [--steps 40] [--threads 2]

Arms, timed in one run on the same batches: L2 on org clips only; hybrid (L2 on org,
soft-DTW on TTS clips) with the studies' model (feed-forward 256) and with the
original's feed-forward 2048. Inference: forward passes over org test_a, audio
seconds per compute second. Writes benchmarks/results/local/bench_train.csv (--record: the committed benchmarks/results/ one).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lib.config import FEATURE_RATES_HZ, LossConfig, ModelConfig
from lib.data import FaceDataset, OrgShareBatchSampler, collate, resolve_speakers
from lib.layout import Corpus
from lib.losses import build_loss
from lib.paths import benchmark_csv
from lib.model import TalkingFaceModel
from lib.train.loop import forward_batch



def time_training(corpus, speakers, loss_type, ff_dim, steps, batch_size, feature):
    torch.manual_seed(0)
    ds = FaceDataset(corpus, speakers, "train", feature)
    sampler = OrgShareBatchSampler(ds.aligned, batch_size, 0.5, seed=0)
    batches = [b for _, b in zip(range(steps + 3), (b for e in range(100) for b in sampler.batches(e)))]
    item0 = ds[0]
    model = TalkingFaceModel(ModelConfig(input_dim=item0["features"].shape[-1], feature_rate_hz=FEATURE_RATES_HZ[feature],
                                         ff_dim=ff_dim, dropout=0.1))
    loss_fn = build_loss(LossConfig.from_loss_type(loss_type), corpus.channels)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loaded = [collate([ds[i] for i in idx]) for idx in batches]  # I/O kept out of the timing
    frames, t0 = 0, None
    for k, batch in enumerate(loaded):
        if k == 3:  # first steps warm up numba and allocators
            t0 = time.perf_counter()
        pred, plen = forward_batch(model, batch)
        loss, _ = loss_fn(pred, batch.labels, plen, batch.label_lengths, batch.aligned)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k >= 3:
            frames += int(batch.label_lengths.sum())
    wall = time.perf_counter() - t0
    return model, frames / wall, wall / steps


def inference_rtf(model, corpus, feature):
    ds = FaceDataset(corpus, [corpus.org], "test_a", feature)
    model.eval()
    audio_s = compute_s = 0.0
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            feats = torch.from_numpy(np.asarray(item["features"], np.float32))[None]  # (1, T, D)
            n = torch.tensor([feats.shape[1]])
            t0 = time.perf_counter()
            model(feats, n, int(model.output_lengths(n)[0]))
            compute_s += time.perf_counter() - t0
            audio_s += feats.shape[1] / FEATURE_RATES_HZ[feature]
    return audio_s / compute_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root_dir", default="data/corpus/quick")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--feature", default="mfcc")
    ap.add_argument("--record", action="store_true",
                    help="write the committed CSV that the README quotes (default: benchmarks/results/local/)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    corpus = Corpus(a.root_dir)
    everyone = resolve_speakers(corpus, ["all"])
    rows = []
    for name, speakers, loss, ff in [("org_only_l2", [corpus.org], "L2", 256), ("tts_hybrid", everyone, "hybrid", 256),
                                     ("tts_hybrid_ff2048", everyone, "hybrid", 2048)]:
        model, fps, step_s = time_training(corpus, speakers, loss, ff, a.steps, a.batch_size, a.feature)
        rtf = inference_rtf(model, corpus, a.feature)
        rows.append(dict(arm=name, feature=a.feature, ff_dim=ff, batch_size=a.batch_size, threads=a.threads,
                         train_label_frames_per_s=round(fps), step_s=round(step_s, 4),
                         inference_audio_s_per_compute_s=round(rtf, 1)))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    out = benchmark_csv("bench_train", a.record)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
