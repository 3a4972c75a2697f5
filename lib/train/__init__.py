"""Training and use of the audio-to-face model: ``train`` / ``validate`` / ``test`` / ``infer``.

Modules: ``loop`` (the training loop, checkpoints, resume), ``evaluate``
(validate, test, infer), ``state`` (run folder, configs, RNG, curves), ``cli``
(``python -m lib train|validate|test|infer``).
"""
from .cli import cli_main
from .evaluate import infer, predict, test, validate
from .loop import best_summary, train

__all__ = ["train", "validate", "test", "infer", "predict", "best_summary", "cli_main"]
