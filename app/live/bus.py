"""The event bus: fan-out of a session's events to its live listeners (WebSocket, data channel).

In-memory by default; `app.live.redis_bus.RedisEventBus` carries events between replicas. Each
subscription has a bounded queue; a listener that stops reading is cut off (`overflowed`)
instead of slowing the session or growing memory. A subscription delivers each `seq` once and
in order, so a bus that can see an event twice (Redis after a reconnect) stays exact.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any, Protocol


class Subscription:
    def __init__(self, bus: InMemoryEventBus, session_id: str, maxsize: int) -> None:
        self._bus = bus
        self.session_id = session_id
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False
        self.closed = False
        self.last_seq = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        seq = event.get("seq")
        if isinstance(seq, int):
            if seq <= self.last_seq:
                return  # seen already (a replayed or re-read event)
            self.last_seq = seq
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Slow consumer: drop the listener, never the session's pace.
            self.overflowed = True
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        # Wake the reader; make room for the sentinel if the queue is full.
        while True:
            try:
                self.queue.put_nowait(None)
                break
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def get(self) -> dict[str, Any] | None:
        """The next event, or None once the subscription is closed."""
        if self.closed and self.queue.empty():
            return None
        return await self.queue.get()


class EventBus(Protocol):
    def publish(self, session_id: str, event: dict[str, Any]) -> None:
        """Hand one event to every listener of the session. Never blocks the caller."""
        ...

    def subscribe(self, session_id: str, maxsize: int = 256) -> Subscription: ...
    def listeners(self, session_id: str) -> int: ...
    def close_session(self, session_id: str) -> None: ...
    async def aclose(self) -> None: ...


class InMemoryEventBus:
    def __init__(self) -> None:
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)

    def publish(self, session_id: str, event: dict[str, Any]) -> None:
        for sub in list(self._subs.get(session_id, ())):
            sub.offer(event)

    def subscribe(self, session_id: str, maxsize: int = 256) -> Subscription:
        sub = Subscription(self, session_id, maxsize)
        self._subs[session_id].add(sub)
        return sub

    def listeners(self, session_id: str) -> int:
        return len(self._subs.get(session_id, ()))

    def close_session(self, session_id: str) -> None:
        for sub in list(self._subs.get(session_id, ())):
            sub.close()

    async def aclose(self) -> None:
        for session_id in list(self._subs):
            self.close_session(session_id)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.session_id]
