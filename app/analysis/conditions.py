"""Raw per-frame condition of each video cue: True = the problem is present now, False = not,
None = cannot be measured on this frame. The cue engine adds hysteresis on top."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from app.analysis.pose import IN_VIEW_MIN_SHOULDER_WIDTH
from app.config import Settings
from app.frames import VIDEO_CUES, CueName, FrameAnalysis


@dataclass(slots=True)
class ConditionState:
    """The little memory the conditions need: when the hands last moved (`gesture_none`), and
    where the face was last seen (`face_lost`). One per session, owned by the caller and
    updated by `frame_conditions`."""

    still_since: float | None = None  # media time the hands became (or were first seen) still
    # the last face found sat well inside the frame (`face_in_middle`): one lost from there
    # was hidden (a head bowed or turned), not carried past the frame's edge
    face_last_in_middle: bool = False
    face_lost_at: float | None = None  # media time of the first frame without a face, if lost
    # the Pose results since then (each counted once, none from a frame before the loss)
    poses_since_loss: int = 0
    poses_in_view: int = 0  # ... that saw the presenter in view
    poses_far: int = 0  # ... that saw shoulders too close together: a presenter far back
    last_pose_t: float | None = None
    # the frames since then that the face stage asked whether a person is in the middle
    # (`FaceObservation.person_share`), and those where one was
    people_measured: int = 0
    people_in_middle: int = 0
    # media time since which every frame without a face that the face stage measured had
    # nobody in the middle of the frame, and no Pose result saw the presenter in view (None:
    # somebody on the latest, or none measured); Pose in view outranks the segmentation, as
    # in `face_hidden`
    nobody_since: float | None = None

    def face_hidden(self) -> bool:
        """Whether the face lost now is hidden in the frame (head bowed or turned away) rather
        than out of it: Pose saw the presenter in view on at least half of its results since
        the loss; else not where most of them saw a presenter standing far back, nor where
        the face stage saw nobody in the middle of the frame on most frames since the loss
        (`PERSON_MIN_MIDDLE_SHARE`); else where the face was last seen in the middle of the
        frame. Votes, not the latest result: Pose
        flickers (on a steep bow under a cap's brim it sees the presenter in view on a few
        frames, and on a walk out of the frame on one or two), and its latest result may be
        older than the loss."""
        seen = self.poses_since_loss
        if seen and 2 * self.poses_in_view >= seen:
            return True
        if seen and 2 * self.poses_far > seen:
            return False
        if self.people_measured and 2 * self.people_in_middle < self.people_measured:
            # nobody in the middle of the frame on most of them: an empty room, a covered
            # camera, a cut to another scene, someone too far back (app/analysis/person.py)
            return False
        return self.face_last_in_middle

    def nobody_left(self, t: float, hold_s: float) -> bool:
        """Whether, at media time `t`, the face stage has seen nobody in the middle of the frame
        on every frame for `hold_s`, and Pose has not seen the presenter in view in that time
        (a presenter hidden when the face was lost has left the frame since). The person
        segmentation flickers on some hidden faces (a head turned away, ocv_left06 of
        bench/face_hidden.py: under `PERSON_MIN_MIDDLE_SHARE` on a few frames in a row, at 15
        a second), never for long."""
        return self.nobody_since is not None and t - self.nobody_since >= hold_s

    def observe_face(self, a: FrameAnalysis) -> None:
        """One frame: where its face is, or, with none, what the face stage and Pose saw
        since the face was lost."""
        face, pose = a.face, a.pose
        if face.found:
            self.face_lost_at = self.nobody_since = None
            if face.bbox is not None:
                self.face_last_in_middle = face_in_middle(face.bbox, a.width, a.height)
            return
        if self.face_lost_at is None:
            self.face_lost_at = a.t
            self.poses_since_loss = self.poses_in_view = self.poses_far = 0
            self.people_measured = self.people_in_middle = 0
            self.nobody_since = None
        if face.person_share is not None:
            somebody = face.person_share >= PERSON_MIN_MIDDLE_SHARE
            self.people_measured += 1
            self.people_in_middle += somebody
            if somebody:
                self.nobody_since = None
            elif self.nobody_since is None:
                self.nobody_since = a.t
        pose_t = a.t if a.pose_t is None else a.pose_t
        if pose_t < self.face_lost_at or pose_t == self.last_pose_t:
            return
        self.last_pose_t = pose_t
        self.poses_since_loss += 1
        self.poses_in_view += pose.in_view
        if pose.in_view:  # Pose sees the presenter in the frame: somebody is there
            self.nobody_since = None
        width = pose.shoulder_width
        self.poses_far += width is not None and width < IN_VIEW_MIN_SHOULDER_WIDTH


# A face at least this share of the frame's width inside both sides, and this share of its
# height below the top, is in the middle of it. A presenter leaving the frame takes the face
# past an edge: on the test clips' presenters sliding out sideways in 1.5 s (fast: a brisk
# walk; measured once by hand, 2026-12-06, bench/face_hidden.py gives the outcome, not these
# distances), the last face FaceMesh finds is 0-106 px from the side of a 640 px frame when the
# analysis keeps 3 to 15 of the clip's 15 frames a second (tracking loses a fast face before
# the edge when frames are dropped); a presenter facing the camera, centred, 238-247 px, and a
# third of the way across, ~160. The bottom edge does not count: a presenter near the camera
# has the chin near it, and nobody leaves through it but by ducking under the camera.
FACE_MIDDLE_MIN_SIDE = 0.2
FACE_MIDDLE_MIN_TOP = 0.05


def face_in_middle(bbox: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether a face box (x, y, w, h in pixels) lies well inside a `width` x `height` frame's
    sides and top."""
    x, y, w, _ = bbox
    return (
        min(x, width - (x + w)) >= FACE_MIDDLE_MIN_SIDE * width
        and y >= FACE_MIDDLE_MIN_TOP * height
    )


# A person covering at least this share of the frame's middle is there (app/analysis/person.py):
# the face-lost photos of bench/face_hidden.py cover 0.5-0.99 of it, presenters walking out
# 0.1-0.3 as the face goes (the last face's place rules those out first), presenters so far
# back that FaceMesh misses them (the test clips' at 0.35 and 0.3 of their size; Pose's
# shoulders rule those out first) 0-0.1, an empty room or a dark frame 0. Chosen on those same
# inputs, 2026-12-06.
PERSON_MIN_MIDDLE_SHARE = 0.15


# The stage as the live loop and the upload take it (`frame_conditions` below; tests may swap it).
FrameConditions: TypeAlias = Callable[
    [FrameAnalysis, Settings, ConditionState], Mapping[CueName, bool | None]
]


def frame_conditions(
    a: FrameAnalysis, settings: Settings, state: ConditionState
) -> dict[CueName, bool | None]:
    face, pose, gesture = a.face, a.pose, a.gesture
    out: dict[CueName, bool | None] = dict.fromkeys(VIDEO_CUES)

    out["face_lost"] = not face.found
    state.observe_face(a)
    if face.found:
        # this frame's own reading: the cue's hysteresis (cue_hold_s) outlasts a blink, so a
        # blink hold on top would only delay it (see GazeTracker)
        if face.gaze_frame_direction is not None:
            out["eye_contact"] = face.gaze_frame_direction != "camera"
        elif face.gaze_on_camera is not None:
            out["eye_contact"] = not face.gaze_on_camera
        if face.face_width_ratio is not None:
            out["too_close"] = face.face_width_ratio > settings.cues.too_close_face_ratio
            out["too_far"] = face.face_width_ratio < settings.cues.too_far_face_ratio

    # FaceMesh's eye line is the sharper head-tilt measure; the ears stand in without a face.
    roll = face.roll_deg if face.found and face.roll_deg is not None else pose.head_tilt_deg
    if roll is not None:
        out["head_tilt"] = abs(roll) > settings.cues.head_tilt_max_deg

    if pose.found and pose.shoulder_tilt_deg is not None:
        out["posture"] = abs(pose.shoulder_tilt_deg) > settings.cues.shoulder_tilt_max_deg

    if gesture.activity is None:
        state.still_since = None
    else:
        out["gesture_excess"] = gesture.activity > settings.cues.gesture_excess_activity
        if gesture.activity >= settings.cues.gesture_min_activity:
            state.still_since = None
            out["gesture_none"] = False
        else:
            if state.still_since is None:
                state.still_since = a.t
            out["gesture_none"] = a.t - state.still_since >= settings.cues.gesture_none_after_s

    if a.sway is not None:
        out["sway"] = a.sway > settings.cues.sway_max
    return out
