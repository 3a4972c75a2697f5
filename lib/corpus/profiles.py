"""Corpus configuration and the named size profiles (tiny, quick, default, paper)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class CorpusConfig:
    """What to build. Voices are ``engine:voice[@rate]`` strings (see lib.corpus.voices).

    Utterances u0001.. are numbered over train, then val_1, then test_a. ``org_voice``
    plays the recorded speaker; ``tts_voices`` speak every split (training
    augmentation); ``held_out_voices`` speak only test_a and are never trained on.
    """

    profile: str = "quick"
    seed: int = 0
    n_train: int = 60
    n_val: int = 20
    n_test: int = 30
    org_voice: str = "piper:joe"
    tts_voices: tuple[str, ...] = ()
    held_out_voices: tuple[str, ...] = ()
    text_file: str | None = None  # one sentence per line instead of the generator
    workers: int = 2
    # Rig of the recorded speaker (oracle labels use the same face without randomness).
    lead_s: float = 0.06
    strength_jitter: float = 0.12
    noise_std: float = 0.04


# Voice pools, most natural first; a profile takes what it needs from them.
_FESTIVAL = ("festival:cmu_us_slt_arctic_hts", "festival:kal_diphone")
_FLITE = ("flite:awb", "flite:rms", "flite:slt", "flite:kal16")
_ESPEAK = ("espeak:en-us", "espeak:en-gb", "espeak:en-us+f2", "espeak:en-us+m3@0.85", "espeak:en-gb+f4@1.15",
           "espeak:en-us+m7@1.1", "espeak:en-gb+m3@0.9", "espeak:en-us+f3@1.2")

PROFILES: dict[str, CorpusConfig] = {
    "tiny": CorpusConfig(profile="tiny", n_train=6, n_val=3, n_test=3, tts_voices=("flite:slt",)),
    "quick": CorpusConfig(
        profile="quick", n_train=60, n_val=20, n_test=30,
        tts_voices=_FESTIVAL + ("flite:awb", "flite:slt", "espeak:en-us", "espeak:en-gb+m3@1.15"),
        held_out_voices=("festival:ked_diphone",),
    ),
    "default": CorpusConfig(
        profile="default", n_train=200, n_val=50, n_test=50,
        tts_voices=_FESTIVAL + ("flite:awb", "flite:rms", "flite:slt") + _ESPEAK[:5],
        held_out_voices=("festival:ked_diphone", "flite:kal16"),
    ),
    "paper": CorpusConfig(
        profile="paper", n_train=276, n_val=50, n_test=50,
        tts_voices=_FESTIVAL + ("flite:awb", "flite:rms", "flite:slt") + _ESPEAK,
        held_out_voices=("festival:ked_diphone", "flite:kal16"),
    ),
}
assert len(PROFILES["paper"].tts_voices) == 13, "the paper used 13 TTS voices"


def profile_config(profile: str, **overrides) -> CorpusConfig:
    """The config of a named profile with some fields replaced (None values ignored).
    A study-only profile (``full``) gets the corpus it shares (lib.paths.corpus_profile)."""
    from ..paths import CORPUS_PROFILE

    profile = CORPUS_PROFILE.get(profile, profile)
    if profile not in PROFILES:
        raise ValueError(f"unknown corpus profile {profile!r}; known: {sorted(PROFILES)}")
    return dataclasses.replace(PROFILES[profile], **{k: v for k, v in overrides.items() if v is not None})
