"""From flagged moments to the original engine's `FeedbackFrame`s: critic text (VLM or rules, in
batches of moments) or, without a critic, a message table; annotated JPEG keyframes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import cv2
import numpy as np

from app.coaching.messages import (
    CUE_FEEDBACK_KEY,
    CUE_RECOMMENDATIONS,
    CUE_SEVERITY,
    FEEDBACK_KEY,
    FEEDBACK_KEYS,
    NEUTRAL_FEEDBACK,
    FeedbackKey,
    cue_message,
    transition_message,
)
from app.coaching.window_metrics import window_metrics
from app.config import Settings
from app.events import CritiqueEvent
from app.frames import CueName, CueTransition, FrameAnalysis, Keyframe, Language
from app.media.images import downscale, jpeg_base64
from app.upload.analyze import Moment

if TYPE_CHECKING:  # the critic is optional: imported when there is one
    from app.coaching.critic.base import Critic, CritiqueItem, CritiqueResult, CritiqueWindow

log = logging.getLogger(__name__)


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


def format_timestamp(t: float) -> str:
    """Seconds -> the original engine's "Xm Ys"."""
    whole = max(0, int(t))
    return f"{whole // 60}m {whole % 60}s"


def _cue_on(m: Moment, cue: CueName, language: Language) -> dict[str, Any]:
    """A moment's cue for its critique window, at the moment's time, as the live `cue` event
    of its turning on says it (`cue_event`: its message, where the eyes went, a face hidden in
    the frame)."""
    from app.live.session import cue_event  # the live event shape (upload sits above live)

    tr = m.ons.get(cue) or CueTransition(cue, "on", m.t, CUE_SEVERITY[cue])
    event = cue_event(dataclasses.replace(tr, t=m.t), language)
    return event.model_dump(mode="json", exclude_none=True, exclude={"session_id", "seq"})


def said(cue: CueName, language: Language, ons: Mapping[CueName, CueTransition]) -> str:
    """A cue's message as its live cue said it when it turned on (where the eyes went, a face
    hidden in the frame), the plain one where that is not known."""
    tr = ons.get(cue)
    return cue_message(cue, language) if tr is None else transition_message(tr, language)


def table_text(
    cues: Sequence[CueName],
    language: Language,
    ons: Mapping[CueName, CueTransition] | None = None,
) -> dict[FeedbackKey, FeedbackText]:
    """Feedback for a moment from the message table alone (no critic); `ons`: the moment's
    cues' on-transitions (`Moment.ons`)."""
    improvement, recommendation = NEUTRAL_FEEDBACK[language]
    out: dict[FeedbackKey, FeedbackText] = {
        key: {"improvement": improvement, "recommendations": recommendation}
        for key in FEEDBACK_KEYS
    }
    filled: set[FeedbackKey] = set()
    for cue in cues:
        key = CUE_FEEDBACK_KEY.get(cue)
        if key is None:
            continue
        improvement = said(cue, language, ons or {})
        recommendation = CUE_RECOMMENDATIONS[cue][language]
        if key in filled:
            out[key]["improvement"] += " " + improvement
            out[key]["recommendations"] += " " + recommendation
        else:
            out[key] = {"improvement": improvement, "recommendations": recommendation}
            filled.add(key)
    return out


# --- the critic ----------------------------------------------------------------------------


def _batches(moments: Sequence[Moment], size: int) -> list[list[Moment]]:
    size = max(1, size)
    return [list(moments[i : i + size]) for i in range(0, len(moments), size)]


async def critique_moments(
    critic: Critic | None,
    moments: Sequence[Moment],
    analyses: Sequence[FrameAnalysis],
    settings: Settings,
    *,
    video_id: str,
    language: Language,
) -> tuple[list[dict[FeedbackKey, FeedbackText]], list[CritiqueEvent]]:
    """Feedback text for each moment, and the critique events to store with the upload.

    Moments go to the critic in batches of `vlm_max_images` (one request per batch, not one per
    moment); batches run `vlm_concurrency` at a time under `vlm_timeout_s`. A batch whose
    critic call fails falls back to the message table, so a flaky VLM never fails an upload.
    """
    texts = [table_text(m.cues, language, m.ons) for m in moments]
    if critic is None or not moments:
        return texts, []
    from app.coaching.critic import CritiqueWindow  # the critic is optional

    slots = asyncio.Semaphore(max(1, settings.vlm.concurrency))
    window_s = max(settings.cues.cue_hold_s, 1.0)

    async def run_batch(
        batch: list[Moment],
    ) -> tuple[list[Moment], tuple[CritiqueWindow, CritiqueResult] | None]:
        near = [a for a in analyses if any(abs(a.t - m.t) <= window_s for m in batch)]
        window = CritiqueWindow(
            session_id=video_id,
            language=language,
            t_start=max(0.0, batch[0].t - window_s),
            t_end=batch[-1].t + window_s,
            keyframes=[
                Keyframe(
                    t=m.t,
                    image=downscale(m.image, settings.vlm.image_max_side, copy=False),
                    reason=f"cue:{m.cues[0]}" if m.cues else "coverage",
                )
                for m in batch
            ],
            metrics=window_metrics(near),
            cues=[_cue_on(m, cue, language) for m in batch for cue in m.cues],
        )
        async with slots:
            try:
                result = await asyncio.wait_for(
                    critic.critique(window), timeout=settings.vlm.timeout_s
                )
            except Exception as exc:
                log.warning(
                    "critic failed for an upload batch; using the message table",
                    extra={"video_id": video_id, "error": f"{type(exc).__name__}: {exc}"},
                )
                return batch, None
        return batch, (window, result)

    outcomes = await asyncio.gather(
        *(run_batch(b) for b in _batches(moments, settings.vlm.max_images))
    )
    events: list[CritiqueEvent] = []
    index_of = {id(m): i for i, m in enumerate(moments)}
    for batch, outcome in outcomes:
        if outcome is None:
            continue
        window, result = outcome
        per_moment: dict[int, dict[FeedbackKey, list[CritiqueItem]]] = {}
        for item in result.items:
            key = FEEDBACK_KEY.get(item.category)
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
            CritiqueEvent(
                t=window.t_end,
                source=critic.name,
                t_start=window.t_start,
                t_end=window.t_end,
                items=[item.as_event_item() for item in result.items],
            )
        )
    return texts, events


def _targets(item: CritiqueItem, key: FeedbackKey, batch: list[Moment]) -> list[Moment]:
    """The moments a critique item speaks about: the one nearest its frame, else the moments
    flagged in its category, else the whole batch."""
    frame_t = item.frame_t
    if frame_t is not None:
        return [min(batch, key=lambda m: abs(m.t - frame_t))]
    flagged = [m for m in batch if any(CUE_FEEDBACK_KEY.get(c) == key for c in m.cues)]
    return flagged or batch


# --- images --------------------------------------------------------------------------------

# Upper-body connections of MediaPipe Pose's 33 landmarks (shoulders, arms, torso).
_POSE_EDGES = ((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24))


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
