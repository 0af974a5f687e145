"""The server's composition root, the ASGI app: `uvicorn app.main:app`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from app.api import health, pitches, schema, sessions, upload, webrtc, ws
from app.api.errors import install_error_handlers
from app.config import Settings
from app.live.cluster import make_replica_id, start_cluster
from app.live.load import LoadMonitor
from app.live.manager import SessionManager
from app.live.retention import retention_loop
from app.live.rtc import RtcPeers
from app.live.services import Hooks, open_services
from app.logs import configure_logging, request_id_var
from app.memory import tune_malloc
from app.security import SecurityHeaders, install_log_redaction
from app.upload.report import upload_report_builder
from app.upload.service import UploadService
from app.wiring import default_hooks, make_job_runner, make_upload_critic, upload_stages

log = logging.getLogger("app")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def operation_id(route: APIRoute) -> str:
    """An operation's OpenAPI `operationId` is its route function's name (`get_session`), which
    the `links` of the answers that create something refer to (app/schemas.py)."""
    return route.name


def create_app(settings: Settings | None = None, hooks: Hooks | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log.level, settings.log.json_lines)
    tune_malloc()  # before the worker threads and their arenas exist (see app/memory.py)
    install_log_redaction()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        replica_id = make_replica_id(settings)
        cluster = await start_cluster(settings, replica_id)
        load = LoadMonitor(
            settings.cluster.shed_cpu_percent, retry_after_s=settings.cluster.shed_retry_after_s
        )
        load.start()
        jobs = make_job_runner(settings, cluster.redis)
        await jobs.start()
        try:
            async with open_services(
                settings,
                hooks or default_hooks(settings),
                replica_id,
                bus=cluster.bus,
                ownership=cluster.ownership,
                control=cluster.control,
                load=load,
                # On Celery, takeover recovery is a job too; in-process it stays on the replica.
                jobs=jobs if settings.cluster.jobs == "celery" else None,
            ) as services:
                manager = SessionManager(services)
                if cluster.control is not None:
                    cluster.control.start(manager.request_end)
                rtc_peers = RtcPeers(settings, services.bus)
                app.state.settings = settings
                app.state.manager = manager
                app.state.rtc_peers = rtc_peers
                manager.spawn(manager.recover_orphans(), "recover-orphans")
                uploads = UploadService(
                    settings=settings,
                    repo=services.repo,
                    jobs=jobs,
                    stages=upload_stages(services.hooks),
                    make_critic=make_upload_critic,
                    report_builder=upload_report_builder(settings),
                )
                await uploads.start()
                app.state.uploads = uploads
                manager.spawn(retention_loop(manager, uploads.sweep_expired), "retention")
                if cluster.ownership is not None:
                    manager.spawn(manager.watch_orphans(), "watch-orphans")
                log.info("coach ready", extra={"data_dir": str(settings.storage.data_dir)})
                try:
                    yield
                finally:
                    log.info("shutting down: ending live sessions")
                    try:
                        await manager.shutdown()
                        await jobs.stop()
                        # Finalising closed the peers of ended sessions (after their last
                        # events went out on the data channel); whatever is left goes now.
                        await rtc_peers.close_all()
                    finally:
                        await manager.close_stages()
        finally:
            await jobs.stop()  # idempotent; for a failed start
            await load.aclose()
            await cluster.aclose()

    app = FastAPI(
        title="Pitching Live Coach",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings

    # Always installed: with the default empty allow-list a cross-origin preflight is refused
    # (400) instead of falling through to a route.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.transport.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(SecurityHeaders)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = request_id
        return response

    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(pitches.router)
    app.include_router(ws.router)
    app.include_router(upload.router)
    app.include_router(webrtc.router)
    app.include_router(schema.router)
    if STATIC_DIR.is_dir():
        app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="static")
    return app


app = create_app()
