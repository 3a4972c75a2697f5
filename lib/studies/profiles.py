"""Size profiles of the studies (notebooks 03-09): budget, seeds, arms and data sizes.

One table, so a notebook's only switch is ``profile``. ``quick`` is a small but
real version of every study (one seed, a few hundred steps, a subset of arms);
``default`` meets the statistics of the issue (3 seeds, 5 at 1-5 utterances)
within the time budget of a 2-core machine; ``paper`` is the same design with
longer runs and 5 seeds everywhere, for a GPU box.

Budget: every run validates on org ``val_1`` every ``eval_every_steps`` and
stops after ``patience_evals`` evaluations without improvement (early
stopping), so arms with more data are not cut short and arms with little data
stop as soon as they overfit; ``max_steps`` is only a safety bound, set so that
runs stop early (runs.csv says, per run, whether one did: ``stopped_early``).

What ``default`` covers, to fit about 90 minutes on 2 cores with converged runs:
MFCC vs PPG (HuBERT needs a checkpoint that cannot be downloaded here); the
losses that answer the paper's questions (org-only L2; TTS with L2, with
soft-DTW on every pair at gamma 0.001 as the original, and hybrid: L2 on org
pairs, soft-DTW on TTS pairs). Runs with all the data were still improving at
3000 steps in a probe (about 0.055 s a step on one core), so the other loss arms
(gamma sweep, L1 variants, org-only soft-DTW, the original's uniform batches)
move to ``full``: at 300 steps each was worse than its counterpart kept here.
The few-shot curve at 5, 20, 50 and all org utterances (20 vs 50 is the headline
question: does TTS make 20 recorded utterances worth 50?) with all five data
arms, except the oracle arm (TTS clips with time-aligned labels, a diagnostic
upper bound), run only at 5 and 20 utterances (``arm_max_utts``): on a machine
that ran the same code 1.5x slower than the one that first timed ``default``,
the per-run times of the whole grid projected to about 115 minutes, and the
oracle at 50 and all (6 of the longest runs, a projected 18 minutes on 2 cores)
answers no question of the paper; it stays in ``full``. 0, 1 and all TTS
voices. ``full`` runs every arm at every size with 5 seeds. A learning rate of 3e-3 instead of 1e-3 did not converge faster (org-only
and hybrid with all data, 3000 steps: noisier and no lower). The learning rate
is constant (``lr_decay_per_epoch`` 1.0): the original's decay per epoch would,
at one utterance (one batch per epoch), decay every step.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class StudyProfile:
    """Sizes of the studies. ``None`` in a size tuple means "all training utterances"
    / "all training voices"."""

    name: str
    # ---- one run
    # Sized on the 2-core machine: two runs in parallel cost ~34 s per 400-step run (measured
    # on `default`, 04), too slow for the ~140 distinct runs of `default` within its 90-minute
    # budget; 300 steps bring the studies to ~60 min. Runs with all the data are still
    # improving at 300 steps (see the curves): a budget limit, reported in the README.
    max_steps: int = 300
    eval_every_steps: int = 50
    patience_evals: int = 3
    batch_size: int = 16
    d_model: int = 128
    ff_dim: int = 256  # the Transformer's feed-forward width; 2048 (torch's default) triples CPU step time
    n_layers: int = 1
    dropout: float = 0.1
    lr: float = 1e-3
    workers: int = 2  # runs in parallel (one torch thread each)
    # Length bucketing (lib.data): batches of similar-length clips, padding 39 % -> 9 %
    # of the feature frames on the default corpus (benchmarks/profile_train_step.py).
    bucket_batches: int = 20
    # ---- seeds
    seeds: tuple[int, ...] = (0, 1, 2)
    few_shot_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # at few_shot_max_utts utterances or fewer
    few_shot_max_utts: int = 5
    # ---- studies
    feature_arms: tuple[str, ...] = ("mfcc", "ppg", "hubert_last", "hubert_weighted")
    loss_arms: tuple[str, ...] = ("tts_l2", "tts_sdtw_g0.001", "tts_sdtw_g0.01", "tts_sdtw_g0.1", "tts_hybrid",
                                  "tts_l1", "tts_l1_sdtw", "org_l1", "org_l2", "org_sdtw", "tts_hybrid_uniform")
    sizes: tuple[int | None, ...] = (1, 5, 10, 20, 50, None)  # org training utterances of the few-shot curve
    data_arms: tuple[str, ...] = ("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid", "tts_oracle")
    voices: tuple[int | None, ...] = (0, 1, 3, None)  # TTS voices in training (hybrid loss)
    voices_n_utts: int | None = 20  # org utterances of the voices study (few-shot, where TTS matters)
    tts_driven_arms: tuple[str, ...] = ("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid", "tts_oracle")
    tts_driven_sizes: tuple[int | None, ...] = (20, None)
    demo_max_steps: int = 300  # notebook 09 (real sample: 14 clips)
    # (arm, n): arm planned in 06 and 07 only at n org utterances or fewer (budget); () = everywhere
    arm_max_utts: tuple[tuple[str, int], ...] = ()

    def planned_at(self, arm: str, n_utts: int | None) -> bool:
        """Whether ``arm`` is run at ``n_utts`` org utterances (None: all) in 06 and 07."""
        limit = dict(self.arm_max_utts).get(arm)
        return limit is None or (n_utts is not None and n_utts <= limit)

    def seeds_for(self, n_utts: int | None) -> tuple[int, ...]:
        """More seeds where the spread is largest: at few_shot_max_utts utterances or fewer."""
        return self.few_shot_seeds if n_utts is not None and n_utts <= self.few_shot_max_utts else self.seeds


PROFILES: dict[str, StudyProfile] = {
    # For tests and a smoke run on data/corpus/tiny: seconds per run.
    "tiny": StudyProfile(
        name="tiny", max_steps=12, eval_every_steps=6, patience_evals=2, batch_size=4, d_model=32, ff_dim=64,
        workers=2, seeds=(0,), few_shot_seeds=(0,), feature_arms=("mfcc", "ppg", "hubert_last", "hubert_weighted"),
        loss_arms=("org_l2", "tts_l2", "tts_hybrid"), sizes=(1, None), data_arms=("org_l2", "tts_hybrid", "tts_oracle"),
        voices=(0, 1, None), voices_n_utts=None, tts_driven_arms=("org_l2", "tts_hybrid", "tts_oracle"),
        tts_driven_sizes=(None,), demo_max_steps=12),
    # 1 seed, a few hundred steps, a subset of arms: every study, end to end, in minutes.
    "quick": StudyProfile(
        name="quick", max_steps=300, eval_every_steps=50, patience_evals=3, seeds=(0,), few_shot_seeds=(0,),
        loss_arms=("org_l2", "org_sdtw", "tts_l2", "tts_sdtw_g0.001", "tts_hybrid", "tts_hybrid_uniform"),
        sizes=(1, 5, 20, None), data_arms=("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid", "tts_oracle"),
        voices=(0, 1, None), voices_n_utts=20, tts_driven_arms=("org_l2", "tts_l2", "tts_sdtw", "tts_hybrid", "tts_oracle"),
        tts_driven_sizes=(20,), demo_max_steps=200),
    # The reported tables: 3 seeds (5 at 5 utterances), converged runs, the arms that
    # answer the paper's questions (see the module docstring for what moved to full).
    "default": StudyProfile(
        name="default", max_steps=6000, eval_every_steps=100, patience_evals=5,
        feature_arms=("mfcc", "ppg"),
        loss_arms=("org_l2", "tts_l2", "tts_sdtw_g0.001", "tts_hybrid"),
        sizes=(5, 20, 50, None), voices=(0, 1, None), arm_max_utts=(("tts_oracle", 20),)),
    # Every arm of the design, 5 seeds, converged (runs with all the data were still improving
    # at 5500 steps on the default corpus, hence the high cap); resumable over several invocations and
    # machines (results/full/ is committed, and a run its tables record is not rerun).
    "full": StudyProfile(name="full", max_steps=20000, eval_every_steps=100, patience_evals=5,
                         seeds=(0, 1, 2, 3, 4), sizes=(1, 5, 10, 20, 50, 100, None)),
    # Longer runs and 5 seeds everywhere (a GPU box).
    "paper": StudyProfile(name="paper", max_steps=4000, eval_every_steps=200, patience_evals=5,
                          ff_dim=2048, seeds=(0, 1, 2, 3, 4), sizes=(1, 5, 10, 20, 50, 100, None)),
}


def study_profile(name: str, **overrides) -> StudyProfile:
    """The named profile, with fields replaced (None values ignored)."""
    if name not in PROFILES:
        raise ValueError(f"unknown study profile {name!r}; known: {sorted(PROFILES)}")
    return dataclasses.replace(PROFILES[name], **{k: v for k, v in overrides.items() if v is not None})


def profile_table() -> "pd.DataFrame":  # noqa: F821 (pandas imported lazily)
    """The profiles side by side (one row per profile), for notebooks and the README."""
    import pandas as pd

    rows = []
    for p in PROFILES.values():
        d = dataclasses.asdict(p)
        rows.append({k: (", ".join("all" if x is None else f"{x[0]}<={x[1]}" if isinstance(x, (tuple, list))
                                   else str(x) for x in v) if isinstance(v, (tuple, list)) else v)
                     for k, v in d.items()})
    return pd.DataFrame(rows).set_index("name")
