"""The WebSocket transport: a thin adapter from wire messages to the session's frame loop, and
the session's events back out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from app.errors import CoachError
from app.frames import AudioChunk
from app.live.bus import Subscription
from app.live.manager import SessionManager
from app.live.session import LiveSession
from app.store.db import SessionRow

router = APIRouter()
log = logging.getLogger(__name__)

AUDIO_MAGIC = b"AUD1"
AUDIO_RATE = 16_000

# Close codes. 1008 (policy) for a refused token, 1009 for a message over the size limit;
# 44xx mirror the HTTP status of the refusal.
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_NOT_FOUND = 4404
CLOSE_SLOW_CONSUMER = 4408
CLOSE_OWNED_ELSEWHERE = 4409


@router.websocket("/ws/sessions/{session_id}")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    manager: SessionManager = websocket.app.state.manager
    token = websocket.query_params.get("token")
    header = websocket.headers.get("authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    try:
        after_seq = min(2**31 - 1, max(0, int(websocket.query_params.get("after_seq", "0"))))
    except ValueError:
        after_seq = 0
    await websocket.accept()
    try:
        row = await manager.authorize(session_id, token)
    except CoachError as exc:
        code = CLOSE_NOT_FOUND if exc.status_code == 404 else CLOSE_POLICY
        await websocket.close(code=code, reason=exc.code)
        return

    session = manager.sessions.get(row.id)
    owner: str | None = None
    try:
        if session is None and row.state == "created":
            session = await manager.live_session(row)
    except CoachError as exc:
        if exc.code != "session_owned_elsewhere":
            raise
        owner = exc.extra.get("owner") or ""
    if session is None and row.state == "live" and manager.services.ownership is not None:
        owner = await manager.services.ownership.owner(row.id) or ""
    subscription = manager.services.bus.subscribe(row.id, manager.settings.ws_send_queue)
    if owner is not None:
        # Another replica holds the media: this socket listens to the bus only.
        try:
            await _listen_elsewhere(websocket, manager, row, subscription, after_seq, owner)
        finally:
            subscription.close()
        return
    try:
        last_seq = after_seq
        if after_seq or session is None:
            for event in await manager.repo.list_events(row.id, after_seq=after_seq):
                await websocket.send_text(json.dumps(event, ensure_ascii=False))
                last_seq = event["seq"]
        if session is None or not session.accepting_media:
            # Ended already: the replay above is all there is.
            await websocket.close(code=1000, reason=row.state)
            return
        await session.attach()
        try:
            await _pump(websocket, session, subscription, last_seq, manager)
        finally:
            session.detach()
    finally:
        subscription.close()


async def _pump(
    websocket: WebSocket,
    session: LiveSession,
    subscription: Subscription,
    last_seq: int,
    manager: SessionManager,
) -> None:
    sender = asyncio.create_task(
        _send_events(websocket, subscription, last_seq, manager.settings.ws_send_timeout_s),
        name=f"{session.id}:ws-send",
    )
    receiver = asyncio.create_task(
        _receive(websocket, session, manager), name=f"{session.id}:ws-recv"
    )
    done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    send_stalled = False
    for task in done:
        # A peer that vanished mid-send is an ordinary end, not an error worth a traceback.
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, WebSocketDisconnect | RuntimeError | OSError):
                log.warning("websocket task %s failed: %r", task.get_name(), exc)
        elif task is sender and not task.cancelled():
            send_stalled = task.result() == "stalled"
    if subscription.overflowed or send_stalled:
        manager.services.metrics.ws_slow_consumers.inc()
        log.warning("dropping a slow WebSocket listener", extra={"session_id": session.id})
        await _close(websocket, CLOSE_SLOW_CONSUMER, "slow_consumer")
    elif sender in done and receiver not in done:
        # The session ended and the peer has not closed: say goodbye properly (a bare TCP close
        # reads as 1006, an abnormal closure, on the client). `receiver` is done by now either
        # way (cancelled above), so what counts is whether it finished on its own.
        await _close(websocket, 1000, "session_closed")


async def _listen_elsewhere(
    websocket: WebSocket,
    manager: SessionManager,
    row: SessionRow,
    subscription: Subscription,
    after_seq: int,
    owner: str,
) -> None:
    """Events of a session whose media another replica (`owner`) holds: the persisted ones
    after `after_seq`, then live from the bus until the session completes or fails. `end` is
    forwarded to the owner (as the REST call is); media sent here is refused with close code
    4409 `session_owned_elsewhere` naming the owner (a balancer with session affinity never
    sends it here)."""
    session_id = row.id
    last_seq = after_seq
    for event in await manager.repo.list_events(session_id, after_seq=after_seq):
        await websocket.send_text(json.dumps(event, ensure_ascii=False))
        last_seq = event["seq"]
        if _is_final(event):
            await _close(websocket, 1000, event["state"])
            return

    async def send() -> None:
        while True:
            event = await subscription.get()
            if event is None:
                return
            if event["seq"] <= last_seq:
                continue
            await websocket.send_text(json.dumps(event, ensure_ascii=False))
            if _is_final(event):
                return

    async def receive() -> str | None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            kind = _control_type(text) if text is not None else None
            if kind == "ping":
                await websocket.send_text(json.dumps({"type": "pong"}))
            elif kind == "end":
                await manager.end(row, "ended")  # its events arrive over the bus
            elif message.get("bytes") is not None or text is not None:
                return "refuse"

    sender = asyncio.create_task(send(), name=f"{session_id}:ws-send-remote")
    receiver = asyncio.create_task(receive(), name=f"{session_id}:ws-recv-remote")
    done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if receiver in done and not receiver.cancelled() and receiver.exception() is None:
        if receiver.result() == "refuse":
            reason = json.dumps({"code": "session_owned_elsewhere", "owner": owner[:80]})
            await _close(websocket, CLOSE_OWNED_ELSEWHERE, reason)
        return
    await _close(websocket, 1000, "session_closed")


def _control_type(text: str) -> str | None:
    try:
        message: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def _is_final(event: dict[str, Any]) -> bool:
    return event.get("type") == "state" and event.get("state") in ("completed", "failed")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await websocket.close(code=code, reason=reason)


async def _send_events(
    websocket: WebSocket, subscription: Subscription, last_seq: int, send_timeout_s: float
) -> Literal["closed", "stalled"]:
    """Forward the subscription's events. A send that cannot complete within `send_timeout_s`
    (the peer stopped reading and every buffer up to its socket is full) is a slow consumer
    too: without this bound the overflow of the subscription would only be noticed once the
    blocked send returned, that is, never for a peer that went silent."""
    while True:
        event = await subscription.get()
        if event is None:
            return "closed"
        if event["seq"] <= last_seq:
            continue
        try:
            async with asyncio.timeout(send_timeout_s):
                await websocket.send_text(json.dumps(event, ensure_ascii=False))
        except TimeoutError:
            return "stalled"


async def _receive(websocket: WebSocket, session: LiveSession, manager: SessionManager) -> None:
    settings = manager.settings
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            arrived_at = time.monotonic()
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            if data is not None:
                if len(data) > settings.ws_max_message_bytes:
                    await _close(websocket, CLOSE_TOO_BIG, "message_too_big")
                    return
                if data[:4] == AUDIO_MAGIC:
                    await _on_audio(session, data[4:], arrived_at)
                else:
                    await session.submit_frame_bytes(data, arrived_at)
            elif text is not None:
                await _on_control(websocket, session, manager, text)
    except WebSocketDisconnect:
        return


async def _on_control(
    websocket: WebSocket, session: LiveSession, manager: SessionManager, text: str
) -> None:
    kind = _control_type(text)
    if kind == "ping":
        await websocket.send_text(json.dumps({"type": "pong"}))
    elif kind == "end":
        manager.request_end(session.id, "ended")
    else:
        await session.emit_error("bad_message", 'expected {"type": "end"} or {"type": "ping"}')


async def _on_audio(session: LiveSession, payload: bytes, arrived_at: float) -> None:
    max_bytes = int(session.settings.max_audio_message_s * AUDIO_RATE) * 2
    if not payload or len(payload) % 2 or len(payload) > max_bytes:
        await session.emit_error(
            "bad_audio",
            f"AUD1 payload of {len(payload)} bytes: expected an even count up to {max_bytes}",
        )
        return
    samples = np.frombuffer(payload, dtype="<i2").astype(np.int16)
    duration = len(samples) / AUDIO_RATE
    t = session.audio_clock(session.media_time(arrived_at) - duration, duration)
    session.submit_audio(AudioChunk(t=t, samples=samples, sample_rate=AUDIO_RATE))
