"""The HTTP meaning of the errors: one table from each `ErrorCode` to its status, the headers
that go with it, and the handlers that answer every error as `{"detail": {"code", "message",
...}}`. Services raise `CoachError` with a code and no status; only this module knows HTTP."""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import CoachError, ErrorCode

HTTP_STATUS: Final[dict[ErrorCode, int]] = {
    "session_not_found": 404,
    "video_not_found": 404,
    "pitch_not_found": 404,
    "take_not_found": 404,
    "token_missing": 401,  # with WWW-Authenticate: Bearer
    "token_invalid": 403,
    "bad_offer": 400,
    "not_multipart": 400,
    "bad_multipart": 400,
    "no_file": 400,
    "not_a_video": 400,
    "too_large": 413,
    "video_too_large": 413,
    "video_too_long": 413,
    "session_not_live": 409,
    "session_active": 409,
    "session_owned_elsewhere": 409,
    "report_not_ready": 409,
    "report_html_not_ready": 409,
    "take_not_completed": 409,
    "recording_not_ready": 409,
    "report_missing": 404,
    "recording_missing": 404,
    "rate_limited": 429,
    "too_many_sessions": 503,
    "overloaded": 503,
    "disk_full": 503,
    "busy": 503,
    "owner_unreachable": 503,
}

# Starlette's own refusals (no route, wrong method, a body over a limit) get codes too.
_STARLETTE_CODES: Final[dict[int, str]] = {
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def http_status(exc: CoachError) -> int:
    return HTTP_STATUS[exc.code]


def http_headers(exc: CoachError) -> dict[str, str] | None:
    """`Retry-After` for a refusal that passes, `WWW-Authenticate` for a missing token."""
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    if exc.code == "token_missing":
        headers["WWW-Authenticate"] = "Bearer"
    return headers or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoachError)
    async def coach_error(_request: Request, exc: CoachError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail()}, status_code=http_status(exc), headers=http_headers(exc)
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {
                "detail": {
                    "code": "invalid_request",
                    "message": f"{where}: {first.get('msg', 'invalid')}",
                }
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {
                "detail": {
                    "code": _STARLETTE_CODES.get(exc.status_code, f"http_{exc.status_code}"),
                    "message": str(exc.detail),
                }
            },
            status_code=exc.status_code,
            headers=exc.headers,
        )
