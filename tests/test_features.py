"""MFCC recipes and cached corpus extraction."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lib.config import FACE_FPS, FEATURE_RATES_HZ, hop_samples, label_frames
from lib.features import extract as ex
from lib.features.mfcc import mfcc, mfcc_frames, mfcc_t2a, regression_delta, static_mfcc
from lib.io import write_audio

DEMO = Path(__file__).resolve().parents[2] / "shared" / "t2a_demo"


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("n_samples", [1, 159, 160, 400, 1234, 16000, 16001, 87680])
def test_mfcc_shapes_and_frame_count(n_samples):
    wav = _noise(n_samples)
    expected = 1 + n_samples // hop_samples(FEATURE_RATES_HZ["mfcc"])  # center=True framing
    for fn in (mfcc, mfcc_t2a):
        out = fn(wav)
        assert out.shape == (expected, 39) and out.dtype == np.float32
        assert np.all(np.isfinite(out))
    assert mfcc_frames(n_samples) == expected


@pytest.mark.parametrize("duration_s", [0.5, 1.0, 2.37, 5.48])
def test_four_mfcc_frames_per_label_frame(duration_s):
    n = int(round(duration_s * 16000))
    t_mfcc, t_label = mfcc_frames(n), label_frames(duration_s)
    ratio = FEATURE_RATES_HZ["mfcc"] // FACE_FPS
    assert ratio == 4
    # Two stride-2 layers give ceil(T/4) frames: at most one frame away from the labels.
    assert abs(-(-t_mfcc // ratio) - t_label) <= 1


def _loop_delta(c: np.ndarray, n: int) -> np.ndarray:
    """Straightforward loop over frames and offsets, edges replicated."""
    t_max = c.shape[0] - 1
    out = np.zeros_like(c, dtype=np.float64)
    denom = 2 * sum(k * k for k in range(1, n + 1))
    for t in range(c.shape[0]):
        for k in range(1, n + 1):
            out[t] += k * (c[min(t + k, t_max)] - c[max(t - k, 0)])
    return out / denom


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("frames", [1, 2, 5, 40])
def test_regression_delta_equals_loop(n, frames):
    c = np.random.default_rng(n).standard_normal((frames, 13)).astype(np.float32)
    np.testing.assert_allclose(regression_delta(c, n), _loop_delta(c, n), rtol=1e-5, atol=1e-6)


def test_mfcc_t2a_layout():
    wav = _noise(8000, seed=3)
    c = static_mfcc(wav)
    out = mfcc_t2a(wav)
    np.testing.assert_array_equal(out[:, :13], c)
    np.testing.assert_allclose(out[:, 13:26], _loop_delta(c, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 26:], _loop_delta(c, 2), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(mfcc(wav)[:, :13], c)  # both recipes share the static part


# ----------------------------------------------------------------------------- extraction
@pytest.fixture()
def demo_copy(tmp_path):
    if not (DEMO / "wavs").is_dir():
        pytest.skip("shared t2a_demo data not present")
    root = tmp_path / "demo"
    # org plus two TTS voices keeps the test fast while covering several speakers and splits.
    for spk in ("org", "zh-CN-XiaochenNeural", "zh-CN-YunxiNeural"):
        for split_dir in (DEMO / "wavs" / spk).iterdir():
            if split_dir.is_dir():
                shutil.copytree(split_dir, root / "wavs" / spk / split_dir.name)
    return root


def test_extract_writes_every_file_then_skips(demo_copy):
    wavs = ex.find_wavs(demo_copy)
    assert len(wavs) >= 3
    report = ex.extract_corpus(demo_copy, "mfcc_t2a", workers=1, progress=False)
    assert (report.total, report.written, report.skipped, report.failed) == (len(wavs), len(wavs), 0, [])
    for speaker, split, wav in wavs:
        npy = ex.feature_path(demo_copy, speaker, "mfcc_t2a", split, wav.stem)
        meta = json.loads(npy.with_suffix(".json").read_text())
        feats = ex.load_features(demo_copy, speaker, "mfcc_t2a", split, wav.stem)
        n_samples = len(__import__("soundfile").read(wav)[0])
        assert feats.shape == (mfcc_frames(n_samples), 39) == tuple(meta["shape"])
        assert meta["extractor"] == "mfcc_t2a" and meta["rate_hz"] == 100 and meta["dims"] == [39]
        assert meta["source"]["size"] == wav.stat().st_size
    t0 = time.perf_counter()
    again = ex.extract_corpus(demo_copy, "mfcc_t2a", workers=1, progress=False)
    assert (again.written, again.skipped) == (0, len(wavs))
    assert time.perf_counter() - t0 < 2.0
    # Touching a wav (new mtime) invalidates exactly its cache entry.
    speaker, split, wav = wavs[0]
    write_audio(wav, _noise(4000))
    third = ex.extract_corpus(demo_copy, "mfcc_t2a", workers=1, progress=False)
    assert (third.written, third.skipped) == (1, len(wavs) - 1)
    assert ex.load_features(demo_copy, speaker, "mfcc_t2a", split, wav.stem).shape == (mfcc_frames(4000), 39)


def test_corrupt_wav_reported_by_name_and_cli_fails(tmp_path, capsys):
    root = tmp_path / "syn"
    for i, n in enumerate((3200, 8000, 16000)):
        write_audio(root / "wavs" / "org" / "train" / f"u{i}.wav", _noise(n, seed=i))
    write_audio(root / "wavs" / "tts1" / "train" / "u0.wav", _noise(5000))
    bad = root / "wavs" / "org" / "train" / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00not really a wav")
    rc = ex.cli_main(["--root_dir", str(root), "--feature", "mfcc", "--workers", "2"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "broken.wav" in out and "FAILED" in out
    good = [w for _, _, w in ex.find_wavs(root) if w != bad]
    for speaker in ("org", "tts1"):
        for w in (root / "wavs" / speaker / "train").glob("u*.wav"):
            assert ex.feature_path(root, speaker, "mfcc", "train", w.stem).exists()
    assert not ex.feature_path(root, "org", "mfcc", "train", "broken").exists()
    assert len(good) == 4
    # Only the bad file is retried; the CLI keeps failing until it is fixed.
    report = ex.extract_corpus(root, "mfcc", workers=1, progress=False)
    assert (report.written, report.skipped, len(report.failed)) == (0, 4, 1)
    assert report.failed[0][0] == str(bad)


def test_speaker_and_split_filters(tmp_path):
    root = tmp_path / "syn"
    for spk in ("org", "tts1"):
        for split in ("train", "test_a"):
            write_audio(root / "wavs" / spk / split / "a.wav", _noise(1600))
    assert len(ex.find_wavs(root, speakers=["org"])) == 2
    assert [(s, p) for s, p, _ in ex.find_wavs(root, splits=["test_a"])] == [("org", "test_a"), ("tts1", "test_a")]


def test_missing_features_and_unknown_feature(tmp_path):
    with pytest.raises(ex.DataError, match="python -m lib extract"):
        ex.load_features(tmp_path, "org", "mfcc", "train", "nope")
    assert ex.cli_main(["--root_dir", str(tmp_path), "--feature", "mfcc"]) == 2  # no wavs/ folder
    with pytest.raises(SystemExit):
        ex.cli_main(["--root_dir", str(tmp_path), "--feature", "nonsense"])


def test_missing_hubert_checkpoint_fails_before_work(tmp_path):
    write_audio(tmp_path / "wavs" / "org" / "train" / "a.wav", _noise(16000))
    with pytest.raises(FileNotFoundError, match="TencentGameMate"):
        ex.extract_corpus(tmp_path, "hubert", checkpoint=tmp_path / "missing.pt", progress=False)
