"""The events a test client received, whatever carried them (WebSocket or data channel)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class EventLog:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed_reason: str | None = None  # set once nothing more can come
        self._changed = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    def close(self, reason: str) -> None:
        self.closed_reason = reason
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        """The first event (already received or still to come) that matches."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                if self.closed_reason is not None:
                    raise AssertionError(f"{self.closed_reason} before the event came")
                self._changed.clear()
                await self._changed.wait()

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]
