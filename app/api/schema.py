"""The JSON Schemas a front end generates its types from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.events import event_json_schema

router = APIRouter(prefix="/api/schema", tags=["schema"])
EVENT_SCHEMA = event_json_schema()


@router.get(
    "/events",
    responses={200: {"description": "A JSON Schema (draft 2020-12), one `oneOf` over `type`"}},
)
async def event_schema() -> dict[str, Any]:
    """Every event a session sends (WebSocket, data channel, `GET .../events`)."""
    return EVENT_SCHEMA
