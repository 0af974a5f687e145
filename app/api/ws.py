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

from app.api.errors import http_status
from app.errors import CoachError
from app.events import WireEvent, encode
from app.frames import AudioChunk
from app.live.bus import Subscription
from app.live.manager import SessionManager
from app.live.session import LiveSession
from app.media.vp9 import VP9_MAGIC
from app.store.db import SessionRow

router = APIRouter()
log = logging.getLogger(__name__)

AUDIO_MAGIC = b"AUD1"
AUDIO_RATE = 16_000

# Close codes. 1008 (policy) for a refused token, 1009 for a message over the size limit;
# 44xx mirror the HTTP status of the refusal.
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013  # the first media met the limit of live sessions, or their floor
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
        code = CLOSE_NOT_FOUND if http_status(exc) == 404 else CLOSE_POLICY
        await websocket.close(code=code, reason=exc.code)
        return

    # Subscribed before anything is read, so no event falls between the replay and the bus.
    subscription = manager.services.bus.subscribe(row.id, manager.settings.limits.ws_send_queue)
    try:
        await _serve(websocket, manager, row, subscription, after_seq)
    finally:
        subscription.close()


async def _serve(
    websocket: WebSocket,
    manager: SessionManager,
    row: SessionRow,
    subscription: Subscription,
    after_seq: int,
) -> None:
    """One socket, on any replica, in any state of the session: it replays the persisted
    events after `after_seq` (0: all of them), then
    forwards the live ones until the session completes or fails. It listens only, until it
    sends media: the first frame or audio claims the session for this replica and makes it
    live (`SessionManager.go_live`); a listener never does. Media for a session another
    replica holds is refused with close code 4409 `session_owned_elsewhere` naming the owner
    (a balancer with session affinity never sends it here)."""
    session = manager.sessions.get(row.id)
    last_seq = after_seq
    if session is not None:
        # Events go out on the bus before the writer stores them in batches: once this
        # returns, every event published before the subscription is in the log, so the replay
        # and the subscription together miss none (duplicates are dropped by `seq`).
        await manager.services.writer.flush()
    for event in await manager.repo.list_events(row.id, after_seq=after_seq):
        await websocket.send_text(encode(event))
        last_seq = event["seq"]
        if _is_final(event):
            await _close(websocket, 1000, event["state"])
            return
    if session is None and row.state not in ("created", "live", "finalizing"):
        await _close(websocket, 1000, row.state)  # ended: the replay above is all there is
        return
    feed = _Feed(websocket, manager, row, session)
    if session is not None:
        # A socket on the replica holding the session keeps it from the reconnect grace.
        await feed.attach()
    try:
        await _pump(websocket, feed, subscription, last_seq, manager)
    finally:
        feed.detach()


class _Refused(Exception):
    """Media this socket cannot feed: the socket closes with `code` and `reason`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Feed:
    """What one socket sends: media to the session (held here, or claimed with the first
    media) and control messages."""

    def __init__(
        self,
        websocket: WebSocket,
        manager: SessionManager,
        row: SessionRow,
        session: LiveSession | None,
    ) -> None:
        self.websocket = websocket
        self.manager = manager
        self.row = row
        self.session = session
        self.attached = False

    async def attach(self) -> None:
        if self.session is not None and not self.attached:
            self.attached = True
            await self.session.attach()

    def detach(self) -> None:
        if self.session is not None and self.attached:
            self.attached = False
            self.session.detach()

    async def _fresh_row(self) -> SessionRow:
        return await self.manager.repo.get_session(self.row.id) or self.row

    async def live(self) -> LiveSession:
        """The session, live, for the media at hand: claimed for this replica with its first
        media, and started."""
        session = self.session
        if session is None or session.state == "created":
            if session is None:
                row = await self._fresh_row()
                try:
                    session = await self.manager.live_session(row)
                except CoachError as exc:
                    if exc.code == "session_owned_elsewhere":
                        owner = str(exc.extra.get("owner") or "")
                        reason = json.dumps({"code": exc.code, "owner": owner[:80]})
                        raise _Refused(CLOSE_OWNED_ELSEWHERE, reason) from None
                    raise _Refused(1000, row.state) from None
                self.session = session
            await self.attach()
            try:
                await self.manager.go_live(session)
            except CoachError as exc:
                if exc.code in ("too_many_sessions", "overloaded"):
                    raise _Refused(CLOSE_TRY_AGAIN_LATER, exc.code) from None
                raise _Refused(1000, session.state) from None
        return session

    async def receive(self) -> _Refused | None:
        websocket, settings = self.websocket, self.manager.settings
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return None
                arrived_at = time.monotonic()
                data: bytes | None = message.get("bytes")
                text: str | None = message.get("text")
                if data is not None:
                    if len(data) > settings.limits.ws_max_message_bytes:
                        return _Refused(CLOSE_TOO_BIG, "message_too_big")
                    try:
                        session = await self.live()
                    except _Refused as refused:
                        return refused
                    if data[:4] == AUDIO_MAGIC:
                        await _on_audio(session, data[4:], arrived_at)
                    elif data[:4] == VP9_MAGIC:
                        session.submit_vp9(data[4:], arrived_at)
                    else:
                        session.submit_frame_bytes(data, arrived_at)
                elif text is not None:
                    await self.control(text)
        except WebSocketDisconnect:
            return None

    async def control(self, text: str) -> None:
        kind = _control_type(text)
        if kind == "ping":
            await self.websocket.send_text(json.dumps({"type": "pong"}))
        elif kind == "end":
            if self.session is not None:
                self.manager.request_end(self.session.id, "ended")
            else:  # another replica's, or nobody's yet: as the REST call does
                await self.manager.end(await self._fresh_row(), "ended")
        elif self.session is not None:
            await self.session.emit_error(
                "bad_message", 'expected {"type": "end"} or {"type": "ping"}'
            )


async def _pump(
    websocket: WebSocket,
    feed: _Feed,
    subscription: Subscription,
    last_seq: int,
    manager: SessionManager,
) -> None:
    session_id = feed.row.id
    sender = asyncio.create_task(
        _send_events(websocket, subscription, last_seq, manager.settings.limits.ws_send_timeout_s),
        name=f"{session_id}:ws-send",
    )
    receiver = asyncio.create_task(feed.receive(), name=f"{session_id}:ws-recv")
    done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    send_stalled = False
    refused: _Refused | None = None
    for task in done:
        # A peer that vanished mid-send is an ordinary end, not an error worth a traceback.
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, WebSocketDisconnect | RuntimeError | OSError):
                log.warning("websocket task %s failed: %r", task.get_name(), exc)
        elif task is sender and not task.cancelled():
            send_stalled = sender.result() == "stalled"
        elif task is receiver and not task.cancelled():
            refused = receiver.result()
    if subscription.overflowed or send_stalled:
        manager.services.metrics.ws_slow_consumers.inc()
        log.warning("dropping a slow WebSocket listener", extra={"session_id": session_id})
        await _close(websocket, CLOSE_SLOW_CONSUMER, "slow_consumer")
    elif refused is not None:
        await _close(websocket, refused.code, refused.reason)
    elif sender in done and receiver not in done:
        # The session ended and the peer has not closed: say goodbye properly (a bare TCP close
        # reads as 1006, an abnormal closure, on the client). `receiver` is done by now either
        # way (cancelled above), so what counts is whether it finished on its own.
        await _close(websocket, 1000, "session_closed")


def _control_type(text: str) -> str | None:
    try:
        message: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


def _is_final(event: WireEvent) -> bool:
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
                await websocket.send_text(encode(event))
        except TimeoutError:
            return "stalled"
        if _is_final(event):
            # The last event (a session another replica held ends there, and its bus
            # subscription here is never closed by a finaliser).
            return "closed"


async def _on_audio(session: LiveSession, payload: bytes, arrived_at: float) -> None:
    max_bytes = int(session.settings.limits.max_audio_message_s * AUDIO_RATE) * 2
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
