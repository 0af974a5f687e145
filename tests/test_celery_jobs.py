"""The Celery job runner's delivery guards against a real Redis (the broker and the job keys):
a job is sent once however often and from wherever it is submitted, a second delivery while the
first runs is dropped, and a cancelled job stops (CPU thread included) before `cancel` returns.
The whole path with a real worker process is in tests/scale/test_celery_jobs.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from app.celery_jobs import CeleryJobRunner
from app.config import Settings
from app.jobs import JobContext
from app.wiring import make_job_runner
from tests.support.services import fresh_redis
from tests.test_jobs import FlagCheckingJob


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    async with fresh_redis() as url:
        yield url


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def settings_for(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(redis_url=redis_url, jobs="celery", data_dir=tmp_path, job_cancel_check_s=0.05)


async def runner(settings: Settings, client: aioredis.Redis, holder: str) -> CeleryJobRunner:
    jobs = make_job_runner(settings, client)
    assert isinstance(jobs, CeleryJobRunner)
    jobs.holder = holder
    await jobs.start()
    return jobs


async def test_a_job_is_sent_once_however_often_and_wherever_it_is_submitted(
    redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, tmp_path)
    a, b = await runner(settings, client, "a"), await runner(settings, client, "b")

    async def nothing(_ctx: JobContext) -> None:
        return None

    for jobs in (a, b):
        jobs.register("k", nothing)
    a.submit("k", "x")
    a.submit("k", "x")  # still being sent: a no-op
    b.submit("k", "x")  # another replica: the queued key says it is on its way
    a.submit("k", "y")
    async with asyncio.timeout(10):
        while True:
            if not any(r.is_running("k", j) for r in (a, b) for j in ("x", "y")):
                break
            await asyncio.sleep(0.01)
    assert await client.llen(settings.cluster.celery_queue) == 2  # x once, y once
    assert await client.exists("coach:job:k:x:queued")
    with pytest.raises(KeyError):
        a.submit("unknown", "z")
    await a.stop()
    await b.stop()


async def test_a_second_delivery_waits_for_the_first_and_never_runs_beside_it(
    redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, tmp_path)
    worker_1, worker_2 = await runner(settings, client, "w1"), await runner(settings, client, "w2")
    started, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def job(ctx: JobContext) -> None:
        runs.append(ctx.job_id)
        started.set()
        await release.wait()

    for jobs in (worker_1, worker_2):
        jobs.register("k", job)
    first = asyncio.create_task(worker_1.execute("k", "x"))
    await asyncio.wait_for(started.wait(), 5)
    second = asyncio.create_task(worker_2.execute("k", "x"))
    await asyncio.sleep(1.0)  # several lease periods: the live holder keeps refreshing it
    assert runs == ["x"] and not second.done()
    release.set()
    assert await first == "done"
    # The first let go: the waiting delivery runs now, after it (the handler's own state check
    # decides whether anything is left to do).
    assert await asyncio.wait_for(second, 5) == "done"
    assert runs == ["x", "x"]
    assert not await client.exists("coach:job:k:x:lease", "coach:job:k:x:queued")
    await worker_1.stop()
    await worker_2.stop()


async def test_a_delivery_takes_over_once_a_dead_holders_lease_lapses(
    redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    # A worker killed mid-job leaves its lease until it lapses; the redelivered task must run
    # then, not be dropped as a duplicate (that lost the job).
    settings = settings_for(redis_url, tmp_path).updated(job_lease_s=1.5)
    worker = await runner(settings, client, "w2")
    runs: list[str] = []

    async def job(ctx: JobContext) -> None:
        runs.append(ctx.job_id)

    worker.register("k", job)
    lease_ms = int(settings.cluster.job_lease_s * 1000)
    await client.set("coach:job:k:x:lease", "dead-worker:0", px=lease_ms)
    started = time.monotonic()
    assert (
        await asyncio.wait_for(worker.execute("k", "x"), 10 + settings.cluster.job_lease_s)
        == "done"
    )
    assert runs == ["x"]
    assert time.monotonic() - started >= settings.cluster.job_lease_s * 0.8
    await worker.stop()


async def test_cancel_stops_a_running_job_and_its_thread_before_returning(
    redis_url: str, client: aioredis.Redis, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, tmp_path)
    replica, worker = (
        await runner(settings, client, "replica"),
        await runner(settings, client, "worker"),
    )
    job = FlagCheckingJob()
    in_thread, stopped_cleanly = job.in_thread, job.stopped_cleanly
    for jobs in (replica, worker):
        jobs.register("k", job)
    running = asyncio.create_task(worker.execute("k", "x"))
    await asyncio.to_thread(in_thread.wait, 5)
    await replica.cancel("k", "x", timeout=5)
    # `cancel` returned once no worker held the job any more.
    assert not await client.exists("coach:job:k:x:lease")
    assert await running == "cancelled"
    await asyncio.to_thread(stopped_cleanly.wait, 5)
    assert stopped_cleanly.is_set()
    # A delivery that arrives after the cancel does not start the job.
    in_thread.clear()
    assert await worker.execute("k", "x") == "cancelled"
    assert not in_thread.is_set()
    await replica.stop()
    await worker.stop()


def test_the_embedded_default_imports_neither_celery_nor_redis() -> None:
    import subprocess
    import sys

    code = (
        "import sys, app.jobs, app.main; "
        "assert not {'celery', 'kombu', 'redis'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
