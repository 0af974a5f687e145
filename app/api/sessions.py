"""REST routes of the live sessions: create, read, end, events and the session's artefacts."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from app.api.deps import ManagerDep, SentTokenDep, SessionRowDep, SettingsDep
from app.errors import CoachError
from app.live import retention
from app.live.manager import ACTIVE_STATES, artefact_urls
from app.live.pitches import authorize_pitch
from app.media.http_range import webm_file_response
from app.schemas import (
    RANGE_ANSWERS,
    RANGE_REQUEST,
    SESSION_ERRORS,
    SESSION_LINKS,
    DeletedAnswer,
    EndAnswer,
    EventList,
    SessionCreate,
    SessionCreated,
    SessionPublic,
    error_responses,
)
from app.security import REPORT_HEADERS

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _base_urls(request: Request, settings: SettingsDep) -> tuple[str, str]:
    if settings.transport.public_base_url:
        http = settings.transport.public_base_url.rstrip("/")
    else:
        http = str(request.base_url).rstrip("/")
    ws = "wss" + http[5:] if http.startswith("https") else "ws" + http[4:]
    return http, ws


@router.post(
    "",
    status_code=201,
    response_model=SessionCreated,
    responses={
        201: {"description": "The new session and its token", "links": SESSION_LINKS},
        # 400: a body that is not even text (FastAPI cannot decode it); 422: not the model;
        # with `pitch_id`: 401 / 403 without the pitch's token or with another, 404 no such pitch
        **error_responses(400, 401, 403, 404, 422, 429, 503),
    },
)
async def create_session(
    request: Request,
    manager: ManagerDep,
    settings: SettingsDep,
    pitch_token: SentTokenDep,
    body: Annotated[SessionCreate | None, Body()] = None,
) -> SessionCreated:
    """A new session. With `pitch_id` (and `Authorization: Bearer <pitch token>`) it is the
    pitch's next take, in the pitch's language (and with its title when none is given)."""
    body = body or SessionCreate()
    pitch = None
    if body.pitch_id is not None:
        pitch = await authorize_pitch(manager, body.pitch_id, pitch_token)
    session, token, created_at = await manager.create(
        title=body.title,
        language=body.language,
        critique_interval_s=body.critique_interval_s,
        client=_client(request),
        pitch=pitch,
    )
    http, ws = _base_urls(request, settings)
    return SessionCreated(
        session_id=session.id,
        token=token,
        state="created",
        ws_url=f"{ws}/ws/sessions/{session.id}?token={token}",
        offer_url=f"{http}/api/sessions/{session.id}/offer",
        created_at=created_at,
    )


@router.get("/{session_id}", response_model=SessionPublic, responses=SESSION_ERRORS)
async def get_session(row: SessionRowDep, manager: ManagerDep) -> SessionPublic:
    live = manager.sessions.get(row.id)
    if live is not None and live.state in ("completed", "failed") and live.state != row.state:
        # The row was read before the finaliser's last update (it writes the row, then the
        # session's state): read it again, or a `completed` answer could lack its report_url.
        row = await manager.repo.get_session(row.id) or row
    urls = artefact_urls(row.id)
    state = live.state if live is not None else row.state
    return SessionPublic(
        session_id=row.id,
        title=row.title,
        language=row.language,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        reason=live.reason if live is not None and live.reason else row.reason,
        recovered=row.recovered,
        created_at=row.created_at,
        started_at=live.started_at if live is not None else row.started_at,
        ended_at=live.ended_at if live is not None else row.ended_at,
        duration_s=manager.duration_s(row),
        frames_received=live.frames_received if live is not None else row.frames_received,
        frames_analyzed=live.frames_analyzed if live is not None else row.frames_analyzed,
        frames_dropped=live.frames_dropped if live is not None else row.frames_dropped,
        report_url=urls["report_url"] if row.has_report and state == "completed" else None,
        recording_url=urls["recording_url"] if row.has_recording else None,
        pitch_id=row.pitch_id,
        take=row.take,
    )


@router.post(
    "/{session_id}/end",
    status_code=202,
    response_model=EndAnswer,
    # 503 `owner_unreachable`: with replicas, the replica that holds the session cannot be asked
    responses={**SESSION_ERRORS, **error_responses(503)},
)
async def end_session(row: SessionRowDep, manager: ManagerDep) -> EndAnswer:
    # Any replica: one that does not hold the session's media forwards the end to its owner.
    return EndAnswer(state=await manager.end(row, "ended"))


@router.get("/{session_id}/events", response_model=EventList, responses=SESSION_ERRORS)
async def list_events(
    row: SessionRowDep,
    manager: ManagerDep,
    after_seq: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> EventList:
    return EventList(events=await manager.repo.list_events(row.id, after_seq=after_seq))


def _require_completed(row_state: str) -> None:
    if row_state != "completed":
        raise CoachError(
            "report_not_ready",
            f"The report is ready once the session is completed (it is {row_state}).",
        )


@router.get("/{session_id}/report", responses={**SESSION_ERRORS, **error_responses(409)})
async def get_report(row: SessionRowDep, manager: ManagerDep) -> JSONResponse:
    _require_completed(row.state)
    path = manager.session_dir(row.id) / "report.json"
    if not path.is_file():
        raise CoachError("report_missing", "No report was built for this session.")
    return JSONResponse(json.loads(path.read_text("utf-8")))


@router.get(
    "/{session_id}/report.html",
    # FileResponse has no media type of its own: the errors stay documented as JSON
    response_class=FileResponse,
    responses={**SESSION_ERRORS, **error_responses(409), 200: {"content": {"text/html": {}}}},
)
async def get_report_html(row: SessionRowDep, manager: ManagerDep) -> FileResponse:
    _require_completed(row.state)
    path = manager.session_dir(row.id) / "report.html"
    if not path.is_file():
        raise CoachError("report_missing", "No report was built for this session.")
    return FileResponse(
        path,
        media_type="text/html; charset=utf-8",
        headers=REPORT_HEADERS,
    )


@router.get(
    "/{session_id}/recording.webm",
    response_class=FileResponse,
    responses={
        **SESSION_ERRORS,
        **error_responses(409),
        **RANGE_ANSWERS,
    },
    openapi_extra=RANGE_REQUEST,
)
async def get_recording(row: SessionRowDep, manager: ManagerDep) -> FileResponse:
    path = manager.session_dir(row.id) / "recording.webm"
    if row.state not in ("completed", "failed"):
        raise CoachError(
            "recording_not_ready", "The recording is ready once the session is completed."
        )
    if not path.is_file():  # finished without one (it never received media)
        raise CoachError("recording_missing", "No recording was made for this session.")
    return webm_file_response(path, download_name=f"rehearsal-{row.id[:8]}.webm")


@router.delete(
    "/{session_id}",
    response_model=DeletedAnswer,
    responses={**SESSION_ERRORS, **error_responses(409)},
)
async def delete_session(row: SessionRowDep, manager: ManagerDep) -> DeletedAnswer:
    """Remove a finished session's recording, report and rows. 409 while it is still active."""
    live = manager.sessions.get(row.id)
    state = live.state if live is not None else row.state
    if state in ACTIVE_STATES:
        raise CoachError(
            "session_active",
            f"The session is {state}; end it and wait until it is completed before deleting it.",
        )
    if live is not None:
        # Completed a moment ago: let the finaliser write its last events before the rows go.
        try:
            await asyncio.wait_for(live.finalized.wait(), timeout=30)
        except TimeoutError:
            raise CoachError(
                "session_active", "The session is still finishing; try again in a moment."
            ) from None
    await retention.delete_session(manager, row.id)
    return DeletedAnswer(session_id=row.id, message="The session and its files were deleted.")
