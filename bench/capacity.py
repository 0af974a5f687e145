"""Capacity under honest load, for both transports.

The server runs pinned to its own cores (`taskset`, with its Pose worker: children inherit
the mask), the load generator in P processes pinned to others, so the generator never takes
the server's CPU. Every session streams realistic media (`bench.media`: a face moving on every
frame with sensor noise, and speech) from one common start, camera phases spread over a frame
interval. WebSocket: JPEG frames (or, `--ws-video vp9`, the VP9 a browser's WebCodecs encoder
sends, as `VP91` messages) and `AUD1` PCM chunks. WebRTC: aiortc peers replaying VP8 (or,
`--rtc-video vp9`, VP9 as a browser's WebRTC encoder sends it) and Opus packets encoded once
(no encoder per session), negotiated with that one video codec.

Latency is measured where the user sits: a frame's send (the JPEG handed to the socket, the
VP8 frame handed to aiortc's packetizer) -> receipt of the `metrics` event that carries that
frame's index (`frame`; for WebRTC checked against the event's RTP-derived `t`), beside the
server's own `latency_ms`. Each generator process reports its event loop's lag (a 10 ms
sleep's overshoot), and each run checks that the generator kept its rate: frames sent vs
intended, frames sent later than one frame interval, and for WebRTC the RTP packets sent
(the sender's stats) vs those its frames make. A run whose generator fell behind is VOID.

Server CPU over the steady window (after `--warmup`) is read per process (server, Pose
worker) and per thread (`/proc/<pid>/task`, named with `py-spy dump`), and `--profile` samples
the server's Python stacks with py-spy (in the `test` extra) for the top functions.

    .venv/bin/python -m bench.capacity --transport ws --sessions 8 --fps 15 --seconds 60 --repeat 3
    .venv/bin/python -m bench.capacity --transport rtc --sessions 4,8 --fps 30 --procs 2
    .venv/bin/python -m bench.capacity --transport rtc --sessions 8 --profile
    .venv/bin/python -m bench.capacity --transport ws --sessions 4 --on-top 8
    .venv/bin/python -m bench.capacity --transport ws --ws-video vp9 --sessions 3,6,8
    .venv/bin/python -m bench.capacity --transport rtc --rtc-video vp9 --sessions 4,6
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import psutil
from aiortc import MediaStreamTrack, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.live import rtc_vp9  # noqa: E402
from app.media.vp9 import VP9_MAGIC  # noqa: E402
from bench import media  # noqa: E402
from tests.support import vp9_rtp  # noqa: E402
from tests.support.client import SessionClient  # noqa: E402
from tests.support.rtc_client import RtcClient  # noqa: E402
from tests.support.server import free_socket  # noqa: E402

VIDEO_CLOCK = 90_000
AUDIO_CHUNK_S = 0.1  # the page sends 100 ms of 16 kHz PCM a message
LAG_TICK_S = 0.01
# A run is VOID when its generator fell behind: under this share of frames (or RTP packets)
# sent, or over this share sent later than one frame interval with the generator's own
# event loop lagging (late sends with an idle generator are the server not reading: valid).
MIN_SENT_SHARE = 0.99
MAX_LATE_SHARE = 0.02


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def parse_cpus(text: str | None) -> set[int] | None:
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


# --- the server -----------------------------------------------------------------------------
class PinnedServer:
    """`python -m uvicorn app.main:app` as the README runs it, under `taskset -c CPUS`."""

    def __init__(self, data_dir: Path, env: dict[str, str], cpus: str | None) -> None:
        self.data_dir = data_dir
        self.env = env
        self.cpus = cpus
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / "server.log"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> PinnedServer:
        with contextlib.closing(free_socket()) as sock:
            self.port = sock.getsockname()[1]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        command = [
            *pin,
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--ws-per-message-deflate",
            "false",
        ]
        env = {
            **os.environ,
            "COACH_DATA_DIR": str(self.data_dir),
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.http}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def server_env(sessions: int, extra: dict[str, str]) -> dict[str, str]:
    return {
        "COACH_LOG_LEVEL": "WARNING",
        "COACH_MAX_CONCURRENT_SESSIONS": str(max(16, sessions * 2)),
        "COACH_MAX_CREATED_PER_CLIENT": str(max(8, sessions * 2)),
        "COACH_MAX_CREATED_SESSIONS": str(max(64, sessions * 2)),
        "COACH_SESSION_CREATE_PER_MINUTE": "100000",
        "COACH_MIN_FREE_DISK_MB": "0",
        "COACH_MIN_FREE_DISK_LIVE_MB": "0",
        **extra,
    }


# --- the generator's own health ------------------------------------------------------------
class LoopLag:
    """How late a `LAG_TICK_S` sleep wakes: the generator's event loop falling behind."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (monotonic, lag seconds)

    async def run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK_S)
            now = time.monotonic()
            self.samples.append((now, max(0.0, now - before - LAG_TICK_S)))

    def between(self, start: float, end: float) -> list[float]:
        return [lag for t, lag in self.samples if start <= t <= end]


@dataclass
class Media:
    fps: float
    jpegs: list[bytes] = field(default_factory=list)
    ws_video: list[bytes] = field(default_factory=list)  # the WebSocket's video messages
    rtp_video: media.RtpClip | None = None  # WebRTC's camera
    pcm: np.ndarray | None = None
    opus: list[bytes] = field(default_factory=list)


# --- WebSocket sessions ----------------------------------------------------------------------
class TimedSessionClient(SessionClient):
    """`SessionClient` that keeps each event's receipt time (`received_at[i]` for `events[i]`)."""

    def __init__(self, base_http: str, base_ws: str, info: dict[str, Any]) -> None:
        super().__init__(base_http, base_ws, info)
        self.received_at: list[float] = []

    async def connect(self, after_seq: int | None = None) -> None:
        """As a browser connects: no keepalive pings (a browser sends none), so a server
        reading slowly is measured, not disconnected by the client's ping timeout."""
        url = f"{self.base_ws}/ws/sessions/{self.id}?token={self.token}"
        self.ws = await connect(url, max_size=None, ping_interval=None)
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str):
                    self.received_at.append(time.monotonic())
                    self.log.add(json.loads(message))
        except Exception:
            pass
        finally:
            self.closed_code = ws.close_code
            self.log.close(f"socket closed ({ws.close_code})")


async def stream_ws(
    client: TimedSessionClient, m: Media, seconds: float, start: float, audio: bool
) -> dict[str, Any]:
    """The camera (JPEG or VP91 messages at `m.fps`) and the microphone (100 ms PCM chunks) on
    one socket, each on its own schedule from `start`, catching up at once when late."""
    n_video = int(seconds * m.fps)
    n_audio = int(seconds / AUDIO_CHUNK_S) if audio and m.pcm is not None else 0
    chunk = int(media.PCM_RATE * AUDIO_CHUNK_S)
    pcm = m.pcm if m.pcm is not None else np.zeros(chunk, np.int16)
    sent_at: list[float] = []
    late = 0
    next_audio = 0
    while len(sent_at) < n_video or next_audio < n_audio:
        i = len(sent_at)
        t_video = start + i / m.fps if i < n_video else math.inf
        t_audio = start + next_audio * AUDIO_CHUNK_S if next_audio < n_audio else math.inf
        due = min(t_video, t_audio)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if t_video <= t_audio:
            now = time.monotonic()
            if now - t_video > 1 / m.fps:
                late += 1
            sent_at.append(now)
            await client.send_frame(m.ws_video[i % len(m.ws_video)])
        else:
            offset = (next_audio * chunk) % max(1, len(pcm) - chunk)
            await client.send_frame(b"AUD1" + pcm[offset : offset + chunk].astype("<i2").tobytes())
            next_audio += 1
    return {"intended": n_video, "sent_at": sent_at, "late": late, "first_due": start}


# --- WebRTC sessions: packets encoded once, replayed ----------------------------------------
class ReplayTrack(MediaStreamTrack):
    """Hands aiortc pre-encoded packets (it packetizes them without encoding) on a camera's
    or microphone's schedule from a start given later (`go`), with fresh timestamps; after
    `count` packets it stays silent."""

    def __init__(
        self, kind: str, packets: list[bytes], rate: float, clock: int, count: int
    ) -> None:
        super().__init__()
        self.kind = kind
        self.packets = packets
        self.rate = rate
        self.step = round(clock / rate)
        self.time_base = Fraction(1, clock)
        self.count = count
        self.sent_at: list[float] = []
        self.late = 0
        self._start: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._done = asyncio.Event()

    def go(self, start: float) -> None:
        if not self._start.done():
            self._start.set_result(start)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        start = await self._start
        i = len(self.sent_at)
        if i >= self.count:
            await self._done.wait()  # until the peer closes (the sender's task is cancelled)
            raise MediaStreamError
        due = start + i / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.monotonic()
        if now - due > 1 / self.rate:
            self.late += 1
        packet = av.Packet(self.packets[i % len(self.packets)])
        packet.pts = i * self.step
        packet.time_base = self.time_base
        self.sent_at.append(now)
        return packet


class ReplayRtcClient(RtcClient):
    async def connect_replay(
        self, video: ReplayTrack, audio: ReplayTrack | None, codec: str = "VP8"
    ) -> None:
        self.video_sender = self.pc.addTrack(video)
        self.audio_sender = self.pc.addTrack(audio) if audio is not None else None
        if codec == "VP9":  # aiortc has no VP9: the server's codec, our test sender
            rtc_vp9.install()
            vp9_rtp.install_sender()
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender is self.video_sender:
                codecs = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in codecs if c.mimeType in (f"video/{codec}", "video/rtx")]
                )
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        async with httpx.AsyncClient(timeout=60) as http:
            response = await http.post(
                self.offer_url, json={"sdp": offer.sdp, "type": offer.type}, headers=self.auth
            )
        response.raise_for_status()
        await self.pc.setRemoteDescription(RTCSessionDescription(**response.json()))


async def packets_sent(sender: RTCRtpSender | None) -> int:
    if sender is None:
        return 0
    report = await sender.getStats()
    return sum(
        int(getattr(s, "packetsSent", 0)) for s in report.values() if s.type == "outbound-rtp"
    )


# --- one generator process -------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    index: int
    transport: str
    sessions: int
    first_session: int  # its sessions' numbers among all (for the camera phase)
    all_sessions: int
    seconds: float
    warmup: float
    audio: bool
    phase: str
    http: str
    ws: str
    cpus: tuple[int, ...] | None
    check_recording: bool


def count_video_frames(webm: bytes) -> int:
    with av.open(io.BytesIO(webm), mode="r") as container:
        return len([p for p in container.demux(video=0) if p.size])


async def _generate(
    spec: WorkerSpec, m: Media, barrier: Barrier, start_value: Synchronized[float]
) -> dict[str, Any]:
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run(), name="loop-lag")
    n_video = int(spec.seconds * m.fps)
    phase_step = 1.0 / (m.fps * spec.all_sessions) if spec.phase == "spread" else 0.0

    async def setup_ws(k: int) -> TimedSessionClient:
        client = await TimedSessionClient.create(spec.http, spec.ws, language="en", title="cap")
        await client.connect()
        return client  # type: ignore[return-value]

    async def setup_rtc(k: int) -> tuple[ReplayRtcClient, ReplayTrack, ReplayTrack | None]:
        client = await ReplayRtcClient.create(spec.http, language="en", title="cap")
        assert isinstance(client, ReplayRtcClient)
        assert m.rtp_video is not None
        video = ReplayTrack("video", m.rtp_video.frames, m.fps, VIDEO_CLOCK, n_video)
        audio = None
        if spec.audio and m.opus:
            count = int(spec.seconds * media.OPUS_RATE / media.OPUS_FRAME)
            audio = ReplayTrack("audio", m.opus, media.OPUS_RATE / media.OPUS_FRAME, 48_000, count)
        await client.connect_replay(video, audio, m.rtp_video.codec)
        await client.wait_for(lambda e: e["type"] == "state" and e.get("state") == "live", 60)
        return client, video, audio

    ks = range(spec.first_session, spec.first_session + spec.sessions)
    if spec.transport == "ws":
        ws_clients = list(await asyncio.gather(*(setup_ws(k) for k in ks)))
    else:
        rtc = list(await asyncio.gather(*(setup_rtc(k) for k in ks)))
    await asyncio.to_thread(barrier.wait, 300)
    start = start_value.value
    results: list[dict[str, Any]] = []

    # one HTTP client for the process: making one per request loads certificates on the loop
    http = httpx.AsyncClient(base_url=spec.http, timeout=60)

    async def info(client: SessionClient | RtcClient) -> dict[str, Any]:
        answer = await http.get(f"/api/sessions/{client.id}", headers=client.auth)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    async def at_warmup(client: SessionClient | RtcClient) -> dict[str, Any]:
        """The session's counters once the warm-up is over (the analyser built)."""
        await asyncio.sleep(max(0.0, start + spec.warmup - time.monotonic()))
        return await info(client)

    async def cpu_at(t: float) -> float:
        await asyncio.sleep(max(0.0, t - time.monotonic()))
        return time.process_time()

    cpu_window = asyncio.gather(cpu_at(start + spec.warmup), cpu_at(start + spec.seconds))

    async def finish(
        client: SessionClient | RtcClient,
        received_at: list[float],
        out: dict[str, Any],
        warm: asyncio.Task[dict[str, Any]],
    ) -> dict[str, Any]:
        out["info"] = await info(client)
        out["info_warm"] = await warm
        ended = time.monotonic()
        answer = await http.post(f"/api/sessions/{client.id}/end", headers=client.auth)
        assert answer.status_code == 202, answer.text
        ready = await client.wait_for(lambda e: e["type"] == "report_ready", timeout=300)
        out["end_to_ready_s"] = received_at[client.events.index(ready)] - ended
        out["events"] = [
            (e.get("frame"), e.get("t"), e.get("latency_ms"), received_at[i])
            for i, e in enumerate(client.events)
            if e["type"] == "metrics"
        ]
        out["errors"] = [e.get("code") for e in client.events if e["type"] == "error"]
        if spec.check_recording:
            answer = await http.get(
                f"/api/sessions/{client.id}/recording.webm", headers=client.auth
            )
            out["recorded"] = count_video_frames(answer.content) if answer.is_success else None
        return out

    if spec.transport == "ws":

        async def run_ws(k: int, client: TimedSessionClient) -> dict[str, Any]:
            warm = asyncio.create_task(at_warmup(client))
            out = await stream_ws(client, m, spec.seconds, start + k * phase_step, spec.audio)
            try:
                await finish(client, client.received_at, out, warm)
            except Exception as exc:  # counted, and the run goes on
                out["failed"] = f"{type(exc).__name__}: {exc}"
            await client.close()
            return out

        results = list(
            await asyncio.gather(*(run_ws(k, c) for k, c in zip(ks, ws_clients, strict=True)))
        )
    else:

        async def run_rtc(
            k: int, client: ReplayRtcClient, video: ReplayTrack, audio: ReplayTrack | None
        ) -> dict[str, Any]:
            warm = asyncio.create_task(at_warmup(client))
            video.go(start + k * phase_step)
            if audio is not None:
                audio.go(start + k * phase_step)
            await asyncio.sleep(max(0.0, start + spec.seconds + 0.5 - time.monotonic()))
            clip = m.rtp_video
            assert clip is not None
            frames = len(video.sent_at)
            out: dict[str, Any] = {
                "intended": video.count,
                "sent_at": video.sent_at,
                "first_due": start + k * phase_step,
                "late": video.late,
                "rtp_intended": sum(
                    clip.packets_per_frame[i % len(clip.frames)] for i in range(frames)
                ),
                "rtp_sent": await packets_sent(client.video_sender),
                "audio_intended": audio.count if audio is not None else 0,
                "audio_sent": len(audio.sent_at) if audio is not None else 0,
                "audio_rtp_sent": await packets_sent(client.audio_sender),
            }
            try:
                await finish(client, client.received_at, out, warm)
            except Exception as exc:  # counted, and the run goes on
                out["failed"] = f"{type(exc).__name__}: {exc}"
            await client.close()
            return out

        results = list(
            await asyncio.gather(
                *(run_rtc(k, *r) for k, r in zip(ks, rtc, strict=True)), return_exceptions=False
            )
        )
    lag_task.cancel()
    await http.aclose()
    cpu0, cpu1 = await cpu_window
    window = lag.between(start + spec.warmup, start + spec.seconds)
    return {
        "worker": spec.index,
        "cpu_s": cpu1 - cpu0,
        "start": start,
        "sessions": results,
        "loop_lag_ms": [round(x * 1000, 2) for x in window],
    }


def _worker_main(
    spec: WorkerSpec,
    m: Media,
    barrier: Barrier,
    start_value: Synchronized[float],
    conn: Connection,
) -> None:
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    try:
        result: dict[str, Any] = asyncio.run(_generate(spec, m, barrier, start_value))
    except BaseException as exc:  # the parent reports it; a dead worker must not hang it
        barrier.abort()
        result = {"worker": spec.index, "error": f"{type(exc).__name__}: {exc}"}
    conn.send(result)
    conn.close()


# --- the server's CPU, by process and by thread ----------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """tid -> (comm, user+system clock ticks) of every thread of `pid`."""
    out: dict[int, tuple[str, int]] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                stat = Path(entry.path, "stat").read_text()
                comm = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                out[int(entry.name)] = (comm, int(fields[11]) + int(fields[12]))
    return out


def python_thread_names(pid: int, attempts: int = 5) -> dict[int, str]:
    """os tid -> Python thread name, from `py-spy dump` (empty where py-spy is missing).

    `--nonblocking` reads the interpreter's memory while it runs, so a dump taken while a busy
    server rewrites its thread states can fail (seen in some runs, every thread then counted as
    a native one); it is tried again a few times, and a failure is said on stderr."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return {}
    error = ""
    for _ in range(attempts):
        try:
            text = subprocess.run(
                [spy, "dump", "--pid", str(pid), "--json", "--nonblocking"],
                capture_output=True,
                timeout=30,
                check=True,
            ).stdout
            names = {t["os_thread_id"]: t["thread_name"] for t in json.loads(text)}
            if names:
                return {tid: name for tid, name in names.items() if name}
        except subprocess.CalledProcessError as exc:
            error = exc.stderr.decode(errors="replace").strip()[-200:]
        except (subprocess.SubprocessError, ValueError, KeyError) as exc:
            error = repr(exc)
        time.sleep(0.2)
    print(f"py-spy dump failed {attempts} times ({error}): threads unnamed", file=sys.stderr)
    return {}


def thread_role(name: str) -> str:
    """A server thread's job, from its Python name (or `native:<comm>` for a native one)."""
    for prefix, role in (
        ("MainThread", "event loop (WS/RTP/SRTP/SCTP, events, glue)"),
        ("decode", "decode executor (JPEG / VP9 decode, WebRTC picture -> BGR)"),
        ("analysis", "analysis executor (FaceMesh + face glue)"),
        ("pose", "Pose lane threads (wait on the worker)"),
        ("audio", "audio executor (voice)"),
        ("recorder", "recorder (VP9/Opus encode)"),
        ("transcribe", "transcriber"),
        ("asyncio", "asyncio default executor (aiortc encode/other)"),
    ):
        if name.startswith(prefix):
            return role
    if "decoder_worker" in name or name.endswith("-decoder"):
        return "aiortc decoder threads (VP8/Opus decode)"
    if name.startswith("child:"):
        return "Pose worker process (all its threads)"
    if name.startswith("native:"):  # MediaPipe's, libvpx's (`vpx enc worker`), OpenCV's
        return f"native threads ({re.sub(r'[/_ ]*[0-9]+$', '', name[7:])})"
    return f"other ({name})"


class ServerCpu:
    """CPU seconds of the server process (by thread) and its children between `start()` and
    `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.names: dict[int, str] = {}

    def _children(self) -> dict[int, tuple[str, float]]:
        out: dict[int, tuple[str, float]] = {}
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = child.cpu_times()
                out[child.pid] = (" ".join(child.cmdline()[-2:])[:60], times.user + times.system)
        return out

    def start(self) -> None:
        self.t0 = time.monotonic()
        times = self.proc.cpu_times()
        self.main0 = times.user + times.system
        self.threads0 = thread_ticks(self.pid)
        self.children0 = self._children()

    def stop(self) -> dict[str, Any]:
        wall = time.monotonic() - self.t0
        times = self.proc.cpu_times()
        main = times.user + times.system - self.main0
        threads1 = thread_ticks(self.pid)
        children1 = self._children()
        names = self.names = python_thread_names(self.pid)
        for child in self.proc.children(recursive=True):  # the Pose worker's threads
            for tid, (comm, _ticks) in thread_ticks(child.pid).items():
                names[tid] = f"child:{comm}"
        roles: dict[str, float] = defaultdict(float)
        for tid, (comm, ticks) in threads1.items():
            before = self.threads0.get(tid, (comm, 0))[1]
            name = names.get(tid) or f"native:{comm}"
            roles[thread_role(name)] += (ticks - before) / TICK
        children = {
            f"child {pid} ({name})": cpu - self.children0.get(pid, (name, 0.0))[1]
            for pid, (name, cpu) in children1.items()
        }
        return {
            "wall_s": wall,
            "server_s": main,
            "children_s": sum(children.values()),
            "by_thread_s": dict(sorted(roles.items(), key=lambda kv: -kv[1])),
            "children": children,
        }


PROFILE_HZ = 100


def py_spy_record(
    pid: int, seconds: float, out: Path, cpus: str | None, gil: bool
) -> subprocess.Popen[bytes]:
    """Sample the server's (and its children's) Python stacks; `gil`: only the thread
    holding the GIL, so the server's samples a second / PROFILE_HZ is how busy the GIL is."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    pin = ["taskset", "-c", cpus] if cpus else []
    command = [
        *pin,
        spy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(PROFILE_HZ),
        *(["--gil"] if gil else []),
        "--format",
        "raw",
        "--threads",
        "--subprocesses",
        "--nonblocking",
        "--output",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# frames on (nearly) every stack: left out of the inclusive list
GENERIC_FRAMES = (
    "threading.py",
    "runpy",
    "click/core.py",
    "uvicorn/",
    "multiprocessing/",
    "concurrent/futures/",
    "asyncio/runners.py",
    "<module> (<string>)",
)
PROCESS_TAG = re.compile(r'process (\d+):"[^"]*";')


def summarize_profile(raw: Path, server_pid: int, seconds: float, top: int = 25) -> dict[str, Any]:
    """py-spy's collapsed stacks -> the share of samples by thread role (a child process's
    samples: `child process`), and the functions with the most samples inclusive (on the
    stack) and self (on top)."""
    by_role: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = server_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        pids = PROCESS_TAG.findall(stack)
        stack = PROCESS_TAG.sub("", stack)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[1] if ": " in frames[0] else frames[0]
        child = bool(pids) and int(pids[-1]) != server_pid
        if not child:
            server_samples += count
        by_role["child process (Pose worker)" if child else thread_role(thread)] += count
        total += count
        funcs = [
            f.split(" (")[0] + " (" + f.rsplit(" (", 1)[-1].split(":")[0] + ")" for f in frames[1:]
        ]
        for f in set(funcs):
            if not any(g in f for g in GENERIC_FRAMES):
                inclusive[f] += count
        if funcs:
            own[funcs[-1]] += count

    def share(c: int) -> float:
        return round(100 * c / max(1, total), 1)

    return {
        "samples": total,
        "server_samples_per_s_of_rate_pct": round(100 * server_samples / seconds / PROFILE_HZ, 1),
        "by_thread_pct": {k: share(v) for k, v in by_role.most_common()},
        "inclusive_pct": {k: share(v) for k, v in inclusive.most_common(top)},
        "self_pct": {k: share(v) for k, v in own.most_common(top)},
    }


def perf_record(
    pids: list[int], seconds: float, out: Path, cpus: str | None
) -> subprocess.Popen[bytes]:
    """Sample the server's native code too (libvpx, MediaPipe, libjpeg, SRTP, spinning
    thread pools), which py-spy shows only as the Python line that called it."""
    pin = ["taskset", "-c", cpus] if cpus else []
    command = [
        *pin,
        "perf",
        "record",
        "-e",
        "cpu-clock",
        "-F",
        "250",
        "-p",
        ",".join(map(str, pids)),
        "-o",
        str(out),
        "--",
        "sleep",
        str(int(seconds)),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_perf(data: Path, names: dict[int, str], top: int = 25) -> dict[str, Any]:
    """`perf report` self time by shared object, by thread role and object (`names`: the
    server's Python thread names by tid), and by symbol (with its object)."""

    def report(sort: str, top: int = top) -> dict[str, float]:
        text = subprocess.run(
            ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", sort],
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout
        rows: dict[str, float] = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "%" not in line:
                continue
            pct, _, rest = line.partition("%")
            with contextlib.suppress(ValueError):
                rows[" ".join(rest.split())] = float(pct)
            if len(rows) >= top:
                break
        return rows

    by_thread: defaultdict[str, float] = defaultdict(float)
    for key, pct in report("pid,dso", top=2000).items():
        # "12345:comm object"
        thread, _, dso = key.partition(" ")
        tid_text, _, comm = thread.partition(":")
        name = names.get(int(tid_text)) if tid_text.isdigit() else None
        role = thread_role(name or f"native:{comm}")
        by_thread[f"{role} | {dso}"] += pct
    return {
        "by_object_pct": report("dso"),
        "by_thread_object_pct": {
            k: round(v, 2) for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1])[:top]
        },
        "by_symbol_pct": report("dso,sym"),
    }


# --- one run ---------------------------------------------------------------------------------
async def probe_on_top(
    http_base: str, ws_base: str, count: int, jpeg: bytes | None
) -> dict[str, Any]:
    """`count` sessions more, tried one after another while the measured ones stream: each is
    created and, when that is accepted, sent one frame (`jpeg`; none: creation only). Counts
    refusals at creation (status, code, Retry-After) and at the first frame (close code and
    reason); an accepted one is ended at once, so it costs the measured sessions a frame."""
    out: dict[str, Any] = {"tried": count, "accepted": 0, "refused": Counter(), "retry_after": []}
    async with httpx.AsyncClient(base_url=http_base, timeout=60) as http:
        for _ in range(count):
            answer = await http.post("/api/sessions", json={"language": "en", "title": "on-top"})
            if answer.status_code != 201:
                code = answer.json().get("detail", {}).get("code")
                out["refused"][f"create {answer.status_code} {code}"] += 1
                out["retry_after"].append(answer.headers.get("retry-after"))
                continue
            client = SessionClient(http_base, ws_base, answer.json())
            if jpeg is not None:
                await client.connect()
                await client.send_frame(jpeg)
                live = client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
                try:
                    await asyncio.wait_for(live, 30)
                except (AssertionError, TimeoutError):
                    out["refused"][f"first frame {client.closed_code} {client.closed_why}"] += 1
                    await client.close()
                    continue
            out["accepted"] += 1
            await client.end()
            await client.close()
    out["refused"] = dict(out["refused"])
    return out


def run_once(args: argparse.Namespace, n: int, m: Media) -> dict[str, Any]:
    procs = max(1, min(n, args.procs or math.ceil(n / args.per_proc)))
    client_cpus = parse_cpus(args.client_cpus)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    ctx = mp.get_context("fork")
    start_value: Synchronized[float] = ctx.Value("d", 0.0)  # type: ignore[assignment]

    def set_start() -> None:
        start_value.value = time.monotonic() + 1.0

    barrier = ctx.Barrier(procs + 1, action=set_start)
    env = dict(kv.split("=", 1) for kv in args.env)
    with tempfile.TemporaryDirectory(prefix="coach-capacity-") as tmp:
        srv = PinnedServer(Path(tmp) / "data", server_env(n, env), args.server_cpus).start()
        workers: list[tuple[mp.process.BaseProcess, Connection]] = []
        try:
            per = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
            first = 0
            for i, count in enumerate(per):
                spec = WorkerSpec(
                    i,
                    args.transport,
                    count,
                    first,
                    n,
                    args.seconds,
                    args.warmup,
                    not args.no_audio,
                    args.phase,
                    srv.http,
                    srv.ws,
                    tuple(sorted(client_cpus)) if client_cpus else None,
                    not args.no_recording_check,
                )
                first += count
                parent_conn, child_conn = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_worker_main, args=(spec, m, barrier, start_value, child_conn)
                )
                proc.start()
                child_conn.close()
                workers.append((proc, parent_conn))
            barrier.wait(timeout=300)
            start = start_value.value
            cpu = ServerCpu(srv.pid)
            time.sleep(max(0.0, start + args.warmup - time.monotonic()))
            cpu.start()
            spy = None
            profile_path = Path(tmp) / "profile.txt"
            if args.profile:
                spy_s = max(1, int(args.seconds - args.warmup - 1))
                spy = py_spy_record(srv.pid, spy_s, profile_path, args.client_cpus, args.gil)
            perf = None
            perf_path = Path(tmp) / "perf.data"
            if args.perf:
                pids = [srv.pid, *(c.pid for c in cpu.proc.children(recursive=True))]
                perf_s = max(1, int(args.seconds - args.warmup - 1))
                perf = perf_record(pids, perf_s, perf_path, args.client_cpus)
            on_top = None
            if args.on_top:
                # halfway through the measured window, once the cadence has settled
                time.sleep(max(0.0, start + (args.warmup + args.seconds) / 2 - time.monotonic()))
                jpeg = m.jpegs[0] if m.jpegs else None
                on_top = asyncio.run(probe_on_top(srv.http, srv.ws, args.on_top, jpeg))
            time.sleep(max(0.0, start + args.seconds - time.monotonic()))
            server_cpu = cpu.stop()
            native = None
            if perf is not None:
                perf.wait(timeout=120)
                if perf_path.exists():
                    native = summarize_perf(perf_path, cpu.names)
            profile = None
            if spy is not None:
                spy.wait(timeout=120)
                if profile_path.exists():
                    profile = summarize_profile(profile_path, srv.pid, spy_s)
                    if args.profile_dir:
                        args.profile_dir.mkdir(parents=True, exist_ok=True)
                        target = args.profile_dir / (
                            f"{args.transport}-{n}x{args.fps:g}-{int(time.time())}.txt"
                        )
                        shutil.copy(profile_path, target)
            outputs = [conn.recv() for _, conn in workers]
        finally:
            for worker, _ in workers:
                worker.join(timeout=30)
                if worker.is_alive():
                    worker.kill()
            srv.stop()
            with contextlib.suppress(OSError):
                shutil.copy(srv.log_path, Path(tempfile.gettempdir()) / "capacity-server.log")
    errors = [o["error"] for o in outputs if "error" in o]
    if errors:
        raise RuntimeError(f"generator failed: {errors}")
    result = summarize(args, n, procs, outputs, server_cpu, profile)
    result["native_profile"] = native
    result["on_top"] = on_top
    return result


def summarize(
    args: argparse.Namespace,
    n: int,
    procs: int,
    outputs: list[dict[str, Any]],
    server_cpu: dict[str, Any],
    profile: dict[str, Any] | None,
) -> dict[str, Any]:
    fps = args.fps
    start = outputs[0]["start"]
    failed = [s["failed"] for o in outputs for s in o["sessions"] if "failed" in s]
    sessions = [s for o in outputs for s in o["sessions"] if "failed" not in s]
    server_lat: list[float] = []
    client_lat: list[float] = []
    capture_lat: list[float] = []
    inbound: list[float] = []  # WebSocket: frame send -> its arrival at the server
    outbound: list[float] = []  # WebSocket: the event's send -> its receipt
    mismatched = 0
    for s in sessions:
        sent_at: list[float] = s["sent_at"]
        events = [e for e in s["events"] if e[0] is not None and e[0] < len(sent_at)]
        if args.transport == "rtc" and events:
            # the RTP clock keeps the sender's spacing: index = first's + elapsed t x fps
            f0, t0 = events[0][0], events[0][1]
            mapped = []
            for frame, t, lat, got in events:
                by_t = f0 + round((t - t0) * fps)
                mismatched += by_t != frame
                mapped.append((by_t, t, lat, got))
            events = [e for e in mapped if 0 <= e[0] < len(sent_at)]
        # WebSocket: `t` is the frame's arrival in media time (arrival - the session's start,
        # on the monotonic clock this machine shares), so the start is the tightest
        # send - t: send -> arrival and event -> receipt split the gap to the server's figure.
        origin = max((sent_at[f] - t for f, t, _l, _g in events), default=None)
        for frame, t, lat, got in events:
            if sent_at[frame] < start + args.warmup:
                continue
            if lat is not None:
                server_lat.append(lat)
                if args.transport == "ws" and origin is not None:
                    arrived = origin + t
                    inbound.append((arrived - sent_at[frame]) * 1000)
                    outbound.append((got - arrived) * 1000 - lat)
            client_lat.append((got - sent_at[frame]) * 1000)
            # from the camera's capture (the frame's due time): a send held back by the
            # server not reading (TCP backpressure) is latency the user sees too
            capture_lat.append((got - (s["first_due"] + frame / fps)) * 1000)
    intended = sum(s["intended"] for s in sessions)
    sent = sum(len(s["sent_at"]) for s in sessions)
    late = sum(s["late"] for s in sessions)
    lag = [x for o in outputs for x in o["loop_lag_ms"]]
    lag_p95 = percentile(lag, 95)
    # analysed frames a second after the warm-up (analysers built, the Pose cadence settled)
    steady_s = args.seconds - args.warmup
    analysed = [
        (s["info"]["frames_analyzed"] - s["info_warm"]["frames_analyzed"]) / steady_s
        for s in sessions
    ]
    dropped = [s["info"]["frames_dropped"] - s["info_warm"]["frames_dropped"] for s in sessions]
    received = sum(s["info"]["frames_received"] for s in sessions)
    problems: list[str] = []
    if sent < MIN_SENT_SHARE * intended:
        problems.append(f"frames sent {sent}/{intended}")
    generator_busy = lag_p95 > 500 / fps
    if late > MAX_LATE_SHARE * intended and generator_busy:
        problems.append(f"{late} frames sent > 1 interval late, client loop lag p95 {lag_p95} ms")
    rtp = {}
    if args.transport == "rtc":
        rtp_sent = sum(s["rtp_sent"] for s in sessions)
        rtp_intended = sum(s["rtp_intended"] for s in sessions)
        a_sent = sum(s["audio_sent"] for s in sessions)
        a_intended = sum(s["audio_intended"] for s in sessions)
        rtp = {
            "rtp_video_sent_of_intended": f"{rtp_sent}/{rtp_intended}",
            "rtp_audio_sent": sum(s["audio_rtp_sent"] for s in sessions),
            "audio_frames_sent_of_intended": f"{a_sent}/{a_intended}",
            "index_vs_t_mismatches": mismatched,
        }
        if rtp_sent < MIN_SENT_SHARE * rtp_intended:
            problems.append(f"RTP packets sent {rtp_sent}/{rtp_intended}")
        if a_intended and a_sent < MIN_SENT_SHARE * a_intended:
            problems.append(f"audio frames sent {a_sent}/{a_intended}")
    window_frames = received * (args.seconds - args.warmup) / args.seconds
    cpu_total = server_cpu["server_s"] + server_cpu["children_s"]
    unrecorded = [
        len(s["sent_at"]) - s["recorded"] for s in sessions if s.get("recorded") is not None
    ]
    return {
        "transport": args.transport,
        "video": args.ws_video if args.transport == "ws" else args.rtc_video,
        "vp9_layers": args.vp9_layers,
        "fps": fps,
        "sessions": n,
        "seconds": args.seconds,
        "generator_procs": procs,
        "server_cpus": args.server_cpus,
        "client_cpus": args.client_cpus,
        "audio": not args.no_audio,
        "valid": not problems,
        "sessions_failed": len(failed),
        "failures": failed[:3],
        "void_reasons": problems,
        "frames_sent_of_intended": f"{sent}/{intended}",
        "frames_late": late,
        **rtp,
        "analysed_fps_min": round(min(analysed), 2) if analysed else None,
        "analysed_fps_median": round(statistics.median(analysed), 2) if analysed else None,
        # per session, in the order of their analysed fps: how even the overload is
        "analysed_fps_sessions": sorted(round(a, 2) for a in analysed),
        "dropped_sessions": [d for _a, d in sorted(zip(analysed, dropped, strict=True))],
        "server_p50_ms": round(percentile(server_lat, 50), 1),
        "server_p95_ms": round(percentile(server_lat, 95), 1),
        "client_p50_ms": round(percentile(client_lat, 50), 1),
        "client_p95_ms": round(percentile(client_lat, 95), 1),
        "client_max_ms": round(max(client_lat, default=float("nan")), 1),
        "capture_p95_ms": round(percentile(capture_lat, 95), 1),
        "ws_send_to_arrival_p95_ms": round(percentile(inbound, 95), 1),
        "ws_event_to_receipt_p95_ms": round(percentile(outbound, 95), 1),
        "metrics_events": len(client_lat),
        "generator_cpu_pct_per_session": round(
            100 * sum(o["cpu_s"] for o in outputs) / (args.seconds - args.warmup) / n, 1
        ),
        "client_loop_lag_p50_ms": round(percentile(lag, 50), 2),
        "client_loop_lag_p95_ms": round(lag_p95, 2),
        "client_loop_lag_max_ms": round(max(lag, default=float("nan")), 1),
        "end_to_ready_s_max": round(max((s["end_to_ready_s"] for s in sessions), default=-1), 2),
        "unrecorded_max": max(unrecorded) if unrecorded else None,
        "error_events": dict(Counter(c for s in sessions for c in s["errors"])),
        "server_cpu_pct": round(100 * server_cpu["server_s"] / server_cpu["wall_s"], 1),
        "children_cpu_pct": round(100 * server_cpu["children_s"] / server_cpu["wall_s"], 1),
        "cpu_ms_per_frame_received": round(1000 * cpu_total / max(1.0, window_frames), 2),
        # per frame the camera sent: comparable across changes in what counts as received
        # (frames dropped in the decode backlog count as received; before 2026-12-05 WebRTC
        # frames left in aiortc's track queue did not)
        "cpu_ms_per_frame_sent": round(
            1000 * cpu_total / max(1.0, sent * (args.seconds - args.warmup) / args.seconds), 2
        ),
        "cpu_core_per_session": round(cpu_total / server_cpu["wall_s"] / n, 3),
        "server_cpu_by_thread_pct": {
            k: round(100 * v / server_cpu["wall_s"], 1)
            for k, v in server_cpu["by_thread_s"].items()
            if v > 0.005 * server_cpu["wall_s"]
        },
        "children_cpu": {
            k: round(100 * v / server_cpu["wall_s"], 1) for k, v in server_cpu["children"].items()
        },
        "profile": profile,
    }


def median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Numeric figures: the median over runs with [min, max] beside (`*_range`)."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
            row[key] = round(statistics.median(values), 2)
            row[f"{key}_range"] = [min(values), max(values)]
    row["valid"] = all(r["valid"] for r in runs)
    row["void_reasons"] = [p for r in runs for p in r["void_reasons"]]
    row["runs"] = len(runs)
    return row


def fmt(row: dict[str, Any], key: str) -> str:
    span = row.get(f"{key}_range")
    if span and span[0] != span[1]:
        return f"{row[key]} ({span[0]}-{span[1]})"
    return str(row[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=("ws", "rtc"), default="ws")
    parser.add_argument("--sessions", default="8", help="comma list of N")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="left out of latency and CPU")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--server-cpus", default="0", help="taskset list for the server ('' off)")
    parser.add_argument("--client-cpus", default="1", help="for the generator ('' off)")
    parser.add_argument("--procs", type=int, default=0, help="generator processes (0: auto)")
    parser.add_argument("--per-proc", type=int, default=8, help="sessions a process (auto)")
    parser.add_argument("--phase", choices=("aligned", "spread"), default="spread")
    parser.add_argument(
        "--kbps", type=int, default=1000, help="VP8 / VP9 bitrate of the replayed clip"
    )
    parser.add_argument(
        "--ws-video",
        choices=("jpeg", "vp9"),
        default="jpeg",
        help="WebSocket camera: JPEG pictures, or the client's own VP9 (VP91 messages)",
    )
    parser.add_argument(
        "--vp9-layers",
        type=int,
        choices=(1, 2),
        default=1,
        help="VP9 temporal layers (2: L1T2, error resilient: every other frame droppable)",
    )
    parser.add_argument(
        "--rtc-video",
        choices=("vp8", "vp9"),
        default="vp8",
        help="WebRTC camera: VP8 (decoded, re-encoded to VP9 for the recording) or VP9 (kept)",
    )
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--no-recording-check", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy the server's window")
    parser.add_argument(
        "--perf", action="store_true", help="perf-sample the server's native code in the window"
    )
    parser.add_argument(
        "--gil", action="store_true", help="with --profile: only GIL-holding samples"
    )
    parser.add_argument("--profile-dir", type=Path, help="keep py-spy's raw stacks here")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument(
        "--on-top", type=int, default=0, help="sessions more to try halfway (refused or not)"
    )
    parser.add_argument("--json", type=Path, help="append each run's figures here (JSON lines)")
    args = parser.parse_args()

    m = Media(args.fps)
    if args.transport == "ws":
        m.jpegs = media.face_jpegs(args.fps)
        if args.ws_video == "vp9":
            clip = media.face_vp9(args.fps, args.kbps, args.vp9_layers)
            m.ws_video = [VP9_MAGIC + chunk for chunk in clip]
        else:
            m.ws_video = m.jpegs
        m.pcm = None if args.no_audio else media.speech_pcm()
    else:
        if args.rtc_video == "vp9":
            m.rtp_video = media.face_vp9_rtp(args.fps, args.kbps, args.vp9_layers)
        else:
            m.rtp_video = media.face_vp8(args.fps, args.kbps)
        m.opus = [] if args.no_audio else media.speech_opus()
    load = os.getloadavg()
    print(f"# {time.strftime('%H:%M:%S', time.gmtime())} UTC, load average {load}", flush=True)
    rows = []
    for n in (int(x) for x in args.sessions.split(",")):
        runs = []
        for _ in range(args.repeat):
            result = run_once(args, n, m)
            result["utc"] = time.strftime("%H:%M:%S", time.gmtime())
            result["loadavg_before"] = load
            runs.append(result)
            print(json.dumps(result), flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(result) + "\n")
            load = os.getloadavg()
        rows.append(median_row(runs) if len(runs) > 1 else runs[0])
    print()
    print(
        "| transport | fps | N | runs | valid | analysed fps min | server p95 ms "
        "| client p95 ms | client loop lag p95 ms | server CPU % (+children) "
        "| CPU ms/frame | end->ready max s |"
    )
    print("|" + " --- |" * 12)
    for r in rows:
        print(
            f"| {r['transport']} | {r['fps']:g} | {r['sessions']} | {r.get('runs', 1)} "
            f"| {'valid' if r['valid'] else 'VOID'} | {fmt(r, 'analysed_fps_min')} "
            f"| {fmt(r, 'server_p95_ms')} | {fmt(r, 'client_p95_ms')} "
            f"| {fmt(r, 'client_loop_lag_p95_ms')} | {fmt(r, 'server_cpu_pct')} "
            f"(+{fmt(r, 'children_cpu_pct')}) | {fmt(r, 'cpu_ms_per_frame_received')} "
            f"| {fmt(r, 'end_to_ready_s_max')} |"
        )
    for r in rows:
        if r.get("on_top"):
            print(f"# N = {r['sessions']}, on top (last run): {json.dumps(r['on_top'])}")


if __name__ == "__main__":
    main()
