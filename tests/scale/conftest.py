"""Two uvicorn replicas as subprocesses sharing a fresh PostgreSQL database, a fresh Redis db
number and one data directory: the smallest real cluster."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import ProcessServer
from tests.support.services import fresh_postgres, fresh_redis

# Short ownership TTL so a dead replica is noticed in about two seconds.
CLUSTER_ENV = {
    "COACH_OWNER_TTL_S": "2.0",
    "COACH_OWNER_REFRESH_S": "0.4",
    "COACH_TAKEOVER_CHECK_S": "0.5",
    "COACH_LOG_JSON": "false",
    "COACH_LOG_LEVEL": "WARNING",
    "COACH_MIN_FREE_DISK_MB": "0",
}


@dataclass
class Cluster:
    a: ProcessServer
    b: ProcessServer
    database_url: str
    redis_url: str
    data_dir: Path


@contextlib.asynccontextmanager
async def start_cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    data_dir = tmp_path / "shared-data"
    async with fresh_postgres() as database_url, fresh_redis() as redis_url:
        env = {**CLUSTER_ENV, "COACH_DATABASE_URL": database_url, "COACH_REDIS_URL": redis_url}
        a = ProcessServer(data_dir, {**env, "COACH_REPLICA_ID": "replica-a"})
        b = ProcessServer(data_dir, {**env, "COACH_REPLICA_ID": "replica-b"})
        try:
            a.start()
            b.start()
            yield Cluster(a, b, database_url, redis_url, data_dir)
        finally:
            a.stop()
            b.stop()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with start_cluster(tmp_path) as running:
        yield running
