"""Storage models and engine. SQLite (aiosqlite) by default; any SQLAlchemy async URL works."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="live")  # live | upload
    title: Mapped[str] = mapped_column(String(300), default="")
    language: Mapped[str] = mapped_column(String(8), default="ko")
    critique_interval_s: Mapped[float] = mapped_column(Float, default=20.0)
    state: Mapped[str] = mapped_column(String(16), default="created", index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    recovered: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    frames_received: Mapped[int] = mapped_column(Integer, default=0)
    frames_analyzed: Mapped[int] = mapped_column(Integer, default=0)
    frames_dropped: Mapped[int] = mapped_column(Integer, default=0)
    has_report: Mapped[bool] = mapped_column(Boolean, default=False)
    has_recording: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A take of a pitch: the pitch, its take number (1, 2, ...) and the pitch's target length
    # (the `time` cue). No foreign key: deleting a pitch deletes its takes itself (files first),
    # and SQLite could only add one by copying the table.
    pitch_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    take: Mapped[int | None] = mapped_column(Integer, nullable=True)
    target_duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class PitchRow(Base):
    """What a presenter rehearses again and again; its sessions are its takes."""

    __tablename__ = "pitches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300), default="")
    language: Mapped[str] = mapped_column(String(8), default="ko")
    target_duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Takes numbered so far: the next take is this plus one (numbers are never reused, even
    # after a take is deleted).
    takes_started: Mapped[int] = mapped_column(Integer, default=0)
    # Set when a delete begins: no take can be added from then on, and the row goes last (after
    # every take's files and rows), so a delete that failed midway is retried with its token.
    deleting_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EventRow(Base):
    __tablename__ = "events"

    session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    t: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets report readers run while the event writer appends.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)
