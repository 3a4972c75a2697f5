"""Streamable MFCC (``mfcc_live``): the 39-dim T2A recipe with only local operations.

Why a variant: ``lib.features.mfcc`` converts power to dB with librosa's
``top_db=80``, which clips every bin at (utterance maximum - 80 dB): a frame's
value depends on the loudest frame of the whole clip, including the future, so
no stream can reproduce it. ``mfcc_live`` is the same framing and filterbank
with a fixed floor instead (``10 log10(max(S, 1e-10))``, i.e. -100 dB), then the
T2A deltas (regression N=1 and N=2 on the static MFCC, edges replicated).
Every frame then depends only on audio near it, and a stream fed in chunks of
any size yields exactly the frames of the whole clip (tested).

Framing (as lib.features.mfcc): 25 ms Hann window in a 512-point FFT, 10 ms hop,
frame t centred on sample 160 t, the clip zero-padded by 256 samples at both ends
(librosa's ``center=True, pad_mode="constant"``): T = 1 + samples // 160 frames.

Right context of frame t: its FFT window ends at sample 160 t + 256 and the N=2
delta needs static frame t + 2, so frame t is final once 160 t + 576 samples
have arrived: :data:`FEATURE_LOOKAHEAD_MS` = 36 ms.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import AUDIO_SAMPLE_RATE_HZ
from ..features.mfcc import DEFAULT_MFCC, regression_delta

FEATURE_NAME = "mfcc_live"
RATE_HZ = 100
HOP = AUDIO_SAMPLE_RATE_HZ // RATE_HZ  # 160 samples
N_FFT = DEFAULT_MFCC.n_fft  # 512
HALF = N_FFT // 2  # centre padding, samples
AMIN = 1e-10  # power floor: -100 dB, fixed (no per-clip maximum)
DELTA_RIGHT = 2  # the N=2 regression delta reads two frames ahead
DIM = 3 * DEFAULT_MFCC.n_mfcc  # 39
# Samples past frame t's centre needed before frame t is final.
LOOKAHEAD_SAMPLES = HALF + DELTA_RIGHT * HOP  # 576
FEATURE_LOOKAHEAD_MS = 1000 * LOOKAHEAD_SAMPLES / AUDIO_SAMPLE_RATE_HZ  # 36.0


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa

    c = DEFAULT_MFCC
    return librosa.filters.mel(sr=AUDIO_SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=c.n_mels, fmin=c.fmin_hz,
                               fmax=c.fmax_hz).astype(np.float32)  # (n_mels, 257)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    import scipy.signal

    w = scipy.signal.get_window("hann", DEFAULT_MFCC.win_samples, fftbins=True)  # (400,)
    lpad = (N_FFT - len(w)) // 2  # librosa centres the short window inside the FFT frame
    return np.pad(w, (lpad, N_FFT - len(w) - lpad)).astype(np.float32)  # (512,)


def static_from_padded(p: np.ndarray) -> np.ndarray:
    """Static MFCC of every full 512-sample frame of an already padded signal.

    p: (samples,) float32, frame k = p[160 k : 160 k + 512]. Returns (K, 13) float32,
    K = 1 + (len(p) - 512) // 160 (0 when shorter than one frame). Each frame is
    computed on its own samples only, so any slice of the padded stream that starts
    on the hop grid gives the same rows as the whole.
    """
    import scipy.fft

    if len(p) < N_FFT:
        return np.zeros((0, DEFAULT_MFCC.n_mfcc), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(p, N_FFT)[::HOP]  # (K, 512) view
    spec = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2  # (K, 257) power
    mel = spec.astype(np.float32) @ _mel_basis().T  # (K, n_mels)
    log = 10.0 * np.log10(np.maximum(mel, AMIN))  # fixed floor: no dependence on other frames
    return scipy.fft.dct(log, type=2, norm="ortho", axis=1)[:, : DEFAULT_MFCC.n_mfcc].astype(np.float32)


def _with_deltas(c: np.ndarray) -> np.ndarray:
    """(T, 13) static -> (T, 39): static, regression delta N=1, N=2 (edges replicated)."""
    return np.concatenate([c, regression_delta(c, 1), regression_delta(c, 2)], axis=1)


def mfcc_live(wav: np.ndarray) -> np.ndarray:
    """Whole clip -> (T, 39) float32 at 100 Hz, T = 1 + len(wav) // 160 (the offline reference).

    wav: (samples,) float32 at 16 kHz.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono (samples,), got shape {wav.shape}")
    c = static_from_padded(np.pad(wav, (HALF, HALF)))  # (T, 13)
    return _with_deltas(c)


class ChunkedStream:
    """What every streaming front end shares: audio chunks of any size in, the feature
    frames that became final out. A subclass sets ``DIM`` (features per frame) and
    ``PAD`` (samples of right zero pad at the end, as the offline framing has), and
    implements ``_advance()`` (consume ``self._p``) and ``_emit(final)`` (the new rows)."""

    DIM: int
    PAD: int

    def push(self, wav: np.ndarray) -> np.ndarray:
        """wav (n,) float32 at 16 kHz -> (k, DIM) newly final frames (k >= 0)."""
        if self._done:
            raise RuntimeError(f"stream already flushed; make a new {type(self).__name__}")
        wav = np.asarray(wav, dtype=np.float32).reshape(-1)
        self._p = np.concatenate([self._p, wav])
        self.n_samples += len(wav)
        self._advance()
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """End of the clip: the right pad (and any edge rule of the features), as offline. -> (k, DIM)."""
        if self._done:
            return np.zeros((0, self.DIM), np.float32)
        self._p = np.concatenate([self._p, np.zeros(self.PAD, np.float32)])
        self._advance()
        self._done = True
        return self._emit(final=True)


class StreamingMfcc(ChunkedStream):
    """Incremental :func:`mfcc_live`: push chunks of any size, get each frame once it is final.

    Memory is bounded: the audio kept is under one FFT frame plus one hop, the static
    frames kept are the last 2 * DELTA_RIGHT. ``push`` + ``flush`` over a clip
    concatenate to exactly ``mfcc_live(clip)``.
    """

    DIM, PAD = DIM, HALF

    def __init__(self) -> None:
        self._p = np.zeros(HALF, np.float32)  # the padded stream from sample p_start on; starts with the left pad
        self._p_start = 0  # padded-stream index of self._p[0]
        self._n_static = 0  # static frames computed so far
        self._c = np.zeros((0, DEFAULT_MFCC.n_mfcc), np.float32)  # static frames [c_start, n_static)
        self._c_start = 0
        self.n_frames = 0  # full frames emitted so far
        self.n_samples = 0  # audio samples pushed so far
        self._done = False
        self.lookahead_ms = FEATURE_LOOKAHEAD_MS

    def _advance(self) -> None:
        """Compute every static frame whose 512 samples are in the buffer; drop used audio."""
        k0 = self._n_static
        new = static_from_padded(self._p[k0 * HOP - self._p_start:])  # frames k0, k0+1, ...
        if len(new):
            self._n_static += len(new)
            self._c = np.concatenate([self._c, new])
            keep_from = self._n_static * HOP  # next frame's first sample (padded index)
            self._p = self._p[keep_from - self._p_start:]
            self._p_start = keep_from

    def _emit(self, final: bool) -> np.ndarray:
        """Full frames [n_frames, upto): deltas need static frames up to t + 2 (or the clip's end)."""
        upto = self._n_static if final else max(self._n_static - DELTA_RIGHT, self.n_frames)
        if upto <= self.n_frames:
            return np.zeros((0, DIM), np.float32)
        # Rows n_frames.. need static frames from n_frames - 2 (or the clip start, where edges replicate).
        lo = max(self.n_frames - DELTA_RIGHT, 0)
        seg = self._c[lo - self._c_start: upto + (0 if final else DELTA_RIGHT) - self._c_start]
        full = _with_deltas(seg)[self.n_frames - lo: upto - lo]  # (upto - n_frames, 39)
        self.n_frames = upto
        drop = max(self.n_frames - DELTA_RIGHT, 0) - self._c_start  # history the next rows need: 2 frames
        if drop > 0:
            self._c = self._c[drop:]
            self._c_start += drop
        return full

    @staticmethod
    def frames_final_after(n_samples: int) -> int:
        """Frames ``push`` has emitted once ``n_samples`` samples have arrived (before flush)."""
        n_static = max(0, (n_samples + HALF - N_FFT) // HOP + 1) if n_samples + HALF >= N_FFT else 0
        return max(n_static - DELTA_RIGHT, 0)


# The features that can be computed incrementally (lib.live.ppg names the second).
LIVE_FEATURES = (FEATURE_NAME, "ppg_live")


def _check_live_feature(feature: str, ppg_net) -> None:
    """A live feature name this module knows, with the network ``ppg_live`` needs."""
    if feature not in LIVE_FEATURES:
        raise ValueError(f"unknown live feature {feature!r}; known: {FEATURE_NAME!r}, 'ppg_live'")
    if feature == "ppg_live" and ppg_net is None:
        raise ValueError("ppg_live needs a PPG network (a lib.features.ppg checkpoint)")


def live_feature_function(feature: str, ppg_net=None):
    """wav (samples,) -> (T, D) for a live feature name: ``mfcc_live`` or ``ppg_live`` (needs ``ppg_net``)."""
    _check_live_feature(feature, ppg_net)
    if feature == FEATURE_NAME:
        return mfcc_live
    from .ppg import ppg_live

    return lambda wav: ppg_live(wav, ppg_net)


def make_streaming_features(feature: str, ppg_net=None):
    """A fresh incremental extractor (push / flush, ``lookahead_ms``) for a live feature name."""
    _check_live_feature(feature, ppg_net)
    if feature == FEATURE_NAME:
        return StreamingMfcc()
    from .ppg import StreamingPpg

    return StreamingPpg(ppg_net)


def extract_live_features(root: str | Path, speakers: Sequence[str] | None = None,
                          splits: Sequence[str] | None = None, feature: str = FEATURE_NAME,
                          ppg_net=None, progress: bool = True) -> int:
    """Write ``<root>/wav_features/<spk>/<feature>/<split>/<utt>.npy`` (+ sidecar with
    rate_hz) of a live feature (:func:`mfcc_live`, or ``ppg_live`` with ``ppg_net``) for every
    wav; files already present are kept. Returns the number written."""
    from tqdm.auto import tqdm

    from ..features.extract import feature_path, find_wavs
    from ..io import atomic_write_bytes, atomic_write_text, read_audio
    import io as _io

    fn = live_feature_function(feature, ppg_net)
    rate = RATE_HZ if feature == FEATURE_NAME else 50
    n = 0
    for spk, split, wav in tqdm(find_wavs(root, speakers, splits), desc=feature, disable=not progress):
        npy = feature_path(root, spk, feature, split, wav.stem)
        if npy.is_file() and npy.with_suffix(".json").is_file():
            continue
        arr = fn(read_audio(wav))
        buf = _io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(npy, buf.getvalue())
        meta = {"extractor": feature, "version": 1, "rate_hz": rate, "shape": list(arr.shape),
                "time_axis": 0, "dims": [int(arr.shape[1])], "dtype": "float32", "wav": str(wav)}
        atomic_write_text(npy.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
        n += 1
    return n
