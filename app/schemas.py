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
