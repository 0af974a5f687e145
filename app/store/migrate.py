"""Schema migrations (Alembic), run programmatically on start: `await upgrade_head(url)`.

Alembic is synchronous; the upgrade runs in a worker thread with its own event loop and the
application's async URL (aiosqlite or asyncpg), so start-up never blocks the server's loop.
Replicas that start together serialise on a PostgreSQL advisory lock, so exactly one of them
applies a migration and the others find the schema at head.
"""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The revision whose schema `create_all` produced before migrations existed.
BASELINE_REVISION = "0001_initial"
# Any constant shared by every replica: the key of the migration advisory lock.
_PG_LOCK_KEY = 0x636F616368  # "coach"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _upgrade_on(connection: Connection, config: Config) -> None:
    if connection.dialect.name == "postgresql":
        # Held until this transaction commits: concurrent starters wait here.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    tables = set(inspect(connection).get_table_names())
    if "sessions" in tables and "alembic_version" not in tables:
        # A database made by `create_all` before migrations existed: adopt it as the baseline.
        config.attributes["connection"] = connection
        command.stamp(config, BASELINE_REVISION)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def _upgrade(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade_on, alembic_config(url))
            await conn.commit()
    finally:
        await engine.dispose()


def _upgrade_in_thread(url: str) -> None:
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        asyncio.run(_upgrade(url))
        return
    # SQLite runs DDL outside transactions: processes (or workers) starting on one file at once
    # serialise on a lock file beside it instead.
    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            asyncio.run(_upgrade(url))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def upgrade_head(url: str) -> None:
    """Bring the database at `url` (an async SQLAlchemy URL) to the newest revision."""
    await asyncio.to_thread(_upgrade_in_thread, url)


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()


def run_cli_migrations(config: Config, run_on: Callable[[Connection], None]) -> None:
    """For the `alembic` command line (alembic.ini): the URL from the settings."""
    from app.config import Settings

    url = config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url

    async def go() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(run_on)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())
