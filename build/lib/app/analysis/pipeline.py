"""One session's analysis: frame in, `FrameAnalysis` out.

`FrameAnalyzer` owns this session's MediaPipe graphs (a graph used by two threads at once
crashes the process), so the caller runs `analyze` in an executor, one call at a time, frames
in time order. Frames are downscaled to `analysis_max_side` first; Pose, the dearest stage,
runs on every `pose_every`-th analysed frame and its last result is reused in between (the
trade-off is measured in BENCHMARKS.md, section Analysis).
"""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np

from app.analysis.face import FaceAnalyzer
from app.analysis.gesture import MotionTracker
from app.analysis.pose import PoseAnalyzer
from app.config import Settings
from app.frames import (
    FaceObservation,
    FrameAnalysis,
    GestureObservation,
    PoseObservation,
    VideoFrame,
)


def downscale_rgb(image_bgr: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """BGR frame -> RGB at most `max_side` on its longest side; returns (rgb, scale)."""
    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), scale


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


class FrameAnalyzer:
    """Per-session analyser. Not thread-safe by design: one `analyze` at a time."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._face = FaceAnalyzer(settings)
        self._pose = PoseAnalyzer(settings)
        self._motion = MotionTracker(settings)
        self._analysed = 0
        self._last_pose = PoseObservation(found=False)
        self._last_gesture = GestureObservation(hands_visible=0, activity=None)
        self._last_sway: float | None = None
        self._closed = False

    def analyze(self, frame: VideoFrame) -> FrameAnalysis:
        if self._closed:
            raise RuntimeError("FrameAnalyzer is closed")
        timings: dict[str, float] = {}
        height, width = frame.image.shape[:2]

        start = time.perf_counter()
        rgb, scale = downscale_rgb(frame.image, self._settings.analysis_max_side)
        inverse = 1.0 / scale
        small_h, small_w = rgb.shape[:2]
        timings["resize"] = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        face = _rescale_face(self._face.analyze(rgb), inverse)
        timings["face"] = (time.perf_counter() - start) * 1000

        run_pose = self._analysed % max(1, self._settings.pose_every) == 0
        start = time.perf_counter()
        if run_pose:
            pose = self._pose.analyze(rgb, frame.t)
        timings["pose"] = (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        if run_pose:
            # Motion is measured on fresh Pose results only; reused ones would read as still.
            gesture, sway = self._motion.update(frame.t, pose, small_w, small_h)
            self._last_pose = _rescale_pose(pose, inverse)
            self._last_gesture, self._last_sway = gesture, sway
        timings["gesture"] = (time.perf_counter() - start) * 1000
        self._analysed += 1

        return FrameAnalysis(
            index=frame.index,
            t=frame.t,
            arrived_at=frame.arrived_at,
            width=width,
            height=height,
            face=face,
            pose=self._last_pose,
            gesture=self._last_gesture,
            sway=self._last_sway,
            timings_ms=timings,
        )

    def warm_up(self) -> None:
        """Run the graphs once on a blank frame: MediaPipe initialises its graph and the
        detectors on the first call (hundreds of ms), which should not land on a live frame.
        The trackers and baselines are left untouched."""
        side = self._settings.analysis_max_side
        blank = np.zeros((side * 3 // 4, side, 3), np.uint8)
        self._face.warm_up(blank)
        self._pose.warm_up(blank)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._face.close()
            self._pose.close()
