"""espeak-ng through its C library (ctypes), with phoneme events for timing.

The library reports, while it synthesises, an event at the start of every
phoneme (espeak's own mnemonic, e.g. ``tS``, ``aI``, ``3:``) with its sample
index; a phoneme ends where the next event starts, the last one at the end of
the audio. The library keeps one global synthesiser per process, so calls are
serialised by a lock; separate processes (multiprocessing workers) each load
their own copy, and a forked child re-initialises before first use.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

import numpy as np

from .base import EngineError, RawSynthesis, map_symbol, split_segment
from .espeak_phones import SILENT_MNEMONICS, table_for
from ..phones import SIL
from ...workers import maybe_die

ENGINE = "espeak"
DEFAULT_VOICES = ("en-us", "en-us+m3", "en-us+f2", "en-gb")
RATE_NORMAL_WPM = 175  # espeakRATE_NORMAL in speak_lib.h: rate factor 1.0
_LIB_NAMES = ("libespeak-ng.so.1", "libespeak-ng.so")
# espeak_SetVoiceByName matches voice files, and British English's file is "gmw/en"
_ALIASES = {"en-gb": "en"}

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_PARAM_RATE = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT of speak_lib.h (40 bytes on 64-bit Linux)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

_lock = threading.Lock()
_state: dict = {"pid": None, "lib": None, "sr": 0, "chunks": [], "events": [], "callback": None}


def _load_library() -> ctypes.CDLL | None:
    for name in _LIB_NAMES + ((ctypes.util.find_library("espeak-ng") or ""),):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    return None


def _on_audio(wav, n_samples, events) -> int:
    """Synth callback: collect audio and phoneme events (return 0 = keep going)."""
    if n_samples > 0:
        _state["chunks"].append(np.ctypeslib.as_array(wav, (n_samples,)).copy())
    i = 0
    while events[i].type != _EVENT_LIST_TERMINATED:
        if events[i].type == _EVENT_PHONEME:
            _state["events"].append((events[i].id.string.decode("utf-8", "replace"), events[i].sample))
        i += 1
    return 0


def _init() -> ctypes.CDLL:
    """Load and initialise the library once per process (again after a fork)."""
    if _state["pid"] == os.getpid():
        return _state["lib"]
    lib = _load_library()
    if lib is None:
        raise EngineError("espeak-ng library (libespeak-ng.so.1) not found (Debian: apt install espeak-ng)")
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
    if sr <= 0:
        raise EngineError(f"espeak_Initialize failed ({sr})")
    callback = _CALLBACK(_on_audio)  # kept referenced: ctypes must not free it
    lib.espeak_SetSynthCallback(callback)
    _state.update(pid=os.getpid(), lib=lib, sr=sr, callback=callback)
    return lib


def installed_voices() -> list[str] | str:
    """The default variants if the library loads, else why not (see :func:`has_voice`)."""
    if _load_library() is None:
        return "espeak-ng library not found (Debian: apt install espeak-ng)"
    return [v for v in DEFAULT_VOICES if has_voice(v)]


def _select(lib: ctypes.CDLL, voice: str) -> bool:
    base, plus, variant = voice.partition("+")
    return lib.espeak_SetVoiceByName((_ALIASES.get(base, base) + plus + variant).encode()) == 0


def has_voice(voice: str) -> bool:
    """Whether espeak-ng can select ``voice`` (any language/variant it knows, e.g. "en-029+f3")."""
    with _lock:
        try:
            return _select(_init(), voice)
        except EngineError:
            return False


_worker: dict = {"pid": None, "pool": None, "here": False}


def synthesize_in_this_process() -> None:
    """Declare this process a clean one that only synthesises (the corpus builder's
    fresh per-speaker workers): espeak then runs here instead of in a child."""
    _worker["here"] = True


def raw_phonemes(voice: str, rate: float, text: str) -> tuple[np.ndarray, int, list[tuple[str, int]]]:
    """Audio (samples,) float32, sample rate and (mnemonic, start_sample) events.

    Runs in a dedicated clean child process (started once, spawned): inside a long
    process that has done other work (seen in the test suite) the library dropped
    its first phoneme events and varied its output from call to call, while a
    process that only runs espeak is exact and repeatable. Daemonic processes (the
    corpus builder's fresh per-speaker workers) cannot have children and call it
    directly.
    """
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    if _worker["here"] or mp.current_process().daemon:
        return _raw_phonemes_here(voice, rate, text)
    if _worker["pid"] != os.getpid() or _worker["pool"] is None:
        from concurrent.futures import ProcessPoolExecutor

        import atexit

        _worker.update(pid=os.getpid(), pool=ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")))
        atexit.register(_worker["pool"].shutdown)  # stop the child before interpreter teardown
    try:
        return _worker["pool"].submit(_raw_phonemes_here, voice, rate, text).result()
    except BrokenProcessPool:
        # The child died (crash or kill): an error naming the call, never a wait; the
        # next call starts a fresh child instead of reusing the broken pool.
        _worker["pool"] = None
        raise EngineError(f"espeak-ng child process died while speaking {text!r} "
                          f"with voice {voice!r}") from None


def _raw_phonemes_here(voice: str, rate: float, text: str) -> tuple[np.ndarray, int, list[tuple[str, int]]]:
    maybe_die(f"espeak:{text}")  # test hook (lib.workers)
    with _lock:
        lib = _init()
        if not _select(lib, voice):
            raise EngineError(f"espeak-ng has no voice {voice!r}")
        wpm = int(round(min(max(RATE_NORMAL_WPM * rate, 80), 450)))
        lib.espeak_SetParameter(_PARAM_RATE, wpm, 0)
        _state["chunks"], _state["events"] = [], []
        data = " ".join(text.split()).encode("utf-8")
        err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
        if err != 0:
            raise EngineError(f"espeak_Synth failed ({err}) for voice {voice!r}")
        chunks, events, sr = _state["chunks"], _state["events"], _state["sr"]
    if not chunks:
        raise EngineError(f"espeak-ng voice {voice!r} produced no audio for {text!r}")
    wav = np.concatenate(chunks).astype(np.float32) / 32768.0  # int16 -> [-1, 1)
    return wav, sr, events


def synthesize(voice: str, rate: float, text: str) -> RawSynthesis:
    """Speak ``text`` with espeak-ng voice ``voice`` (e.g. "en-us+m3"); rate 1.0 = 175 wpm."""
    wav, sr, events = raw_phonemes(voice, rate, text)
    n = len(wav)
    table = table_for(voice)
    phones: list[tuple[str, float, float]] = []
    ends = [s for _, s in events[1:]] + [n]
    for (symbol, start), end in zip(events, ends):
        start, end = min(start, n) / sr, min(max(end, start), n) / sr
        if symbol in SILENT_MNEMONICS:
            mapped: tuple[str, ...] = (SIL,)
        else:
            mapped = map_symbol(ENGINE, table, symbol, text)
        if not mapped and phones:  # a modifier: its time belongs to the phone before
            phones[-1] = (phones[-1][0], phones[-1][1], end)
            continue
        phones.extend(split_segment(mapped or (SIL,), start, end))
    if not phones:
        raise EngineError(f"espeak-ng voice {voice!r} reported no phonemes for {text!r}")
    return RawSynthesis(wav, sr, phones)
