"""Pose and posture: MediaPipe Pose (model_complexity=1) -> `PoseObservation`.

Shoulder tilt and head tilt come from landmark pairs; lean is the shoulder width relative to a
slow running baseline of this session (leaning toward the camera widens the shoulders), so it
needs no calibration step.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.config import Settings
from app.frames import PoseObservation
from app.priority import NORMAL, ThreadPriority

log = logging.getLogger(__name__)

# MediaPipe Pose landmark indices; "left"/"right" are the presenter's own.
NOSE = 0
LEFT_EYE, RIGHT_EYE = 2, 5
LEFT_EAR, RIGHT_EAR = 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_WRIST, RIGHT_WRIST = 15, 16
MIN_VISIBILITY = 0.5

# A presenter in view though FaceMesh finds no face (`PoseObservation.in_view`): shoulders at
# least this share of the frame's width apart (smaller ones were people Pose imagined in a
# flag's stripes, or a presenter too far away for FaceMesh), and the head's points (nose, eyes,
# ears) at least this many shoulder widths inside every edge (a face half out of the frame
# is out of view, not hidden). Chosen on the photos of tests/analysis/test_face_hidden.py and
# the clips' sliding-out segments, measured once by hand (2026-12-06; bench/face_hidden.py
# gives the outcome, not these distances): in view, shoulders 0.21-0.63 of the width and the
# head 0.40+ shoulder widths in; imagined ones 0.06-0.08; half out, under 0.01.
IN_VIEW_MIN_SHOULDER_WIDTH = 0.15
IN_VIEW_MIN_HEAD_MARGIN = 0.25
HEAD_POINTS = (NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR)


def shoulder_tilt_deg(left: tuple[float, float], right: tuple[float, float]) -> float:
    """+ = the presenter's right shoulder (image left) is lower. Points in pixels (x, y down)."""
    return math.degrees(math.atan2(right[1] - left[1], left[0] - right[0]))


def head_tilt_from_ears_deg(left_ear: tuple[float, float], right_ear: tuple[float, float]) -> float:
    """+ = head tilted clockwise in the image (the ear on image right drops)."""
    return math.degrees(math.atan2(left_ear[1] - right_ear[1], left_ear[0] - right_ear[0]))


class LeanBaseline:
    """Running baseline of shoulder width (fraction of frame width): an exponential average
    with time constant `tau_s`, so a presenter who steps back slowly re-baselines while a lean
    of a few seconds shows."""

    def __init__(self, tau_s: float) -> None:
        self._tau_s = tau_s
        self._baseline: float | None = None
        self._last_t: float | None = None

    def update(self, t: float, shoulder_width: float) -> float:
        """Feed a measurement; returns width / baseline (1.0 = as usual, > 1 leaning in)."""
        if self._baseline is None or self._last_t is None:
            self._baseline = shoulder_width
        else:
            dt = max(0.0, t - self._last_t)
            alpha = 1.0 - math.exp(-dt / self._tau_s) if self._tau_s > 0 else 1.0
            # The ratio is taken against the baseline before this sample joins it.
            ratio = shoulder_width / self._baseline
            self._baseline += alpha * (shoulder_width - self._baseline)
            self._last_t = t
            return ratio
        self._last_t = t
        return 1.0


def pose_observation_from_landmarks(
    points: np.ndarray,
    visibility: np.ndarray,
    width: int,
    height: int,
    t: float,
    baseline: LeanBaseline,
) -> PoseObservation:
    """From Pose landmarks in pixel units (N x 2) and their visibilities."""

    def seen(i: int) -> bool:
        return bool(visibility[i] >= MIN_VISIBILITY)

    def xy(i: int) -> tuple[float, float]:
        return float(points[i, 0]), float(points[i, 1])

    def normalised(i: int) -> tuple[float, float] | None:
        return (float(points[i, 0]) / width, float(points[i, 1]) / height) if seen(i) else None

    tilt = lean = center = shoulder_width = None
    in_view = False
    if seen(LEFT_SHOULDER) and seen(RIGHT_SHOULDER):
        left, right = xy(LEFT_SHOULDER), xy(RIGHT_SHOULDER)
        tilt = shoulder_tilt_deg(left, right)
        shoulder_width = math.dist(left, right) / width
        head = points[list(HEAD_POINTS)]
        edge = min(
            head[:, 0].min(), width - head[:, 0].max(), head[:, 1].min(), height - head[:, 1].max()
        )
        in_view = (
            seen(NOSE)
            and shoulder_width >= IN_VIEW_MIN_SHOULDER_WIDTH
            and edge >= IN_VIEW_MIN_HEAD_MARGIN * shoulder_width * width
        )
        if shoulder_width > 1e-3:
            lean = baseline.update(t, shoulder_width)
        center = ((left[0] + right[0]) / 2 / width, (left[1] + right[1]) / 2 / height)
    head_tilt = None
    if seen(LEFT_EAR) and seen(RIGHT_EAR):
        head_tilt = head_tilt_from_ears_deg(xy(LEFT_EAR), xy(RIGHT_EAR))
    return PoseObservation(
        found=True,
        shoulder_tilt_deg=tilt,
        head_tilt_deg=head_tilt,
        lean=lean,
        shoulder_center=center,
        shoulder_width=shoulder_width,
        wrists=(normalised(LEFT_WRIST), normalised(RIGHT_WRIST)),
        landmarks=points.astype(np.float32),
        in_view=bool(in_view),
    )


@dataclass(frozen=True, slots=True)
class PoseLandmarks:
    """One Pose run's 33 landmarks: x, y as fractions of the frame (N x 2) and visibilities.
    Small and picklable: it is what a Pose worker process sends back."""

    points: np.ndarray
    visibility: np.ndarray


def landmarks_from_result(result: Any) -> PoseLandmarks | None:
    """MediaPipe's Pose result -> `PoseLandmarks`, None when it found nobody."""
    if result.pose_landmarks is None:
        return None
    lms = result.pose_landmarks.landmark
    return PoseLandmarks(
        points=np.array([(lm.x, lm.y) for lm in lms], dtype=np.float64),
        visibility=np.array([lm.visibility for lm in lms], dtype=np.float64),
    )


def new_pose_graph(static_images: bool, priority: ThreadPriority = NORMAL) -> Any:
    """A Pose graph; with a lowered `priority` it is built on a short-lived thread of that
    priority, because the graph's own worker threads (which do the work) inherit the priority
    of the thread that starts them, and a thread cannot win its priority back without
    privileges."""
    if priority.lowered:
        with ThreadPoolExecutor(
            1, thread_name_prefix="pose-graph-build", initializer=priority.apply
        ) as builder:
            return builder.submit(new_pose_graph, static_images).result()

    import mediapipe as mp

    return mp.solutions.pose.Pose(
        static_image_mode=static_images,
        model_complexity=1,  # the only complexity whose model ships in the wheel
        smooth_landmarks=True,
        enable_segmentation=False,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


class PoseUnavailable(RuntimeError):
    """This frame's Pose run was lost (its worker ended or hung); the next one may work."""


class PoseRunner(Protocol):
    """Runs Pose for any session, a frame at a time, keeping nothing between frames:
    `PoseGraphs` in this process, `PoseProcess` (app/analysis/pose_process.py) in another."""

    def landmarks(self, rgb: np.ndarray) -> PoseLandmarks | None: ...

    def warm_up(self, rgb: np.ndarray) -> None:
        """Get ready for the first frame: build the graphs, or start the worker process
        without waiting for it (a starved worker must not hold up a session's start)."""
        ...

    def close(self) -> None: ...


class PoseGraphs:
    """A few Pose graphs in static-image mode, shared by all of a process's live sessions.

    A Pose graph holds ~115 MiB of native memory (FaceMesh ~30, a VP9 encoder ~40), so one
    tracking graph per session is most of a session's RSS, while a session runs Pose on only
    every 2nd to 4th frame. A static-image graph keeps no state between calls (no tracking, no
    smoothing), so any session can use any graph, in any order, with the same result as on a
    graph of its own; the price is the person detector on every call (~6 ms more CPU a run,
    measured in BENCHMARKS.md). `lease` blocks while all `size` graphs are in use: a graph used
    by two threads at once crashes the process, and on a machine with few cores more than a
    couple of concurrent Pose runs only slow each other down. Graphs are built on first need.
    """

    def __init__(self, size: int, priority: ThreadPriority = NORMAL) -> None:
        """`priority`: how the graphs' worker threads yield to other work."""
        self.size = max(1, size)
        self._priority = priority
        self._free: list[Any] = []
        self._built = 0
        self._available = threading.Semaphore(self.size)
        self._lock = threading.Lock()
        self._closed = False

    @property
    def built(self) -> int:
        return self._built

    @contextmanager
    def lease(self) -> Iterator[Any]:
        self._available.acquire()
        try:
            with self._lock:
                if self._closed:
                    raise RuntimeError("PoseGraphs is closed")
                graph = self._free.pop() if self._free else None
                if graph is None:
                    self._built += 1
            if graph is None:
                graph = new_pose_graph(static_images=True, priority=self._priority)
            try:
                yield graph
            finally:
                with self._lock:
                    closed = self._closed
                    if not closed:
                        self._free.append(graph)
                if closed:
                    graph.close()
        finally:
            self._available.release()

    def landmarks(self, rgb: np.ndarray) -> PoseLandmarks | None:
        with self.lease() as graph:
            return landmarks_from_result(graph.process(rgb))

    def warm_up(self, rgb: np.ndarray) -> None:
        self.landmarks(rgb)  # builds a graph on this (warm-up) thread

    def close(self) -> None:
        """Close the idle graphs; one still leased closes when it comes back."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for graph in free:
            graph.close()


class PoseAnalyzer:
    """This session's Pose: its own tracking graph, or a shared `PoseRunner` (`graphs`), plus
    this session's lean baseline. One call at a time, in time order."""

    def __init__(
        self, settings: Settings, *, static_images: bool = False, graphs: PoseRunner | None = None
    ) -> None:
        self._graphs = graphs
        self._pose = None if graphs is not None else new_pose_graph(static_images)
        self._baseline_s = settings.cues.lean_baseline_s
        self._baseline = LeanBaseline(self._baseline_s)

    def _process(self, rgb: np.ndarray) -> PoseLandmarks | None:
        if self._pose is not None:
            return landmarks_from_result(self._pose.process(rgb))
        assert self._graphs is not None
        return self._graphs.landmarks(rgb)

    def analyze(self, rgb: np.ndarray, t: float) -> PoseObservation:
        height, width = rgb.shape[:2]
        found = self._process(rgb)
        if found is None:
            return PoseObservation(found=False)
        points = found.points * (width, height)
        visibility = found.visibility
        if not (visibility[[LEFT_SHOULDER, RIGHT_SHOULDER, NOSE]] >= MIN_VISIBILITY).any():
            return PoseObservation(found=False)
        return pose_observation_from_landmarks(points, visibility, width, height, t, self._baseline)

    def warm_up(self, rgb: np.ndarray) -> None:
        """Best effort: a session starts without a warm Pose rather than not at all."""
        try:
            if self._pose is not None:
                self._pose.process(rgb)
            else:
                assert self._graphs is not None
                self._graphs.warm_up(rgb)
        except PoseUnavailable:
            log.warning("Pose warm-up lost its run; the first frames will warm it", exc_info=True)

    def forget(self, blank_rgb: np.ndarray) -> None:
        """Drop the tracked body and the lean baseline before this analyser serves another
        session. On its own graph a frame with nobody in it ends tracking, so the next frame
        starts from a fresh detection and the landmark positions match a new graph's exactly.
        One thing survives there: Pose's visibility smoothing (a low-pass that only updates on
        frames with landmarks), so for about the first second the landmark visibilities (which
        wrists and shoulders count as seen) still lean towards the previous session's.
        Restarting the graph (`reset()`) clears that too, but each restart rebuilds the TFLite
        interpreters and RSS then drifts up ~1-1.5 MiB per session (measured over 20 WebRTC
        sessions), the very growth the analyser pool exists to stop. Shared static-image
        graphs carry nothing from one call to the next."""
        if self._pose is not None:
            self._pose.process(blank_rgb)
        self._baseline = LeanBaseline(self._baseline_s)

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
