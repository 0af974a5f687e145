"""The real PostgreSQL and Redis on loopback that the scale-out tests use (`.ci/services.sh`
starts them). Every test gets its own database and Redis db number, removed afterwards."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis

# The maintenance database on the loopback server; per-test databases are created beside it.
POSTGRES_ADMIN_URL = os.environ.get(
    "COACH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_BASE_URL = os.environ.get("COACH_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def _async_url(dsn: str, database: str) -> str:
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL is not answering at {POSTGRES_ADMIN_URL} ({exc}); "
            "start it with .ci/services.sh"
        ) from exc


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """An empty database of its own; yields its SQLAlchemy asyncpg URL, drops it afterwards."""
    name = f"coach_test_{secrets.token_hex(6)}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _async_url(POSTGRES_ADMIN_URL, name)
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def fresh_redis() -> AsyncIterator[str]:
    """A Redis db number nobody else is using (claimed with a key in db 0), flushed before and
    after; yields its URL."""
    admin = aioredis.from_url(f"{REDIS_BASE_URL}/0")
    claim = secrets.token_hex(8)
    try:
        for number in range(1, 16):
            if await admin.set(f"coach-test-db:{number}", claim, nx=True, ex=3600):
                break
        else:
            raise RuntimeError("all Redis db numbers 1-15 are claimed by other test runs")
    except OSError as exc:
        raise RuntimeError(f"Redis is not answering at {REDIS_BASE_URL}: {exc}") from exc
    url = f"{REDIS_BASE_URL}/{number}"
    client = aioredis.from_url(url)
    try:
        await client.flushdb()
        yield url
    finally:
        await client.flushdb()
        await client.aclose()
        if (await admin.get(f"coach-test-db:{number}")) == claim.encode():
            await admin.delete(f"coach-test-db:{number}")
        await admin.aclose()
