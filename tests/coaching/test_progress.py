"""The figures of a take, read from its report JSON, and the change between two takes."""

from __future__ import annotations

from typing import Any

from app.coaching.progress import FIGURE_NAMES, SCORE_NAMES, delta, take_figures, take_scores


def report(**fields: Any) -> dict[str, Any]:
    return {
        "duration_s": 120.0,
        "scores": {"eye_contact": 80, "posture": 70, "gestures": None, "voice": 60, "overall": 70},
        "timeline": [{"t": 0, "eye_contact": 100.0}, {"t": 1, "eye_contact": 50.0}, {"t": 2}],
        "cues": [
            {"cue": "eye_contact", "state": "on"},
            {"cue": "eye_contact", "state": "off"},
            {"cue": "sway", "state": "on"},
            {"cue": "time", "state": "on"},
        ],
        "transcript": None,
        **fields,
    }


def test_figures_without_a_transcript_measure_no_speech() -> None:
    assert take_figures(report()) == {
        "eye_contact_share": 0.75,
        "fillers_per_min": None,
        "words_per_min": None,
        "cues_on": 2,  # `time` is the clock, not the delivery
        "looking_down_share": None,  # a report from before gaze directions
    }
    assert take_scores(report())["gestures"] is None  # type: ignore[index]


def test_the_share_of_time_looking_down_comes_from_the_reports_gaze_shares() -> None:
    shares = {"camera": 0.6, "down": 0.3, "up": 0.0, "left": 0.05, "right": 0.0}
    earlier = take_figures(report(gaze_shares={**shares, "closed": 0.0, "no_face": 0.05}))
    later = take_figures(report(gaze_shares={**shares, "down": 0.125, "camera": 0.775}))
    assert (earlier["looking_down_share"], later["looking_down_share"]) == (0.3, 0.125)
    assert delta(earlier, later, FIGURE_NAMES)["looking_down_share"] == -0.175


def test_figures_with_a_transcript() -> None:
    words = [
        {"word": w, "t_start": 0.0, "t_end": 0.1, "filler": w == "um"}
        for w in ["a", "um", "b", "c"]
    ]
    with_speech = report(
        transcript={"source": "local", "text": "a um b c", "words": words},
        fillers={"count": 1, "per_minute": 0.5, "items": [{"word": "um", "t": 1.0}]},
    )
    figures = take_figures(with_speech)
    assert (figures["fillers_per_min"], figures["words_per_min"]) == (0.5, 2.0)
    assert take_figures({**with_speech, "words_per_minute": 3.25})["words_per_min"] == 3.2


def test_nothing_without_a_report_and_deltas_null_where_either_side_is() -> None:
    assert take_scores(None) is None
    assert take_figures(None) == dict.fromkeys(FIGURE_NAMES)
    a, b = take_scores(report()), take_scores(report(scores={"eye_contact": 90, "overall": 65}))
    assert delta(a, b, SCORE_NAMES) == {
        "eye_contact": 10,
        "posture": None,
        "gestures": None,
        "voice": None,
        "overall": -5,
    }
    assert delta(None, b, SCORE_NAMES) == dict.fromkeys(SCORE_NAMES)
