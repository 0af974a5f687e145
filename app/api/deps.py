"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from app.config import Settings
from app.live.manager import SessionManager
from app.live.pitches import authorize_pitch
from app.store.db import PitchRow, SessionRow
from app.upload.service import UploadService


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_manager(request: Request) -> SessionManager:
    manager: SessionManager = request.app.state.manager
    return manager


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[SessionManager, Depends(get_manager)]


# The session token, declared as two alternative security schemes for the OpenAPI description
# (either one opens the session). Neither refuses anything itself (`auto_error=False`):
# `authorized_session` answers 401 `token_missing` / 403 `token_invalid` with the error JSON.
session_bearer = HTTPBearer(
    scheme_name="sessionToken",
    description="The session's token (`token` of `POST /api/sessions`), or for a take of a "
    "pitch the pitch's token: `Authorization: Bearer <token>`.",
    auto_error=False,
)
session_token_query = APIKeyQuery(
    name="token",
    scheme_name="sessionTokenQuery",
    description="The session's token as the query parameter `?token=<token>` (for links and "
    "the WebSocket); the Authorization header wins when both are sent.",
    auto_error=False,
)


def sent_token(request: Request) -> str | None:
    """The token sent with the call: `Authorization: Bearer <token>` first, else `?token=`.
    Declares no security scheme (`POST /api/sessions` takes a pitch's token, optionally)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token")


def bearer_token(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(session_bearer)],
    _query: Annotated[str | None, Security(session_token_query)],
) -> str | None:
    return sent_token(request)


async def authorized_session(
    manager: ManagerDep,
    session_id: Annotated[str, Path()],
    token: Annotated[str | None, Depends(bearer_token)],
) -> SessionRow:
    return await manager.authorize(session_id, token)


SessionRowDep = Annotated[SessionRow, Depends(authorized_session)]
SentTokenDep = Annotated[str | None, Depends(sent_token)]


# The pitch's token, the same two ways; a take's own session token does not open the pitch.
pitch_bearer = HTTPBearer(
    scheme_name="pitchToken",
    description="The pitch's token (`token` of `POST /api/pitches`): "
    "`Authorization: Bearer <token>`.",
    auto_error=False,
)
pitch_token_query = APIKeyQuery(
    name="token",
    scheme_name="pitchTokenQuery",
    description="The pitch's token as the query parameter `?token=<token>`; the Authorization "
    "header wins when both are sent.",
    auto_error=False,
)


async def authorized_pitch(
    request: Request,
    manager: ManagerDep,
    pitch_id: Annotated[str, Path()],
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(pitch_bearer)],
    _query: Annotated[str | None, Security(pitch_token_query)],
) -> PitchRow:
    return await authorize_pitch(manager, pitch_id, sent_token(request))


PitchRowDep = Annotated[PitchRow, Depends(authorized_pitch)]


def get_uploads(request: Request) -> UploadService:
    uploads: UploadService = request.app.state.uploads
    return uploads


UploadsDep = Annotated[UploadService, Depends(get_uploads)]
