"""The live loop follows its latency: above the threshold Pose runs less often, then fewer
frames are analysed."""

from __future__ import annotations

from typing import Any

import httpx

from app.config import Settings
from tests.fixtures.clips import Segment, labelled_clip
from tests.live.test_ws_live import stream
from tests.support.client import SessionClient
from tests.support.metrics import parse
from tests.support.server import ThreadServer


async def stream_under_load(
    settings: Settings, gauge: str, **update: float
) -> tuple[SessionClient, float, float, dict[str, Any]]:
    """6 s of frontal frames at 15 fps into a server that reads every frame as late (a 1 ms
    threshold no real analysis meets), with metrics on every analysed frame (sampled at 5 Hz
    from 15 fps they could fall in step with Pose every 3rd frame). Returns the client, the
    `gauge` before and after, and the ended session."""
    tuned = settings.updated(**{"pose_cadence_high_ms": 1.0, "metrics_hz": 1000.0, **update})
    frames = labelled_clip(15.0, [Segment("frontal", 6.0)])
    with ThreadServer(tuned) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        async with httpx.AsyncClient(base_url=server.http) as http:
            before = parse((await http.get("/metrics")).text)[gauge]
            await stream(client, frames)
            await client.wait_for(lambda e: e["type"] == "metrics" and e["t"] > 5.5, timeout=60)
            after = parse((await http.get("/metrics")).text)[gauge]
        await client.end()
        done = await client.wait_completed()
        await client.close()
    return client, before, after, done


async def test_latency_above_the_threshold_runs_pose_less_often(settings: Settings) -> None:
    # The cadence climbs one step a second: Pose every frame -> every 3rd.
    client, before, after, _ = await stream_under_load(
        settings, "coach_pose_every", pose_every=1, pose_every_max=3
    )

    assert before == 1
    assert after == 3
    # Late metrics events sample frames where Pose was reused: its stage took no time.
    late = [e for e in client.of_type("metrics") if e["t"] > 4.5]
    reused = [e for e in late if e["analysis_ms"]["pose"] < 0.5]
    assert late and len(reused) >= len(late) // 2, [e["analysis_ms"]["pose"] for e in late]
    # the body landmarks stay found between Pose runs (the last result is reused)
    assert all(e["posture"]["shoulder_tilt_deg"] is not None for e in late)


async def test_past_the_rarest_pose_fewer_frames_are_analysed(settings: Settings) -> None:
    # Pose already as rare as allowed (every frame, no room): the next steps lower the cap
    # 15 -> 11.25 -> 7.5 fps, one a second; frames over it are skipped, not held.
    client, before, after, done = await stream_under_load(
        settings,
        "coach_analysis_fps",
        pose_every=1,
        pose_every_max=1,
        analysis_fps=15.0,
        analysis_fps_min=7.5,
    )

    assert (before, after) == (15.0, 7.5)
    late = [e for e in client.of_type("metrics") if 4.0 <= e["t"] < 6.0]
    assert 11 <= len(late) <= 19, [e["t"] for e in late]  # ~7.5 a second, not the camera's 15
    assert done["frames_dropped"] >= 20  # the skipped frames are counted
