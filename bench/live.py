"""Live-loop benchmark: N concurrent WebSocket sessions streaming the labelled clip at 15 fps.

Runs the server as a subprocess (so its CPU and RSS are its own) and reports, per N:
per-stage analysis medians (decode, face, pose, cues), how old the Pose result a metrics event
carries is (`pose_age_ms`), frame arrival -> metrics event
latency p50/p95, analysed fps per session, dropped frames, CPU and RSS per session of the server
with its child processes (the Pose worker).

    .venv/bin/python -m bench.live --sessions 1,2,4,8 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import av
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip  # noqa: E402
from tests.support.client import SessionClient  # noqa: E402
from tests.support.metrics import parse  # noqa: E402
from tests.support.rtc_client import FaceThenEmptyTrack, RtcClient  # noqa: E402
from tests.support.server import ProcessServer  # noqa: E402

CLIP = (
    Segment("frontal", 4.0),
    Segment("rotated", 3.0, roll_deg=20.0),
    Segment("turned", 3.0, turn=0.35),
    Segment("frontal", 3.0, scale=1.3),
    Segment("empty", 2.0),
)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run_session(
    srv: ProcessServer, jpegs: list[bytes], fps: float, seconds: float, phase_s: float = 0.0
) -> dict[str, Any]:
    """Stream `seconds` of frames at `fps`, the first `phase_s` after the others' first."""
    client = await SessionClient.create(srv.http, srv.ws, language="en", title="bench")
    await client.connect()
    n = int(seconds * fps)
    await client.send_paced(islice(cycle(jpegs), n), fps, time.monotonic() + phase_s)
    info = (await client.get()).json()
    await client.end()
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=300)
    recording = await client.get("/recording.webm")
    await client.close()
    return {
        "info": info,
        "metrics": client.of_type("metrics"),
        "sent": n,
        "recorded": count_video_frames(recording.content) if recording.is_success else 0,
    }


def count_video_frames(webm: bytes) -> int:
    """Video frames in a recording (packets demuxed, nothing decoded)."""
    with av.open(io.BytesIO(webm), mode="r") as container:
        return len([packet for packet in container.demux(video=0) if packet.size])


async def run_rtc_session(srv: ProcessServer, seconds: float) -> dict[str, Any]:
    """One WebRTC session: aiortc sends a real face at 30 fps (VP8 over RTP) for `seconds`."""
    client = await RtcClient.create(srv.http, language="en", title="bench")
    camera = FaceThenEmptyTrack()
    await client.connect(video=camera)
    await client.wait_for(lambda e: e["type"] == "metrics", timeout=60)
    await asyncio.sleep(seconds)  # the camera plays for this long
    info = await client.get()
    sent = camera.sent
    await client.end()
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=300)
    await client.close()
    return {"info": info, "metrics": client.of_type("metrics"), "sent": sent}


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    """The server and its child processes (the Pose worker, multiprocessing's helper)."""
    return [proc, *proc.children(recursive=True)]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in _tree(proc):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def tree_cpu_s(proc: psutil.Process) -> float:
    """CPU seconds of the server and its live children (a child's whole life: the Pose worker
    starts with the first session and lasts to the end)."""
    total = 0.0
    for p in _tree(proc):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = p.cpu_times()
            total += times.user + times.system
    return total


async def run(
    n_sessions: int,
    seconds: float,
    fps: float,
    env: dict[str, str],
    transport: str = "ws",
    phase: str = "aligned",
) -> dict[str, Any]:
    frames = labelled_clip(fps, CLIP)
    jpegs = [encode_jpeg(f.image) for f in frames]
    with tempfile.TemporaryDirectory() as tmp:
        srv = ProcessServer(Path(tmp) / "data", {"COACH_LOG_LEVEL": "WARNING", **env}).start()
        try:
            proc = psutil.Process(srv.proc.pid)  # type: ignore[union-attr]
            rss_idle = tree_rss(proc)
            cpu0 = tree_cpu_s(proc)
            wall0 = time.monotonic()
            rss_samples: list[int] = []

            cadences: list[float] = []
            caps: list[float] = []

            async def sample_rss() -> None:
                async with httpx.AsyncClient(base_url=srv.http) as http:
                    while True:
                        rss_samples.append(tree_rss(proc))
                        scraped = parse((await http.get("/metrics")).text)
                        cadences.append(scraped.get("coach_pose_every", float("nan")))
                        caps.append(scraped.get("coach_analysis_fps", float("nan")))
                        await asyncio.sleep(1.0)

            sampler = asyncio.create_task(sample_rss())
            if transport == "rtc":
                sessions = [run_rtc_session(srv, seconds) for _ in range(n_sessions)]
            else:
                # aligned: every camera's frames arrive at the same instant (the worst case);
                # spread: the cameras' phases spread evenly over one frame interval, as
                # independent webcams would be on average.
                step = 1.0 / (fps * n_sessions) if phase == "spread" else 0.0
                sessions = [
                    run_session(srv, jpegs, fps, seconds, k * step) for k in range(n_sessions)
                ]
            results = await asyncio.gather(*sessions)
            sampler.cancel()
            cpu1 = tree_cpu_s(proc)
            wall = time.monotonic() - wall0
        finally:
            srv.stop()
    metrics = [m for r in results for m in r["metrics"]]
    stages: dict[str, list[float]] = {}
    for m in metrics:
        for stage, ms in (m.get("analysis_ms") or {}).items():
            stages.setdefault(stage, []).append(ms)
    # Pose runs on one frame in `pose_every` (more under load): its time is taken where it ran.
    pose_ran = [ms for ms in stages.get("pose", []) if ms >= 0.5]
    if pose_ran:
        stages["pose"] = pose_ran
    busy = cadences[len(cadences) // 4 :] or cadences  # the server's cadence once under way
    busy_caps = caps[len(caps) // 4 :] or caps
    # how old the posture/gesture fields are (Pose runs in its own lane, its result reused)
    pose_ages = [m["pose_age_ms"] for m in metrics if m.get("pose_age_ms") is not None]
    latencies = [m["latency_ms"] for m in metrics]
    # after each session's first 5 s (analysers built, the Pose cadence settled)
    steady = [m["latency_ms"] for m in metrics if m["t"] >= 5.0]
    analysed_fps = [r["info"]["frames_analyzed"] / seconds for r in results]
    dropped = [r["info"]["frames_dropped"] for r in results]
    # frames missing from the recording (WebSocket: every sent frame should be recorded)
    unrecorded = [r["sent"] - r["recorded"] for r in results if "recorded" in r]
    cpu_s = cpu1 - cpu0
    rss_peak = max(rss_samples) if rss_samples else rss_idle
    half = len(rss_samples) // 2
    drift_mb = (
        (statistics.median(rss_samples[half:]) - statistics.median(rss_samples[:half])) / 1e6
        if half >= 2
        else float("nan")
    )
    return {
        "transport": transport,
        "phase": phase if transport == "ws" else "-",
        "sessions": n_sessions,
        "seconds": seconds,
        "stage_median_ms": {k: round(statistics.median(v), 2) for k, v in sorted(stages.items())},
        "pose_every": f"{min(busy):g}-{max(busy):g}" if busy else "-",
        "analysis_cap": f"{max(busy_caps):g}-{min(busy_caps):g}" if busy_caps else "-",
        "pose_age_p50_ms": round(percentile(pose_ages, 50)) if pose_ages else "-",
        "pose_age_p95_ms": round(percentile(pose_ages, 95)) if pose_ages else "-",
        "latency_p50_ms": round(percentile(latencies, 50), 1),
        "latency_p95_ms": round(percentile(latencies, 95), 1),
        "steady_p95_ms": round(percentile(steady, 95), 1),
        "analysed_fps_per_session": round(statistics.median(analysed_fps), 2),
        "analysed_fps_min": round(min(analysed_fps), 2),
        "dropped_per_session": round(statistics.median(dropped)),
        "unrecorded_max": max(unrecorded) if unrecorded else "-",
        "cpu_share_per_session": round(cpu_s / wall / n_sessions, 3),
        "rss_per_session_mb": round((rss_peak - rss_idle) / 1e6 / n_sessions, 1),
        "rss_peak_mb": round(rss_peak / 1e6, 1),
        "rss_drift_mb": round(drift_mb, 1),
        "rss_mb_each_s": [round(r / 1e6) for r in rss_samples],
        "pose_every_each_s": cadences,
        "analysis_cap_each_s": caps,
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric figure's median over repeated runs of one N (the machine is noisy; a
    worst-case figure, `*_max` or `*_min`, the worst over them), with every run's p95 latency
    kept beside it."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in runs if isinstance(r[key], int | float)]
            pick = max if key.endswith("_max") else min if key.endswith("_min") else None
            row[key] = pick(values) if pick else round(statistics.median(values), 2)
    stages = {key for r in runs for key in r["stage_median_ms"]}
    row["stage_median_ms"] = {
        key: round(
            statistics.median(
                r["stage_median_ms"][key] for r in runs if key in r["stage_median_ms"]
            ),
            2,
        )
        for key in sorted(stages)
    }
    row["latency_p95_runs"] = [r["latency_p95_ms"] for r in runs]
    row["runs"] = len(runs)
    return row


def p95_range(row: dict[str, Any]) -> str:
    runs = row.get("latency_p95_runs")
    return f" ({min(runs)}-{max(runs)})" if runs else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--phase",
        choices=("aligned", "spread"),
        default="aligned",
        help="aligned: all cameras' frames arrive together; spread: evenly over a frame interval",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per N; the table gives each figure's median over them (p95: and the range)",
    )
    parser.add_argument(
        "--transport",
        choices=("ws", "rtc"),
        default="ws",
        help="ws: JPEG frames over the WebSocket; rtc: an aiortc peer (VP8 over RTP, 30 fps)",
    )
    args = parser.parse_args()
    env = dict(kv.split("=", 1) for kv in args.env)
    rows = []
    for n in (int(x) for x in args.sessions.split(",")):
        runs = []
        for _ in range(args.repeat):
            runs.append(
                asyncio.run(run(n, args.seconds, args.fps, env, args.transport, args.phase))
            )
            print(json.dumps(runs[-1]), flush=True)
        rows.append(median_row(runs) if len(runs) > 1 else runs[0])
    print()
    print(
        "| transport | phase | N | decode | face | pose (when run) | Pose every / fps cap "
        "| Pose age p50 / p95 | cues "
        "| latency p50 / p95 ms | p95 after 5 s "
        "| analysed fps/session (min) | dropped/session | unrecorded (max) | CPU/session "
        "| RSS/session MB "
        "| RSS drift MB |"
    )
    print("|" + " --- |" * 17)
    for r in rows:
        s = r["stage_median_ms"]
        print(
            f"| {r['transport']} | {r['phase']} | {r['sessions']} | {s.get('decode', '-')} "
            f"| {s.get('face', '-')} | {s.get('pose', '-')} "
            f"| {r['pose_every']} / {r.get('analysis_cap', '-')} "
            f"| {r['pose_age_p50_ms']} / {r['pose_age_p95_ms']} | {s.get('cues', '-')} "
            f"| {r['latency_p50_ms']} / {r['latency_p95_ms']}{p95_range(r)} | {r['steady_p95_ms']} "
            f"| {r['analysed_fps_per_session']} ({r['analysed_fps_min']}) "
            f"| {r['dropped_per_session']} | {r['unrecorded_max']} "
            f"| {r['cpu_share_per_session']:.0%} | "
            f"{r['rss_per_session_mb']} | {r['rss_drift_mb']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
