"""/metrics, /healthz and /readyz after a real session on a real server."""

from __future__ import annotations

import asyncio

import httpx

from tests.fixtures.clips import Segment, labelled_clip
from tests.live.test_ws_live import stream
from tests.support.client import SessionClient
from tests.support.metrics import parse, parse_labelled
from tests.support.server import ThreadServer


async def test_metrics_cover_the_live_loop(server: ThreadServer) -> None:
    frames = labelled_clip(15.0, [Segment("frontal", 2.0)])
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    async with httpx.AsyncClient(base_url=server.http) as http:
        await stream(client, frames)
        await client.wait_for(lambda e: e["type"] == "metrics", timeout=60)
        during = parse((await http.get("/metrics")).text)
        await client.send_frame(b"not an image")
        await client.wait_for(lambda e: e["type"] == "error", timeout=30)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
        # The session leaves the registry just after its last event; the gauge follows. The
        # server's loop is another thread's, so there is no event to await: poll, bounded.
        async with asyncio.timeout(10):
            while True:
                answer = await http.get("/metrics")
                if parse(answer.text)["coach_live_sessions"] == 0:
                    break
                await asyncio.sleep(0.05)
        healthz = await http.get("/healthz")
        readyz = await http.get("/readyz")
    after = parse(answer.text)
    labelled = parse_labelled(answer.text)
    info = (await client.get()).json()

    assert answer.headers["content-type"].startswith("text/plain")
    assert during["coach_live_sessions"] == 1 and after["coach_live_sessions"] == 0
    assert "coach_recorder_queue_depth" in during
    assert after["coach_frames_received_total"] == info["frames_received"] == len(frames)
    assert after["coach_frames_analyzed_total"] == info["frames_analyzed"] > 0
    assert after["coach_frames_dropped_total"] >= info["frames_dropped"]
    assert after["coach_bad_frames_total"] == 1
    assert after["coach_analysis_seconds_count"] == info["frames_analyzed"]
    assert after["coach_analysis_seconds_sum"] > 0
    metrics_events = len(client.of_type("metrics"))
    assert after["coach_event_latency_seconds_count"] == metrics_events > 0
    # No VLM endpoint is configured: the final critique comes from the rules, and says so.
    vlm = {
        dict(labels)["outcome"]: v
        for (name, labels), v in labelled.items()
        if name == "coach_vlm_calls_total"
    }
    assert vlm.get("rules", 0) >= 1, vlm
    assert "coach_ws_slow_consumers_total" in after

    assert healthz.status_code == 200 and healthz.json() == {"status": "ok"}
    assert readyz.status_code == 200 and readyz.json()["status"] == "ready"
