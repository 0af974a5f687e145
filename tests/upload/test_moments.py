"""The moment picker alone, with synthetic analyses: on-transitions and worst frames,
de-duplicated and capped; and the feedback and critique windows made from its moments."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np

from app.analysis.conditions import ConditionState, frame_conditions
from app.coaching.chain import StageChain
from app.coaching.critic import RulesCritic
from app.config import Settings
from app.frames import (
    CueName,
    CueTransition,
    FaceObservation,
    FrameAnalysis,
    GestureObservation,
    PoseObservation,
)
from app.media.images import fit_within
from app.upload.analyze import Moment, MomentPicker
from app.upload.feedback import FEEDBACK_KEYS, critique_moments, format_timestamp, table_text

IMAGE = np.zeros((4, 4, 3), np.uint8)


def analysis(t: float) -> FrameAnalysis:
    return FrameAnalysis(
        index=int(t * 5),
        t=t,
        arrived_at=0.0,
        width=4,
        height=4,
        face=FaceObservation(True),
        pose=PoseObservation(False),
        gesture=GestureObservation(0, None),
    )


def run(
    picker: MomentPicker, flagged_at: dict[CueName, list[tuple[float, float]]], end: float
) -> None:
    """Frames every 0.2 s through the stage chain (1.5 s cue hold), with conditions that hold
    over the given spans, into the picker."""

    def conditions(a: FrameAnalysis, _settings: Settings, _state: object) -> dict[CueName, bool]:
        return {cue: any(s <= a.t < e for s, e in spans) for cue, spans in flagged_at.items()}

    chain = StageChain(Settings(_env_file=None, cue_hold_s=1.5), conditions, object)  # type: ignore[arg-type]
    t = 0.0
    while t <= end:
        frame = analysis(t)
        picker.observe(frame, IMAGE, frame.index, chain.step(frame, IMAGE))
        t = round(t + 0.2, 3)


def test_one_episode_gives_one_card_inside_it() -> None:
    picker = MomentPicker(max_moments=10, min_gap_s=3.0)
    run(picker, {"head_tilt": [(3.0, 7.0)], "eye_contact": []}, end=10.0)
    moments = picker.pick()
    assert len(moments) == 1  # the on-transition and the episode's worst frame are one card
    assert 3.0 <= moments[0].t < 7.0 and moments[0].cues == ("head_tilt",)


def test_worst_frame_has_most_cues_and_cap_holds() -> None:
    picker = MomentPicker(max_moments=2, min_gap_s=2.0)
    spans = {
        "head_tilt": [(1.0, 20.0)],
        "eye_contact": [(10.0, 12.0), (30.0, 33.0), (50.0, 53.0)],
        "posture": [(10.5, 11.5)],
    }
    run(picker, spans, end=60.0)
    moments = picker.pick()
    assert len(moments) == 2
    assert [m.t for m in moments] == sorted(m.t for m in moments)
    # the frame where three cues were flagged at once ranks first
    assert any({"head_tilt", "eye_contact", "posture"} <= set(m.cues) for m in moments)


def test_nothing_flagged_nothing_picked() -> None:
    picker = MomentPicker(max_moments=5, min_gap_s=2.0)
    run(picker, {"head_tilt": []}, end=10.0)
    assert picker.pick() == []


def test_helpers() -> None:
    assert fit_within(1920, 1080, 640, 640) == (640, 360)
    assert fit_within(641, 481, 640, 640, even=True) == (640, 480)
    assert fit_within(320, 240, 640, 640) == (320, 240)
    assert format_timestamp(0.4) == "0m 0s" and format_timestamp(125.9) == "2m 5s"
    text = table_text(["head_tilt", "posture", "eye_contact"], "ko")
    assert set(text) == set(FEEDBACK_KEYS)
    assert "고개" in text["posture_body"]["improvement"]
    assert "어깨" in text["posture_body"]["improvement"]
    assert text["movement"]["improvement"] and text["gaze_processing"]["recommendations"]


def test_a_cards_text_says_what_its_live_cue_said() -> None:
    """An upload's feedback cards word a cue as the live cue turned on (the chain's own
    conditions, as the upload runs them): a face lost in the middle of the frame is hidden
    (head bowed or turned), a look down says down; a face carried past the frame's edge keeps
    the plain 'step back into the frame'."""
    settings = Settings(_env_file=None, cue_hold_s=1.5)
    chain = StageChain(settings, frame_conditions, ConditionState)
    picker = MomentPicker(max_moments=10, min_gap_s=3.0)
    image = np.zeros((480, 640, 3), np.uint8)
    middle = FaceObservation(
        True, bbox=(280, 150, 80, 100), gaze_on_camera=True, gaze_frame_direction="camera"
    )
    down = dataclasses.replace(middle, gaze_on_camera=False, gaze_frame_direction="down")
    at_edge = dataclasses.replace(middle, bbox=(560, 150, 80, 100))
    gone = FaceObservation(False)
    spans = [(middle, 4.0), (down, 4.0), (middle, 4.0), (gone, 4.0), (middle, 4.0)]
    spans += [(at_edge, 2.0), (gone, 4.0)]
    t = 0.0
    for face, seconds in spans:
        for _ in range(round(seconds * 5)):
            frame = dataclasses.replace(analysis(t), width=640, height=480, face=face)
            picker.observe(frame, image, frame.index, chain.step(frame, image))
            t = round(t + 0.2, 3)
    moments = picker.pick()
    said = [
        (m.cues[0], table_text(m.cues, "ko", m.ons)["gaze_processing"]["improvement"])
        for m in moments
    ]
    assert said == [
        ("eye_contact", "아래를 보고 있어요. 메모를 읽고 있나요? 카메라를 바라보세요."),
        ("face_lost", "얼굴이 보이지 않아요. 고개를 숙이거나 돌리고 있나요? 카메라를 바라보세요."),
        ("face_lost", "얼굴이 보이지 않아요. 화면 안으로 들어와 주세요."),
    ], said


def test_a_critique_window_mostly_with_a_face_says_what_its_face_lost_cue_said() -> None:
    """An upload's critique window whose frames mostly show the face (here 80 %) leaves the
    rules critic's face note to the `face_lost` cue it explains: the window carries the cue's
    `hidden` as a live cue event does, so a face hidden in the frame gets "lift your head" and
    one out of it "stay centred"."""
    settings = Settings(_env_file=None)
    gone = FaceObservation(False)
    frames = [analysis(round(i * 0.2, 3)) for i in range(30)]
    frames = [dataclasses.replace(a, face=gone) if i % 5 == 0 else a for i, a in enumerate(frames)]
    for hidden, advice in ((True, "lift your head"), (False, "Stay centred")):
        on = CueTransition("face_lost", "on", 3.0, "warn", hidden=hidden)
        ons = {"face_lost": on}
        moment = Moment(3.0, 15, IMAGE, frames[15], ("face_lost",), 1.0, "cue_on", ons)
        _, events = asyncio.run(
            critique_moments(
                RulesCritic(settings), [moment], frames, settings, video_id="v", language="en"
            )
        )
        (event,) = events
        (gaze,) = [i for i in event.items if i.category == "gaze"]
        assert advice in gaze.suggestion, (hidden, gaze)
