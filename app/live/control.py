"""Commands to the replica that holds a session's media: one Redis Stream per replica.

`POST /api/sessions/{id}/end` may reach a replica that does not hold the session (a balancer
without affinity, a page that went to another address): that replica appends `end` to the
owner's stream `control:{owner}` and waits a moment for the owner's answer (the state the
session is in now) on a reply list. The owner reads its stream from when it started and
remembers where it is, so a command sent while its connection to Redis blips is acted on once it
is back (the sender has stopped waiting by then, but the session still ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# on_end(session_id, reason) -> the session's state on this replica ("unknown": not here)
EndHandler = Callable[[str, str], str]


class ControlChannel:
    def __init__(
        self,
        client: aioredis.Redis,
        replica_id: str,
        *,
        prefix: str = "coach:",
        maxlen: int = 1000,
        block_ms: int = 1000,
        reply_ttl_s: int = 60,
    ) -> None:
        self._redis = client
        self.replica_id = replica_id
        self._prefix = prefix
        self._maxlen = maxlen
        self._block_ms = block_ms
        self._reply_ttl_s = reply_ttl_s
        self._reader: asyncio.Task[None] | None = None

    def stream_key(self, replica_id: str) -> str:
        return f"{self._prefix}control:{replica_id}"

    async def request_end(
        self, owner: str, session_id: str, reason: str, timeout: float
    ) -> str | None:
        """Ask `owner` to end the session; its answer (the session's state there), or None if
        it did not answer within `timeout` (the command stays queued for it)."""
        reply = f"{self._prefix}reply:{secrets.token_hex(12)}"
        await self._redis.xadd(
            self.stream_key(owner),
            {"command": "end", "session_id": session_id, "reason": reason, "reply": reply},
            maxlen=self._maxlen,
            approximate=True,
        )
        answer: Any = await self._redis.blpop([reply], timeout=max(0.01, timeout))  # type: ignore[misc]
        if answer is None:
            log.warning(
                "the owner did not answer an end command in time",
                extra={"session_id": session_id, "owner": owner},
            )
            return None
        return bytes(answer[1]).decode()

    def start(self, on_end: EndHandler) -> None:
        """Serve this replica's commands."""
        self._reader = asyncio.create_task(self._serve(on_end), name="control-reader")

    async def _serve(self, on_end: EndHandler) -> None:
        key = self.stream_key(self.replica_id)
        # From now on, by the Redis clock (stream ids are its milliseconds): what was sent before
        # this replica started was for a previous run of it. Not "$", which would skip what
        # arrives between two reads.
        while True:
            try:
                seconds, micros = await self._redis.time()
                break
            except (RedisError, OSError) as exc:
                log.warning("control stream: Redis unreachable (%s); retrying", exc)
                await asyncio.sleep(0.5)
        last_id = f"{seconds * 1000 + micros // 1000}-0"
        while True:
            try:
                answer = await self._redis.xread({key: last_id}, count=100, block=self._block_ms)
            except (RedisError, OSError) as exc:
                log.warning("control stream: read failed (%s); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last_id = entry_id
                    try:
                        await self._handle(fields, on_end)
                    except Exception:  # one bad command must not stop the channel
                        log.exception("control stream: command failed")

    async def _handle(self, fields: dict[bytes, bytes], on_end: EndHandler) -> None:
        command = fields.get(b"command", b"").decode()
        session_id = fields.get(b"session_id", b"").decode()
        if command != "end" or not session_id:
            log.warning("control stream: unknown command %r", command)
            return
        state = on_end(session_id, fields.get(b"reason", b"ended").decode())
        log.info("ended on request of another replica", extra={"session_id": session_id})
        reply = fields.get(b"reply", b"").decode()
        if reply:
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.rpush(reply, state)
                pipe.expire(reply, self._reply_ttl_s)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                log.warning("control stream: could not answer (%s)", exc)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
