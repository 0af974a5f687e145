"""The event bus across replicas: one Redis Stream per session.

`publish` stays synchronous and never waits on the network: the event goes at once to this
replica's own listeners (the in-memory fan-out) and into a bounded outbox that one publisher
task drains into Redis (`XADD ... MAXLEN ~ N`, pipelined in batches). A replica with listeners
for a session runs one reader task for that stream (`XREAD BLOCK`) and feeds what the other
replicas published into the same local fan-out.

Drop policy: when Redis is unreachable long enough to fill the outbox, the oldest unsent events
are dropped for *remote* listeners only (counted in `dropped`); every event is still persisted
by the session's EventWriter, so a listener that reconnects with `?after_seq=N` gets it back.
A new reader starts `lookback_ms` in the past of the Redis clock, so events published between a
listener's database replay and the reader's first XREAD are not missed; the subscription's
`seq` check drops what it has already seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.live.bus import InMemoryEventBus, Subscription

log = logging.getLogger(__name__)


class RedisEventBus:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        replica_id: str,
        prefix: str = "coach:",
        maxlen: int = 10_000,
        outbox_size: int = 10_000,
        stream_ttl_s: int = 24 * 3600,
        lookback_ms: int = 30_000,
        block_ms: int = 1_000,
        batch: int = 200,
    ) -> None:
        self._redis = client
        self.replica_id = replica_id
        self._prefix = prefix
        self._maxlen = maxlen
        self._stream_ttl_s = stream_ttl_s
        self._lookback_ms = lookback_ms
        self._block_ms = block_ms
        self._batch = batch
        self._local = InMemoryEventBus()
        # deque(maxlen) drops the oldest on overflow; the count is kept in `dropped`.
        self._outbox: deque[tuple[str, str]] = deque(maxlen=outbox_size)
        self._outbox_ready = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing waits to be sent
        self._idle.set()
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._publisher: asyncio.Task[None] | None = None
        self.dropped = 0
        self.published = 0

    def stream_key(self, session_id: str) -> str:
        return f"{self._prefix}events:{session_id}"

    async def start(self) -> None:
        await self._redis.ping()
        self._publisher = asyncio.create_task(self._publish_loop(), name="redis-bus-publisher")

    # --- EventBus ------------------------------------------------------------------------
    def publish(self, session_id: str, event: dict[str, Any]) -> None:
        self._local.publish(session_id, event)
        if len(self._outbox) == self._outbox.maxlen:
            self.dropped += 1
        self._outbox.append((session_id, json.dumps(event, ensure_ascii=False)))
        self._idle.clear()
        self._outbox_ready.set()

    def subscribe(self, session_id: str, maxsize: int = 256) -> Subscription:
        subscription = self._local.subscribe(session_id, maxsize)
        if session_id not in self._readers:
            self._readers[session_id] = asyncio.get_running_loop().create_task(
                self._read_loop(session_id), name=f"{session_id}:redis-bus-reader"
            )
        return subscription

    def listeners(self, session_id: str) -> int:
        return self._local.listeners(session_id)

    def close_session(self, session_id: str) -> None:
        self._local.close_session(session_id)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until the outbox is empty (everything published so far is in Redis)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def aclose(self) -> None:
        with contextlib.suppress(TimeoutError, RedisError, OSError):
            await self.flush(timeout=5.0)
        tasks = [t for t in (self._publisher, *self._readers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._local.aclose()

    # --- publisher -----------------------------------------------------------------------
    async def _publish_loop(self) -> None:
        backoff = 0.05
        while True:
            if not self._outbox:
                self._outbox_ready.clear()
                await self._outbox_ready.wait()
            batch = [self._outbox.popleft() for _ in range(min(self._batch, len(self._outbox)))]
            try:
                await self._send(batch)
                self.published += len(batch)
                backoff = 0.05
                if not self._outbox:
                    self._idle.set()
            except (RedisError, OSError) as exc:
                log.warning("redis bus: publish failed (%s); retrying", exc)
                # Put the batch back in front; the deque's bound drops the oldest if it must.
                for item in reversed(batch):
                    if len(self._outbox) == self._outbox.maxlen:
                        self.dropped += 1
                        break
                    self._outbox.appendleft(item)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _send(self, batch: list[tuple[str, str]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        keys = set()
        for session_id, payload in batch:
            key = self.stream_key(session_id)
            keys.add(key)
            pipe.xadd(
                key,
                {"origin": self.replica_id, "event": payload},
                maxlen=self._maxlen,
                approximate=True,
            )
        for key in keys:
            pipe.expire(key, self._stream_ttl_s)
        await pipe.execute()

    # --- readers -------------------------------------------------------------------------
    async def _read_loop(self, session_id: str) -> None:
        key = self.stream_key(session_id)
        try:
            seconds, micros = await self._redis.time()
            last_id = f"{max(0, seconds * 1000 + micros // 1000 - self._lookback_ms)}-0"
            while True:
                if self._local.listeners(session_id) == 0:
                    # No await between this check and the removal: a subscribe that comes
                    # after it starts a fresh reader.
                    self._readers.pop(session_id, None)
                    return
                try:
                    answer = await self._redis.xread(
                        {key: last_id}, count=500, block=self._block_ms
                    )
                except (RedisError, OSError) as exc:
                    log.warning("redis bus: read failed (%s); retrying", exc)
                    await asyncio.sleep(0.5)
                    continue
                for _stream, entries in answer or ():
                    for entry_id, fields in entries:
                        last_id = entry_id
                        if fields.get(b"origin", b"").decode() == self.replica_id:
                            continue  # this replica's listeners had it from `publish`
                        self._local.publish(session_id, json.loads(fields[b"event"]))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("redis bus reader failed", extra={"session_id": session_id})
        finally:
            if self._readers.get(session_id) is asyncio.current_task():
                self._readers.pop(session_id, None)
