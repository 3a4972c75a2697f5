"""Render the two README stills: docs/img/face_neutral.png and docs/img/face_open.png.

    .venv/bin/python scripts/make_readme_stills.py

Made from hand-set blendshape weights (no data needed), so anyone can remake them.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from lib.channels import T2A_37  # noqa: E402
from lib.io import atomic_write_bytes  # noqa: E402
from lib.paths import REPO_ROOT  # noqa: E402
from lib.render import render_frame  # noqa: E402

STILLS = {
    "face_neutral.png": {},
    # An open, rounded vowel like the "o" of "go": jaw down, lips funnelled, brows lifted a little.
    "face_open.png": {"JawOpen": 0.55, "MouthFunnel": 0.45, "MouthLowerDownLeft": 0.4, "MouthLowerDownRight": 0.4,
                      "MouthUpperUpLeft": 0.2, "MouthUpperUpRight": 0.2, "BrowInnerUp": 0.35},
}


def main() -> None:
    out_dir = REPO_ROOT / "docs" / "img"
    for name, weights in STILLS.items():
        v = np.zeros(len(T2A_37), np.float32)  # (37,)
        for channel, value in weights.items():
            v[T2A_37.index(channel)] = value
        buf = io.BytesIO()
        Image.fromarray(render_frame(v, size=(256, 256))).save(buf, format="PNG")
        atomic_write_bytes(out_dir / name, buf.getvalue())
        print(f"wrote {out_dir / name}")


if __name__ == "__main__":
    main()
