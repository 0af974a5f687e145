"""A WebSocket listener that stops reading is dropped after a bounded buffer (close 4408), while
another listener of the same session and another session keep getting every event."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

from app.config import Settings
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.metrics import scrape
from tests.support.server import ThreadServer


def stalled_listener(port: int, session_id: str, token: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/sessions/{session_id}?token={token} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """What the server sent until it closed the connection. After its close frame the server
    waits 10 s for ours (the websockets library's close timeout), which this raw socket never
    sends, so the end comes ~10.0 s later: the socket's 10 s timeout raced it and lost now and
    then (a red CI run)."""
    sock.settimeout(30)
    data = bytearray()
    with sock:
        while chunk := sock.recv(65536):
            data += chunk
    return bytes(data)


async def test_a_listener_that_stops_reading_is_dropped_and_others_are_not(
    settings: Settings,
) -> None:
    settings = settings.updated(ws_send_queue=32, ws_send_timeout_s=2.0)
    jpeg = encode_jpeg(labelled_clip(15.0, [Segment("frontal", 0.1)])[0].image)
    # Small socket buffers on both sides, so a few hundred events fill them.
    with ThreadServer(settings, send_buffer=8192) as srv:
        session = await SessionClient.create(srv.http, srv.ws, language="en")
        await session.connect()  # the healthy listener, which also sends
        await session.send_frame(jpeg)  # its first frame makes the session live
        await session.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        other = await SessionClient.create(srv.http, srv.ws, language="en")
        await other.connect()

        # The slow listener: a raw socket with a tiny receive buffer that completes the
        # WebSocket handshake and then never reads, so the server's sends back up.
        slow = await asyncio.to_thread(stalled_listener, srv.port, session.id, session.token)

        # Flood the session with events (each bad control message answers one `error`), in
        # batches the healthy listener confirms, until the server gives up on the slow one.
        sent = 0
        dropped = 0.0
        while dropped < 1:
            # (fewer than the healthy listener's buffer of 32: the receive loop may publish a
            # whole batch before the healthy sender runs)
            for _ in range(20):
                await session.send_json({"type": "flood", "pad": "x" * 200})
            sent += 20
            await session.wait_for(
                lambda _e, n=sent: len(session.of_type("error")) >= n, timeout=30
            )
            # the other session's events flow meanwhile
            await other.send_frame(jpeg)
            dropped = (await scrape(srv.http))["coach_ws_slow_consumers_total"]
            assert sent < 5_000, "the slow listener was never dropped"

        await other.wait_for(lambda e: e["type"] == "metrics", timeout=30)
        errors = [e for e in session.events if e["type"] == "error"]
        assert len(errors) == sent  # the healthy listener lost nothing
        assert [e["seq"] for e in session.events if "seq" in e] == sorted(
            e["seq"] for e in session.events if "seq" in e
        )

        # The server hung up on it: reading again, the slow listener finds what was buffered,
        # far less than the flood, and then the end of the stream.
        leftover = await asyncio.to_thread(read_to_end, slow)
        assert 0 < leftover.count(b'"type": "error"') < sent
        # (the close frame got out too, because reading resumed within the close timeout)
        assert leftover.endswith(b"\x88\x0f" + (4408).to_bytes(2, "big") + b"slow_consumer")

        # and the session goes on
        info = (await session.get()).json()
        assert info["state"] == "live"
        await session.end()
        await session.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await other.end()
        await other.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
        await session.close()
        await other.close()
