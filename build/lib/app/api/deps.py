"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from app.config import Settings
from app.live.manager import SessionManager
from app.store.db import SessionRow


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_manager(request: Request) -> SessionManager:
    manager: SessionManager = request.app.state.manager
    return manager


SettingsDep = Annotated[Settings, Depends(get_settings)]
ManagerDep = Annotated[SessionManager, Depends(get_manager)]


def bearer_token(request: Request, token: str | None = Query(default=None)) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return token


async def authorized_session(
    manager: ManagerDep,
    session_id: Annotated[str, Path()],
    token: Annotated[str | None, Depends(bearer_token)],
) -> SessionRow:
    return await manager.authorize(session_id, token)


SessionRowDep = Annotated[SessionRow, Depends(authorized_session)]
