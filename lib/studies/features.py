"""Which feature arms of notebook 04 can run on a corpus, and why not."""
from __future__ import annotations

from pathlib import Path

from ..paths import REPO_ROOT

HUBERT_CHECKPOINT = REPO_ROOT / "data" / "pretrained" / "chinese-hubert-large-fairseq-ckpt.pt"


def feature_status(root: str | Path, feature: str) -> tuple[bool, str]:
    """(ready, message): ready when every speaker folder has ``feature`` for its splits.

    HuBERT also needs its checkpoint; the message says where to put it.
    """
    from ..layout import Corpus

    corpus = Corpus(root)
    if feature == "hubert" and not HUBERT_CHECKPOINT.is_file():
        return False, (f"hubert: no checkpoint at {HUBERT_CHECKPOINT.relative_to(REPO_ROOT)}; the HuBERT arms are "
                       "skipped (put chinese-hubert-large-fairseq-ckpt.pt there and rerun notebook 02, then this one)")
    missing = [f"{s}/{sp}" for s in corpus.speakers for sp in corpus.splits(s)
               if corpus.utterances(s, sp) and not (corpus.root / "wav_features" / s / feature / sp).is_dir()]
    if missing:
        return False, (f"{feature}: features not extracted for {len(missing)} speaker/split folders "
                       f"(e.g. {missing[0]}); run notebook 02 (or `python -m lib extract --feature {feature}`)")
    return True, f"{feature}: ready"


def available_feature_arms(root: str | Path, arm_names) -> tuple[list[str], list[str]]:
    """(arm names that can run, messages about the ones that cannot) for FEATURE_ARMS names."""
    from .arms import FEATURE_ARMS

    ok, notes = [], []
    for name in arm_names:
        ready, msg = feature_status(root, FEATURE_ARMS[name]["feature"])
        (ok.append(name) if ready else notes.append(f"arm {name} skipped: {msg}"))
    return ok, notes
