"""Two uvicorn replicas as subprocesses sharing a fresh PostgreSQL database, a fresh Redis db
number and one data directory: the smallest real cluster. With `COACH_JOBS=celery`, a Celery
worker subprocess beside them runs the jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.server import ProcessServer
from tests.support.services import fresh_postgres, fresh_redis
from tests.support.worker import CeleryWorker

# Short ownership TTL so a dead replica is noticed in about two seconds.
CLUSTER_ENV = {
    "COACH_OWNER_TTL_S": "2.0",
    "COACH_OWNER_REFRESH_S": "0.4",
    "COACH_TAKEOVER_CHECK_S": "0.5",
    "COACH_LOG_JSON": "false",
    "COACH_LOG_LEVEL": "WARNING",
    "COACH_MIN_FREE_DISK_MB": "0",
}
# Jobs on Celery; info logs, so a test can tell which process ran a job.
CELERY_ENV = {
    "COACH_JOBS": "celery",
    "COACH_LOG_LEVEL": "INFO",
    "COACH_UPLOAD_PROGRESS_PERSIST_S": "0.2",
}


@dataclass
class Cluster:
    a: ProcessServer
    b: ProcessServer
    database_url: str
    redis_url: str
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    workers: list[CeleryWorker] = field(default_factory=list)

    def new_worker(self, name: str = "worker", **env: str) -> CeleryWorker:
        """A Celery worker on this cluster's database, Redis and data directory (not started);
        stopped with the cluster."""
        worker = CeleryWorker(self.data_dir, {**self.env, **env}, name=name)
        self.workers.append(worker)
        return worker


@contextlib.asynccontextmanager
async def start_cluster(
    tmp_path: Path, env: dict[str, str] | None = None, *, worker: bool = False
) -> AsyncIterator[Cluster]:
    data_dir = tmp_path / "shared-data"
    async with fresh_postgres() as database_url, fresh_redis() as redis_url:
        shared = {
            **CLUSTER_ENV,
            **(env or {}),
            "COACH_DATABASE_URL": database_url,
            "COACH_REDIS_URL": redis_url,
        }
        a = ProcessServer(data_dir, {**shared, "COACH_REPLICA_ID": "replica-a"})
        b = ProcessServer(data_dir, {**shared, "COACH_REPLICA_ID": "replica-b"})
        cluster = Cluster(a, b, database_url, redis_url, data_dir, shared)
        try:
            # Started side by side: the replicas' migrations wait on an advisory lock.
            starting = [asyncio.to_thread(a.start), asyncio.to_thread(b.start)]
            if worker:
                starting.append(asyncio.to_thread(cluster.new_worker().start))
            await asyncio.gather(*starting)
            yield cluster
        finally:
            for process in (*cluster.workers, a, b):
                process.stop()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with start_cluster(tmp_path) as running:
        yield running


@pytest.fixture
async def celery_cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Replicas A and B with `COACH_JOBS=celery` and one worker (solo pool, one job at a time)."""
    async with start_cluster(tmp_path, CELERY_ENV, worker=True) as running:
        yield running
