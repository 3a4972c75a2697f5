"""Arms of the studies and the configs of their runs.

An :class:`Arm` says what a run trains on and with which loss; together with a
seed and a :class:`~lib.studies.profiles.StudyProfile` it gives the three
configs of :func:`lib.train.train`. Configs are normalised so that runs which
are the same experiment get the same configs, and therefore the same cache key
(lib.studies.runner): an org-only run ignores the unaligned loss, the batch
share and gamma, so "org only, L2" of the data study is the run of the loss
study's "org_l2", whatever the names.

Base arms (``BASE_ARMS``): ``org_*`` train on the recorded speaker only;
``tts_*`` add the TTS voices' clips paired with org's labels (unaligned);
``tts_oracle`` trains the TTS clips against their time-aligned oracle labels
with L2 (an upper bound no real corpus offers).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..config import LossConfig, ModelConfig, TrainConfig
from ..io import DataError
from .profiles import StudyProfile

DEFAULT_GAMMA = LossConfig().gamma

# name -> fields of Arm (loss = (aligned, unaligned))
BASE_ARMS: dict[str, dict] = {
    "org_l1": dict(tts="none", loss=("l1", "l1")),
    "org_l2": dict(tts="none", loss=("l2", "l2")),
    "org_sdtw": dict(tts="none", loss=("softdtw", "softdtw")),
    "tts_l1": dict(tts="paired", loss=("l1", "l1")),
    "tts_l2": dict(tts="paired", loss=("l2", "l2")),
    "tts_l1_sdtw": dict(tts="paired", loss=("l1", "softdtw")),
    "tts_sdtw": dict(tts="paired", loss=("softdtw", "softdtw")),  # the original: soft-DTW on every pair
    "tts_sdtw_g0.001": dict(tts="paired", loss=("softdtw", "softdtw"), gamma=0.001),
    "tts_sdtw_g0.01": dict(tts="paired", loss=("softdtw", "softdtw"), gamma=0.01),
    "tts_sdtw_g0.1": dict(tts="paired", loss=("softdtw", "softdtw"), gamma=0.1),
    "tts_hybrid": dict(tts="paired", loss=("l2", "softdtw")),  # the toolkit's default with TTS data
    "tts_hybrid_uniform": dict(tts="paired", loss=("l2", "softdtw"), org_share="uniform"),
    "tts_oracle": dict(tts="oracle", loss=("l2", "l2")),
}

FEATURE_ARMS: dict[str, dict] = {
    "mfcc": dict(feature="mfcc"),
    "ppg": dict(feature="ppg"),
    "hubert_last": dict(feature="hubert", feature_combine=False),
    "hubert_weighted": dict(feature="hubert", feature_combine=True),
}


@dataclass(frozen=True)
class Arm:
    """One experimental condition. ``label`` names it in a study's tables only."""

    label: str
    base: str = "tts_hybrid"
    tts: str = "paired"  # "none" | "paired" (org's labels, unaligned) | "oracle" (aligned oracle labels)
    loss: tuple[str, str] = ("l2", "softdtw")  # (aligned pairs, unaligned pairs)
    gamma: float = DEFAULT_GAMMA
    n_utts: int | None = None  # org training utterances (train_small_<n>); None = all
    n_voices: int | None = None  # TTS voices trained on, first n in corpus order; None = all
    feature: str = "mfcc"
    feature_combine: bool = False
    org_share: float | str = 0.5

    def row(self) -> dict:
        """Attributes for the study's arms.csv."""
        d = dataclasses.asdict(self)
        d["loss_aligned"], d["loss_unaligned"] = d.pop("loss")
        d["n_utts"] = "all" if self.n_utts is None else self.n_utts
        d["n_voices"] = 0 if self.tts == "none" else ("all" if self.n_voices is None else self.n_voices)
        return d


def make_arm(base: str, label: str | None = None, **fields) -> Arm:
    """Arm from a base name (``BASE_ARMS``) with fields replaced, e.g. ``n_utts=5``."""
    if base not in BASE_ARMS:
        raise ValueError(f"unknown arm {base!r}; known: {sorted(BASE_ARMS)}")
    return Arm(label=label or base, base=base, **{**BASE_ARMS[base], **fields})


def tts_voices(root: str | Path) -> list[str]:
    """Training TTS voices of a corpus in manifest order (held-out voices excluded)."""
    from ..data import held_out_speakers
    from ..layout import Corpus

    corpus = Corpus(root)
    held = held_out_speakers(corpus)
    m = corpus.manifest()
    order = list(dict.fromkeys(m["speaker"].astype(str))) if "speaker" in m.columns else corpus.speakers
    return [s for s in order if s != corpus.org and s not in held and s in corpus.speakers]


def subset_name(root: str | Path, n_utts: int | None) -> str | None:
    """dataset_json name of the first ``n_utts`` training utterances (None: all of them)."""
    if n_utts is None:
        return None
    from ..layout import Corpus

    corpus = Corpus(root)
    if n_utts >= len(corpus.utterances(corpus.org, "train")):
        return None
    name = f"train_small_{n_utts}"
    if name not in corpus.dataset_names():
        raise DataError(Path(root) / "dataset_json" / f"{name}.json",
                        f"no subset of {n_utts} utterances; present: {corpus.dataset_names()}")
    return name


def arm_configs(arm: Arm, seed: int, profile: StudyProfile, root: str | Path,
                output_path: str | Path) -> tuple[ModelConfig, LossConfig, TrainConfig]:
    """The (model, loss, train) configs of one run, normalised (see the module docstring).

    ``root`` is the corpus; an oracle arm trains on its oracle view
    (:func:`lib.studies.oracle.oracle_view`). The run's name is left empty: the
    runner names it by the hash of these configs.
    """
    root = Path(root).resolve()
    aligned, unaligned = arm.loss
    org_share: float | str = arm.org_share
    if arm.tts == "none":
        speakers: tuple[str, ...] = ("org",)
        unaligned, org_share = aligned, "uniform"  # no unaligned pairs: neither matters
    else:
        voices = tts_voices(root)
        if not voices:
            raise DataError(root / "wavs", "the corpus has no TTS voices to train on")
        chosen = voices if arm.n_voices is None or arm.n_voices >= len(voices) else voices[: arm.n_voices]
        speakers = ("all",) if chosen == voices else ("org", *chosen)
    if arm.tts == "oracle":
        from .oracle import oracle_view

        root = oracle_view(root)
        unaligned, org_share = aligned, "uniform"  # every pair is aligned: one shuffled pool
    elif arm.tts not in ("none", "paired"):
        raise ValueError(f"arm {arm.label}: tts must be none, paired or oracle, got {arm.tts!r}")
    gamma = arm.gamma if "softdtw" in (aligned, unaligned) else DEFAULT_GAMMA
    model = ModelConfig(d_model=profile.d_model, ff_dim=profile.ff_dim, n_layers=profile.n_layers,
                        dropout=profile.dropout, feature_combine=arm.feature_combine)
    loss = LossConfig(aligned=aligned, unaligned=unaligned, gamma=gamma)
    train = TrainConfig(
        name="", root_dir=str(root), feature=arm.feature, train_speakers=speakers,
        train_json=subset_name(root, arm.n_utts), output_path=str(output_path), lr=profile.lr,
        lr_decay_per_epoch=1.0, max_steps=profile.max_steps, eval_every_steps=profile.eval_every_steps,
        checkpoint_every_steps=profile.eval_every_steps, early_stop_patience_evals=profile.patience_evals,
        batch_size=profile.batch_size, org_share_per_batch=org_share, seed=seed, threads=1,
        keep_eval_checkpoints=False, progress=False, bucket_batches=profile.bucket_batches)
    return model, loss, train


# ----------------------------------------------------------------------------- the studies' arms
def _size_label(n: int | None) -> str:
    return "all" if n is None else str(n)


def baseline_arms(profile: StudyProfile) -> list[Arm]:
    """Notebook 03: the toolkit's default with TTS data (hybrid loss, all utterances)."""
    return [make_arm("tts_hybrid")]


def feature_arms(profile: StudyProfile) -> list[Arm]:
    """Notebook 04: features under the default loss (hybrid, all utterances)."""
    return [make_arm("tts_hybrid", label=name, **FEATURE_ARMS[name]) for name in profile.feature_arms]


def loss_arms(profile: StudyProfile) -> list[Arm]:
    """Notebook 05: losses and batch composition, all utterances."""
    return [make_arm(name) for name in profile.loss_arms]


def data_arms(profile: StudyProfile) -> list[Arm]:
    """Notebook 06: the few-shot curve (arm x size, within ``profile.arm_max_utts``), then the
    number of TTS voices."""
    arms = [make_arm(a, label=f"{a}@{_size_label(n)}", n_utts=n)
            for n in profile.sizes for a in profile.data_arms if profile.planned_at(a, n)]
    for k in profile.voices:
        n = profile.voices_n_utts
        if k == 0:
            arms.append(make_arm("org_l2", label=f"voices_0@{_size_label(n)}", n_utts=n))
        else:
            arms.append(make_arm("tts_hybrid", label=f"voices_{_size_label(k)}@{_size_label(n)}", n_utts=n,
                                 n_voices=k))
    return arms


def tts_driven_arms(profile: StudyProfile) -> list[Arm]:
    """Notebook 07: arms tested on the TTS voices' test_a clips (against oracle labels)."""
    return [make_arm(a, label=f"{a}@{_size_label(n)}", n_utts=n)
            for n in profile.tts_driven_sizes for a in profile.tts_driven_arms if profile.planned_at(a, n)]
