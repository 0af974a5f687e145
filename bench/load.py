"""Load and soak benchmark of the whole server (a subprocess, so its RSS, threads and fds are
its own).

Load: N WebSocket sessions streaming the labelled clip at F fps for S seconds, plus U uploads
of a short clip at once through the upload flow (skipped, and said so, where the server has no
`/api/video/receive-video/`). Reports errors (HTTP, socket closes, `error` events, sessions not
completed: must be 0), frame arrival -> metrics event latency p50/p95, analysed fps per session,
server RSS/threads/fds.

Soak: K sessions at a time, each lasting --session-s, replaced as they end, for M minutes:
RSS drift (target <= 10 MB), threads and fds at the start of the steady state and at the end.

    .venv/bin/python -m bench.load --sessions 20 --fps 5 --seconds 120 --uploads 3
    .venv/bin/python -m bench.load --soak --sessions 4 --minutes 30
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip  # noqa: E402
from tests.support.client import SessionClient  # noqa: E402
from tests.support.server import ProcessServer  # noqa: E402

CLIP = (
    Segment("frontal", 4.0),
    Segment("rotated", 3.0, roll_deg=20.0),
    Segment("turned", 3.0, turn=0.35),
    Segment("empty", 2.0),
)
UPLOAD_PATH = "/api/video/receive-video/"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Tally:
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    analysed_fps: list[float] = field(default_factory=list)
    sessions_completed: int = 0


@dataclass
class Sample:
    t: float
    rss_mb: float
    threads: int
    fds: int


async def sample_process(proc: psutil.Process, samples: list[Sample], every_s: float) -> None:
    start = time.monotonic()
    while True:
        with proc.oneshot():
            samples.append(
                Sample(
                    time.monotonic() - start,
                    proc.memory_info().rss / 1e6,
                    proc.num_threads(),
                    proc.num_fds(),
                )
            )
        await asyncio.sleep(every_s)


async def run_session(
    srv: ProcessServer, jpegs: list[bytes], fps: float, seconds: float, tally: Tally
) -> None:
    try:
        client = await SessionClient.create(srv.http, srv.ws, language="en", title="load")
    except httpx.HTTPError as exc:
        tally.errors.append(f"create: {exc!r}")
        return
    try:
        await client.connect()
        await client.send_paced(islice(cycle(jpegs), int(seconds * fps)), fps)
        await client.send_json({"type": "end"})
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=180)
        await client.close()
        info = (await client.get()).json()
    except Exception as exc:
        tally.errors.append(f"session {client.id[:8]}: {exc!r}")
        return
    if client.closed_code not in (None, 1000):
        tally.errors.append(f"session {client.id[:8]}: socket closed {client.closed_code}")
    tally.errors.extend(f"event {e['code']}: {e.get('reason')}" for e in client.of_type("error"))
    if info["state"] != "completed":
        tally.errors.append(f"session {client.id[:8]} ended {info['state']}: {info['reason']}")
    else:
        tally.sessions_completed += 1
    tally.latencies_ms.extend(m["latency_ms"] for m in client.of_type("metrics")[3:])
    if info["duration_s"]:
        tally.analysed_fps.append(info["frames_analyzed"] / info["duration_s"])


def upload_clip(seconds: float = 20.0, fps: int = 15) -> bytes:
    """A short H.264 MP4 of the labelled clip, made in memory."""
    import av

    frames = labelled_clip(float(fps), list(CLIP))
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(int(seconds * fps)):
            image = frames[i % len(frames)].image
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


async def run_upload(srv: ProcessServer, clip: bytes, tally: Tally, timings: list[float]) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=srv.http, timeout=60) as http:
        answer = await http.post(UPLOAD_PATH, files={"file": ("clip.mp4", clip, "video/mp4")})
        if answer.status_code != 200:
            tally.errors.append(f"upload: {answer.status_code} {answer.text[:200]}")
            return
        video_id = answer.json()["video_id"]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            feedback = await http.get(f"/api/video/video-send-feedback/{video_id}/")
            problem = feedback.json().get("problem")
            if problem != "processing":
                if problem not in ("success", "no_feedback"):
                    tally.errors.append(f"upload {video_id}: {problem}")
                timings.append(time.monotonic() - started)
                return
            await asyncio.sleep(1.0)
        tally.errors.append(f"upload {video_id}: still processing after 600 s")


def server_env(sessions: int) -> dict[str, str]:
    return {
        "COACH_LOG_LEVEL": "WARNING",
        "COACH_MAX_CONCURRENT_SESSIONS": str(sessions * 2),
        "COACH_SESSION_CREATE_PER_MINUTE": "100000",
        "COACH_MIN_FREE_DISK_MB": "0",
        "COACH_MIN_FREE_DISK_LIVE_MB": "0",
    }


async def load(args: argparse.Namespace) -> dict[str, Any]:
    jpegs = [encode_jpeg(f.image) for f in labelled_clip(15.0, list(CLIP))]
    with tempfile.TemporaryDirectory(prefix="coach-load-") as tmp:
        srv = ProcessServer(Path(tmp) / "data", server_env(args.sessions)).start()
        try:
            proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
            samples: list[Sample] = []
            sampler = asyncio.create_task(sample_process(proc, samples, 2.0))
            tally = Tally()
            upload_timings: list[float] = []
            uploads_note = f"{args.uploads} at once"
            tasks = [
                run_session(srv, jpegs, args.fps, args.seconds, tally) for _ in range(args.sessions)
            ]
            if args.uploads:
                async with httpx.AsyncClient(base_url=srv.http) as http:
                    paths = (await http.get("/openapi.json")).json()["paths"]
                if UPLOAD_PATH in paths or UPLOAD_PATH.rstrip("/") in paths:
                    clip = await asyncio.to_thread(upload_clip)
                    tasks += [
                        run_upload(srv, clip, tally, upload_timings) for _ in range(args.uploads)
                    ]
                else:
                    uploads_note = "none: this server has no upload flow"
            started = time.monotonic()
            await asyncio.gather(*tasks)
            wall = time.monotonic() - started
            sampler.cancel()
        finally:
            srv.stop()
    return {
        "mode": "load",
        "sessions": args.sessions,
        "fps": args.fps,
        "seconds": args.seconds,
        "uploads": uploads_note,
        "wall_s": round(wall, 1),
        "errors": len(tally.errors),
        "error_examples": tally.errors[:5],
        "sessions_completed": tally.sessions_completed,
        "latency_ms_p50": round(percentile(tally.latencies_ms, 50), 1),
        "latency_ms_p95": round(percentile(tally.latencies_ms, 95), 1),
        "analysed_fps_per_session_median": round(statistics.median(tally.analysed_fps), 2)
        if tally.analysed_fps
        else None,
        "analysed_fps_per_session_min": round(min(tally.analysed_fps), 2)
        if tally.analysed_fps
        else None,
        "upload_done_s": [round(t, 1) for t in upload_timings],
        "rss_mb_start": round(samples[0].rss_mb, 1) if samples else None,
        "rss_mb_peak": round(max(s.rss_mb for s in samples), 1) if samples else None,
        "threads_peak": max(s.threads for s in samples) if samples else None,
    }


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    jpegs = [encode_jpeg(f.image) for f in labelled_clip(15.0, list(CLIP))]
    total_s = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="coach-soak-") as tmp:
        srv = ProcessServer(Path(tmp) / "data", server_env(args.sessions)).start()
        try:
            proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
            samples: list[Sample] = []
            sampler = asyncio.create_task(sample_process(proc, samples, 10.0))
            tally = Tally()
            started = time.monotonic()

            async def lane() -> None:
                while time.monotonic() - started + args.session_s <= total_s:
                    await run_session(srv, jpegs, args.fps, args.session_s, tally)

            await asyncio.gather(*(lane() for _ in range(args.sessions)))
            lanes_done = time.monotonic() - started
            # idle a moment so finalised sessions' memory is returned
            await asyncio.sleep(15)
            sampler.cancel()
        finally:
            srv.stop()
    # Steady state: after the first round of sessions (models loaded, pools warm) and while
    # the lanes still run, so the start and the end compare like with like (K sessions live).
    warm = [s for s in samples if args.session_s + 15 <= s.t <= lanes_done] or samples
    tenth = max(1, len(warm) // 10)
    first, last = warm[:tenth], warm[-tenth:]
    rss_start = statistics.median(s.rss_mb for s in first)
    rss_end = statistics.median(s.rss_mb for s in last)
    slope = statistics.linear_regression([s.t for s in warm], [s.rss_mb for s in warm]).slope
    idle = [s for s in samples if s.t > lanes_done + 5]
    return {
        "mode": "soak",
        "sessions_at_once": args.sessions,
        "minutes": args.minutes,
        "session_s": args.session_s,
        "fps": args.fps,
        "sessions_completed": tally.sessions_completed,
        "errors": len(tally.errors),
        "error_examples": tally.errors[:5],
        "latency_ms_p50": round(percentile(tally.latencies_ms, 50), 1),
        "latency_ms_p95": round(percentile(tally.latencies_ms, 95), 1),
        "rss_mb_steady_start": round(rss_start, 1),
        "rss_mb_end": round(rss_end, 1),
        "rss_drift_mb": round(rss_end - rss_start, 1),
        "rss_trend_mb_per_hour": round(slope * 3600, 1),
        "rss_mb_idle_after": round(idle[-1].rss_mb, 1) if idle else None,
        "threads_start_end": [first[0].threads, last[-1].threads],
        "fds_start_end": [first[0].fds, last[-1].fds],
        "threads_fds_idle_after": [idle[-1].threads, idle[-1].fds] if idle else None,
        "rss_series_mb": [round(s.rss_mb) for s in samples[:: max(1, len(samples) // 20)]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soak", action="store_true")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--uploads", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--session-s", type=float, default=60.0)
    args = parser.parse_args()
    if args.sessions is None:
        args.sessions = 4 if args.soak else 20
    result = asyncio.run(soak(args) if args.soak else load(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
