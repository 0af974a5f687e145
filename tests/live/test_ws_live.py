"""The live loop end to end: a real server on loopback, a real WebSocket client, labelled clips
made from real photos."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from tests.fixtures.clips import LabelledFrame, Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.server import ThreadServer, process_server

FPS = 15.0


async def stream(
    client: SessionClient, frames: Sequence[LabelledFrame], fps: float = FPS
) -> list[float]:
    """Send frames paced at `fps`; returns each frame's send time (monotonic)."""
    return await client.send_paced([encode_jpeg(f.image) for f in frames], fps)


def server_time_offset(client: SessionClient, sent: list[float]) -> float:
    """Server media t minus client send time, from the metrics events (median)."""
    diffs = sorted(
        e["t"] - sent[e["frame"]] for e in client.of_type("metrics") if e["frame"] < len(sent)
    )
    assert diffs, "no metrics events"
    return diffs[len(diffs) // 2]


def cue_periods(events: list[dict[str, Any]], cue: str) -> list[tuple[float, float | None]]:
    periods: list[tuple[float, float | None]] = []
    for e in events:
        if e["type"] != "cue" or e["cue"] != cue:
            continue
        if e["state"] == "on":
            periods.append((e["t"], None))
        elif periods and periods[-1][1] is None:
            periods[-1] = (periods[-1][0], e["t"])
    return periods


def assert_no_flicker(events: list[dict[str, Any]], hold_s: float) -> None:
    last: dict[str, tuple[str, float]] = {}
    for e in (e for e in events if e["type"] == "cue"):
        previous = last.get(e["cue"])
        if previous is not None:
            assert previous[0] != e["state"], f"{e['cue']} repeated {e['state']}"
            # an on->off (or off->on) pair never closer than the hold time (small rounding slack)
            assert e["t"] - previous[1] >= hold_s - 0.05, f"{e['cue']} flickered: {previous} -> {e}"
        last[e["cue"]] = (e["state"], e["t"])


def _frames_into_segment(frames: Sequence[LabelledFrame], index: int) -> int:
    i = index
    while i > 0 and frames[i - 1].segment == frames[index].segment:
        i -= 1
    return index - i


async def test_frontal_eye_contact_and_rotated_head_tilt(server: ThreadServer) -> None:
    frames = labelled_clip(
        FPS,
        [
            Segment("frontal", 3.5),
            Segment("rotated", 2.5, roll_deg=20.0),
            Segment("rotated", 2.5, roll_deg=-20.0),
        ],
    )
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    await stream(client, frames)
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
    await client.close()

    metrics = client.of_type("metrics")
    assert len(metrics) >= 8
    # A tracker needs a frame or two to follow a 40 degree jump that no real head makes in 1/15 s:
    # judge frames settled in their segment.
    settled = [m for m in metrics if _frames_into_segment(frames, m["frame"]) >= 3]
    frontal = [m for m in settled if frames[m["frame"]].label == "frontal"]
    rotated = [m for m in settled if frames[m["frame"]].label == "rotated"]
    assert frontal and rotated
    for m in frontal:
        assert m["face"] is True
        assert m["gaze"]["on_camera"] is True, m
    for m in rotated:
        truth = frames[m["frame"]].roll_deg
        assert m["face"] is True
        assert truth is not None and abs(m["posture"]["head_tilt_deg"] - truth) <= 5.0, (m, truth)
    for m in metrics:
        assert set(m) >= {
            "type",
            "session_id",
            "seq",
            "t",
            "frame",
            "face",
            "gaze",
            "posture",
            "gesture",
            "latency_ms",
        }
        assert set(m["gaze"]) >= {"on_camera", "yaw_deg", "pitch_deg"}
        assert set(m["posture"]) >= {"shoulder_tilt_deg", "head_tilt_deg", "lean"}
        assert set(m["gesture"]) >= {"hands_visible", "activity"}
    seqs = [e["seq"] for e in client.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_face_lost_cue_turns_on_and_off_without_flicker(
    server: ThreadServer, settings: Settings
) -> None:
    hold = settings.cue_hold_s
    frames = labelled_clip(
        FPS, [Segment("frontal", 3.0), Segment("empty", 4.0), Segment("frontal", 4.0)]
    )
    client = await SessionClient.create(server.http, server.ws, language="ko")
    await client.connect()
    sent = await stream(client, frames)
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
    await client.close()

    offset = server_time_offset(client, sent)
    first_empty = next(f.index for f in frames if f.label == "empty")
    first_back = next(f.index for f in frames if f.label == "frontal" and f.index > first_empty)
    t_gone, t_back = sent[first_empty] + offset, sent[first_back] + offset

    periods = cue_periods(client.events, "face_lost")
    assert len(periods) == 1, periods
    on, off = periods[0]
    assert t_gone + hold - 0.1 <= on <= t_gone + hold + 1.0, (on, t_gone)
    assert off is not None and t_back + hold - 0.1 <= off <= t_back + hold + 1.0, (off, t_back)
    cue_on = next(e for e in client.of_type("cue") if e["cue"] == "face_lost")
    assert cue_on["severity"] in ("info", "warn") and "얼굴" in cue_on["message"]
    assert_no_flicker(client.events, hold)


async def test_bad_and_oversize_frames_are_errors_and_the_session_goes_on(
    server: ThreadServer, settings: Settings
) -> None:
    frame = labelled_clip(FPS, [Segment("frontal", 0.2)])[0]
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    await client.send_frame(b"\x00garbage, not an image" * 10)
    error = await client.wait_for(lambda e: e["type"] == "error")
    assert error["code"] == "bad_frame" and error["message"]

    oversize = b"\xff\xd8\xff\xe0" + b"\x00" * (settings.max_frame_bytes + 10)
    await client.send_frame(oversize)
    await client.wait_for(lambda e: e["type"] == "error" and e["seq"] > error["seq"])

    truncated = encode_jpeg(frame.image)[:200]
    await client.send_frame(truncated)
    await client.send_frame(encode_jpeg(frame.image))
    metrics = await client.wait_for(lambda e: e["type"] == "metrics")
    assert metrics["face"] is True
    await client.send_json({"type": "ping"})
    await client.send_json({"type": "nonsense"})
    await client.wait_for(lambda e: e["type"] == "error" and e["code"] == "bad_message")
    errors = client.of_type("error")
    assert [e["code"] for e in errors[:2]] == ["bad_frame", "bad_frame"]
    info = (await client.get()).json()
    assert info["state"] == "live" and info["frames_received"] >= 1
    await client.end()
    await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
    await client.close()


async def test_wrong_token_is_refused(server: ThreadServer) -> None:
    client = await SessionClient.create(server.http, server.ws)
    async with connect(f"{server.ws}/ws/sessions/{client.id}?token=wrong") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1008
    async with connect(f"{server.ws}/ws/sessions/{client.id}") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1008
    async with connect(f"{server.ws}/ws/sessions/nosuchsession?token={client.token}") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4404


async def test_a_burst_never_queues_and_memory_stays_flat(tmp_path: Path) -> None:
    """300 frames as fast as the socket takes them: the analysis mailbox never holds more than
    one frame (frames are dropped, latency stays bounded), and the server's memory does not grow
    with the number of frames."""
    frames = labelled_clip(FPS, [Segment("frontal", 2.0), Segment("rotated", 2.0, roll_deg=15)])
    jpegs = [encode_jpeg(f.image) for f in frames]
    # The input rate limit is lifted so the whole burst reaches the mailbox.
    env = {"COACH_LOG_LEVEL": "WARNING", "COACH_MAX_FPS_IN": "100000"}
    with process_server(tmp_path / "data", env) as srv:
        proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
        client = await SessionClient.create(srv.http, srv.ws, language="en")
        await client.connect()

        sent = 0

        async def burst(n: int) -> None:
            nonlocal sent
            for i in range(n):
                await client.send_frame(jpegs[i % len(jpegs)])
            # then a few paced frames, so a (rate-limited) metrics event surely follows the burst
            for i in range(4):
                await asyncio.sleep(0.3)
                await client.send_frame(jpegs[i])
            sent += n + 4
            last = sent - 1
            await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] >= last - 3, 60)

        # The analyser's start-up (model load) is not what this test is about: warm it first.
        await client.send_frame(jpegs[0])
        await client.wait_for(lambda e: e["type"] == "metrics", 60)
        sent += 1
        await burst(300)
        rss_after_300 = proc.memory_info().rss
        await burst(900)
        rss_after_1200 = proc.memory_info().rss
        info = (await client.get()).json()
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", 120)
        await client.close()

    assert info["frames_received"] == sent == 1209
    assert info["frames_analyzed"] < info["frames_received"]
    assert info["frames_dropped"] > 0
    latencies = [m["latency_ms"] for m in client.of_type("metrics")[1:]]
    # One frame waits at most one analysis: latency is bounded by a couple of analysis times,
    # not by the length of the burst (a queue of 1200 frames would mean tens of seconds).
    assert max(latencies) < 1500, max(latencies)
    growth_mb = (rss_after_1200 - rss_after_300) / 1e6
    assert growth_mb < 40, f"RSS grew {growth_mb:.1f} MB over 900 more frames"


async def test_the_server_closes_the_socket_cleanly_when_the_session_ends(
    server: ThreadServer,
) -> None:
    # Ended over REST while the client keeps listening: after the last event the server must
    # send a close frame (1000), not drop the connection (which a client reads as 1006). Several
    # sessions at once, because the race it guards against (the session's end vs. the socket's
    # receive loop) does not lose every time.
    frames = labelled_clip(FPS, [Segment("frontal", 0.5)])

    async def one() -> SessionClient:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await stream(client, frames)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
        await client.wait_closed()
        return client

    clients = await asyncio.gather(*(one() for _ in range(4)))
    assert [c.closed_code for c in clients] == [1000] * 4
