"""Raw per-frame cue conditions."""

from __future__ import annotations

import dataclasses

import numpy as np

from app.analysis.conditions import ConditionState, face_in_middle, frame_conditions
from app.coaching.chain import StageChain
from app.config import Settings
from app.frames import (
    VIDEO_CUES,
    FaceObservation,
    FrameAnalysis,
    GestureObservation,
    PoseObservation,
)

SETTINGS = Settings()


def _analysis(
    t: float = 0.0,
    face: FaceObservation | None = None,
    pose: PoseObservation | None = None,
    activity: float | None = 0.5,
    sway: float | None = 0.01,
) -> FrameAnalysis:
    return FrameAnalysis(
        index=0,
        t=t,
        arrived_at=0.0,
        width=640,
        height=480,
        face=face
        or FaceObservation(found=True, roll_deg=2.0, gaze_on_camera=True, face_width_ratio=0.2),
        pose=pose or PoseObservation(found=True, shoulder_tilt_deg=1.0, head_tilt_deg=2.0),
        gesture=GestureObservation(hands_visible=2, activity=activity),
        sway=sway,
    )


def test_a_good_frame_raises_nothing() -> None:
    conditions = frame_conditions(_analysis(), SETTINGS, ConditionState())
    assert set(conditions) == set(VIDEO_CUES)
    assert not any(conditions.values())
    assert all(v is False for v in conditions.values())


def test_no_face_means_face_lost_and_face_cues_unknown() -> None:
    c = frame_conditions(
        _analysis(
            face=FaceObservation(found=False),
            pose=PoseObservation(found=False),
            activity=None,
            sway=None,
        ),
        SETTINGS,
        ConditionState(),
    )
    assert c["face_lost"] is True
    for cue in ("eye_contact", "too_close", "too_far", "head_tilt", "posture", "sway"):
        assert c[cue] is None, cue
    assert c["gesture_none"] is None and c["gesture_excess"] is None


def test_face_conditions() -> None:
    looking_away = FaceObservation(
        found=True, roll_deg=20.0, gaze_on_camera=False, face_width_ratio=0.6
    )
    c = frame_conditions(_analysis(face=looking_away), SETTINGS, ConditionState())
    assert c["eye_contact"] and c["head_tilt"] and c["too_close"]
    assert c["too_far"] is False
    far = FaceObservation(found=True, roll_deg=0.0, gaze_on_camera=True, face_width_ratio=0.05)
    assert frame_conditions(_analysis(face=far), SETTINGS, ConditionState())["too_far"] is True


def test_head_tilt_falls_back_to_the_ears_without_roll() -> None:
    face = FaceObservation(found=False)
    pose = PoseObservation(found=True, shoulder_tilt_deg=15.0, head_tilt_deg=-20.0)
    c = frame_conditions(_analysis(face=face, pose=pose), SETTINGS, ConditionState())
    assert c["head_tilt"] is True and c["posture"] is True


def test_gesture_none_only_after_the_hands_stay_still_long_enough() -> None:
    state = ConditionState()
    after = SETTINGS.cues.gesture_none_after_s
    assert frame_conditions(_analysis(0.0, activity=0.0), SETTINGS, state)["gesture_none"] is False
    c = frame_conditions(_analysis(after - 0.1, activity=0.0), SETTINGS, state)
    assert c["gesture_none"] is False
    assert frame_conditions(_analysis(after, activity=0.0), SETTINGS, state)["gesture_none"]
    # One gesture resets the clock.
    assert (
        frame_conditions(_analysis(after + 1, activity=1.0), SETTINGS, state)["gesture_none"]
        is False
    )
    c = frame_conditions(_analysis(after + 2, activity=0.0), SETTINGS, state)
    assert c["gesture_none"] is False


def test_excess_gesture_and_sway() -> None:
    c = frame_conditions(_analysis(activity=5.0, sway=0.3), SETTINGS, ConditionState())
    assert c["gesture_excess"] is True and c["sway"] is True


def _face_lost_on(
    frames: list[tuple[FaceObservation, PoseObservation]], pose_lag_s: float = 0.0
) -> list[bool | None]:
    """`hidden` of each `face_lost` turning on, over frames 0.1 s apart through the chain,
    each frame's Pose result from `pose_lag_s` before it."""
    chain = StageChain(SETTINGS, frame_conditions, ConditionState)
    image = np.zeros((480, 640, 3), np.uint8)
    out = []
    for i, (face, pose) in enumerate(frames):
        a = dataclasses.replace(
            _analysis(t=i / 10, face=face, pose=pose), pose_t=i / 10 - pose_lag_s
        )
        step = chain.step(a, image)
        out += [tr.hidden for tr in step.transitions if tr.cue == "face_lost" and tr.state == "on"]
    return out


def test_a_face_lost_in_the_middle_of_the_frame_or_with_the_body_in_view_is_hidden() -> None:
    """`face_lost` turning on says hidden (head bowed or turned away) where the face was last
    seen in the middle of the frame or Pose still sees the presenter in view; out of view
    where it was last seen at an edge and Pose sees nobody, where Pose sees a presenter too far
    back, or where it was never seen at all."""
    middle = FaceObservation(found=True, bbox=(280, 150, 80, 100), face_width_ratio=0.125)
    at_edge = FaceObservation(found=True, bbox=(540, 150, 80, 100), face_width_ratio=0.125)
    gone, nobody = FaceObservation(found=False), PoseObservation(found=False)
    in_view = PoseObservation(found=True, shoulder_tilt_deg=0.0, shoulder_width=0.3, in_view=True)
    far = PoseObservation(found=True, shoulder_tilt_deg=0.0, shoulder_width=0.1)
    lost = 30  # 3 s, past the cue's hold
    assert SETTINGS.cues.cue_hold_s < 3
    assert _face_lost_on([(middle, nobody)] * 10 + [(gone, nobody)] * lost) == [True]
    assert _face_lost_on([(at_edge, nobody)] * 10 + [(gone, nobody)] * lost) == [False]
    assert _face_lost_on([(at_edge, nobody)] * 10 + [(gone, in_view)] * lost) == [True]
    assert _face_lost_on([(gone, nobody)] * lost) == [False]
    # shoulders too close together for a presenter hiding the face: one standing far back
    assert _face_lost_on([(middle, nobody)] * 10 + [(gone, far)] * lost) == [False]
    # Pose flickers: seeing the presenter in view on one of its results in three is not enough
    flicker = [(gone, in_view), (gone, nobody), (gone, nobody)] * (lost // 3)
    assert _face_lost_on([(at_edge, nobody)] * 10 + flicker) == [False]
    # ... and a Pose result from before the face was lost does not count (a Pose lane that
    # has published nothing newer, a hung worker): here every one is 4 s old
    frames = [(at_edge, in_view)] * 10 + [(gone, in_view)] * lost
    assert _face_lost_on(frames, pose_lag_s=0.0) == [True]
    assert _face_lost_on(frames, pose_lag_s=4.0) == [False]
    # the last face seen counts: in the middle, then carried to the edge, then gone
    frames = [(middle, nobody)] * 10 + [(at_edge, nobody)] * 3 + [(gone, nobody)] * lost
    assert _face_lost_on(frames) == [False]


def _lost_frames_said(frames: list[tuple[FaceObservation, PoseObservation]]) -> list[str]:
    """What the chain hands its observers on each frame, 0.1 s apart: "face", or for a lost
    frame its `face_hidden` ("-" before the cue turns on, "H" hidden, "o" out of view)."""
    chain = StageChain(SETTINGS, frame_conditions, ConditionState)
    image = np.zeros((480, 640, 3), np.uint8)
    out = []
    for i, (face, pose) in enumerate(frames):
        a = chain.step(_analysis(t=i / 10, face=face, pose=pose), image).analysis
        out.append("face" if a.face.found else {None: "-", True: "H", False: "o"}[a.face_hidden])
    return out


def test_lost_frames_hidden_until_nobody_has_been_there_for_the_hold() -> None:
    """While `face_lost` says hidden, its lost frames are out of view for the report and the
    critiques once the segmentation has seen nobody in the frame's middle for the cue's hold
    (1.5 s) with Pose not seeing the presenter in view either; a face found again clears that,
    so a second bow before the cue turns off is hidden again."""
    middle = FaceObservation(found=True, bbox=(280, 150, 80, 100), face_width_ratio=0.125)
    bowed = FaceObservation(found=False, person_share=0.8)
    empty = FaceObservation(found=False, person_share=0.0)
    nobody = PoseObservation(found=False)
    in_view = PoseObservation(found=True, shoulder_tilt_deg=0.0, shoulder_width=0.3, in_view=True)
    said = _lost_frames_said(
        [(middle, nobody)] * 10  # 1 s facing the camera
        + [(bowed, nobody)] * 25  # 2.5 s bowed: the cue turns on after 1.5 s, hidden
        + [(empty, nobody)] * 20  # 2 s gone: out of view once 1.5 s has passed
        + [(middle, nobody)] * 5  # back for 0.5 s: the cue stays on (its hold)
        + [(bowed, nobody)] * 20  # bowed again: hidden, as the cue said
    )
    assert said[:10] == ["face"] * 10
    assert said[10:35] == ["-"] * 15 + ["H"] * 10
    assert said[35:55] == ["H"] * 15 + ["o"] * 5
    assert said[55:60] == ["face"] * 5
    assert said[60:] == ["H"] * 20
    # Pose seeing the presenter in view outranks a segmentation that sees nobody (an
    # off-centre presenter): hidden throughout, as `face_lost` said it
    said = _lost_frames_said([(middle, nobody)] * 10 + [(empty, in_view)] * 40)
    assert said[10:] == ["-"] * 15 + ["H"] * 25


def test_face_in_middle_leaves_out_the_bottom_edge() -> None:
    assert face_in_middle((280, 150, 80, 100), 640, 480)
    assert face_in_middle((140, 150, 80, 100), 640, 480)  # a third of the way across
    assert not face_in_middle((100, 150, 80, 100), 640, 480)  # near the left side
    assert not face_in_middle((440, 150, 80, 100), 640, 480)  # near the right side
    assert not face_in_middle((280, 15, 80, 100), 640, 480)  # near the top
    assert face_in_middle((280, 380, 80, 100), 640, 480)  # chin at the bottom: near the camera
