"""The WebRTC transport's peer: one aiortc `RTCPeerConnection` per session.

Camera frames and microphone audio come in on the peer's tracks and enter the session like
WebSocket media does (`submit_video_frame` / `submit_audio`); the session's events go back out
as JSON text on the data channel `events` that the client creates before its offer.

Every track has a reader task that pulls `recv()` without pause (a picture's conversion to BGR
waits in the session's decode backlog, not here), so aiortc's track queue never grows: frames
that arrive while the session no longer takes media are read and dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import aioice.ice
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from app.config import Settings
from app.events import WireEvent, encode
from app.frames import AudioChunk
from app.live import jitter, rtc_vp9
from app.live.bus import EventBus, Subscription
from app.live.rtc_vp9 import RtpVp9Frame
from app.live.session import LiveSession

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "events"
AUDIO_RATE = 16_000
AUDIO_CHUNK_SAMPLES = AUDIO_RATE // 10  # hand audio on in 100 ms chunks, not 20 ms packets
RTP_WRAP = 1 << 32
# A jump this large between the RTP clock and the arrival clock is a restarted sender, not
# jitter: the RTP-to-media-time mapping is taken afresh.
RTP_RESYNC_S = 5.0
# Above this many bytes waiting in the data channel the client is not reading: cut it off
# rather than buffer without bound (the WebSocket's slow-consumer rule).
CHANNEL_HIGH_WATER_BYTES = 1 << 20
CLOSE_TIMEOUT_S = 5.0
KEYFRAME_REQUEST_GAP_S = 0.3

CloseReason = Literal[
    "connection_failed",
    "connection_closed",
    "channel_closed",
    "slow_consumer",
    "session_ended",
    "replaced",
    "shutdown",
    "setup_failed",
]


# --- ICE on a loopback-only host ----------------------------------------------------------
_aioice_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_or_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = _aioice_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if addresses:
        return addresses
    # aioice never offers 127.0.0.1; on a host whose only interface is `lo` (a container
    # without a network, a network namespace) that leaves no candidate at all and ICE fails.
    # Loopback is then the one address a local peer can reach us on.
    if use_ipv4:
        return ["127.0.0.1"]
    return ["::1"] if use_ipv6 else []


def install_loopback_fallback() -> None:
    """Make aioice gather a 127.0.0.1 host candidate when the host has no other address.

    aioice looks its host addresses up through this one module-level function at gathering
    time, so wrapping it is the narrowest hook; hosts with a real interface are unaffected.
    Idempotent.
    """
    aioice.ice.get_host_addresses = _host_addresses_or_loopback  # type: ignore[assignment]


# --- clocks -------------------------------------------------------------------------------
def _media_ssrc(receiver: Any) -> int | None:
    """The SSRC a keyframe request names: the source whose packets came last, leaving out
    retransmission (RTX) streams and sources gone quiet (aiortc lists every SSRC it saw, RTX
    ones too, in the order first seen)."""
    rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    return max(sources, key=lambda s: s.timestamp).source if sources else None


class RtpClock:
    """Maps a track's RTP timestamps (32-bit, random start, wrapping) to session media time.

    The first frame maps to the media time at which it arrived; later frames keep the spacing
    the sender gave them, so network jitter does not move them.
    """

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._unwrapped = 0
        self._offset_s: float | None = None

    def media_time(self, pts: int, time_base: Fraction, arrival_media_t: float) -> float:
        if self._last_raw is not None:
            step = (pts - self._last_raw) % RTP_WRAP
            if step >= RTP_WRAP // 2:  # a little backwards (reordering), not a wrap
                step -= RTP_WRAP
            self._unwrapped += step
        else:
            self._unwrapped = pts
        self._last_raw = pts
        rtp_s = float(self._unwrapped * time_base)
        if self._offset_s is None or abs(rtp_s + self._offset_s - arrival_media_t) > RTP_RESYNC_S:
            self._offset_s = arrival_media_t - rtp_s
        return max(0.0, rtp_s + self._offset_s)


# --- the peer -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IceConfig:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> IceConfig:
        return cls(
            tuple(settings.transport.ice_servers),
            settings.transport.ice_username,
            settings.transport.ice_credential,
        )

    def rtc_configuration(self) -> RTCConfiguration:
        # An explicit empty list: aiortc falls back to Google's STUN server on None, which
        # a LAN or offline host cannot reach and would wait seconds for while gathering.
        servers = [
            RTCIceServer(urls=url, username=self.username, credential=self.credential)
            if url.startswith(("turn:", "turns:"))
            else RTCIceServer(urls=url)
            for url in self.urls
        ]
        return RTCConfiguration(iceServers=servers)


class RtcPeer:
    """One session's peer connection and the tasks that move its media and events."""

    def __init__(
        self, session: LiveSession, pc: RTCPeerConnection, subscription: Subscription
    ) -> None:
        self.session = session
        self.pc = pc
        self.subscription = subscription
        self.channel: RTCDataChannel | None = None
        # Events emitted before the client's channel arrives (the `live` state among them);
        # a client that never opens one loses only the oldest.
        self.backlog: deque[WireEvent] = deque(maxlen=subscription.queue.maxsize or 256)
        self.closed = asyncio.Event()
        self.close_reason: CloseReason | None = None
        self.attached = False
        self.tracks: list[str] = []
        self.video_frames = 0
        self.audio_frames = 0
        self.events_sent = 0
        self.keyframes_requested = 0
        self._keyframe_wanted: Callable[[], None] | None = None
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    @property
    def session_id(self) -> str:
        return self.session.id

    def spawn(self, name: str, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.session_id}:rtc-{name}")
        self._tasks[name] = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "rtc task %s failed",
                task.get_name(),
                exc_info=task.exception(),
                extra={"session_id": self.session_id},
            )

    async def cancel_tasks(self, timeout: float) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks.values() if t is not current and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.warning("rtc task %s did not stop in time", task.get_name())
        self._tasks.clear()

    # --- media in ------------------------------------------------------------------------
    def want_keyframes_from(self, track: MediaStreamTrack) -> None:
        """The session asks for a keyframe when its VP9 lost a reference (a PLI to the peer,
        at most one per `KEYFRAME_REQUEST_GAP_S`: a keyframe takes a round trip to come)."""
        receiver = next((r for r in self.pc.getReceivers() if r.track is track), None)
        send_pli = getattr(receiver, "_send_rtcp_pli", None)
        if receiver is None or send_pli is None:
            return
        last = -KEYFRAME_REQUEST_GAP_S

        def keyframe_wanted() -> None:
            nonlocal last
            now = time.monotonic()
            ssrc = _media_ssrc(receiver)
            if now - last < KEYFRAME_REQUEST_GAP_S or ssrc is None or self.close_reason:
                return
            last = now
            self.keyframes_requested += 1
            self.spawn("pli", send_pli(ssrc))

        self.session.keyframe_wanted = keyframe_wanted
        self._keyframe_wanted = keyframe_wanted

    def release_session(self) -> None:
        """The session no longer reaches this (closed) peer: a reconnect's peer asks instead."""
        if self.session.keyframe_wanted is self._keyframe_wanted:
            self.session.keyframe_wanted = None

    async def read_video(self, track: MediaStreamTrack) -> None:
        session = self.session
        clock = RtpClock()
        self.want_keyframes_from(track)
        first = True
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            arrived_at = time.monotonic()
            self.video_frames += 1
            if isinstance(frame, RtpVp9Frame):  # VP9 negotiated: the peer's frame as it came
                if first:  # a new stream (a reconnect's): nothing before it is its reference
                    session.vp9_stream_starts()
                    first = False
                if session.accepting_media:
                    t = clock.media_time(frame.pts, frame.time_base, session.media_time(arrived_at))
                    session.submit_vp9(
                        frame.data, arrived_at, t=t, rate_limited=False, after_loss=frame.after_loss
                    )
                continue
            if not isinstance(frame, av.VideoFrame) or frame.pts is None or not frame.time_base:
                continue
            if not session.accepting_media:
                continue
            t = clock.media_time(frame.pts, frame.time_base, session.media_time(arrived_at))
            # bgr24 conversion (~3 ms a 720p frame) waits in the session's decode backlog, so
            # this reader is never behind the track, however far behind the decodes are.
            session.submit_video_frame(frame, t, arrived_at)

    async def read_audio(self, track: MediaStreamTrack) -> None:
        session = self.session
        clock = RtpClock()
        # Resampled once, here: every consumer (recorder, voice analysis) takes 16 kHz mono.
        resampler = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        pending: list[np.ndarray] = []
        pending_samples = 0
        pending_t: float | None = None
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
            arrived_at = time.monotonic()
            self.audio_frames += 1
            if not isinstance(frame, av.AudioFrame) or frame.pts is None or not frame.time_base:
                continue
            if not session.accepting_media:
                continue
            t_in = clock.media_time(frame.pts, frame.time_base, session.media_time(arrived_at))
            for out in resampler.resample(frame):
                samples = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                if pending_t is None:
                    pending_t = t_in
                pending.append(samples)
                pending_samples += len(samples)
            if pending_samples >= AUDIO_CHUNK_SAMPLES and pending_t is not None:
                self._submit_audio(np.concatenate(pending), pending_t)
                pending, pending_samples, pending_t = [], 0, None
        if pending and pending_t is not None and session.accepting_media:
            self._submit_audio(np.concatenate(pending), pending_t)

    def _submit_audio(self, samples: np.ndarray, t_rtp: float) -> None:
        duration = len(samples) / AUDIO_RATE
        # Contiguous with the previous chunk unless the RTP time moved away from it.
        t = self.session.audio_clock(t_rtp, duration)
        self.session.submit_audio(AudioChunk(t=t, samples=samples, sample_rate=AUDIO_RATE))

    # --- events out ----------------------------------------------------------------------
    async def send_events(self) -> CloseReason:
        """Forward the session's events to the data channel until the session is over."""
        while True:
            event = await self.subscription.get()
            if event is None:
                return "slow_consumer" if self.subscription.overflowed else "session_ended"
            if self.channel is None:
                self.backlog.append(event)
                continue
            problem = self._send(event)
            if problem is not None:
                return problem

    def open_channel(self, channel: RTCDataChannel) -> CloseReason | None:
        """The client's `events` channel arrived: deliver what waited for it, then go live."""
        self.channel = channel
        while self.backlog:
            problem = self._send(self.backlog.popleft())
            if problem is not None:
                return problem
        return None

    def _send(self, event: WireEvent) -> CloseReason | None:
        channel = self.channel
        assert channel is not None
        if channel.readyState != "open":
            return "channel_closed"
        if channel.bufferedAmount > CHANNEL_HIGH_WATER_BYTES:
            return "slow_consumer"
        channel.send(encode(event))
        self.events_sent += 1
        return None


class RtcPeers:
    """The registry of this process's peers, owned by the app state: answers offers, closes
    peers when their connection or session ends, and closes all of them on shutdown."""

    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self.settings = settings
        self.bus = bus
        self.ice = IceConfig.from_settings(settings)
        self.peers: dict[str, RtcPeer] = {}
        self._closing: set[asyncio.Task[None]] = set()
        install_loopback_fallback()
        jitter.install(settings.transport.rtc_frame_on_marker)
        rtc_vp9.install(settings.transport.rtc_vp9)

    async def answer(
        self, session: LiveSession, offer: RTCSessionDescription
    ) -> RTCSessionDescription:
        """Set up the session's peer for `offer` and return the answer, ICE gathering done.

        A new offer for a session that already has a peer (a reconnect) replaces it.
        """
        if "\nm=" not in offer.sdp.replace("\r\n", "\n"):
            raise ValueError("the offer has no media section (no track, no data channel)")
        old = self.peers.pop(session.id, None)
        if old is not None:
            await self._close(old, "replaced")
        pc = RTCPeerConnection(self.ice.rtc_configuration())
        # Subscribed before the session goes live, so the `live` state event is delivered.
        subscription = self.bus.subscribe(session.id, self.settings.limits.ws_send_queue)
        peer = RtcPeer(session, pc, subscription)
        self._wire(peer)
        try:
            await pc.setRemoteDescription(offer)
            answer = await pc.createAnswer()
            # aiortc gathers every candidate inside setLocalDescription: the answer it leaves
            # in localDescription is complete (no trickle ICE).
            await pc.setLocalDescription(answer)
        except BaseException:
            subscription.close()
            await peer.cancel_tasks(CLOSE_TIMEOUT_S)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT_S)
            raise
        self.peers[session.id] = peer
        peer.spawn("events", self._events_then_close(peer))
        peer.attached = True
        await session.attach()
        local: RTCSessionDescription = pc.localDescription
        log.info("webrtc peer answered", extra={"session_id": session.id, "tracks": peer.tracks})
        return local

    def _wire(self, peer: RtcPeer) -> None:
        pc = peer.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            peer.tracks.append(track.kind)
            if track.kind == "video" and "video" not in peer._tasks:
                peer.spawn("video", peer.read_video(track))
            elif track.kind == "audio" and "audio" not in peer._tasks:
                peer.spawn("audio", peer.read_audio(track))

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != EVENTS_CHANNEL or peer.channel is not None:
                return

            @channel.on("close")
            def on_close() -> None:
                self.request_close(peer, "channel_closed")

            problem = peer.open_channel(channel)
            if problem is not None:
                self.request_close(peer, problem)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "failed":
                self.request_close(peer, "connection_failed")
            elif pc.connectionState == "closed":
                self.request_close(peer, "connection_closed")

    async def _events_then_close(self, peer: RtcPeer) -> None:
        self.request_close(peer, await peer.send_events())

    def request_close(self, peer: RtcPeer, reason: CloseReason) -> None:
        """Close `peer` in its own task (callbacks and the peer's own tasks call this)."""
        if peer.close_reason is not None:
            return
        task = asyncio.get_running_loop().create_task(
            self._close(peer, reason), name=f"{peer.session_id}:rtc-close"
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, peer: RtcPeer, reason: CloseReason) -> None:
        if peer.close_reason is not None:
            await peer.closed.wait()
            return
        peer.close_reason = reason
        log.info("closing webrtc peer: %s", reason, extra={"session_id": peer.session_id})
        if self.peers.get(peer.session_id) is peer:
            del self.peers[peer.session_id]
        if peer.attached:
            peer.attached = False
            # The session's reconnect grace period decides whether this ends it.
            peer.session.detach()
        peer.subscription.close()
        peer.release_session()
        await peer.cancel_tasks(CLOSE_TIMEOUT_S)
        try:
            await asyncio.wait_for(peer.pc.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("pc.close() timed out", extra={"session_id": peer.session_id})
        except Exception:
            log.exception("pc.close() failed", extra={"session_id": peer.session_id})
        peer.closed.set()

    async def close_session(self, session_id: str, reason: CloseReason = "session_ended") -> None:
        peer = self.peers.get(session_id)
        if peer is not None:
            await self._close(peer, reason)

    async def close_all(self, timeout: float = 10.0) -> None:
        peers = list(self.peers.values())
        tasks = [asyncio.ensure_future(self._close(p, "shutdown")) for p in peers] + list(
            self._closing
        )
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
