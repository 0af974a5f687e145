"""A live session whose Pose worker process dies keeps coaching: one `analysis_failed` error,
face metrics throughout, and posture again from the worker that replaces it."""

from __future__ import annotations

import os
import signal

from app.config import Settings
from tests.fixtures.clips import Segment, labelled_clip
from tests.live.test_ws_live import stream
from tests.support.client import SessionClient
from tests.support.processes import pose_workers, wait_gone
from tests.support.server import ThreadServer


def _fresh_pose_t(event: dict) -> float | None:  # type: ignore[type-arg]
    age = event.get("pose_age_ms")
    return None if age is None else event["t"] - age / 1000


async def test_killed_pose_worker_costs_a_run_not_the_session(settings: Settings) -> None:
    before = {p.pid for p in pose_workers(os.getpid(), timeout=0)}
    with ThreadServer(settings) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await stream(client, labelled_clip(15.0, [Segment("frontal", 2.0)]))
        await client.wait_for(
            lambda e: e["type"] == "metrics" and e["posture"]["shoulder_tilt_deg"] is not None,
            timeout=30,
        )
        (worker,) = [p for p in pose_workers(os.getpid()) if p.pid not in before]
        killed_at = max(e["t"] for e in client.of_type("metrics"))
        worker.send_signal(signal.SIGKILL)
        wait_gone(worker)

        await stream(client, labelled_clip(15.0, [Segment("frontal", 6.0)]))
        await client.wait_for(
            lambda e: e["type"] == "metrics" and (_fresh_pose_t(e) or 0) > killed_at + 0.5,
            timeout=30,
        )
        await client.end()
        done = await client.wait_completed()
        await client.close()

    errors = client.of_type("error")
    assert [e["code"] for e in errors] == ["analysis_failed"], errors
    assert "Pose worker" in errors[0]["reason"]
    after = [e for e in client.of_type("metrics") if e["t"] > killed_at]
    assert after and all(e["face"] for e in after)  # face never stopped
    assert done["state"] == "completed"
