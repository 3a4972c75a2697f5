"""flite (CMU's small C synthesizer) through its command line.

``flite -psdur`` prints the Segment relation as ``name:end_s`` tokens; a start is
the previous end. One process per sentence is cheap here (~10-40 ms), so no
server is needed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from .base import EngineError, RawSynthesis, segments_from_ends
from .radio import RADIO_TO_COMMON

ENGINE = "flite"
DEFAULT_VOICES = ("awb", "rms", "slt", "kal16")


def installed_voices() -> list[str] | str:
    """Voices flite lists, or a reason string when flite is not installed."""
    exe = shutil.which("flite")
    if exe is None:
        return "flite is not installed (Debian: apt install flite)"
    out = subprocess.run([exe, "-lv"], capture_output=True, text=True).stdout
    # "Voices available: kal awb_time kal16 awb rms slt"
    return out.split(":", 1)[1].split() if ":" in out else []


def synthesize(voice: str, rate: float, text: str) -> RawSynthesis:
    """Speak ``text`` with flite voice ``voice``; ``rate`` > 1 speaks faster."""
    import soundfile as sf

    fd, wav_path = tempfile.mkstemp(suffix=".wav", prefix="flite_")
    os.close(fd)
    try:
        # duration_stretch scales every segment's duration: the inverse of a rate
        cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={1.0 / rate:.6f}",
               "-psdur", "-t", text, "-o", wav_path]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise EngineError(f"flite voice {voice!r} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
        wav, sr = sf.read(wav_path, dtype="float32", always_2d=True)  # (samples, ch)
    finally:
        os.unlink(wav_path)
    items = []
    for token in proc.stdout.split():
        name, _, end = token.rpartition(":")
        try:
            items.append((name, float(end)))
        except ValueError:
            raise EngineError(f"flite voice {voice!r}: unexpected -psdur token {token!r}") from None
    if not items:
        raise EngineError(f"flite voice {voice!r} printed no segments for {text!r}")
    return RawSynthesis(wav.mean(axis=1), int(sr), segments_from_ends(ENGINE, RADIO_TO_COMMON, items, text))
