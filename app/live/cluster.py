"""The replica's shared-state services, chosen by configuration: the in-memory event bus and no
ownership by default; with `COACH_REDIS_URL`, the Redis Streams bus and Redis session
ownership (redis is imported only then, so the embedded install never needs it)."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.config import Settings
from app.live.bus import EventBus, InMemoryEventBus

if TYPE_CHECKING:
    from app.live.control import ControlChannel
    from app.live.ownership import SessionOwnership


def make_replica_id(settings: Settings) -> str:
    import secrets

    return settings.cluster.replica_id or f"{socket.gethostname()}-{secrets.token_hex(4)}"


@dataclass
class Cluster:
    bus: EventBus
    ownership: SessionOwnership | None = None
    control: ControlChannel | None = None  # served once the session manager exists
    redis: Any = None

    async def aclose(self) -> None:
        if self.control is not None:
            await self.control.aclose()
        if self.ownership is not None:
            await self.ownership.aclose()
        await self.bus.aclose()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


async def start_cluster(settings: Settings, replica_id: str) -> Cluster:
    if not settings.cluster.redis_url:
        return Cluster(bus=InMemoryEventBus())
    import redis.asyncio as aioredis

    from app.live.control import ControlChannel
    from app.live.ownership import SessionOwnership
    from app.live.redis_bus import RedisEventBus

    client = aioredis.from_url(settings.cluster.redis_url, health_check_interval=30)
    bus = RedisEventBus(
        client,
        replica_id=replica_id,
        prefix=settings.cluster.redis_prefix,
        maxlen=settings.cluster.redis_stream_maxlen,
        outbox_size=settings.cluster.redis_outbox,
    )
    await bus.start()
    ownership = SessionOwnership(
        client,
        replica_id,
        prefix=settings.cluster.redis_prefix,
        ttl_s=settings.cluster.owner_ttl_s,
        refresh_s=settings.cluster.owner_refresh_s,
    )
    ownership.start()
    control = ControlChannel(client, replica_id, prefix=settings.cluster.redis_prefix)
    return Cluster(bus=bus, ownership=ownership, control=control, redis=client)
