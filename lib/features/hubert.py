"""HuBERT features at 50 Hz, every layer, from fairseq or Hugging Face checkpoints.

Output of :class:`HubertExtractor`: an array (L + 1, T, D) float16 where L is the
number of transformer layers and

* index 0 is the input of the first transformer layer: the CNN features, layer-
  normed and projected to D, plus the convolutional positional embedding; for
  post-norm models (``layer_norm_first=False``, e.g. HuBERT base) this sum is
  then layer-normed (exactly what fairseq feeds its first layer);
* index k (1..L) is the output of transformer layer k, which is what fairseq's
  ``model.extract_features(wav, output_layer=k)`` returns. For pre-norm models
  (``layer_norm_first=True``, e.g. HuBERT large) that means index L is *before*
  the encoder's final LayerNorm: fairseq applies that norm only when
  ``output_layer`` is None, and transformers' ``last_hidden_state`` includes it.

T follows the CNN's valid convolutions: for the standard 7-layer extractor
(total stride 320 samples, receptive field 400) T = (n - 400) // 320 + 1 for
n >= 400 samples (see :func:`hubert_frames`), i.e. 50 frames per second, two per
40 ms label frame: a 5.48 s clip gives 273 frames for 137 label frames, and the
model's single stride-2 layer yields ceil(273 / 2) = 137.

Backends (same numbers, tested against each other):
* ``"convert"`` (default for a ``.pt`` file): reads the fairseq checkpoint
  without fairseq and runs it as a transformers ``HubertModel``;
* ``"fairseq"``: ``fairseq.checkpoint_utils.load_model_ensemble_and_task``;
* a folder is read as a Hugging Face ``HubertModel`` (``save_pretrained`` layout).

The waveform is normalised to zero mean / unit variance per utterance (fairseq's
``F.layer_norm(wav, wav.shape)``) when the checkpoint asks for it: the task's
``normalize`` for fairseq, ``do_normalize`` of ``preprocessor_config.json`` for
Hugging Face folders (absent: normalise iff the CNN uses layer norm, fairseq's
convention).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..config import AUDIO_SAMPLE_RATE_HZ, FEATURE_RATES_HZ
from ..paths import REPO_ROOT
from .fairseq_ckpt import parse_conv_layers, read_fairseq_checkpoint, to_hf_hubert, transformers_hubert

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "data/pretrained/chinese-hubert-large-fairseq-ckpt.pt"
CHECKPOINT_HELP = (
    "HuBERT checkpoint not found: {path}. Download chinese-hubert-large-fairseq-ckpt.pt from the "
    "TencentGameMate chinese_speech_pretrain release (https://huggingface.co/TencentGameMate/"
    "chinese-hubert-large, linked from https://github.com/TencentGameMate/chinese_speech_pretrain) "
    "and place it at " + DEFAULT_CHECKPOINT + " (or pass its path, or a Hugging Face model folder)."
)


def hubert_frames(n_samples: int, conv_layers: Sequence[tuple[int, int, int]]) -> int:
    """Frames the CNN feature extractor yields for ``n_samples`` (valid convolutions)."""
    n = n_samples
    for _, kernel, stride in conv_layers:
        n = (n - kernel) // stride + 1
    return max(n, 0)


def normalize_wave(wav: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance over the utterance, exactly as fairseq's HuBERT dataset does."""
    return F.layer_norm(wav, wav.shape)


def save_hf_folder(model: torch.nn.Module, normalize: bool, folder: str | Path) -> None:
    """Save a transformers HubertModel plus a preprocessor_config.json recording ``normalize``."""
    folder = Path(folder)
    model.save_pretrained(folder)
    pre = {"feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
           "sampling_rate": AUDIO_SAMPLE_RATE_HZ, "padding_value": 0.0,
           "do_normalize": bool(normalize), "return_attention_mask": bool(normalize)}
    (folder / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")


class HubertExtractor:
    """All-layer HuBERT features of 16 kHz waveforms.

    Args:
        checkpoint: fairseq ``.pt`` file or Hugging Face model folder.
        backend: "auto" (folder -> hf, file -> convert), "convert", "fairseq" or "hf".
        device: "cpu", "cuda", ... (default: cuda when available).
    """

    name = "hubert"
    rate_hz = FEATURE_RATES_HZ["hubert"]

    def __init__(self, checkpoint: str | Path = REPO_ROOT / DEFAULT_CHECKPOINT, backend: str = "auto",
                 device: str | None = None):
        path = Path(checkpoint)
        if not path.exists():
            raise FileNotFoundError(CHECKPOINT_HELP.format(path=path))
        if backend == "auto":
            backend = "hf" if path.is_dir() else "convert"
        self.checkpoint = path
        self.backend = backend
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if backend == "hf":
            self._load_hf(path)
        elif backend == "convert":
            model_cfg, task_cfg, sd = read_fairseq_checkpoint(path)
            self.model = to_hf_hubert(model_cfg, sd)
            self.normalize = bool(task_cfg.get("normalize", False))
            self.conv_layers = parse_conv_layers(model_cfg["conv_feature_layers"])
            self.layer_norm_cnn = model_cfg.get("extractor_mode", "default") == "layer_norm"
        elif backend == "fairseq":
            self._load_fairseq(path)
        else:
            raise ValueError(f"unknown HuBERT backend {backend!r}")
        self.model = self.model.to(self.device).eval()
        self.layers = self._encoder_layers()
        self.dim = int(self._dim)

    @classmethod
    def from_model(cls, model: torch.nn.Module, normalize: bool, device: str | None = None) -> "HubertExtractor":
        """Wrap an in-memory transformers HubertModel (e.g. randomly initialised, for timing)."""
        self = cls.__new__(cls)
        cfg = model.config
        self.checkpoint, self.backend, self.normalize = None, "hf", bool(normalize)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.conv_layers = list(zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride))
        self.layer_norm_cnn = cfg.feat_extract_norm == "layer"
        self.model = model.to(self.device).eval()
        self.layers = self._encoder_layers()
        self.dim = int(self._dim)
        return self

    # ------------------------------------------------------------------ loading
    def _load_hf(self, folder: Path) -> None:
        _, HubertModel = transformers_hubert()
        self.model = HubertModel.from_pretrained(str(folder))
        cfg = self.model.config
        self.conv_layers = list(zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride))
        self.layer_norm_cnn = cfg.feat_extract_norm == "layer"
        pre = folder / "preprocessor_config.json"
        if pre.exists():
            self.normalize = bool(json.loads(pre.read_text()).get("do_normalize", True))
        else:
            self.normalize = self.layer_norm_cnn
            log.warning("%s has no preprocessor_config.json; normalize=%s (follows the CNN norm)",
                        folder, self.normalize)

    def _load_fairseq(self, path: Path) -> None:
        from fairseq import checkpoint_utils

        # torch >= 2.6 defaults to weights_only=True, which refuses fairseq's pickled configs.
        old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
        try:
            models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(path)])
        finally:
            if old is None:
                del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
            else:
                os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old
        self.model = models[0]
        self.normalize = bool(cfg.task.normalize)
        self.conv_layers = parse_conv_layers(cfg.model.conv_feature_layers)
        self.layer_norm_cnn = cfg.model.extractor_mode == "layer_norm"

    def _encoder_layers(self) -> torch.nn.ModuleList:
        layers = self.model.encoder.layers
        self._dim = self.model.config.hidden_size if self.backend != "fairseq" else self.model.encoder.embedding_dim
        return layers

    @property
    def n_layers(self) -> int:
        """Number of returned layers: transformer layers + 1 (the transformer input)."""
        return len(self.layers) + 1

    @property
    def dims(self) -> tuple[int, int]:
        """(layers, dim) of every frame."""
        return (self.n_layers, self.dim)

    # ------------------------------------------------------------------ extraction
    @torch.inference_mode()
    def extract_batch(self, wavs: Sequence[np.ndarray], dtype: torch.dtype = torch.float16) -> list[np.ndarray]:
        """Features of several utterances in one forward pass.

        Utterances of different lengths are zero-padded and masked. That is exact
        only for a layer-norm CNN run through transformers: the group norm of the
        "default" CNN normalises over time, so padding would change it, and
        fairseq derives its frame mask from the sample mask by even chunking
        (not the convolution arithmetic), so a padded batch there differs from
        one-by-one runs. Those cases run one utterance at a time.

        Args:
            wavs: each (samples,) float32 at 16 kHz.
        Returns:
            one (L + 1, T_i, D) array per input, ``dtype`` (float16 by default).
        """
        if (not self.layer_norm_cnn or self.backend == "fairseq") and len(wavs) > 1:
            return [out for w in wavs for out in self.extract_batch([w], dtype)]
        lengths = [len(w) for w in wavs]
        frames = [hubert_frames(n, self.conv_layers) for n in lengths]
        if min(frames) < 1:
            raise ValueError(f"audio shorter than HuBERT's receptive field ({min(lengths)} samples)")
        batch = torch.zeros(len(wavs), max(lengths), device=self.device)  # (B, samples)
        pad = torch.ones(len(wavs), max(lengths), dtype=torch.bool, device=self.device)  # True = padding
        for i, w in enumerate(wavs):
            x = torch.as_tensor(np.asarray(w, dtype=np.float32), device=self.device)
            batch[i, : len(w)] = normalize_wave(x) if self.normalize else x
            pad[i, : len(w)] = False
        masked = len(set(lengths)) > 1
        hidden = self._forward_all_layers(batch, pad if masked else None)  # (L+1, B, T, D)
        return [hidden[:, i, : frames[i]].to(dtype).cpu().numpy() for i in range(len(wavs))]

    def __call__(self, wav: np.ndarray) -> np.ndarray:
        """(samples,) float32 at 16 kHz -> (L + 1, T, D) float16."""
        return self.extract_batch([wav])[0]

    def _forward_all_layers(self, batch: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """Run the model once, catching each transformer layer's input/output with hooks.

        Returns:
            (L + 1, B, T, D) float32.
        """
        fairseq = self.backend == "fairseq"
        caught: list[torch.Tensor] = []

        def first_input(module, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            caught.append(x.transpose(0, 1) if fairseq else x)  # fairseq is (T, B, D)

        def output(module, args, out):
            x = out[0] if isinstance(out, tuple) else out
            caught.append(x.transpose(0, 1) if fairseq else x)

        hooks = [self.layers[0].register_forward_pre_hook(first_input, with_kwargs=True)]
        hooks += [layer.register_forward_hook(output) for layer in self.layers]
        try:
            if fairseq:
                self.model.extract_features(batch, padding_mask=pad, mask=False)
            else:
                self.model(batch, attention_mask=None if pad is None else ~pad)
        finally:
            for h in hooks:
                h.remove()
        t = min(x.shape[1] for x in caught)  # fairseq pads T to a multiple of 2 inside
        return torch.stack([x[:, :t].float() for x in caught])  # (L+1, B, T, D)
