"""Deleting finished sessions: on request (`DELETE /api/sessions/{id}`) and when they expire
(`Settings.retention_days`, swept every `retention_sweep_s` by a task the lifespan starts, which
also sweeps the uploads: `UploadService.sweep_expired`), and the pitches left without takes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from app.store.db import SessionRow
from app.store.files import LocalArtefactStore

if TYPE_CHECKING:
    from app.live.manager import SessionManager

log = logging.getLogger(__name__)

FINISHED_STATES = ("completed", "failed")


def artefact_store(manager: SessionManager) -> LocalArtefactStore:
    return LocalArtefactStore(manager.settings.sessions_dir)


async def delete_session(manager: SessionManager, session_id: str) -> None:
    """Remove a finished session's files, then its rows (files first: a row without files is
    harmless, files without a row would never be found again)."""
    store = artefact_store(manager)
    await asyncio.to_thread(store.delete_session_files, session_id)
    await manager.repo.delete_session(session_id)
    log.info("session deleted", extra={"session_id": session_id})


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def fail_unstarted(manager: SessionManager, now: datetime) -> list[str]:
    """Mark `failed` (reason `never_started`) the sessions created more than `created_ttl_s`
    ago that never went live and that no process holds or times: e.g. created just before a
    restart, or on a replica that died. (A process ends its own unused sessions at their
    deadline: `SessionManager.expire_created`.) Without this they would stay `created`
    forever, neither deletable (409) nor swept. Returns their ids."""
    cutoff = now - timedelta(seconds=manager.settings.limits.created_ttl_s)
    ownership = manager.services.ownership
    failed: list[str] = []
    for row in await manager.repo.sessions_in_states(("created",)):
        if row.id in manager.sessions or row.id in manager.created:
            continue
        if _aware(row.created_at) >= cutoff:
            continue
        if ownership is not None and await ownership.owner(row.id) is not None:
            continue  # another replica holds it
        # the same end as at a deadline: the row, one `state` event, listeners told
        if await manager.expire_created(row.id):
            failed.append(row.id)
    if failed:
        log.info("retention: %d sessions never started; marked failed", len(failed))
    return failed


def retention_cutoff(retention_days: float, now: datetime | None) -> datetime | None:
    """When finished work expires, or None while retention is off (`retention_days` <= 0)."""
    if retention_days <= 0:
        return None
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


async def delete_finished_before(
    rows: Sequence[SessionRow],
    cutoff: datetime,
    delete: Callable[[str], Awaitable[object]],
    what: str,
    id_key: str,
) -> list[str]:
    """Delete each row (with `delete`) that finished before `cutoff`; one failure is logged
    and leaves the others to go. Returns the deleted ids."""
    deleted: list[str] = []
    for row in rows:
        if _aware(row.ended_at or row.created_at) >= cutoff:
            continue
        try:
            await delete(row.id)
        except Exception:
            log.exception("retention: could not delete a %s", what, extra={id_key: row.id})
            continue
        deleted.append(row.id)
    if deleted:
        log.info("retention: deleted %d expired %ss", len(deleted), what)
    return deleted


async def sweep_expired(manager: SessionManager, now: datetime | None = None) -> list[str]:
    """Delete live-coaching sessions that finished more than `retention_days` ago. Returns the
    deleted ids. Sessions still in this process, or not finished, are never touched. First
    marks the sessions that never started as failed (`fail_unstarted`)."""
    now = now or datetime.now(UTC)
    await fail_unstarted(manager, now)
    cutoff = retention_cutoff(manager.settings.storage.retention_days, now)
    if cutoff is None:
        return []
    rows = [
        row
        for row in await manager.repo.sessions_ended_before(cutoff)
        if row.kind == "live" and row.state in FINISHED_STATES and row.id not in manager.sessions
    ]
    deleted = await delete_finished_before(
        rows,
        cutoff,
        lambda session_id: delete_session(manager, session_id),
        "session",
        "session_id",
    )
    # A pitch goes once it is past retention itself and none of its takes is left (each take
    # expires on its own, like any session).
    pitches = await manager.repo.delete_pitches_without_takes(cutoff)
    if pitches:
        log.info("retention: deleted %d pitches without takes", len(pitches))
    return deleted


async def retention_loop(manager: SessionManager, *more: Callable[[], Awaitable[object]]) -> None:
    """Sweep this process's sessions, then each of `more` (the uploads':
    `UploadService.sweep_expired`), at start and then every `retention_sweep_s`; a failed
    sweep waits for the next."""
    while True:
        try:
            await sweep_expired(manager)
            for sweep in more:
                await sweep()
        except Exception:
            log.exception("retention sweep failed")
        await asyncio.sleep(max(1.0, manager.settings.storage.retention_sweep_s))
