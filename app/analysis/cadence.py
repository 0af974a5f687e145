"""How often Pose runs, following the load.

Pose is ~80% of a frame's analysis cost (BENCHMARKS.md, section Analysis). On an idle machine
every `pose_every`-th frame is cheap enough; when many sessions share the cores, each frame
waits for a core and the frame -> metrics latency climbs past what a live cue can afford. The
cadence watches that latency (all sessions of this process together, smoothed) and runs Pose
less often while it is high, more often again once it has come down. Face, gaze and head
tilt still run on every analysed frame: only the body landmarks (shoulders, wrists, sway) go
staler, by one frame interval per step.

The controller is a step with hysteresis and a dwell time, so the cadence moves at most one
step per `dwell_s` and does not flip between two values on every frame:
- up one step (up to `most`) while the smoothed latency is above `high_ms`;
- down one step (down to `least`) while it is below `low_ms`.
"""

from __future__ import annotations

import threading


class PoseCadence:
    def __init__(
        self,
        least: int,
        most: int,
        high_ms: float,
        low_ms: float | None = None,
        dwell_s: float = 1.0,
        smoothing: float = 0.05,
    ) -> None:
        self.least = max(1, least)
        self.most = max(self.least, most)
        self.high_ms = high_ms
        self.low_ms = high_ms * 0.5 if low_ms is None else low_ms
        self.dwell_s = dwell_s
        self.smoothing = smoothing
        self._every = self.least
        self._latency_ms: float | None = None
        self._changed_at: float | None = None
        self._lock = threading.Lock()
        self.steps = 0  # cadence changes so far (for tests and logs)

    @property
    def every(self) -> int:
        """Run Pose on one analysed frame in `every` (read from any thread)."""
        return self._every

    @property
    def latency_ms(self) -> float | None:
        """The smoothed frame -> analysed latency the cadence follows."""
        return self._latency_ms

    def observe(self, latency_ms: float, now: float) -> int:
        """One analysed frame's latency (arrival -> analysis done) at monotonic time `now`;
        returns the cadence to use from here on."""
        with self._lock:
            smoothed = self._latency_ms
            smoothed = (
                latency_ms
                if smoothed is None
                else smoothed + self.smoothing * (latency_ms - smoothed)
            )
            self._latency_ms = smoothed
            if self._changed_at is None:
                self._changed_at = now  # the first dwell starts at the first frame
            if self.least == self.most or now - self._changed_at < self.dwell_s:
                return self._every
            step = 0
            if smoothed > self.high_ms and self._every < self.most:
                step = 1
            elif smoothed < self.low_ms and self._every > self.least:
                step = -1
            if step:
                self._every += step
                self._changed_at = now
                self.steps += 1
            return self._every
