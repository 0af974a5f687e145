"""Sessions created and never connected to: what they cost while they wait, and that it all
comes back at their deadline (issue 17's case).

The server is a subprocess with default settings except the TTL of unused sessions (and the
creation rate and per-address bound, so one client can create them all). RSS is the server's
with its child processes (the Pose worker). Measured: idle after start, idle after one real
session (its analyser pooled: the level the server idles at once used), after N creations,
and after their deadline; then 16 new sessions stream a moving face for a few seconds, and
the answer codes of every creation are counted.

    .venv/bin/python -m bench.created --created 40 --ttl 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.clips import Segment, labelled_clip  # noqa: E402
from tests.live.test_ws_live import FPS, stream  # noqa: E402
from tests.support.client import SessionClient  # noqa: E402
from tests.support.server import process_server  # noqa: E402


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return round(total / 1e6, 1)


async def one_session(http: str, ws: str, seconds: float) -> SessionClient:
    frames = labelled_clip(FPS, [Segment("frontal", seconds / 2), Segment("rotated", seconds / 2)])
    client = await SessionClient.create(http, ws, language="en")
    await client.connect()
    await stream(client, frames)
    await client.send_json({"type": "end"})
    await client.wait_completed(300)
    await client.close()
    return client


async def unused_round(base: str, pid: int, created: int, ttl: float) -> dict[str, object]:
    out: dict[str, object] = {}
    codes: dict[int, int] = {}
    ids: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        started = time.monotonic()
        for _ in range(created):
            answer = await http.post("/api/sessions", json={})
            codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
            if answer.status_code == 201:
                body = answer.json()
                ids.append((body["session_id"], body["token"]))
        out["create_s"] = round(time.monotonic() - started, 2)
        await asyncio.sleep(2)
        out["rss_created_mb"] = rss_mb(pid)
        await asyncio.sleep(max(0.0, ttl - (time.monotonic() - started)) + 3)
        states: dict[str, int] = {}
        for session_id, token in ids:
            auth = {"Authorization": f"Bearer {token}"}
            info = (await http.get(f"/api/sessions/{session_id}", headers=auth)).json()
            key = f"{info['state']}/{info.get('reason')}"
            states[key] = states.get(key, 0) + 1
        out["rss_after_ttl_mb"] = rss_mb(pid)
    out["creations"] = codes
    out["states_after_ttl"] = states
    return out


async def run(created: int, ttl: float, live: int) -> dict[str, object]:
    env = {
        "COACH_CREATED_TTL_S": str(ttl),
        "COACH_MAX_CREATED_PER_CLIENT": str(created),
        "COACH_SESSION_CREATE_PER_MINUTE": str(2 * created + live + 10),
        "COACH_MIN_FREE_DISK_MB": "0",
    }
    with tempfile.TemporaryDirectory() as tmp, process_server(Path(tmp), env) as srv:
        assert srv.proc is not None
        pid = srv.proc.pid
        out: dict[str, object] = {"rss_start_mb": rss_mb(pid)}
        await one_session(srv.http, srv.ws, 2.0)
        await asyncio.sleep(2)
        out["rss_idle_mb"] = rss_mb(pid)
        for round_ in (1, 2):  # the second round: nothing more is kept
            out[f"round{round_}"] = await unused_round(srv.http, pid, created, ttl)
        clients = await asyncio.gather(
            *(one_session(srv.http, srv.ws, 4.0) for _ in range(live)), return_exceptions=True
        )
        ok = [c for c in clients if isinstance(c, SessionClient)]
        out["live_completed"] = sum(
            1 for c in ok if any(e.get("state") == "completed" for e in c.events)
        )
        out["live_with_face_metrics"] = sum(
            1 for c in ok if any(e["type"] == "metrics" and e["face"] for e in c.events)
        )
        out["rss_after_live_mb"] = rss_mb(pid)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--created", type=int, default=40)
    parser.add_argument("--ttl", type=float, default=10.0)
    parser.add_argument("--live", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.created, args.ttl, args.live)), indent=2))


if __name__ == "__main__":
    main()
