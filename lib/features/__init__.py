"""Audio features: MFCC (100 Hz), HuBERT (50 Hz, all layers), cached corpus extraction.

Modules: ``mfcc`` (two 39-dim recipes), ``hubert`` (fairseq / Hugging Face
checkpoints), ``fairseq_ckpt`` (fairseq checkpoints without fairseq), ``extract``
(the extractor registry, on-disk cache with JSON sidecars, ``python -m lib extract``).
Submodules are imported on demand so MFCC users never pay for torch/transformers.
"""
