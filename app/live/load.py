"""Load shedding: a replica that is already saturated refuses new sessions (`overloaded`, to
retry after `retry_after_s`) rather than slowing every rehearsal it holds.

CPU is sampled on a timer (psutil, non-blocking) and averaged over `window` samples, so one
busy second does not refuse anyone and `check` itself costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

import psutil

from app.errors import CoachError


def overloaded(why: str, retry_after_s: int) -> CoachError:
    """The refusal of a new session by load (`overloaded`, to retry after `retry_after_s`),
    whichever measure refused it: the CPU here, the analysis floor (app/live/manager.py)."""
    return CoachError(
        "overloaded",
        f"{why}; try again shortly or another server.",
        retry_after_s=retry_after_s,
        extra={"retry_after_s": retry_after_s},
    )


class LoadMonitor:
    def __init__(
        self,
        cpu_limit_percent: float | None,
        *,
        retry_after_s: int = 15,
        sample_s: float = 1.0,
        window: int = 5,
        sample_cpu: Callable[[], float] = lambda: psutil.cpu_percent(interval=None),
    ) -> None:
        self.cpu_limit_percent = cpu_limit_percent
        self.retry_after_s = retry_after_s
        self._sample_s = sample_s
        self._sample_cpu = sample_cpu
        self._samples: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None

    @property
    def cpu_percent(self) -> float | None:
        return sum(self._samples) / len(self._samples) if self._samples else None

    def start(self) -> None:
        if self.cpu_limit_percent is None:
            return
        self._sample_cpu()  # psutil's first reading is meaningless; it sets the baseline
        self._task = asyncio.create_task(self._run(), name="load-monitor")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._sample_s)
            self._samples.append(self._sample_cpu())

    def sample_now(self) -> None:
        self._samples.append(self._sample_cpu())

    def check(self) -> None:
        """Raise `overloaded` when the averaged CPU is above the limit."""
        cpu = self.cpu_percent
        if self.cpu_limit_percent is None or cpu is None or cpu <= self.cpu_limit_percent:
            return
        raise overloaded(f"This server is busy (CPU {cpu:.0f}%)", self.retry_after_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
