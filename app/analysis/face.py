"""Face and gaze: FaceMesh (with iris refinement) -> `FaceObservation`.

Head pose is a geometric estimate from FaceMesh's own 3-D landmarks rather than `solvePnP`
against a generic model: the mesh already carries a depth per landmark, so three axes built
from stable points (outer eye corners, forehead, chin) give yaw, pitch and roll without guessing
the camera's focal length. Roll uses only the eye line in the image, so it is exact for an
in-plane tilt.

Eye contact asks where the presenter is looking, not only where the head points: someone whose
head is turned 20 degrees but whose eyes swing back to the lens is looking at the audience, and
someone with a frontal head whose eyes slide sideways is not. So the iris offset is compared
with the offset the eyes would need to look at the camera from the current head yaw
(`eye_contact_iris_per_yaw * -sin(yaw)`), and the head itself must stay within a looser cone
where FaceMesh's iris estimate is still trustworthy. Thresholds were tuned on real photos that
packages ship (see tests/analysis/test_face_real_photos.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.config import Settings
from app.frames import FaceObservation

# FaceMesh landmark indices (468-point topology, 478 with refine_landmarks).
# "Right"/"left" are the presenter's own; facing the camera their right eye is on image left.
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM = 33, 133, 159, 145
LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_TOP, LEFT_EYE_BOTTOM = 263, 362, 386, 374
RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER = 468, 473
FOREHEAD, CHIN = 10, 152
REFINED_LANDMARK_COUNT = 478


@dataclass(frozen=True, slots=True)
class HeadPose:
    yaw_deg: float  # + = the presenter turns to their left (image right)
    pitch_deg: float  # + = looking up
    roll_deg: float  # + = clockwise in the image


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n < 1e-9:
        raise ValueError("degenerate landmarks: zero-length axis")
    return v / n


def head_pose_from_landmarks(points: np.ndarray) -> HeadPose:
    """Head angles from FaceMesh landmarks in pixel units (N x 3: x, y, z*width).

    Camera axes: x right, y down, z away from the camera (FaceMesh's z grows with depth).
    """
    ex = _unit(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER])  # face's image-right axis
    down = points[CHIN] - points[FOREHEAD]
    ey = _unit(down - ex * float(down @ ex))  # face's down axis, orthogonal to the eye line
    normal = -np.cross(ex, ey)  # points out of the face, toward the camera when frontal
    yaw = math.degrees(math.atan2(float(normal[0]), float(-normal[2])))
    pitch = math.degrees(math.atan2(float(-normal[1]), math.hypot(normal[0], normal[2])))
    # Roll from the eye line alone, so an in-plane rotation is measured exactly.
    eye_line = points[LEFT_EYE_OUTER, :2] - points[RIGHT_EYE_OUTER, :2]
    roll = math.degrees(math.atan2(float(eye_line[1]), float(eye_line[0])))
    return HeadPose(yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll)


def _iris_offset_one_eye(
    points: np.ndarray, iris: int, corner_a: int, corner_b: int, top: int, bottom: int
) -> tuple[float, float]:
    a, b = points[corner_a, :2], points[corner_b, :2]
    width = float(np.linalg.norm(b - a))
    if width < 1e-6:
        raise ValueError("degenerate eye: zero width")
    along = (b - a) / width
    if along[0] < 0:  # measure toward image right whichever corner comes first
        along = -along
    across = np.array([-along[1], along[0]])  # toward image down
    iris_xy = points[iris, :2]
    dx = float((iris_xy - (a + b) / 2) @ along) / width
    lid_top, lid_bottom = points[top, :2], points[bottom, :2]
    height = max(float(np.linalg.norm(lid_top - lid_bottom)), 1e-6)
    dy = float((iris_xy - (lid_top + lid_bottom) / 2) @ across) / height
    return dx, dy


def iris_offset_from_landmarks(points: np.ndarray) -> tuple[float, float]:
    """Mean iris offset from the eye centre: x in eye widths (+ = image right), y in eye
    heights (+ = image down; noisy, since the lids follow the eyes)."""
    if len(points) < REFINED_LANDMARK_COUNT:
        raise ValueError("iris landmarks need FaceMesh(refine_landmarks=True)")
    rx, ry = _iris_offset_one_eye(
        points, RIGHT_IRIS_CENTER, RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM
    )
    lx, ly = _iris_offset_one_eye(
        points, LEFT_IRIS_CENTER, LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_TOP, LEFT_EYE_BOTTOM
    )
    return (rx + lx) / 2, (ry + ly) / 2


def gaze_on_camera(pose: HeadPose, iris_offset: tuple[float, float], settings: Settings) -> bool:
    """Head within the eye-contact cone and the irises where looking at the lens puts them."""
    if abs(pose.yaw_deg) > settings.cues.eye_contact_max_yaw_deg:
        return False
    if abs(pose.pitch_deg) > settings.cues.eye_contact_max_pitch_deg:
        return False
    expected_x = -settings.cues.eye_contact_iris_per_yaw * math.sin(math.radians(pose.yaw_deg))
    return abs(iris_offset[0] - expected_x) <= settings.cues.eye_contact_max_iris_offset


def face_observation_from_landmarks(
    points: np.ndarray, width: int, height: int, settings: Settings
) -> FaceObservation:
    """Everything the face stage reports, from landmarks in pixel units (N x 3)."""
    pose = head_pose_from_landmarks(points)
    iris = iris_offset_from_landmarks(points)
    xy = points[:, :2]
    x0, y0 = np.floor(xy.min(axis=0))
    x1, y1 = np.ceil(xy.max(axis=0))
    x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
    x1, y1 = min(float(width), float(x1)), min(float(height), float(y1))
    return FaceObservation(
        found=True,
        yaw_deg=pose.yaw_deg,
        pitch_deg=pose.pitch_deg,
        roll_deg=pose.roll_deg,
        gaze_on_camera=gaze_on_camera(pose, iris, settings),
        iris_offset=iris,
        face_width_ratio=float(xy[:, 0].max() - xy[:, 0].min()) / width,
        bbox=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
        landmarks=xy.astype(np.float32),
    )


def landmarks_to_pixels(landmarks: Any, width: int, height: int) -> np.ndarray:
    """MediaPipe NormalizedLandmarkList -> N x 3 array (x, y in pixels; z scaled like x)."""
    return np.array(
        [(lm.x * width, lm.y * height, lm.z * width) for lm in landmarks.landmark],
        dtype=np.float64,
    )


class FaceAnalyzer:
    """One FaceMesh graph. Not thread-safe: one call at a time, frames in time order."""

    def __init__(self, settings: Settings, *, static_images: bool = False) -> None:
        import mediapipe as mp  # heavy import, kept out of module import time

        self._settings = settings
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_images,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def analyze(self, rgb: np.ndarray) -> FaceObservation:
        """`rgb`: H x W x 3 uint8 RGB, contiguous."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(rgb)
        faces = result.multi_face_landmarks
        if not faces:
            return FaceObservation(found=False)
        points = landmarks_to_pixels(faces[0], width, height)
        try:
            return face_observation_from_landmarks(points, width, height, self._settings)
        except ValueError:  # collapsed landmarks on a degenerate detection: treat as lost
            return FaceObservation(found=False)

    def warm_up(self, rgb: np.ndarray) -> None:
        self._mesh.process(rgb)

    def forget(self, blank_rgb: np.ndarray) -> None:
        """Drop the tracked face, so the next frame starts with a fresh detection. A frame with
        nobody in it ends the tracking (FaceMesh has no smoothing to carry over); restarting
        the graph with `reset()` instead fragments the heap like building a new one (measured
        +70 MiB over 40 restarts, still climbing)."""
        self._mesh.process(blank_rgb)

    def close(self) -> None:
        self._mesh.close()
