"""The Celery worker's composition root: `celery -A app.worker worker` (with `COACH_JOBS=celery`).

Celery looks up `app.worker.app`: built on first access, with settings from the environment, so
importing this module needs neither Celery nor Redis. Each worker process builds its services
(`WorkerRuntime`) when its first job arrives and closes them when it shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from app.celery_jobs import CeleryJobRunner, make_celery, register_job_task
from app.config import Settings

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)


class WorkerRuntime:
    """What a worker process needs to run jobs, built from `Settings` by the first job: the
    repository, the Redis bus and ownership, the session manager (takeover recovery) and the
    upload service (analysis), all registered on one `CeleryJobRunner`, on an event loop of
    its own in a thread (Celery's pool calls `run` from its own threads)."""

    def __init__(self, settings: Settings, celery: Celery) -> None:
        self.settings = settings
        self._celery = celery
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._parts: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self.runner: CeleryJobRunner | None = None

    def run(self, kind: str, job_id: str) -> str:
        loop = self._ensure_started()
        return asyncio.run_coroutine_threadsafe(self._run(kind, job_id), loop).result()

    async def _run(self, kind: str, job_id: str) -> str:
        assert self.runner is not None
        outcome = await self.runner.execute(kind, job_id)
        bus = self._parts["cluster"].bus
        if hasattr(bus, "flush"):  # what the job published reaches the other replicas now
            with contextlib.suppress(Exception):
                await bus.flush()
        return outcome

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="coach-worker-loop", daemon=True
                )
                thread.start()
                try:
                    asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=300)
                except BaseException:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join(timeout=10)
                    raise
                self._loop, self._thread = loop, thread
            return self._loop

    async def _start(self) -> None:
        # Imported by the first job, not when Celery loads this module (before it forks its pool).
        from app.live.cluster import start_cluster
        from app.live.manager import SessionManager
        from app.live.services import open_services
        from app.logs import configure_logging
        from app.upload.report import upload_report_builder
        from app.upload.service import UploadService
        from app.wiring import default_hooks, make_upload_critic, upload_stages

        settings = self.settings
        configure_logging(settings.log.level, settings.log.json_lines)
        settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        worker_id = f"{settings.cluster.replica_id or socket.gethostname()}-{os.getpid()}"
        cluster = await start_cluster(settings, worker_id)
        self._parts["cluster"] = cluster
        if cluster.redis is None:
            raise RuntimeError("a Celery worker needs COACH_REDIS_URL (the bus and ownership)")
        runner = CeleryJobRunner(settings, cluster.redis, celery=self._celery, holder=worker_id)
        await runner.start()
        hooks = default_hooks(settings)
        services = await self._stack.enter_async_context(
            open_services(
                settings,
                hooks,
                worker_id,
                bus=cluster.bus,
                threads=(1, 1, 1),
                ownership=cluster.ownership,
                jobs=runner,  # registers takeover recovery
            )
        )
        manager = SessionManager(services)
        uploads = UploadService(
            settings=settings,
            repo=services.repo,
            jobs=runner,
            stages=upload_stages(hooks),
            make_critic=make_upload_critic,
            report_builder=upload_report_builder(settings),
        )
        uploads.register_jobs()
        self.runner = runner
        self._parts["manager"] = manager
        log.info("worker %s ready for jobs", worker_id)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(timeout=60)
        except Exception:
            log.exception("closing the worker runtime failed")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    async def _aclose(self) -> None:
        parts = self._parts
        if self.runner is not None:
            await self.runner.stop()
        manager = parts.get("manager")
        if manager is not None:
            await manager.shutdown(timeout=10)
            await manager.close_stages()
        await self._stack.aclose()  # the writer, the executors, the repository
        if "cluster" in parts:
            await parts["cluster"].aclose()


def worker_app() -> Celery:
    """The worker's Celery app: settings from the environment, the job task run on this
    process's `WorkerRuntime`, closed when the worker (or a pool process) shuts down."""
    from celery import signals

    settings = Settings()
    celery = make_celery(settings)
    runtime = WorkerRuntime(settings, celery)
    register_job_task(celery, runtime.run)

    def close(**_kwargs: Any) -> None:
        runtime.close()

    signals.worker_process_shutdown.connect(close, weak=False)
    signals.worker_shutdown.connect(close, weak=False)
    return celery


def __getattr__(name: str) -> Any:
    # `celery -A app.worker worker` looks up `app.worker.app`: built here, on demand.
    if name in ("app", "celery"):
        celery_app = worker_app()
        globals()["app"] = globals()["celery"] = celery_app
        return celery_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
