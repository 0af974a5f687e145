"""The Redis Streams bus and session ownership against a real Redis on loopback: two bus
instances stand for two replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.api.errors import http_status
from app.errors import CoachError
from app.live.ownership import SessionOwnership
from app.live.redis_bus import RedisEventBus
from tests.support.services import fresh_redis


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    async with fresh_redis() as url:
        client = aioredis.from_url(url)
        yield client
        await client.aclose()


@pytest.fixture
async def buses(redis_client: aioredis.Redis) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    a = RedisEventBus(redis_client, replica_id="a", block_ms=200)
    b = RedisEventBus(redis_client, replica_id="b", block_ms=200)
    await a.start()
    await b.start()
    yield a, b
    await a.aclose()
    await b.aclose()


def ev(seq: int, **fields: Any) -> dict[str, Any]:
    return {"type": "metrics", "session_id": "s", "seq": seq, "t": seq / 10, **fields}


async def drain(sub: Any, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            event = await sub.get()
            assert event is not None, got
            got.append(event)
    return got


async def test_events_published_on_one_replica_reach_listeners_on_the_other_in_order(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    a, b = buses
    local = a.subscribe("s", maxsize=1000)
    remote = b.subscribe("s", maxsize=1000)
    for seq in range(1, 301):
        a.publish("s", ev(seq, note="발표"))
    assert [e["seq"] for e in await drain(local, 300)] == list(range(1, 301))
    remote_events = await drain(remote, 300)
    assert [e["seq"] for e in remote_events] == list(range(1, 301))
    assert remote_events[0]["note"] == "발표"
    await a.flush()
    assert a.published == 300 and a.dropped == 0


async def test_a_late_listener_gets_what_was_published_just_before_it_subscribed(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    # The WebSocket replays the database, then subscribes; events not yet persisted at that
    # moment must still arrive (the reader looks back on the stream).
    a, b = buses
    for seq in range(1, 6):
        a.publish("s", ev(seq))
    await a.flush()
    late = b.subscribe("s")
    assert [e["seq"] for e in await drain(late, 5)] == [1, 2, 3, 4, 5]


async def test_each_seq_is_delivered_once_even_when_seen_twice(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    a, b = buses
    sub = b.subscribe("s")
    a.publish("s", ev(1))
    b.publish("s", ev(1))  # the same event again, e.g. re-sent after a takeover
    a.publish("s", ev(2))
    assert [e["seq"] for e in await drain(sub, 2)] == [1, 2]
    assert sub.queue.empty()


async def test_the_stream_is_bounded(redis_client: aioredis.Redis) -> None:
    bus = RedisEventBus(redis_client, replica_id="a", maxlen=100)
    await bus.start()
    try:
        for seq in range(1, 2001):
            bus.publish("s", ev(seq))
        await bus.flush()
        length = await redis_client.xlen(bus.stream_key("s"))
        assert 100 <= length < 400, length  # MAXLEN ~ trims by whole nodes
    finally:
        await bus.aclose()


async def test_publish_never_blocks_and_drops_oldest_for_remote_listeners_when_redis_is_gone() -> (
    None
):
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    bus = RedisEventBus(dead, replica_id="a", outbox_size=50)
    bus._publisher = asyncio.create_task(bus._publish_loop())  # start() would fail the ping
    local = bus.subscribe("s", maxsize=500)
    for seq in range(1, 201):
        bus.publish("s", ev(seq))  # synchronous: returns at once
    assert [e["seq"] for e in await drain(local, 200)] == list(range(1, 201))
    assert bus.dropped >= 150
    bus._publisher.cancel()
    for task in [bus._publisher, *bus._readers.values()]:
        task.cancel()
    await asyncio.gather(bus._publisher, *bus._readers.values(), return_exceptions=True)
    await dead.aclose()


async def test_ownership_claim_refuse_heartbeat_release_and_expiry(
    redis_client: aioredis.Redis,
) -> None:
    a = SessionOwnership(redis_client, "replica-a", ttl_s=0.6, refresh_s=0.15)
    b = SessionOwnership(redis_client, "replica-b", ttl_s=0.6, refresh_s=0.15)
    a.start()
    try:
        await a.require("s")
        with pytest.raises(CoachError) as refused:
            await b.require("s")
        assert refused.value.code == "session_owned_elsewhere"
        assert http_status(refused.value) == 409
        assert refused.value.detail()["owner"] == "replica-a"
        # The heartbeat keeps the key past several TTLs.
        for _ in range(4):
            await asyncio.sleep(0.3)
            assert await b.owner("s") == "replica-a"
        await a.release("s")
        assert await b.claim("s") == "replica-b"
        # b has no heartbeat running: its key expires like a dead replica's.
        await a.require("t")
        pttl = await redis_client.pttl(b.key("s"))
        assert 0 < pttl <= 600
        async with asyncio.timeout(3):
            # Expiry is not an event anyone can await (no keyspace notifications): poll.
            while await a.owner("s") is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert await a.claim("s") == "replica-a"
        # Releasing a key someone else holds leaves it alone.
        await b.release("s")
        assert await a.owner("s") == "replica-a"
    finally:
        await a.aclose()
