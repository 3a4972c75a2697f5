"""PPG: frame labelling, shapes, training on a tiny built corpus, and extraction."""
from __future__ import annotations

import numpy as np
import pytest

from lib.corpus.phones import PHONE_INDEX, PHONES
from lib.features import ppg


def test_frame_phone_labels_match_a_loop():
    phones = [("sil", 0.0, 0.13), ("M", 0.13, 0.2), ("AA", 0.2, 0.41), ("P", 0.41, 0.5), ("sil", 0.5, 0.61)]
    n = ppg.ppg_frames(int(0.61 * 16000))
    got = ppg.frame_phone_labels(phones, n)
    for i in range(n):
        t = i * 0.02  # frame centre (centred windows at a 20 ms hop)
        want = next((p for p, s, e in phones if s <= t < e), phones[-1][0])
        assert got[i] == PHONE_INDEX[want], (i, t)


def test_log_mel_frames():
    for n in (320, 1000, 16000, 16321):
        assert ppg.log_mel(np.zeros(n, np.float32) + 1e-3).shape == (ppg.ppg_frames(n), 80)


@pytest.fixture(scope="module")
def tiny_built(tmp_path_factory):
    from lib.corpus.builder import build_corpus
    from lib.corpus.profiles import profile_config
    from lib.corpus.voices import list_voices

    if not list_voices():
        pytest.skip("no TTS engine installed")
    root = tmp_path_factory.mktemp("tiny")
    build_corpus(profile_config("tiny"), root)
    return root


def test_train_and_extract(tiny_built, tmp_path):
    from lib.features.extract import extract_corpus, load_features

    train_spk, eval_spk = ppg.split_voices(tiny_built)
    # The tiny profile has no held-out voice: evaluate on the training voice's test clips is not
    # possible either, so just train and check the extractor end to end.
    assert train_spk and "org" not in train_spk
    cfg = ppg.PPGConfig(steps=30, batch_size=8)
    metrics = ppg.train_ppg(tiny_built, train_spk, eval_spk, tmp_path / "p.pt", cfg)
    # 30 steps on a tiny corpus: far better than chance (1/40) on its training frames.
    assert metrics["train_frame_accuracy"] > 0.2
    ex = ppg.PPGExtractor(tmp_path / "p.pt")
    wav = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    post = ex(wav)
    assert post.shape == (ppg.ppg_frames(16000), len(PHONES))
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-5)
    report = extract_corpus(tiny_built, "ppg", checkpoint=str(tmp_path / "p.pt"), speakers=["org"])
    assert not report.failed and report.written > 0
    utt = sorted((tiny_built / "wavs/org/train").glob("*.wav"))[0].stem
    feats = load_features(tiny_built, "org", "ppg", "train", utt)
    assert feats.shape[1] == len(PHONES)


def test_missing_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-ppg"):
        ppg.PPGExtractor(tmp_path / "none.pt")
