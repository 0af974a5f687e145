"""Runs WebRTC sessions against a ThreadServer in a fresh process and prints one JSON line of
what it saw: `python -m tests.support.rtc_probe cycles N` or `... smoke`.

A separate process so that a test can give it its own environment (MALLOC_ARENA_MAX for the
leak check) or its own network (`ip netns exec` for the loopback-only check)."""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psutil

from app.config import Settings
from app.wiring import TranscriptionService
from tests.support.rtc_client import FaceThenEmptyTrack, RtcClient, ToneWithSilencesTrack
from tests.support.server import ThreadServer


async def one_cycle(server: ThreadServer, client_leaves_first: bool) -> dict[str, Any]:
    """Connect, stream until 10 frames are in, then either the client goes away before the
    session is ended or the session is ended under a connected client (the server closes)."""
    client = await RtcClient.create(server.http)
    try:
        await client.connect(FaceThenEmptyTrack(), ToneWithSilencesTrack())
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        await client.poll(lambda i: i["frames_received"] >= 10, timeout=30)
        if client_leaves_first:
            await client.close()
            await client.end()
            return await client.poll(lambda i: i["state"] == "completed", timeout=30)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        async with asyncio.timeout(10):
            await client.channel_closed.wait()  # the server closed its peer
        return await client.get()
    finally:
        await client.close()


# Thread pools grow lazily up to a fixed size, so they are bounded, not leaks: the app's
# executors (the Pose lanes' too), the loop's default executor (asyncio_N) and AnyIO's worker
# threads.
POOL_PREFIXES = ("decode", "analysis", "audio", "pose", "asyncio_", "AnyIO worker")


def usage() -> dict[str, float]:
    process = psutil.Process()
    return {
        "threads": process.num_threads(),
        "threads_outside_pools": sum(
            1 for t in threading.enumerate() if not t.name.startswith(POOL_PREFIXES)
        ),
        "fds": process.num_fds(),
        "rss_mib": round(process.memory_info().rss / 2**20, 1),
    }


def alive(*type_names: str) -> dict[str, int]:
    gc.collect()
    counts = dict.fromkeys(type_names, 0)
    for obj in gc.get_objects():
        if type(obj).__name__ in counts:
            counts[type(obj).__name__] += 1
    return counts


async def server_done(server: ThreadServer) -> None:
    """Until the server has dropped every session: it frees an ended session's memory right
    after (app.live.manager `_collect_garbage`), so usage is compared at the same point."""
    async with asyncio.timeout(30):
        while True:  # the server runs its own loop in another thread: no event to share
            if not server.manager.sessions:
                return
            await asyncio.sleep(0.05)


# RSS after a session alternates by ~20 MiB with the way it ended (client left first or
# server ended it: measured ~915 / ~935 MiB, flat over 30 sessions), so each end is the median
# of this many per-session samples, an even number so both ways weigh alike.
RSS_SAMPLES = 6


async def _cycle_rss(server: ThreadServer, client_leaves_first: bool) -> tuple[str, float]:
    info = await one_cycle(server, client_leaves_first)
    await server_done(server)
    return info["state"], usage()["rss_mib"]


async def load_recogniser(server: ThreadServer, language: str = "ko") -> None:
    """Load the embedded recogniser's model (vosk, Korean: ~550 MiB) before the warm-up. The
    server loads it once per process, on the first stretch of speech a Korean session sends
    it; whether a session of about a second sends one depends on timing, so in two full test
    runs it loaded only during the measured cycles and RSS jumped by it there."""
    service = server.manager.services.hooks.make_transcriber.__self__
    assert isinstance(service, TranscriptionService), service
    await asyncio.to_thread(service.preload, language)


async def run_cycles(server: ThreadServer, cycles: int, warmup: int) -> dict[str, Any]:
    await load_recogniser(server)
    warm_rss = []
    for i in range(warmup):
        warm_rss.append((await _cycle_rss(server, client_leaves_first=i % 2 == 0))[1])
    before = usage()
    before["rss_mib"] = statistics.median(warm_rss[-RSS_SAMPLES:])
    states, rss = [], []
    for i in range(cycles):
        # Alternate the two ways a session ends; the last one is server-ended.
        state, mib = await _cycle_rss(server, client_leaves_first=(cycles - i) % 2 == 0)
        states.append(state)
        rss.append(mib)
    after = usage()
    after["rss_mib"] = statistics.median(rss[-RSS_SAMPLES:])
    return {
        "before": before,
        "after": after,
        "rss_per_session": warm_rss + rss,
        "states": states,
        "sessions_left": len(server.manager.sessions),
        "peers_left": len(server.app.state.rtc_peers.peers),
        "alive": alive("RtcPeer", "RTCPeerConnection", "LiveSession", "RemoteStreamTrack"),
    }


async def run_smoke(server: ThreadServer) -> dict[str, Any]:
    client = await RtcClient.create(server.http)
    try:
        await client.connect(FaceThenEmptyTrack(), ToneWithSilencesTrack())
        live = await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        info = await client.poll(lambda i: i["frames_received"] >= 10, timeout=30)
        candidates = [
            line for line in client.answer_sdp.splitlines() if line.startswith("a=candidate:")
        ]
        return {
            "live_seq": live["seq"],
            "frames": info["frames_received"],
            "candidates": candidates,
        }
    finally:
        await client.close()


def main(argv: list[str]) -> None:
    mode = argv[0]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            log_json=False,
            log_level="WARNING",
            reconnect_grace_s=1.0,
            min_free_disk_mb=0,
            session_create_per_minute=1000,
            _env_file=None,  # type: ignore[call-arg]
        )
        with ThreadServer(settings) as server:
            if mode == "cycles":
                result = asyncio.run(run_cycles(server, int(argv[1]), int(argv[2])))
            else:
                result = asyncio.run(run_smoke(server))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
