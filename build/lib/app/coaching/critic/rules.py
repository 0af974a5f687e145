"""The rules critic: deterministic coaching notes from a window's measurements and cues.

It is the default when no VLM endpoint is configured and the fallback whenever the VLM fails,
so it never does I/O and never raises for odd input (missing metrics are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.frames import CueName, Language

from .base import (
    Category,
    CriticName,
    CritiqueItem,
    CritiqueResult,
    CritiqueWindow,
    Keyframe,
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

CUE_CATEGORY: dict[str, Category] = {
    "eye_contact": "gaze",
    "face_lost": "gaze",
    "head_tilt": "posture",
    "posture": "posture",
    "too_close": "movement",
    "too_far": "movement",
    "sway": "movement",
    "gesture_none": "gestures",
    "gesture_excess": "gestures",
    "too_quiet": "voice",
    "too_fast": "voice",
    "long_pause": "voice",
    "monotone": "voice",
}
CATEGORY_ORDER: tuple[Category, ...] = (
    "gaze",
    "facial_expression",
    "gestures",
    "posture",
    "movement",
    "voice",
)

# (observation, suggestion) per language; format fields come from the rule that fires.
Text = dict[Language, tuple[str, str]]

TEXTS: dict[str, Text] = {
    "face_missing": {
        "en": (
            "Your face was in view only {pct}% of this stretch.",
            "Stay centred in the frame so the audience can see your face the whole time.",
        ),
        "ko": (
            "이 구간에서 얼굴이 화면에 보인 시간은 {pct}%뿐이었습니다.",
            "청중이 항상 얼굴을 볼 수 있도록 화면 가운데에 머물러 주세요.",
        ),
    },
    "eye_contact_low": {
        "en": (
            "You looked into the camera {pct}% of the time{where}.",
            "Treat the lens as your listener: finish each sentence looking into it and glance "
            "at notes only between sentences.",
        ),
        "ko": (
            "카메라를 바라본 시간은 {pct}%였습니다{where}.",
            "렌즈를 청중이라고 생각하고, 문장 끝은 렌즈를 보며 마무리하고 메모는 문장 사이에만 "
            "확인해 보세요.",
        ),
    },
    "eye_contact_mid": {
        "en": (
            "You looked into the camera {pct}% of the time.",
            "Aim for most of the time on the lens, especially when you make a key point.",
        ),
        "ko": (
            "카메라를 바라본 시간은 {pct}%였습니다.",
            "특히 핵심을 말할 때는 렌즈를 바라보는 시간을 더 늘려 보세요.",
        ),
    },
    "eye_contact_good": {
        "en": (
            "Steady eye contact: {pct}% of the time on the camera.",
            "Keep it up; it is what makes a remote audience feel addressed.",
        ),
        "ko": (
            "시선 처리가 안정적입니다: {pct}%의 시간 동안 카메라를 바라봤습니다.",
            "지금처럼 유지하세요. 화면 너머의 청중이 말을 건네받는다고 느끼게 해 줍니다.",
        ),
    },
    "looking_down": {
        "en": (
            "Your face was often turned down (about {deg}°), which hides your expression.",
            "Raise your notes or the camera to eye level so your face stays open to the audience.",
        ),
        "ko": (
            "얼굴이 자주 아래로 향해(약 {deg}°) 표정이 잘 보이지 않았습니다.",
            "메모나 카메라를 눈높이로 올려 얼굴이 청중을 향하도록 해 보세요.",
        ),
    },
    "hands_hidden": {
        "en": (
            "Your hands were in view only {pct}% of the time.",
            "Bring your hands up to chest height where the camera can see them; open gestures "
            "support your key points.",
        ),
        "ko": (
            "손이 화면에 보인 시간은 {pct}%뿐이었습니다.",
            "손을 가슴 높이로 올려 카메라에 보이게 하세요. 열린 손동작이 핵심 내용을 뒷받침합니다.",
        ),
    },
    "gestures_still": {
        "en": (
            "Your hands hardly moved in this stretch.",
            "Use one deliberate gesture per key point, for example counting items on your "
            "fingers or opening your palms.",
        ),
        "ko": (
            "이 구간에서 손동작이 거의 없었습니다.",
            "핵심 내용마다 의도적인 손동작을 하나씩 써 보세요. 예를 들어 손가락으로 항목을 "
            "세거나 손바닥을 펼쳐 보세요.",
        ),
    },
    "gestures_busy": {
        "en": (
            "Your hands moved a lot and almost constantly.",
            "Let your hands rest between points and save movement for emphasis.",
        ),
        "ko": (
            "손이 많이, 그리고 거의 쉬지 않고 움직였습니다.",
            "요점 사이에는 손을 편하게 내려두고, 강조할 때만 움직여 보세요.",
        ),
    },
    "gestures_good": {
        "en": (
            "Your gestures were visible and lively without being restless.",
            "Keep tying each gesture to what you are saying.",
        ),
        "ko": (
            "손동작이 잘 보이고 생동감 있으면서도 산만하지 않았습니다.",
            "지금처럼 손동작을 말의 내용과 맞춰 주세요.",
        ),
    },
    "shoulders_uneven": {
        "en": (
            "Your shoulders were uneven (about {deg}° off level).",
            "Stand evenly on both feet and let both shoulders drop and relax.",
        ),
        "ko": (
            "어깨가 수평에서 약 {deg}° 기울어 있었습니다.",
            "두 발에 체중을 고르게 싣고 양쪽 어깨의 힘을 빼서 내려 주세요.",
        ),
    },
    "head_tilted": {
        "en": (
            "Your head was tilted to one side (about {deg}°).",
            "Keep your head level; a straight head reads as calm and confident.",
        ),
        "ko": (
            "고개가 한쪽으로 약 {deg}° 기울어 있었습니다.",
            "고개를 똑바로 세워 주세요. 반듯한 고개는 차분하고 자신감 있어 보입니다.",
        ),
    },
    "leaning_in": {
        "en": (
            "You leaned in toward the camera.",
            "Sit or stand back a little so your shoulders and hands stay in the frame.",
        ),
        "ko": (
            "카메라 쪽으로 몸을 기울였습니다.",
            "조금 뒤로 물러나 어깨와 손이 화면 안에 들어오도록 해 주세요.",
        ),
    },
    "posture_good": {
        "en": (
            "Your posture was upright and level.",
            "Keep that open, steady stance; it makes you look prepared.",
        ),
        "ko": (
            "자세가 곧고 반듯했습니다.",
            "지금처럼 열린 자세를 유지하세요. 준비된 발표자로 보이게 해 줍니다.",
        ),
    },
    "swaying": {
        "en": (
            "You swayed from side to side.",
            "Plant your feet hip-width apart and move only when you change topic.",
        ),
        "ko": (
            "몸이 좌우로 흔들렸습니다.",
            "발을 골반 너비로 벌려 단단히 딛고, 주제가 바뀔 때만 움직여 보세요.",
        ),
    },
    "too_close": {
        "en": (
            "You were very close to the camera.",
            "Step back until your head and shoulders fit comfortably in the frame.",
        ),
        "ko": (
            "카메라에 너무 가까이 있었습니다.",
            "머리와 어깨가 화면에 여유 있게 들어오도록 뒤로 물러나 주세요.",
        ),
    },
    "too_far": {
        "en": (
            "You were far from the camera, so your face looked small.",
            "Move closer until your face and shoulders fill the upper part of the frame.",
        ),
        "ko": (
            "카메라에서 멀리 있어 얼굴이 작게 보였습니다.",
            "얼굴과 어깨가 화면 위쪽을 채우도록 가까이 다가와 주세요.",
        ),
    },
    "movement_good": {
        "en": (
            "You stayed steady and well framed.",
            "Keep your position; move deliberately only when it adds something.",
        ),
        "ko": (
            "화면 안에서 안정적으로 자리를 잘 지켰습니다.",
            "지금 위치를 유지하고, 움직임은 의미가 있을 때만 의도적으로 하세요.",
        ),
    },
    "too_quiet": {
        "en": (
            "Your voice was quiet in this stretch.",
            "Speak as if to someone at the back of the room; breathe from the belly.",
        ),
        "ko": (
            "이 구간에서 목소리가 작았습니다.",
            "방 뒤쪽에 있는 사람에게 말하듯 복식 호흡으로 소리를 내 보세요.",
        ),
    },
    "too_fast": {
        "en": (
            "You spoke quickly.",
            "Slow down and pause briefly after each key point so it can land.",
        ),
        "ko": (
            "말이 빨랐습니다.",
            "속도를 늦추고 핵심 내용 뒤에는 잠깐 멈춰 청중이 받아들일 시간을 주세요.",
        ),
    },
    "long_pause": {
        "en": (
            "There was a long silence.",
            "Keep a one-line outline at hand so you can pick up the thread quickly.",
        ),
        "ko": (
            "긴 침묵이 있었습니다.",
            "한 줄 요약 메모를 곁에 두어 흐름을 빨리 다시 이어가 보세요.",
        ),
    },
    "monotone": {
        "en": (
            "Your voice stayed on one pitch.",
            "Vary your pitch and pace: lift your voice for questions, slow down for key numbers.",
        ),
        "ko": (
            "목소리 높낮이가 거의 일정했습니다.",
            "질문할 때는 목소리를 올리고 중요한 숫자는 천천히 말하는 등 높낮이와 속도에 "
            "변화를 주세요.",
        ),
    },
    "nothing_measured": {
        "en": (
            "Not enough could be measured in this stretch to comment.",
            "Check that your face and upper body are in view and the room is well lit.",
        ),
        "ko": (
            "이 구간에서는 평가할 만큼 충분히 측정되지 않았습니다.",
            "얼굴과 상반신이 화면에 보이는지, 조명이 충분한지 확인해 주세요.",
        ),
    },
}

WHERE: dict[str, dict[Language, str]] = {
    "down": {"en": ", mostly looking down", "ko": " (주로 아래를 봄)"},
    "side": {"en": ", often looking to the side", "ko": " (자주 옆을 봄)"},
    "": {"en": "", "ko": ""},
}

# Which cue's keyframe illustrates a note best, to set its frame_t.
TEXT_CUE: dict[str, CueName] = {
    "face_missing": "face_lost",
    "eye_contact_low": "eye_contact",
    "eye_contact_mid": "eye_contact",
    "hands_hidden": "gesture_none",
    "gestures_still": "gesture_none",
    "gestures_busy": "gesture_excess",
    "shoulders_uneven": "posture",
    "head_tilted": "head_tilt",
    "swaying": "sway",
    "too_close": "too_close",
    "too_far": "too_far",
    "too_quiet": "too_quiet",
    "too_fast": "too_fast",
    "long_pause": "long_pause",
    "monotone": "monotone",
}
# Cues whose text key has the same name as the cue, for cues the metrics did not explain.
CUE_TEXT: dict[str, str] = {
    "eye_contact": "eye_contact_mid",
    "face_lost": "face_missing",
    "head_tilt": "head_tilted",
    "posture": "shoulders_uneven",
    "gesture_none": "gestures_still",
    "gesture_excess": "gestures_busy",
    "sway": "swaying",
    "too_close": "too_close",
    "too_far": "too_far",
    "too_quiet": "too_quiet",
    "too_fast": "too_fast",
    "long_pause": "long_pause",
    "monotone": "monotone",
}


@dataclass(frozen=True, slots=True)
class _Note:
    category: Category
    severity: Severity
    text: str
    fields: dict[str, Any]


def _pct(ratio: float) -> int:
    return round(100 * ratio)


class RulesCritic:
    """Deterministic critic; `max_items` bounds the notes of one window."""

    name: CriticName = "rules"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._max_items = max(1, settings.critique_max_items)

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
        chosen.sort(key=lambda n: (n.severity != "warn", CATEGORY_ORDER.index(n.category)))
        return [self._item(n, window) for n in chosen]

    def _notes(self, m: dict[str, float | None], cues: list[dict[str, Any]]) -> list[_Note]:
        s = self._settings
        notes: list[_Note] = []

        def add(category: Category, severity: Severity, text: str, **fields: Any) -> None:
            notes.append(_Note(category, severity, text, fields))

        face_found = m.get("face_found_ratio")
        eye_contact = m.get("eye_contact_ratio")
        pitch = m.get("mean_pitch_deg")
        yaw = m.get("mean_abs_yaw_deg")
        if face_found is not None and face_found < 0.6:
            add("gaze", "warn", "face_missing", pct=_pct(face_found))
        elif eye_contact is not None:
            if eye_contact < 0.5:
                where = ""
                if pitch is not None and pitch < LOOKING_DOWN_PITCH_DEG:
                    where = "down"
                elif yaw is not None and yaw > s.eye_contact_max_yaw_deg:
                    where = "side"
                add("gaze", "warn", "eye_contact_low", pct=_pct(eye_contact), where=where)
            elif eye_contact < 0.75:
                add("gaze", "info", "eye_contact_mid", pct=_pct(eye_contact))
            else:
                add("gaze", "info", "eye_contact_good", pct=_pct(eye_contact))

        if pitch is not None and pitch < LOOKING_DOWN_PITCH_DEG:
            add("facial_expression", "warn", "looking_down", deg=round(-pitch))

        hands = m.get("hands_visible_ratio")
        activity = m.get("mean_gesture_activity")
        if hands is not None and hands < 0.2:
            add("gestures", "warn", "hands_hidden", pct=_pct(hands))
        elif activity is not None:
            if activity < s.gesture_min_activity:
                add("gestures", "warn", "gestures_still")
            elif activity > s.gesture_excess_activity:
                add("gestures", "warn", "gestures_busy")
            else:
                add("gestures", "info", "gestures_good")

        shoulder = m.get("mean_abs_shoulder_tilt_deg")
        head = m.get("mean_abs_head_tilt_deg")
        lean = m.get("mean_lean")
        posture_measured = shoulder is not None or head is not None
        posture_warned = False
        if shoulder is not None and shoulder > s.shoulder_tilt_max_deg:
            add("posture", "warn", "shoulders_uneven", deg=round(shoulder))
            posture_warned = True
        if head is not None and head > s.head_tilt_max_deg:
            add("posture", "warn", "head_tilted", deg=round(head))
            posture_warned = True
        if lean is not None and lean > LEANING_IN:
            add("posture", "info", "leaning_in")
        elif posture_measured and not posture_warned:
            add("posture", "info", "posture_good")

        sway = m.get("max_sway")
        face_width = m.get("mean_face_width_ratio")
        movement_warned = False
        if sway is not None and sway > s.sway_max:
            add("movement", "warn", "swaying")
            movement_warned = True
        if face_width is not None and face_width > s.too_close_face_ratio:
            add("movement", "warn", "too_close")
            movement_warned = True
        elif face_width is not None and face_width < s.too_far_face_ratio:
            add("movement", "warn", "too_far")
            movement_warned = True
        if not movement_warned and (sway is not None or face_width is not None):
            add("movement", "info", "movement_good")

        level = m.get("voice_level_dbfs")
        if level is not None and level < TOO_QUIET_DBFS:
            add("voice", "warn", "too_quiet")
        rate = m.get("syllables_per_s")
        if rate is not None and rate > TOO_FAST_SYLLABLES_PER_S:
            add("voice", "warn", "too_fast")
        pitch_std = m.get("pitch_semitone_std")
        if pitch_std is not None and pitch_std < MONOTONE_SEMITONE_STD:
            add("voice", "warn", "monotone")
        pause = m.get("max_pause_s")
        if pause is not None and pause > LONG_PAUSE_S:
            add("voice", "warn", "long_pause")

        # Cues that fired but that the window's averages did not explain still get a note:
        # a problem that lasted 3 s of 20 is worth saying.
        said = {n.text for n in notes if n.severity == "warn"}
        for cue in cues:
            if cue.get("state") != "on":
                continue
            text = CUE_TEXT.get(str(cue.get("cue")))
            if text is None or text in said:
                continue
            said.add(text)
            fields: dict[str, Any] = {}
            if text in ("eye_contact_mid", "face_missing", "hands_hidden"):
                ratio = eye_contact if text == "eye_contact_mid" else face_found
                if ratio is None:
                    continue
                fields["pct"] = _pct(ratio)
            if text in ("head_tilted", "shoulders_uneven"):
                angle = head if text == "head_tilted" else shoulder
                if angle is None:
                    continue
                fields["deg"] = round(angle)
            category = CUE_CATEGORY[str(cue.get("cue"))]
            # An info note of the same category ("good posture") contradicts the cue.
            notes = [n for n in notes if not (n.category == category and n.severity == "info")]
            add(category, "warn", text, **fields)
        return notes

    def _item(self, note: _Note, window: CritiqueWindow) -> CritiqueItem:
        observation, suggestion = TEXTS[note.text][window.language]
        fields = dict(note.fields)
        if "where" in fields:
            fields["where"] = WHERE[fields["where"]][window.language]
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


SCORE_LABELS: dict[Language, dict[str, str]] = {
    "en": {
        "eye_contact": "eye contact",
        "posture": "posture",
        "gestures": "gestures",
        "voice": "voice",
    },
    "ko": {"eye_contact": "시선 처리", "posture": "자세", "gestures": "손동작", "voice": "목소리"},
}
CUE_ADVICE: dict[Language, dict[str, str]] = {
    "en": {k: TEXTS[v]["en"][1] for k, v in CUE_TEXT.items()},
    "ko": {k: TEXTS[v]["ko"][1] for k, v in CUE_TEXT.items()},
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
    frequent = sorted(
        ((n, c) for c, n in summary.cue_counts.items() if n > 0 and c in CUE_ADVICE[lang]),
        key=lambda nc: (-nc[0], nc[1]),
    )[:2]
    if frequent:
        advice = [CUE_ADVICE[lang][c] for _, c in frequent]
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
