"""ONNX export of a trained run, for engines: ``python -m lib export-onnx --checkpoint RUN --out model.onnx``.

Two variants (``--variant``):

``offline``  any checkpoint (full-context or live). Input ``features`` (1, T, D)
             at the model's feature rate (T dynamic), output ``face`` (1, ceil(T / stride), C)
             at face fps; frame j is the instant j / fps. Trim to round(duration * fps) frames
             (the label convention). Same numbers as lib.train.evaluate's one-pass inference.
``streaming`` live checkpoints (lib.live.train). Fixed shapes, the shape engines and
             TensorRT like: input ``features`` (1, W, 39) with
             W = stride * (warmup + lookahead + N - 1) + 1 feature frames, ending on feature
             stride * newest (``newest``: the newest face frame with a final feature), output
             ``face`` (1, N, C): face frames [newest - lookahead - N + 1, newest - lookahead].
             Call it every N face frames (N = 1: every 40 ms at 25 fps) on the last W frames of
             ``mfcc_live`` features. Until the
             stream has W frames, left-pad with zeros: only the first ``warmup`` frames of a
             stream then differ from offline inference; afterwards they are equal.

Metadata (``metadata_props``): ``face_format`` (JSON: channels + fps), ``feature``,
``feature_rate_hz``, ``sample_rate_hz``, ``stride``, ``lookahead_ms``,
``left_context_ms``, ``warmup_frames``, ``window_feature_frames``, ``frames_per_call``,
``variant``. The graph is checked against torch after export (onnxruntime, max abs difference
printed; ``ONNX_ATOL`` is the tolerance the tests hold it to).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..io import DataError
from ..model import TalkingFaceModel, label_mask
from ..layers import encoder_layer
from .model import LiveFaceModel

ONNX_ATOL = 1e-4  # float32 graph vs torch: differences come from op fusion/ordering only
OPSET = 17


class _Offline(nn.Module):
    """(1, T, D) -> (1, ceil(T / stride), C): one item, every frame valid."""

    def __init__(self, model: TalkingFaceModel):
        super().__init__()
        self.m = model

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        m = self.m
        lengths = torch.ones(1, dtype=torch.long) * feats.shape[1]  # a tensor, so T stays dynamic
        x, lengths = m.front_end(feats, lengths)  # (1, T', d)
        x = m.proj_in(m.norm(x))
        if isinstance(m, LiveFaceModel):
            for li, layer in enumerate(m.encoder.layers):
                x = encoder_layer(layer, x, m.attention_bias(lengths, x.shape[1], li))
        elif m.cfg.arch == "transformer":
            x = m.positions(x)
            x = m.encoder(x)  # one item, no padding: no key mask, every key for every query
        else:
            x, _ = m.lstm(x)
        return m.head(x)  # (1, T', C)


class _Streaming(nn.Module):
    """(1, W, D) window -> (1, N, C): the N newest frames whose lookahead is inside the window."""

    def __init__(self, model: LiveFaceModel, frames_per_call: int):
        super().__init__()
        self.off = _Offline(model)
        self.n = frames_per_call
        self.r = model.lookahead_frames

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        y = self.off(feats)  # (1, W / stride, C)
        end = y.shape[1] - self.r
        return y[:, end - self.n: end]  # (1, N, C)


def _face_of(ck: dict):
    from ..train.evaluate import checkpoint_face

    return checkpoint_face(ck)


def load_any(checkpoint: str | Path) -> tuple[TalkingFaceModel, dict]:
    """A live model when the checkpoint is live, else the full-context model."""
    from ..train.state import load_checkpoint

    ck = load_checkpoint(checkpoint)
    if ck.get("live"):
        from .model import load_live_model

        return load_live_model(checkpoint)
    from ..train.evaluate import load_model

    return load_model(checkpoint, "cpu")


def export_onnx(checkpoint: str | Path, out: str | Path, variant: str = "offline",
                frames_per_call: int = 1) -> dict:
    """Write ``out`` (ONNX, opset 17) and return its metadata plus ``max_abs_diff`` vs torch."""
    import onnx

    model, ck = load_any(checkpoint)
    cfg = model.cfg
    if cfg.feature_combine:
        raise DataError(checkpoint, "layered (HuBERT layer-weighted) models are not exported yet")
    face = _face_of(ck)
    stride = 2 ** model.n_conv
    meta = {"variant": variant, "face_format": json.dumps(face.to_dict()),
            "feature": ck["configs"]["train"]["feature"], "feature_rate_hz": str(cfg.feature_rate_hz),
            "sample_rate_hz": "16000", "stride": str(stride), "input_dim": str(cfg.input_dim)}
    if variant == "offline":
        wrapper, T = _Offline(model), 64 * stride
        dyn = {"features": {1: "T"}, "face": {1: "frames"}}
    elif variant == "streaming":
        if not isinstance(model, LiveFaceModel):
            raise DataError(checkpoint, "the streaming variant needs a live checkpoint (bounded context); "
                                        "this one attends to the whole utterance")
        if model.resampled:
            raise DataError(checkpoint, f"the streaming window is exported for power-of-two rates only "
                                        f"({cfg.feature_rate_hz} Hz at {cfg.face_fps} fps is resampled); use "
                                        f"--variant offline, or lib.live.stream in Python")
        wrapper = _Streaming(model, frames_per_call)
        # Ends on the feature of the newest face frame (stride * newest) and starts on the stride grid.
        T = stride * (model.warmup_frames + model.lookahead_frames + frames_per_call - 1) + 1
        dyn = None
        meta.update(lookahead_ms=str(model.live.lookahead_ms), left_context_ms=str(model.live.left_context_ms),
                    warmup_frames=str(model.warmup_frames), window_feature_frames=str(T),
                    frames_per_call=str(frames_per_call))
    else:
        raise ValueError(f"unknown variant {variant!r}; expected 'offline' or 'streaming'")
    wrapper.eval()
    x = torch.randn(1, T, cfg.input_dim)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, (x,), str(out), input_names=["features"], output_names=["face"],
                          dynamic_axes=dyn, opset_version=OPSET, dynamo=False)
        ref = wrapper(x).numpy()
    proto = onnx.load(str(out))
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(out))
    got = run_onnx(out, x.numpy())
    meta["max_abs_diff"] = float(np.abs(got - ref).max())
    return meta


def run_onnx(path: str | Path, feats: np.ndarray) -> np.ndarray:
    """onnxruntime on (1, T, D) float32 features -> (1, frames, C)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(["face"], {"features": np.asarray(feats, np.float32)})[0]


def cli_main(argv: list[str]) -> int:
    """python -m lib export-onnx --checkpoint RUN|FILE --out model.onnx [--variant offline|streaming]"""
    ap = argparse.ArgumentParser(prog="python -m lib export-onnx", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="run folder (its best.pt) or a .pt file")
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", choices=("offline", "streaming"), default="offline")
    ap.add_argument("--frames_per_call", type=int, default=1, help="streaming: face frames per call")
    a = ap.parse_args(argv)
    ckpt = Path(a.checkpoint)
    if ckpt.is_dir():
        ckpt = ckpt / "best.pt"
    try:
        meta = export_onnx(ckpt, a.out, a.variant, a.frames_per_call)
    except (DataError, ValueError) as e:
        print(f"error: {e}")
        return 2
    print(json.dumps({k: v for k, v in meta.items() if k != "face_format"}, indent=1))
    ok = meta["max_abs_diff"] <= ONNX_ATOL
    print(f"onnxruntime vs torch: max abs difference {meta['max_abs_diff']:.2e} "
          f"({'within' if ok else 'OVER'} {ONNX_ATOL:g})")
    return 0 if ok else 1
