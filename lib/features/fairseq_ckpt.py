"""Read a fairseq HuBERT checkpoint without fairseq and convert it to transformers.

A fairseq checkpoint is a pickled dict ``{'args' | 'cfg', 'model', 'task_state',
'optimizer_history', ...}``. ``cfg`` is a plain dict in checkpoints written by
fairseq >= 0.12, but an omegaconf ``DictConfig`` (and ``task_state`` may hold
fairseq ``Dictionary`` objects) in older ones, so a plain ``torch.load`` needs
fairseq and omegaconf importable. :func:`read_fairseq_checkpoint` unpickles every
class from the ``fairseq``, ``omegaconf`` and ``hydra`` packages as an inert
stub that only records its pickled state, then turns the stubs back into plain
dicts/lists. Pickles can run code: open only checkpoints you trust.

:func:`to_hf_hubert` builds a transformers ``HubertModel`` with the same
architecture and copies every inference weight over (the pre-training heads
``final_proj``, ``label_embs_concat`` and ``mask_emb`` are dropped).
"""
from __future__ import annotations

import argparse
import pickle
import re
import types
from pathlib import Path
from typing import Any

import torch

from ..io import DataError

_STUBBED_PACKAGES = ("fairseq", "omegaconf", "hydra")


class _Stub:
    """Stand-in for a class of a stubbed package: keeps constructor args and state."""

    _qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self._args = args
        self._state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state

    # Enums and namedtuples pickle through their class's __new__ / __call__ with args.
    def __repr__(self) -> str:
        return f"<stub {self._qualname} args={self._args!r}>"


_STUB_CLASSES: dict[tuple[str, str], type] = {}


def _stub_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUB_CLASSES:
        _STUB_CLASSES[key] = type(name, (_Stub,), {"_qualname": f"{module}.{name}"})
    return _STUB_CLASSES[key]


class _StubUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in _STUBBED_PACKAGES:
            return _stub_class(module, name)
        return super().find_class(module, name)


# torch.load takes a "pickle module": anything with Unpickler and load.
_stub_pickle = types.ModuleType("_fairseq_free_pickle")
_stub_pickle.Unpickler = _StubUnpickler  # type: ignore[attr-defined]
_stub_pickle.load = lambda f, **kw: _StubUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_stub_pickle.__dict__["dumps"] = pickle.dumps


def to_plain(obj: Any) -> Any:
    """Turn stubs of omegaconf containers/nodes and enums into plain Python values."""
    if isinstance(obj, _Stub):
        state = obj._state
        if isinstance(state, dict) and "_content" in state:  # DictConfig / ListConfig
            return to_plain(state["_content"])
        if isinstance(state, dict) and "_val" in state:  # omegaconf value node
            return to_plain(state["_val"])
        if len(obj._args) == 1:  # Enum member pickled as cls(value)
            return to_plain(obj._args[0])
        return None  # metadata-only objects carry no configuration
    if isinstance(obj, argparse.Namespace):
        return {k: to_plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def read_fairseq_checkpoint(path: str | Path) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """Load a fairseq checkpoint on CPU without importing fairseq.

    Returns:
        (model_cfg, task_cfg, state_dict): plain-dict configs (``cfg['model']`` and
        ``cfg['task']``, or the flat ``args`` namespace of old checkpoints for both)
        and the model's tensors.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_stub_pickle)
    except Exception as e:
        raise DataError(path, f"not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise DataError(path, "not a fairseq checkpoint (no 'model' entry)")
    cfg = to_plain(state.get("cfg"))
    args = to_plain(state.get("args"))
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        model_cfg, task_cfg = cfg["model"], cfg.get("task") or {}
    elif isinstance(args, dict):
        model_cfg = task_cfg = args
    else:
        raise DataError(path, "fairseq checkpoint has neither cfg['model'] nor args")
    model_sd = state["model"]
    if not all(isinstance(v, torch.Tensor) for v in model_sd.values()):
        raise DataError(path, "checkpoint 'model' entry is not a state dict of tensors")
    return model_cfg, task_cfg, dict(model_sd)


def transformers_hubert() -> tuple[type, type]:
    """(HubertConfig, HubertModel) from transformers, with a clear error for a known trap:
    transformers imports torchaudio whenever it is installed, and a torchaudio built for
    another torch (fairseq pulls one in) fails to load its C++ library."""
    try:
        from transformers import HubertConfig, HubertModel

    except OSError as e:
        if "torchaudio" in str(e):
            raise RuntimeError(
                f"torchaudio does not match the installed torch ({e}); transformers imports it "
                "when present. Uninstall it (`pip uninstall -y torchaudio`): the toolkit does not use it."
            ) from None
        raise
    return HubertConfig, HubertModel


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """Parse fairseq's ``conv_feature_layers`` string, e.g. "[(512,10,5)] + [(512,3,2)] * 4".

    Only list literals, ``+`` and ``*`` are allowed (fairseq itself calls eval on it).
    """
    if not re.fullmatch(r"[\s\d\[\]\(\),+*]+", spec):
        raise ValueError(f"unexpected conv_feature_layers {spec!r}")
    layers = eval(spec, {"__builtins__": {}}, {})  # safe: digits, brackets and + * only
    return [tuple(int(v) for v in layer) for layer in layers]  # type: ignore[misc]


def hf_config_from_fairseq(model_cfg: dict) -> "transformers.HubertConfig":  # noqa: F821
    """The transformers HubertConfig of the same architecture (dropouts off)."""
    HubertConfig, _ = transformers_hubert()
    layer_type = model_cfg.get("layer_type", "transformer")
    if layer_type != "transformer":
        raise ValueError(f"only layer_type 'transformer' is supported, got {layer_type!r}")
    if int(model_cfg.get("pos_conv_depth", 1)) != 1:
        raise ValueError("only a single positional convolution (pos_conv_depth=1) is supported")
    if model_cfg.get("conv_pos_batch_norm", False):
        raise ValueError("batch-norm positional convolution (conv_pos_batch_norm) is not supported")
    conv = parse_conv_layers(model_cfg.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"))
    mode = model_cfg.get("extractor_mode", "default")
    if mode not in ("default", "layer_norm"):
        raise ValueError(f"unknown extractor_mode {mode!r}")
    return HubertConfig(
        hidden_size=int(model_cfg["encoder_embed_dim"]),
        num_hidden_layers=int(model_cfg["encoder_layers"]),
        num_attention_heads=int(model_cfg["encoder_attention_heads"]),
        intermediate_size=int(model_cfg["encoder_ffn_embed_dim"]),
        hidden_act=model_cfg.get("activation_fn", "gelu"),
        conv_dim=[c[0] for c in conv],
        conv_kernel=[c[1] for c in conv],
        conv_stride=[c[2] for c in conv],
        conv_bias=bool(model_cfg.get("conv_bias", False)),
        feat_extract_norm="group" if mode == "default" else "layer",
        do_stable_layer_norm=bool(model_cfg.get("layer_norm_first", False)),
        num_conv_pos_embeddings=int(model_cfg.get("conv_pos", 128)),
        num_conv_pos_embedding_groups=int(model_cfg.get("conv_pos_groups", 16)),
        feat_proj_layer_norm=True,  # fairseq HuBERT always layer-norms the CNN output
        layer_norm_eps=1e-5,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
        apply_spec_augment=False,
    )


# fairseq transformer-layer parameter names -> transformers names (inside encoder.layers.<i>.)
_LAYER_NAMES = {
    "self_attn.q_proj": "attention.q_proj",
    "self_attn.k_proj": "attention.k_proj",
    "self_attn.v_proj": "attention.v_proj",
    "self_attn.out_proj": "attention.out_proj",
    "self_attn_layer_norm": "layer_norm",
    "fc1": "feed_forward.intermediate_dense",
    "fc2": "feed_forward.output_dense",
    "final_layer_norm": "final_layer_norm",
}
_DROPPED = ("final_proj.", "label_embs_concat", "mask_emb", "target_glu.")


def _hf_name(name: str, conv_mode: str) -> str | None:
    """transformers name of one fairseq HuBERT parameter (None: not used at inference)."""
    if name.startswith(_DROPPED):
        return None
    m = re.fullmatch(r"feature_extractor\.conv_layers\.(\d+)\.(.+)", name)
    if m:
        i, rest = m.groups()
        # block = Sequential(conv, dropout, norm, gelu); layer_norm mode wraps the norm
        # as Sequential(TransposeLast, LayerNorm, TransposeLast), hence "2.1".
        sub = {"0.weight": "conv.weight", "0.bias": "conv.bias", "2.weight": "layer_norm.weight",
               "2.bias": "layer_norm.bias", "2.1.weight": "layer_norm.weight", "2.1.bias": "layer_norm.bias"}
        if rest not in sub:
            raise KeyError(name)
        return f"feature_extractor.conv_layers.{i}.{sub[rest]}"
    if name.startswith("layer_norm."):
        return "feature_projection." + name
    if name.startswith("post_extract_proj."):
        return name.replace("post_extract_proj.", "feature_projection.projection.")
    m = re.fullmatch(r"encoder\.pos_conv\.0\.(weight_g|weight_v|bias|weight)", name)
    if m:
        # weight norm: transformers registers it as a parametrization (original0 = g, original1 = v)
        leaf = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1",
                "bias": "bias", "weight": "weight"}[m.group(1)]
        return f"encoder.pos_conv_embed.conv.{leaf}"
    if name.startswith("encoder.layer_norm."):
        return name
    m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"encoder.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}.{m.group(3)}"
    raise KeyError(name)


def to_hf_hubert(model_cfg: dict, state_dict: dict[str, torch.Tensor]) -> "transformers.HubertModel":  # noqa: F821
    """A transformers HubertModel (eval mode, float32) holding the fairseq weights.

    Raises:
        KeyError: a fairseq parameter has no counterpart, or a transformers
            parameter was left unset (the conversion must be complete).
    """
    _, HubertModel = transformers_hubert()
    hf_cfg = hf_config_from_fairseq(model_cfg)
    model = HubertModel(hf_cfg)
    target = model.state_dict()
    new: dict[str, torch.Tensor] = {}
    for name, value in state_dict.items():
        hf = _hf_name(name, hf_cfg.feat_extract_norm)
        if hf is None:
            continue
        if hf not in target:
            raise KeyError(f"{name} -> {hf}: no such transformers parameter")
        if tuple(target[hf].shape) != tuple(value.shape):
            raise KeyError(f"{name} -> {hf}: shape {tuple(value.shape)} != {tuple(target[hf].shape)}")
        new[hf] = value.float()
    if "post_extract_proj.weight" not in state_dict:
        # fairseq skips the projection when conv dim == model dim; transformers always has one.
        dim = hf_cfg.hidden_size
        new["feature_projection.projection.weight"] = torch.eye(dim)
        new["feature_projection.projection.bias"] = torch.zeros(dim)
    missing = sorted(set(target) - set(new) - {"masked_spec_embed"})
    if missing:
        raise KeyError(f"fairseq checkpoint lacks weights for {missing[:5]} ({len(missing)} in all)")
    model.load_state_dict(new, strict=False)
    return model.eval()
