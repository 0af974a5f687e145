"""Hand activity and sway from a stream of Pose observations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.analysis.gesture import MotionTracker
from app.analysis.pose import LEFT_SHOULDER, RIGHT_SHOULDER
from app.config import Settings
from app.frames import PoseObservation

W, H = 640, 480


def _pose(center_x: float, wrist_dx: float, wrists_visible: bool = True) -> PoseObservation:
    """Shoulders 160 px apart around `center_x` (px), wrists below, shifted by wrist_dx px."""
    landmarks = np.zeros((33, 2), np.float32)
    landmarks[LEFT_SHOULDER] = (center_x + 80, 300)
    landmarks[RIGHT_SHOULDER] = (center_x - 80, 300)
    wrists = (
        ((center_x + 90 + wrist_dx) / W, 420 / H),
        ((center_x - 90 + wrist_dx) / W, 420 / H),
    )
    return PoseObservation(
        found=True,
        shoulder_tilt_deg=0.0,
        shoulder_center=(center_x / W, 300 / H),
        wrists=wrists if wrists_visible else (None, None),
        landmarks=landmarks,
    )


def _feed(tracker: MotionTracker, poses: list[PoseObservation], fps: float = 15.0):
    out = None
    for i, pose in enumerate(poses):
        out = tracker.update(i / fps, pose, W, H)
    assert out is not None
    return out


def test_still_hands_have_no_activity() -> None:
    gesture, sway = _feed(MotionTracker(Settings()), [_pose(320, 0)] * 60)
    assert gesture.hands_visible == 2
    assert gesture.activity == pytest.approx(0.0)
    assert sway == pytest.approx(0.0)


def test_waving_hands_are_active_in_shoulder_widths_per_second() -> None:
    # 40 px amplitude at 1 Hz: peak speed 2*pi*40 px/s = 1.57 shoulder widths/s.
    poses = [_pose(320, 40 * math.sin(2 * math.pi * i / 15)) for i in range(60)]
    gesture, _ = _feed(MotionTracker(Settings()), poses)
    assert gesture.activity is not None
    assert 0.5 < gesture.activity < 1.6
    assert gesture.activity > Settings().cues.gesture_min_activity


def test_hidden_hands_count_as_still() -> None:
    gesture, _ = _feed(MotionTracker(Settings()), [_pose(320, 0, wrists_visible=False)] * 10)
    assert gesture.hands_visible == 0
    assert gesture.activity == 0.0


def test_sway_measures_side_to_side_motion_over_the_window() -> None:
    settings = Settings(sway_window_s=4.0)
    # Shoulder centre swinging 40 px (a quarter shoulder width) each side at 0.5 Hz.
    poses = [_pose(320 + 40 * math.sin(math.pi * i / 15), 0) for i in range(90)]
    _, sway = _feed(MotionTracker(settings), poses)
    assert sway == pytest.approx(0.25 / math.sqrt(2), abs=0.03)  # std of a sine
    assert sway > settings.cues.sway_max


def test_sway_needs_half_a_window_and_resets_when_the_body_is_lost() -> None:
    tracker = MotionTracker(Settings(sway_window_s=4.0))
    _, sway = _feed(tracker, [_pose(320, 0)] * 15)  # one second only
    assert sway is None
    gesture, sway = tracker.update(10.0, PoseObservation(found=False), W, H)
    assert sway is None and gesture.activity is None and gesture.hands_visible == 0
