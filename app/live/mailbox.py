"""A one-slot "latest frame wins" mailbox: analysis never queues behind the camera."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestMailbox(Generic[T]):
    """Holds at most one item. `put` replaces an unread item and counts it as dropped."""

    def __init__(self) -> None:
        self._item: T | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Returns True when an unread item was overwritten (dropped)."""
        if self._closed:
            return False
        overwrote = self._item is not None
        if overwrote:
            self.dropped += 1
        self._item = item
        self._ready.set()
        return overwrote

    @property
    def depth(self) -> int:
        return 0 if self._item is None else 1

    async def get(self) -> T | None:
        """The newest item; None once closed and empty."""
        while self._item is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        return item

    def take(self) -> T | None:
        """The newest item if there is one, without waiting."""
        item, self._item = self._item, None
        return item

    def close(self) -> None:
        self._closed = True
        self._ready.set()
