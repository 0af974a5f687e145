"""Scale-out benchmark: what the Redis bus and PostgreSQL cost per event against the embedded
defaults, and how long a dead replica's session takes to be taken over.

Events: the session's `emit` path without the analysis around it (`bus.publish` then
`EventWriter.put`), for N events of a realistic `metrics` payload:
- events/s: emitted back to back, until the writer has flushed them all to the database;
- p50/p95 ms: paced at 500 events/s (about 25 live sessions' worth), from `publish` to the
  event arriving at a listener: the same process for the in-memory bus, a second bus instance
  (standing for another replica) through Redis for the Redis bus;
- persist p95 ms: from `put` to the batch holding the event being committed.

Takeover: two uvicorn replicas (PostgreSQL, Redis, a shared data dir), a session streamed to
A for 4 s, A SIGKILLed; seconds until B has finalised it (state completed, recording
recovered), with the default ownership TTL (10 s, checked every 2 s) and a short one.

    python -m bench.cluster                 # needs PostgreSQL and Redis (.ci/services.sh)
    python -m bench.cluster --events 5000 --no-takeover
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from app.live.bus import EventBus, InMemoryEventBus
from app.live.redis_bus import RedisEventBus
from app.store.db import SessionRow
from app.store.repository import EventWriter, SessionRepository
from tests.support.services import fresh_postgres, fresh_redis

SESSION = "bench-session"


def metrics_event(seq: int) -> dict[str, Any]:
    return {
        "type": "metrics",
        "session_id": SESSION,
        "seq": seq,
        "t": seq / 15,
        "frame": seq,
        "face": True,
        "gaze": {"on_camera": True, "yaw_deg": 3.2, "pitch_deg": -1.5},
        "posture": {"shoulder_tilt_deg": 1.1, "head_tilt_deg": 2.0, "lean": 0.02},
        "gesture": {"hands_visible": 1, "activity": 0.4},
        "latency_ms": 41.0,
    }


class TimedRepository(SessionRepository):
    """Records when each event's batch was committed."""

    committed_at: dict[int, float]

    async def add_events(self, events: Any) -> None:
        await super().add_events(events)
        now = time.perf_counter()
        for event in events:
            self.committed_at[event["seq"]] = now


async def run_events(
    label: str, database_url: str, bus: EventBus, listener_bus: EventBus, count: int
) -> dict[str, Any]:
    import secrets

    base = f"{SESSION}-{secrets.token_hex(4)}"
    repo = TimedRepository(database_url)
    repo.committed_at = {}
    await repo.init()
    writer = EventWriter(repo)
    writer.start()
    try:
        from datetime import UTC, datetime

        for suffix in ("t", "l"):
            await repo.create_session(
                SessionRow(
                    id=f"{base}-{suffix}",
                    token_hash="x",
                    created_at=datetime.now(UTC),
                    extra={},
                )
            )
        # Throughput: back to back, until the database holds every event.
        start = time.perf_counter()
        for seq in range(1, count + 1):
            event = {**metrics_event(seq), "session_id": f"{base}-t"}
            bus.publish(event["session_id"], event)
            await writer.put(event)
        await writer.flush()
        rate = count / (time.perf_counter() - start)

        # Latency: paced, to a listener (on the other "replica" for Redis).
        subscription = listener_bus.subscribe(f"{base}-l", maxsize=count + 10)
        await asyncio.sleep(0.3)  # let a Redis reader reach its XREAD
        published: dict[int, float] = {}
        received: dict[int, float] = {}

        async def listen() -> None:
            while len(received) < count:
                event = await subscription.get()
                if event is None:
                    return
                received[event["seq"]] = time.perf_counter()

        listener = asyncio.create_task(listen())
        start = time.perf_counter()
        for seq in range(1, count + 1):
            delay = start + seq / 500 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = {**metrics_event(seq), "session_id": f"{base}-l"}
            published[seq] = time.perf_counter()
            bus.publish(event["session_id"], event)
            await writer.put(event)
        await asyncio.wait_for(listener, 30)
        await writer.flush()
        latencies = sorted((received[s] - published[s]) * 1000 for s in published)
        persist = sorted(
            (repo.committed_at[s] - published[s]) * 1000
            for s in published
            if s in repo.committed_at
        )
        return {
            "label": label,
            "events_per_s": rate,
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * len(latencies))],
            "persist_p95_ms": persist[int(0.95 * len(persist))],
        }
    finally:
        await writer.close()
        await repo.close()


async def bench_events(count: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        bus = InMemoryEventBus()
        results.append(
            await run_events(
                "embedded: in-memory bus + SQLite",
                f"sqlite+aiosqlite:///{Path(tmp) / 'coach.db'}",
                bus,
                bus,
                count,
            )
        )
    async with fresh_postgres() as pg_url, fresh_redis() as redis_url:
        bus = InMemoryEventBus()
        results.append(await run_events("in-memory bus + PostgreSQL", pg_url, bus, bus, count))
        client = aioredis.from_url(redis_url)
        a = RedisEventBus(client, replica_id="a")
        b = RedisEventBus(client, replica_id="b")
        await a.start()
        await b.start()
        try:
            results.append(await run_events("Redis bus (A -> B) + PostgreSQL", pg_url, a, b, count))
        finally:
            await a.aclose()
            await b.aclose()
            await client.aclose()
    return results


async def bench_takeover(ttl_s: float, check_s: float) -> dict[str, float]:
    from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
    from tests.support.client import SessionClient, wait_state
    from tests.support.server import ProcessServer

    fps = 15.0
    jpegs = [encode_jpeg(f.image) for f in labelled_clip(fps, [Segment("frontal", 4.0)])]
    async with fresh_postgres() as pg_url, fresh_redis() as redis_url:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "COACH_DATABASE_URL": pg_url,
                "COACH_REDIS_URL": redis_url,
                "COACH_OWNER_TTL_S": str(ttl_s),
                "COACH_OWNER_REFRESH_S": str(min(2.0, ttl_s / 5)),
                "COACH_TAKEOVER_CHECK_S": str(check_s),
                "COACH_LOG_LEVEL": "WARNING",
                "COACH_MIN_FREE_DISK_MB": "0",
            }
            a = ProcessServer(Path(tmp), {**env, "COACH_REPLICA_ID": "a"}).start()
            b = ProcessServer(Path(tmp), {**env, "COACH_REPLICA_ID": "b"}).start()
            try:
                client = await SessionClient.create(a.http, a.ws)
                await client.connect()
                await client.send_paced(jpegs, fps)
                a.kill()
                killed = time.monotonic()
                await client.close()
                async with httpx.AsyncClient(base_url=b.http, timeout=30) as http:
                    info = await wait_state(
                        http,
                        f"/api/sessions/{client.id}",
                        client.auth,
                        "completed",
                        "failed",
                        timeout=120,
                    )
                took = time.monotonic() - killed
                assert info["state"] == "completed" and info["recovered"], info
                return {"ttl_s": ttl_s, "check_s": check_s, "takeover_s": took}
            finally:
                a.stop()
                b.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--no-takeover", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    print(f"| setup ({args.events} events) | events/s | p50 ms | p95 ms | persist p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in await bench_events(args.events):
        print(
            f"| {r['label']} | {r['events_per_s']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | {r['persist_p95_ms']:.1f} |"
        )
    if args.no_takeover:
        return
    print()
    print("| owner TTL s | check every s | kill -> completed on B, s |")
    print("| ---: | ---: | ---: |")
    for ttl, check in ((10.0, 2.0), (2.0, 0.5)):
        r = await bench_takeover(ttl, check)
        print(f"| {r['ttl_s']:.0f} | {r['check_s']} | {r['takeover_s']:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
