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
    # A take of this pitch: needs the pitch's token (`Authorization: Bearer <pitch token>`).
    pitch_id: str | None = Field(default=None, min_length=1, max_length=64)


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
    pitch_id: str | None = None  # extra: a take of this pitch
    take: int | None = None  # extra: its take number


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


# A recording honours HTTP `Range` (Starlette's FileResponse): its refusals of a range are
# plain text, not the error JSON.
RANGE_REQUEST: dict[str, Any] = {
    "parameters": [
        {
            "name": "Range",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "A byte range, e.g. `bytes=0-1023`; answered with 206.",
        }
    ]
}
RANGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole recording", "content": {"video/webm": {}}},
    206: {
        "description": "The byte range asked for (several: multipart/byteranges)",
        "content": {"video/webm": {}, "multipart/byteranges": {}},
    },
    400: {
        "description": "A malformed `Range` header",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    416: {
        "description": "A `Range` past the end of the recording",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}


def links_to(operations: dict[str, str], parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """OpenAPI `links` of a success answer: for each `name: operationId` (the route function's
    name, see `create_app`), the `parameters` that answer fills in (runtime expressions)."""
    return {
        name: {"operationId": operation_id, "parameters": parameters}
        for name, operation_id in operations.items()
    }


# `POST /api/sessions` -> every call that takes the new session's id and token. The token is
# given both ways the calls take it (the header wins when a client sends both).
SESSION_LINKS = links_to(
    {
        "GetSession": "get_session",
        "EndSession": "end_session",
        "ListEvents": "list_events",
        "GetReport": "get_report",
        "GetReportHtml": "get_report_html",
        "GetRecording": "get_recording",
        "DeleteSession": "delete_session",
        "PostOffer": "offer",
    },
    {
        "path.session_id": "$response.body#/session_id",
        "header.Authorization": "Bearer {$response.body#/token}",
        "query.token": "$response.body#/token",
    },
)


# --- pitches and their takes (contract v1.1) --------------------------------------------------


class PitchCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(default="", max_length=200)
    language: Literal["ko", "en"] = "ko"
    # The take's intended length: the `time` cue at 80 % of it and past it.
    target_duration_s: float | None = Field(default=None, gt=0.0, le=24 * 3600.0)


class PitchCreated(BaseModel):
    pitch_id: str
    token: str
    title: str
    language: Literal["ko", "en"]
    target_duration_s: float | None
    created_at: UtcDatetime


class TakeScores(BaseModel):
    eye_contact: int | None
    posture: int | None
    gestures: int | None
    voice: int | None
    overall: int | None


class TakeFigures(BaseModel):
    eye_contact_share: float | None = Field(description="0-1, the share of time on camera")
    fillers_per_min: float | None
    words_per_min: float | None
    cues_on: int | None = Field(description="cues (other than `time`) that turned on")
    looking_down_share: float | None = Field(
        default=None, description="0-1, the share of time looking down (additive to v1.1)"
    )


class Take(BaseModel):
    take: int
    session_id: str
    state: Literal["created", "live", "finalizing", "completed", "failed"]
    created_at: UtcDatetime
    duration_s: float | None
    scores: TakeScores | None
    figures: TakeFigures
    report_url: str | None
    recording_url: str | None


class Pitch(BaseModel):
    pitch_id: str
    title: str
    language: Literal["ko", "en"]
    target_duration_s: float | None
    created_at: UtcDatetime
    takes: list[Take]


class ScoreDelta(BaseModel):
    eye_contact: float | None
    posture: float | None
    gestures: float | None
    voice: float | None
    overall: float | None


class FigureDelta(BaseModel):
    eye_contact_share: float | None
    fillers_per_min: float | None
    words_per_min: float | None
    cues_on: float | None
    looking_down_share: float | None = None


class TakeDelta(BaseModel):
    scores: ScoreDelta
    figures: FigureDelta


class TakeComparison(BaseModel):
    a: Take
    b: Take
    delta: TakeDelta = Field(description="`b - a`; null where either side is null")


# What any call under /api/pitches/{id} may answer besides its success.
PITCH_ERRORS = error_responses(401, 403, 404, 422)

# `POST /api/pitches` -> every call that takes the new pitch's id and token.
PITCH_LINKS = links_to(
    {
        "GetPitch": "get_pitch",
        "ComparePitchTakes": "compare_takes",
        "DeletePitch": "delete_pitch",
    },
    {
        "path.pitch_id": "$response.body#/pitch_id",
        "header.Authorization": "Bearer {$response.body#/token}",
        "query.token": "$response.body#/token",
    },
)


# --- the upload flow (the original Pitching engine's shapes) ----------------------------------


class UploadAccepted(BaseModel):
    video_id: str
    message: str


# `POST /api/video/receive-video/` -> every call that takes the upload's id (no token: the id is
# unguessable).
UPLOAD_LINKS = links_to(
    {
        "GetFeedback": "video_send_feedback",
        "DeleteFiles": "delete_files",
        "GetRecording": "upload_recording",
        "GetReport": "upload_report",
        "GetReportHtml": "upload_report_html",
    },
    {"path.video_id": "$response.body#/video_id"},
)


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
    # what was said, once analysed: the report's `transcript`, `fillers` and `content`
    transcript: dict[str, Any] | None = None
    fillers: dict[str, Any] | None = None
    content: dict[str, Any] | None = None
