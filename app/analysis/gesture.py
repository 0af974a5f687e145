"""Hands and gesture: hand activity from Pose wrist motion, and body sway.

Pose wrists are enough for "are the hands moving, and how much": MediaPipe Hands would add
~10 ms a frame for finger detail no live cue uses (see BENCHMARKS.md, section Analysis).
Speeds are in shoulder widths a second so they do not depend on the distance to the camera.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from app.analysis.pose import LEFT_SHOULDER, RIGHT_SHOULDER
from app.config import Settings
from app.frames import GestureObservation, PoseObservation


class MotionTracker:
    """Per-session state for hand activity and sway. Feed it only fresh Pose results."""

    def __init__(self, settings: Settings) -> None:
        self._smoothing_s = settings.cues.activity_smoothing_s
        self._window_s = settings.cues.sway_window_s
        self._last_t: float | None = None
        self._last_wrists: tuple[tuple[float, float] | None, tuple[float, float] | None] = (
            None,
            None,
        )
        self._activity: float | None = None
        self._centers: deque[tuple[float, float, float]] = deque()  # t, x px, shoulder width px

    def update(
        self, t: float, pose: PoseObservation, width: int, height: int
    ) -> tuple[GestureObservation, float | None]:
        """Returns the gesture observation and the sway (std of the shoulder centre's x over the
        window, in shoulder widths; None until half a window has been seen)."""
        if not pose.found:
            self._last_t = None
            self._last_wrists = (None, None)
            self._activity = None
            self._centers.clear()  # a gap breaks the sway window: nobody there is not swaying
            return GestureObservation(hands_visible=0, activity=None), None
        wrists_px = tuple(None if w is None else (w[0] * width, w[1] * height) for w in pose.wrists)
        shoulder_px = _shoulder_width_px(pose)
        hands_visible = sum(w is not None for w in wrists_px)
        if shoulder_px is not None and pose.shoulder_center is not None:
            self._centers.append((t, pose.shoulder_center[0] * width, shoulder_px))
        self._prune(t)

        if self._last_t is not None and shoulder_px is not None and t > self._last_t:
            dt = t - self._last_t
            speeds = [
                math.dist(now, before) / shoulder_px / dt
                for now, before in zip(wrists_px, self._last_wrists, strict=True)
                if now is not None and before is not None
            ]
            # Hands out of sight are not gesturing: they count as still.
            speed = max(speeds) if speeds else 0.0
            alpha = 1.0 - math.exp(-dt / self._smoothing_s) if self._smoothing_s > 0 else 1.0
            previous = self._activity if self._activity is not None else speed
            self._activity = previous + alpha * (speed - previous)
        elif self._activity is None and hands_visible == 0:
            self._activity = 0.0
        self._last_t = t
        self._last_wrists = (wrists_px[0], wrists_px[1])
        return GestureObservation(hands_visible=hands_visible, activity=self._activity), self._sway(
            t
        )

    def _prune(self, t: float) -> None:
        while self._centers and self._centers[0][0] < t - self._window_s:
            self._centers.popleft()

    def _sway(self, t: float) -> float | None:
        self._prune(t)
        if (
            len(self._centers) < 3
            or self._centers[-1][0] - self._centers[0][0] < self._window_s / 2
        ):
            return None
        xs = np.array([c[1] for c in self._centers])
        widths = np.array([c[2] for c in self._centers])
        return float(xs.std() / widths.mean())


def _shoulder_width_px(pose: PoseObservation) -> float | None:
    if pose.landmarks is None or pose.shoulder_tilt_deg is None:
        return None
    left, right = pose.landmarks[LEFT_SHOULDER], pose.landmarks[RIGHT_SHOULDER]
    width = float(np.hypot(*(left - right)))
    return width if width > 1.0 else None
