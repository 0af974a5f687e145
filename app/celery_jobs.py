"""Jobs on Celery workers (`COACH_JOBS=celery`): the same registered handlers as the in-process
runner, run by `celery -A app.worker worker` with Redis as the broker.

One Celery task, `coach.run_job(kind, job_id)`, carries every job; its id is `kind:job_id`. A
replica's `CeleryJobRunner` only sends; the worker (`app.worker`) builds, once per process, the
services a handler needs from `Settings` (database by URL, the shared data directory, the Redis
bus and ownership) and executes the handler on its own event loop.

A job may be delivered more than once (tasks are acknowledged late, so a worker that dies
mid-job has its task delivered again; two replicas may submit the same job), so delivery is
guarded by three Redis keys per job, besides each handler's own idempotency (it checks the
state it starts from):

- `queued`: set (NX) by the submitter, deleted when a worker finishes the job: submitting a job
  that is queued or running is a no-op. It expires with the broker's visibility timeout.
- `lease`: held by the worker running the job, refreshed while it runs: a second delivery
  waits until the first lets go (then finds the work done) or its lease lapses (its worker
  died: the second takes over), and never runs beside it.
- `cancel`: set by `cancel()`; the worker checks it after taking the lease and every
  `job_cancel_check_s` while the job runs, then stops it like the in-process runner does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from app.config import Settings
from app.jobs import JobContext, JobHandler, JobQueueFull, stop_jobs

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from celery import Celery

log = logging.getLogger(__name__)

T = TypeVar("T")

TASK_NAME = "coach.run_job"

# Give the lease back only while this worker still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def task_id(kind: str, job_id: str) -> str:
    return f"{kind}:{job_id}"


def make_celery(settings: Settings) -> Celery:
    """The Celery app for these settings: its broker, queue and delivery guarantees. A replica
    sends with it; a worker also registers the task that runs jobs (`register_job_task`)."""
    from celery import Celery

    broker = settings.cluster.celery_broker_url or settings.cluster.redis_url
    if not broker:
        raise RuntimeError("COACH_JOBS=celery needs COACH_REDIS_URL (or COACH_CELERY_BROKER_URL)")
    celery = Celery("coach", broker=broker, set_as_current=False)
    celery.conf.update(
        task_default_queue=settings.cluster.celery_queue,
        # Acknowledged when the job ends, not when it starts: a worker that dies mid-job has
        # its task delivered again (after the visibility timeout) instead of losing it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # an analysis is long: don't hoard tasks
        task_ignore_result=True,  # state lives in the database; no result backend
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.cluster.celery_visibility_timeout_s
        },
        # The app's own records go to stderr in its format (JSON by default), not re-logged
        # as Celery warnings.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return celery


def register_job_task(celery: Celery, run: Callable[[str, str], str]) -> None:
    """The one task, `TASK_NAME`: `run(kind, job_id)` executes a delivery and returns its
    outcome (on a worker: `app.worker.WorkerRuntime.run`)."""

    @celery.task(name=TASK_NAME)
    def run_job(kind: str, job_id: str) -> str:
        return run(kind, job_id)


class CeleryJobRunner:
    """`JobRunner` on Celery. On a replica it submits and cancels; on a worker it also executes
    (`execute`), with the handlers the same services registered on it."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        *,
        celery: Celery | None = None,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self._redis = redis
        self._celery = celery if celery is not None else make_celery(settings)
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}"
        self._prefix = f"{settings.cluster.redis_prefix}job:"
        self._handlers: dict[str, JobHandler] = {}
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, tuple[asyncio.Task[None], JobContext]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False
        self._release = redis.register_script(_RELEASE)
        self._refresh = redis.register_script(_REFRESH)
        self.max_pending = settings.upload.max_queued

    def key(self, kind: str, job_id: str, what: str) -> str:
        return f"{self._prefix}{kind}:{job_id}:{what}"

    # --- JobRunner -----------------------------------------------------------------------
    def register(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    async def start(self) -> None:
        self._executor = ThreadPoolExecutor(4, thread_name_prefix="jobs")

    def submit(self, kind: str, job_id: str) -> None:
        """Hand the job to the broker from a task of its own (the broker client blocks), so a
        route never waits on Redis. Up to `upload_max_queued` submissions may be in flight."""
        if self._stopping:
            raise JobQueueFull("the job runner is shutting down")
        if kind not in self._handlers:
            raise KeyError(f"no handler for job kind {kind!r}")
        name = task_id(kind, job_id)
        if name in self._sending:
            return
        if len(self._sending) >= self.max_pending:
            raise JobQueueFull(f"{len(self._sending)} jobs are waiting for the broker")
        task = asyncio.get_running_loop().create_task(self._send(kind, job_id), name=f"{name}:send")
        self._sending[name] = task
        task.add_done_callback(lambda _t: self._sending.pop(name, None))

    def is_running(self, kind: str, job_id: str) -> bool:
        """Known to this process only: being sent from here, or running here (a worker)."""
        name = task_id(kind, job_id)
        return name in self._sending or name in self._running

    async def cancel(self, kind: str, job_id: str, timeout: float = 5.0) -> None:
        """Flag the job; wait (up to `timeout`) until no worker holds it, so that what the caller
        removes next is not written again by the job. A queued delivery finds the flag when it
        starts and does nothing; a running one notices within `job_cancel_check_s`. (No Celery
        revoke: it needs a result backend to record, and the flag covers both cases.)"""
        name = task_id(kind, job_id)
        sending = self._sending.get(name)
        if sending is not None:
            sending.cancel()
        # Flag first, then look at the lease: a worker takes the lease before it reads the
        # flag, so either it sees the flag or this sees its lease (and waits it out).
        await self._redis.set(self.key(kind, job_id, "cancel"), "1", ex=24 * 3600)
        running = self._running.get(name)
        if running is not None:
            running[1].cancelled.set()
            running[0].cancel()
        deadline = time.monotonic() + timeout
        while await self._redis.exists(self.key(kind, job_id, "lease")):
            if time.monotonic() > deadline:
                log.warning("job %s still held by a worker after cancel", name)
                return
            await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        for _task, context in self._running.values():
            context.cancelled.set()
        tasks = [*self._sending.values(), *(t for t, _c in self._running.values())]
        executor, self._executor = self._executor, None
        await stop_jobs(tasks, executor, timeout)

    async def run_cpu(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the job runner is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- submitting ----------------------------------------------------------------------
    async def _send(self, kind: str, job_id: str) -> None:
        queued = self.key(kind, job_id, "queued")
        ttl_ms = max(1000, int(self.settings.cluster.celery_visibility_timeout_s * 1000))
        backoff = 0.2
        while True:
            try:
                if not await self._redis.set(queued, self.holder, nx=True, px=ttl_ms):
                    log.info("job %s:%s is queued or running already", kind, job_id)
                    return
                try:
                    await asyncio.to_thread(
                        self._celery.send_task,
                        TASK_NAME,
                        args=[kind, job_id],
                        task_id=task_id(kind, job_id),
                    )
                except BaseException:
                    with contextlib.suppress(Exception):
                        await self._redis.delete(queued)
                    raise
                log.info("job %s:%s sent to the workers", kind, job_id)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The row stays as it is (an upload `processing`): this retries, and a restart
                # queues it again.
                log.warning("could not send job %s:%s (%s); retrying", kind, job_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    # --- executing (on a worker) ---------------------------------------------------------
    async def execute(self, kind: str, job_id: str) -> str:
        """Run one delivery of a job; the outcome, for the worker's log: done, failed,
        cancelled, duplicate (this runner stopped while another delivery held the job) or
        unknown_kind."""
        handler = self._handlers.get(kind)
        name = task_id(kind, job_id)
        if handler is None:
            log.error("no handler for job kind %r", kind)
            return "unknown_kind"
        lease = self.key(kind, job_id, "lease")
        holder = f"{self.holder}:{secrets.token_hex(4)}"
        lease_ms = max(1000, int(self.settings.cluster.job_lease_s * 1000))
        # Another delivery holds the lease: wait until it lets go (finished: the handler then
        # finds its work done and returns) or its lease lapses (its worker died: this delivery
        # takes over). Dropping this delivery instead would lose the job when the holder is a
        # worker killed a moment ago, whose lease has not lapsed yet.
        waited = False
        while not await self._redis.set(lease, holder, nx=True, px=lease_ms):
            if self._stopping:
                return "duplicate"
            if not waited:
                log.info("job %s is held by another delivery; waiting for it", name)
                waited = True
            await asyncio.sleep(min(1.0, lease_ms / 3000))
        outcome = "done"
        try:
            if await self._redis.exists(self.key(kind, job_id, "cancel")):
                log.info("job %s was cancelled before it started", name)
                return "cancelled"
            context = JobContext(kind=kind, job_id=job_id, run_cpu=self.run_cpu)
            started = time.perf_counter()
            task = asyncio.get_running_loop().create_task(_call(handler, context), name=name)
            self._running[name] = (task, context)
            watch = asyncio.get_running_loop().create_task(
                self._watch(name, task, context, lease, holder, lease_ms), name=f"{name}:watch"
            )
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the worker itself is stopping
                outcome = "cancelled"
            except Exception:  # the handler records its own failure; this is the last net
                log.exception("job %s failed", name)
                outcome = "failed"
            finally:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
                self._running.pop(name, None)
            log.info(
                "job %s %s on %s in %.2f s",
                name,
                outcome,
                self.holder,
                time.perf_counter() - started,
            )
            return outcome
        finally:
            # A lease that cannot be given back lapses by itself; the queued key with the
            # visibility timeout.
            with contextlib.suppress(Exception):
                await self._release(keys=[lease], args=[holder])
            with contextlib.suppress(Exception):
                await self._redis.delete(self.key(kind, job_id, "queued"))

    async def _watch(
        self,
        name: str,
        task: asyncio.Task[None],
        context: JobContext,
        lease: str,
        holder: str,
        lease_ms: int,
    ) -> None:
        """Keep the lease while the job runs; stop the job when it is cancelled or the lease
        was lost (another delivery may have taken it over)."""
        kind, job_id = context.kind, context.job_id
        check_s = max(0.05, self.settings.cluster.job_cancel_check_s)
        refresh_every = max(check_s, lease_ms / 3000)
        last_refresh = time.monotonic()
        while not task.done():
            await asyncio.sleep(check_s)
            try:
                stop = bool(await self._redis.exists(self.key(kind, job_id, "cancel")))
                if stop:
                    log.info("job %s cancelled while running", name)
                elif time.monotonic() - last_refresh >= refresh_every:
                    last_refresh = time.monotonic()
                    if not await self._refresh(keys=[lease], args=[holder, lease_ms]):
                        log.error("job %s lost its lease; stopping it", name)
                        stop = True
            except Exception as exc:
                log.warning("job %s: lease check failed (%s)", name, exc)
                continue
            if stop:
                context.cancelled.set()
                task.cancel()
                return


async def _call(handler: JobHandler, context: JobContext) -> None:
    await handler(context)
