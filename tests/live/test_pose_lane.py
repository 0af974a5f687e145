"""Pose in a lane of its own: a frame's metrics wait for face analysis only, and carry the
newest Pose result with its age. Real server, real WebSocket client, a real face; Pose is made
slow (the edge we control) to stand for an overloaded machine."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from app.analysis.pipeline import FrameAnalyzer, PoseWork
from app.config import Settings
from app.wiring import default_hooks
from tests.fixtures.clips import Segment, labelled_clip
from tests.live.test_ws_live import stream
from tests.support.client import SessionClient
from tests.support.server import ThreadServer

POSE_S = 0.4  # far above what face analysis takes


class SlowPoseAnalyzer(FrameAnalyzer):
    def run_pose(self, work: PoseWork) -> None:
        time.sleep(POSE_S)
        super().run_pose(work)


async def _metrics(settings: Settings) -> list[dict[str, Any]]:
    hooks = dataclasses.replace(default_hooks(settings), make_analyzer=SlowPoseAnalyzer)
    frames = labelled_clip(15.0, [Segment("frontal", 4.0)])
    with ThreadServer(settings, hooks) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await stream(client, frames)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
    return client.of_type("metrics")


async def test_metrics_do_not_wait_for_a_slow_pose(settings: Settings) -> None:
    laned = await _metrics(settings)
    # the first events come before any Pose result: no posture, no age
    assert laned[0]["pose_age_ms"] is None and laned[0]["posture"]["shoulder_tilt_deg"] is None
    # From the first Pose result on (start-up: the analyser is built while frames wait, and
    # the first Pose run on a person initialises its landmark model, ~0.4 s here)...
    first = next(i for i, e in enumerate(laned) if e["pose_age_ms"] is not None)
    running = laned[first:]
    assert len(running) >= 8
    # ...no event waits for a Pose run,
    latencies = [e["latency_ms"] for e in running]
    assert max(latencies) < POSE_S * 1000, latencies
    # every one carries a Pose result and says how old it is (a run takes POSE_S and starts
    # on the next frame after the last one ended),
    ages = [e["pose_age_ms"] for e in running]
    assert all(age is not None and 0 <= age <= 3000 for age in ages), ages
    assert max(ages) >= POSE_S * 1000
    # (the first result comes from the frame that waited for the analyser: older at first)
    assert all(age <= 1500 for age in ages[len(ages) // 2 :]), ages
    # and the body is found on most of them
    with_body = [e for e in running if e["posture"]["shoulder_tilt_deg"] is not None]
    assert len(with_body) >= len(running) // 2, [e["posture"] for e in running]


async def test_inline_pose_makes_its_frames_wait(settings: Settings) -> None:
    """The same slow Pose without the lane: the frames it runs on wait for it (the check that
    the test above can fail)."""
    inline = await _metrics(settings.model_copy(update={"pose_lane": False}))
    assert len(inline) >= 2 and max(e["latency_ms"] for e in inline[1:]) >= POSE_S * 1000
    assert all(e["pose_age_ms"] == 0 for e in inline if e["analysis_ms"]["pose"] > 0)
