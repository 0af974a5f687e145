"""Progress across the takes of a pitch: the figures of one take, read from its report JSON, and
the change between two takes. Pure functions of plain data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

ScoreName = Literal["eye_contact", "posture", "gestures", "voice", "overall"]
FigureName = Literal[
    "eye_contact_share", "fillers_per_min", "words_per_min", "cues_on", "looking_down_share"
]
SCORE_NAMES: tuple[ScoreName, ...] = get_args(ScoreName)
FIGURE_NAMES: tuple[FigureName, ...] = get_args(FigureName)
# Cues of the session's clock, not of the delivery: not counted in `cues_on`.
NOT_DELIVERY_CUES = frozenset({"time"})

Number = int | float


def take_scores(report: Mapping[str, Any] | None) -> dict[str, Number | None] | None:
    """The report's scores (None without a report)."""
    if report is None:
        return None
    scores = report.get("scores") or {}
    return {name: _number(scores.get(name)) for name in SCORE_NAMES}


def take_figures(report: Mapping[str, Any] | None) -> dict[str, Number | None]:
    """`eye_contact_share` (0-1: the mean of the timeline's seconds), `fillers_per_min` and
    `words_per_min` (from the transcript, over the take's duration), `cues_on` (cues other than
    `time` that turned on), `looking_down_share` (0-1: the report's `gaze_shares`, a share of
    its samples, not of the timeline's seconds as `eye_contact_share`: the two need not add up
    with the other places exactly); each None where the report does not measure it."""
    figures: dict[str, Number | None] = dict.fromkeys(FIGURE_NAMES)
    if report is None:
        return figures
    eye = [
        float(row["eye_contact"])
        for row in report.get("timeline") or ()
        if isinstance(row, Mapping) and _number(row.get("eye_contact")) is not None
    ]
    if eye:
        figures["eye_contact_share"] = round(sum(eye) / len(eye) / 100, 3)
    shares = report.get("gaze_shares")
    if isinstance(shares, Mapping):
        figures["looking_down_share"] = _number(shares.get("down"))
    figures["cues_on"] = sum(
        1
        for cue in report.get("cues") or ()
        if isinstance(cue, Mapping)
        and cue.get("state") == "on"
        and cue.get("cue") not in NOT_DELIVERY_CUES
    )
    duration = _number(report.get("duration_s"))
    transcript = report.get("transcript")
    made = isinstance(transcript, Mapping) and transcript.get("made", True) is not False
    if not made or duration is None or duration <= 0:
        return figures
    assert isinstance(transcript, Mapping)
    minutes = duration / 60
    fillers = report.get("fillers")
    per_minute = _number(fillers.get("per_minute")) if isinstance(fillers, Mapping) else None
    if per_minute is None:
        items = transcript.get("fillers")
        if items is None and isinstance(fillers, Mapping):
            items = fillers.get("items")
        per_minute = len(items or ()) / minutes
    figures["fillers_per_min"] = round(per_minute, 2)
    words_per_min = _number(report.get("words_per_minute"))
    if words_per_min is None:
        words = transcript.get("words")
        text = str(transcript.get("text") or "")
        count = len(words) if isinstance(words, list) else len(text.split())
        words_per_min = count / minutes
    figures["words_per_min"] = round(words_per_min, 1)
    return figures


def delta(
    a: Mapping[str, Number | None] | None,
    b: Mapping[str, Number | None] | None,
    names: tuple[str, ...],
) -> dict[str, Number | None]:
    """`b - a` for each name; None where either side is None."""
    out: dict[str, Number | None] = {}
    for name in names:
        x = None if a is None else a.get(name)
        y = None if b is None else b.get(name)
        out[name] = None if x is None or y is None else round(y - x, 3)
    return out


def _number(value: object) -> Number | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
