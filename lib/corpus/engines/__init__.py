"""Offline TTS engine adapters; each module offers ``installed_voices()``,
``DEFAULT_VOICES`` and ``synthesize(voice, rate, text) -> RawSynthesis``."""
from __future__ import annotations

import importlib
from types import ModuleType

ENGINE_MODULES = {"festival": "festival", "flite": "flite", "espeak": "espeak", "piper": "piper"}


def engine_module(engine: str) -> ModuleType:
    """The adapter module of ``engine`` (raises ValueError naming the known engines)."""
    if engine not in ENGINE_MODULES:
        raise ValueError(f"unknown TTS engine {engine!r}; known: {sorted(ENGINE_MODULES)}")
    return importlib.import_module(f"{__name__}.{ENGINE_MODULES[engine]}")
