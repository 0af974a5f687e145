"""Wire models of the public contract (REST bodies and answers). Internals live in app/frames.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC); the wire always says which zone.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    detail: ErrorDetail


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(default="", max_length=200)
    language: Literal["ko", "en"] = "ko"
    critique_interval_s: float | None = Field(default=None, ge=5.0, le=600.0)


class SessionCreated(BaseModel):
    session_id: str
    token: str
    state: Literal["created"]
    ws_url: str
    offer_url: str
    created_at: UtcDatetime


class SessionPublic(BaseModel):
    session_id: str
    title: str
    language: Literal["ko", "en"]
    state: Literal["created", "live", "finalizing", "completed", "failed"]
    reason: str | None = None
    recovered: bool = False
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    ended_at: UtcDatetime | None
    duration_s: float | None
    frames_received: int
    frames_analyzed: int
    frames_dropped: int
    report_url: str | None
    recording_url: str | None


class EndAnswer(BaseModel):
    state: str


class DeletedAnswer(BaseModel):
    session_id: str
    message: str


class EventList(BaseModel):
    events: list[dict[str, Any]]


class RtcOffer(BaseModel):
    sdp: str = Field(max_length=200_000)
    type: Literal["offer"]


class RtcAnswer(BaseModel):
    sdp: str
    type: Literal["answer"]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for error answers: every error is an `ErrorBody`."""
    return {code: {"model": ErrorBody} for code in codes}


# What any call under /api/sessions/{id} may answer besides its success (bad input, missing
# or wrong token, unknown id).
SESSION_ERRORS = error_responses(401, 403, 404, 422)


# --- the upload flow (the original Pitching engine's shapes) ----------------------------------


class UploadAccepted(BaseModel):
    video_id: str
    message: str


class UploadDeleted(BaseModel):
    video_id: str
    message: str


class FeedbackTextPublic(BaseModel):
    improvement: str
    recommendations: str


class FeedbackTexts(BaseModel):
    gaze_processing: FeedbackTextPublic
    facial_expression: FeedbackTextPublic
    gestures: FeedbackTextPublic
    posture_body: FeedbackTextPublic
    movement: FeedbackTextPublic


class FeedbackFramePublic(BaseModel):
    video_id: str
    frame_index: int
    timestamp: str  # "Xm Ys"
    feedback_text: FeedbackTexts
    image_base64: str  # JPEG, plain base64 (no data: prefix)
    t: float  # extra: media seconds
    cues: list[str]  # extra: the cues flagged at this frame


class UploadFeedback(BaseModel):
    feedbacks: list[FeedbackFramePublic]
    message: str
    problem: Literal["processing", "success", "no_feedback", "failed"]
    # extras
    video_id: str
    progress: float  # 0-100
    duration_s: float | None
    report_url: str | None
    recording_url: str | None
    report_html_url: str | None = None
