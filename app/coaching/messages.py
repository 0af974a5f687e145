"""The coach's vocabulary: the categories every flow speaks of, how they map onto each other,
and every message a presenter reads, in Korean and English.

Three sets of names meet here, each fixed by its own wire (docs/protocol.md, the contract):
- cues (`app.frames.CueName`): the live `cue` events;
- critique categories (`CritiqueCategory`): the `category` of a critique item, the critic's
  prompt and the original engine's feedback areas, plus `voice`;
- the upload flow's feedback keys (`FeedbackKey`): `FeedbackFrame.feedback_text`, as the
  original engine's front end reads them;
and the report's keyframes use its visual score names (`KeyframeCategory`).
`CUE_CATEGORY` and `FEEDBACK_KEY` map one set onto the next.
"""

from __future__ import annotations

from typing import Literal, get_args

from app.frames import CueName, CueTransition, GazeDirection, Language

# --- categories ------------------------------------------------------------------------------

# The categories of the original engine; the VLM writes only these. `voice` is an addition
# that only the rules critic uses (a model seeing still images cannot hear).
VisualCategory = Literal["gaze", "facial_expression", "gestures", "posture", "movement"]
CritiqueCategory = Literal[VisualCategory, "voice"]
VISUAL_CATEGORIES: tuple[VisualCategory, ...] = get_args(VisualCategory)
CRITIQUE_CATEGORIES: tuple[CritiqueCategory, ...] = get_args(CritiqueCategory)

# The upload flow's public names (the original engine's `feedback_text` keys).
FeedbackKey = Literal[
    "gaze_processing", "facial_expression", "gestures", "posture_body", "movement"
]
FEEDBACK_KEYS: tuple[FeedbackKey, ...] = get_args(FeedbackKey)

# The report's keyframes illustrate its visual scores (app.coaching.report.ScoreKey).
KeyframeCategory = Literal["eye_contact", "posture", "gestures"]
KEYFRAME_CATEGORIES: tuple[KeyframeCategory, ...] = get_args(KeyframeCategory)

# cue -> the critique category that speaks of it
CUE_CATEGORY: dict[CueName, CritiqueCategory] = {
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
    "filler_words": "voice",
}
# critique category -> the upload flow's key (voice has none: the original engine had no such
# field)
FEEDBACK_KEY: dict[CritiqueCategory, FeedbackKey] = {
    "gaze": "gaze_processing",
    "facial_expression": "facial_expression",
    "gestures": "gestures",
    "posture": "posture_body",
    "movement": "movement",
}
CUE_FEEDBACK_KEY: dict[CueName, FeedbackKey] = {
    cue: FEEDBACK_KEY[category]
    for cue, category in CUE_CATEGORY.items()
    if category in FEEDBACK_KEY
}


# --- live cues and errors --------------------------------------------------------------------

CUE_MESSAGES: dict[CueName, dict[Language, str]] = {
    "eye_contact": {
        "ko": "카메라(청중)를 바라보세요.",
        "en": "Look at the camera: that is your audience.",
    },
    "posture": {
        "ko": "어깨가 기울어졌어요. 바르게 서 보세요.",
        "en": "Your shoulders are tilted. Stand up straight.",
    },
    "head_tilt": {
        "ko": "고개가 기울어졌어요. 머리를 똑바로 세워 보세요.",
        "en": "Your head is tilted. Hold it level.",
    },
    "face_lost": {
        "ko": "얼굴이 보이지 않아요. 화면 안으로 들어와 주세요.",
        "en": "Your face is out of view. Step back into the frame.",
    },
    "too_close": {
        "ko": "카메라에 너무 가까워요. 조금 물러나 주세요.",
        "en": "You are too close to the camera. Step back a little.",
    },
    "too_far": {
        "ko": "카메라에서 너무 멀어요. 조금 다가와 주세요.",
        "en": "You are too far from the camera. Come a little closer.",
    },
    "gesture_none": {
        "ko": "손동작이 없어요. 핵심을 말할 때 손을 써 보세요.",
        "en": "No gestures. Use your hands to underline key points.",
    },
    "gesture_excess": {
        "ko": "손동작이 너무 많아요. 조금 차분하게 해 보세요.",
        "en": "Lots of hand movement. Calm your gestures a little.",
    },
    "sway": {
        "ko": "몸이 좌우로 흔들려요. 중심을 잡고 서 보세요.",
        "en": "You are swaying. Plant your feet and stay centred.",
    },
    "too_quiet": {
        "ko": "목소리가 작아요. 조금 더 크게 말해 보세요.",
        "en": "Your voice is quiet. Speak up a little.",
    },
    "too_fast": {
        "ko": "말이 빨라요. 천천히 또박또박 말해 보세요.",
        "en": "You are speaking fast. Slow down.",
    },
    "long_pause": {
        "ko": "침묵이 길어요. 다음 내용으로 넘어가 보세요.",
        "en": "That is a long pause. Carry on with your next point.",
    },
    "monotone": {
        "ko": "목소리 톤이 단조로워요. 억양에 변화를 주세요.",
        "en": "Your voice sounds flat. Vary your pitch.",
    },
    "filler_words": {
        "ko": "'음', '어' 같은 군말이 잦아요. 잠깐 멈추고 말을 이어 보세요.",
        "en": "Lots of filler words. Pause silently instead of saying 'um'.",
    },
    # `info` at 80 % of the pitch's target length; past it, `TIME_OVER_MESSAGES` (`warn`)
    "time": {
        "ko": "목표 시간의 80%가 지났어요. 마무리를 준비하세요.",
        "en": "80 % of your target time has passed. Start wrapping up.",
    },
}
TIME_OVER_MESSAGES: dict[Language, str] = {
    "ko": "목표 시간을 넘겼어요. 이제 마무리해 주세요.",
    "en": "You are past your target time. Wrap up now.",
}

CUE_SEVERITY: dict[CueName, Literal["info", "warn"]] = {
    "eye_contact": "warn",
    "posture": "info",
    "head_tilt": "info",
    "face_lost": "warn",
    "too_close": "info",
    "too_far": "info",
    "gesture_none": "info",
    "gesture_excess": "info",
    "sway": "info",
    "too_quiet": "warn",
    "too_fast": "warn",
    "long_pause": "info",
    "monotone": "info",
    "filler_words": "info",
    "time": "info",  # and `warn` once past the target
}

ERROR_MESSAGES: dict[str, dict[Language, str]] = {
    "bad_frame": {
        "ko": "프레임을 해석할 수 없어 건너뛰었어요.",
        "en": "A frame could not be decoded and was skipped.",
    },
    "frame_too_large": {
        "ko": "프레임이 너무 커서 건너뛰었어요.",
        "en": "A frame was too large and was skipped.",
    },
    "bad_audio": {
        "ko": "오디오 메시지를 해석할 수 없어 건너뛰었어요.",
        "en": "An audio message could not be read and was skipped.",
    },
    "bad_message": {
        "ko": "알 수 없는 메시지를 건너뛰었어요.",
        "en": "An unknown message was ignored.",
    },
    "rate_limited": {
        "ko": "프레임이 너무 빨리 들어와 일부를 건너뛰었어요.",
        "en": "Frames arrive too fast; some were skipped.",
    },
}


# --- the upload flow's feedback without a critic ---------------------------------------------

# What to improve and how, per cue, when no critic wrote the text.
CUE_RECOMMENDATIONS: dict[CueName, dict[Language, str]] = {
    "eye_contact": {
        "ko": "문장을 끝낼 때는 렌즈를 바라보고, 메모는 문장 사이에만 확인하세요.",
        "en": "Finish each sentence looking into the lens; check notes only between sentences.",
    },
    "face_lost": {
        "ko": "카메라 위치를 확인하고 얼굴이 화면 가운데에 오도록 서세요.",
        "en": "Check the camera position and keep your face in the middle of the frame.",
    },
    "gesture_none": {
        "ko": "핵심 내용을 말할 때 손을 가슴 높이로 들어 강조해 보세요.",
        "en": "Raise your hands to chest height to underline key points.",
    },
    "gesture_excess": {
        "ko": "손동작은 강조할 때만 쓰고, 그 외에는 손을 편하게 모아 두세요.",
        "en": "Save gestures for emphasis and rest your hands in between.",
    },
    "posture": {
        "ko": "양발에 체중을 고르게 싣고 어깨를 수평으로 펴세요.",
        "en": "Spread your weight evenly on both feet and keep your shoulders level.",
    },
    "head_tilt": {
        "ko": "턱을 살짝 당기고 정수리가 위로 당겨지는 느낌으로 머리를 세우세요.",
        "en": "Tuck your chin slightly and hold your head as if pulled up by a string.",
    },
    "too_close": {
        "ko": "상반신이 화면에 들어오도록 카메라에서 한 걸음 물러나세요.",
        "en": "Step back so your upper body fits in the frame.",
    },
    "too_far": {
        "ko": "얼굴 표정이 보이도록 카메라에 한 걸음 다가오세요.",
        "en": "Step closer so the audience can read your expression.",
    },
    "sway": {
        "ko": "발을 어깨너비로 벌리고 고정한 채, 이동할 때는 의도를 갖고 움직이세요.",
        "en": "Plant your feet shoulder-width apart; move only with purpose.",
    },
}
# (improvement, recommendation) for a feedback area with nothing to fix
NEUTRAL_FEEDBACK: dict[Language, tuple[str, str]] = {
    "ko": ("이 장면에서는 특별히 고칠 점이 없어요.", "지금처럼 유지하세요."),
    "en": ("Nothing to fix here.", "Keep it up."),
}


# --- the rules critic ------------------------------------------------------------------------

# (observation, suggestion) per language; format fields come from the rule that fires.
CritiqueText = dict[Language, tuple[str, str]]

CRITIQUE_TEXTS: dict[str, CritiqueText] = {
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
    # the face lost mostly while `face_lost` said it was hidden in the frame, not out of it;
    # {pct} is the share of the stretch without a face (the cue's hold included)
    "face_hidden": {
        "en": (
            "Your face could not be seen for {pct}% of this stretch: head bowed or turned away.",
            "Hold your notes up near the camera and lift your head to the lens as you speak.",
        ),
        "ko": (
            "이 구간의 {pct}% 동안 고개를 숙이거나 돌려 얼굴이 보이지 않았습니다.",
            "메모는 카메라 가까이 들고, 말할 때는 고개를 들어 렌즈를 바라보세요.",
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
            "You looked into the camera {pct}% of the time{where}.",
            "Aim for most of the time on the lens, especially when you make a key point.",
        ),
        "ko": (
            "카메라를 바라본 시간은 {pct}%였습니다{where}.",
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

CRITIQUE_WHERE: dict[str, dict[Language, str]] = {
    "down": {"en": ", mostly looking down", "ko": " (주로 아래를 봄)"},
    "side": {"en": ", often looking to the side", "ko": " (자주 옆을 봄)"},
    "up": {"en": ", often looking up", "ko": " (자주 위를 봄)"},
    "closed": {"en": ", often with your eyes closed", "ko": " (자주 눈을 감음)"},
    "": {"en": "", "ko": ""},
}

# A session summary says how long the presenter looked down from this share of the time on.
LOOKING_DOWN_SHARE = 0.2


def looking_down_sentence(
    share: float | None, language: Language, *, formal: bool = False
) -> str | None:
    """The summaries' sentence on looking down (`share`: of the time, 0-1), or None under
    `LOOKING_DOWN_SHARE`. `formal`: Korean in the critic's register (합쇼체), not the report's
    (해요체)."""
    if share is None or share < LOOKING_DOWN_SHARE:
        return None
    pct = round(100 * share)
    if language == "ko" and formal:
        return f"전체 시간의 {pct}% 동안 아래를 보았습니다. 메모를 보고 계셨나요?"
    if language == "ko":
        return f"{pct}%의 시간 동안 아래를 봤어요. 메모를 보고 있었나요?"
    return f"You looked down {pct}% of the time: at your notes?"


SCORE_LABELS: dict[Language, dict[str, str]] = {
    "en": {
        "eye_contact": "eye contact",
        "posture": "posture",
        "gestures": "gestures",
        "voice": "voice",
    },
    "ko": {"eye_contact": "시선 처리", "posture": "자세", "gestures": "손동작", "voice": "목소리"},
}


# --- the VLM critic's prompt -----------------------------------------------------------------

FRAME_LABELS: dict[Language, dict[str, str]] = {
    "en": {"seconds": "s", "coverage": "overview", "cue": "cue", "none": "(none)"},
    "ko": {"seconds": "초", "coverage": "구간 대표", "cue": "알림", "none": "(없음)"},
}


# --- report keyframes ------------------------------------------------------------------------

KeyframeReason = Literal[
    "eye_good",
    "eye_away",
    "eye_down",
    "eye_up",
    "eye_side",
    "eye_closed",
    "face_lost",
    "face_hidden",
    "posture_good",
    "posture_tilted",
    "gesture_good",
    "gesture_excess",
    "gesture_none",
]

KEYFRAME_CAPTIONS: dict[KeyframeReason, dict[Language, str]] = {
    "eye_good": {"ko": "청중을 바라보는 좋은 시선", "en": "Good eye contact"},
    "eye_away": {"ko": "시선이 청중을 벗어남", "en": "Looking away from the audience"},
    "eye_down": {"ko": "시선이 아래로 향함 (메모를 보는 중?)", "en": "Looking down (at notes?)"},
    "eye_up": {"ko": "시선이 위로 향함", "en": "Looking up, away from the audience"},
    "eye_side": {"ko": "시선이 옆으로 향함", "en": "Looking to the side"},
    "eye_closed": {"ko": "눈을 감음", "en": "Eyes closed"},
    "face_lost": {"ko": "얼굴이 화면 밖에 있음", "en": "Face out of view"},
    "face_hidden": {
        "ko": "얼굴이 가려짐 (고개를 숙이거나 돌림)",
        "en": "Face hidden (head down or turned away)",
    },
    "posture_good": {"ko": "바르고 곧은 자세", "en": "Upright, level posture"},
    "posture_tilted": {"ko": "기울어진 자세", "en": "Tilted or swaying posture"},
    "gesture_good": {"ko": "자연스러운 손동작", "en": "Natural, purposeful gesture"},
    "gesture_excess": {"ko": "과한 손동작", "en": "Restless hands"},
    "gesture_none": {"ko": "손동작 없음", "en": "No hand gestures"},
}


# `eye_contact` turning on, by where the presenter looks instead (metrics.gaze.direction)
EYE_CONTACT_MESSAGES: dict[GazeDirection, dict[Language, str]] = {
    "down": {
        "ko": "아래를 보고 있어요. 메모를 읽고 있나요? 카메라를 바라보세요.",
        "en": "You are looking down - at your notes? Look up at the camera.",
    },
    "up": {
        "ko": "위를 보고 있어요. 카메라(청중)를 바라보세요.",
        "en": "You are looking up. Look at the camera: that is your audience.",
    },
    "left": {
        "ko": "왼쪽을 보고 있어요. 카메라(청중)를 바라보세요.",
        "en": "You are looking to your left. Look at the camera: that is your audience.",
    },
    "right": {
        "ko": "오른쪽을 보고 있어요. 카메라(청중)를 바라보세요.",
        "en": "You are looking to your right. Look at the camera: that is your audience.",
    },
    # Lids low over an all but shut gap, the head level, read `closed`; on the held-out photos
    # of rounds 1-5 that reading is right for 2 of 6 faces, 2 of the 4 wrong ones looking down
    # at something (BENCHMARKS.md, Gaze): the message fits both.
    "closed": {
        "ko": "눈을 감았거나 아래로 내리깔고 있어요. 눈을 들어 카메라를 바라보세요.",
        "en": "Your eyes look closed or lowered. Look up at the camera.",
    },
}


# `face_lost` turning on with the face hidden in the frame (`CueTransition.hidden`): FaceMesh
# lost a face bowed over notes or turned to a screen at the side (real photos of both,
# tests/analysis/test_face_hidden.py), so "step back into the frame" would be wrong.
FACE_HIDDEN_MESSAGE: dict[Language, str] = {
    "ko": "얼굴이 보이지 않아요. 고개를 숙이거나 돌리고 있나요? 카메라를 바라보세요.",
    "en": "Your face is hidden - head down or turned away? Face the camera.",
}


def cue_message(
    cue: CueName,
    language: Language,
    direction: GazeDirection | None = None,
    hidden: bool | None = None,
) -> str:
    """A cue's message; `eye_contact` says which way the presenter looks where it is known,
    `face_lost` whether the face is hidden in the frame rather than out of it."""
    if cue == "face_lost" and hidden:
        return FACE_HIDDEN_MESSAGE[language]
    table = EYE_CONTACT_MESSAGES.get(direction) if cue == "eye_contact" and direction else None
    return (table or CUE_MESSAGES[cue])[language]


def transition_message(tr: CueTransition, language: Language) -> str:
    """The message of a cue turning on or off, with what it says of where the eyes went or of
    a face hidden in the frame."""
    return cue_message(tr.cue, language, tr.direction, tr.hidden)


def time_cue_message(over: bool, language: Language) -> str:
    """The `time` cue's message: nearing the target (80 %), or past it."""
    return TIME_OVER_MESSAGES[language] if over else CUE_MESSAGES["time"][language]


def error_message(code: str, language: Language) -> str:
    table = ERROR_MESSAGES.get(code)
    return table[language] if table else code
