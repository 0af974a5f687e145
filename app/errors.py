"""Stable machine error codes and the one exception that carries them out of a service.

A `CoachError` says what went wrong (`code`, one of `ErrorCode`), in words (`message`), with
what else a client needs (`extra`) and, for a refusal that passes, when to try again
(`retry_after_s`). It has no HTTP meaning: app/api/errors.py gives each code its status and
headers.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorCode = Literal[
    # who is asking, about what: unknown ids, a missing or wrong session token
    "session_not_found",
    "video_not_found",
    "pitch_not_found",
    "take_not_found",  # a session id that is not a take of the pitch asked about
    "token_missing",
    "token_invalid",
    # what was sent
    "bad_offer",
    "not_multipart",
    "bad_multipart",
    "no_file",
    "not_a_video",
    "too_large",
    "video_too_large",
    "video_too_long",
    # the session's or the upload's state
    "session_not_live",
    "session_active",
    "session_owned_elsewhere",
    "report_not_ready",
    "report_html_not_ready",
    "take_not_completed",
    "recording_not_ready",
    "report_missing",
    "recording_missing",
    # capacity: try again later (`retry_after_s`)
    "rate_limited",
    "too_many_sessions",
    "overloaded",
    "disk_full",
    "busy",
    "owner_unreachable",
]


class CoachError(Exception):
    """An error with a stable machine `code`, raised by services and routes and turned into
    JSON by the API.

    The pipeline never raises across stages; it emits `error` events instead.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after_s: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.extra = extra or {}

    def detail(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def not_found(what: Literal["session", "video"] = "session") -> CoachError:
    code: ErrorCode = "video_not_found" if what == "video" else "session_not_found"
    return CoachError(code, f"No such {what}.")
