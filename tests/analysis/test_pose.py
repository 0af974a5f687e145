"""Pose & posture: pure geometry, then MediaPipe Pose on the labelled frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.analysis.pose import (
    LeanBaseline,
    PoseAnalyzer,
    head_tilt_from_ears_deg,
    shoulder_tilt_deg,
)
from app.config import Settings
from app.frames import PoseObservation
from tests.fixtures.clips import Segment, render_segment_frame


def test_shoulder_tilt_sign_follows_the_contract() -> None:
    # Presenter's right shoulder is on image left; + when it is lower (larger y).
    assert shoulder_tilt_deg(left=(400, 200), right=(200, 200)) == pytest.approx(0.0)
    assert shoulder_tilt_deg(left=(400, 200), right=(200, 240)) > 5
    assert shoulder_tilt_deg(left=(400, 240), right=(200, 200)) < -5


def test_head_tilt_from_ears_is_clockwise_positive() -> None:
    assert head_tilt_from_ears_deg(left_ear=(300, 120), right_ear=(200, 100)) == pytest.approx(
        11.31, abs=0.01
    )


def test_lean_baseline_tracks_slowly() -> None:
    baseline = LeanBaseline(tau_s=30.0)
    assert baseline.update(0.0, 0.30) == 1.0
    assert baseline.update(0.1, 0.30) == pytest.approx(1.0)
    assert baseline.update(0.2, 0.36) == pytest.approx(1.2, abs=0.01)  # leaning in shows
    for step in range(3000):  # ...and after minutes at the new distance it is the new normal
        ratio = baseline.update(0.3 + step * 0.1, 0.36)
    assert ratio == pytest.approx(1.0, abs=0.01)


def _analyse(segment: Segment, analyzer: PoseAnalyzer, t: float) -> PoseObservation:
    image = np.asarray(render_segment_frame(segment, 0.0).image)
    return analyzer.analyze(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), t)


def test_pose_metrics_on_the_astronaut() -> None:
    analyzer = PoseAnalyzer(Settings(), static_images=True)
    try:
        upright = _analyse(Segment("frontal", 1), analyzer, 0.0)
        rotated = _analyse(Segment("rotated", 1, roll_deg=15.0), analyzer, 0.1)
        nearer = _analyse(Segment("frontal", 1, scale=1.3), analyzer, 0.2)
        empty = _analyse(Segment("empty", 1), analyzer, 0.3)
    finally:
        analyzer.close()
    assert upright.found and rotated.found and nearer.found
    assert upright.shoulder_tilt_deg is not None and rotated.shoulder_tilt_deg is not None
    assert abs(upright.shoulder_tilt_deg) < 8  # she sits nearly level
    # A clockwise roll lowers image right, the presenter's left shoulder: the tilt falls by it.
    assert rotated.shoulder_tilt_deg - upright.shoulder_tilt_deg == pytest.approx(-15.0, abs=5.0)
    assert upright.head_tilt_deg is not None and rotated.head_tilt_deg is not None
    assert rotated.head_tilt_deg - upright.head_tilt_deg == pytest.approx(15.0, abs=6.0)
    assert upright.lean == 1.0 and nearer.lean is not None and nearer.lean > 1.15
    assert upright.shoulder_center is not None
    assert 0.4 < upright.shoulder_center[0] < 0.6
    assert not empty.found
