"""What reaches analysis: a one-slot "latest frame wins" mailbox, so analysis never queues behind
the camera, and the cap on the analysed rate."""

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

    def peek(self) -> T | None:
        """The unread item, left in place."""
        return self._item

    async def get(self) -> T | None:
        """The newest item; None once closed and empty."""
        while self._item is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        return item

    def close(self) -> None:
        self._closed = True
        self._ready.set()


class RateCap:
    """Caps a stream of frames at `rate` a second, counted in the frames' own arrival times.

    A token bucket two tokens deep that starts full: a source at or under the cap is never
    thinned, however late the frames are looked at (an analysis that ran long does not make
    the next frames "early"), and at the cap, arrival jitter that spans less than a frame
    interval in all costs nothing. `admit` answers at once: a frame over the cap is to be
    skipped, never held for a token, because a held frame only ages behind a newer one.
    (Refilled by the time frames were taken, with held frames, a 15 fps camera at a 15 fps
    cap had every frame held back to the delay of the latest one to come late: at N = 8
    sessions, ~20 ms at the median and 62 of the 86 ms p95.)

    A `preferred` frame (one decoded whether analysed or not: a reference frame of a layered
    VP9 stream) may take its token up to `PREFERRED_EARLY` of a token early, the bucket going
    that far into debt, which the next frames pay back: over the cap, the frames admitted are
    then the preferred ones rather than whichever the cap's phase falls on, and their
    droppable neighbours need no decode. Over any stretch it admits at most 0.75 frames more.
    (Half a token early was not enough: at twice the cap's rate, starting on a droppable
    frame, the bucket settled at the edge, where 5 ms of arrival jitter had 13 % of the
    droppable frames admitted; 0.75 leaves a quarter token either side.)"""

    DEPTH = 2.0
    PREFERRED_EARLY = 0.75
    _EPSILON = 1e-6  # of a token: float arrival times at exactly the cap's interval

    def __init__(self, rate: float) -> None:
        self.rate = rate  # may change between frames: the next refill uses the new rate
        self._tokens = self.DEPTH
        self._last: float | None = None

    def admit(self, arrived_at: float, *, preferred: bool = False) -> bool:
        """Whether the frame that arrived at `arrived_at` (seconds, frames in order) is under
        the cap; it uses a token if so."""
        self._tokens = self._tokens_at(arrived_at)
        self._last = arrived_at
        if self._tokens < self._needed(preferred):
            return False
        self._tokens -= 1.0
        return True

    def would_admit(self, arrived_at: float, *, preferred: bool = False) -> bool:
        """What `admit` would answer for this frame were it asked next; changes nothing."""
        return self._tokens_at(arrived_at) >= self._needed(preferred)

    def _needed(self, preferred: bool) -> float:
        return 1.0 - self._EPSILON - (self.PREFERRED_EARLY if preferred else 0.0)

    def _tokens_at(self, arrived_at: float) -> float:
        if self._last is None:
            return self._tokens
        elapsed = max(0.0, arrived_at - self._last)
        return min(self.DEPTH, self._tokens + elapsed * self.rate)
