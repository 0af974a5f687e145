"""A stand-in frame analyser for transport tests until the MediaPipe analysers (branch
`analysis`) are on main: OpenCV's Haar face detector, a real detector on real pixels, filling
only `face.found`, `face.bbox` and `face.face_width_ratio`. Its one condition is `face_lost`.

Replace with `app.wiring.default_hooks` once `app.analysis.pipeline` exists.
"""

from __future__ import annotations

import time
from typing import Any

import cv2

from app.config import Settings
from app.frames import (
    CueName,
    FaceObservation,
    FrameAnalysis,
    GestureObservation,
    PoseObservation,
    VideoFrame,
)
from app.live.manager import Hooks
from app.wiring import default_hooks


class HaarFaceAnalyzer:
    def __init__(self, _settings: Settings) -> None:
        self._detector = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
        )

    def analyze(self, frame: VideoFrame) -> FrameAnalysis:
        started = time.perf_counter()
        height, width = frame.image.shape[:2]
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        faces = self._detector.detectMultiScale(gray, 1.2, 5, minSize=(60, 60))
        if len(faces):
            x, y, w, h = (int(v) for v in max(faces, key=lambda f: f[2] * f[3]))
            face = FaceObservation(found=True, bbox=(x, y, w, h), face_width_ratio=w / width)
        else:
            face = FaceObservation(found=False)
        return FrameAnalysis(
            index=frame.index,
            t=frame.t,
            arrived_at=frame.arrived_at,
            width=width,
            height=height,
            face=face,
            pose=PoseObservation(found=False),
            gesture=GestureObservation(hands_visible=0, activity=None),
            timings_ms={"face": (time.perf_counter() - started) * 1000},
        )

    def close(self) -> None:
        pass


def face_lost_only(
    analysis: FrameAnalysis, _settings: Settings, _state: Any
) -> dict[CueName, bool]:
    return {"face_lost": not analysis.face.found}


def stand_in_hooks(settings: Settings) -> Hooks:
    hooks = default_hooks(settings)
    hooks.make_analyzer = HaarFaceAnalyzer
    hooks.frame_conditions = face_lost_only
    hooks.make_condition_state = lambda: None
    return hooks
