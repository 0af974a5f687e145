"""Every message a presenter reads, in Korean and English, in one table."""

from __future__ import annotations

from typing import Literal

from app.frames import CueName, Language

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


def cue_message(cue: CueName, language: Language) -> str:
    return CUE_MESSAGES[cue][language]


def error_message(code: str, language: Language) -> str:
    table = ERROR_MESSAGES.get(code)
    return table[language] if table else code
