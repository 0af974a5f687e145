"""How often Pose runs, following the load.

Pose is ~80% of a frame's analysis cost (BENCHMARKS.md, section Analysis). On an idle machine
every `pose_every`-th frame is cheap enough; when many sessions share the cores, each frame
waits for a core and the frame -> metrics latency climbs past what a live cue can afford. The
cadence watches that latency (all sessions of this process together, smoothed) and runs Pose
less often while it is high, more often again once it has come down. Face, gaze and head
tilt still run on every analysed frame: only the body landmarks (shoulders, wrists, sway) go
staler, by one frame interval per step.

Past `most`, when Pose already runs as seldom as allowed, the next steps lower the cap on
analysed frames a second (`fps`, the `analysis_fps` setting) toward `fps_least`: every frame
analysed costs the face stage, so on an overloaded machine fewer frames analysed soon is
worth more than every frame analysed late. A frame over the cap is skipped, never held
(`RateCap`), so the lower rate costs no latency.

The controller is a step with hysteresis and dwell times, so the cadence moves at most one
step per `dwell_s` and does not flip between two values on every frame:
- up one step (Pose rarer, then fewer frames) while the smoothed latency is above `high_ms`;
- down one step (back toward Pose every `least`-th frame at `fps`) while it is below `low_ms`,
  and no sooner than `relax_s` after the last step (the server uses 5 s): a lighter level
  lowers the latency at once, and stepping straight back made the load swing.
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
        fps: float | None = None,
        fps_least: float | None = None,
        fps_steps: int = 2,
        relax_s: float | None = None,
    ) -> None:
        """`fps` / `fps_least`: the analysis rate cap and the least it may fall to, in
        `fps_steps` steps once Pose runs every `most`-th frame; without them the cap stays."""
        self.least = max(1, least)
        self.most = max(self.least, most)
        self.high_ms = high_ms
        self.low_ms = high_ms * 0.5 if low_ms is None else low_ms
        self.dwell_s = dwell_s
        # Back down a step only this long after the last change: a lighter level lowers the
        # latency by itself, and stepping back as soon as it does makes the load swing.
        self.relax_s = dwell_s if relax_s is None else relax_s
        self.smoothing = smoothing
        self.levels: list[tuple[int, float | None]] = [
            (every, fps) for every in range(self.least, self.most + 1)
        ]
        if fps is not None and fps_least is not None and fps_least < fps:
            steps = max(1, fps_steps)
            self.levels += [
                (self.most, fps - (fps - fps_least) * k / steps) for k in range(1, steps + 1)
            ]
        self._level = 0
        self._every = self.least
        self._fps = fps
        self._latency_ms: float | None = None
        self._changed_at: float | None = None
        self._observed_at: float | None = None
        self._lock = threading.Lock()
        self.steps = 0  # cadence changes so far (for tests and logs)

    @property
    def every(self) -> int:
        """Run Pose on one analysed frame in `every` (read from any thread)."""
        return self._every

    @property
    def analysis_fps(self) -> float | None:
        """The cap on analysed frames a second per session (None: no cap given)."""
        return self._fps

    @property
    def latency_ms(self) -> float | None:
        """The smoothed frame -> analysed latency the cadence follows."""
        return self._latency_ms

    def at_floor(self, now: float, within_s: float = 5.0) -> bool:
        """Analysis is at its last level and its latency still above `high_ms` (it would step
        further if it could), as of a frame analysed within `within_s` of `now` (an older
        reading says nothing of now). Between `low_ms` and `high_ms` the cadence holds its
        level, sessions are served within the target there, and nobody is refused."""
        with self._lock:
            return (
                len(self.levels) > 1
                and self._level == len(self.levels) - 1
                and self._latency_ms is not None
                and self._latency_ms > self.high_ms
                and self._observed_at is not None
                and now - self._observed_at <= within_s
            )

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
            self._observed_at = now
            if self._changed_at is None:
                self._changed_at = now  # the first dwell starts at the first frame
            since = now - self._changed_at
            if len(self.levels) == 1 or since < self.dwell_s:
                return self._every
            step = 0
            if smoothed > self.high_ms and self._level < len(self.levels) - 1:
                step = 1
            elif smoothed < self.low_ms and self._level > 0 and since >= self.relax_s:
                step = -1
            if step:
                self._level += step
                self._every, self._fps = self.levels[self._level]
                self._changed_at = now
                self.steps += 1
            return self._every
