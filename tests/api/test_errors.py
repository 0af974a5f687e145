"""The HTTP meaning of the error codes lives in one table in app/api: every code keeps its
status and headers on the wire, and nothing below app/api speaks HTTP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import httpx
import pytest
from fastapi import FastAPI

from app.api.errors import HTTP_STATUS, http_headers, http_status, install_error_handlers
from app.errors import CoachError, ErrorCode, not_found

# The wire contract: what each code has always answered (docs/protocol.md, the OpenAPI errors).
EXPECTED_STATUS: dict[str, int] = {
    "session_not_found": 404,
    "video_not_found": 404,
    "pitch_not_found": 404,
    "take_not_found": 404,
    "token_missing": 401,
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

APP = Path(__file__).resolve().parents[2] / "app"
# An HTTP client's view of a response it received (the VLM endpoint), not an answer we give.
HTTP_CLIENTS = {"coaching/critic/vlm.py", "analysis/asr.py"}  # clients of outside services
HTTP_WORDS = re.compile(r"status_code|Retry-After|WWW-Authenticate|HTTPException")


def test_every_code_has_one_status_and_the_table_covers_every_code() -> None:
    assert set(HTTP_STATUS) == set(get_args(ErrorCode))
    assert dict(HTTP_STATUS) == EXPECTED_STATUS


@pytest.mark.parametrize("code", sorted(EXPECTED_STATUS))
async def test_each_code_answers_its_status_and_body(code: ErrorCode) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/refuse")
    async def refuse() -> None:
        raise CoachError(code, "refused", extra={"owner": "replica-a"})

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/refuse")
    assert answer.status_code == EXPECTED_STATUS[code]
    assert answer.json() == {"detail": {"code": code, "message": "refused", "owner": "replica-a"}}
    assert "retry-after" not in answer.headers
    assert ("www-authenticate" in answer.headers) == (code == "token_missing")


def test_headers_come_from_the_code_and_the_retry_value() -> None:
    refused = CoachError("rate_limited", "later", retry_after_s=60)
    assert http_status(refused) == 429
    assert http_headers(refused) == {"Retry-After": "60"}
    missing = CoachError("token_missing", "a token, please")
    assert http_headers(missing) == {"WWW-Authenticate": "Bearer"}
    assert http_headers(CoachError("token_invalid", "wrong")) is None
    assert not_found("video").code == "video_not_found"
    assert http_status(not_found()) == 404


def test_no_module_below_app_api_speaks_http() -> None:
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if relative.startswith("api/") or relative in HTTP_CLIENTS:
            continue
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if HTTP_WORDS.search(line):
                offenders.append(f"app/{relative}:{number}: {line.strip()}")
    assert offenders == [], "HTTP statuses and headers belong in app/api/errors.py"
