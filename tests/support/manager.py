"""A real `SessionManager` (SQLite repository, event writer, bus, executors) without a server,
for tests of stages that the manager calls (report building, retention)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.config import Settings
from app.live.manager import SessionManager
from app.live.services import open_services
from app.wiring import default_hooks


@asynccontextmanager
async def running_manager(settings: Settings) -> AsyncIterator[SessionManager]:
    """Stopped as the server stops it: its sessions ended, then the shared stages closed (the
    Pose and face worker processes a session started must not outlive the test)."""
    async with open_services(settings, default_hooks(settings), "test", threads=(1, 1, 1)) as s:
        manager = SessionManager(s)
        try:
            yield manager
        finally:
            await manager.shutdown()
            await manager.close_stages()
