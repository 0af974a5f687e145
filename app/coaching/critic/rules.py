"""The rules critic: deterministic coaching notes from a window's measurements and cues.

It is the default when no VLM endpoint is configured and the fallback whenever the VLM fails,
so it never does I/O and never raises for odd input (missing metrics are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from app.coaching.messages import (
    CRITIQUE_CATEGORIES,
    CRITIQUE_TEXTS,
    CRITIQUE_WHERE,
    CUE_CATEGORY,
    SCORE_LABELS,
    looking_down_sentence,
)
from app.coaching.window_metrics import GAZE_AWAY, gaze_away_key
from app.config import Settings
from app.frames import CueName, Keyframe, Language

from .base import (
    Category,
    CriticName,
    CritiqueItem,
    CritiqueResult,
    CritiqueWindow,
    SessionSummaryInput,
    Severity,
    SummaryResult,
)

# Voice thresholds the rules critic uses when the window carries audio aggregates; the live
# audio cues (with their own settings) remain the primary signal.
TOO_QUIET_DBFS = -42.0
TOO_FAST_SYLLABLES_PER_S = 5.5
MONOTONE_SEMITONE_STD = 1.5
LONG_PAUSE_S = 4.0
LOOKING_DOWN_PITCH_DEG = -15.0
LEANING_IN = 1.15
# (window metric, +1: too high / -1: too low, limit, text), in the order the notes are written
VOICE_RULES: tuple[tuple[str, int, float, str], ...] = (
    ("voice_level_dbfs", -1, TOO_QUIET_DBFS, "too_quiet"),
    ("syllables_per_s", +1, TOO_FAST_SYLLABLES_PER_S, "too_fast"),
    ("pitch_semitone_std", -1, MONOTONE_SEMITONE_STD, "monotone"),
    ("max_pause_s", +1, LONG_PAUSE_S, "long_pause"),
)

# Cues whose note has the cue's own name.
SAME_NAME: tuple[CueName, ...] = (
    "too_close",
    "too_far",
    "too_quiet",
    "too_fast",
    "long_pause",
    "monotone",
)
# Which cue's keyframe illustrates a note best, to set its frame_t.
TEXT_CUE: dict[str, CueName] = {
    "face_missing": "face_lost",
    "face_hidden": "face_lost",
    "eye_contact_low": "eye_contact",
    "eye_contact_mid": "eye_contact",
    "hands_hidden": "gesture_none",
    "gestures_still": "gesture_none",
    "gestures_busy": "gesture_excess",
    "shoulders_uneven": "posture",
    "head_tilted": "head_tilt",
    "swaying": "sway",
    **{name: name for name in SAME_NAME},
}
# The note written for a cue the metrics did not explain.
CUE_TEXT: dict[str, str] = {
    "eye_contact": "eye_contact_mid",
    "face_lost": "face_missing",
    "head_tilt": "head_tilted",
    "posture": "shoulders_uneven",
    "gesture_none": "gestures_still",
    "gesture_excess": "gestures_busy",
    "sway": "swaying",
    **{name: name for name in SAME_NAME},
}


# The two notes of a face lost: out of the frame, or hidden in it; a window says one of them.
FACE_NOTES = frozenset({"face_missing", "face_hidden"})


def face_mostly_hidden(metrics: dict[str, float | None]) -> bool:
    """Whether, on most of the frames without a face while `face_lost` was on, the cue said the
    face is hidden in the frame (head bowed or turned away) rather than out of it."""
    share = metrics.get("face_hidden_share")
    return share is not None and share >= 0.5


@dataclass(frozen=True, slots=True)
class _Note:
    category: Category
    severity: Severity
    text: str
    fields: dict[str, Any]


def _pct(ratio: float) -> int:
    return round(100 * ratio)


# A direction names where the eyes were instead of the camera when it holds at least this share
# of the time off the camera (so "mostly looking down" is said of at least half of it).
WHERE_MIN_SHARE_OF_AWAY = 0.5


def _where_instead(m: dict[str, float | None], eye_contact: float) -> str | None:
    """Where the eyes mostly were instead of the camera, from the window's gaze directions:
    the direction that holds most of the time away, if at least `WHERE_MIN_SHARE_OF_AWAY` of
    it; "" when none does; None when the window has no directions."""
    shares = {where: m.get(gaze_away_key(where)) for where in GAZE_AWAY}
    known = {where: v for where, v in shares.items() if v is not None}
    if not known:
        return None
    away = 1.0 - eye_contact
    where, share = max(known.items(), key=lambda kv: kv[1])
    if away <= 0 or share < WHERE_MIN_SHARE_OF_AWAY * away:
        return ""
    return where


class RulesCritic:
    """Deterministic critic; `max_items` bounds the notes of one window."""

    name: CriticName = "rules"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._max_items = max(1, settings.critique.max_items)

    async def critique(self, window: CritiqueWindow) -> CritiqueResult:
        return CritiqueResult(items=self.critique_now(window))

    async def summarize(self, summary: SessionSummaryInput) -> SummaryResult:
        return SummaryResult(text=self.summarize_now(summary))

    async def aclose(self) -> None:
        return None

    # The synchronous cores, so the scheduler can fall back without awaiting anything.
    def critique_now(self, window: CritiqueWindow) -> list[CritiqueItem]:
        notes = self._notes(window.metrics, window.cues)
        warns = [n for n in notes if n.severity == "warn"]
        infos = [n for n in notes if n.severity == "info"]
        # Room for one strength, so a critique is never only criticism.
        chosen = warns[: self._max_items - 1] if infos else warns[: self._max_items]
        chosen += infos[: self._max_items - len(chosen)]
        if not chosen:
            chosen = [_Note("gaze", "info", "nothing_measured", {})]
        chosen.sort(key=lambda n: (n.severity != "warn", CRITIQUE_CATEGORIES.index(n.category)))
        return [self._item(n, window) for n in chosen]

    def _notes(self, m: dict[str, float | None], cues: list[dict[str, Any]]) -> list[_Note]:
        s = self._settings
        notes: list[_Note] = []

        def add(category: Category, severity: Severity, text: str, **fields: Any) -> None:
            notes.append(_Note(category, severity, text, fields))

        face_found = m.get("face_found_ratio")
        eye_contact = m.get("eye_contact_ratio")
        # where the eyes were instead of the camera (None: no directions, or no eye contact)
        instead = None if eye_contact is None else _where_instead(m, eye_contact)
        pitch = m.get("mean_pitch_deg")
        yaw = m.get("mean_abs_yaw_deg")
        if face_found is not None and face_found < 0.6:
            if face_mostly_hidden(m):
                add("gaze", "warn", "face_hidden", pct=_pct(1.0 - face_found))
            else:
                add("gaze", "warn", "face_missing", pct=_pct(face_found))
        elif eye_contact is not None:
            where = instead
            if where is None:  # no gaze directions (an older window): the head's mean pose
                where = ""
                if pitch is not None and pitch < LOOKING_DOWN_PITCH_DEG:
                    where = "down"
                elif yaw is not None and yaw > s.cues.eye_contact_max_yaw_deg:
                    where = "side"
            if eye_contact < 0.5:
                add("gaze", "warn", "eye_contact_low", pct=_pct(eye_contact), where=where)
            elif eye_contact < 0.75:
                add("gaze", "info", "eye_contact_mid", pct=_pct(eye_contact), where=where)
            else:
                add("gaze", "info", "eye_contact_good", pct=_pct(eye_contact))

        if pitch is not None and pitch < LOOKING_DOWN_PITCH_DEG:
            add("facial_expression", "warn", "looking_down", deg=round(-pitch))

        hands = m.get("hands_visible_ratio")
        activity = m.get("mean_gesture_activity")
        if hands is not None and hands < 0.2:
            add("gestures", "warn", "hands_hidden", pct=_pct(hands))
        elif activity is not None:
            if activity < s.cues.gesture_min_activity:
                add("gestures", "warn", "gestures_still")
            elif activity > s.cues.gesture_excess_activity:
                add("gestures", "warn", "gestures_busy")
            else:
                add("gestures", "info", "gestures_good")

        shoulder = m.get("mean_abs_shoulder_tilt_deg")
        head = m.get("mean_abs_head_tilt_deg")
        lean = m.get("mean_lean")
        posture_measured = shoulder is not None or head is not None
        posture_warned = False
        if shoulder is not None and shoulder > s.cues.shoulder_tilt_max_deg:
            add("posture", "warn", "shoulders_uneven", deg=round(shoulder))
            posture_warned = True
        if head is not None and head > s.cues.head_tilt_max_deg:
            add("posture", "warn", "head_tilted", deg=round(head))
            posture_warned = True
        if lean is not None and lean > LEANING_IN:
            add("posture", "info", "leaning_in")
        elif posture_measured and not posture_warned:
            add("posture", "info", "posture_good")

        sway = m.get("max_sway")
        face_width = m.get("mean_face_width_ratio")
        movement_warned = False
        if sway is not None and sway > s.cues.sway_max:
            add("movement", "warn", "swaying")
            movement_warned = True
        if face_width is not None and face_width > s.cues.too_close_face_ratio:
            add("movement", "warn", "too_close")
            movement_warned = True
        elif face_width is not None and face_width < s.cues.too_far_face_ratio:
            add("movement", "warn", "too_far")
            movement_warned = True
        if not movement_warned and (sway is not None or face_width is not None):
            add("movement", "info", "movement_good")

        for key, sign, limit, note in VOICE_RULES:
            value = m.get(key)
            if value is not None and sign * value > sign * limit:
                add("voice", "warn", note)

        # Cues that fired but that the window's averages did not explain still get a note:
        # a problem that lasted 3 s of 20 is worth saying.
        said = {n.text for n in notes if n.severity == "warn"}
        for cue in cues:
            if cue.get("state") != "on":
                continue
            text = CUE_TEXT.get(str(cue.get("cue")))
            if text == "face_missing" and cue.get("hidden") is True:
                text = "face_hidden"
            if text is None or text in said or (text in FACE_NOTES and said & FACE_NOTES):
                continue
            said.add(text)
            fields: dict[str, Any] = {}
            if text in ("eye_contact_mid", "face_missing", "face_hidden", "hands_hidden"):
                ratio = eye_contact if text == "eye_contact_mid" else face_found
                if text == "face_hidden" and ratio is not None:
                    ratio = 1.0 - ratio  # the share without a face, not the share with one
                if ratio is None:
                    continue
                fields["pct"] = _pct(ratio)
                if text in FACE_NOTES:
                    # a cue the averages hid: some frames had no face, some had one (not "0%
                    # of this stretch" for a face lost briefly near its start)
                    fields["pct"] = min(99, max(1, fields["pct"]))
            if text == "eye_contact_mid":
                fields["where"] = instead or ""
            if text in ("head_tilted", "shoulders_uneven"):
                angle = head if text == "head_tilted" else shoulder
                if angle is None:
                    continue
                fields["deg"] = round(angle)
            category = CUE_CATEGORY[cast("CueName", str(cue.get("cue")))]
            # An info note of the same category ("good posture") contradicts the cue.
            notes = [n for n in notes if not (n.category == category and n.severity == "info")]
            add(category, "warn", text, **fields)
        return notes

    def _item(self, note: _Note, window: CritiqueWindow) -> CritiqueItem:
        observation, suggestion = CRITIQUE_TEXTS[note.text][window.language]
        fields = dict(note.fields)
        if "where" in fields:
            fields["where"] = CRITIQUE_WHERE[fields["where"]][window.language]
        return CritiqueItem(
            category=note.category,
            observation=observation.format(**fields),
            suggestion=suggestion.format(**fields),
            severity=note.severity,
            frame_t=_frame_for(window, TEXT_CUE.get(note.text)),
        )

    def summarize_now(self, summary: SessionSummaryInput) -> str:
        return rules_summary(summary)


def _frame_for(window: CritiqueWindow, cue: str | None) -> float | None:
    """The keyframe that shows `cue` if there is one, else the middle one."""
    frames: list[Keyframe] = window.keyframes
    if not frames:
        return None
    if cue is not None:
        for frame in frames:
            if frame.reason == f"cue:{cue}":
                return frame.t
        cue_times = [float(c["t"]) for c in window.cues if c.get("cue") == cue and "t" in c]
        if cue_times:
            return min(frames, key=lambda f: abs(f.t - cue_times[0])).t
    return frames[len(frames) // 2].t


CUE_ADVICE: dict[Language, dict[str, str]] = {
    "en": {k: CRITIQUE_TEXTS[v]["en"][1] for k, v in CUE_TEXT.items()},
    "ko": {k: CRITIQUE_TEXTS[v]["ko"][1] for k, v in CUE_TEXT.items()},
}


def _join(parts: list[str], language: Language) -> str:
    if language == "ko":
        return ", ".join(parts)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def rules_summary(summary: SessionSummaryInput) -> str:
    """A short paragraph from the scores and the cues that fired most."""
    lang = summary.language
    labels = SCORE_LABELS[lang]
    measured = {k: v for k, v in summary.scores.items() if k in labels and v is not None}
    overall = summary.scores.get("overall")
    minutes, seconds = divmod(round(summary.duration_s), 60)
    sentences: list[str] = []
    if lang == "en":
        length = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        head = f"You rehearsed for {length}"
        sentences.append(head + (f" and scored {round(overall)} overall." if overall else "."))
    else:
        length = f"{minutes}분 {seconds}초" if minutes else f"{seconds}초"
        head = f"{length} 동안 연습했고"
        sentences.append(
            head + (f" 종합 점수는 {round(overall)}점입니다." if overall else " 수고하셨습니다.")
        )
    if measured:
        best = max(measured, key=lambda k: measured[k] or 0.0)
        worst = min(measured, key=lambda k: measured[k] or 0.0)
        if lang == "en":
            sentences.append(
                f"Your strongest area was {labels[best]} ({round(measured[best] or 0)})."
            )
            if worst != best:
                sentences.append(
                    f"The most room to grow is in {labels[worst]} ({round(measured[worst] or 0)})."
                )
        else:
            sentences.append(
                f"가장 좋았던 부분은 {labels[best]}({round(measured[best] or 0)}점)입니다."
            )
            if worst != best:
                sentences.append(
                    f"가장 개선할 여지가 큰 부분은 {labels[worst]}"
                    f"({round(measured[worst] or 0)}점)입니다."
                )
    # the report's share where it is given (the summary and the report agree), else the
    # session's frames'
    down = (
        summary.gaze_shares.get("down")
        if summary.gaze_shares is not None
        else summary.metrics.get("gaze_down_ratio")
    )
    looked_down = looking_down_sentence(down, lang, formal=True)
    if looked_down:
        sentences.append(looked_down)
    frequent = sorted(
        ((n, c) for c, n in summary.cue_counts.items() if n > 0 and c in CUE_ADVICE[lang]),
        key=lambda nc: (-nc[0], nc[1]),
    )[:2]
    if frequent:
        advice = [
            CRITIQUE_TEXTS["face_hidden"][lang][1]
            if c == "face_lost" and face_mostly_hidden(summary.metrics)
            else CUE_ADVICE[lang][c]
            for _, c in frequent
        ]
        if lang == "en":
            sentences.append("Next time: " + " ".join(advice))
        else:
            sentences.append("다음 연습에서는: " + " ".join(advice))
    elif not measured:
        sentences.append(
            "Not enough was measured to say more."
            if lang == "en"
            else "더 자세히 평가할 만큼 측정되지 않았습니다."
        )
    else:
        sentences.append(
            "No recurring problem stood out; keep rehearsing the same way."
            if lang == "en"
            else "반복된 문제는 없었습니다. 지금처럼 계속 연습하세요."
        )
    return " ".join(sentences)
