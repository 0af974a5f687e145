"""The rules critic: deterministic, grounded in the window's numbers, in Korean and English."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from app.coaching.critic import CritiqueWindow, Keyframe, RulesCritic, SessionSummaryInput
from app.coaching.critic.base import load_prompt
from app.frames import Language

from .settings import make_settings

HANGUL = re.compile(r"[가-힣]")
SETTINGS = make_settings()
GOOD: dict[str, float | None] = {
    "frames": 200.0,
    "face_found_ratio": 1.0,
    "eye_contact_ratio": 0.9,
    "mean_abs_yaw_deg": 4.0,
    "mean_pitch_deg": -2.0,
    "mean_abs_head_tilt_deg": 3.0,
    "mean_abs_shoulder_tilt_deg": 2.0,
    "mean_lean": 1.0,
    "mean_face_width_ratio": 0.2,
    "hands_visible_ratio": 0.8,
    "mean_gesture_activity": 0.8,
    "max_sway": 0.03,
    "voice_level_dbfs": -20.0,
    "speech_ratio": 0.7,
    "syllables_per_s": 4.0,
    "pitch_semitone_std": 3.0,
    "max_pause_s": 1.0,
}


def window(
    metrics: dict[str, float | None],
    *,
    language: Language = "en",
    cues: list[dict[str, Any]] | None = None,
    keyframes: list[Keyframe] | None = None,
) -> CritiqueWindow:
    return CritiqueWindow(
        session_id="s",
        language=language,
        t_start=0.0,
        t_end=20.0,
        keyframes=keyframes or [],
        metrics=metrics,
        cues=cues or [],
    )


def critique(w: CritiqueWindow) -> list[dict[str, Any]]:
    return [i.as_event_item().model_dump() for i in RulesCritic(SETTINGS).critique_now(w)]


def test_a_good_window_gets_strengths_only() -> None:
    items = critique(window(GOOD))
    assert items and all(i["severity"] == "info" for i in items)
    assert items[0]["category"] == "gaze" and "90%" in items[0]["observation"]
    assert len(items) <= SETTINGS.critique.max_items


def test_problems_come_first_with_their_numbers_and_one_strength() -> None:
    metrics = dict(
        GOOD, eye_contact_ratio=0.3, mean_pitch_deg=-22.0, mean_abs_shoulder_tilt_deg=11.0
    )
    items = critique(window(metrics))
    severities = [i["severity"] for i in items]
    assert severities == sorted(severities, key=lambda s: s != "warn")
    assert severities.count("info") == 1 and len(items) == SETTINGS.critique.max_items
    by_category = {i["category"]: i for i in items if i["severity"] == "warn"}
    assert "30%" in by_category["gaze"]["observation"]
    assert "looking down" in by_category["gaze"]["observation"]
    assert "22°" in by_category["facial_expression"]["observation"]
    assert "11°" in by_category["posture"]["observation"]


def test_the_gaze_directions_say_where_the_eyes_were_instead() -> None:
    # eyes on the notes with the head almost level: the mean pitch alone would not tell
    down = dict(
        GOOD,
        eye_contact_ratio=0.4,
        gaze_down_ratio=0.45,
        gaze_side_ratio=0.1,
        gaze_up_ratio=0.0,
        gaze_closed_ratio=0.05,
        mean_pitch_deg=-6.0,
    )
    (gaze,) = (i for i in critique(window(down)) if i["category"] == "gaze")
    assert gaze["severity"] == "warn" and "40%" in gaze["observation"]
    assert "mostly looking down" in gaze["observation"]
    # the eyes shut for most of the time away, in Korean; a middling share says where too
    closed = dict(down, eye_contact_ratio=0.6, gaze_down_ratio=0.1, gaze_closed_ratio=0.3)
    (gaze,) = (i for i in critique(window(closed, language="ko")) if i["category"] == "gaze")
    assert gaze["severity"] == "info" and "(자주 눈을 감음)" in gaze["observation"]
    # no direction holds half the time away: none is named, whatever the head's mean pitch
    mixed = dict(
        down, gaze_down_ratio=0.2, gaze_side_ratio=0.2, gaze_closed_ratio=0.2, mean_pitch_deg=-22.0
    )
    (gaze,) = (i for i in critique(window(mixed)) if i["category"] == "gaze")
    assert gaze["observation"] == "You looked into the camera 40% of the time."


def test_the_session_summary_says_how_long_the_eyes_were_down() -> None:
    def summary(metrics: dict[str, float | None], language: Language) -> str:
        scores = {"eye_contact": 55.0, "posture": 80.0, "overall": 70.0}
        return RulesCritic(SETTINGS).summarize_now(
            SessionSummaryInput("s", language, 90.0, scores, {}, [], metrics=metrics)
        )

    assert "You looked down 35% of the time: at your notes?" in summary(
        dict(GOOD, gaze_down_ratio=0.35), "en"
    )
    # in the critic's register (합쇼체), as the rest of its summary
    korean = summary(dict(GOOD, gaze_down_ratio=0.35), "ko")
    assert "전체 시간의 35% 동안 아래를 보았습니다. 메모를 보고 계셨나요?" in korean
    assert "looked down" not in summary(dict(GOOD, gaze_down_ratio=0.1), "en")
    assert "looked down" not in summary(GOOD, "en")


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_face_hidden_in_the_frame_is_not_asked_back_into_it(language: Language) -> None:
    """A window whose face was lost mostly while `face_lost` said it is hidden (head bowed over
    notes, turned away) says so and asks for the head up, not "stay centred in the frame";
    lost mostly out of the frame, or with no hidden share measured, the note is as before."""

    def gaze(metrics: dict[str, float | None], **kw: Any) -> dict[str, Any]:
        (item,) = [
            i for i in critique(window(metrics, language=language, **kw)) if i["category"] == "gaze"
        ]
        return item

    hidden = gaze(dict(GOOD, face_found_ratio=0.3, face_hidden_share=0.8))
    walked_out = gaze(dict(GOOD, face_found_ratio=0.3, face_hidden_share=0.3))
    older = gaze(dict(GOOD, face_found_ratio=0.3))  # a window without the hidden share
    head_up = {"en": "lift your head", "ko": "고개를 들어"}[language]
    centred = {"en": "Stay centred", "ko": "화면 가운데"}[language]
    assert head_up in hidden["suggestion"] and "70%" in hidden["observation"]
    for item in (walked_out, older):
        assert centred in item["suggestion"] and "30%" in item["observation"]
    # a cue the averages hid says what the cue said
    cue = {"type": "cue", "cue": "face_lost", "state": "on", "severity": "warn", "t": 5.0}
    mostly_found = dict(GOOD, face_found_ratio=0.8, face_hidden_share=None)
    said_hidden = gaze(mostly_found, cues=[dict(cue, hidden=True)])
    said_out = gaze(mostly_found, cues=[dict(cue, hidden=False)])
    assert head_up in said_hidden["suggestion"] and "20%" in said_hidden["observation"]
    assert centred in said_out["suggestion"] and "80%" in said_out["observation"]
    # a face lost briefly near the window's start: no "0%" (nor "in view only 100%")
    all_found = dict(GOOD, face_found_ratio=0.998, face_hidden_share=None)
    assert "1%" in gaze(all_found, cues=[dict(cue, hidden=True)])["observation"]
    assert "99%" in gaze(all_found, cues=[dict(cue, hidden=False)])["observation"]
    # one face note a window: the hidden note the averages gave is not said again
    both = critique(window(dict(GOOD, face_found_ratio=0.3, face_hidden_share=0.8), cues=[cue]))
    assert [i["category"] for i in both].count("gaze") == 1


def test_the_summary_advises_a_bowed_head_up_not_back_into_the_frame() -> None:
    def advice(metrics: dict[str, float | None]) -> str:
        scores = {"eye_contact": 40.0, "overall": 60.0}
        counts = {"face_lost": 4}
        return RulesCritic(SETTINGS).summarize_now(
            SessionSummaryInput("s", "en", 90.0, scores, counts, [], metrics=metrics)
        )

    assert "lift your head" in advice(dict(GOOD, face_found_ratio=0.7, face_hidden_share=0.9))
    assert "Stay centred" in advice(dict(GOOD, face_found_ratio=0.7, face_hidden_share=0.0))


def test_is_deterministic_and_speaks_both_languages() -> None:
    metrics = dict(GOOD, mean_gesture_activity=0.05, max_sway=0.3)
    english = critique(window(metrics, language="en"))
    assert english == critique(window(metrics, language="en"))
    korean = critique(window(metrics, language="ko"))
    assert [i["category"] for i in korean] == [i["category"] for i in english]
    assert {i["category"] for i in english if i["severity"] == "warn"} == {"gestures", "movement"}
    for item in korean:
        assert HANGUL.search(item["observation"]) and HANGUL.search(item["suggestion"])
    for item in english:
        assert not HANGUL.search(item["observation"] + item["suggestion"])


def test_a_cue_the_averages_hid_still_gets_a_note_at_its_frame() -> None:
    frames = [
        Keyframe(t=2.0, image=np.zeros((4, 4, 3), np.uint8), reason="coverage"),
        Keyframe(t=9.0, image=np.zeros((4, 4, 3), np.uint8), reason="cue:sway"),
        Keyframe(t=15.0, image=np.zeros((4, 4, 3), np.uint8), reason="coverage"),
    ]
    cue = {"type": "cue", "cue": "sway", "state": "on", "severity": "warn", "t": 8.9}
    items = critique(window(GOOD, cues=[cue], keyframes=frames))
    movement = [i for i in items if i["category"] == "movement"]
    assert len(movement) == 1 and movement[0]["severity"] == "warn"
    assert movement[0]["frame_t"] == 9.0
    # Without the cue, the same window says the presenter was steady.
    steady = [i for i in critique(window(GOOD, keyframes=frames)) if i["category"] == "movement"]
    assert steady[0]["severity"] == "info"


def test_audio_only_and_empty_windows() -> None:
    audio_only = {k: None for k in GOOD} | {"frames": 0.0, "voice_level_dbfs": -50.0}
    items = critique(window(audio_only))
    assert [(i["category"], i["severity"]) for i in items] == [("voice", "warn")]
    assert items[0]["frame_t"] is None
    nothing = critique(window({"frames": 0.0}, language="ko"))
    assert len(nothing) == 1 and HANGUL.search(nothing[0]["observation"])


@pytest.mark.parametrize("language", ["ko", "en"])
def test_summary_names_best_and_worst_and_frequent_cues(language: Language) -> None:
    summary = SessionSummaryInput(
        session_id="s",
        language=language,
        duration_s=95.0,
        scores={
            "eye_contact": 35.0,
            "posture": 88.0,
            "gestures": 60.0,
            "voice": None,
            "overall": 61.0,
        },
        cue_counts={"eye_contact": 5, "sway": 1},
        critiques=[],
    )
    text = RulesCritic(SETTINGS).summarize_now(summary)
    assert "61" in text and "88" in text and "35" in text
    if language == "en":
        assert "1 min 35 s" in text and "posture" in text and "eye contact" in text
        assert "lens" in text  # the eye-contact advice
    else:
        assert "1분 35초" in text and "자세" in text and "시선 처리" in text
        assert "렌즈" in text


@pytest.mark.parametrize("language", ["ko", "en"])
@pytest.mark.parametrize("kind", ["critique", "summary"])
def test_prompt_templates_load_and_fill(kind: str, language: Language) -> None:
    prompt = load_prompt(kind, language)  # type: ignore[arg-type]
    assert load_prompt(kind, language) is prompt  # loaded once
    assert prompt.system.template.strip() and prompt.user.template.strip()
    assert bool(HANGUL.search(prompt.system.template)) == (language == "ko")
