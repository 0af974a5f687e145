"""Fixtures for the coaching tests: the fake VLM server and synthetic analysis input."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from app.frames import (
    FaceObservation,
    FrameAnalysis,
    GazeDirection,
    GestureObservation,
    PoseObservation,
)

from .fake_vlm import FakeVlmServer, running_fake_vlm


@pytest.fixture
def vlm_server() -> Iterator[FakeVlmServer]:
    with running_fake_vlm() as fake:
        yield fake


# --- synthetic analysis input ------------------------------------------------------------


@pytest.fixture(scope="session")
def face_image() -> np.ndarray:
    """A real face, BGR, larger than any max side the tests configure."""
    rgb = skimage_data.astronaut()
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (1280, 960))


def build_analysis(
    index: int,
    t: float,
    *,
    face: bool = True,
    gaze_on: bool = True,
    pitch: float = 0.0,
    head_tilt: float = 2.0,
    shoulder_tilt: float = 1.0,
    activity: float = 0.6,
    hands: int = 2,
    sway: float = 0.02,
    face_width: float = 0.2,
    direction: GazeDirection | None = None,
) -> FrameAnalysis:
    return FrameAnalysis(
        index=index,
        t=t,
        arrived_at=time.monotonic(),
        width=640,
        height=480,
        face=FaceObservation(
            found=face,
            yaw_deg=3.0 if face else None,
            pitch_deg=pitch if face else None,
            roll_deg=head_tilt if face else None,
            gaze_on_camera=gaze_on if face else None,
            gaze_direction=direction if face else None,
            face_width_ratio=face_width if face else None,
        ),
        pose=PoseObservation(
            found=True, shoulder_tilt_deg=shoulder_tilt, head_tilt_deg=head_tilt, lean=1.0
        ),
        gesture=GestureObservation(hands_visible=hands, activity=activity),
        sway=sway,
    )


@pytest.fixture
def make_analysis() -> Callable[..., FrameAnalysis]:
    """`make_analysis(index, t, gaze_on=..., ...)`: one analysed frame with the given readings."""
    return build_analysis
