"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.api.deps import ManagerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "the database cannot be reached"}},
)
async def readyz(manager: ManagerDep) -> JSONResponse:
    try:
        async with manager.repo.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ready", "sessions": len(manager.sessions)})


@router.get("/metrics", include_in_schema=False)
async def metrics(manager: ManagerDep) -> Response:
    return Response(
        generate_latest(manager.services.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
