"""Festival through one long-lived ``festival --pipe`` process per voice.

Start-up (loading Scheme libraries and a voice) costs ~0.25 s, synthesis of a
sentence with a diphone voice ~10 ms, so each Python process keeps one
festival process per voice and talks to it over pipes. Festival buffers its
stdout when it is a pipe, so the Scheme script reports on stderr (unbuffered)
and ends every answer with a marker line.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from .base import EngineError, RawSynthesis, segments_from_ends
from .radio import RADIO_TO_COMMON

ENGINE = "festival"
DEFAULT_VOICES = ("cmu_us_slt_arctic_hts", "kal_diphone", "ked_diphone")
VOICE_ROOT = Path("/usr/share/festival/voices")
_END = "@@festival-done@@"

_servers: dict[str, "_Server"] = {}
_servers_lock = threading.Lock()


def installed_voices() -> list[str] | str:
    """Voice folder names under festival's voice directory, or why there are none."""
    if shutil.which("festival") is None:
        return "festival is not installed (Debian: apt install festival festvox-kallpc16k ...)"
    return sorted(p.name for p in VOICE_ROOT.glob("*/*") if p.is_dir())


def _scheme_string(text: str) -> str:
    """``text`` as a Scheme string literal (backslash and quote escaped, one line)."""
    flat = " ".join(text.split())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Server:
    """One festival process with one voice loaded; calls are serialised by a lock."""

    def __init__(self, voice: str):
        self.voice = voice
        self.pid = os.getpid()  # a forked child must not share the parent's pipes
        self.lock = threading.Lock()
        self.tmpdir = tempfile.mkdtemp(prefix="festival_")
        self.proc = subprocess.Popen(
            ["festival", "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, bufsize=1)
        self._ask(f"(voice_{voice})\n(format stderr \"{_END}\\n\")\n")

    def _ask(self, script: str) -> list[str]:
        """Send ``script`` and return the stderr lines up to the marker."""
        try:
            self.proc.stdin.write(script)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise EngineError(f"festival voice {self.voice!r}: process died") from None
        lines = []
        while True:
            line = self.proc.stderr.readline()
            if not line:
                raise EngineError(f"festival voice {self.voice!r}: process exited; said {lines[-5:]}")
            line = line.rstrip("\n")
            if line == _END:
                return lines
            lines.append(line)

    def synthesize(self, rate: float, text: str) -> RawSynthesis:
        import soundfile as sf

        wav_path = os.path.join(self.tmpdir, "utt.wav")
        # Duration_Stretch scales the duration model's output (the inverse of a rate);
        # HTS voices ignore it and take hts_engine's own speed option "-r" instead.
        speed = (f"(set! hts_engine_params (append {self.voice}::hts_engine_params '((\"-r\" {rate:.6f}))))\n"
                 if self.voice.endswith("_hts") else "")
        script = (
            f"(Parameter.set 'Duration_Stretch {1.0 / rate:.6f})\n" + speed +
            f"(set! utt1 (utt.synth (Utterance Text {_scheme_string(text)})))\n"
            f"(utt.save.wave utt1 \"{wav_path}\" 'riff)\n"
            "(mapcar (lambda (s) (format stderr \"SEG %s %f\\n\" (item.name s) (item.feat s \"end\")))"
            " (utt.relation.items utt1 'Segment))\n"
            f"(format stderr \"{_END}\\n\")\n")
        with self.lock:
            if os.path.exists(wav_path):
                os.unlink(wav_path)
            lines = self._ask(script)
            if not os.path.exists(wav_path):
                raise EngineError(f"festival voice {self.voice!r} wrote no audio for {text!r}: {lines[-5:]}")
            wav, sr = sf.read(wav_path, dtype="float32", always_2d=True)  # (samples, ch)
        items = []
        for line in lines:
            if line.startswith("SEG "):
                _, name, end = line.split()
                items.append((name, float(end)))
        if not items:
            raise EngineError(f"festival voice {self.voice!r} reported no segments for {text!r}: {lines[-5:]}")
        return RawSynthesis(wav.mean(axis=1), int(sr), segments_from_ends(ENGINE, RADIO_TO_COMMON, items, text))

    def close(self) -> None:
        if self.pid == os.getpid() and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc.stderr.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def _server(voice: str) -> _Server:
    with _servers_lock:
        server = _servers.get(voice)
        if server is None or server.pid != os.getpid() or server.proc.poll() is not None:
            server = _servers[voice] = _Server(voice)
        return server


@atexit.register
def _close_all() -> None:
    for server in list(_servers.values()):
        try:
            server.close()
        except Exception:  # interpreter shutdown: best effort only
            pass


def synthesize(voice: str, rate: float, text: str) -> RawSynthesis:
    """Speak ``text`` with festival voice ``voice`` (e.g. "kal_diphone"); ``rate`` > 1 is faster."""
    return _server(voice).synthesize(rate, text)
