"""Every limit of the live service, each with its stable error code, against a real server on
loopback: creation rate, concurrent sessions, free disk (at creation and while recording),
session length, input frame rate and WebSocket message size."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.metrics import scrape
from tests.support.server import ThreadServer


def limited(settings: Settings, **changes: object) -> Settings:
    return settings.updated(**changes)


def small_jpeg() -> bytes:
    frame = labelled_clip(15.0, [Segment("frontal", 0.1)])[0]
    return encode_jpeg(frame.image)


async def test_creation_rate_per_client_is_429_rate_limited(settings: Settings) -> None:
    with ThreadServer(limited(settings, session_create_per_minute=3)) as srv:
        async with httpx.AsyncClient(base_url=srv.http) as http:
            codes = [(await http.post("/api/sessions")).status_code for _ in range(3)]
            refused = await http.post("/api/sessions")
    assert codes == [201, 201, 201]
    assert refused.status_code == 429
    assert refused.json()["detail"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0


async def test_live_sessions_are_503_with_retry_after(settings: Settings) -> None:
    """`max_concurrent_sessions` counts sessions that are live: a created one waiting for its
    first frame does not, and its first frame past the limit is refused (close 1013) and
    leaves it `created`, to start once a place is free."""
    with ThreadServer(limited(settings, max_concurrent_sessions=2)) as srv:
        clients = [await SessionClient.create(srv.http, srv.ws, language="en") for _ in range(3)]
        first, second, third = clients
        for client in (first, second):
            await client.connect()
            await client.send_frame(small_jpeg())
            await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        async with httpx.AsyncClient(base_url=srv.http) as http:
            refused = await http.post("/api/sessions")
            assert refused.status_code == 503
            assert refused.json()["detail"]["code"] == "too_many_sessions"
            assert int(refused.headers["retry-after"]) > 0

            await third.connect()
            await third.send_frame(small_jpeg())
            assert await third.wait_closed() == 1013
            assert third.log.closed_reason is not None
            assert (await third.get()).json()["state"] == "created"

            # Ending one frees its place once it is finalised: the waiting one starts.
            await first.end()
            await first.wait_completed()
            await third.connect()
            await third.send_frame(small_jpeg())
            await third.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
            assert (await http.post("/api/sessions")).status_code == 503
        for client in (second, third):
            await client.end()
            await client.wait_completed()
            await client.close()
        await first.close()


async def test_low_disk_refuses_new_sessions_with_disk_full(settings: Settings) -> None:
    free_mb = shutil.disk_usage(settings.storage.data_dir.parent).free / 1e6
    with ThreadServer(limited(settings, min_free_disk_mb=int(free_mb) + 10_000)) as srv:
        async with httpx.AsyncClient(base_url=srv.http) as http:
            refused = await http.post("/api/sessions")
    assert refused.status_code == 503
    assert refused.json()["detail"]["code"] == "disk_full"
    assert "retry-after" in refused.headers


async def test_session_length_ends_and_finalises_the_session(settings: Settings) -> None:
    with ThreadServer(limited(settings, max_session_s=2.0)) as srv:
        client = await SessionClient.create(srv.http, srv.ws, language="en")
        await client.connect()
        await client.send_frame(small_jpeg())
        finalizing = await client.wait_for(
            lambda e: e["type"] == "state" and e["state"] == "finalizing", timeout=30
        )
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
        info = (await client.get()).json()
        recording = await client.get("/recording.webm")
    assert finalizing["reason"] == "max_duration"
    assert 2.0 <= finalizing["t"] < 5.0
    assert info["state"] == "completed" and info["reason"] == "max_duration"
    assert recording.status_code == 200 and recording.content[:4] == b"\x1a\x45\xdf\xa3"


async def test_frames_above_the_input_rate_are_dropped_and_counted(settings: Settings) -> None:
    with ThreadServer(limited(settings, max_fps_in=5.0)) as srv:
        client = await SessionClient.create(srv.http, srv.ws, language="en")
        await client.connect()
        data = small_jpeg()
        sent = 60
        for _ in range(sent):
            await client.send_frame(data)
        # a ping answered means every frame before it was taken off the socket
        await client.send_json({"type": "ping"})
        await client.wait_for(lambda e: e["type"] == "pong", timeout=10)
        info = (await client.get()).json()
        counters = await scrape(srv.http)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
    # Within a second of sending, at most two rate windows opened: 5 frames each.
    assert info["frames_received"] <= 10, info
    rate_limited = sent - info["frames_received"]
    assert info["frames_dropped"] >= rate_limited >= 50
    assert counters["coach_frames_dropped_total"] >= rate_limited


async def test_a_message_over_the_size_limit_closes_the_socket_with_1009(
    settings: Settings,
) -> None:
    with ThreadServer(limited(settings, ws_max_message_bytes=64 * 1024)) as srv:
        client = await SessionClient.create(srv.http, srv.ws, language="en")
        url = f"{srv.ws}/ws/sessions/{client.id}?token={client.token}"
        async with connect(url, max_size=None) as ws:
            await ws.send(small_jpeg())  # the session is live
            await ws.send(b"\xff\xd8" + b"\x00" * (100 * 1024))
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009
            assert ws.close_reason == "message_too_big"
        # the session itself goes on: a reconnect resumes it
        await client.connect()
        await client.send_json({"type": "ping"})
        info = (await client.get()).json()
        assert info["state"] == "live"
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()


# --- a disk filling up while a session records ---------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a filesystem of its own where we can mount one (a 64 MB tmpfs, as root),
    otherwise a plain directory: the test works relative to the free space it finds."""
    directory = tmp_path / "sessions"
    directory.mkdir()
    mounted = False
    if os.geteuid() == 0 and shutil.which("mount"):
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(directory)],
                capture_output=True,
                check=False,
            ).returncode
            == 0
        )
    try:
        yield directory
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(directory)], check=False)


async def test_a_disk_filling_up_ends_the_session_with_its_recording(
    settings: Settings, small_disk: Path
) -> None:
    """Something else fills the recordings' filesystem mid-session: the session stops recording
    while there is still room, ends itself with reason `disk_full`, and is finalised with a
    playable recording of everything up to that point."""
    free_mb = shutil.disk_usage(small_disk).free / 1e6
    reserve_mb = int(free_mb) - 12  # 12 MB of room before the reserve is reached
    # sessions_dir is data_dir/sessions: the small filesystem is mounted exactly there, the
    # database stays beside it.
    live_settings = limited(
        settings,
        data_dir=small_disk.parent,
        min_free_disk_mb=0,
        min_free_disk_live_mb=reserve_mb,
    )
    jpeg = small_jpeg()
    with ThreadServer(live_settings) as srv:
        client = await SessionClient.create(srv.http, srv.ws, language="en")
        await client.connect()
        for _ in range(30):  # two seconds at 15 fps, recorded
            await client.send_frame(jpeg)
            await asyncio.sleep(1 / 15)
        with (small_disk / "ballast.bin").open("wb") as ballast:
            ballast.write(b"\x00" * 16_000_000)  # now 4 MB below the reserve
        with contextlib.suppress(ConnectionClosed):
            # keep streaming until the session notices (the recorder checks once a second)
            for _ in range(15 * 10):
                if any(e["type"] == "state" and e["state"] == "finalizing" for e in client.events):
                    break
                await client.send_frame(jpeg)
                await asyncio.sleep(1 / 15)
        ended = await client.wait_for(
            lambda e: e["type"] == "state" and e["state"] == "finalizing", timeout=15
        )
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await client.close()
        info = (await client.get()).json()
        recording = await client.get("/recording.webm")

    assert ended["reason"] == "disk_full"
    assert info["state"] == "completed" and info["reason"] == "disk_full"
    assert recording.status_code == 200
    with av.open(io.BytesIO(recording.content)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 30  # at least everything sent before the disk filled
