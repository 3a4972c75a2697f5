"""Round trips of every file format, and the errors bad input must produce."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf

from lib import channels as ch
from lib import io
from lib.config import AUDIO_SAMPLE_RATE_HZ, label_frames, n_stride2_layers, hop_samples


def _labels(frames=30, c=37, seed=0):
    return np.random.default_rng(seed).random((frames, c)).astype(np.float32)


def test_channel_sets():
    assert len(ch.T2A_37) == 37 and len(set(ch.T2A_37)) == 37
    assert len(ch.ARKIT_52) == 52 and len(set(ch.ARKIT_52)) == 52
    assert len(ch.LIVE_LINK_FACE_61) == 61
    assert set(ch.T2A_37) < set(ch.ARKIT_52) < set(ch.LIVE_LINK_FACE_61)
    # The 37 set is the ARKit order with eyes and tongue removed (the original's pkl column order).
    assert ch.T2A_37 == tuple(c for c in ch.ARKIT_52 if not c.startswith(("Eye", "Tongue")))
    assert ch.get_channels("ARKit52") == ch.ARKIT_52
    assert ch.get_channels(["a", "b"]) == ("a", "b")
    with pytest.raises(ValueError, match="unknown channel set"):
        ch.get_channels("nope")
    with pytest.raises(ValueError, match="duplicate"):
        ch.get_channels(["a", "a"])


def test_rates_exact():
    assert n_stride2_layers(100) == 2 and n_stride2_layers(50) == 1 and n_stride2_layers(25) == 0
    assert hop_samples(100) == 160 and hop_samples(50) == 320
    for bad in (75, 60, 30):
        with pytest.raises(ValueError):
            n_stride2_layers(bad)
    assert label_frames(5.48) == 137


@pytest.mark.parametrize("subtype,sr,nch", [("PCM_16", 16000, 1), ("PCM_24", 44100, 2), ("PCM_32", 22050, 1),
                                             ("FLOAT", 48000, 2), ("PCM_U8", 8000, 1)])
def test_read_audio_any_format(tmp_path, subtype, sr, nch):
    t = np.arange(int(0.5 * sr)) / sr
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    data = np.stack([tone] * nch, axis=1) if nch > 1 else tone  # (samples, ch)
    path = tmp_path / "a.wav"
    sf.write(path, data, sr, subtype=subtype)
    wav = io.read_audio(path)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - 0.5 * AUDIO_SAMPLE_RATE_HZ) <= 2
    # Still a 440 Hz tone of amplitude ~0.5 after conversion (independent check via the FFT).
    spec = np.abs(np.fft.rfft(wav))
    peak_hz = np.argmax(spec) * AUDIO_SAMPLE_RATE_HZ / len(wav)
    assert abs(peak_hz - 440) < 5
    assert 0.4 < np.max(np.abs(wav[100:-100])) < 0.6


def test_audio_round_trip(tmp_path):
    wav = (0.3 * np.sin(np.linspace(0, 200, 16000))).astype(np.float32)
    io.write_audio(tmp_path / "x.wav", wav)
    back = io.read_audio(tmp_path / "x.wav")
    assert np.max(np.abs(back - wav)) < 1e-4  # 16-bit quantisation


def test_bad_audio(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(io.DataError, match="junk.wav.*unreadable"):
        io.read_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0), 16000)
    with pytest.raises(io.DataError, match="empty.wav.*empty"):
        io.read_audio(tmp_path / "empty.wav")
    with pytest.raises(io.DataError, match="missing.wav"):
        io.read_audio(tmp_path / "missing.wav")


def test_label_csv_round_trip(tmp_path):
    y = _labels()
    io.write_label_csv(tmp_path / "l.csv", y, ch.T2A_37)
    back, names = io.read_label_csv(tmp_path / "l.csv")
    assert names == ch.T2A_37
    np.testing.assert_allclose(back, y, atol=1e-6)
    # Reordering to a requested channel list.
    sub, names2 = io.read_label_csv(tmp_path / "l.csv", channels=["JawOpen", "JawForward"])
    np.testing.assert_allclose(sub, y[:, [3, 0]], atol=1e-6)


def test_label_csv_errors(tmp_path):
    y = _labels()
    y[4, 3] = np.nan
    p = tmp_path / "nan.csv"
    p.write_text(",".join(ch.T2A_37) + "\n" + "\n".join(",".join(map(str, r)) for r in y))
    with pytest.raises(io.DataError, match="nan.csv.*NaN/inf.*frame 4.*JawOpen"):
        io.read_label_csv(p)
    p2 = tmp_path / "unknown.csv"
    io.write_label_csv(p2, _labels(c=2), ["JawOpen", "Blink"])
    with pytest.raises(io.DataError, match="unknown.csv.*unknown channels.*Blink"):
        io.read_label_csv(p2, known=ch.T2A_37)
    with pytest.raises(io.DataError, match="unknown.csv.*missing channels"):
        io.read_label_csv(p2, channels=ch.T2A_37)
    p3 = tmp_path / "ragged.csv"
    p3.write_text("JawOpen,MouthClose\n0.1,0.2\n0.3\n")
    with pytest.raises(io.DataError, match="ragged.csv"):
        io.read_label_csv(p3)


def test_pkl_round_trip_and_errors(tmp_path):
    d = {"u1": _labels(10).astype(np.float64), "u2": _labels(20, seed=1).astype(np.float64)}
    io.write_pkl_labels(tmp_path / "train.pkl", d)
    back = io.read_pkl_labels(tmp_path / "train.pkl")
    assert set(back) == {"u1", "u2"}
    np.testing.assert_allclose(back["u2"], d["u2"], atol=1e-6)
    bad = {"u1": np.full((5, 37), np.inf)}
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(io.DataError, match=r"bad.pkl\[u1\].*NaN/inf"):
        io.read_pkl_labels(tmp_path / "bad.pkl")
    (tmp_path / "wide.pkl").write_bytes(pickle.dumps({"u": np.zeros((5, 36))}))
    with pytest.raises(io.DataError, match="36 columns but 37"):
        io.read_pkl_labels(tmp_path / "wide.pkl")


def test_npy_round_trip(tmp_path):
    y = _labels(c=52)
    io.save_npy(tmp_path / "f", y, ch.ARKIT_52)
    back, names = io.load_npy(tmp_path / "f")
    assert names == ch.ARKIT_52
    np.testing.assert_array_equal(back, y)
    back37, _ = io.load_npy(tmp_path / "f", channels=ch.T2A_37)
    np.testing.assert_array_equal(back37, y[:, [ch.ARKIT_52.index(c) for c in ch.T2A_37]])


def test_live_link_face_round_trip(tmp_path):
    # A 2 s capture at 60 fps: JawOpen is a ramp, so resampled values are checkable exactly.
    n60 = 120
    y60 = np.zeros((n60, 37), np.float32)
    y60[:, 3] = np.linspace(0, 1, n60)
    io.write_live_link_face_csv(tmp_path / "llf.csv", y60, ch.T2A_37)
    y25, names = io.read_live_link_face_csv(tmp_path / "llf.csv", face_fps=25)
    assert names == ch.T2A_37
    assert y25.shape == (label_frames(2.0), 37)
    t25 = np.arange(50) / 25
    expect = np.interp(t25, np.arange(n60) / 60, y60[:, 3])
    np.testing.assert_allclose(y25[:, 3], expect, atol=1e-5)
    assert np.all(y25[:, 0] == 0)


def test_live_link_face_rejects_other_csv(tmp_path):
    io.write_label_csv(tmp_path / "plain.csv", _labels(), ch.T2A_37)
    with pytest.raises(io.DataError, match="plain.csv.*Timecode"):
        io.read_live_link_face_csv(tmp_path / "plain.csv")


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
