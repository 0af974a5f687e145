"""The critic inside the live loop: a hanging VLM costs the session nothing but the critique.

A real coach server (uvicorn on loopback, real MediaPipe analysis) and a real WebSocket
client streaming a real face; the VLM is the fake chat-completions server, hanging on every
request.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.coaching.critic import CritiqueScheduler, RulesCritic, VlmCritic
from app.config import Settings
from app.live.session import LiveSession
from app.wiring import default_hooks
from tests.support.client import SessionClient
from tests.support.server import ThreadServer

from .fake_vlm import FakeVlmServer, Reply
from .settings import make_settings

FPS = 15.0
SECONDS = 5.0


async def run_session(
    settings: Settings, face_jpeg: bytes, vlm: FakeVlmServer | None
) -> list[dict[str, Any]]:
    hooks = default_hooks(settings)
    loops: list[asyncio.AbstractEventLoop] = []
    critic: VlmCritic | None = None
    if vlm is not None:
        critic_settings = settings.updated(
            **{
                "vlm_base_url": vlm.base_url,
                "vlm_api_key": "k",
                "vlm_timeout_s": 1.0,
                "vlm_retries": 0,
            }
        )

        # One per process, built at start-up as the app does (its client is not yet bound to
        # a loop; it first connects on the server's).
        critic = VlmCritic(critic_settings)

        def make_critic(session: LiveSession) -> CritiqueScheduler:
            assert critic is not None
            loops.append(asyncio.get_running_loop())

            return CritiqueScheduler(
                session_id=session.id,
                language=session.language,
                settings=critic_settings,
                critic=critic,
                fallback=RulesCritic(critic_settings),
                emit=session.emit,
                global_limit=asyncio.Semaphore(2),
                interval_s=1.0,  # the API's minimum is 5 s; the test wants several windows
            )

        hooks.make_critic = make_critic
    with ThreadServer(settings, hooks) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        start = time.monotonic()
        for index in range(round(SECONDS * FPS)):
            delay = start + index / FPS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # a 15 fps camera
            await client.send_frame(face_jpeg)
        await client.send_json({"type": "end"})
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
        if critic is not None:
            asyncio.run_coroutine_threadsafe(critic.aclose(), loops[0]).result(10)
    return client.events


async def test_a_hanging_vlm_leaves_metrics_flowing_and_frames_analysed(
    tmp_path: Path, vlm_server: FakeVlmServer, face_image: np.ndarray
) -> None:
    vlm_server.default = Reply(hang=True)
    face_jpeg = cv2.imencode(".jpg", cv2.resize(face_image, (640, 480)))[1].tobytes()

    def settings(name: str) -> Settings:
        return make_settings(
            data_dir=tmp_path / name,
            log_json=False,
            log_level="WARNING",
            min_free_disk_mb=0,
            metrics_hz=60.0,  # one metrics event per analysed frame
        )

    baseline = await run_session(settings("baseline"), face_jpeg, vlm=None)
    hanging = await run_session(settings("hanging"), face_jpeg, vlm=vlm_server)

    critiques = [e for e in hanging if e["type"] == "critique"]
    # one request per critique window, plus the report's summary at the end
    assert len(critiques) >= 2 and len(vlm_server.requests) == len(critiques) + 1
    assert all(c["source"] == "rules" and c["reason"] == "timeout" for c in critiques)
    assert vlm_server.max_in_flight == 1
    categories = {"gaze", "facial_expression", "gestures", "posture", "movement", "voice"}
    for c in critiques:
        assert c["items"] and all(i["category"] in categories for i in c["items"])
        assert c["t_start"] < c["t_end"]

    base, hang = metrics_of(baseline), metrics_of(hanging)
    # The hanging endpoint costs no analysis: as many metrics as without a VLM (give or take a
    # busy machine), and the baseline itself analysed more than its first frames.
    assert len(hang) >= 0.8 * len(base) and len(base) >= 10
    # Every request hung for its whole timeout, and metrics went out all the while: between
    # the end of each window and its (timed-out) critique, frames after the window were
    # analysed and reported. (The critique closing the session comes once the frames stopped.)
    finalizing = next(e["seq"] for e in hanging if e.get("state") == "finalizing")
    for c in critiques:
        if c["seq"] < finalizing:
            during = [m for m in hang if m["t"] > c["t_end"] and m["seq"] < c["seq"]]
            assert during, f"no metrics while the request for {c['t_end']:.1f} s hung"
    # A critic that sat on the frame loop (the openai client's 1.2 s first-use import did)
    # leaves the frames that came meanwhile unanalysed: a run of a dozen or more frame
    # numbers without metrics, where the run without a VLM skips a frame or two at most.
    assert longest_skip(hang) <= longest_skip(base) + 4, (longest_skip(hang), longest_skip(base))


def metrics_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "metrics"]


def longest_skip(metrics: list[dict[str, Any]]) -> int:
    """The most frames in a row that were received but got no metrics event, once the
    analyser was built (the frames that came while the first one waited for it are skipped
    whatever the critic does)."""
    frames = [e["frame"] for e in metrics[1:]]
    return max((b - a - 1 for a, b in itertools.pairwise(frames)), default=0)
