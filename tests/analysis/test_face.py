"""Face & gaze: pure geometry on synthetic landmarks, then FaceMesh on real photos."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from app.analysis import face as F
from app.analysis.face import FaceAnalyzer, HeadPose, gaze_on_camera
from app.config import Settings
from app.frames import EyeMeasures
from tests.fixtures.real_photos import REAL_PHOTO_CASES, RealPhotoCase


def _synthetic_face(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """478 landmarks of a schematic face (pixels, z away from camera), rotated rigidly."""
    pts = np.zeros((478, 3))
    pts[F.RIGHT_EYE_OUTER] = (-45, -20, 10)
    pts[F.RIGHT_EYE_INNER] = (-15, -20, 5)
    pts[F.LEFT_EYE_INNER] = (15, -20, 5)
    pts[F.LEFT_EYE_OUTER] = (45, -20, 10)
    pts[F.RIGHT_EYE_TOP], pts[F.RIGHT_EYE_BOTTOM] = (-30, -26, 5), (-30, -14, 5)
    pts[F.LEFT_EYE_TOP], pts[F.LEFT_EYE_BOTTOM] = (30, -26, 5), (30, -14, 5)
    pts[F.RIGHT_IRIS_CENTER], pts[F.LEFT_IRIS_CENTER] = (-30, -20, 3), (30, -20, 3)
    pts[F.FOREHEAD], pts[F.CHIN] = (0, -70, 5), (0, 70, 5)
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    # yaw about the image y axis (toward image right = +), pitch up = +, roll clockwise = +
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return pts @ (rz @ ry @ rx).T + np.array([320, 240, 0])


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"),
    [(0, 0, 0), (25, 0, 0), (-30, 0, 0), (0, 15, 0), (0, -20, 0), (0, 0, 20)],
)
def test_head_pose_recovers_rigid_rotation(yaw: float, pitch: float, roll: float) -> None:
    pose = F.head_pose_from_landmarks(_synthetic_face(yaw, pitch, roll))
    assert pose.yaw_deg == pytest.approx(yaw, abs=1.0)
    assert pose.pitch_deg == pytest.approx(pitch, abs=1.0)
    assert pose.roll_deg == pytest.approx(roll, abs=1.0)


def test_iris_offset_follows_the_irises() -> None:
    pts = _synthetic_face()
    assert F.iris_offset_from_landmarks(pts) == pytest.approx((0.0, 0.0), abs=1e-6)
    pts[[F.RIGHT_IRIS_CENTER, F.LEFT_IRIS_CENTER], 0] += 6.0  # a fifth of an eye width right
    dx, _ = F.iris_offset_from_landmarks(pts)
    assert dx == pytest.approx(0.2, abs=1e-6)


def test_iris_offset_needs_refined_landmarks() -> None:
    with pytest.raises(ValueError, match="refine_landmarks"):
        F.iris_offset_from_landmarks(_synthetic_face()[:468])


def test_gaze_rule_compensates_head_yaw_with_the_eyes() -> None:
    settings = Settings()
    assert gaze_on_camera(HeadPose(0, 0, 0), (0.0, 0.0), settings)
    assert not gaze_on_camera(HeadPose(0, 0, 0), (0.2, 0.0), settings)  # eyes sideways
    assert not gaze_on_camera(HeadPose(40, 0, 0), (0.0, 0.0), settings)  # head turned away
    assert not gaze_on_camera(HeadPose(0, -30, 0), (0.0, 0.0), settings)  # looking down
    # Head 20 degrees right, eyes swung back left toward the lens: eye contact.
    assert gaze_on_camera(HeadPose(20, 0, 0), (-0.1, 0.0), settings)
    # Same head, eyes still centred in the head: looking where the head points, past the lens.
    assert not gaze_on_camera(HeadPose(20, 0, 0), (0.1, 0.0), settings)


def test_lowered_lids_read_closed_only_with_the_lid_gap_shut() -> None:
    settings = Settings()
    pose = HeadPose(0, -5, 0)  # head level: no pitch to call it down
    # upper lid low (under 0.115 eye widths) over a gap still open: the eye looks down
    assert F.gaze_direction(pose, EyeMeasures(0.0, 0.0, 0.08, 0.25), settings) == "down"
    # the same lid over a gap all but shut (under 0.21): eyes shut
    assert F.gaze_direction(pose, EyeMeasures(0.0, 0.0, 0.08, 0.1), settings) == "closed"
    assert F.gaze_direction(pose, EyeMeasures(0.0, 0.0, 0.08, 0.205), settings) == "closed"
    assert F.gaze_direction(pose, EyeMeasures(0.0, 0.0, 0.08, 0.215), settings) == "down"
    # irises high between the lids say down whatever the gap
    assert F.gaze_direction(pose, EyeMeasures(0.0, -0.3, 0.08, 0.1), settings) == "down"


def test_a_head_turned_and_pitched_down_reads_down_unless_the_turn_is_much_larger() -> None:
    settings = Settings()
    eyes = EyeMeasures(0.0, 0.0, 0.22, 0.37)  # open lids, irises centred in the head
    assert F.gaze_direction(HeadPose(-22, -19, 0), eyes, settings) == "down"  # laptop aside
    assert F.gaze_direction(HeadPose(-22, -10, 0), eyes, settings) == "right"  # barely lowered
    assert F.gaze_direction(HeadPose(-48, -15, 0), eyes, settings) == "right"  # mostly turned
    assert F.gaze_direction(HeadPose(40, -30, 0), eyes, settings) == "down"  # past both cones
    # the edges: pitch past 14 degrees, head past 15 (frontal up to there), turn / drop
    # (each over its cone: 35 and 28 degrees) under 1.5
    assert F.gaze_direction(HeadPose(-22, -14.5, 0), eyes, settings) == "down"
    assert F.gaze_direction(HeadPose(-22, -13.5, 0), eyes, settings) == "right"
    assert F.gaze_direction(HeadPose(-16, -20, 0), eyes, settings) == "down"
    turn_limit = 1.5 * (20 / 28) * 35  # 37.5 degrees of yaw at a 20 degree drop
    assert F.gaze_direction(HeadPose(turn_limit - 0.5, -20, 0), eyes, settings) == "down"
    assert F.gaze_direction(HeadPose(turn_limit + 0.5, -20, 0), eyes, settings) == "left"


def test_a_frontal_head_glancing_sideways_is_not_down() -> None:
    """Irises off to one side in a frontal head pitched down within the cone: a sideways glance
    (the turned-and-pitched rule needs the head itself turned past 15 degrees)."""
    settings = Settings()
    for yaw in (0.0, 5.0, -10.0, 14.5):
        for iris_x, side in ((0.15, "left"), (-0.15, "right")):
            off = iris_x - 0.3 * math.sin(math.radians(yaw))
            eyes = EyeMeasures(off, 0.0, 0.22, 0.37)
            assert F.gaze_direction(HeadPose(yaw, -16, 0), eyes, settings) == side, (yaw, side)
    # a look back at the lens from a turned, lowered head is still eye contact
    back = EyeMeasures(0.3 * math.sin(math.radians(22)), 0.0, 0.22, 0.37)
    assert F.gaze_direction(HeadPose(-22, -19, 0), back, settings) == "camera"


def test_a_calibrated_presenter_reads_down_when_lids_and_head_both_drop_from_their_own() -> None:
    """A baseline of lids 0.18 eye widths, head pitched up 8 degrees (a webcam below the
    face): the upper lid under 0.75 of its own height with the head more than 8 degrees under
    its own pitch is a look down, though the shared marks (lid 0.115, the 28 degree cone)
    call it `camera`. Either alone is not."""
    settings = Settings()
    baseline = F.GazeBaseline(upper_lid=0.18, openness=0.30, iris_y=-0.08, pitch_deg=8.0)
    low_lid = EyeMeasures(0.0, -0.05, 0.74 * 0.18, 0.25)
    assert F.gaze_direction(HeadPose(0, -1, 0), low_lid, settings) == "camera"  # no baseline
    assert F.gaze_reading(HeadPose(0, -1, 0), low_lid, settings, baseline) == ("down", True)
    # the edges: the lid at 0.76 of its own, the head 7 degrees under its own
    lid_up = dataclasses.replace(low_lid, upper_lid=0.76 * 0.18)
    assert F.gaze_direction(HeadPose(0, -1, 0), lid_up, settings, baseline) == "camera"
    assert F.gaze_direction(HeadPose(0, 1, 0), low_lid, settings, baseline) == "camera"
    # the baseline's own look at the camera stays `camera`
    own = EyeMeasures(0.0, -0.08, 0.18, 0.30)
    assert F.gaze_direction(HeadPose(0, 8, 0), own, settings, baseline) == "camera"
    # the steps before it keep their readings: a head pitched past the cone from its own
    # pitch is a look down at once, not one held like a blink; a head turned far to one
    # side is a sideways look, the turn much the larger
    assert F.gaze_reading(HeadPose(0, -21, 0), low_lid, settings, baseline) == ("down", False)
    assert F.gaze_direction(HeadPose(60, -1, 0), low_lid, settings, baseline) == "left"


@pytest.mark.parametrize("case", REAL_PHOTO_CASES, ids=lambda c: c.name)
def test_eye_contact_on_real_photos(case: RealPhotoCase) -> None:
    analyzer = FaceAnalyzer(Settings(), static_images=True)
    try:
        observation = analyzer.analyze(cv2.cvtColor(case.load(), cv2.COLOR_BGR2RGB))
    finally:
        analyzer.close()
    assert observation.found, case.why
    assert observation.gaze_on_camera is case.eye_contact, (
        f"{case.name} ({case.why}): yaw={observation.yaw_deg:.1f} "
        f"pitch={observation.pitch_deg:.1f} iris={observation.iris_offset}"
    )


def test_no_face_in_a_blank_frame() -> None:
    analyzer = FaceAnalyzer(Settings(), static_images=True)
    try:
        observation = analyzer.analyze(np.full((480, 640, 3), 100, np.uint8))
    finally:
        analyzer.close()
    assert not observation.found
    assert observation.gaze_on_camera is None
