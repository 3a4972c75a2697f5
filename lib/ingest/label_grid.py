"""Video-rate face weights -> the corpus's label grid (frame k at k / face_fps seconds).

Linear interpolation over the frames where a face was found; runs without a face
up to ``max_gap_s`` are bridged, longer ones make the clip bad. Pure numpy, so
the timing rules are testable without MediaPipe.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import DataError, interp_channels


def face_runs_missing(found: np.ndarray) -> list[tuple[int, int]]:
    """[(first, stop)) index runs where ``found`` (N,) bool is False."""
    runs, start = [], None
    for i, f in enumerate(found):
        if not f and start is None:
            start = i
        elif f and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(found)))
    return runs


def to_label_grid(times_s: np.ndarray, weights: np.ndarray, n_frames: int, face_fps: int,
                  max_gap_s: float, where: str | Path = "<video>") -> np.ndarray:
    """Video-rate weights -> (n_frames, C) at ``face_fps`` by linear interpolation.

    Args:
        times_s: (N,) increasing frame times in seconds on the audio's clock.
        weights: (N, C) with NaN rows for frames without a face.
    Raises DataError (naming ``where``) for a run without a face longer than
    ``max_gap_s``, or when the label grid runs past the last video frame by more.
    """
    found = ~np.isnan(weights).any(axis=1)  # (N,)
    if not found.any():
        raise DataError(where, "no face found in any frame")
    period_s = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1.0 / face_fps
    for a, b in face_runs_missing(found):
        gap_s = (b - a) * period_s
        if gap_s > max_gap_s + 1e-9:
            raise DataError(where, f"no face for {gap_s:.2f} s (frames {a}-{b - 1}, {times_s[a]:.2f}-"
                                   f"{times_s[b - 1]:.2f} s), longer than max_gap_s={max_gap_s}")
    t_out = np.arange(n_frames) / face_fps  # (n_frames,)
    # A video frame shows the face for one period; past the last one the face is held
    # for as long as a tolerated gap, never longer.
    overrun_s = float(t_out[-1] - (times_s[-1] + period_s)) if n_frames else 0.0
    if overrun_s > max_gap_s + 1e-9:
        raise DataError(where, f"audio runs {overrun_s:.2f} s past the last video frame")
    t_in, w_in = times_s[found], weights[found].astype(np.float64)
    out = interp_channels(t_out, t_in, w_in)  # (n_frames, C)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
