"""A real `SessionManager` (SQLite repository, event writer, bus, executors) without a server,
for tests of stages that the manager calls (report building, retention)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from app.config import Settings
from app.live.bus import InMemoryEventBus
from app.live.manager import Services, SessionManager
from app.store.repository import EventWriter, SessionRepository
from app.wiring import default_hooks


@asynccontextmanager
async def running_manager(settings: Settings) -> AsyncIterator[SessionManager]:
    settings.sessions_dir.mkdir(parents=True, exist_ok=True)
    repo = SessionRepository(settings.resolved_database_url)
    await repo.init()
    writer = EventWriter(repo)
    writer.start()
    executors = [ThreadPoolExecutor(1) for _ in range(3)]
    services = Services(
        settings=settings,
        repo=repo,
        writer=writer,
        bus=InMemoryEventBus(),
        decode_executor=executors[0],
        analysis_executor=executors[1],
        audio_executor=executors[2],
        hooks=default_hooks(settings),
        replica_id="test",
    )
    try:
        yield SessionManager(services)
    finally:
        await writer.close()
        for executor in executors:
            executor.shutdown(wait=True)
        await repo.close()
