"""``python -m lib serve --checkpoint RUN --port P``: live faces over WebSocket, and a page at ``/``.

Library: ``websockets`` (asyncio; RFC 6455 with per-message limits, ping/pong keepalive and
close codes built in, pure Python, no framework): the server needs one WebSocket route and
three tiny HTTP responses, which its ``process_request`` hook serves without a web framework.

Routes: ``/`` the page (lib/live/static/index.html: microphone or a dropped wav -> the 2-D
face of lib.render on a canvas), ``/stats`` JSON (streams, frames, server CPU seconds),
``/ws`` the stream.

Protocol on ``/ws`` (one stream per connection):

1. server -> ``{"type": "format", "channels": [...], "fps": 25, "sample_rate_hz": 16000,
   "sample_format": "s16le", "lookahead_ms", "algorithmic_latency_ms", "max_message_bytes"}``
   (the face format first, always);
2. client -> binary messages: mono PCM at 16 kHz, little-endian int16 (default) or float32
   after ``{"type": "config", "sample_format": "f32le"}``; ``"render": true`` in the config
   also asks for a PNG of the newest frame after each frames message (what the page draws);
3. server -> ``{"type": "frames", "start": j, "t_s": [...], "values": [[C floats], ...],
   "n_samples": N}`` whenever frames become final (frame j at j / fps s of the stream's audio;
   ``n_samples``: audio received when they were computed, for latency);
4. client -> ``{"type": "end"}``: the rest of the utterance (right context cut by the end,
   as offline), then ``{"type": "end", "frames": n}``; the connection may start a new one.

Bad input: an empty message or an unknown text message gets ``{"type": "error", ...}`` and
the stream goes on; a byte count that is no whole number of samples, non-finite floats or a
wrong sample rate get an error message, then close 1003/1007; a message over
``max_message_bytes`` is closed 1009 by the library; a full server closes new streams 1013.
A client that vanishes is dropped (ping timeout), its state freed. Per stream the memory is
bounded by the model's window (lib.live.stream); the number of streams by ``max_clients``.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import time
from http import HTTPStatus
from pathlib import Path

import numpy as np

from ..channels import FaceFormat
from ..config import AUDIO_SAMPLE_RATE_HZ
from .model import LiveFaceModel
from .stream import StreamingPredictor

STATIC = Path(__file__).parent / "static"
SAMPLE_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"  # loopback unless asked: a microphone stream is private
    port: int = 8765
    max_clients: int = 16
    max_message_bytes: int = 64_000  # 2 s of s16le audio; a client should send 20-100 ms chunks
    render_px: int = 256  # PNG size of the page's face
    ping_interval_s: float = 10.0  # a vanished client is dropped after ping_interval + ping_timeout
    ping_timeout_s: float = 10.0


class LiveServer:
    """A model shared by all streams; one StreamingPredictor per connection."""

    def __init__(self, model: LiveFaceModel, face: FaceFormat, cfg: ServerConfig = ServerConfig(),
                 feature: str = "mfcc_live", ppg_net=None):
        from .features import make_streaming_features

        self.model, self.face, self.cfg = model.eval(), face, cfg
        self.feature = feature
        # One incremental extractor per stream; the PPG network (if any) is shared, read-only.
        self.new_features = lambda: make_streaming_features(feature, ppg_net)
        self.active = 0
        self.streams_total = 0
        self.frames_total = 0
        self.errors_total = 0
        self.port: int | None = None
        self._server = None
        self.warm_up()

    def warm_up(self) -> None:
        """One second of silence through a stream and one render: the first client must not pay
        for librosa's import, the mel filterbank, torch's first kernels (about 2 s on a busy CPU)."""
        sp = StreamingPredictor(self.model, features=self.new_features())
        sp.push(np.zeros(AUDIO_SAMPLE_RATE_HZ, np.float32))
        self._png(sp.flush().values[-1])

    # ------------------------------------------------------------------ HTTP
    def _http(self, status: HTTPStatus, body: bytes, ctype: str):
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-store")])
        return Response(status.value, status.phrase, headers, body)

    def stats(self) -> dict:
        return {"active_streams": self.active, "streams_total": self.streams_total,
                "frames_total": self.frames_total, "errors_total": self.errors_total,
                "cpu_s": time.process_time(), "max_clients": self.cfg.max_clients}

    def process_request(self, connection, request):
        path = request.path.split("?")[0]
        if path == "/ws":
            return None  # go on with the WebSocket handshake
        if path in ("/", "/index.html"):
            return self._http(HTTPStatus.OK, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
        if path == "/stats":
            return self._http(HTTPStatus.OK, json.dumps(self.stats()).encode(), "application/json")
        return self._http(HTTPStatus.NOT_FOUND, f"no such path {path}; try / or /ws\n".encode(), "text/plain")

    # ------------------------------------------------------------------ streams
    def format_message(self, sample_format: str = "s16le") -> dict:
        sp = StreamingPredictor(self.model, features=self.new_features())
        return {"type": "format", "channels": list(self.face.channels), "fps": self.face.face_fps,
                "sample_rate_hz": AUDIO_SAMPLE_RATE_HZ, "sample_format": sample_format, "feature": self.feature,
                "lookahead_ms": self.model.live.lookahead_ms,
                "algorithmic_latency_ms": sp.algorithmic_latency_ms,
                "max_message_bytes": self.cfg.max_message_bytes}

    def _png(self, values: np.ndarray) -> bytes:
        from ..render.face import render_frame

        img = render_frame(np.clip(values, 0.0, 1.0), self.face.channels, (self.cfg.render_px, self.cfg.render_px))
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", compress_level=1)  # fast: latency over size
        return buf.getvalue()

    async def _send_frames(self, ws, frames, n_samples: int, render: bool) -> None:
        if not len(frames.values):
            return
        self.frames_total += len(frames.values)
        await ws.send(json.dumps({"type": "frames", "start": frames.start,
                                  "t_s": [round(t, 4) for t in frames.times_s.tolist()],
                                  "values": np.round(frames.values, 4).tolist(), "n_samples": n_samples}))
        if render:
            await ws.send(self._png(frames.values[-1]))

    async def _error(self, ws, message: str, close_code: int | None = None) -> None:
        self.errors_total += 1
        await ws.send(json.dumps({"type": "error", "message": message}))
        if close_code is not None:
            await ws.close(close_code, message[:120])  # close reasons are limited to 123 bytes

    async def handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        if self.active >= self.cfg.max_clients:
            await ws.close(1013, f"server full ({self.cfg.max_clients} streams); try again later")
            return
        self.active += 1
        self.streams_total += 1
        fmt, render = "s16le", False
        sp = StreamingPredictor(self.model, features=self.new_features())
        try:
            await ws.send(json.dumps(self.format_message(fmt)))
            async for msg in ws:
                if isinstance(msg, str):
                    try:
                        req = json.loads(msg)
                        kind = req.get("type") if isinstance(req, dict) else None
                    except ValueError:
                        kind = None
                    if kind == "config":
                        if req.get("sample_format", fmt) not in SAMPLE_FORMATS:
                            await self._error(ws, f"unknown sample_format {req.get('sample_format')!r}; "
                                                  f"expected one of {sorted(SAMPLE_FORMATS)}", 1003)
                            return
                        if req.get("sample_rate_hz", AUDIO_SAMPLE_RATE_HZ) != AUDIO_SAMPLE_RATE_HZ:
                            await self._error(ws, f"sample_rate_hz must be {AUDIO_SAMPLE_RATE_HZ}, got "
                                                  f"{req.get('sample_rate_hz')}; resample on the client", 1003)
                            return
                        fmt, render = req.get("sample_format", fmt), bool(req.get("render", render))
                    elif kind == "end":
                        await self._send_frames(ws, sp.flush(), sp.n_samples, render)
                        await ws.send(json.dumps({"type": "end", "frames": sp.n_emitted}))
                        sp = StreamingPredictor(self.model, features=self.new_features())  # ready for the next utterance
                    else:
                        await self._error(ws, "text messages must be JSON {\"type\": \"config\" | \"end\"}; "
                                              "audio goes in binary messages")
                    continue
                if not msg:
                    await self._error(ws, "empty audio message (0 bytes); send PCM samples")
                    continue
                dtype = SAMPLE_FORMATS[fmt]
                if len(msg) % dtype.itemsize:
                    await self._error(ws, f"{len(msg)} bytes is not a whole number of {fmt} samples "
                                          f"({dtype.itemsize} bytes each): wrong sample format?", 1003)
                    return
                pcm = np.frombuffer(msg, dtype)
                if fmt == "s16le":
                    pcm = pcm.astype(np.float32) / 32768.0
                elif not np.all(np.isfinite(pcm)):
                    await self._error(ws, "float32 samples must be finite (NaN/inf received)", 1007)
                    return
                await self._send_frames(ws, sp.push(pcm), sp.n_samples, render)
        except ConnectionClosed:
            pass  # the client went away: nothing to answer, its state goes with this frame
        finally:
            self.active -= 1

    async def serve_forever(self, ready: "asyncio.Future | None" = None, stop: "asyncio.Event | None" = None) -> None:
        from websockets.asyncio.server import serve

        async with serve(self.handler, self.cfg.host, self.cfg.port, process_request=self.process_request,
                         max_size=self.cfg.max_message_bytes, ping_interval=self.cfg.ping_interval_s,
                         ping_timeout=self.cfg.ping_timeout_s, max_queue=32, close_timeout=2) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            if ready is not None:
                ready.set_result(self.port)
            await (stop.wait() if stop is not None else asyncio.Future())


def load_server(checkpoint: str | Path, cfg: ServerConfig = ServerConfig()) -> LiveServer:
    """A LiveServer for a live run folder (its best.pt) or checkpoint file."""
    from ..train.evaluate import checkpoint_face
    from .model import load_live_model
    from .stream import check_live_feature

    path = Path(checkpoint)
    if path.is_dir():
        path = path / "best.pt"
    from .train import checkpoint_features

    model, ck = load_live_model(path)
    feature, ppg_net = checkpoint_features(ck)
    check_live_feature(feature)
    return LiveServer(model, checkpoint_face(ck), cfg, feature, ppg_net)


class BackgroundServer:
    """A LiveServer on its own event loop thread (tests, benchmarks): ``with BackgroundServer(s) as port:``."""

    def __init__(self, server: LiveServer):
        self.server = server

    def __enter__(self) -> int:
        import threading

        self.loop = asyncio.new_event_loop()
        ready = self.loop.create_future()
        self.stop = asyncio.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.serve_forever(ready, self.stop))

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        t0 = time.time()
        while not ready.done():
            if time.time() - t0 > 30 or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.01)
        return ready.result()

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=10)


def cli_main(argv: list[str]) -> int:
    """python -m lib serve --checkpoint RUN [--port 8765] [--host 127.0.0.1] [--max_clients 16]"""
    ap = argparse.ArgumentParser(prog="python -m lib serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="live run folder (best.pt) or a checkpoint file")
    ap.add_argument("--port", type=int, default=ServerConfig.port, help="0: any free port (printed)")
    ap.add_argument("--host", default=ServerConfig.host, help="default loopback; 0.0.0.0 to serve the network")
    ap.add_argument("--max_clients", type=int, default=ServerConfig.max_clients)
    ap.add_argument("--max_message_bytes", type=int, default=ServerConfig.max_message_bytes)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (one stream needs one core at most)")
    a = ap.parse_args(argv)
    import torch

    from ..io import DataError

    torch.set_num_threads(a.threads)
    try:
        server = load_server(a.checkpoint, ServerConfig(a.host, a.port, a.max_clients, a.max_message_bytes))
    except (DataError, ValueError) as e:
        print(f"error: {e}")
        return 2

    async def main() -> None:
        ready = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(server.serve_forever(ready))
        port = await ready
        print(f"serving http://{a.host}:{port}/ (WebSocket ws://{a.host}:{port}/ws), "
              f"{server.face.n_channels} channels at {server.face.face_fps} fps; Ctrl-C stops", flush=True)
        await task

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
