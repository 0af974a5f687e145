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
where FaceMesh's iris estimate is still trustworthy.

Looking down at notes shows in the lids before the head: the upper lid falls toward the line
between the eye corners and the lid gap narrows, while the iris rides high between the lids.
`gaze_direction` reads those (with head pitch) into camera/down/up/left/right/closed; a
session's `GazeTracker` adds the presenter's own baseline and lets blinks pass. Thresholds were
set on the tune split of real photos that packages ship (tests/fixtures/gaze_photos.py), and
two rules of 2026-12-06 (a low upper lid over an open gap, a head turned and pitched down) on
all faces of the first five rounds; held-out numbers in BENCHMARKS.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.analysis.person import PersonSegmenter
from app.config import Settings
from app.frames import EyeMeasures, FaceObservation, GazeCalibration, GazeDirection

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


def _one_eye(
    points: np.ndarray, iris: int, corner_a: int, corner_b: int, top: int, bottom: int
) -> tuple[float, float, float, float]:
    a, b = points[corner_a, :2], points[corner_b, :2]
    width = float(np.linalg.norm(b - a))
    if width < 1e-6:
        raise ValueError("degenerate eye: zero width")
    along = (b - a) / width
    if along[0] < 0:  # measure toward image right whichever corner comes first
        along = -along
    across = np.array([-along[1], along[0]])  # toward image down
    mid = (a + b) / 2
    iris_xy = points[iris, :2]
    dx = float((iris_xy - mid) @ along) / width
    lid_top, lid_bottom = points[top, :2], points[bottom, :2]
    gap = float(np.linalg.norm(lid_top - lid_bottom))
    dy = float((iris_xy - (lid_top + lid_bottom) / 2) @ across) / max(gap, 1e-6)
    upper = -float((lid_top - mid) @ across) / width
    return dx, dy, upper, gap / width


def eye_measures_from_landmarks(points: np.ndarray) -> EyeMeasures:
    """Iris offsets and lid measures of both eyes, averaged."""
    if len(points) < REFINED_LANDMARK_COUNT:
        raise ValueError("iris landmarks need FaceMesh(refine_landmarks=True)")
    right = _one_eye(
        points, RIGHT_IRIS_CENTER, RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_TOP, RIGHT_EYE_BOTTOM
    )
    left = _one_eye(
        points, LEFT_IRIS_CENTER, LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_TOP, LEFT_EYE_BOTTOM
    )
    return EyeMeasures(*((r + lf) / 2 for r, lf in zip(right, left, strict=True)))


def iris_offset_from_landmarks(points: np.ndarray) -> tuple[float, float]:
    """Mean iris offset from the eye centre: x in eye widths (+ = image right), y in lid gaps
    from the lids' midpoint (+ = image down; the lids move more than the iris, so looking down
    reads negative and looking up positive)."""
    eyes = eye_measures_from_landmarks(points)
    return eyes.iris_x, eyes.iris_y


def gaze_on_camera(pose: HeadPose, iris_offset: tuple[float, float], settings: Settings) -> bool:
    """Head within the eye-contact cone and the irises where looking at the lens puts them
    sideways (the horizontal half of `gaze_direction`)."""
    return _sideways(pose, iris_offset[0], settings) is None and (
        abs(pose.pitch_deg) <= settings.cues.eye_contact_max_pitch_deg
    )


# What a face looking at the lens typically measures (medians of the `camera` faces of the
# tune split, tests/fixtures/gaze_photos.py): a calibration scales the lid thresholds by the
# presenter's own values over these, and shifts the iris and pitch limits by the difference.
TYPICAL_UPPER_LID = 0.224
TYPICAL_OPENNESS = 0.37
TYPICAL_IRIS_Y = -0.03


@dataclass(frozen=True, slots=True)
class GazeBaseline:
    """A presenter's own measures while looking at the camera (see `GazeTracker`)."""

    upper_lid: float
    openness: float
    iris_y: float
    pitch_deg: float


def _sideways(pose: HeadPose, iris_x: float, settings: Settings) -> GazeDirection | None:
    """`left`/`right` (the presenter's own: their left is image right) where the head is turned
    past the cone or the irises sit off where looking at the lens from this yaw puts them."""
    cues = settings.cues
    if abs(pose.yaw_deg) > cues.eye_contact_max_yaw_deg:
        return "left" if pose.yaw_deg > 0 else "right"
    off = iris_x + cues.eye_contact_iris_per_yaw * math.sin(math.radians(pose.yaw_deg))
    if abs(off) > cues.eye_contact_max_iris_offset:
        return "left" if off > 0 else "right"
    return None


def _down_and_aside(yaw_deg: float, pitch_deg: float, settings: Settings) -> bool:
    """A head pitched well down while turned looks at something below and to one side (a
    laptop beside the notes): down, unless the turn is much the larger of the two, each
    measured against its own cone. A frontal head is not turned: its eyes glancing sideways
    stay a sideways look."""
    cues = settings.cues
    if pitch_deg >= -cues.gaze_down_aside_min_pitch_deg:
        return False
    if abs(yaw_deg) <= cues.gaze_down_aside_min_yaw_deg:
        return False
    turn = abs(yaw_deg) / cues.eye_contact_max_yaw_deg
    drop = -pitch_deg / cues.eye_contact_max_pitch_deg
    return turn < cues.gaze_down_aside_max_turn * drop


def _own_look_down(
    eyes: EyeMeasures, pitch_from_baseline: float, baseline: GazeBaseline, settings: Settings
) -> bool:
    """The presenter's upper lid fallen well under its own calibrated height while their head
    drops well under its calibrated pitch: a look down that the shared marks, set across many
    faces, miss when both move only a little (a keyboard or notes just under the camera)."""
    cues = settings.cues
    return (
        eyes.upper_lid < cues.gaze_calibrated_down_lid_ratio * baseline.upper_lid
        and pitch_from_baseline < -cues.gaze_calibrated_down_pitch_deg
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def gaze_direction(
    pose: HeadPose, eyes: EyeMeasures, settings: Settings, baseline: GazeBaseline | None = None
) -> GazeDirection:
    """Where one frame's eyes point (see `gaze_reading`)."""
    return gaze_reading(pose, eyes, settings, baseline)[0]


def gaze_reading(
    pose: HeadPose, eyes: EyeMeasures, settings: Settings, baseline: GazeBaseline | None = None
) -> tuple[GazeDirection, bool]:
    """Where one frame's eyes point, and whether that rests on lowered lids (every reading of
    step 1 but a head pitched down past the cone, and step 4): a blink passes through them, so
    `GazeTracker` holds such readings for `gaze_blink_s`. In order:

    1. Lowered lids (upper lid under `gaze_low_upper_lid` eye widths above the corner line, or
       the lid gap under `gaze_low_openness` eye widths): `down` where the iris sits high
       between the lids (`iris_y` <= -`gaze_down_iris_y`), the head is pitched down past the
       cone or the gap between the lids is still open (only the upper lid is low), else
       `closed`. But for the pitched head none of these is a change of gaze until
       `GazeTracker` has seen it last: a blink lowers the upper lid before it closes the gap,
       and FaceMesh draws a shut eye's iris high, at the upper lid.
    2. Head turned past the yaw cone, or irises off the lens sideways: `left`/`right`, but
       `down` where the head is turned past `gaze_down_aside_min_yaw_deg` (no longer
       frontal) and pitched down past `gaze_down_aside_min_pitch_deg`, and the turn is under
       `gaze_down_aside_max_turn` times the drop (each over its cone).
    3. Head pitched down past the cone: `down`.
    4. With a `baseline`: the upper lid under `gaze_calibrated_down_lid_ratio` of its
       calibrated height with the head pitched down more than
       `gaze_calibrated_down_pitch_deg` from its calibrated pitch: `down` (resting on the
       lids, as step 1's readings: a blink with a nod passes).
    5. Head pitched up past the cone, or irises high under raised lids
       (`iris_y` >= `gaze_up_iris_y`): `up`.
    6. Otherwise `camera`.

    A `baseline` scales the lid thresholds by the presenter's own lids over the typical ones
    and shifts the iris and pitch limits by their offset, each within bounds, so a camera
    below eye level does not read as `down`, and enables step 4.
    """
    cues = settings.cues
    lid_scale, iris_shift, pitch_shift = 1.0, 0.0, 0.0
    if baseline is not None:
        lid_scale = _clamp(baseline.upper_lid / TYPICAL_UPPER_LID, 0.5, 1.5)
        open_scale = _clamp(baseline.openness / TYPICAL_OPENNESS, 0.5, 1.5)
        iris_shift = _clamp(baseline.iris_y - TYPICAL_IRIS_Y, -0.1, 0.1)
        limit = cues.gaze_calibration_max_pitch_shift_deg
        pitch_shift = _clamp(baseline.pitch_deg, -limit, limit)
    else:
        open_scale = 1.0
    iris_y = eyes.iris_y - iris_shift
    pitch = pose.pitch_deg - pitch_shift
    head_down = pitch < -cues.eye_contact_max_pitch_deg
    lowered = (
        eyes.upper_lid < cues.gaze_low_upper_lid * lid_scale
        or eyes.openness < cues.gaze_low_openness * open_scale
    )
    if lowered:
        if head_down:
            return "down", False
        if iris_y <= -cues.gaze_down_iris_y:
            # lowered lids over irises high between them: a look down, or a blink, whose shut
            # lids FaceMesh draws with the irises at the upper lid
            return "down", True
        # Shut eyes close the gap between the lids; an upper lid lowered over a gap still open
        # is an eye looking down, dragging its lids with it.
        shut = eyes.openness < cues.gaze_low_openness * open_scale
        return ("closed" if shut else "down"), True
    side = _sideways(pose, eyes.iris_x, settings)
    if side is not None:
        return ("down" if _down_and_aside(pose.yaw_deg, pitch, settings) else side), False
    if head_down:
        return "down", False
    if baseline is not None and _own_look_down(eyes, pitch, baseline, settings):
        # on the lids, as step 1: a blink with a nod passes
        return "down", True
    if pitch > cues.eye_contact_max_pitch_deg or iris_y >= cues.gaze_up_iris_y:
        return "up", False
    return "camera", False


# A camera below eye level lowers the head and the lids together: lowered lids count as looking
# at such a camera only with the head pitched down at least this much (and no further than a
# baseline may shift the cone). Lids lowered with the head level are eyes half shut.
CALIBRATION_LOW_CAMERA_MIN_PITCH_DEG = 10.0
# ... and only with the upper lid at least this share of the way from the corner line up to
# the lowered mark: eyes that look at a camera are open, and an upper lid down at the corner
# line is a shut eye (a presenter gathering themselves, head bowed, before they start).
CALIBRATION_LOW_CAMERA_MIN_LID_SHARE = 0.5


def calibration_sample(pose: HeadPose, eyes: EyeMeasures, settings: Settings) -> bool:
    """Whether a frame may teach `GazeTracker` the presenter's look at the camera: its reading
    without a baseline is `camera`, or only its lowered lids keep it from that while the head
    is pitched down toward a camera below eye level. Never a frame whose irises say down or
    up, whose gaze is sideways, whose head is turned past `gaze_calibration_max_yaw_deg` or
    pitched past `gaze_calibration_max_pitch_shift_deg`, whose lids are lowered with the
    head level (half-shut eyes, a blink) or whose upper lid is down near the corner line
    (shut eyes, whatever the head does)."""
    cues = settings.cues
    if abs(pose.yaw_deg) > cues.gaze_calibration_max_yaw_deg:
        return False
    if abs(pose.pitch_deg) > cues.gaze_calibration_max_pitch_shift_deg:
        return False
    if not -cues.gaze_down_iris_y < eyes.iris_y < cues.gaze_up_iris_y:
        return False
    reading = gaze_direction(pose, eyes, settings)
    if reading == "camera":
        return True
    # Lowered lids read `closed` (or `down`) whatever the rest says: look past them only with
    # the head lowered as a camera below eye level lowers it, and the eyes still open.
    if eyes.upper_lid < CALIBRATION_LOW_CAMERA_MIN_LID_SHARE * cues.gaze_low_upper_lid:
        return False
    level = dataclasses.replace(
        eyes,
        upper_lid=max(eyes.upper_lid, cues.gaze_low_upper_lid),
        openness=max(eyes.openness, cues.gaze_low_openness),
    )
    return (
        pose.pitch_deg <= -CALIBRATION_LOW_CAMERA_MIN_PITCH_DEG
        and gaze_direction(pose, level, settings) == "camera"
    )


# A calibration window with fewer frames that look at the camera than this is a glance, no
# baseline: the window is dropped and the next look at the camera starts another.
CALIBRATION_MIN_SAMPLES = 5

# Lids up this long end a lowered stretch (a blink's hold counts from the stretch's start);
# shorter is one frame's jitter inside it. Timestamps are media seconds at frame rates whose
# steps (1/15, 0.2) do not add up exactly in binary: compare with a little slack.
BLINK_GAP_S = 0.1
_TIME_EPSILON_S = 1e-6


class GazeTracker:
    """One session's gaze over time: a personal baseline and blinks.

    Calibration: the first `gaze_calibration_s` of media time, counted from the first frame
    that looks at the camera (`calibration_sample`), give the baseline: the median of each
    measure over the frames within them that look at the camera, once a frame (with a face or
    not) comes after them. A window with fewer than CALIBRATION_MIN_SAMPLES such frames is a
    glance and is dropped. Until then the defaults apply; a window that would start more than
    `gaze_calibration_within_s` after the session's first frame never does (`calibration`
    turns `skipped`). The page asks the presenter to look at the camera until the baseline is
    learnt (`calibration`); frames where they plainly read their notes or shut their eyes are
    left out, so such a start cannot become the baseline, but notes just under the camera,
    read with the head bowed 10-20 degrees, pass for a camera below eye level. An upload has
    no such step: it runs with `gaze_calibration_s` 0 (app/wiring.py), the defaults
    throughout.

    Blinks: readings that rest on lowered lids (`closed`, and `down` unless the head is
    pitched down past the cone: a blink reads so on FaceMesh's landmarks) count only once the
    lids have stayed lowered for `gaze_blink_s`; before that the previous direction holds.
    Not thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.baseline: GazeBaseline | None = None
        self._samples: list[tuple[float, float, float, float]] = []
        self._calibration_from: float | None = None  # the window's first look at the camera
        self._first_t: float | None = None  # the session's first frame, with a face or not
        self._skipped = False  # no first look at the camera in time
        self._shut_since: float | None = None  # the lowered stretch began (None: lids up)
        self._open_since: float | None = None  # a lowered stretch's lids rose (not yet ended)
        self._lost_since: float | None = None  # the face went missing
        self._last: GazeDirection | None = None

    def update(self, face: FaceObservation, t: float) -> FaceObservation:
        """`face` with `gaze_direction` and `gaze_on_camera` for this moment of the session,
        `gaze_frame_direction`: this frame's own reading (with the baseline), before the
        blink hold, which the cues read (their own hysteresis outlasts a blink), and
        `gaze_calibration` (where the calibration stands), with or without a face."""
        blink_s = self._settings.cues.gaze_blink_s
        if self._first_t is None:
            self._first_t = t
        if not face.found or face.eyes is None or face.yaw_deg is None or face.pitch_deg is None:
            if self._lost_since is None:
                self._lost_since = t
            self._calibrate(t, None)
            return dataclasses.replace(face, gaze_calibration=self.calibration)
        if self._lost_since is not None and t - self._lost_since > blink_s:
            # gone longer than a blink: what came before says nothing about this frame
            self._shut_since = self._open_since = self._last = None
        self._lost_since = None
        pose = HeadPose(face.yaw_deg, face.pitch_deg, face.roll_deg or 0.0)
        self._calibrate(t, (pose, face.eyes))
        raw, lids_only = gaze_reading(pose, face.eyes, self._settings, self.baseline)
        direction = raw
        if lids_only:
            self._open_since = None
            if self._shut_since is None:
                self._shut_since = t
            held = t - self._shut_since < blink_s - _TIME_EPSILON_S
            if held and self._last is not None:
                direction = self._last
        elif self._shut_since is not None:
            # one frame's open reading inside a long look down (a landmark's jitter) does not
            # end it: only lids up for BLINK_GAP_S do
            if self._open_since is None:
                self._open_since = t
            if t - self._open_since >= BLINK_GAP_S - _TIME_EPSILON_S:
                self._shut_since = self._open_since = None
        self._last = direction
        return dataclasses.replace(
            face,
            gaze_direction=direction,
            gaze_on_camera=direction == "camera",
            gaze_frame_direction=raw,
            gaze_calibration=self.calibration,
        )

    @property
    def calibration(self) -> GazeCalibration:
        """Where the session's calibration stands (what `metrics.gaze.calibration` says)."""
        if self._settings.cues.gaze_calibration_s <= 0:
            return "off"
        if self.baseline is not None:
            return "learnt"
        return "skipped" if self._skipped else "learning"

    def _calibrate(self, t: float, seen: tuple[HeadPose, EyeMeasures] | None) -> None:
        """One frame (`seen`: its head pose and eyes; None: no face) for the calibration."""
        cues = self._settings.cues
        if self.baseline is not None or self._skipped or cues.gaze_calibration_s <= 0:
            return
        sample = None  # this frame's measures, where it looks at the camera
        if seen is not None and calibration_sample(*seen, self._settings):
            pose, eyes = seen
            sample = (eyes.upper_lid, eyes.openness, eyes.iris_y, pose.pitch_deg)
        if self._calibration_from is not None:
            if t - self._calibration_from < cues.gaze_calibration_s:
                if sample is not None:
                    self._samples.append(sample)
                return
            # the window is over, whatever this frame shows: it is not part of it
            if len(self._samples) >= CALIBRATION_MIN_SAMPLES:
                columns = np.median(np.array(self._samples), axis=0)
                self.baseline = GazeBaseline(*(float(v) for v in columns))
                self._samples = []
                return
            self._calibration_from, self._samples = None, []  # a glance: wait for a look
        if self._first_t is not None and t - self._first_t > cues.gaze_calibration_within_s:
            self._skipped = True  # no look at the camera in time: the defaults for the session
            return
        if sample is not None:
            self._calibration_from, self._samples = t, [sample]


def face_observation_from_landmarks(
    points: np.ndarray, width: int, height: int, settings: Settings
) -> FaceObservation:
    """Everything the face stage reports, from landmarks in pixel units (N x 3). The gaze
    direction is one frame's, without a baseline (`GazeTracker` adds the session's)."""
    pose = head_pose_from_landmarks(points)
    eyes = eye_measures_from_landmarks(points)
    direction = gaze_direction(pose, eyes, settings)
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
        gaze_on_camera=direction == "camera",
        gaze_direction=direction,
        gaze_frame_direction=direction,
        iris_offset=(eyes.iris_x, eyes.iris_y),
        eyes=eyes,
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
    """One FaceMesh graph. Not thread-safe: one call at a time, frames in time order.

    A frame without a face is also asked whether a person covers the middle of it
    (`FaceObservation.person_share`, app/analysis/person.py), by `segmenter` where given (a
    face worker's graphs share one; the caller closes it), else by one of its own."""

    def __init__(
        self,
        settings: Settings,
        *,
        static_images: bool = False,
        segmenter: PersonSegmenter | None = None,
    ) -> None:
        import mediapipe as mp  # heavy import, kept out of module import time

        self._settings = settings
        self._own_segmenter = segmenter is None
        self._segmenter = PersonSegmenter() if segmenter is None else segmenter
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
        if faces:
            points = landmarks_to_pixels(faces[0], width, height)
            try:
                return face_observation_from_landmarks(points, width, height, self._settings)
            except ValueError:  # collapsed landmarks on a degenerate detection: treat as lost
                pass
        return FaceObservation(found=False, person_share=self._segmenter.middle_share(rgb))

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
        if self._own_segmenter:
            self._segmenter.close()
