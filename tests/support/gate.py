"""Hold the real analyser at a frame until a test lets it through: the upload flow's analysis
runs exactly as far as the test says, whatever the machine's speed."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from app.config import Settings
from app.wiring import default_hooks

if TYPE_CHECKING:
    from app.live.services import Hooks

GATE_TIMEOUT_S = 60.0  # a test that forgets to open the gate fails instead of hanging


class FrameGate:
    """Counts the frames that reach `analyze` and lets them through one permit at a time."""

    def __init__(self) -> None:
        self._permits = threading.Semaphore(0)
        self._entered = threading.Condition()
        self.entered = 0

    def admit(self) -> None:
        """Called on the analysis thread before each frame."""
        with self._entered:
            self.entered += 1
            self._entered.notify_all()
        if not self._permits.acquire(timeout=GATE_TIMEOUT_S):
            raise TimeoutError("the test never let this frame through")

    def release(self, frames: int) -> None:
        self._permits.release(frames)

    def open(self) -> None:
        """Let every frame through from now on."""
        self._permits.release(1_000_000)

    async def wait_entered(self, count: int, timeout: float = 60.0) -> None:
        """Until `count` frames have reached the gate (`timeout` is a hang guard)."""

        def wait() -> bool:
            with self._entered:
                return self._entered.wait_for(lambda: self.entered >= count, timeout)

        if not await asyncio.to_thread(wait):
            raise TimeoutError(f"{self.entered} frames reached the gate, not {count}")


class _GatedAnalyzer:
    def __init__(self, inner: Any, gate: FrameGate) -> None:
        self._inner = inner
        self._gate = gate

    def analyze(self, frame: Any, pose_every: int | None = None) -> Any:
        self._gate.admit()
        return self._inner.analyze(frame, pose_every)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def gated_hooks(settings: Settings, gate: FrameGate) -> Hooks:
    """The app's own hooks, with every analyser (the real, pooled one) behind `gate`."""
    hooks = default_hooks(settings)
    make = hooks.make_analyzer

    def make_gated(s: Settings) -> _GatedAnalyzer:
        return _GatedAnalyzer(make(s), gate)

    return dataclasses.replace(hooks, make_analyzer=make_gated)
