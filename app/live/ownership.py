"""Which replica holds a session's live media: one Redis key per session with a heartbeat TTL.

The replica that receives a session's first media claims it (`SET owner:{id} <replica> NX EX
ttl`) and refreshes every key it holds every `refresh_s`. Media for a session another replica
holds is refused with `session_owned_elsewhere` naming that replica, which is what a load
balancer with session affinity never lets happen and what a client sent to the wrong replica
needs to hear. When a replica dies its keys expire after `ttl_s`; another replica's periodic
check (`SessionManager.recover_orphans`) claims the orphan and finalises it from the shared
data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.errors import CoachError

log = logging.getLogger(__name__)

# Refresh or delete a key only while this replica still holds it.
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def owned_elsewhere(session_id: str, owner: str | None) -> CoachError:
    where = owner or "another replica (being taken over)"
    return CoachError(
        "session_owned_elsewhere",
        f"This session's live media is held by {where}; send media to that replica.",
        extra={"owner": owner},
    )


class SessionOwnership:
    def __init__(
        self,
        client: aioredis.Redis,
        replica_id: str,
        *,
        prefix: str = "coach:",
        ttl_s: float = 10.0,
        refresh_s: float = 2.0,
    ) -> None:
        self._redis = client
        self.replica_id = replica_id
        self._prefix = prefix
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._refresh_s = refresh_s
        self.held: set[str] = set()
        self.lost: set[str] = set()
        self._refresh_script = client.register_script(_REFRESH.replace("EXPIRE", "PEXPIRE"))
        self._release_script = client.register_script(_RELEASE)
        self._heartbeat: asyncio.Task[None] | None = None

    def key(self, session_id: str) -> str:
        return f"{self._prefix}owner:{session_id}"

    def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._beat(), name="ownership-heartbeat")

    async def claim(self, session_id: str) -> str | None:
        """Claim the session for this replica if nobody holds it. The holder afterwards: this
        replica's id, another's, or None if a holder vanished between the two calls."""
        if await self._redis.set(self.key(session_id), self.replica_id, nx=True, px=self._ttl_ms):
            self.held.add(session_id)
            return self.replica_id
        owner = await self.owner(session_id)
        if owner == self.replica_id:
            self.held.add(session_id)
        return owner

    async def owner(self, session_id: str) -> str | None:
        value = await self._redis.get(self.key(session_id))
        return value.decode() if value is not None else None

    async def require(self, session_id: str) -> None:
        """Claim the session or raise `session_owned_elsewhere`."""
        owner = await self.claim(session_id)
        if owner != self.replica_id:
            raise owned_elsewhere(session_id, owner)

    async def release(self, session_id: str) -> None:
        self.held.discard(session_id)
        try:
            await self._release_script(keys=[self.key(session_id)], args=[self.replica_id])
        except (RedisError, OSError):
            log.warning("could not release ownership; it expires", extra={"session_id": session_id})

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            for session_id in list(self.held):
                try:
                    kept = await self._refresh_script(
                        keys=[self.key(session_id)], args=[self.replica_id, self._ttl_ms]
                    )
                except (RedisError, OSError) as exc:
                    log.warning("ownership heartbeat failed: %s", exc)
                    break
                if not kept and session_id in self.held:
                    # Expired (this replica stalled past the TTL) and maybe taken over: stop
                    # claiming it; the session's own end decides what happens to its media.
                    log.error("lost ownership of a live session", extra={"session_id": session_id})
                    self.held.discard(session_id)
                    self.lost.add(session_id)

    async def aclose(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        for session_id in list(self.held):
            await self.release(session_id)
