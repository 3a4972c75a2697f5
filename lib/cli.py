"""`python -m lib <command> ...`: one entry point for scripts and GPU boxes.

Each command lives in its topic module as ``cli_main(argv: list[str]) -> int``;
this table imports it only when called, so `python -m lib check-data` does not
pay for torch or transformers.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "check-data": ("lib.layout", "check data in the original layout; lists every problem"),
    "build-corpus": ("lib.corpus.builder", "build the built-in synthetic corpus"),
    "extract": ("lib.features.extract", "extract MFCC / PPG / HuBERT features over a corpus"),
    "train-ppg": ("lib.features.ppg", "train the PPG acoustic model on the built-in corpus"),
    "train": ("lib.train", "train a model"),
    "validate": ("lib.train", "pick the best epoch on val_1"),
    "test": ("lib.train", "predict a split and score it"),
    "infer": ("lib.train", "predict label CSVs for a folder of wavs"),
    "render": ("lib.render", "render a face video for an utterance"),
    "speak": ("lib.render", "TTS -> features -> face -> video"),
    "label-video": ("lib.ingest.video_cli", "video(s) -> 16 kHz wav + ARKit-52 labels (MediaPipe estimates)"),
    "import-videos": ("lib.ingest.import_videos", "videos + transcripts -> a corpus in the layout"),
    "augment": ("lib.ingest.augment", "add offline TTS voices speaking every org utterance's text"),
    "import-take": ("lib.ingest.livelink", "a Live Link Face take (CSV + wav) -> one utterance at the corpus's fps"),
    "train-live": ("lib.live.train", "train a streaming model (bounded lookahead / left context)"),
    "serve": ("lib.live.server", "WebSocket server + browser page: live faces from a microphone or PCM stream"),
    "export-onnx": ("lib.live.onnx_export", "export a run to ONNX (offline or streaming window)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = ["usage: python -m lib <command> [options]", "", "commands:"]
        lines += [f"  {k:<{width}}  {v[1]}" for k, v in COMMANDS.items()]
        print("\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            print(f"\nunknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    module_name, _ = COMMANDS[argv[0]]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(module_name):
            print(f"command {argv[0]!r} is not available in this version ({module_name} missing)", file=sys.stderr)
            return 2
        raise
    # Modules serving several commands take the command name as argv[0].
    return int(module.cli_main(argv if _serves_many(module_name) else argv[1:]) or 0)


def _serves_many(module_name: str) -> bool:
    return sum(1 for m, _ in COMMANDS.values() if m == module_name) > 1
