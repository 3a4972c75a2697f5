"""Loopback load test: K concurrent clients stream audio to a live server in real time.

Each client sends ``chunk_ms`` of s16le PCM every ``chunk_ms`` (paced like a microphone)
for ``duration_s``, then ``end``. Frame latency = arrival time of a frames message minus
the send time of the chunk that completed it (the server reports ``n_samples``, the audio it
had received): compute + queueing + transport. End-to-end latency adds the algorithmic
part, lookahead + 36 ms of features, and up to one chunk of waiting.
Streams per core = audio seconds served / server CPU seconds (``/stats`` before and after).
Bounded: K, duration and a wall-clock timeout are all arguments; localhost only.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.request

import numpy as np


@dataclasses.dataclass(frozen=True)
class LoadConfig:
    clients: int = 4
    duration_s: float = 5.0
    chunk_ms: int = 40
    timeout_s: float = 60.0
    paced: bool = True  # real time (a microphone); False: as fast as the server answers


def _stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as r:
        return json.loads(r.read())


async def _client(port: int, wav: np.ndarray, cfg: LoadConfig) -> dict:
    from websockets.asyncio.client import connect

    chunk = 16 * cfg.chunk_ms  # samples at 16 kHz
    n_total = int(cfg.duration_s * 16000)
    reps = -(-n_total // len(wav))
    audio = np.tile(wav, reps)[:n_total]
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    sent_at: list[tuple[int, float]] = []  # (samples after this chunk, send time)
    latencies: list[float] = []
    frames = 0
    async with connect(f"ws://127.0.0.1:{port}/ws", max_size=2**22) as ws:
        fmt = json.loads(await ws.recv())
        assert fmt["type"] == "format", fmt

        async def receive() -> None:
            nonlocal frames
            idx = 0
            async for msg in ws:
                m = json.loads(msg)
                if m["type"] == "frames":
                    now = time.perf_counter()
                    while idx + 1 < len(sent_at) and sent_at[idx][0] < m["n_samples"]:
                        idx += 1
                    # The chunk whose arrival made these frames final.
                    latencies.extend([now - sent_at[idx][1]] * len(m["values"]))
                    frames += len(m["values"])
                elif m["type"] == "end":
                    return

        rx = asyncio.ensure_future(receive())
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, n_total, chunk)):
            if cfg.paced:
                await asyncio.sleep(max(0.0, t0 + k * cfg.chunk_ms / 1000 - time.perf_counter()))
            sent_at.append((min(i + chunk, n_total), time.perf_counter()))
            await ws.send(pcm[i:i + chunk].tobytes())
        await ws.send(json.dumps({"type": "end"}))
        await rx
    return {"latencies_s": latencies, "frames": frames, "audio_s": n_total / 16000}


async def _run(port: int, wav: np.ndarray, cfg: LoadConfig) -> list[dict]:
    return await asyncio.wait_for(asyncio.gather(*[_client(port, wav, cfg) for _ in range(cfg.clients)]),
                                  cfg.timeout_s)


def load_test(port: int, wav: np.ndarray, cfg: LoadConfig = LoadConfig()) -> dict:
    """Run the clients against ``ws://127.0.0.1:port/ws`` -> p50/p99 frame latency (ms),
    frames, audio seconds, server CPU seconds, streams per core."""
    before = _stats(port)
    t0 = time.perf_counter()
    results = asyncio.run(_run(port, np.asarray(wav, np.float32), cfg))
    wall = time.perf_counter() - t0
    after = _stats(port)
    lat = np.concatenate([r["latencies_s"] for r in results]) * 1000
    cpu = after["cpu_s"] - before["cpu_s"]
    audio = sum(r["audio_s"] for r in results)
    return {"clients": cfg.clients, "chunk_ms": cfg.chunk_ms, "audio_s": audio, "wall_s": wall,
            "frames": int(sum(r["frames"] for r in results)), "frames_per_client": [r["frames"] for r in results],
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "server_cpu_s": cpu, "streams_per_core": audio / cpu if cpu > 0 else float("inf")}
