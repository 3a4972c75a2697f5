"""Reading and writing audio, face-parameter labels and their containers.

Inside the library audio is 16 kHz mono float32 and labels are float32 arrays
(frames, channels) carried with their channel names. Every reader raises
:class:`DataError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import csv
import io as _io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from .channels import T2A_37, LIVE_LINK_FACE_61, get_channels
from .config import AUDIO_SAMPLE_RATE_HZ, FACE_FPS


class DataError(ValueError):
    """Bad input: the message always names the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


# ----------------------------------------------------------------------------- atomic writes
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename, so an interrupt
    never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# ----------------------------------------------------------------------------- audio
def read_audio(path: str | Path, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ) -> np.ndarray:
    """Read any common audio file as mono float32 at ``sample_rate_hz``.

    Returns:
        (samples,) float32 in [-1, 1]. Stereo is averaged; 8/16/24/32-bit PCM and
        float files are converted; other rates are resampled with librosa.
    """
    import soundfile as sf

    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (samples, ch)
    except Exception as e:  # soundfile raises several types; all mean "cannot read"
        raise DataError(path, f"unreadable audio ({type(e).__name__}: {e})") from None
    if wav.shape[0] == 0:
        raise DataError(path, "empty audio (0 samples)")
    wav = wav.mean(axis=1)  # (samples,)
    if not np.all(np.isfinite(wav)):
        raise DataError(path, "audio contains NaN or inf samples")
    if sr != sample_rate_hz:
        import librosa

        wav = librosa.resample(wav, orig_sr=sr, target_sr=sample_rate_hz)
    return np.ascontiguousarray(wav, dtype=np.float32)


def audio_duration_s(path: str | Path) -> float:
    """Duration from the file header, without decoding."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as e:
        raise DataError(path, f"unreadable audio ({type(e).__name__}: {e})") from None
    if info.frames == 0:
        raise DataError(path, "empty audio (0 samples)")
    return info.frames / info.samplerate


def write_audio(path: str | Path, wav: np.ndarray, sample_rate_hz: int = AUDIO_SAMPLE_RATE_HZ) -> None:
    """Write mono audio as 16-bit PCM WAV, atomically."""
    import soundfile as sf

    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"{path}: expected mono (samples,), got shape {wav.shape}")
    buf = _io.BytesIO()
    sf.write(buf, np.clip(wav, -1.0, 1.0), sample_rate_hz, subtype="PCM_16", format="WAV")
    atomic_write_bytes(Path(path), buf.getvalue())


# ----------------------------------------------------------------------------- label checks
def channel_names(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """A channel-set name (``"arkit52"``) or a list of names -> tuple of names; None stays None.

    Every reader and writer here takes either form, so a face format's
    ``channel_set`` and a custom rig's list are passed the same way.
    """
    if spec is None:
        return None
    return get_channels(spec)


def check_labels(path: str | Path, values: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """Validate a label array: 2-D, one column per channel, at least one frame, finite."""
    channels = channel_names(channels)
    values = np.asarray(values)
    if values.ndim != 2:
        raise DataError(path, f"labels must be 2-D (frames, channels), got shape {values.shape}")
    if values.shape[1] != len(channels):
        raise DataError(path, f"labels have {values.shape[1]} columns but {len(channels)} channel names")
    if values.shape[0] == 0:
        raise DataError(path, "labels have 0 frames")
    bad = ~np.isfinite(values)
    if bad.any():
        f, c = np.argwhere(bad)[0]
        raise DataError(
            path, f"{int(bad.sum())} NaN/inf label values (first at frame {f}, channel {channels[c]})"
        )
    return values.astype(np.float32, copy=False)


def select_channels(
    path: str | Path, values: np.ndarray, names: Sequence[str], wanted: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Reorder/subset columns to ``wanted`` (set name or list); missing channels are errors."""
    names = tuple(names)
    if wanted is None:
        return values, names
    wanted = channel_names(wanted)
    pos = {n: i for i, n in enumerate(names)}
    missing = [w for w in wanted if w not in pos]
    if missing:
        raise DataError(path, f"missing channels {missing}")
    return values[:, [pos[w] for w in wanted]], wanted


# ----------------------------------------------------------------------------- label CSV
def read_label_csv(
    path: str | Path, channels: Sequence[str] | None = None, known: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read a label CSV: a header row of channel names, then one row per frame.

    Args:
        channels: if given, return exactly these columns in this order (missing -> error).
        known: if given, any header name outside it is an "unknown channel" error.
    Returns:
        values (frames, channels) float32, channel names.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise DataError(path, f"cannot read label file ({e.strerror})") from None
    rows = list(csv.reader(_io.StringIO(text)))
    if not rows:
        raise DataError(path, "empty label file (no header row)")
    header = tuple(h.strip() for h in rows[0])
    try:
        get_channels(list(header))
    except ValueError as e:
        raise DataError(path, f"bad header: {e}") from None
    if known is not None:
        known = channel_names(known)
        unknown = [h for h in header if h not in set(known)]
        if unknown:
            raise DataError(path, f"unknown channels {unknown}")
    body = [r for r in rows[1:] if r]
    try:
        values = np.array([[float(x) for x in r] for r in body], dtype=np.float64)
    except ValueError as e:
        raise DataError(path, f"non-numeric label value ({e})") from None
    if body and any(len(r) != len(header) for r in body):
        raise DataError(path, "rows have a different number of columns than the header")
    values = values.reshape(len(body), len(header))  # (frames, channels)
    values = check_labels(path, values, header)
    return select_channels(path, values, header, channels)


def write_label_csv(path: str | Path, values: np.ndarray, channels: Sequence[str]) -> None:
    """Write labels as CSV (header = channel names), atomically. Same format the
    original system writes for its predictions."""
    channels = channel_names(channels)
    values = check_labels(path, values, channels)
    buf = _io.StringIO()
    buf.write(",".join(channels) + "\n")
    np.savetxt(buf, values, delimiter=",", fmt="%.6f")
    atomic_write_text(Path(path), buf.getvalue())


# ----------------------------------------------------------------------------- original .pkl
def read_pkl_labels(path: str | Path, channels: Sequence[str] = T2A_37) -> dict[str, np.ndarray]:
    """Read the original system's per-split pickle: dict name -> (frames, 37) array.

    Every entry is validated (shape, finite). Pickles can run code when loaded:
    only open files you trust (the original format leaves no alternative).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = pickle.load(f)
    except Exception as e:
        raise DataError(path, f"unreadable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(raw, dict):
        raise DataError(path, f"expected a dict name -> array, got {type(raw).__name__}")
    out = {}
    for name, arr in raw.items():
        out[str(name)] = check_labels(f"{path}[{name}]", np.asarray(arr, dtype=np.float64), channels)
    return out


def write_pkl_labels(path: str | Path, labels: dict[str, np.ndarray]) -> None:
    """Write a dict name -> (frames, 37) float64 array in the original's format."""
    data = {k: np.asarray(v, dtype=np.float64) for k, v in labels.items()}
    atomic_write_bytes(Path(path), pickle.dumps(data, protocol=4))


# ----------------------------------------------------------------------------- .npy + names
def save_npy(path: str | Path, values: np.ndarray, channels: Sequence[str]) -> None:
    """Save labels as ``<path>.npy`` with the channel names in ``<path>.channels.txt``."""
    path = Path(path).with_suffix(".npy")
    channels = channel_names(channels)
    values = check_labels(path, values, channels)
    buf = _io.BytesIO()
    np.save(buf, values)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(path.with_suffix(".channels.txt"), "\n".join(channels) + "\n")


def load_npy(path: str | Path, channels: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    path = Path(path).with_suffix(".npy")
    names_path = path.with_suffix(".channels.txt")
    try:
        values = np.load(path)
    except Exception as e:
        raise DataError(path, f"unreadable .npy ({type(e).__name__}: {e})") from None
    if not names_path.exists():
        raise DataError(path, f"no channel-name file {names_path.name} beside it")
    names = tuple(n.strip() for n in names_path.read_text().splitlines() if n.strip())
    values = check_labels(path, values, names)
    return select_channels(path, values, names, channels)


# ----------------------------------------------------------------------------- Live Link Face
LIVE_LINK_FACE_FPS = 60


def interp_channels(t_out: np.ndarray, t_in: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Resample (len(t_in), C) frames at times ``t_in`` (s) onto ``t_out`` (s), each
    channel linearly (held at the ends) -> (len(t_out), C) float64."""
    return np.stack([np.interp(t_out, t_in, values[:, c]) for c in range(values.shape[1])], axis=1)


def _timecode_s(tc: str, fps: int) -> float:
    # Live Link Face timecodes are HH:MM:SS:FF.fff (FF = frame within the second, .fff its fraction).
    hh, mm, ss, ff = tc.strip().split(":")
    return int(hh) * 3600 + int(mm) * 60 + int(ss) + float(ff) / fps


def _timecode_rate(timecodes: Sequence[str], default: int) -> int:
    """Frame rate of the timecodes' FF field: the app may stamp 60 fps data with a 30 fps
    timecode (FF 0..29, .5 on every other row). The smallest common rate above the largest
    FF seen; ``default`` for takes under a second (FF never wraps)."""
    max_ff = max(int(float(tc.strip().split(":")[3])) for tc in timecodes)
    seconds = {tc.strip().split(":")[2] for tc in timecodes}
    if len(seconds) < 3:  # under about a second: FF has not shown its range
        return default
    return next((r for r in (24, 25, 30, 50, 60, 100, 120) if r > max_ff), max_ff + 1)


LIVE_LINK_COUNT_COLUMNS = ("BlendShapeCount", "BlendshapeCount")  # both spellings occur in real takes


def read_live_link_face_csv(
    path: str | Path,
    face_fps: int = FACE_FPS,
    channels: Sequence[str] | None = T2A_37,
    source_fps: int = LIVE_LINK_FACE_FPS,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read a Live Link Face CSV (Timecode, BlendShapeCount or BlendshapeCount, named
    columns at 60 fps; the calibrated ``_cal.csv`` has the same layout) and resample it
    to ``face_fps`` by linear interpolation over the timecodes.

    Repeated timecodes (the app writes a frame twice when it stalls) keep their
    first row; a take running past midnight continues across the wrap; the
    timecode's own frame rate (30 or 60) is read from its FF field.

    Returns:
        values (round(duration_s * face_fps), channels) float32, channel names.
    """
    path = Path(path)
    try:
        rows = list(csv.reader(_io.StringIO(path.read_text())))
    except OSError as e:
        raise DataError(path, f"cannot read ({e.strerror})") from None
    if not rows or len(rows[0]) < 3 or rows[0][0].strip() != "Timecode":
        raise DataError(path, "not a Live Link Face CSV (first column must be 'Timecode')")
    header = [h.strip() for h in rows[0]]
    if header[1] not in LIVE_LINK_COUNT_COLUMNS:
        raise DataError(path, f"not a Live Link Face CSV (second column {header[1]!r}, expected BlendShapeCount)")
    names = tuple(header[2:])
    unknown = [n for n in names if n not in set(LIVE_LINK_FACE_61)]
    if unknown:
        raise DataError(path, f"unknown channels {unknown}")
    body = [r for r in rows[1:] if r and any(x.strip() for x in r)]
    if len(body) < 2:
        raise DataError(path, "fewer than 2 frames")
    if any(len(r) != len(header) for r in body):
        bad = next(i for i, r in enumerate(body) if len(r) != len(header))
        raise DataError(path, f"row {bad + 2} has {len(body[bad])} fields, header has {len(header)}")
    try:
        tc_rate = _timecode_rate([r[0] for r in body], source_fps)
        t = np.array([_timecode_s(r[0], tc_rate) for r in body])
        vals = np.array([[float(x) for x in r[2:]] for r in body], dtype=np.float64)  # (frames, 61)
    except ValueError as e:
        raise DataError(path, f"bad value ({e})") from None
    vals = check_labels(path, vals, names).astype(np.float64)
    t = t - t[0]
    t = np.where(t < -12 * 3600, t + 24 * 3600, t)  # past midnight
    keep = np.concatenate([[True], np.diff(t) != 0])  # repeated timecodes: first row
    t, vals = t[keep], vals[keep]
    if len(t) < 2 or np.any(np.diff(t) <= 0):
        raise DataError(path, "timecodes are not increasing")
    duration_s = t[-1] + 1.0 / source_fps
    n_out = int(round(duration_s * face_fps))
    t_out = np.arange(n_out) / face_fps
    out = interp_channels(t_out, t, vals)  # (n_out, C)
    return select_channels(path, out.astype(np.float32), names, channels)


def write_live_link_face_csv(
    path: str | Path, values: np.ndarray, channels: Sequence[str], fps: int = LIVE_LINK_FACE_FPS
) -> None:
    """Write frames at ``fps`` in Live Link Face's CSV layout: Timecode, BlendshapeCount
    (the app's spelling), the 61 columns; absent channels as 0."""
    channels = channel_names(channels)
    values = check_labels(path, values, channels)
    full = np.zeros((values.shape[0], len(LIVE_LINK_FACE_61)), np.float32)  # (frames, 61)
    pos = {n: i for i, n in enumerate(LIVE_LINK_FACE_61)}
    for j, c in enumerate(channels):
        if c not in pos:
            raise DataError(path, f"unknown channel {c!r} for Live Link Face")
        full[:, pos[c]] = values[:, j]
    lines = ["Timecode,BlendshapeCount," + ",".join(LIVE_LINK_FACE_61)]
    for i, row in enumerate(full):
        s, f = divmod(i, fps)
        h, rem = divmod(s, 3600)
        m, sec = divmod(rem, 60)
        tc = f"{h:02d}:{m:02d}:{sec:02d}:{f:02d}.000"
        lines.append(f"{tc},{len(LIVE_LINK_FACE_61)}," + ",".join(f"{v:.6f}" for v in row))
    atomic_write_text(Path(path), "\n".join(lines) + "\n")
