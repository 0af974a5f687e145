"""The WebRTC transport end to end: an aiortc client peer against a real uvicorn server."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.support.rtc_client import FaceThenEmptyTrack, RtcClient, ToneWithSilencesTrack
from tests.support.server import ROOT, ThreadServer


@pytest.fixture
def server(settings: Settings) -> Iterator[ThreadServer]:
    with ThreadServer(settings) as srv:
        yield srv


async def test_offer_is_authorised_and_validated(server: ThreadServer) -> None:
    client = await RtcClient.create(server.http)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            body = {"sdp": "v=0\r\n", "type": "offer"}
            missing = await http.post(client.offer_url, json=body)
            assert missing.status_code == 401
            assert missing.json()["detail"]["code"] == "token_missing"
            wrong = await http.post(
                client.offer_url, json=body, headers={"Authorization": "Bearer nope"}
            )
            assert wrong.status_code == 403
            unknown = await http.post(
                f"{server.http}/api/sessions/nosuchsession/offer", json=body, headers=client.auth
            )
            assert unknown.status_code == 404
            for sdp in ("v=0\r\n", "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "hello"):
                garbage = await http.post(
                    client.offer_url, json={"sdp": sdp, "type": "offer"}, headers=client.auth
                )
                assert garbage.status_code == 400, (sdp, garbage.text)
                assert garbage.json()["detail"]["code"] == "bad_offer"
            not_offer = await http.post(
                client.offer_url, json={"sdp": "v=0", "type": "answer"}, headers=client.auth
            )
            assert not_offer.status_code == 422
        # A refused offer started nothing: the session is still waiting for media.
        assert (await client.get())["state"] == "created"
    finally:
        await client.close()


async def real_offer_sdp() -> str:
    """A browser-like offer (video, audio and the events channel) made by a real peer."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="sendonly")
        pc.addTransceiver("audio", direction="sendonly")
        pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        return sdp
    finally:
        await pc.close()


async def test_a_malformed_offer_with_media_sections_is_400_bad_offer(
    server: ThreadServer,
) -> None:
    """aiortc refuses broken SDP with many exception types (KeyError, IndexError,
    AssertionError, AttributeError...): each is the client's bad offer, never a 500."""
    sdp = await real_offer_sdp()
    video = next(line for line in sdp.splitlines() if line.startswith("m=video"))
    rtpmap = next(line for line in sdp.splitlines() if line.startswith("a=rtpmap:"))
    mutations = {
        "setup": sdp.replace("a=setup:actpass", "a=setup:x"),
        "rtpmap": sdp.replace(rtpmap, rtpmap.split(" ")[0] + " x"),
        "port": sdp.replace(video, " ".join(["m=video", "x", *video.split(" ")[2:]])),
        "mid": sdp.replace("a=mid:0", "a=mid:0 0"),
    }
    client = await RtcClient.create(server.http)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for name, broken in mutations.items():
                assert broken != sdp, name
                answer = await http.post(
                    client.offer_url, json={"sdp": broken, "type": "offer"}, headers=client.auth
                )
                assert answer.status_code == 400, (name, answer.text)
                assert answer.json()["detail"]["code"] == "bad_offer"
        assert (await client.get())["state"] == "created"
        assert server.app.state.rtc_peers.peers == {}
    finally:
        await client.close()


async def test_media_in_events_out_on_the_data_channel(server: ThreadServer) -> None:
    client = await RtcClient.create(server.http, language="en")
    try:
        await client.connect(FaceThenEmptyTrack(), ToneWithSilencesTrack(2.0, 2.0, 0.3))
        live = await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        assert live["session_id"] == client.id and live["seq"] >= 1
        assert "a=candidate:" in client.answer_sdp  # gathered before answering, no trickle

        # Video: frames keep arriving and are counted; their times follow the RTP clock.
        info = await client.poll(lambda i: i["frames_received"] >= 45)
        assert info["state"] == "live"
        rtc_peer = server.app.state.rtc_peers.peers[client.id]  # the registry in app state
        assert sorted(rtc_peer.tracks) == ["audio", "video"]

        # Audio: resampled to 16 kHz and measured; one `voice` event a second on the channel,
        # loud for the tone, silent for the gaps.
        await client.wait_for(lambda e: e["type"] == "voice" and len(client.of_type("voice")) >= 5)
        levels = client.of_type("voice")
        dbfs = [e["level_dbfs"] for e in levels]
        # A sine at 0.3 of full scale is -13.5 dBFS; aiortc's sender upmixes mono to stereo at
        # -3 dB before Opus, so the server hears -16.5. 2 s on, 2 s off gives 1 s windows that
        # are all tone, all silence (at or near the -100 floor) or a mix.
        assert -18.0 < max(dbfs) < -12.0, dbfs
        assert min(dbfs) < -50.0, dbfs
        times = [e["t"] for e in levels]
        assert all(0.9 < b - a < 1.1 for a, b in itertools.pairwise(times)), times

        # Frames were analysed: metrics come on the channel with the frame index and latency.
        metrics = await client.wait_for(lambda e: e["type"] == "metrics" and e["face"])
        assert metrics["frame"] >= 0 and metrics["latency_ms"] >= 0  # how fast: bench/, not a test

        # The end arrives on the channel too, then the server closes the peer.
        await client.end()
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        seqs = [e["seq"] for e in client.events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert client.of_type("report_ready")
        async with asyncio.timeout(10):
            await client.channel_closed.wait()
        assert client.id not in server.app.state.rtc_peers.peers
        # Every event the channel delivered is the session's persisted event log.
        stored = (await client.get("/events"))["events"]
        assert [e["seq"] for e in stored][-len(seqs) :] == seqs
    finally:
        await client.close()


async def test_face_lost_cue_comes_on_the_data_channel(settings: Settings) -> None:
    # A metrics event for every analysed frame (no rate limit), so the test sees each frame
    # the cue engine saw.
    with ThreadServer(settings.updated(metrics_hz=1e6)) as server:
        client = await RtcClient.create(server.http, language="en")
        try:
            await client.connect(FaceThenEmptyTrack(face_s=2.0))
            first = await client.wait_for(lambda e: e["type"] == "metrics" and e["face"])
            cue = await client.wait_for(
                lambda e: e["type"] == "cue" and e["cue"] == "face_lost" and e["state"] == "on"
            )
        finally:
            await client.close()
    assert cue["severity"] in ("info", "warn") and cue["message"]
    metrics = [e for e in client.events if e["type"] == "metrics" and e["t"] <= cue["t"]]
    last_face = max(e["t"] for e in metrics if e["face"])
    lost = [e["t"] for e in metrics if not e["face"] and e["t"] > last_face]
    assert lost, "no analysed frame without the face before the cue"
    # Media time comes from the RTP clock: the face leaves 2.0 s after the first frame...
    assert lost[0] - first["t"] >= 1.8, (first["t"], lost[0])
    # ...and the cue turns on at the first analysed frame a hold (cue_hold_s) after the face
    # was first missed, however many frames a busy machine skipped in between (times are
    # rounded to the millisecond on the wire).
    hold = settings.cues.cue_hold_s
    assert cue["t"] >= lost[0] + hold - 0.002, (lost, cue["t"])
    assert not [t for t in lost if lost[0] + hold + 0.002 <= t < cue["t"]], (lost, cue["t"])


class PausingTrack(FaceThenEmptyTrack):
    """The face camera that stops after `frames` frames until `resume` is set: a camera whose
    next frame is late (a stalled capture, a tab in the background)."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def recv(self) -> Any:
        if self.sent == self.frames:
            self.paused.set()
            await self.resume.wait()
        return await super().recv()


async def test_a_frame_is_analysed_without_waiting_for_the_next_one(
    settings: Settings,
) -> None:
    """A frame goes on to decode and analysis once its last RTP packet (the marked one) is in:
    with the camera stalled after its 30th frame, that frame is still received and analysed.
    (aiortc's own jitter buffer holds each frame until the next one's first packet arrives, so
    there the 30th would wait for the camera: tests/live/test_jitter.py.)"""
    # every frame analysed (the camera's 30 fps, not the default cap) and reported
    with ThreadServer(settings.updated(metrics_hz=1e6, analysis_fps=30.0)) as server:
        client = await RtcClient.create(server.http, language="en")
        track = PausingTrack(30)
        try:
            await client.connect(track)
            await track.paused.wait()
            await client.poll(lambda i: i["frames_received"] == track.sent)
            last = await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] == 29)
            assert last["face"]
            assert track.sent == 30  # nothing more was sent meanwhile
            track.resume.set()
            await client.end()
            await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        finally:
            track.resume.set()
            await client.close()


async def test_video_times_follow_the_rtp_clock(server: ThreadServer) -> None:
    client = await RtcClient.create(server.http)
    captured: list[tuple[tuple[int, int, int], float, float]] = []
    try:
        await client.connect(FaceThenEmptyTrack())
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        session = server.manager.sessions[client.id]
        original = session._take_frame  # after the decode backlog, which carries `t` through

        def spy(image: Any, t: float, arrived_at: float, *args: Any, **kw: Any) -> None:
            captured.append((image.shape, t, arrived_at))
            original(image, t, arrived_at, *args, **kw)

        session._take_frame = spy  # type: ignore[method-assign]
        await client.poll(lambda i: len(captured) >= 60)
    finally:
        await client.close()
    assert all(shape == (480, 640, 3) for shape, _, _ in captured)
    steps = [b[1] - a[1] for a, b in itertools.pairwise(captured)]
    # The sender's 30 fps spacing, exactly, whatever the network did to the arrivals; a frame
    # lost on the way (aiortc's jitter buffer drops late ones under load) leaves a whole gap.
    ticks = [step * 30 for step in steps]
    assert all(round(k) >= 1 and abs(k - round(k)) < 0.06 for k in ticks), steps
    assert sum(1 for k in ticks if round(k) == 1) >= 0.9 * len(ticks), steps
    lag = [arrived - t for _, t, arrived in captured]
    # ...while staying tied to the arrival clock (a loaded 2-core box delays some by ~0.6 s).
    assert max(lag) - min(lag) < 2.0


async def test_client_leaving_ends_the_session_after_the_grace_period(
    server: ThreadServer,
) -> None:
    client = await RtcClient.create(server.http)
    await client.connect(FaceThenEmptyTrack(), ToneWithSilencesTrack())
    await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
    await client.poll(lambda i: i["frames_received"] > 10)
    await client.close()  # no `end`: the browser tab went away
    info = await client.poll(lambda i: i["state"] == "completed", timeout=30)
    assert info["frames_received"] > 10
    events = (await client.get("/events"))["events"]
    finalizing = [e for e in events if e["type"] == "state" and e["state"] == "finalizing"]
    assert finalizing and finalizing[0]["reason"] == "disconnected"
    assert client.id not in server.app.state.rtc_peers.peers


async def test_a_new_offer_replaces_the_peer_and_resumes_the_session(
    server: ThreadServer,
) -> None:
    first = await RtcClient.create(server.http)
    await first.connect(FaceThenEmptyTrack())
    await first.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
    await first.poll(lambda i: i["frames_received"] > 10)
    # The same session from a new peer (a page reload): the old peer is closed, no new `live`.
    second = RtcClient(
        server.http, {"session_id": first.id, "token": first.token, "offer_url": first.offer_url}
    )
    try:
        await second.connect(FaceThenEmptyTrack())
        async with asyncio.timeout(10):
            await first.channel_closed.wait()
        before = (await second.get())["frames_received"]
        await second.poll(lambda i: i["frames_received"] > before + 15)
        assert (await second.get())["state"] == "live"
        await second.end()
        await second.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        states = [
            e["state"] for e in (await second.get("/events"))["events"] if e["type"] == "state"
        ]
        assert states.count("live") == 1
    finally:
        await first.close()
        await second.close()


def _probe(*args: str, env: dict[str, str] | None = None, netns: str | None = None) -> Any:
    command = [sys.executable, "-m", "tests.support.rtc_probe", *args]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_connect_stream_disconnect_cycles_leak_nothing() -> None:
    """20 connect/stream/disconnect cycles (alternately the client leaves first and the server
    ends the session under a connected client) after 10 warm-up ones, in a fresh process that
    holds the server and the client peers. Tolerance: +1 thread outside the bounded thread
    pools (aiortc's per-track decoder threads must all be gone), +4 file descriptors, +30 MiB
    RSS, and no peer, connection, track or session object left alive.

    The embedded recogniser's model (~550 MiB, once per process) is loaded before the warm-up,
    and the warm-up covers the heap settling to its working size (the pooled analyser's
    buffers, codec and SQLite caches); from then on RSS is flat: measured 910-920 / 933-940 MiB
    after every session for 30 sessions, the two values alternating with the way a session
    ends, hence medians of 6 samples at each end (tests/support/rtc_probe.py). When the model
    loaded only during the measured cycles (whether a session of about a second sends the
    recogniser a stretch depends on timing), RSS jumped by it and two full runs failed here.
    Before the fixes RSS grew
    ~27 MiB per session for good and threads 25 -> 95: MediaPipe graphs built and freed per
    session, recorder encoders and aiortc peers freed only by the cyclic GC (BENCHMARKS.md,
    section Memory).

    No MALLOC_ARENA_MAX here: the app limits arenas itself at start-up (app/memory.py)."""
    result = _probe("cycles", "20", "10")
    before, after = result["before"], result["after"]
    assert result["states"] == ["completed"] * 20
    assert result["sessions_left"] == 0 and result["peers_left"] == 0
    assert result["alive"] == dict.fromkeys(result["alive"], 0), result["alive"]
    assert after["threads_outside_pools"] <= before["threads_outside_pools"] + 1, (before, after)
    assert after["fds"] <= before["fds"] + 4, (before, after)
    assert after["rss_mib"] <= before["rss_mib"] + 30, (before, after)


def _netns_available(name: str) -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True)
    return made.returncode == 0


def test_a_loopback_only_host_still_connects() -> None:
    """Server and client peer in a network namespace whose only interface is `lo`: aioice
    finds no host address there, and the loopback fallback must give ICE a 127.0.0.1 pair."""
    name = f"coach-rtc-{os.getpid()}"
    if not _netns_available(name):
        pytest.skip("needs root and `ip netns` to build a loopback-only network")
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        links = subprocess.run(
            ["ip", "netns", "exec", name, "ip", "-o", "link", "show", "up"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
        result = _probe("smoke", netns=name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    assert result["frames"] >= 10 and result["live_seq"] >= 1
    assert result["candidates"] and all(" 127.0.0.1 " in c for c in result["candidates"])
