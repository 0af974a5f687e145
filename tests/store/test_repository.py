"""The repository on both engines: SQLite (embedded default) and PostgreSQL (scale-out), with
the schema made by the Alembic migrations the server runs on start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.store.db import Base, SessionRow
from app.store.migrate import (
    BASELINE_REVISION,
    alembic_config,
    current_revision,
    head_revision,
)
from app.store.repository import EventWriter, SessionRepository

# The columns of `sessions` at the baseline revision (later ones came with migrations).
BASELINE_SESSION_COLUMNS = {
    "id", "token_hash", "kind", "title", "language", "critique_interval_s", "state", "reason",
    "recovered", "owner", "created_at", "started_at", "ended_at", "duration_s",
    "frames_received", "frames_analyzed", "frames_dropped", "has_report", "has_recording",
    "extra",
}  # fmt: skip


def session_row(session_id: str, *, state: str = "created", **fields: object) -> SessionRow:
    return SessionRow(
        id=session_id,
        token_hash="h" * 64,
        title="발표 연습",
        language="ko",
        critique_interval_s=20.0,
        state=state,
        created_at=fields.pop("created_at", datetime.now(UTC)),  # type: ignore[arg-type]
        **{"extra": {}, **fields},
    )


def event(session_id: str, seq: int, type_: str = "metrics", **fields: object) -> dict[str, object]:
    return {"type": type_, "session_id": session_id, "seq": seq, "t": seq / 10, **fields}


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SessionRepository]:
    repository = SessionRepository(database_url)
    await repository.init()
    yield repository
    await repository.close()


async def test_migrations_bring_the_schema_to_head_and_match_the_models(
    repo: SessionRepository, database_url: str
) -> None:
    assert await current_revision(database_url) == head_revision()

    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    # A model change without a migration shows up here (write one with `alembic revision
    # --autogenerate`).
    async with repo.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_init_is_idempotent_and_concurrent_starts_agree(database_url: str) -> None:
    repos = [SessionRepository(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(r.init() for r in repos))
        await repos[0].init()
        await repos[0].create_session(session_row("s1"))
        assert (await repos[2].get_session("s1")) is not None
    finally:
        for r in repos:
            await r.close()


async def test_a_database_made_before_migrations_is_adopted_not_recreated(
    database_url: str,
) -> None:
    # The schema `create_all` made then: the baseline revision's, without Alembic's table.
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:

        def baseline(sync: Connection) -> None:
            config = alembic_config(database_url)
            config.attributes["connection"] = sync
            command.upgrade(config, BASELINE_REVISION)

        await conn.run_sync(baseline)
        await conn.execute(text("DROP TABLE alembic_version"))
        kept = session_row("kept")
        row = {  # unset ones take the columns' defaults
            name: getattr(kept, name)
            for name in BASELINE_SESSION_COLUMNS
            if getattr(kept, name) is not None
        }
        await conn.execute(SessionRow.__table__.insert().values(**row))
    await engine.dispose()

    repository = SessionRepository(database_url)
    try:
        await repository.init()
        assert await current_revision(database_url) == head_revision()
        assert head_revision() >= BASELINE_REVISION
        kept = await repository.get_session("kept")
        assert kept is not None and kept.title == "발표 연습"
    finally:
        await repository.close()


async def test_sessions_round_trip_and_update(repo: SessionRepository) -> None:
    await repo.create_session(session_row("a", extra={"note": "한국어"}))
    await repo.create_session(session_row("b", state="live"))
    await repo.update_session("a", state="completed", duration_s=12.5, has_report=True)

    a = await repo.get_session("a")
    assert a is not None
    assert (a.state, a.duration_s, a.has_report, a.extra) == (
        "completed",
        12.5,
        True,
        {"note": "한국어"},
    )
    assert await repo.get_session("missing") is None
    assert [r.id for r in await repo.sessions_in_states(("live",))] == ["b"]
    assert await repo.count_sessions_in_states(("live", "completed")) == 2


async def test_events_keep_order_filters_and_unicode(repo: SessionRepository) -> None:
    await repo.create_session(session_row("s"))
    await repo.create_session(session_row("other"))
    events = [event("s", seq) for seq in (3, 1, 2)]
    events.append(event("s", 4, "cue", cue="eye_contact", message="카메라를 보세요"))
    events.append(event("other", 1))
    await repo.add_events(events)

    assert [e["seq"] for e in await repo.list_events("s")] == [1, 2, 3, 4]
    assert [e["seq"] for e in await repo.list_events("s", after_seq=2)] == [3, 4]
    cues = await repo.list_events("s", types=["cue"])
    assert cues == [event("s", 4, "cue", cue="eye_contact", message="카메라를 보세요")]
    assert await repo.max_seq("s") == 4
    assert await repo.max_seq("nothing") == 0


async def test_a_duplicate_seq_is_refused(repo: SessionRepository) -> None:
    await repo.create_session(session_row("s"))
    await repo.add_events([event("s", 1)])
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await repo.add_events([event("s", 1)])
    assert len(await repo.list_events("s")) == 1


async def test_delete_removes_the_session_and_its_events(repo: SessionRepository) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    await repo.create_session(session_row("old", created_at=old))
    await repo.create_session(session_row("new"))
    await repo.add_events([event("old", 1), event("new", 1)])
    assert [
        r.id for r in await repo.sessions_ended_before(datetime.now(UTC) - timedelta(days=30))
    ] == ["old"]
    await repo.delete_session("old")
    assert await repo.get_session("old") is None
    assert await repo.list_events("old") == []
    assert len(await repo.list_events("new")) == 1


async def test_the_event_writer_persists_everything_in_order(repo: SessionRepository) -> None:
    await repo.create_session(session_row("s"))
    writer = EventWriter(repo, batch=7)
    writer.start()
    for seq in range(1, 101):
        await writer.put(event("s", seq))
    await writer.flush()
    await writer.close()
    assert [e["seq"] for e in await repo.list_events("s")] == list(range(1, 101))


async def test_flush_returns_while_other_sessions_keep_writing(repo: SessionRepository) -> None:
    """`flush` waits for the events put before it, not for a moment with nothing left to
    write: another session streaming all along (the writer never idle, its queue full) does
    not hold it up. Ending a session and replaying its log to a reconnecting socket rely on
    it."""
    await repo.create_session(session_row("ending"))
    await repo.create_session(session_row("streaming"))
    writer = EventWriter(repo, max_pending=200, batch=7)
    writer.start()
    for seq in range(1, 21):
        await writer.put(event("ending", seq))
    flushed = asyncio.Event()

    async def stream() -> int:
        seq = 0
        while not flushed.is_set():
            seq += 1
            await writer.put(event("streaming", seq))
            await asyncio.sleep(0)
        return seq

    streaming = asyncio.create_task(stream())
    try:
        await asyncio.sleep(0)  # the other session's first events are in
        async with asyncio.timeout(20):  # a hang guard
            await writer.flush()
        assert [e["seq"] for e in await repo.list_events("ending")] == list(range(1, 21))
        assert not streaming.done()  # flushed while the other session still wrote
    finally:
        flushed.set()
        sent = await streaming
        await writer.close()
    assert [e["seq"] for e in await repo.list_events("streaming")] == list(range(1, sent + 1))
