"""Every figure of the toolkit, made from data and result files only (never from
notebook state):

- ``data``: one utterance's audio and face curves; a prediction against its ground truth;
- ``corpus``: the built-in corpus's rig curves under a sentence's audio and phones;
- ``studies``: study figures from the tidy CSVs of ``results/<profile>/<study>/``
  (validation curves per question, arms, the few-shot curve, voices, TTS-driven
  faces, learned layer weights) and :func:`study_figures`, which makes all of them;
- ``_style``: what they share (atomic PNG writes, colours, legends outside the data).
"""
from __future__ import annotations

from .corpus import plot_rig_example
from .data import KEY_CHANNELS, plot_utterance
from .studies import (SCORES, plot_arms, plot_few_shot, plot_layer_weights, plot_prediction, plot_training_curves,
                      plot_tts_driven, plot_validation_curves, plot_voices, study_figures)

__all__ = ["KEY_CHANNELS", "SCORES", "plot_arms", "plot_few_shot", "plot_layer_weights", "plot_prediction",
           "plot_rig_example", "plot_training_curves", "plot_tts_driven", "plot_utterance",
           "plot_validation_curves", "plot_voices", "study_figures"]
