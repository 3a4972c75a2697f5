"""HuBERT loading and all-layer features against fairseq's own model.

A tiny fairseq HubertModel (random init) is saved as a fairseq checkpoint with
the structure fairseq's Trainer writes; our fairseq-free loader, the fairseq
backend and the Hugging Face folder round trip must all reproduce fairseq's
``extract_features(output_layer=k)`` for every k.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

fairseq = pytest.importorskip("fairseq", reason="fairseq not installed (make test installs fairseq-fixed)")

from lib.features.hubert import HubertExtractor, hubert_frames, save_hf_folder  # noqa: E402

TOL = 1e-4
# (extractor_mode, layer_norm_first, CNN dim): "default" is HuBERT base's group-norm CNN with a
# projection 16 -> 32; "layer_norm" + pre-norm is HuBERT large's layout, CNN dim == model dim so
# fairseq has no projection (our conversion must insert an identity).
VARIANTS = [("default", False, 16), ("layer_norm", True, 32)]


def _tiny_fairseq_checkpoint(tmp_path, mode: str, layer_norm_first: bool, cnn_dim: int):
    from fairseq.data.dictionary import Dictionary
    from fairseq.models.hubert.hubert import HubertConfig, HubertModel
    from fairseq.tasks.hubert_pretraining import HubertPretrainingConfig
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    cfg = HubertConfig(
        label_rate=50, extractor_mode=mode, layer_norm_first=layer_norm_first, encoder_layers=2,
        encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=2,
        conv_feature_layers=f"[({cnn_dim},10,5)] + [({cnn_dim},3,2)] * 4 + [({cnn_dim},2,2)] * 2",
        conv_pos=16, conv_pos_groups=4,  # even kernel: exercises the SamePad trim
    )
    task_cfg = HubertPretrainingConfig(data=str(tmp_path), labels=["km"], label_rate=50,
                                       normalize=layer_norm_first)
    dictionary = Dictionary()
    for i in range(10):
        dictionary.add_symbol(str(i))
    model = HubertModel(cfg, task_cfg, [dictionary]).eval()
    with torch.no_grad():  # non-trivial norms/biases so a mis-mapped LayerNorm cannot hide
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))

    def plain(c):
        return OmegaConf.to_container(OmegaConf.structured(c), resolve=True, enum_to_str=True)

    # What fairseq's Trainer.state_dict() writes (fairseq 0.12).
    state = {
        "args": None,
        "cfg": {"model": {**plain(cfg), "_name": "hubert"},
                "task": {**plain(task_cfg), "_name": "hubert_pretraining"}},
        "model": model.state_dict(),
        "criterion": None,
        "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": None}, "num_updates": 0}],
        "task_state": {"dictionaries": [dictionary]},
        "extra_state": {"train_iterator": {"epoch": 1, "iterations_in_epoch": 0}},
        "last_optimizer_state": None,
    }
    path = tmp_path / f"tiny_{mode}.pt"
    torch.save(state, path)
    return model, task_cfg.normalize, path


def _fairseq_reference(model, wav: np.ndarray, normalize: bool) -> np.ndarray:
    """(L+1, T, D): the first transformer layer's input, then extract_features(output_layer=k)."""
    x = torch.from_numpy(wav)[None]  # (1, samples)
    if normalize:
        x = torch.nn.functional.layer_norm(x, x.shape[1:])
    caught = []
    hook = model.encoder.layers[0].register_forward_pre_hook(lambda m, a: caught.append(a[0]))
    with torch.no_grad():
        outs = [model.extract_features(x, mask=False, output_layer=k)[0][0]
                for k in range(1, len(model.encoder.layers) + 1)]
    hook.remove()
    t = outs[0].shape[0]
    first = caught[0][:t, 0]  # (T, D): fairseq runs layers on (T, B, D), padded to even T
    return torch.stack([first] + outs).numpy()


@pytest.fixture(scope="module", params=VARIANTS, ids=[v[0] for v in VARIANTS])
def tiny(request, tmp_path_factory):
    return _tiny_fairseq_checkpoint(tmp_path_factory.mktemp("hubert"), *request.param)


def _wavs():
    rng = np.random.default_rng(1)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 7040, 12345)]


@pytest.mark.parametrize("backend", ["convert", "fairseq"])
def test_backends_match_fairseq_every_layer(tiny, backend):
    model, normalize, path = tiny
    ex = HubertExtractor(path, backend=backend, device="cpu")
    assert ex.normalize == normalize
    assert ex.dims == (3, 32)
    for wav in _wavs():
        ref = _fairseq_reference(model, wav, normalize)
        got = ex.extract_batch([wav], dtype=torch.float32)[0]
        assert got.shape == ref.shape == (3, hubert_frames(len(wav), ex.conv_layers), 32)
        assert np.abs(got - ref).max() < TOL


def test_hf_folder_round_trip(tiny, tmp_path):
    model, normalize, path = tiny
    conv = HubertExtractor(path, device="cpu")
    save_hf_folder(conv.model, conv.normalize, tmp_path / "hf")
    hf = HubertExtractor(tmp_path / "hf", device="cpu")
    assert hf.backend == "hf" and hf.normalize == normalize
    wav = _wavs()[0]
    ref = _fairseq_reference(model, wav, normalize)
    assert np.abs(hf.extract_batch([wav], dtype=torch.float32)[0] - ref).max() < TOL
    out = hf(wav)  # default call: fp16
    assert out.dtype == np.float16 and out.shape == ref.shape


@pytest.mark.parametrize("backend", ["convert", "fairseq"])
def test_batch_equals_loop(tiny, backend):
    _, _, path = tiny
    ex = HubertExtractor(path, backend=backend, device="cpu")
    wavs = _wavs()
    batched = ex.extract_batch(wavs, dtype=torch.float32)
    for wav, b in zip(wavs, batched):
        assert np.abs(b - ex.extract_batch([wav], dtype=torch.float32)[0]).max() < TOL


def test_loads_without_fairseq_or_omegaconf(tiny, tmp_path):
    """Old checkpoints pickle omegaconf DictConfig / fairseq objects: load them with both blocked."""
    from omegaconf import OmegaConf

    _, normalize, path = tiny
    state = torch.load(path, weights_only=False)
    state["cfg"] = OmegaConf.create(state["cfg"])  # the pre-0.12 layout
    old = tmp_path / "old_style.pt"
    torch.save(state, old)
    code = textwrap.dedent(f"""
        import sys
        for m in ("fairseq", "omegaconf", "hydra"):
            sys.modules[m] = None  # any import of them now fails
        from lib.features.fairseq_ckpt import read_fairseq_checkpoint
        model_cfg, task_cfg, sd = read_fairseq_checkpoint({str(old)!r})
        assert model_cfg["encoder_layers"] == 2 and task_cfg["normalize"] is {normalize}
        assert "encoder.pos_conv.0.weight_g" in sd
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_missing_checkpoint_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        HubertExtractor(tmp_path / "nope.pt")
    msg = str(e.value)
    assert "data/pretrained/chinese-hubert-large-fairseq-ckpt.pt" in msg and "TencentGameMate" in msg


def test_extract_corpus_hubert(tiny, tmp_path):
    from lib.features import extract as ex
    from lib.io import write_audio

    _, _, path = tiny
    wavs = _wavs()
    for i, w in enumerate(wavs):
        write_audio(tmp_path / "wavs" / "org" / "train" / f"u{i}.wav", w)
    report = ex.extract_corpus(tmp_path, "hubert", checkpoint=path, workers=1, progress=False)
    assert (report.written, report.failed) == (3, [])
    ref = HubertExtractor(path, device="cpu")
    for i, w in enumerate(wavs):
        feats = ex.load_features(tmp_path, "org", "hubert", "train", f"u{i}")
        meta = json.loads(ex.feature_path(tmp_path, "org", "hubert", "train", f"u{i}").with_suffix(".json").read_text())
        assert feats.dtype == np.float16 and feats.shape == (3, hubert_frames(len(w), ref.conv_layers), 32)
        assert meta["rate_hz"] == 50 and meta["time_axis"] == 1 and meta["checkpoint"]["size"] == path.stat().st_size
    again = ex.extract_corpus(tmp_path, "hubert", checkpoint=path, workers=1, progress=False)
    assert (again.written, again.skipped) == (0, 3)
