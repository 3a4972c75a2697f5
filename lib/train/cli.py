"""``python -m lib train|validate|test|infer``: the original's options on the dataclass configs.

Original options kept: --arch (a feature name as in the original: mfcc, ppg,
chinese_hubert_large..., or a model: transformer, lstm), --feature_combine,
--train_speaker_list (space or comma list; "all" = every non-held-out voice),
--train_json, --root_dir, --feature_dir, --freq, --input_dim, --output_path,
--test_input_path, --test_epoch, --loss_type, --gamma, --rnn_type, --max_epoch,
--name, --seed, --train_batch_size, --lr. Added: --feature, --max_steps,
--eval_every_steps, --checkpoint_every_steps, --patience, --org_share,
--threads, --device, --window_s (train on random windows of long takes), and
``--set section.field=value`` for any config field (e.g. ``--set model.d_model=64``).

validate, test and infer accept every option of train, as the original's
test.sh passes them: where (--root_dir, --feature_dir, --output_path, --name,
--device, --threads) may point elsewhere; what (--arch, --freq, --input_dim,
--loss_type, ...) is checked against the run's stored config, and a
contradiction is an error naming the option and the stored value.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from ..config import LossConfig, ModelConfig, TrainConfig, config_from_dict
from ..io import DataError

# The original's --arch named the feature; ours may also name the model.
ARCH_TO_FEATURE = {"mfcc": "mfcc", "mfcc_t2a": "mfcc_t2a", "ppg": "ppg", "hubert": "hubert",
                   "chinese_hubert_large": "hubert", "chinese_hubert_base": "hubert"}
MODEL_ARCHS = ("transformer", "lstm")


def build_parser(command: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m lib {command}", description=__doc__.split("\n\n")[0])
    a = ap.add_argument
    a("--name", help="run name: the run folder is <output_path>/<name>")
    a("--output_path", help="folder of run folders (default results/runs)")
    a("--root_dir", help="corpus root in the original layout")
    a("--feature", help="feature extractor name (mfcc, mfcc_t2a, hubert, ...)")
    a("--feature_dir", help="folder under wav_features/<speaker>/ (default: the feature name)")
    a("--device", help="cpu / cuda (default: cuda when available)")
    a("--threads", type=int, help="torch CPU threads")
    a("--no_progress", action="store_true")
    if command == "train":
        a("--config", help="start from a run's config.json (flags override it)")
    # Every command takes the original's options (validate/test/infer check them against the run).
    if command in ("train", "validate", "test", "infer"):
        a("--arch", help="feature (mfcc, ppg, chinese_hubert_large, ...) or model (transformer, lstm)")
        a("--rnn_type", help="lstm: BiLSTM model instead of the Transformer")
        a("--feature_combine", action="store_true", default=None, help="learn weights over HuBERT layers")
        a("--freq", type=int, help="feature rate in Hz (default: from the features' sidecar)")
        a("--input_dim", type=int, help="feature dimension (checked against the data)")
        a("--train_speaker_list", nargs="+", help="speakers to train on (space or comma separated)")
        a("--train_json", help="dataset_json subset (name or path)")
        a("--loss_type", choices=["SoftDTW", "L2", "L1", "hybrid"])
        a("--gamma", type=float, help="soft-DTW smoothing")
        a("--max_epoch", type=int)
        a("--max_steps", type=int, help="budget in optimizer steps (overrides --max_epoch)")
        a("--eval_every_steps", type=int, help="validate every N steps instead of every epoch")
        a("--checkpoint_every_steps", type=int)
        a("--patience", type=int, help="early stopping after N evaluations without improvement")
        a("--train_batch_size", "--batch_size", dest="batch_size", type=int)
        a("--lr", type=float)
        a("--org_share", help="share of org clips per batch (0..1) or 'uniform'")
        a("--seed", type=int)
        a("--window_s", type=float, help="train on random windows of this many seconds (long takes)")
        a("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
          help="any config field, e.g. model.d_model=64 (value parsed as JSON, else a string)")
    if command in ("test", "validate"):
        a("--test_epoch", default="best", help="best, last, an epoch number, or step_N")
        a("--split", help="split to test (default test_a) / validate (default the run's val split)")
        a("--test_speakers", nargs="+", default=["org"], help="speakers to test ('all' = every voice)")
        a("--test_input_path", help="a folder of wavs to predict instead of a corpus split "
                                    "(written to <run>/infer_<folder name>/)")
        a("--arm", default="", help="label of this run in metrics.csv")
    if command == "infer":
        a("--checkpoint", required=True, help="a .pt written by train (best.pt, last.pt, checkpoints/...)")
        a("--wav_dir", "--test_input_path", dest="wav_dir", required=True)
        a("--out_dir", required=True)
        a("--feature_checkpoint", help="feature model checkpoint (HuBERT)")
        a("--format", dest="fmt", default="csv", choices=["csv", "livelink"],
          help="csv: label CSV in the run's face format; livelink: Live Link Face CSV at 60 fps")
        a("--rig_map", help="CSV source,target,weight mapping the run's rig onto another (e.g. onto ARKit names)")
    if command in ("test", "infer"):
        a("--infer_window_s", type=float, default=30.0,
          help="clips longer than this are predicted in overlapping windows (bounded memory)")
        a("--overlap_s", type=float, default=2.0, help="overlap of inference windows (crossfaded)")
    return ap


def _split_list(values: list[str]) -> tuple[str, ...]:
    return tuple(x for v in values for x in v.replace(",", " ").split())


def _apply_sets(sections: dict[str, dict], sets: list[str]) -> None:
    for item in sets:
        key, _, value = item.partition("=")
        sec, _, field = key.partition(".")
        if sec not in sections or field not in sections[sec] or not _:
            raise SystemExit(f"--set {item!r}: expected one of model.*, loss.*, train.* = value")
        try:
            sections[sec][field] = json.loads(value)
        except ValueError:
            sections[sec][field] = value


# option -> (config section, field) for the options that set one field directly
FLAG_FIELDS = [("feature_combine", "model", "feature_combine"), ("freq", "model", "feature_rate_hz"),
               ("input_dim", "model", "input_dim"), ("gamma", "loss", "gamma"), ("max_epoch", "train", "max_epochs"),
               ("max_steps", "train", "max_steps"), ("eval_every_steps", "train", "eval_every_steps"),
               ("checkpoint_every_steps", "train", "checkpoint_every_steps"),
               ("patience", "train", "early_stop_patience_evals"), ("batch_size", "train", "batch_size"),
               ("lr", "train", "lr"), ("seed", "train", "seed"), ("train_json", "train", "train_json"),
               ("window_s", "train", "window_s")]
# Options that say WHERE (data, runs, hardware), not WHAT: validate/test/infer may change them.
WHERE_FIELDS = ("name", "output_path", "root_dir", "feature_dir", "device", "threads", "progress")


def claimed_fields(args: argparse.Namespace) -> list[tuple[str, str, str, object]]:
    """(option as typed, section, field, value) for every what-option given on the command line."""
    out: list[tuple[str, str, str, object]] = []
    if args.arch:
        if args.arch in MODEL_ARCHS:
            out.append((f"--arch {args.arch}", "model", "arch", args.arch))
        elif args.arch in ARCH_TO_FEATURE:
            out.append((f"--arch {args.arch}", "train", "feature", ARCH_TO_FEATURE[args.arch]))
        else:
            raise SystemExit(f"--arch {args.arch!r}: expected a feature {sorted(ARCH_TO_FEATURE)} "
                             f"or a model {list(MODEL_ARCHS)}")
    if args.rnn_type:
        arch = "lstm" if args.rnn_type.lower() in ("lstm", "bilstm") else "transformer"
        out.append((f"--rnn_type {args.rnn_type}", "model", "arch", arch))
    if args.loss_type:
        aligned, unaligned = LossConfig.from_loss_type(args.loss_type).aligned, \
            LossConfig.from_loss_type(args.loss_type).unaligned
        out += [(f"--loss_type {args.loss_type}", "loss", "aligned", aligned),
                (f"--loss_type {args.loss_type}", "loss", "unaligned", unaligned)]
    for arg, sec, field in FLAG_FIELDS:
        v = getattr(args, arg, None)
        if v is not None:
            out.append((f"--{arg} {v}", sec, field, v))
    if args.feature:
        out.append((f"--feature {args.feature}", "train", "feature", args.feature))
    if args.train_speaker_list:
        out.append(("--train_speaker_list " + " ".join(args.train_speaker_list), "train", "train_speakers",
                    _split_list(args.train_speaker_list)))
    if args.org_share is not None:
        v = args.org_share if args.org_share == "uniform" else float(args.org_share)
        out.append((f"--org_share {args.org_share}", "train", "org_share_per_batch", v))
    for item in args.set:
        key, eq, value = item.partition("=")
        sec, _, field = key.partition(".")
        if not eq or sec not in ("model", "loss", "train"):
            raise SystemExit(f"--set {item!r}: expected one of model.*, loss.*, train.* = value")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        out.append((f"--set {item}", sec, field, parsed))
    return out


def check_against_run(args: argparse.Namespace, stored: dict, source: str) -> None:
    """Raise DataError naming every given option that contradicts the stored configs
    (``stored``: {"model": {...}, "loss": {...}, "train": {...}}) of the run at ``source``."""
    problems = []
    for flag, sec, field, value in claimed_fields(args):
        if field in WHERE_FIELDS and sec == "train":
            continue
        if field not in stored.get(sec, {}):
            problems.append(f"{flag}: the run's config has no field {sec}.{field}")
            continue
        have = stored[sec][field]
        same = (tuple(have) == tuple(value) if isinstance(have, (list, tuple)) and isinstance(value, (list, tuple))
                else (have == value or (isinstance(have, (int, float)) and isinstance(value, (int, float))
                                        and not isinstance(have, bool) and abs(have - value) <= 1e-12 * max(1, abs(have)))))
        if not same:
            problems.append(f"{flag} contradicts the run's {sec}.{field}={have!r}")
    if problems:
        raise DataError(source, "options contradict the run's stored config: " + "; ".join(problems))


def configs_from_args(args: argparse.Namespace) -> tuple[ModelConfig, LossConfig, TrainConfig, list[str]]:
    """(model, loss, train, model fields given explicitly) from defaults, --config and flags."""
    if getattr(args, "config", None):
        raw = json.loads(open(args.config).read())
    else:
        raw = {"model": {}, "loss": {}, "train": {}}
    m = {**dataclasses.asdict(ModelConfig()), **raw["model"]}
    lo = {**dataclasses.asdict(LossConfig()), **raw["loss"]}
    t = {**dataclasses.asdict(TrainConfig()), **raw["train"]}
    if args.loss_type:
        lo.update(dataclasses.asdict(LossConfig.from_loss_type(args.loss_type)))
    if args.arch:
        if args.arch in MODEL_ARCHS:
            m["arch"] = args.arch
        elif args.arch in ARCH_TO_FEATURE:
            t["feature"] = ARCH_TO_FEATURE[args.arch]
        else:
            raise SystemExit(f"--arch {args.arch!r}: expected a feature {sorted(ARCH_TO_FEATURE)} "
                             f"or a model {list(MODEL_ARCHS)}")
    if args.rnn_type:
        m["arch"] = "lstm" if args.rnn_type.lower() in ("lstm", "bilstm") else "transformer"
    pairs = [(arg, {"model": m, "loss": lo, "train": t}[sec], field) for arg, sec, field in FLAG_FIELDS]
    for arg, sec, field in pairs:
        if getattr(args, arg) is not None:
            sec[field] = getattr(args, arg)
    if args.train_speaker_list:
        t["train_speakers"] = _split_list(args.train_speaker_list)
    if args.org_share is not None:
        t["org_share_per_batch"] = args.org_share if args.org_share == "uniform" else float(args.org_share)
    _apply_common(args, t)
    _apply_sets({"model": m, "loss": lo, "train": t}, args.set)
    return (config_from_dict(ModelConfig, m), config_from_dict(LossConfig, lo), config_from_dict(TrainConfig, t),
            [f for f, flag in (("feature_rate_hz", "freq"), ("input_dim", "input_dim"))
             if getattr(args, flag) is not None or f in raw["model"]])


def _apply_common(args: argparse.Namespace, t: dict) -> None:
    for field in ("name", "output_path", "root_dir", "feature", "feature_dir", "device", "threads"):
        if getattr(args, field) is not None:
            t[field] = getattr(args, field)
    if args.no_progress:
        t["progress"] = False


def stored_train_config(args: argparse.Namespace) -> TrainConfig:
    """The run's own TrainConfig (located by --output_path/--name), with flag overrides."""
    from .state import read_run_config

    from pathlib import Path

    from .state import configs_to_dict

    base = dataclasses.asdict(TrainConfig())
    run_dir = f"{args.output_path or base['output_path']}/{args.name or base['name']}"
    m, lo, tc = read_run_config(run_dir)
    check_against_run(args, configs_to_dict(m, lo, tc), str(Path(run_dir) / "config.json"))
    t = dataclasses.asdict(tc)
    _apply_common(args, t)
    return config_from_dict(TrainConfig, t)


def cli_main(argv: list[str]) -> int:
    """argv[0] is the command (train | validate | test | infer), the rest its options."""
    if not argv or argv[0] not in ("train", "validate", "test", "infer"):
        print("usage: python -m lib {train,validate,test,infer} [options]", file=sys.stderr)
        return 2
    command, args = argv[0], build_parser(argv[0]).parse_args(argv[1:])
    from ..threads import pin_threads

    pin_threads(args.threads)  # before torch/numba load: --threads, else this process's cores (lib/threads.py)
    from . import evaluate, loop

    try:
        if command == "train":
            model_cfg, loss_cfg, train_cfg, given = configs_from_args(args)
            run_dir = loop.train(train_cfg, model_cfg, loss_cfg, given=given)
            print(f"run folder: {run_dir}")
            print(json.dumps(loop.best_summary(run_dir)))
            return 0
        if command == "infer":
            from .state import load_checkpoint

            check_against_run(args, load_checkpoint(args.checkpoint)["configs"], args.checkpoint)
            bad = evaluate.infer(args.checkpoint, args.wav_dir, args.out_dir, args.feature, args.feature_checkpoint,
                                 args.device, progress=not args.no_progress, fmt=args.fmt, rig_map=args.rig_map,
                                 window_s=args.infer_window_s, overlap_s=args.overlap_s)
            return _report_bad(bad)
        cfg = stored_train_config(args)
        if command == "validate":
            from .state import run_dir_of

            print(json.dumps(evaluate.validate(run_dir_of(cfg), args.split)))
            return 0
        if args.test_input_path:
            from .state import find_checkpoint, run_dir_of

            # Beside, not over, the corpus predictions: a wav folder may reuse utterance names.
            from pathlib import Path

            out_dir = run_dir_of(cfg) / f"infer_{Path(args.test_input_path).resolve().name}"
            ckpt = find_checkpoint(run_dir_of(cfg), args.test_epoch)
            bad = evaluate.infer(ckpt, args.test_input_path, out_dir, cfg.feature, device=cfg.device,
                                 progress=cfg.progress, window_s=args.infer_window_s, overlap_s=args.overlap_s)
            print(f"predictions: {out_dir}")
            return _report_bad(bad)
        df = evaluate.test(cfg, args.split or "test_a", _split_list(args.test_speakers), args.test_epoch,
                           args.arm, progress=cfg.progress, window_s=args.infer_window_s, overlap_s=args.overlap_s)
        if len(df):
            print(evaluate.summarize_metrics(df).to_string(index=False))
        return 1 if df.attrs.get("bad_files") else 0
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _report_bad(bad: list[DataError]) -> int:
    for e in bad:
        print(f"ERROR {e}", file=sys.stderr)
    return 1 if bad else 0
