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
    """The metrics events of 4 s of a frontal face, one for every analysed frame."""
    every_frame = settings.updated(metrics_hz=1000.0)
    hooks = dataclasses.replace(default_hooks(every_frame), make_analyzer=SlowPoseAnalyzer)
    frames = labelled_clip(15.0, [Segment("frontal", 4.0)])
    with ThreadServer(every_frame, hooks) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await stream(client, frames)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
    return client.of_type("metrics")


def _fresh(metrics: list[dict[str, Any]]) -> list[int]:
    """Positions of the events where a new Pose result first shows (its run's time is in
    `analysis_ms.pose`; an event reusing an earlier result says 0)."""
    return [i for i, e in enumerate(metrics) if e["analysis_ms"]["pose"] > 0]


def _own_event(metrics: list[dict[str, Any]], carrier: int) -> int | None:
    """Position of the event for the frame the Pose result first shown at `carrier` ran on:
    the earlier event whose `t` is the carrier's less the result's age (both rounded to the
    millisecond, so within 1.5 ms), the closest one if two frames came that close."""
    e = metrics[carrier]
    pose_t = e["t"] - e["pose_age_ms"] / 1000
    near = [(abs(m["t"] - pose_t), i) for i, m in enumerate(metrics[:carrier])]
    off, position = min(near, default=(1.0, None))
    return position if off <= 0.0016 else None


async def test_metrics_do_not_wait_for_a_slow_pose(settings: Settings) -> None:
    laned = await _metrics(settings)
    # the first events come before any Pose result: no posture, no age
    assert laned[0]["pose_age_ms"] is None and laned[0]["posture"]["shoulder_tilt_deg"] is None
    first = next(i for i, e in enumerate(laned) if e["pose_age_ms"] is not None)
    running = laned[first:]
    assert len(running) >= 8
    # From the first Pose result on, every event carries one and says how old it is: never
    # the event's own frame's (that frame's metrics went out without waiting for it).
    ages = [e["pose_age_ms"] for e in running]
    assert all(age is not None and age > 0 for age in ages), ages
    fresh = _fresh(laned)
    assert len(fresh) >= 3, ages
    own = [_own_event(laned, i) for i in fresh]
    # Each result's own frame was analysed, and its metrics sent, before the result existed;
    # other frames' metrics went out while the run took its POSE_S (on average at least one
    # a run: with Pose inline, a frame waits for it and no event goes out meanwhile).
    assert all(o is not None for o in own), (fresh, ages)
    between = [i - o - 1 for i, o in zip(fresh, own, strict=True) if o is not None]
    assert sum(between) >= len(fresh), between
    # One run at a time, each on a frame after the one where the last result showed.
    assert all(
        o is not None and o >= previous for o, previous in zip(own[1:], fresh, strict=False)
    ), (own, fresh)
    # A result shows only once its run is done: at least POSE_S after its frame came.
    assert max(ages) >= POSE_S * 1000
    # and the body is found on most of them
    with_body = [e for e in running if e["posture"]["shoulder_tilt_deg"] is not None]
    assert len(with_body) >= len(running) // 2, [e["posture"] for e in running]


async def test_inline_pose_makes_its_frames_wait(settings: Settings) -> None:
    """The same slow Pose without the lane: the frames it runs on wait for it, so each result
    first shows on its own frame's event (the check that the test above can fail)."""
    inline = await _metrics(settings.updated(pose_lane=False))
    fresh = _fresh(inline)
    assert len(fresh) >= 2
    assert all(inline[i]["pose_age_ms"] == 0 for i in fresh), [e["pose_age_ms"] for e in inline]
