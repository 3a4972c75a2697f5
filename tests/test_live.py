"""lib.live: streamable features, the bounded-context model and its training, streaming ==
offline, ONNX == torch, the WebSocket server's protocol and its bad-input handling."""
from __future__ import annotations

import dataclasses
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.config import ModelConfig, TrainConfig, label_frames
from lib.io import read_audio
from lib.live.features import StreamingMfcc, mfcc_live
from lib.live.model import LiveConfig, LiveFaceModel, load_live_model
from lib.live.stream import StreamingPredictor, offline_predict, stream_clip
from tiny_corpus import make_tiny_corpus  # tests/tiny_corpus.py

STREAM_ATOL = 1e-4  # streaming vs one offline pass: float32 sums over differently sized windows
TINY = dict(d_model=32, n_heads=2, ff_dim=64, n_layers=2, dropout=0.1)


pytestmark = pytest.mark.usefixtures("restore_torch_globals")  # tests/conftest.py


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def live_run(root, tmp_path_factory) -> Path:
    from lib.live.train import train_live

    out = tmp_path_factory.mktemp("runs")
    return train_live(TrainConfig(name="live", root_dir=str(root), feature="mfcc_live", output_path=str(out),
                                  max_steps=20, eval_every_steps=10, batch_size=4, threads=1, progress=False),
                      LiveConfig(lookahead_ms=80, left_context_ms=400), ModelConfig(**TINY))


@pytest.fixture(scope="module")
def clip(root) -> np.ndarray:
    """About 3 s of the tiny corpus's audio (three test clips back to back)."""
    wavs = [read_audio(p) for p in sorted((root / "wavs" / "org" / "test_a").glob("*.wav"))]
    wavs += [read_audio(p) for p in sorted((root / "wavs" / "org" / "val_1").glob("*.wav"))]
    return np.concatenate(wavs)


def _random_model(lookahead_ms: int, left_ms: int, seed: int = 0) -> LiveFaceModel:
    torch.manual_seed(seed)
    m = LiveFaceModel(ModelConfig(**{**TINY, "dropout": 0.0}), LiveConfig(lookahead_ms, left_ms)).eval()
    for p in m.rel_bias:  # as after training: a zero bias would hide a wrong offset
        p.data.normal_()
    return m


# ----------------------------------------------------------------------------- features
def test_mfcc_live_is_librosa_mfcc_without_the_clip_wide_floor():
    import librosa

    rng = np.random.default_rng(0)
    wav = (0.2 * rng.standard_normal(16000)).astype(np.float32)
    wav[:4000] = 0  # digital silence: where librosa's top_db floor (clip max - 80 dB) would bite
    S = librosa.feature.melspectrogram(y=wav, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=40,
                                       fmin=0.0, fmax=8000.0, center=True)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(S, top_db=None), n_mfcc=13).T  # (T, 13)
    got = mfcc_live(wav)
    assert got.shape == (1 + len(wav) // 160, 39)
    np.testing.assert_allclose(got[:, :13], ref, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("n", [100, 577, 16000 * 2 + 77])
def test_streaming_mfcc_equals_the_whole_clip_for_random_chunks(n):
    rng = np.random.default_rng(n)
    wav = (0.3 * rng.standard_normal(n)).astype(np.float32)
    s, outs, i = StreamingMfcc(), [], 0
    while i < n:
        k = int(rng.integers(1, 900))
        outs.append(s.push(wav[i:i + k]))
        i = min(i + k, n)
        # Frame t is final once its FFT window (to sample 160 t + 256) and frame t + 2 (delta) have arrived.
        assert s.n_frames == max(0, (i - 576) // 160 + 1) if i >= 576 else s.n_frames == 0
        assert len(s._p) < 512 + 900 and len(s._c) <= 4 + 900 // 160 + 4  # bounded buffers
    outs.append(s.flush())
    np.testing.assert_allclose(np.concatenate(outs), mfcc_live(wav), atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- model
@pytest.mark.parametrize("lookahead_ms,left_ms", [(0, 200), (80, 400), (200, 200)])
def test_output_frame_sees_exactly_its_bounded_context(lookahead_ms, left_ms):
    m = _random_model(lookahead_ms, left_ms)
    R, L = lookahead_ms // 40, left_ms // 40
    T = 400
    x = torch.randn(1, T, 39)
    with torch.no_grad():
        y = m(x, torch.tensor([T]), T // 4)
        t = 60
        ahead = x.clone()
        ahead[:, 4 * (t + R) + 1:] += 3.0  # features after frame t's last input (feature 4 (t + R))
        y2 = m(ahead, torch.tensor([T]), T // 4)
        assert torch.equal(y[:, :t + 1], y2[:, :t + 1])
        assert (y[:, t + 1] - y2[:, t + 1]).abs().max() > 1e-4  # the next frame does read them
        # Before the receptive field: n_layers * L frames of attention, then the convs' 6 features.
        back = 4 * (t - 2 * L) - 6
        behind = x.clone()
        behind[:, :back] += 3.0
        y3 = m(behind, torch.tensor([T]), T // 4)
        assert torch.allclose(y[:, t:], y3[:, t:], atol=1e-5)
        assert (y[:, t - 1] - y3[:, t - 1]).abs().max() > 1e-4


def test_item_alone_equals_item_in_a_padded_batch():
    m = _random_model(80, 200)
    a, b = torch.randn(1, 120, 39), torch.randn(1, 200, 39)
    batch = torch.cat([torch.nn.functional.pad(a, (0, 0, 0, 80)), b])
    with torch.no_grad():
        alone = m(a, torch.tensor([120]), 50)
        together = m(batch, torch.tensor([120, 200]), 50)
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=0)
    assert torch.count_nonzero(together[0, 30:]) == 0  # past its length: zero


def test_context_must_be_whole_face_frames():
    with pytest.raises(ValueError, match="lookahead_ms=50 is not a non-negative multiple of one face frame"):
        LiveFaceModel(ModelConfig(**TINY), LiveConfig(50, 400))
    with pytest.raises(ValueError, match=r"33.3333 ms at 30 fps"):
        LiveFaceModel(ModelConfig(**{**TINY, "face_fps": 30}), LiveConfig(80, 500))


@pytest.mark.parametrize("fps,lookahead_ms", [(30, 100), (60, 50)])
def test_resampled_rates_stream_as_offline(fps, lookahead_ms):
    """30 / 60 fps rigs from 100 Hz MFCC: features resampled to 120 Hz in the model; the
    stream still equals one offline pass, for random chunk sizes."""
    torch.manual_seed(0)
    m = LiveFaceModel(ModelConfig(**{**TINY, "dropout": 0.0, "face_fps": fps}), LiveConfig(lookahead_ms, 500)).eval()
    for p in m.rel_bias:
        p.data.normal_()
    assert m.resampled and m.front_rate_hz == 120
    rng = np.random.default_rng(fps)
    t = np.arange(16000 * 3) / 16000
    wav = (0.3 * np.sin(2 * np.pi * 3 * t) ** 2 * np.sin(2 * np.pi * 200 * t)
           + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    ref = offline_predict(m, wav)
    assert ref.shape == (label_frames(3.0, fps), 37)
    got, trace = stream_clip(m, wav, list(rng.integers(1, 2000, size=40)))
    np.testing.assert_allclose(got, ref, atol=STREAM_ATOL, rtol=0)
    R = lookahead_ms * fps // 1000
    for n, emitted in trace[:-1]:
        # Frame j needs the 120 Hz frame (120 / fps) (j + R), i.e. feature floor of that * 100 / 120, plus the
        # next one off the feature grid; a feature frame t is final once 160 t + 576 samples have arrived.
        feats = max(0, (n - 576) // 160 + 1) if n >= 576 else 0
        r = (120 // fps) * (np.arange(emitted + 1) + R)
        need = r * 100 // 120 + np.where(r * 100 % 120, 2, 1)
        assert np.all(need[:emitted] <= feats) and need[emitted] > feats


def test_training_stores_the_context_and_learns_the_band(live_run):
    ck = torch.load(live_run / "best.pt", weights_only=False)
    assert ck["live"] == {"lookahead_ms": 80, "left_context_ms": 400}
    assert json.loads((live_run / "live.json").read_text()) == ck["live"]
    assert ck["face"]["face_fps"] == 25 and ck["configs"]["train"]["feature"] == "mfcc_live"
    model, _ = load_live_model(live_run / "best.pt")
    # Trained through the mask: the relative biases moved from their zero start, only inside the band.
    assert model.rel_bias[0].shape == (2, 10 + 2 + 1) and model.rel_bias[1].shape == (2, 10 + 0 + 1)
    assert all(float(p.detach().abs().max()) > 0 for p in model.rel_bias)


def test_full_context_checkpoint_is_refused_for_streaming(tmp_path):
    from lib.io import DataError

    torch.save({"model": {}, "configs": {"model": {}, "train": {}}}, tmp_path / "full.pt")
    with pytest.raises(DataError, match="not a live checkpoint"):
        load_live_model(tmp_path / "full.pt")


# ----------------------------------------------------------------------------- streaming
def test_streaming_equals_offline_for_random_chunk_sizes(live_run, clip):
    model, _ = load_live_model(live_run / "best.pt")
    ref = offline_predict(model, clip)  # (frames, C): one pass, the same mask
    assert ref.shape == (label_frames(len(clip) / 16000), 37)
    rng = np.random.default_rng(3)
    for sizes in (list(rng.integers(1, 2000, size=64)), 320, 640):
        got, trace = stream_clip(model, clip, sizes)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=STREAM_ATOL, rtol=0)
        for n, emitted in trace[:-1]:
            # Constant latency: frame j leaves once audio reaches 40 ms * (j + R) + 36 ms (R = 2 frames).
            assert emitted == (max(0, (n - 576) // 640 - 2 + 1) if n >= 576 else 0)


def test_streaming_memory_is_bounded(live_run):
    model, _ = load_live_model(live_run / "best.pt")
    sp = StreamingPredictor(model)
    rng = np.random.default_rng(0)
    for _ in range(300):  # 12 s of audio in 40 ms chunks
        sp.push((0.1 * rng.standard_normal(640)).astype(np.float32))
        assert len(sp._feats) <= 4 * (model.warmup_frames + model.lookahead_frames + 2) + 4
    assert sp.n_emitted == (300 * 640 - 576) // 640 - 2 + 1


# ----------------------------------------------------------------------------- ONNX
def test_onnx_offline_and_streaming_match_torch(live_run, clip, tmp_path):
    from lib.live.onnx_export import ONNX_ATOL, export_onnx, run_onnx
    import onnx

    model, _ = load_live_model(live_run / "best.pt")
    meta = export_onnx(live_run / "best.pt", tmp_path / "off.onnx", "offline")
    face = json.loads({p.key: p.value for p in onnx.load(str(tmp_path / "off.onnx")).metadata_props}["face_format"])
    assert face["face_fps"] == 25 and face["channels"] == "t2a37"
    feats = mfcc_live(clip)  # another length than the export's trace: the time axis is dynamic
    got = run_onnx(tmp_path / "off.onnx", feats[None])[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(feats)[None], torch.tensor([len(feats)]), -(-len(feats) // 4))[0].numpy()
    np.testing.assert_allclose(got, ref, atol=ONNX_ATOL, rtol=0)

    meta = export_onnx(live_run / "best.pt", tmp_path / "st.onnx", "streaming", frames_per_call=1)
    W, warm = int(meta["window_feature_frames"]), int(meta["warmup_frames"])
    assert W == 4 * (warm + 2) + 1  # ends on feature 4 (j + R), starts on the stride grid
    offline = offline_predict(model, clip)
    for j in (warm + 3, warm + 20, len(offline) - 5):  # the window ends at feature 4 (j + R) (inclusive)
        end = 4 * (j + 2) + 1
        out = run_onnx(tmp_path / "st.onnx", feats[None, end - W:end])  # (1, 1, C)
        np.testing.assert_allclose(out[0, 0], offline[j], atol=ONNX_ATOL, rtol=0)


def test_onnx_exports_a_full_context_checkpoint(tmp_path):
    from lib.channels import FaceFormat
    from lib.config import LossConfig
    from lib.live.onnx_export import ONNX_ATOL, export_onnx, run_onnx
    from lib.model import TalkingFaceModel

    torch.manual_seed(0)
    cfg = ModelConfig(**{**TINY, "dropout": 0.0})
    m = TalkingFaceModel(cfg).eval()
    torch.save({"model": m.state_dict(), "face": FaceFormat.make().to_dict(),
                "configs": {"model": dataclasses.asdict(cfg), "loss": dataclasses.asdict(LossConfig()),
                            "train": dataclasses.asdict(TrainConfig())}}, tmp_path / "full.pt")
    export_onnx(tmp_path / "full.pt", tmp_path / "full.onnx", "offline")
    x = torch.randn(1, 333, 39)
    with torch.no_grad():
        ref = m(x, torch.tensor([333]), 84)[0].numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "full.onnx", x.numpy())[0], ref, atol=ONNX_ATOL, rtol=0)
    with pytest.raises(Exception, match="needs a live checkpoint"):
        export_onnx(tmp_path / "full.pt", tmp_path / "x.onnx", "streaming")


# ----------------------------------------------------------------------------- server
@pytest.fixture(scope="module")
def server(live_run):
    from lib.live.server import BackgroundServer, ServerConfig, load_server

    srv = load_server(live_run, ServerConfig(port=0, max_clients=3, max_message_bytes=8000))
    with BackgroundServer(srv) as port:
        yield srv, port


def _ws(port: int):
    from websockets.sync.client import connect

    return connect(f"ws://127.0.0.1:{port}/ws", max_size=2**22, open_timeout=20)


def test_server_streams_the_offline_frames_after_the_face_format(server, live_run, clip):
    srv, port = server
    model, _ = load_live_model(live_run / "best.pt")
    pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2")
    ref = offline_predict(model, pcm.astype(np.float32) / 32768.0)  # the same quantised audio
    with _ws(port) as ws:
        fmt = json.loads(ws.recv(timeout=20))
        assert fmt["type"] == "format" and fmt["fps"] == 25 and len(fmt["channels"]) == 37
        assert fmt["channels"][0] == srv.face.channels[0] and fmt["sample_format"] == "s16le"
        for i in range(0, len(pcm), 480):  # 30 ms chunks
            ws.send(pcm[i:i + 480].tobytes())
        ws.send(json.dumps({"type": "end"}))
        frames, starts = [], []
        while True:
            m = json.loads(ws.recv(timeout=20))
            if m["type"] == "end":
                break
            assert m["type"] == "frames"
            starts.append(m["start"])
            assert m["t_s"] == pytest.approx([(m["start"] + k) / 25 for k in range(len(m["values"]))])
            frames += m["values"]
        assert m["frames"] == len(ref) and starts == sorted(starts)
    np.testing.assert_allclose(np.array(frames), ref, atol=1e-3, rtol=0)  # JSON rounds to 4 decimals


def test_server_answers_bad_input_and_keeps_serving(server):
    from websockets.exceptions import ConnectionClosed

    srv, port = server
    ok = np.zeros(640, "<i2").tobytes()

    def closed_with(ws) -> tuple[int, list[dict]]:
        msgs = []
        try:
            while True:
                msgs.append(json.loads(ws.recv(timeout=20)))
        except ConnectionClosed as e:
            return e.rcvd.code, msgs

    with _ws(port) as ws:
        ws.recv(timeout=20)
        ws.send(b"")
        assert "empty audio message" in json.loads(ws.recv(timeout=20))["message"]
        ws.send("hello")
        assert "text messages must be JSON" in json.loads(ws.recv(timeout=20))["message"]
        for _ in range(10):
            ws.send(ok)  # still streaming after both errors
        assert json.loads(ws.recv(timeout=20))["type"] == "frames"
    with _ws(port) as ws:
        ws.recv(timeout=20)
        ws.send(b"\x00\x01\x02")
        code, msgs = closed_with(ws)
        assert code == 1003 and "not a whole number of s16le samples" in msgs[-1]["message"]
    with _ws(port) as ws:
        ws.recv(timeout=20)
        ws.send(json.dumps({"type": "config", "sample_format": "f32le"}))
        ws.send(np.array([0.0, np.nan], "<f4").tobytes())
        code, msgs = closed_with(ws)
        assert code == 1007 and "finite" in msgs[-1]["message"]
    with _ws(port) as ws:
        ws.recv(timeout=20)
        ws.send(json.dumps({"type": "config", "sample_rate_hz": "44100"}))  # not even a number: same answer
        code, msgs = closed_with(ws)
        assert code == 1003 and "sample_rate_hz must be 16000" in msgs[-1]["message"]
    with _ws(port) as ws:
        ws.recv(timeout=20)
        ws.send(b"\x00" * 8002)  # over max_message_bytes=8000
        code, _ = closed_with(ws)
        assert code == 1009
    # A client that vanishes mid-stream (no close frame): its stream is dropped.
    ws = _ws(port)
    ws.recv(timeout=20)
    ws.send(ok)
    ws.socket.shutdown(socket.SHUT_RDWR)
    ws.socket.close()
    import time

    t0 = time.time()
    while srv.active and time.time() - t0 < 15:
        time.sleep(0.05)
    assert srv.active == 0
    # Full: max_clients=3 streams, the fourth is told to come back later.
    socks = [_ws(port) for _ in range(3)]
    for s in socks:
        s.recv(timeout=20)
    with _ws(port) as extra:
        code, _ = closed_with(extra)
        assert code == 1013
    for s in socks:
        s.close()
    with _ws(port) as ws:  # and the server still serves
        assert json.loads(ws.recv(timeout=20))["type"] == "format"


def test_server_serves_the_page_and_stats(server):
    _, port = server
    html = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read().decode()
    assert "<canvas" in html and "/ws" in html and "getUserMedia" in html
    stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=20).read())
    assert {"active_streams", "cpu_s", "frames_total"} <= set(stats)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=20)
    assert e.value.code == 404


def test_server_binds_loopback_by_default():
    from lib.live.server import ServerConfig

    assert ServerConfig().host == "127.0.0.1"


# ----------------------------------------------------------------------------- as a person uses it
def test_load_test_k_clients_get_every_frame(server):
    from lib.live.loadtest import LoadConfig, load_test

    _, port = server
    rng = np.random.default_rng(0)
    wav = (0.2 * rng.standard_normal(16000)).astype(np.float32)
    r = load_test(port, wav, LoadConfig(clients=3, duration_s=2.0, chunk_ms=40, timeout_s=60))
    assert r["frames_per_client"] == [label_frames(2.0)] * 3  # every stream got all its frames
    assert 0 < r["p50_ms"] <= r["p99_ms"] < 5000
    assert r["server_cpu_s"] > 0 and r["streams_per_core"] > 0


def _cdp(ws, method: str, **params):
    """One Chrome DevTools call over its WebSocket; returns its result."""
    _cdp.n = getattr(_cdp, "n", 0) + 1
    ws.send(json.dumps({"id": _cdp.n, "method": method, "params": params}))
    while True:
        m = json.loads(ws.recv(timeout=30))
        if m.get("id") == _cdp.n:
            if "error" in m:
                raise RuntimeError(f"{method}: {m['error']}")
            return m["result"]


def test_browser_mouth_moves_with_the_fake_microphone(server, clip, tmp_path):
    """Headless Chromium opens the page with a fake microphone fed from a clip; screenshots
    taken while it speaks differ in the mouth region and not on the forehead."""
    import base64
    import io as _io
    import os
    import re
    import signal
    import shutil
    import subprocess
    import time

    from PIL import Image
    from websockets.sync.client import connect

    from lib.io import write_audio

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    _, port = server
    wav = tmp_path / "mic.wav"
    write_audio(wav, clip)  # 16 kHz 16-bit PCM; Chromium loops it as the microphone
    profile = tmp_path / "profile"
    profile.mkdir()
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
         "--remote-debugging-port=0", "--window-size=800,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        t0, browser_ws = time.time(), None
        while browser_ws is None and time.time() - t0 < 60:
            line = proc.stderr.readline()
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            browser_ws = m.group(1) if m else None
            if not line and proc.poll() is not None:
                break
        assert browser_ws, "chromium did not start its DevTools endpoint"
        import threading

        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining: a full pipe stalls chromium
        dev_port = int(re.search(r":(\d+)/", browser_ws).group(1))
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{dev_port}/json/list", timeout=20).read())
        page_ws = next(p["webSocketDebuggerUrl"] for p in pages if p["type"] == "page")
        with connect(page_ws, max_size=2**26, open_timeout=30) as cdp:
            _cdp(cdp, "Page.navigate", url=f"http://127.0.0.1:{port}/?autostart=mic")

            def stats() -> dict:
                r = _cdp(cdp, "Runtime.evaluate", expression="JSON.stringify(window.faceStats || null)",
                         returnByValue=True)
                return json.loads(r["result"].get("value") or "null") or {}

            t0 = time.time()
            while stats().get("images", 0) < 10 and time.time() - t0 < 60:
                time.sleep(0.2)
            s = stats()
            assert s.get("images", 0) >= 10, f"no face frames drawn: {s}"
            assert not s["errors"] and s["format"]["fps"] == 25
            rect = json.loads(_cdp(cdp, "Runtime.evaluate", returnByValue=True, expression=(
                "JSON.stringify(document.getElementById('face').getBoundingClientRect())"))["result"]["value"])
            shots = []
            for _ in range(8):  # 8 screenshots over ~1.6 s of speech
                r = _cdp(cdp, "Page.captureScreenshot", format="png",
                         clip={"x": rect["x"], "y": rect["y"], "width": rect["width"], "height": rect["height"],
                               "scale": 1})
                shots.append(np.asarray(Image.open(_io.BytesIO(base64.b64decode(r["data"]))).convert("RGB"),
                                        np.float32))
                time.sleep(0.2)
            assert stats()["frames"] > s["frames"]  # frames kept arriving while we looked
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the browser we started, and its helpers
        proc.wait(timeout=20)
    if os.environ.get("T2A_LIVE_SHOTS"):  # keep the screenshots to look at
        for i, shot in enumerate(shots):
            Image.fromarray(shot.astype(np.uint8)).save(Path(os.environ["T2A_LIVE_SHOTS"]) / f"shot_{i}.png")
    h, w = shots[0].shape[:2]
    mouth = (slice(int(0.60 * h), int(0.85 * h)), slice(int(0.33 * w), int(0.67 * w)))  # lib.render's mouth
    forehead = (slice(int(0.14 * h), int(0.26 * h)), slice(int(0.35 * w), int(0.65 * w)))  # no channel moves it
    diff = lambda a, b, region: float(np.abs(a[region] - b[region]).mean())
    pairs = [(a, b) for i, a in enumerate(shots) for b in shots[i + 1:]]
    assert max(diff(a, b, mouth) for a, b in pairs) > 2.0, "the mouth did not move during speech"
    assert max(diff(a, b, forehead) for a, b in pairs) < 0.5


# ----------------------------------------------------------------------------- PPG
def _random_ppg_net():
    from lib.features.ppg import PPGConfig, PPGNet

    torch.manual_seed(1)
    return PPGNet(PPGConfig()).eval()


def test_streaming_ppg_equals_the_whole_clip_with_its_lookahead():
    from lib.features.ppg import PPGConfig, log_mel
    from lib.live.ppg import HALF, StreamingPpg, log_mel_from_padded, ppg_live

    rng = np.random.default_rng(5)
    wav = (0.2 * rng.standard_normal(16000 * 3 + 55)).astype(np.float32)
    # The framing is lib.features.ppg's own (what the network was trained on).
    np.testing.assert_allclose(log_mel_from_padded(np.pad(wav, (HALF, HALF)), PPGConfig()), log_mel(wav),
                               atol=1e-4, rtol=0)
    net = _random_ppg_net()
    ref = ppg_live(wav, net)
    assert ref.shape == (1 + len(wav) // 320, 40)
    s, outs, i = StreamingPpg(net), [], 0
    while i < len(wav):
        k = int(rng.integers(1, 2000))
        outs.append(s.push(wav[i:i + k]))
        i = min(i + k, len(wav))
        # Frame t is final once log-mel frame t + 32 is: sample 320 (t + 32) + 512.
        assert s.n_frames == (max(0, (i - 512 - 32 * 320) // 320 + 1) if i >= 512 + 32 * 320 else 0)
        assert len(s._x) <= 2 * 32 + 2000 // 320 + 2 and len(s._hist) < 100  # bounded
    outs.append(s.flush())
    np.testing.assert_allclose(np.concatenate(outs), ref, atol=1e-5, rtol=0)
    assert s.lookahead_ms == 672.0


def test_ppg_live_run_streams_through_the_server_as_offline(root, tmp_path, clip):
    from lib.corpus.phones import PHONES
    from lib.live.features import live_feature_function
    from lib.live.server import BackgroundServer, ServerConfig, load_server
    from lib.live.train import checkpoint_features, train_live

    net = _random_ppg_net()
    torch.save({"state_dict": net.state_dict(), "config": dataclasses.asdict(net.cfg), "phones": list(PHONES)},
               tmp_path / "ppg.pt")
    run = train_live(TrainConfig(name="ppg", root_dir=str(root), feature="ppg_live", output_path=str(tmp_path),
                                 max_steps=4, eval_every_steps=4, batch_size=4, threads=1, progress=False),
                     LiveConfig(lookahead_ms=40, left_context_ms=200), ModelConfig(**TINY),
                     ppg_checkpoint=tmp_path / "ppg.pt")
    model, ck = load_live_model(run / "best.pt")
    assert model.cfg.feature_rate_hz == 50 and model.stride == 2
    feature, net2 = checkpoint_features(ck)  # the PPG network travels in the checkpoint
    assert feature == "ppg_live"
    wav = clip[:32000]
    pcm = (wav * 32767).astype("<i2")
    ref = offline_predict(model, pcm.astype(np.float32) / 32768.0, features=live_feature_function(feature, net2))
    srv = load_server(run, ServerConfig(port=0))
    with BackgroundServer(srv) as port, _ws(port) as ws:
        fmt = json.loads(ws.recv(timeout=20))
        assert fmt["feature"] == "ppg_live" and fmt["algorithmic_latency_ms"] == 40 + 672
        for i in range(0, len(pcm), 640):
            ws.send(pcm[i:i + 640].tobytes())
        ws.send(json.dumps({"type": "end"}))
        frames = []
        while (m := json.loads(ws.recv(timeout=30)))["type"] != "end":
            frames += m["values"]
    np.testing.assert_allclose(np.array(frames), ref, atol=1e-3, rtol=0)
