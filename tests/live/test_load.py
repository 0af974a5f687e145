"""Load shedding: by the CPU reading (the edge of the world, so the tests feed it), and by the
live sessions' analysis reaching its floor (against a real server)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.api.errors import http_headers, http_status
from app.config import Settings
from app.errors import CoachError
from app.live.load import LoadMonitor
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.live.test_ws_live import stream
from tests.support.client import SessionClient
from tests.support.metrics import scrape
from tests.support.server import ThreadServer


def monitor(readings: list[float], limit: float | None = 80.0) -> LoadMonitor:
    values = iter(readings)
    m = LoadMonitor(limit, retry_after_s=7, window=3, sample_cpu=lambda: next(values))
    for _ in readings:
        m.sample_now()
    return m


def test_above_the_averaged_limit_new_sessions_get_503_overloaded_with_retry_after() -> None:
    with pytest.raises(CoachError) as refused:
        monitor([70, 95, 99, 97]).check()
    assert refused.value.code == "overloaded"
    assert refused.value.retry_after_s == 7
    assert http_status(refused.value) == 503
    assert http_headers(refused.value) == {"Retry-After": "7"}


def test_one_busy_sample_does_not_shed_and_no_limit_never_sheds() -> None:
    monitor([20, 30, 100]).check()  # mean 50
    monitor([100, 100, 100], limit=None).check()
    monitor([]).check()  # no reading yet


async def until_gauge(
    base_http: str, name: str, value: float, streaming: asyncio.Task[Any]
) -> None:
    """Until the server's `name` gauge reads `value` (it follows the live frames)."""
    while (await scrape(base_http))[name] != value:
        assert not streaming.done(), f"{name} never reached {value} while frames streamed"
        await asyncio.sleep(0.2)


async def test_at_the_analysis_floor_new_sessions_get_503_and_the_live_one_goes_on(
    settings: Settings,
) -> None:
    """A server whose live analysis reads every frame as late (a 1 ms threshold no real
    analysis meets) lowers its analysis rate one step a second to the floor (7.5 fps); there a
    new session is refused at creation and at a created session's first frame (close 1013)
    with Retry-After, while the live one keeps its metrics; once nothing runs at the floor,
    both start."""
    tuned = settings.updated(
        pose_cadence_high_ms=1.0,
        metrics_hz=1000.0,
        pose_every=1,
        pose_every_max=1,
        analysis_fps=15.0,
        analysis_fps_min=7.5,
        refuse_at_floor=True,
        floor_retry_after_s=7,
    )
    frames = labelled_clip(15.0, [Segment("frontal", 20.0)])
    with ThreadServer(tuned) as server:
        live = await SessionClient.create(server.http, server.ws, language="en")
        waiting = await SessionClient.create(server.http, server.ws, language="en")
        await live.connect()
        streaming = asyncio.create_task(stream(live, frames))
        await until_gauge(server.http, "coach_analysis_fps", 7.5, streaming)
        async with httpx.AsyncClient(base_url=server.http) as http:
            refused = await http.post("/api/sessions")
            assert refused.status_code == 503
            assert refused.json()["detail"]["code"] == "overloaded"
            assert refused.headers["retry-after"] == "7"

            await waiting.connect()
            await waiting.send_frame(encode_jpeg(frames[0].image))
            assert await waiting.wait_closed() == 1013
            assert waiting.closed_why == "overloaded"
            assert (await waiting.get()).json()["state"] == "created"

            # The live session is not what gave way: its frames are still analysed.
            seen = max(e["frame"] for e in live.of_type("metrics"))
            await live.wait_for(lambda e: e["type"] == "metrics" and e["frame"] > seen + 15)
            assert (await scrape(server.http))["coach_sessions_refused_at_floor_total"] == 2

            streaming.cancel()
            await live.end()
            await live.wait_completed()
            assert (await http.post("/api/sessions")).status_code == 201
            await waiting.connect()
            await waiting.send_frame(encode_jpeg(frames[0].image))
            await waiting.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
            await waiting.end()
            await waiting.wait_completed()
        for client in (live, waiting):
            await client.close()
