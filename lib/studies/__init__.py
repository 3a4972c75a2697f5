"""Studies of notebooks 03-09: arms x seeds, cached runs, tidy CSVs, statistics.

Modules: ``profiles`` (the size table), ``arms`` (what each arm trains on and its
configs), ``oracle`` (the oracle-label view of a corpus), ``runner`` (run keys,
parallel execution, tidy tables), ``study`` (``run_study`` and results/index.csv),
``stats`` (mean ± std, seed-spread rule, relative improvement), ``demo``
(the real sample of notebook 09), ``views`` (what notebooks show of a run).
"""
from .arms import Arm, baseline_arms, data_arms, feature_arms, loss_arms, make_arm, tts_driven_arms
from .profiles import PROFILES, StudyProfile, profile_table, study_profile
from .runner import StudyError
from .study import StudyResult, run_study

__all__ = ["Arm", "make_arm", "baseline_arms", "feature_arms", "loss_arms", "data_arms", "tts_driven_arms",
           "PROFILES", "StudyProfile", "study_profile", "profile_table", "StudyError", "StudyResult", "run_study"]
