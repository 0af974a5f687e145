"""Background jobs: the `JobRunner` protocol and its in-process implementation.

A job is named by a `kind` and a `job_id` (plain strings, so a distributed queue such as Celery
can carry them); the code that runs a kind is registered once at start-up. The in-process
runner keeps every job as a named, owned asyncio task, bounds how many run at once and how many
may wait, runs CPU work on its own threads, and cancels what is left on shutdown.

With `COACH_JOBS=celery` the same handlers run on Celery workers (`app.celery_jobs`, started
with `celery -A app.worker worker`); `app.wiring.make_job_runner` picks the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job gets from its runner."""

    kind: str
    job_id: str
    # Set when the runner shuts down: CPU work in a thread checks it between frames, because a
    # thread cannot be cancelled from outside.
    cancelled: threading.Event = field(default_factory=threading.Event)
    run_cpu: Callable[..., Awaitable[Any]] = field(default=lambda *_a: _no_cpu())


async def _no_cpu() -> Any:  # pragma: no cover - replaced by every runner
    raise RuntimeError("no CPU executor")


JobHandler = Callable[[JobContext], Awaitable[None]]


class JobQueueFull(Exception):
    """More jobs are waiting than the runner accepts."""


class JobRunner(Protocol):
    def register(self, kind: str, handler: JobHandler) -> None: ...

    def submit(self, kind: str, job_id: str) -> None:
        """Queue a job; raises `JobQueueFull` when the runner is at its bound."""
        ...

    def is_running(self, kind: str, job_id: str) -> bool: ...

    async def cancel(self, kind: str, job_id: str, timeout: float = 5.0) -> None:
        """Stop a queued or running job (its CPU work stops at its next check)."""
        ...

    async def start(self) -> None: ...

    async def stop(self, timeout: float = 10.0) -> None: ...


class InProcessJobRunner:
    """Jobs as asyncio tasks in this process; CPU work on the runner's own worker threads.

    `max_concurrent` jobs run at once (each holds one worker thread while it computes); up to
    `max_pending` more wait for a slot. Shutdown sets every job's `cancelled` flag, cancels the
    tasks and waits up to `timeout` for the threads to notice.
    """

    def __init__(self, *, max_concurrent: int = 1, max_pending: int = 32) -> None:
        self.max_concurrent = max(1, max_concurrent)
        self.max_pending = max_pending
        self._handlers: dict[str, JobHandler] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._contexts: dict[str, JobContext] = {}
        self._slots = asyncio.Semaphore(self.max_concurrent)
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

    def register(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="jobs")

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the job runner is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def is_running(self, kind: str, job_id: str) -> bool:
        return f"{kind}:{job_id}" in self._tasks

    async def cancel(self, kind: str, job_id: str, timeout: float = 5.0) -> None:
        name = f"{kind}:{job_id}"
        task, context = self._tasks.get(name), self._contexts.get(name)
        if context is not None:
            context.cancelled.set()
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=timeout)

    def submit(self, kind: str, job_id: str) -> None:
        if self._stopping:
            raise JobQueueFull("the job runner is shutting down")
        if kind not in self._handlers:
            raise KeyError(f"no handler for job kind {kind!r}")
        name = f"{kind}:{job_id}"
        if name in self._tasks:
            return  # already queued or running: a job runs once
        if len(self._tasks) >= self.max_concurrent + self.max_pending:
            raise JobQueueFull(f"{len(self._tasks)} jobs already queued")
        context = JobContext(kind=kind, job_id=job_id, run_cpu=self.run_cpu)
        task = asyncio.get_running_loop().create_task(self._run(context), name=name)
        self._tasks[name] = task
        self._contexts[name] = context
        task.add_done_callback(lambda _t: self._forget(name))

    def _forget(self, name: str) -> None:
        self._tasks.pop(name, None)
        self._contexts.pop(name, None)

    async def _run(self, context: JobContext) -> None:
        handler = self._handlers[context.kind]
        async with self._slots:
            try:
                await handler(context)
            except asyncio.CancelledError:
                raise
            except Exception:  # the handler records its own failure; this is the last net
                log.exception("job %s:%s failed", context.kind, context.job_id)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        for context in self._contexts.values():
            context.cancelled.set()
        executor, self._executor = self._executor, None
        await stop_jobs(list(self._tasks.values()), executor, timeout)


async def stop_jobs(
    tasks: list[asyncio.Task[Any]], executor: ThreadPoolExecutor | None, timeout: float
) -> None:
    """A runner's shutdown, once it has set every job's `cancelled` flag: cancel the job tasks,
    wait up to `timeout` for them, then for the CPU threads (they saw `cancelled` and return at
    their next frame)."""
    for task in tasks:
        log.info("cancelling job %s on shutdown", task.get_name())
        task.cancel()
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            log.warning("job %s did not stop within %.0f s", task.get_name(), timeout)
    if executor is not None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
