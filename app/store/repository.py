"""The sessions repository: the only code that speaks SQL. Swap the URL, keep the calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.events import WireEvent
from app.store.db import EventRow, PitchRow, SessionRow, make_engine, make_sessionmaker
from app.store.migrate import upgrade_head

log = logging.getLogger(__name__)


class SessionRepository:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url)
        self._sessionmaker = make_sessionmaker(self.engine)

    async def init(self) -> None:
        """Migrate the schema to head (Alembic); idempotent, safe for replicas starting at once."""
        await upgrade_head(self.url)

    async def close(self) -> None:
        await self.engine.dispose()

    # --- sessions ------------------------------------------------------------------------
    async def create_session(self, row: SessionRow) -> SessionRow:
        async with self._sessionmaker() as db, db.begin():
            db.add(row)
        return row

    async def get_session(self, session_id: str) -> SessionRow | None:
        async with self._sessionmaker() as db:
            return await db.get(SessionRow, session_id)

    async def update_session(self, session_id: str, **fields: Any) -> None:
        async with self._sessionmaker() as db, db.begin():
            await db.execute(update(SessionRow).where(SessionRow.id == session_id).values(**fields))

    async def update_session_in_state(
        self, session_id: str, expected: str, /, **fields: Any
    ) -> bool:
        """Update the row only while it is in state `expected` (one statement, so a
        concurrent change of state wins); True when it was."""
        async with self._sessionmaker() as db, db.begin():
            result = await db.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.state == expected)
                .values(**fields)
            )
            return bool(getattr(result, "rowcount", 0))

    async def sessions_in_states(
        self, states: Iterable[str], kind: str = "live"
    ) -> list[SessionRow]:
        async with self._sessionmaker() as db:
            result = await db.execute(
                select(SessionRow).where(
                    SessionRow.state.in_(list(states)), SessionRow.kind == kind
                )
            )
            return list(result.scalars())

    async def count_sessions_in_states(self, states: Iterable[str]) -> int:
        async with self._sessionmaker() as db:
            result = await db.execute(
                select(func.count())
                .select_from(SessionRow)
                .where(SessionRow.state.in_(list(states)))
            )
            return int(result.scalar_one())

    async def sessions_ended_before(self, cutoff: datetime) -> list[SessionRow]:
        async with self._sessionmaker() as db:
            result = await db.execute(select(SessionRow).where(SessionRow.created_at < cutoff))
            return list(result.scalars())

    async def delete_session(self, session_id: str) -> None:
        async with self._sessionmaker() as db, db.begin():
            await db.execute(delete(EventRow).where(EventRow.session_id == session_id))
            await db.execute(delete(SessionRow).where(SessionRow.id == session_id))

    # --- pitches and their takes ---------------------------------------------------------
    async def create_pitch(self, row: PitchRow) -> PitchRow:
        async with self._sessionmaker() as db, db.begin():
            db.add(row)
        return row

    async def get_pitch(self, pitch_id: str) -> PitchRow | None:
        async with self._sessionmaker() as db:
            return await db.get(PitchRow, pitch_id)

    async def create_take(self, row: SessionRow) -> SessionRow | None:
        """Insert `row` as the next take of its pitch (`row.pitch_id`), numbered in the same
        transaction (concurrent takes get distinct numbers); None when the pitch is gone or
        being deleted."""
        async with self._sessionmaker() as db, db.begin():
            result = await db.execute(
                update(PitchRow)
                .where(PitchRow.id == row.pitch_id, PitchRow.deleting_at.is_(None))
                .values(takes_started=PitchRow.takes_started + 1)
                .returning(PitchRow.takes_started)
            )
            number = result.scalar_one_or_none()
            if number is None:
                return None
            row.take = int(number)
            db.add(row)
        return row

    async def takes_of(self, pitch_id: str) -> list[SessionRow]:
        """The pitch's takes, in take order."""
        async with self._sessionmaker() as db:
            result = await db.execute(
                select(SessionRow)
                .where(SessionRow.pitch_id == pitch_id)
                .order_by(SessionRow.take, SessionRow.created_at)
            )
            return list(result.scalars())

    async def mark_pitch_deleting(self, pitch_id: str, at: datetime) -> bool:
        """Mark the pitch as being deleted (kept when already marked): from then on no take is
        added to it (`create_take`; the row lock orders the two). True when there is one."""
        async with self._sessionmaker() as db, db.begin():
            result = await db.execute(
                update(PitchRow)
                .where(PitchRow.id == pitch_id)
                .values(deleting_at=func.coalesce(PitchRow.deleting_at, at))
            )
            return bool(getattr(result, "rowcount", 0))

    async def delete_pitch(self, pitch_id: str) -> bool:
        """The pitch's row only (its takes are deleted like any session, files first, before
        it); True when there was one."""
        async with self._sessionmaker() as db, db.begin():
            result = await db.execute(delete(PitchRow).where(PitchRow.id == pitch_id))
            return bool(getattr(result, "rowcount", 0))

    async def delete_pitches_without_takes(self, created_before: datetime) -> list[str]:
        """Delete the pitches created before `created_before` that have no take left; their
        ids."""
        async with self._sessionmaker() as db, db.begin():
            has_take = select(SessionRow.id).where(SessionRow.pitch_id == PitchRow.id).exists()
            result = await db.execute(
                select(PitchRow.id).where(PitchRow.created_at < created_before, ~has_take)
            )
            ids = list(result.scalars())
            if ids:
                await db.execute(
                    delete(PitchRow).where(
                        PitchRow.id.in_(ids),
                        ~select(SessionRow.id).where(SessionRow.pitch_id == PitchRow.id).exists(),
                    )
                )
            return ids

    # --- events --------------------------------------------------------------------------
    async def add_events(self, events: Sequence[WireEvent]) -> None:
        if not events:
            return
        async with self._sessionmaker() as db, db.begin():
            await db.execute(insert(EventRow), _event_rows(events))

    async def replace_events(self, session_id: str, events: Sequence[WireEvent]) -> None:
        """Swap a session's events for `events` in one transaction: a job that derives all of a
        session's events at once (an upload's analysis) can run again, after a crash or a
        redelivery, without duplicating one."""
        async with self._sessionmaker() as db, db.begin():
            await db.execute(delete(EventRow).where(EventRow.session_id == session_id))
            if events:
                await db.execute(insert(EventRow), _event_rows(events))

    async def list_events(
        self, session_id: str, *, after_seq: int = 0, types: Iterable[str] | None = None
    ) -> list[WireEvent]:
        async with self._sessionmaker() as db:
            query = select(EventRow.payload).where(
                EventRow.session_id == session_id, EventRow.seq > after_seq
            )
            if types is not None:
                query = query.where(EventRow.type.in_(list(types)))
            result = await db.execute(query.order_by(EventRow.seq))
            return [dict(p) for p in result.scalars()]

    async def max_seq(self, session_id: str) -> int:
        async with self._sessionmaker() as db:
            result = await db.execute(
                select(func.max(EventRow.seq)).where(EventRow.session_id == session_id)
            )
            return int(result.scalar_one() or 0)


class EventWriter:
    """Persists events in batches on its own task, so the frame loop never waits on the database.

    The queue is bounded (`max_pending`): when the database falls that far behind, `put` waits,
    which slows event production rather than losing an event or growing without limit.
    """

    def __init__(self, repo: SessionRepository, *, max_pending: int = 20_000, batch: int = 500):
        self._repo = repo
        self._queue: asyncio.Queue[WireEvent] = asyncio.Queue(maxsize=max_pending)
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        # Events put and events written so far: `flush` waits for the count put when it was
        # called, so a writer kept busy by other sessions does not hold it up.
        self._put = 0
        self._written = 0
        self._progress = asyncio.Condition()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-writer")

    async def put(self, event: WireEvent) -> None:
        await self._queue.put(event)
        self._put += 1  # counted once queued: a put cancelled while waiting adds nothing

    async def flush(self) -> None:
        """Wait until every event put so far is in the database (not for later ones)."""
        target = self._put
        async with self._progress:
            await self._progress.wait_for(lambda: self._written >= target)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for attempt in range(5):
                try:
                    await self._repo.add_events(batch)
                    break
                except Exception:
                    log.exception("event batch write failed (attempt %d)", attempt + 1)
                    await asyncio.sleep(0.2 * (attempt + 1))
            self._written += len(batch)
            async with self._progress:
                self._progress.notify_all()

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.wait_for(self.flush(), timeout=10)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _event_rows(events: Sequence[WireEvent]) -> list[dict[str, Any]]:
    """Rows for one executemany INSERT (Core, not ORM objects: the live event writer runs on
    the event loop, and the ORM's unit of work cost ~2.6 ms of it per 20-event batch)."""
    return [
        {
            "session_id": e["session_id"],
            "seq": e["seq"],
            "type": e["type"],
            "t": e["t"],
            "payload": e,
        }
        for e in events
    ]
