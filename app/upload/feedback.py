"""From flagged moments to the original engine's `FeedbackFrame`s: critic text (VLM or rules, in
batches of moments) or, without a critic, a message table; annotated JPEG keyframes."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

import cv2
import numpy as np

from app.coaching.messages import CUE_SEVERITY, cue_message
from app.config import Settings
from app.frames import CueName, FrameAnalysis, Language
from app.upload.analyze import Moment, fit_within

log = logging.getLogger(__name__)

FeedbackKey = Literal[
    "gaze_processing", "facial_expression", "gestures", "posture_body", "movement"
]
FEEDBACK_KEYS: tuple[FeedbackKey, ...] = (
    "gaze_processing",
    "facial_expression",
    "gestures",
    "posture_body",
    "movement",
)
# critic category -> the original engine's key
CATEGORY_KEY: dict[str, FeedbackKey] = {
    "gaze": "gaze_processing",
    "facial_expression": "facial_expression",
    "gestures": "gestures",
    "posture": "posture_body",
    "movement": "movement",
}
CUE_KEY: dict[CueName, FeedbackKey] = {
    "eye_contact": "gaze_processing",
    "face_lost": "gaze_processing",
    "gesture_none": "gestures",
    "gesture_excess": "gestures",
    "posture": "posture_body",
    "head_tilt": "posture_body",
    "too_close": "movement",
    "too_far": "movement",
    "sway": "movement",
}


class FeedbackText(TypedDict):
    improvement: str
    recommendations: str


class FeedbackFrame(TypedDict):
    video_id: str
    frame_index: int
    timestamp: str
    feedback_text: dict[FeedbackKey, FeedbackText]
    image_base64: str
    t: float  # extra: media seconds, finer than `timestamp`
    cues: list[str]  # extra: the cues flagged at this frame


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
NEUTRAL: dict[Language, FeedbackText] = {
    "ko": {
        "improvement": "이 장면에서는 특별히 고칠 점이 없어요.",
        "recommendations": "지금처럼 유지하세요.",
    },
    "en": {"improvement": "Nothing to fix here.", "recommendations": "Keep it up."},
}


def format_timestamp(t: float) -> str:
    """Seconds -> the original engine's "Xm Ys"."""
    whole = max(0, int(t))
    return f"{whole // 60}m {whole % 60}s"


def table_text(cues: Sequence[CueName], language: Language) -> dict[FeedbackKey, FeedbackText]:
    """Feedback for a moment from the message table alone (no critic)."""
    out: dict[FeedbackKey, FeedbackText] = {key: dict(NEUTRAL[language]) for key in FEEDBACK_KEYS}  # type: ignore[misc]
    filled: set[FeedbackKey] = set()
    for cue in cues:
        key = CUE_KEY.get(cue)
        if key is None:
            continue
        improvement, recommendation = cue_message(cue, language), CUE_RECOMMENDATIONS[cue][language]
        if key in filled:
            out[key]["improvement"] += " " + improvement
            out[key]["recommendations"] += " " + recommendation
        else:
            out[key] = {"improvement": improvement, "recommendations": recommendation}
            filled.add(key)
    return out


# --- the critic ----------------------------------------------------------------------------


def window_metrics(analyses: Sequence[FrameAnalysis]) -> dict[str, float | None]:
    """The aggregates a `CritiqueWindow` carries (same keys as the live critic's windows)."""

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    def ratio(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    faces = [a.face for a in analyses if a.face.found]
    gaze_known = [f.gaze_on_camera for f in faces if f.gaze_on_camera is not None]
    # FaceMesh's eye line first, the ears without a face (as the conditions do)
    rolls = [
        a.face.roll_deg if a.face.roll_deg is not None else a.pose.head_tilt_deg for a in analyses
    ]
    head_tilts = [abs(r) for r in rolls if r is not None]
    sways = [a.sway for a in analyses if a.sway is not None]
    return {
        "frames": float(len(analyses)),
        "face_found_ratio": ratio(len(faces), len(analyses)),
        "eye_contact_ratio": ratio(sum(bool(g) for g in gaze_known), len(gaze_known)),
        "mean_abs_yaw_deg": mean([abs(f.yaw_deg) for f in faces if f.yaw_deg is not None]),
        "mean_pitch_deg": mean([f.pitch_deg for f in faces if f.pitch_deg is not None]),
        "mean_abs_head_tilt_deg": mean(head_tilts),
        "mean_abs_shoulder_tilt_deg": mean(
            [
                abs(a.pose.shoulder_tilt_deg)
                for a in analyses
                if a.pose.shoulder_tilt_deg is not None
            ]
        ),
        "mean_lean": mean([a.pose.lean for a in analyses if a.pose.lean is not None]),
        "mean_face_width_ratio": mean(
            [f.face_width_ratio for f in faces if f.face_width_ratio is not None]
        ),
        "hands_visible_ratio": ratio(
            sum(a.gesture.hands_visible > 0 for a in analyses), len(analyses)
        ),
        "mean_gesture_activity": mean(
            [a.gesture.activity for a in analyses if a.gesture.activity is not None]
        ),
        "max_sway": max(sways) if sways else None,
        "voice_level_dbfs": None,
        "speech_ratio": None,
        "syllables_per_s": None,
        "pitch_semitone_std": None,
        "max_pause_s": None,
    }


def _batches(moments: Sequence[Moment], size: int) -> list[list[Moment]]:
    size = max(1, size)
    return [list(moments[i : i + size]) for i in range(0, len(moments), size)]


async def critique_moments(
    critic: Any,
    moments: Sequence[Moment],
    analyses: Sequence[FrameAnalysis],
    settings: Settings,
    *,
    video_id: str,
    language: Language,
) -> tuple[list[dict[FeedbackKey, FeedbackText]], list[dict[str, Any]]]:
    """Feedback text for each moment, and the critique events (contract shape, without
    `session_id`/`seq`) to store with the upload.

    Moments go to the critic in batches of `vlm_max_images` (one request per batch, not one per
    moment); batches run `vlm_concurrency` at a time under `vlm_timeout_s`. A batch whose
    critic call fails falls back to the message table, so a flaky VLM never fails an upload.
    """
    texts = [table_text(m.cues, language) for m in moments]
    if critic is None or not moments:
        return texts, []
    from app.coaching.critic import CritiqueWindow, Keyframe  # the critic is optional

    slots = asyncio.Semaphore(max(1, settings.vlm_concurrency))
    window_s = max(settings.cue_hold_s, 1.0)

    async def run_batch(batch: list[Moment]) -> tuple[list[Moment], Any]:
        near = [a for a in analyses if any(abs(a.t - m.t) <= window_s for m in batch)]
        window = CritiqueWindow(
            session_id=video_id,
            language=language,
            t_start=max(0.0, batch[0].t - window_s),
            t_end=batch[-1].t + window_s,
            keyframes=[
                Keyframe(
                    t=m.t,
                    image=_fit(m.image, settings.vlm_image_max_side),
                    reason=f"cue:{m.cues[0]}" if m.cues else "coverage",
                )
                for m in batch
            ],
            metrics=window_metrics(near),
            cues=[
                {
                    "type": "cue",
                    "t": m.t,
                    "cue": cue,
                    "state": "on",
                    "severity": CUE_SEVERITY[cue],
                    "message": cue_message(cue, language),
                }
                for m in batch
                for cue in m.cues
            ],
        )
        async with slots:
            try:
                result = await asyncio.wait_for(
                    critic.critique(window), timeout=settings.vlm_timeout_s
                )
            except Exception as exc:
                log.warning(
                    "critic failed for an upload batch; using the message table",
                    extra={"video_id": video_id, "error": f"{type(exc).__name__}: {exc}"},
                )
                return batch, None
        return batch, (window, result)

    outcomes = await asyncio.gather(
        *(run_batch(b) for b in _batches(moments, settings.vlm_max_images))
    )
    events: list[dict[str, Any]] = []
    index_of = {id(m): i for i, m in enumerate(moments)}
    for batch, outcome in outcomes:
        if outcome is None:
            continue
        window, result = outcome
        per_moment: dict[int, dict[FeedbackKey, list[Any]]] = {}
        for item in result.items:
            key = CATEGORY_KEY.get(item.category)
            if key is None:
                continue  # e.g. voice: the original engine has no such field
            for m in _targets(item, key, batch):
                per_moment.setdefault(index_of[id(m)], {}).setdefault(key, []).append(item)
        for i, by_key in per_moment.items():
            for key, items in by_key.items():
                texts[i][key] = {
                    "improvement": " ".join(it.observation for it in items),
                    "recommendations": " ".join(it.suggestion for it in items),
                }
        events.append(
            {
                "type": "critique",
                "t": window.t_end,
                "source": critic.name,
                "t_start": window.t_start,
                "t_end": window.t_end,
                "items": [item.as_event_item() for item in result.items],
            }
        )
    return texts, events


def _targets(item: Any, key: FeedbackKey, batch: list[Moment]) -> list[Moment]:
    """The moments a critique item speaks about: the one nearest its frame, else the moments
    flagged in its category, else the whole batch."""
    if item.frame_t is not None:
        return [min(batch, key=lambda m: abs(m.t - item.frame_t))]
    flagged = [m for m in batch if any(CUE_KEY.get(c) == key for c in m.cues)]
    return flagged or batch


# --- images --------------------------------------------------------------------------------

# Upper-body connections of MediaPipe Pose's 33 landmarks (shoulders, arms, torso).
_POSE_EDGES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24))


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    nw, nh = fit_within(w, h, max_side, max_side)
    if (nw, nh) == (w, h):
        return image
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)


def annotate(image: np.ndarray, analysis: FrameAnalysis) -> np.ndarray:
    """A copy of `image` with the face mesh points, the face box and the upper-body pose drawn."""
    out = image.copy()
    face, pose = analysis.face, analysis.pose
    if face.landmarks is not None:
        for x, y in np.asarray(face.landmarks)[::3].astype(int):
            cv2.circle(out, (int(x), int(y)), 1, (80, 220, 80), -1, cv2.LINE_AA)
    if face.bbox is not None:
        x, y, w, h = face.bbox
        cv2.rectangle(out, (x, y), (x + w, y + h), (80, 220, 80), 1, cv2.LINE_AA)
    if pose.landmarks is not None and len(pose.landmarks) >= 25:
        points = np.asarray(pose.landmarks).astype(int)
        for a, b in _POSE_EDGES:
            cv2.line(out, tuple(points[a]), tuple(points[b]), (255, 170, 60), 2, cv2.LINE_AA)
        for i in {i for edge in _POSE_EDGES for i in edge}:
            cv2.circle(out, tuple(points[i]), 3, (255, 120, 30), -1, cv2.LINE_AA)
    return out


def jpeg_base64(image: np.ndarray, quality: int = 85) -> str:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def build_feedback_frames(
    video_id: str, moments: Sequence[Moment], texts: Sequence[dict[FeedbackKey, FeedbackText]]
) -> list[FeedbackFrame]:
    """CPU work (drawing, JPEG): run it in a worker thread."""
    return [
        {
            "video_id": video_id,
            "frame_index": m.frame_index,
            "timestamp": format_timestamp(m.t),
            "feedback_text": {key: dict(text[key]) for key in FEEDBACK_KEYS},  # type: ignore[misc]
            "image_base64": jpeg_base64(annotate(m.image, m.analysis)),
            "t": round(m.t, 3),
            "cues": list(m.cues),
        }
        for m, text in zip(moments, texts, strict=True)
    ]
