"""``python -m lib render`` (labels and predictions of a corpus clip, side by side, with
its audio) and ``python -m lib speak`` (text -> TTS -> features -> model -> face video)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import AUDIO_SAMPLE_RATE_HZ, ORG_SPEAKER, label_frames
from ..io import DataError, read_audio, read_label_csv, write_label_csv
from .video import render_side_by_side


def render_clip(root_dir: str | Path, speaker: str, split: str, utt: str, out: str | Path,
                pred_dirs: list[str | Path] = (), titles: list[str] | None = None, org_speaker: str = ORG_SPEAKER,
                size: tuple[int, int] = (256, 256), progress: bool = True,
                rig_map: str | Path | None = None) -> Path:
    """Ground truth (Corpus.labels: for a TTS voice, org's unaligned labels) and one panel
    per prediction folder, over the clip's audio, at the corpus's face fps. The face is drawn
    from ARKit names: a custom rig is shown through ``rig_map`` (source,target,weight CSV
    onto ARKit names; without it, channels the face does not know stay at rest).
    Returns the file written."""
    from ..layout import Corpus

    corpus = Corpus(root_dir, org_speaker=org_speaker)
    wav = read_audio(corpus.wav_path(speaker, split, utt))
    gt, aligned = corpus.labels(speaker, split, utt)
    panels = [gt]
    default_titles = ["ground truth" if aligned else f"{org_speaker} labels (unaligned)"]
    if pred_dirs:  # lib.train (and torch) only when there are predictions to find
        from ..train.evaluate import prediction_path  # where lib.train writes a clip's prediction
    for d in pred_dirs:
        path = prediction_path(Path(d), corpus, speaker, utt)
        if not path.is_file():
            raise DataError(path, f"no prediction for {speaker}/{split}/{utt} in {d}")
        panels.append(read_label_csv(path, channels=corpus.channels)[0])
        default_titles.append(Path(d).name)
    titles = list(titles) if titles else default_titles
    if len(titles) != len(panels):
        raise ValueError(f"{len(titles)} titles for {len(panels)} panels (ground truth + {len(pred_dirs)})")
    channels = corpus.channels
    if rig_map is not None:
        from ..ingest.rig_map import read_rig_map

        m = read_rig_map(rig_map)
        panels, channels = [m.apply(p, channels) for p in panels], m.targets
    # The corpus's face format: its channels at its fps (video frames at the same rate).
    return render_side_by_side(panels, titles, wav, out, channels=channels, size=size, progress=progress,
                               fps=corpus.face_fps, face_fps=corpus.face_fps)


def speak(text: str, voice: str, checkpoint: str | Path, out: str | Path, csv_out: str | Path | None = None,
          feature_checkpoint: str | Path | None = None, device: str | None = None,
          size: tuple[int, int] = (256, 256), progress: bool = True) -> Path:
    """Say ``text`` with a TTS ``voice`` (``engine:voice[@rate]``), predict the face with a
    trained run (folder -> its best.pt, or a .pt file) and write the video."""
    from ..corpus.voices import parse_voice, synthesize
    from ..train.evaluate import checkpoint_face, feature_function, load_model, predict
    from ..train.state import find_checkpoint

    ckpt = Path(checkpoint)
    ckpt = find_checkpoint(ckpt, "best") if ckpt.is_dir() else ckpt
    model, ck = load_model(ckpt, device)
    synth = synthesize(parse_voice(voice), text)
    extract = feature_function(ck["configs"]["train"]["feature"], feature_checkpoint, device)
    face = checkpoint_face(ck)
    frames = label_frames(synth.duration_s, face.face_fps)
    pred = predict(model, extract(synth.wav), frames)  # (frames, C)
    channels = face.channels
    if csv_out is not None:
        write_label_csv(csv_out, pred, channels)
    title = f"{voice}: {text}"
    return render_side_by_side([pred], [title], synth.wav, out, channels=channels, size=size,
                               fps=face.face_fps, face_fps=face.face_fps, sample_rate_hz=AUDIO_SAMPLE_RATE_HZ,
                               progress=progress)


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h or w)


def cli_main(argv: list[str]) -> int:
    """argv[0] is the command ("render" or "speak"): one module serves both."""
    if not argv or argv[0] not in ("render", "speak"):
        print("usage: python -m lib render|speak ...", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    ap = argparse.ArgumentParser(prog=f"python -m lib {cmd}")
    if cmd == "render":
        ap.description = render_clip.__doc__
        ap.add_argument("--root_dir", required=True)
        ap.add_argument("--speaker", default=ORG_SPEAKER)
        ap.add_argument("--split", required=True)
        ap.add_argument("--utt", required=True)
        ap.add_argument("--pred_dir", nargs="+", default=[], help="run folders holding predicted CSVs")
        ap.add_argument("--titles", nargs="+", default=None, help="one per panel, ground truth first")
        ap.add_argument("--org_speaker", default=ORG_SPEAKER)
        ap.add_argument("--rig_map", default=None, help="CSV source,target,weight: a custom rig onto ARKit names")
    else:
        ap.description = speak.__doc__
        ap.add_argument("text")
        ap.add_argument("--voice", required=True, help="engine:voice[@rate], e.g. espeak:en-us")
        ap.add_argument("--checkpoint", required=True, help="run folder (its best.pt) or a .pt file")
        ap.add_argument("--csv_out", default=None, help="also write the predicted labels as CSV")
        ap.add_argument("--feature_checkpoint", default=None)
        ap.add_argument("--device", default=None)
    ap.add_argument("--out", required=True, help="output .mp4 (a .gif when ffmpeg is missing)")
    ap.add_argument("--size", type=_size, default=(256, 256), help="panel size WxH in pixels")
    ap.add_argument("--no_progress", action="store_true")
    a = ap.parse_args(rest)
    try:
        if cmd == "render":
            path = render_clip(a.root_dir, a.speaker, a.split, a.utt, a.out, a.pred_dir, a.titles, a.org_speaker,
                               a.size, not a.no_progress, a.rig_map)
        else:
            path = speak(a.text, a.voice, a.checkpoint, a.out, a.csv_out, a.feature_checkpoint, a.device, a.size,
                         not a.no_progress)
    except (DataError, ValueError) as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0

