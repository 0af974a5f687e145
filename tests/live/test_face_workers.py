"""A live session whose FaceMesh runs in a face worker process (`analysis.face_processes`):
over a real server and WebSocket, its metrics carry the face, gaze and head pose, and a
worker killed mid-session costs frames, not the session."""

from __future__ import annotations

import signal

import psutil

from app.config import Settings
from app.media.vp9 import VP9_MAGIC
from tests.fixtures.clips import encode_vp9, moving_face_frames
from tests.support.client import SessionClient
from tests.support.processes import wait_gone
from tests.support.server import ThreadServer

FPS = 15.0


async def test_a_session_analysed_in_a_face_worker_survives_its_death(settings: Settings) -> None:
    settings.analysis.face_processes = 1
    chunks = encode_vp9(moving_face_frames(120, FPS), FPS, keyframe_every=30)
    with ThreadServer(settings) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await client.send_paced([VP9_MAGIC + c for c in chunks[:45]], FPS)
        await client.wait_for(lambda e: e["type"] == "metrics" and e["face"], timeout=60)
        service = server.app.state.manager.services.hooks.make_analyzer.__self__
        faces = service._face_graphs
        assert faces is not None and faces.graphs_per_worker() == [1] and faces.started == 1
        worker = psutil.Process(faces._workers[0]._process.pid)
        worker.send_signal(signal.SIGKILL)
        wait_gone(worker)
        await client.send_paced([VP9_MAGIC + c for c in chunks[45:]], FPS)
        await client.send_json({"type": "end"})
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
        received = (await client.get("")).json()["frames_received"]
        await client.close()
        assert faces.started == 2  # the next frame after the death started a new worker

    metrics = client.of_type("metrics")
    late = [m for m in metrics if m["frame"] >= 60]
    assert late and all(m["face"] for m in late), late[:3]
    on_camera = [m["gaze"]["direction"] == "camera" for m in late]
    assert sum(on_camera) >= 0.8 * len(late), late[:3]  # the presenter faces the camera
    assert received == len(chunks)
