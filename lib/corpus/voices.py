"""One interface over the offline TTS engines of the built-in corpus.

A voice is ``engine:voice[@rate]`` (:class:`VoiceSpec`); :func:`synthesize` returns
16 kHz mono float32 audio plus phone segments in the common inventory
(:mod:`lib.corpus.phones`) that tile the clip exactly from 0 to its duration,
leading and trailing pauses included as "sil". Engines: festival, flite,
espeak (espeak-ng), piper; see :mod:`lib.corpus.engines`.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..config import AUDIO_SAMPLE_RATE_HZ
from .engines import ENGINE_MODULES, engine_module
from .engines.base import EngineError, PhoneMapError  # noqa: F401  (re-exported for callers)
from .phones import SIL, check_phone

END_TOLERANCE_S = 0.05  # how far the last spoken phone may end past the audio
_EPS_S = 1e-6

# Rates for the espeak variants: 1.0 = 175 words per minute, 0.75 ~ 130 wpm.
DEFAULT_RATES = {"espeak": (1.0, 0.75)}


@dataclass(frozen=True)
class VoiceSpec:
    """A TTS voice: ``engine`` ("festival" | "flite" | "espeak" | "piper"), the engine's
    voice name, and a speaking-rate factor (1.0 = the voice's own rate, 2.0 = twice as fast)."""

    engine: str
    voice: str
    rate: float = 1.0

    def __post_init__(self):
        if self.engine not in ENGINE_MODULES:
            raise ValueError(f"unknown TTS engine {self.engine!r}; known: {sorted(ENGINE_MODULES)}")
        if not self.voice:
            raise ValueError("empty voice name")
        if not 0.25 <= self.rate <= 4.0:
            raise ValueError(f"rate factor {self.rate} outside [0.25, 4]")

    @property
    def name(self) -> str:
        """Speaker folder name, e.g. ``festival_kal_diphone``, ``espeak_en-us-m3_r75``."""
        voice = re.sub(r"[^A-Za-z0-9_-]", "-", self.voice)
        rate = "" if abs(self.rate - 1.0) < 1e-9 else f"_r{round(self.rate * 100)}"
        return f"{self.engine}_{voice}{rate}"

    def __str__(self) -> str:
        return f"{self.engine}:{self.voice}" + ("" if self.rate == 1.0 else f"@{self.rate:g}")


def parse_voice(text: str) -> VoiceSpec:
    """``"engine:voice[@rate]"`` -> VoiceSpec, e.g. ``"espeak:en-us+m3@0.75"``."""
    engine, sep, rest = text.strip().partition(":")
    if not sep or not rest:
        raise ValueError(f"voice {text!r} is not 'engine:voice[@rate]'")
    voice, at, rate = rest.rpartition("@") if "@" in rest else (rest, "", "")
    try:
        return VoiceSpec(engine, voice, float(rate) if at else 1.0)
    except ValueError as e:
        raise ValueError(f"voice {text!r}: {e}") from None


@dataclass
class Synthesis:
    """TTS output.

    wav: (samples,) float32 at ``sample_rate_hz`` (16 kHz), mono.
    phones: (phone, start_s, end_s), contiguous, from 0 to ``duration_s``, phones in
        the common inventory; pauses are "sil".
    """

    wav: np.ndarray
    phones: list[tuple[str, float, float]]
    sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ
    spec: VoiceSpec | None = field(default=None, compare=False)

    @property
    def duration_s(self) -> float:
        return len(self.wav) / self.sample_rate_hz


def normalize_segments(phones: list[tuple[str, float, float]], duration_s: float,
                       where: str = "") -> list[tuple[str, float, float]]:
    """Make engine segments tile [0, duration_s] exactly.

    A gap before the first phone becomes "sil"; segments are clipped to the audio
    (diphone voices report a final pause longer than the audio they make), the last
    one is stretched to the end; adjacent "sil" merge, zero-length segments go.
    Raises EngineError when segments overlap/run backwards, or when a spoken phone
    ends more than END_TOLERANCE_S past the audio (timings that do not fit it).
    """
    out: list[tuple[str, float, float]] = []

    def append(phone: str, start: float, end: float) -> None:
        if end - start <= _EPS_S:
            return
        if out and out[-1][0] == phone == SIL:
            out[-1] = (SIL, out[-1][1], end)
        else:
            out.append((phone, start, end))

    t = 0.0
    for phone, start, end in phones:
        check_phone(phone)
        if start < t - 1e-3 or end < start - _EPS_S:
            raise EngineError(f"{where}: phone segments overlap or run backwards at {phone} {start:.3f}-{end:.3f}")
        if phone != SIL and end > duration_s + END_TOLERANCE_S:
            raise EngineError(f"{where}: phone {phone} ends at {end:.3f} s, past the audio ({duration_s:.3f} s)")
        start, end = min(start, duration_s), min(end, duration_s)
        append(SIL, t, start)  # a gap (e.g. before the first phone) is a pause
        start = max(start, t)
        append(phone, start, end)
        t = max(t, end)
    if not out:
        return [(SIL, 0.0, duration_s)]
    if out[-1][0] == SIL or duration_s - out[-1][2] <= END_TOLERANCE_S:
        out[-1] = (out[-1][0], out[-1][1], duration_s)
    else:  # the engine stopped reporting before the audio ended: the rest is a pause
        out.append((SIL, out[-1][2], duration_s))
    return out


def _resample(wav: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(samples,) at ``sample_rate_hz`` -> (samples',) at 16 kHz.

    soxr directly (what librosa.resample uses by default) avoids librosa's slow
    first call; librosa is the fallback.
    """
    if sample_rate_hz == AUDIO_SAMPLE_RATE_HZ:
        return wav
    try:
        import soxr
    except ImportError:
        import librosa

        return librosa.resample(wav, orig_sr=sample_rate_hz, target_sr=AUDIO_SAMPLE_RATE_HZ)
    return soxr.resample(wav, sample_rate_hz, AUDIO_SAMPLE_RATE_HZ, quality="HQ")


def synthesize(spec: VoiceSpec, text: str) -> Synthesis:
    """Speak ``text`` with ``spec``: 16 kHz float32 audio and its phone segments.

    Raises:
        PhoneMapError: the engine used a phone symbol no table maps (names engine, symbol).
        EngineError: the engine failed or its timings do not fit its audio.
    """
    if not text.strip():
        raise ValueError(f"{spec}: nothing to say (blank text)")
    raw = engine_module(spec.engine).synthesize(spec.voice, spec.rate, text)
    wav = np.asarray(raw.wav, dtype=np.float32)
    if wav.ndim != 1 or len(wav) == 0:
        raise EngineError(f"{spec}: engine returned no mono audio for {text!r}")
    wav = np.ascontiguousarray(_resample(wav, raw.sample_rate_hz), dtype=np.float32)  # (samples,)
    peak = float(np.abs(wav).max())
    if peak > 1.0:  # resampling rings past full scale on normalised (piper) audio; PCM16 would clip
        wav /= peak
    phones = normalize_segments(raw.phones, len(wav) / AUDIO_SAMPLE_RATE_HZ, where=f"{spec} {text!r}")
    return Synthesis(wav=wav, phones=phones, spec=spec)


def default_voices() -> list[VoiceSpec]:
    """Every voice the project knows, installed or not."""
    specs = []
    for engine in ENGINE_MODULES:
        for voice in engine_module(engine).DEFAULT_VOICES:
            for rate in DEFAULT_RATES.get(engine, (1.0,)):
                specs.append(VoiceSpec(engine, voice, rate))
    return specs


def list_voices(candidates: list[VoiceSpec] | None = None) -> list[VoiceSpec]:
    """The ``candidates`` (default: :func:`default_voices`) installed on this machine.

    A missing engine or voice is skipped with a warning, never an error.
    """
    candidates = default_voices() if candidates is None else candidates
    installed: dict[str, list[str] | str] = {}
    out = []
    for spec in candidates:
        if spec.engine not in installed:
            try:
                installed[spec.engine] = engine_module(spec.engine).installed_voices()
            except Exception as e:  # a broken install must not stop the others
                installed[spec.engine] = f"{type(e).__name__}: {e}"
        have = installed[spec.engine]
        has_voice = getattr(engine_module(spec.engine), "has_voice", None)  # engines that can probe
        if isinstance(have, str):
            warnings.warn(f"TTS voice {spec} skipped: {have}")
        elif not (has_voice(spec.voice) if has_voice else spec.voice in have):
            warnings.warn(f"TTS voice {spec} skipped: {spec.engine} has no voice {spec.voice!r} here")
        else:
            out.append(spec)
    return out
