"""``train(cfg) -> run_dir``: the training loop with validation, checkpoints and resume.

Order of one run: resolve data and complete the model config from it, write
``config.json`` (before anything else), then train. After every epoch (or every
``eval_every_steps``) the model is scored on org ``val_split`` with the training
loss; ``best.pt`` keeps the best. ``last.pt`` (written every
``checkpoint_every_steps`` steps and at every evaluation) holds everything the
run needs to continue: rerunning the same command after a kill resumes there and,
on CPU, ends with the same numbers as an uninterrupted run, because the batch
order is a pure function of (seed, epoch) and all RNG states are restored.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..config import FEATURE_RATES_HZ, LossConfig, ModelConfig, TrainConfig
from ..data import Batch, FaceDataset, OrgShareBatchSampler, collate, read_subset, resolve_speakers, \
    sequential_batches
from ..io import DataError
from ..layout import Corpus
from ..losses import build_loss
from ..model import TalkingFaceModel
from .state import (eval_checkpoint_name, load_checkpoint, rng_state, run_dir_of,
                    save_checkpoint, seed_everything, set_rng_state, write_curves, write_or_check_config)


def pick_device(name: str | None) -> torch.device:
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def feature_rate_hz(root: Path, feature_dir: str, dataset: FaceDataset, feature: str) -> int:
    """Feature rate from the first item's sidecar JSON, else the extractor's known rate."""
    import json

    from ..features.extract import feature_path

    k = dataset.keys[0]
    side = feature_path(root, k.speaker, feature_dir, k.split, k.utt).with_suffix(".json")
    if side.is_file():
        rate = json.loads(side.read_text()).get("rate_hz")
        if rate:
            return int(rate)
    if feature in FEATURE_RATES_HZ:
        return FEATURE_RATES_HZ[feature]
    raise DataError(side, f"no sidecar with rate_hz and no known rate for feature {feature!r}; pass --freq")


def complete_model_config(model_cfg: ModelConfig, dataset: FaceDataset, cfg: TrainConfig,
                          given: Sequence[str] = ()) -> ModelConfig:
    """Fill input_dim, n_feature_layers, the face format (n_channels, face_fps) and the
    feature rate from the data: the face format is the corpus's (face.json).

    ``given``: fields set explicitly by the user. A given feature_rate_hz is kept;
    a given input_dim that contradicts the data is an error naming the file.
    """
    x = dataset.features(0)  # (T, D) or (L, T, D)
    if x.ndim not in (2, 3):
        k = dataset.keys[0]
        raise DataError(f"{dataset.corpus.root}/wav_features/{k.speaker}/{dataset.feature_dir}/{k.split}/{k.utt}.npy",
                        f"features must be (T, D) or (L, T, D), got shape {x.shape}")
    if "input_dim" in given and model_cfg.input_dim != x.shape[-1]:
        k = dataset.keys[0]
        raise DataError(f"{dataset.corpus.root}/wav_features/{k.speaker}/{dataset.feature_dir}/{k.split}/{k.utt}.npy",
                        f"features have dimension {x.shape[-1]}, but input_dim={model_cfg.input_dim} was given")
    rate = model_cfg.feature_rate_hz if "feature_rate_hz" in given else feature_rate_hz(
        dataset.corpus.root, dataset.feature_dir, dataset, cfg.feature)
    return dataclasses.replace(model_cfg, input_dim=int(x.shape[-1]), feature_rate_hz=rate,
                               n_feature_layers=x.shape[0] if x.ndim == 3 else 1,
                               n_channels=dataset.corpus.face.n_channels, face_fps=dataset.corpus.face_fps)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam over the trainable parameters; torch's fused implementation on CPU and CUDA (one
    kernel over all parameters instead of a dozen small ops per tensor, which dominated the
    optimiser's share of a CPU step at this model size). Same update rule; its state dict
    is the plain one's, so checkpoints of either kind resume with either."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)


def build_datasets(cfg: TrainConfig) -> tuple[Corpus, FaceDataset, FaceDataset]:
    corpus = Corpus(cfg.root_dir)
    speakers = resolve_speakers(corpus, cfg.train_speakers)
    if not speakers:
        raise DataError(corpus.root / "wavs", f"no training speakers left of {list(cfg.train_speakers)}")
    fdir = cfg.feature_dir or cfg.feature
    train_ds = FaceDataset(corpus, speakers, cfg.train_split, fdir, read_subset(corpus, cfg.train_json))
    val_ds = FaceDataset(corpus, [corpus.org], cfg.val_split, fdir)
    for ds in (train_ds, val_ds):
        if not len(ds):
            raise DataError(corpus.root / "wavs", f"no clips in split {ds.split} for speakers {speakers}")
    return corpus, train_ds, val_ds


def forward_batch(model: TalkingFaceModel, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """(pred (B, T, C), pred_lengths (B,)). The output is as long as the longer of the
    labels and the prediction, so an unaligned clip longer than its labels keeps all frames."""
    out_lengths = model.output_lengths(batch.feat_lengths)
    out_frames = int(max(batch.label_lengths.max(), out_lengths.max()))
    pred = model(batch.features, batch.feat_lengths, out_frames)
    return pred, out_lengths.clamp(max=out_frames)


@torch.inference_mode()
def evaluate_loss(model, loss_fn, dataset: FaceDataset, batch_size: int, device) -> dict[str, float]:
    """Mean over clips of the training loss (and its parts) on ``dataset``.

    With a training window set, long clips are scored as consecutive windows
    (:meth:`FaceDataset.tiles`; the mean is then over windows), so validation
    memory is bounded like training's.
    """
    model.eval()
    sums: dict[str, float] = {}
    if dataset.window_frames is None:
        groups = [[dataset[i] for i in idx] for idx in sequential_batches(len(dataset), batch_size)]
        n = len(dataset)
    else:
        items = [t for i in range(len(dataset)) for t in dataset.tiles(i)]
        groups = [[items[i] for i in idx] for idx in sequential_batches(len(items), batch_size)]
        n = len(items)
    for group in groups:
        batch = collate(group).to(device)
        pred, pred_len = forward_batch(model, batch)
        loss, parts = loss_fn(pred, batch.labels, pred_len, batch.label_lengths, batch.aligned)
        for k, v in {"loss": loss, **parts}.items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(group)
    model.train()
    return {k: v / n for k, v in sums.items()}


def train(cfg: TrainConfig, model_cfg: ModelConfig | None = None, loss_cfg: LossConfig | None = None,
          given: Sequence[str] = (), build_model=None, checkpoint_extra: dict | None = None) -> Path:
    """Train (or resume) the run ``<cfg.output_path>/<cfg.name>``; returns the run folder.

    ``model_cfg``'s data-dependent fields (input_dim, n_feature_layers,
    n_channels, feature_rate_hz) are filled from the data unless named in
    ``given``. A finished run is not retrained: the call returns at once.
    ``build_model`` (ModelConfig -> module; default TalkingFaceModel) and
    ``checkpoint_extra`` (entries added to every checkpoint) let a variant such as
    lib.live's bounded-context model train through this same loop.
    """
    seed_everything(cfg.seed, cfg.deterministic, cfg.threads)
    corpus, train_ds, val_ds = build_datasets(cfg)
    model_cfg = complete_model_config(model_cfg or ModelConfig(), train_ds, cfg, given)
    if cfg.window_s is not None:  # long takes: random windows for training, tiles for validation
        for ds in (train_ds, val_ds):
            ds.set_window(cfg.window_s, model_cfg.feature_rate_hz)
    loss_cfg = loss_cfg or LossConfig()
    run_dir = run_dir_of(cfg)
    write_or_check_config(run_dir, model_cfg, loss_cfg, cfg)  # first file of the run

    device = pick_device(cfg.device)
    model = (build_model or TalkingFaceModel)(model_cfg).to(device)
    loss_fn = build_loss(loss_cfg, corpus.channels)
    opt = make_optimizer(model, cfg, device)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay_per_epoch)
    # An epoch draws windows_per_epoch() windows of each item (1 per item without a window):
    # the sampler runs over that expanded list, which maps back to dataset items.
    item_of = [i for i, n in enumerate(train_ds.windows_per_epoch()) for _ in range(n)]
    lengths = None
    if cfg.bucket_batches:  # feature frames per (expanded) item, for length bucketing
        frames = train_ds.feature_frames()
        lengths = [frames[i] for i in item_of]
    sampler = OrgShareBatchSampler([train_ds.aligned[i] for i in item_of], cfg.batch_size,
                                   cfg.org_share_per_batch, cfg.seed, lengths, cfg.bucket_batches)
    steps_per_epoch = len(sampler)
    by_steps = cfg.eval_every_steps is not None
    total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.max_epochs * steps_per_epoch
    configs = {"model": dataclasses.asdict(model_cfg), "loss": dataclasses.asdict(loss_cfg),
               "train": dataclasses.asdict(cfg)}

    s = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_score": math.inf, "best_step": None,
         "best_epoch": None, "evals_since_best": 0, "last_eval_step": None, "train_sum": 0.0, "train_n": 0,
         "done": False, "curves": []}
    last_path = run_dir / "last.pt"
    if last_path.is_file():
        ck = load_checkpoint(last_path, device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        s = ck["state"]
        set_rng_state(ck["rng"])
        write_curves(run_dir / "curves.csv", s["curves"])  # drop rows logged after this checkpoint
        if s["done"]:
            return run_dir

    def save_last() -> None:
        save_checkpoint(last_path, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "scheduler": sched.state_dict(), "state": s, "rng": rng_state(),
                                    "sampler": {"seed": cfg.seed, "epoch": s["epoch"],
                                                "batch_in_epoch": s["batch_in_epoch"]},
                                    "configs": configs, "channels": list(corpus.channels),
                                    "face": corpus.face.to_dict(), **(checkpoint_extra or {})})

    def log(split: str, metric: str, value: float) -> None:
        s["curves"].append({"step": s["step"], "epoch": round(s["step"] / steps_per_epoch, 4), "split": split,
                            "metric": metric, "value": float(value)})

    def run_eval() -> None:
        if s["train_n"]:
            log("train", "loss", s["train_sum"] / s["train_n"])
        s["train_sum"], s["train_n"] = 0.0, 0
        torch.set_num_threads(threads)
        log("train", "lr", opt.param_groups[0]["lr"])
        scores = evaluate_loss(model, loss_fn, val_ds, cfg.batch_size, device)
        for k, v in scores.items():
            log(cfg.val_split, k, v)
        weights = {"model": model.state_dict(), "configs": configs, "channels": list(corpus.channels),
                   "face": corpus.face.to_dict(), "step": s["step"], "epoch": s["epoch"], "val_loss": scores["loss"],
                   **(checkpoint_extra or {})}
        if cfg.keep_eval_checkpoints:
            save_checkpoint(run_dir / "checkpoints" / eval_checkpoint_name(s["epoch"], s["step"], by_steps), weights)
        if scores["loss"] < s["best_score"]:
            s.update(best_score=scores["loss"], best_step=s["step"], best_epoch=s["epoch"], evals_since_best=0)
            save_checkpoint(run_dir / "best.pt", weights)
        else:
            s["evals_since_best"] += 1
        s["last_eval_step"] = s["step"]
        write_curves(run_dir / "curves.csv", s["curves"])
        patience = cfg.early_stop_patience_evals
        if patience is not None and s["evals_since_best"] >= patience:
            s["done"] = True
        save_last()  # curves and best.pt on disk never run ahead of what a resume restores

    # numba's OpenMP pool (soft-DTW) resets the OpenMP thread count on its first
    # launch, which silently changes torch's. Launch it now (a tiny loss call) and
    # re-assert our count before every step, so the arithmetic, and thus a resumed
    # run, does not depend on call history.
    threads = cfg.threads or torch.get_num_threads()
    _warm_up(loss_fn, len(corpus.channels))
    model.train()
    bar = tqdm(total=total_steps, initial=s["step"], desc=f"train {cfg.name}", disable=not cfg.progress)
    while not s["done"]:
        batches = sampler.batches(s["epoch"])
        for idx in batches[s["batch_in_epoch"]:]:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            # The crop key makes each item's window (if any) a pure function of its place in the run.
            batch = collate([train_ds.item(item_of[i], (cfg.seed, s["epoch"], s["batch_in_epoch"], j))
                             for j, i in enumerate(idx)]).to(device)
            pred, pred_len = forward_batch(model, batch)
            loss, _ = loss_fn(pred, batch.labels, pred_len, batch.label_lengths, batch.aligned)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
            opt.step()
            s["step"] += 1
            s["batch_in_epoch"] += 1
            loss_value = float(loss.detach())
            s["train_sum"] += loss_value
            s["train_n"] += 1
            bar.update()
            bar.set_postfix(epoch=s["epoch"] + 1, loss=f"{loss_value:.4g}", best=f"{s['best_score']:.4g}")
            if by_steps and s["step"] % cfg.eval_every_steps == 0:
                run_eval()
            if cfg.max_steps is not None and s["step"] >= cfg.max_steps:
                s["done"] = True
            if s["done"]:
                break
            if s["step"] % cfg.checkpoint_every_steps == 0:
                save_last()
        if s["batch_in_epoch"] == len(batches):
            sched.step()  # lr x decay per epoch, like the original's StepLR(step_size=1)
            s["epoch"] += 1
            s["batch_in_epoch"] = 0
            if not by_steps and not s["done"]:
                run_eval()
            if cfg.max_steps is None and s["epoch"] >= cfg.max_epochs:
                s["done"] = True
        if s["done"] and s["last_eval_step"] != s["step"]:
            run_eval()  # the budget ended between evaluations: score the final weights too
        save_last()
    bar.close()
    return run_dir


@torch.no_grad()
def _warm_up(loss_fn, n_channels: int) -> None:
    """One loss call on a tiny dummy pair of each type (starts any kernel thread pools)."""
    x = torch.zeros(2, 3, n_channels)  # (B, T, C)
    loss_fn(x, x, torch.tensor([3, 2]), torch.tensor([3, 3]), torch.tensor([True, False]))


def best_summary(run_dir: str | Path) -> dict:
    """Best evaluation of a finished or running run: step, epoch, val loss."""
    ck = load_checkpoint(Path(run_dir) / "last.pt")
    st = ck["state"]
    return {"best_step": st["best_step"], "best_epoch": st["best_epoch"], "best_val_loss": st["best_score"],
            "steps": st["step"], "epochs": st["epoch"], "done": st["done"]}
