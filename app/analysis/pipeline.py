"""One session's analysis: frame in, `FrameAnalysis` out.

`FrameAnalyzer` owns this session's MediaPipe graphs (a graph used by two threads at once
crashes the process), so the caller runs it in an executor, frames in time order. Frames are
downscaled to `analysis_max_side` first. Pose, the dearest stage, runs on every
`pose_every`-th analysed frame and its last result is reused in between (the trade-off is
measured in BENCHMARKS.md, section Analysis). Two ways to run it:

- `analyze`: face and, when due, Pose on the same frame, in the calling thread (uploads).
- `analyze_face` + `run_pose`: a live session's two lanes. Face, gaze and head pose run on
  every frame and its metrics go out at once; when Pose is due and the session's Pose lane is
  free, the frame is handed to `run_pose` in another thread, and its result is carried by the
  frames analysed after it (with its frame's time, `pose_t`). Under load the lane simply runs
  less often; no frame waits for it.

A live session passes the cadence of the moment (`app/analysis/cadence.py` raises it under
load).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np

from app.analysis.face import FaceAnalyzer, GazeBaseline, GazeTracker
from app.analysis.face_process import FaceProcesses, RemoteFaceAnalyzer
from app.analysis.gesture import MotionTracker
from app.analysis.pose import PoseAnalyzer, PoseRunner, PoseUnavailable
from app.config import Settings
from app.frames import (
    FaceObservation,
    FrameAnalysis,
    GestureObservation,
    PoseObservation,
    VideoFrame,
)
from app.media.images import downscale

log = logging.getLogger(__name__)


def downscale_rgb(image_bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """BGR frame -> RGB at most `max_side` on its longest side; returns (rgb, scale)."""
    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = downscale(image_bgr, max_side, copy=False)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB), scale


def _rescale_face(face: FaceObservation, inverse: float) -> FaceObservation:
    """Back to the received frame's pixels, so landmarks draw on the frame as received."""
    if not face.found or inverse == 1.0:
        return face
    bbox = None
    if face.bbox is not None:
        bbox = (
            round(face.bbox[0] * inverse),
            round(face.bbox[1] * inverse),
            round(face.bbox[2] * inverse),
            round(face.bbox[3] * inverse),
        )
    landmarks = None if face.landmarks is None else face.landmarks * np.float32(inverse)
    return dataclasses.replace(face, bbox=bbox, landmarks=landmarks)


def _rescale_pose(pose: PoseObservation, inverse: float) -> PoseObservation:
    if pose.landmarks is None or inverse == 1.0:
        return pose
    return dataclasses.replace(pose, landmarks=pose.landmarks * np.float32(inverse))


@dataclasses.dataclass(frozen=True, slots=True)
class PoseWork:
    """A frame handed to `FrameAnalyzer.run_pose`: already downscaled to the analysis size."""

    t: float
    rgb: np.ndarray
    inverse: float  # analysed pixels -> received pixels


@dataclasses.dataclass(frozen=True, slots=True)
class _PoseState:
    """The newest Pose result and what was derived from it, published as one object so the
    face lane reads a consistent set while the Pose lane writes the next one."""

    pose: PoseObservation
    gesture: GestureObservation
    sway: float | None
    t: float | None  # media time of the frame Pose ran on
    ms: float  # how long the run that produced it took
    serial: int  # runs so far: the first frame that carries a new result reports `ms`


_NO_POSE = _PoseState(PoseObservation(found=False), GestureObservation(0, None), None, None, 0.0, 0)


class FrameAnalyzer:
    """Per-session analyser. Not thread-safe by design: one `analyze` (or `analyze_face`) at a
    time, and at most one `run_pose` beside it (face and Pose are separate graphs)."""

    def __init__(
        self,
        settings: Settings,
        pose_graphs: PoseRunner | None = None,
        face_graphs: FaceProcesses | None = None,
    ) -> None:
        """`pose_graphs`: where Pose runs for all sessions (shared static-image graphs, here or
        in a worker process); without it the analyser builds a tracking Pose graph of its
        own. `face_graphs`: worker processes where its FaceMesh graph lives; without them, in
        this process."""
        self._settings = settings
        self._face: FaceAnalyzer | RemoteFaceAnalyzer = (
            FaceAnalyzer(settings) if face_graphs is None else face_graphs.lease(settings)
        )
        self._pose = PoseAnalyzer(settings, graphs=pose_graphs)
        self._closed = False
        self._clear_session_state()

    def _clear_session_state(self) -> None:
        self._motion = MotionTracker(self._settings)
        self._gaze = GazeTracker(self._settings)  # the presenter's baseline, blinks
        self._since_pose: int | None = None  # analysed frames since Pose last started
        self._pose_state = _NO_POSE
        self._reported_serial = 0

    def analyze(self, frame: VideoFrame, pose_every: int | None = None) -> FrameAnalysis:
        """Analyse one frame in this thread; Pose runs (on this frame) when `pose_every`
        (default: the setting) analysed frames have passed since it last ran, so a cadence
        that changes between frames takes effect at once."""
        face, timings, work = self._face_stage(frame, pose_every, pose_lane_free=True)
        if work is not None:
            try:
                self.run_pose(work)
            except PoseUnavailable:
                # An upload must not fail on one lost Pose run: the last result stands.
                log.warning("a Pose run was lost; the last result stands", exc_info=True)
        return self._compose(frame, face, timings)

    def analyze_face(
        self, frame: VideoFrame, pose_every: int | None = None, *, pose_lane_free: bool = True
    ) -> tuple[FrameAnalysis, PoseWork | None]:
        """Face, gaze and head pose on this frame, with the newest Pose result published so
        far. When Pose is due and `pose_lane_free`, also returns this frame as `PoseWork`: the
        caller runs `run_pose` on it in another thread."""
        face, timings, work = self._face_stage(frame, pose_every, pose_lane_free=pose_lane_free)
        return self._compose(frame, face, timings), work

    def _face_stage(
        self, frame: VideoFrame, pose_every: int | None, *, pose_lane_free: bool
    ) -> tuple[FaceObservation, dict[str, float], PoseWork | None]:
        if self._closed:
            raise RuntimeError("FrameAnalyzer is closed")
        timings: dict[str, float] = {}

        start = time.perf_counter()
        rgb, scale = downscale_rgb(frame.image, self._settings.analysis.max_side)
        inverse = 1.0 / scale
        timings["resize"] = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        face = self._gaze.update(_rescale_face(self._face.analyze(rgb), inverse), frame.t)
        timings["face"] = (time.perf_counter() - start) * 1000

        every = max(1, self._settings.pose.every if pose_every is None else pose_every)
        due = self._since_pose is None or self._since_pose + 1 >= every
        work = None
        if due and pose_lane_free:
            work = PoseWork(frame.t, rgb, inverse)
            self._since_pose = 0
        else:
            self._since_pose = (self._since_pose or 0) + 1
        return face, timings, work

    def _compose(
        self, frame: VideoFrame, face: FaceObservation, timings: dict[str, float]
    ) -> FrameAnalysis:
        state = self._pose_state  # one read: the Pose lane may publish a newer one meanwhile
        fresh = state.serial != self._reported_serial
        self._reported_serial = state.serial
        # Pose time where a new result first shows (0: this frame reuses an earlier one).
        timings["pose"] = state.ms if fresh else 0.0
        height, width = frame.image.shape[:2]
        return FrameAnalysis(
            index=frame.index,
            t=frame.t,
            arrived_at=frame.arrived_at,
            width=width,
            height=height,
            face=face,
            pose=state.pose,
            gesture=state.gesture,
            sway=state.sway,
            timings_ms=timings,
            pose_t=state.t,
        )

    def run_pose(self, work: PoseWork) -> None:
        """Pose on `work` and the motion measures that follow from it, published for the
        frames analysed from now on. One call at a time, in time order."""
        if self._closed:
            raise RuntimeError("FrameAnalyzer is closed")
        start = time.perf_counter()
        pose = self._pose.analyze(work.rgb, work.t)
        small_h, small_w = work.rgb.shape[:2]
        # Motion is measured on fresh Pose results only; reused ones would read as still.
        gesture, sway = self._motion.update(work.t, pose, small_w, small_h)
        ms = (time.perf_counter() - start) * 1000
        self._pose_state = _PoseState(
            _rescale_pose(pose, work.inverse),
            gesture,
            sway,
            work.t,
            ms,
            self._pose_state.serial + 1,
        )

    def _blank(self) -> np.ndarray:
        side = self._settings.analysis.max_side
        return np.zeros((side * 3 // 4, side, 3), np.uint8)

    @property
    def gaze_baseline(self) -> GazeBaseline | None:
        """The presenter's gaze baseline learnt so far this session (None: the defaults)."""
        return self._gaze.baseline

    def track_gaze(self, settings: Settings) -> None:
        """Follow this session's gaze under its own `settings` from a fresh tracker (its
        calibration: an upload's has none, app/wiring.py); the graphs keep the analyser's."""
        self._gaze = GazeTracker(settings)

    def warm_up(self) -> None:
        """Run the graphs once on a blank frame: MediaPipe initialises its graph and the
        detectors on the first call (hundreds of ms), which should not land on a live frame.
        The trackers and baselines are left untouched."""
        blank = self._blank()
        self._face.warm_up(blank)
        self._pose.warm_up(blank)

    def reset(self) -> None:
        """Forget what the last session left: tracked face and body, gaze and lean baselines, motion
        history, frame count. From its first frame a reset analyser finds the faces and body
        landmarks a new one would, without building (and later freeing) new MediaPipe graphs;
        only Pose's visibility smoothing needs about a second to let go (see
        `PoseAnalyzer.forget`)."""
        if self._closed:
            raise RuntimeError("FrameAnalyzer is closed")
        blank = self._blank()
        self._face.forget(blank)
        self._pose.forget(blank)
        self._clear_session_state()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._face.close()
            self._pose.close()


class AnalyzerPool:
    """Keeps up to `max_idle` FrameAnalyzers between sessions and hands them out again.

    Building and closing MediaPipe graphs for every session does not give their memory back:
    each build/close cycle leaves tens of MiB of fragmented native heap in the thread that did
    it, so RSS climbed ~10-19 MiB per session (see BENCHMARKS.md, section Memory). A reused
    graph costs nothing per session; `FrameAnalyzer.reset` makes it forget the previous
    session first. Thread-safe; `acquire` and the lease's `close` are blocking (run them in the
    analysis executor, like everything else that touches a graph)."""

    def __init__(
        self,
        settings: Settings,
        max_idle: int,
        make: Callable[[Settings], FrameAnalyzer] = FrameAnalyzer,
    ) -> None:
        self._settings = settings
        self._max_idle = max(0, max_idle)
        self._make = make
        self._idle: list[FrameAnalyzer] = []
        self._lock = threading.Lock()
        self._closed = False
        self.built = 0  # analysers built so far (for tests and metrics)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def acquire(self, settings: Settings | None = None) -> PooledAnalyzer:
        """An idle analyser (already reset) or a new one, so this can stand in for
        `Hooks.make_analyzer`. The graphs keep the pool's settings; the session's `settings`
        say how its gaze is tracked (an upload's calibrate nothing)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("AnalyzerPool is closed")
            analyzer = self._idle.pop() if self._idle else None
        if analyzer is None:
            analyzer = self._make(self._settings)
            with self._lock:
                self.built += 1
        if settings is not None:
            analyzer.track_gaze(settings)
        return PooledAnalyzer(analyzer, self)

    def _give_back(self, analyzer: FrameAnalyzer) -> None:
        try:
            analyzer.reset()
        except Exception:
            analyzer.close()
            raise
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(analyzer)
                return
        analyzer.close()

    def close(self) -> None:
        """Close the idle analysers; leases still out close theirs when they are closed."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for analyzer in idle:
            analyzer.close()


class PooledAnalyzer:
    """One session's lease on a pooled FrameAnalyzer: the FrameAnalyzer interface, where
    `close` hands the analyser back to the pool (reset) instead of freeing its graphs."""

    def __init__(self, analyzer: FrameAnalyzer, pool: AnalyzerPool) -> None:
        self._analyzer: FrameAnalyzer | None = analyzer
        self._pool = pool

    def _leased(self) -> FrameAnalyzer:
        if self._analyzer is None:
            raise RuntimeError("FrameAnalyzer is closed")
        return self._analyzer

    def analyze(self, frame: VideoFrame, pose_every: int | None = None) -> FrameAnalysis:
        return self._leased().analyze(frame, pose_every)

    def analyze_face(
        self, frame: VideoFrame, pose_every: int | None = None, *, pose_lane_free: bool = True
    ) -> tuple[FrameAnalysis, PoseWork | None]:
        return self._leased().analyze_face(frame, pose_every, pose_lane_free=pose_lane_free)

    def run_pose(self, work: PoseWork) -> None:
        self._leased().run_pose(work)

    def warm_up(self) -> None:
        self._leased().warm_up()

    @property
    def gaze_baseline(self) -> GazeBaseline | None:
        return self._leased().gaze_baseline

    def close(self) -> None:
        analyzer, self._analyzer = self._analyzer, None
        if analyzer is not None:
            self._pool._give_back(analyzer)
