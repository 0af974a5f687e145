"""The in-process job runner: bounded, one run per job, cancelled (threads included) on stop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.jobs import InProcessJobRunner, JobContext, JobQueueFull


async def test_bounded_concurrency_and_queue() -> None:
    runner = InProcessJobRunner(max_concurrent=1, max_pending=1)
    await runner.start()
    release = asyncio.Event()
    a_started, b_done = asyncio.Event(), asyncio.Event()
    started: list[str] = []

    async def job(ctx: JobContext) -> None:
        started.append(ctx.job_id)
        a_started.set()
        await release.wait()
        if ctx.job_id == "b":
            b_done.set()

    runner.register("k", job)
    runner.submit("k", "a")
    runner.submit("k", "a")  # the same job again is a no-op
    runner.submit("k", "b")
    with pytest.raises(JobQueueFull):
        runner.submit("k", "c")
    await a_started.wait()
    assert started == ["a"]  # one slot: b waits
    assert runner.is_running("k", "b")
    release.set()
    await asyncio.wait_for(b_done.wait(), 5)
    assert started == ["a", "b"]
    await runner.stop()


class FlagCheckingJob:
    """A job whose CPU part loops like a frame loop, in the runner's thread, until its
    `cancelled` flag is set; `in_thread` once it runs there, `stopped_cleanly` once it saw the
    flag and returned."""

    def __init__(self) -> None:
        self.in_thread = threading.Event()
        self.stopped_cleanly = threading.Event()

    def _cpu(self, cancelled: threading.Event) -> None:
        self.in_thread.set()
        while not cancelled.wait(0.01):
            pass
        self.stopped_cleanly.set()

    async def __call__(self, ctx: JobContext) -> None:
        await ctx.run_cpu(self._cpu, ctx.cancelled)


async def test_stop_cancels_cpu_work_in_its_thread() -> None:
    runner = InProcessJobRunner(max_concurrent=1)
    await runner.start()
    job = FlagCheckingJob()
    runner.register("k", job)
    runner.submit("k", "a")
    await asyncio.to_thread(job.in_thread.wait, 5)
    await runner.stop(timeout=5)
    assert job.stopped_cleanly.is_set()
    assert not runner.is_running("k", "a")
    with pytest.raises(JobQueueFull):
        runner.submit("k", "b")
