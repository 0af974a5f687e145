"""Recording end to end: stream over a real WebSocket, end, download a VP9 WebM; and a server
killed mid-session leaves a recording that the next start recovers."""

from __future__ import annotations

import io
import time
from pathlib import Path

import av
import httpx

from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.live.test_ws_live import FPS, stream
from tests.support.client import SessionClient, wait_state
from tests.support.server import ThreadServer, process_server


def probe(data: bytes) -> tuple[str, float, int]:
    """(video codec, duration from the last frame's end, frame count) of a WebM in memory."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        times = [float(frame.pts * frame.time_base) for frame in container.decode(stream)]
    duration = times[-1] - times[0] + (times[-1] - times[-2] if len(times) > 1 else 0)
    return codec, duration, len(times)


async def test_recording_is_vp9_with_wall_clock_duration_and_range(server: ThreadServer) -> None:
    frames = labelled_clip(
        FPS, [Segment("frontal", 8.0), Segment("empty", 4.0), Segment("frontal", 8.0)]
    )
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    sent = await stream(client, frames)
    wall = sent[-1] - sent[0] + 1 / FPS
    await client.send_json({"type": "end"})
    ready = await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    await client.close()

    answer = await client.get("/recording.webm")
    assert answer.status_code == 200 and answer.headers["content-type"] == "video/webm"
    codec, duration, count = probe(answer.content)
    assert codec == "vp9"
    assert abs(duration - wall) <= 0.05 * wall, (duration, wall)
    assert count >= 0.95 * len(frames), (count, len(frames))
    assert ready["recording_url"].endswith("/recording.webm")

    part = await client.get("/recording.webm", headers={**client.auth, "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert part.content == answer.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(answer.content)}"


async def test_a_killed_server_leaves_a_recording_the_next_start_recovers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    frames = labelled_clip(FPS, [Segment("frontal", 3.0), Segment("rotated", 3.0, roll_deg=20)])
    jpegs = [encode_jpeg(f.image) for f in frames]
    with process_server(data_dir) as srv:
        client = await SessionClient.create(srv.http, srv.ws, language="ko")
        await client.connect()
        sent = await client.send_paced(jpegs, FPS)
        sent_until = time.monotonic()
        srv.kill()
        await client.close()
    frames_before_cutoff = sum(1 for t in sent if t <= sent_until - 2.0)

    with process_server(data_dir) as srv2:
        async with httpx.AsyncClient(base_url=srv2.http, timeout=30) as http:
            info = await wait_state(
                http, f"/api/sessions/{client.id}", client.auth, "completed", "failed", timeout=120
            )
            assert info["state"] == "completed", info
            assert info["recovered"] is True
            recording = await http.get(
                f"/api/sessions/{client.id}/recording.webm", headers=client.auth
            )
            assert recording.status_code == 200
            codec, _duration, count = probe(recording.content)
            assert codec == "vp9"
            assert count >= frames_before_cutoff, (count, frames_before_cutoff)
            events = (
                await http.get(f"/api/sessions/{client.id}/events", headers=client.auth)
            ).json()["events"]
            assert events[-1]["type"] == "state" and events[-1]["state"] == "completed"
            assert any(e["type"] == "report_ready" for e in events)
