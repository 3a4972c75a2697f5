"""`python -m lib label-video VIDEO_OR_FOLDER --out_dir DIR`: wav + ARKit labels per video.

Writes ``DIR/<stem>.wav`` (16 kHz mono PCM16) and ``DIR/<stem>.csv`` (one row per
label frame, header = channel names) for every video, and ``DIR/face.json``
(the channels and fps of the labels). The face format is ``--channels`` /
``--face_fps`` when given, else the one in ``DIR/face.json`` when present, else
ARKit 52 at 25 fps. Finished clips are skipped, so a killed run resumes; clips
that fail (no face for too long, no audio, unreadable) are listed at the end
and the exit status is 1. The labels are estimates from video, not capture.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..channels import FACE_JSON, FaceFormat
from ..io import DataError
from .video import VIDEO_SUFFIXES, LabelVideoConfig, find_model, label_video, model_candidates


def label_video_job(video: str, wav_out: str, csv_out: str, cfg: LabelVideoConfig) -> dict:
    """Batch job (module level, picklable): label one clip unless already done."""
    if Path(csv_out).is_file() and Path(wav_out).is_file():
        return {"skipped": True}
    return label_video(video, wav_out, csv_out, cfg)


def list_videos(path: str | Path) -> list[Path]:
    """A video file, or the videos directly inside a folder (sorted by name)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DataError(p, "no such video file or folder")
    vids = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
    if not vids:
        raise DataError(p, f"no videos ({', '.join(VIDEO_SUFFIXES)}) in this folder")
    return vids


def label_videos(jobs: Sequence[tuple[str, Path, Path, Path]], cfg: LabelVideoConfig, workers: int = 2,
                 progress: bool = True):
    """Label ``(name, video, wav_out, csv_out)`` jobs; returns a :class:`~lib.ingest.batch.BatchResult`
    whose values are :func:`~lib.ingest.video.label_video`'s dicts (or ``{"skipped": True}``)."""
    from .batch import run_jobs

    find_model(cfg.model_path)  # fail once, before the pool, when there is no model
    todo = [(name, (str(v), str(w), str(c), cfg)) for name, v, w, c in jobs]
    return run_jobs(label_video_job, todo, workers=workers, desc="label-video", unit="clip", progress=progress)


def resolve_face_format(out_dir: Path, channels: str | None, face_fps: int | None) -> FaceFormat:
    """Flags, else ``out_dir/face.json``, else ARKit 52 at 25 fps; flags that contradict
    an existing face.json are an error (one folder must not mix formats)."""
    have = FaceFormat.of_corpus(out_dir) if (out_dir / FACE_JSON).is_file() else None
    spec = (channels.split(",") if channels and "," in channels else channels)
    if have is None:
        return FaceFormat.make(spec or "arkit52", face_fps or 25)
    want = FaceFormat.make(spec or list(have.channels), face_fps or have.face_fps)
    if want != have:
        raise DataError(out_dir / FACE_JSON, f"holds {have.n_channels} channels at {have.face_fps} fps; "
                                             f"the flags ask for {want.n_channels} at {want.face_fps} fps")
    return have


def add_label_options(ap: argparse.ArgumentParser) -> None:
    """Options shared by label-video and import-videos."""
    ap.add_argument("--model", default=None,
                    help="FaceLandmarker .task file (default: first of " + ", ".join(map(str, model_candidates()))
                         + ")")
    ap.add_argument("--face_fps", type=int, default=None, help="label frame rate (default: face.json, else 25)")
    ap.add_argument("--max_gap_s", type=float, default=LabelVideoConfig.max_gap_s,
                    help="longest stretch without a face that is interpolated over")
    ap.add_argument("--workers", type=int, default=2, help="processes (1 = in this process)")
    ap.add_argument("--no_progress", action="store_true")


def report(result, n_total: int, what: str) -> int:
    """Print the batch summary and the bad items; the exit status."""
    skipped = sum(1 for v in result.values.values() if v.get("skipped"))
    print(f"{what}: {len(result.values) - skipped} labelled, {skipped} already done, "
          f"{len(result.failures)} failed, of {n_total}")
    for name, msg in result.failures:
        print(f"FAILED {name}: {msg}", file=sys.stderr)
    return 1 if result.failures else 0


def cli_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib label-video", description=__doc__.split("\n\n")[0],
                                 epilog="The labels are MediaPipe estimates from video, not motion capture.")
    ap.add_argument("input", help="a video file or a folder of videos")
    ap.add_argument("--out_dir", required=True, help="folder for <stem>.wav, <stem>.csv and face.json")
    ap.add_argument("--channels", default=None, help="arkit52 (default), t2a37, or comma-separated ARKit names")
    add_label_options(ap)
    a = ap.parse_args(argv)
    out = Path(a.out_dir)
    try:
        fmt = resolve_face_format(out, a.channels, a.face_fps)
        cfg = LabelVideoConfig(face_fps=fmt.face_fps, channels=fmt.channels, model_path=a.model,
                               max_gap_s=a.max_gap_s)
        videos = list_videos(a.input)
        find_model(a.model)
    except (DataError, ValueError, FileNotFoundError) as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    fmt.save(out)
    stems = [v.stem for v in videos]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        print(f"ERROR {a.input}: several videos share the names {dup} (outputs are named by stem)", file=sys.stderr)
        return 2
    jobs = [(str(v), v, out / f"{v.stem}.wav", out / f"{v.stem}.csv") for v in videos]
    result = label_videos(jobs, cfg, workers=a.workers, progress=not a.no_progress)
    return report(result, len(jobs), f"label-video -> {out}")
