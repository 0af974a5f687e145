"""The analysed-rate cap (`analysis_fps`): a camera over it has its surplus frames skipped, and
one at it loses nothing to arrival jitter. Real server, real WebSocket client, a real face.

That a frame over the cap is skipped at once rather than held for a token is `RateCap`'s
design (`admit` answers there and then; tests/live/test_rate_cap.py); what holding would cost
in latency is for `bench.live` to measure, not for a test on a shared machine."""

from __future__ import annotations

import asyncio
import time
from itertools import cycle, islice
from typing import Any

from app.config import Settings
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.server import ThreadServer


async def _accounted(client: SessionClient, frames: int, timeout: float = 60) -> dict[str, Any]:
    """The session's info once all `frames` arrived and each was analysed or skipped."""
    async with asyncio.timeout(timeout):
        while True:
            info: dict[str, Any] = (await client.get()).json()
            done = info["frames_analyzed"] + info["frames_dropped"]
            if info["frames_received"] == frames and done == frames:
                return info
            await asyncio.sleep(0.05)


async def _run(settings: Settings, gaps_s: list[float]) -> tuple[dict, list[dict]]:
    """One frame, analysed (the analyser built), then one frame per gap (after waiting that
    gap); once every frame is analysed or skipped, end; return (session info, metrics)."""
    jpegs = [encode_jpeg(f.image) for f in labelled_clip(10.0, [Segment("frontal", 1.0)])]
    with ThreadServer(settings) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await client.send_frame(jpegs[-1])
        await client.wait_for(lambda e: e["type"] == "metrics", timeout=60)
        due = time.monotonic()
        for data, gap in zip(cycle(jpegs), gaps_s, strict=False):
            due += gap
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await client.send_frame(data)
        info = await _accounted(client, 1 + len(gaps_s))
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
    return info, client.of_type("metrics")


async def test_jitter_around_the_cap_costs_no_frame(settings: Settings) -> None:
    # 10 fps on average, as a camera behind a jittery network: frames 20 and 180 ms apart.
    settings = settings.updated(analysis_fps=10.0, metrics_hz=1000.0)
    gaps = [0.1, *islice(cycle([0.02, 0.18]), 30)]
    info, metrics = await _run(settings, gaps)
    assert info["frames_received"] == 1 + len(gaps)
    assert info["frames_analyzed"] == 1 + len(gaps), info
    assert info["frames_dropped"] == 0, info
    # every frame analysed, in order, each with its metrics event
    assert [e["frame"] for e in metrics] == list(range(1 + len(gaps)))
    assert all(e["face"] for e in metrics)


async def test_a_camera_over_the_cap_is_thinned_to_it(settings: Settings) -> None:
    settings = settings.updated(analysis_fps=5.0)
    gaps = [1 / 15] * 45  # 3 s at 15 fps
    info, metrics = await _run(settings, gaps)
    assert info["frames_received"] == 46
    # the first frame, then 5 a second for 3 s, plus the bucket's second token
    assert 14 <= info["frames_analyzed"] <= 18, info
    assert info["frames_dropped"] == 46 - info["frames_analyzed"]
    assert metrics
