"""One live rehearsal: the per-session frame loop.

Media enters through `submit_frame_bytes` (WebSocket), `submit_video_frame` (WebRTC) and
`submit_audio`; every received frame goes to the recorder, only the newest goes to analysis
through a one-slot mailbox, and everything the session says leaves through `emit` as a
numbered event.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import av
import numpy as np

from app.coaching.chain import StageChain
from app.coaching.messages import error_message, time_cue_message, transition_message
from app.config import Settings
from app.events import (
    CueEvent,
    ErrorEvent,
    Event,
    Gaze,
    Gesture,
    MetricsEvent,
    Posture,
    StateEvent,
    VoiceEvent,
    WireEvent,
    to_wire,
)
from app.frames import (
    AudioAnalysis,
    AudioChunk,
    CueTransition,
    EncodedVideo,
    FrameAnalysis,
    FrameObserver,
    Language,
    SessionState,
    VideoFrame,
)
from app.live.mailbox import LatestMailbox, RateCap
from app.live.services import (
    Hooks,
    LiveAnalyzer,
    Recorder,
    Services,
    SessionCritic,
    SessionTranscriber,
    VoiceStage,
)
from app.media.decode import (
    FrameRejected,
    check_frame_bytes,
    check_frame_size,
    decode_frame,
    video_frame_to_bgr,
)
from app.media.vp9 import Vp9Chunk, Vp9Decoder, read_vp9_header

if TYPE_CHECKING:
    from app.coaching.keyframes import KeyframePicker

log = logging.getLogger(__name__)

# Audio chunks this far behind their arrival that do not catch up, by at least AUDIO_CATCH_UP
# seconds a second over AUDIO_CATCH_UP_WINDOW_S of arrivals, mean the client paused sending;
# this far ahead, it sent more audio than time passed (`LiveSession.audio_clock`).
AUDIO_LAG_S = 0.3
AUDIO_CATCH_UP = 0.1
AUDIO_CATCH_UP_WINDOW_S = 0.5
AUDIO_LEAD_S = 5.0


class AudioClock:
    """Where a session's audio chunks go on its media clock."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._next_t: float | None = None  # where the last chunk ended
        # (arrival, lag) of the first chunk of a stretch behind by more than AUDIO_LAG_S
        self._late: tuple[float, float] | None = None

    def place(self, t_arrival: float, duration: float) -> float:
        """Media time of an audio chunk (`t_arrival`: where its arrival puts its start).

        Contiguous with the previous chunk, so network jitter does not tear the track, and
        never over audio already laid down (the recorder would drop the overlap): chunks the
        network held up and then delivered at once fill the time they were held up for, each
        after the last, however fast the backlog drains. Only a client that sent nothing for a
        while moves the track on: chunks more than `AUDIO_LAG_S` behind their arrival whose
        lag has not shrunk by `AUDIO_CATCH_UP` s a second over `AUDIO_CATCH_UP_WINDOW_S` of
        arrivals (arriving at the pace they play) start at their arrival, with silence
        between; the chunks of that window stay where they were laid. A client sending more
        audio than time passes gets ahead of the clock; past `AUDIO_LEAD_S` it is put back
        to its arrival (the overlap is dropped: bad input)."""
        t = self._next_t
        if t is None:
            t = max(0.0, t_arrival)
        else:
            lag, arrived = t_arrival - t, t_arrival + duration
            if lag <= AUDIO_LAG_S:
                self._late = None
            elif self._late is None:
                self._late = (arrived, lag)  # behind: a backlog draining, or a pause?
            else:
                since, first_lag = self._late
                window = arrived - since
                if window >= AUDIO_CATCH_UP_WINDOW_S and first_lag - lag < AUDIO_CATCH_UP * window:
                    t, self._late = max(0.0, t_arrival), None  # a pause: skip to now
            if -lag > AUDIO_LEAD_S:
                log.warning(
                    "audio %.1f s ahead of its arrival: put back",
                    -lag,
                    extra={"session_id": self.session_id},
                )
                t = max(0.0, t_arrival)
        self._next_t = t + duration
        return t


# A received frame waiting for its decode, or the refusal of one (kept for its error event).
Undecoded = bytes | FrameRejected | av.VideoFrame | Vp9Chunk
# What a session's video arrives as: pictures (JPEG/PNG/WebP over the WebSocket, WebRTC's
# decoded frames), recorded by our encoder; or the client's own VP9, recorded as it came.
VideoKind = Literal["picture", "vp9"]
_KIND_NAMES: dict[VideoKind, str] = {
    "picture": "pictures (JPEG, PNG, WebP or WebRTC)",
    "vp9": "the client's VP9 (VP91 messages)",
}


class LiveSession:
    def __init__(
        self,
        *,
        session_id: str,
        title: str,
        language: Language,
        critique_interval_s: float,
        services: Services,
        state: SessionState = "created",
        seq: int = 0,
        target_duration_s: float | None = None,
    ) -> None:
        self.id = session_id
        self.target_duration_s = target_duration_s  # a take of a pitch: the `time` cue
        self._time_on: CueEvent | None = None  # the `time` cue while on
        self._time_stop = asyncio.Event()  # set by the end: the `time` cue's task stops
        self.title = title
        self.language: Language = language
        self.critique_interval_s = critique_interval_s
        self.services = services
        self.settings = services.settings
        self.state: SessionState = state
        self.reason: str | None = None
        self.started_mono: float | None = None
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.duration_s: float | None = None

        self.frames_received = 0
        self.frames_analyzed = 0
        self.frames_rate_limited = 0
        self.frames_behind = 0  # dropped before their decode (the backlog)
        # droppable VP9 frames (an L1T2 stream's upper layer) left undecoded: not wanted
        self.frames_undecoded = 0
        self._frames_in = 0  # frames numbered so far (`VideoFrame.index`)
        self.bad_frames = 0
        self._seq = seq
        self._emit_lock = asyncio.Lock()

        self.mailbox: LatestMailbox[VideoFrame] = LatestMailbox()
        # Frames received and not yet decoded: (JPEG or WebRTC picture, media time, arrival
        # time, index)
        self._undecoded: deque[tuple[Undecoded, float, float, int]] = deque(
            maxlen=max(1, self.settings.limits.decode_backlog)
        )
        self._undecoded_ready = asyncio.Event()
        self._analysis_waiting = False  # the analysis loop waits for a picture
        self._rate_cap = RateCap(self.settings.analysis.fps)  # the analysis loop's
        self._holding_droppable = False  # the decode loop holds one until the analysis frees
        self._picture_at = 0.0  # monotonic time of the last frame decoded to a picture
        self._video_kind: VideoKind | None = None  # fixed by the first frame accepted
        self._vp9_keyframe_seen = False
        self._vp9_key_t = 0.0  # media time of the last VP9 keyframe taken
        self._vp9_wait_key = False  # a VP9 frame was lost before the recorder: wait for a key
        self._vp9_decoder: Vp9Decoder | None = None  # made by the decode loop
        self._vp9_decode_gap = False  # one was lost before its decode: wait for a key there
        self._vp9_layered = False  # a droppable VP9 frame came: the others are `preferred`
        # Asks the client for a keyframe (WebRTC: a PLI); set by a transport whose client does
        # not send them on its own schedule. Called whenever VP9 frames wait for one, and when
        # a recording segment's time passed without one.
        self.keyframe_wanted: Callable[[], None] | None = None
        hooks = services.hooks
        # conditions -> cues -> observers, the same chain an upload's scan drives
        self.chain = StageChain(self.settings, hooks.frame_conditions, hooks.make_condition_state)
        self.observers: list[FrameObserver] = self.chain.observers
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._transports = 0
        self._connected = asyncio.Event()  # set while a transport is attached
        # Media time at which the last transport went: where a session that no transport
        # rejoins within the grace ends (`end_time`), as if `end` had been sent then.
        self.detached_t: float | None = None
        self._last_metrics_mono = 0.0
        self._rate_window: tuple[float, int] = (0.0, 0)
        self._analyzer: LiveAnalyzer | None = None  # built by `prewarm` in the executor
        self._analyzer_ready: asyncio.Future[LiveAnalyzer] | None = None
        self._pose_task: asyncio.Future[None] | None = None  # this session's Pose lane
        self._face_call: asyncio.Future[Any] | None = None  # its analysis call in flight
        self._voice: VoiceStage | None = None
        self._audio_queue: asyncio.Queue[AudioChunk] = asyncio.Queue(maxsize=64)
        self.audio_dropped = 0
        self.audio_received = 0  # chunks taken while live (none: no speech was measured)
        self._audio_clock = AudioClock(self.id)
        self.recorder: Recorder | None = None
        self.transcriber: SessionTranscriber | None = None
        self.critic: SessionCritic | None = None
        self.keyframes: KeyframePicker | None = None  # what the report's key moments come from
        self.finalized = asyncio.Event()
        # Held while the first media starts the session (`SessionManager.go_live`).
        self.starting = asyncio.Lock()

    # --- time and identity ---------------------------------------------------------------
    def media_time(self, mono: float | None = None) -> float:
        if self.started_mono is None:
            return 0.0
        return max(0.0, (time.monotonic() if mono is None else mono) - self.started_mono)

    def audio_clock(self, t_arrival: float, duration: float) -> float:
        """Media time of an audio chunk (`AudioClock.place`)."""
        return self._audio_clock.place(t_arrival, duration)

    @property
    def frames_dropped(self) -> int:
        return (
            self.mailbox.dropped
            + self.frames_rate_limited
            + self.frames_behind
            + self.frames_undecoded
        )

    @property
    def video_kind(self) -> VideoKind | None:
        """Pictures (JPEG, or decoded WebRTC frames) or the client's own VP9; None before the
        first frame."""
        return self._video_kind

    @property
    def accepting_media(self) -> bool:
        return self.state in ("created", "live")

    # --- events --------------------------------------------------------------------------
    async def emit(self, event: Event) -> WireEvent:
        """Number, publish and persist one event. The only way anything leaves the session."""
        async with self._emit_lock:
            self._seq += 1
            wire = to_wire(event, self.id, self._seq)
            wire["t"] = round(wire["t"], 3)
            self.services.bus.publish(self.id, wire)
            await self.services.writer.put(wire)
        if wire["type"] == "cue" and self.critic is not None:
            self.critic.observe_cue(wire)
        return wire

    async def emit_error(self, code: str, reason: str | None = None) -> None:
        message = error_message(code, self.language)
        error = ErrorEvent(t=self.media_time(), code=code, message=message, reason=reason or None)
        await self.emit(error)

    # --- lifecycle -----------------------------------------------------------------------
    def prewarm(self) -> None:
        """Build the analyser (model load and first inference take 1-2 s) while the client is
        still connecting, so the first frames are analysed at full speed."""
        if self._analyzer_ready is None:
            loop = asyncio.get_running_loop()
            self._analyzer_ready = loop.run_in_executor(
                self.services.analysis_executor, _build_analyzer, self.services.hooks, self.settings
            )

    @property
    def prewarmed(self) -> bool:
        return self._analyzer_ready is not None or self._analyzer is not None

    async def attach(self) -> None:
        """A transport (WebSocket or WebRTC) connected. It does not start the session: the
        first media does (`go_live`), so a listener never makes a session live."""
        self._transports += 1
        self._connected.set()
        self.detached_t = None
        self._cancel_task("grace")

    def detach(self) -> None:
        self._transports = max(0, self._transports - 1)
        if self._transports == 0:
            self._connected.clear()
            if self.state == "live":
                self.detached_t = self.media_time()
                self._spawn("grace", self._grace_then_end())

    def end_time(self) -> float:
        """The session's length on its own clock, were it ended now: with no transport
        attached (the reconnect grace, whatever ends it then), the moment the last one went,
        since no media came after; so a take abandoned by a closed tab is not 30 s longer
        than what was rehearsed."""
        if self.detached_t is not None:
            return min(self.detached_t, self.media_time())
        return self.media_time()

    def length_s(self) -> float | None:
        """How long the session has run (its `duration_s` once ending: the end's, not the
        clock's, while it finalises); None before it started."""
        if self.duration_s is not None:
            return self.duration_s
        return round(self.media_time(), 3) if self.started_mono else None

    async def go_live(self) -> bool:
        """Start the session with its first media: recorder, critic, voice, transcriber and
        the analysis loop, and the `live` state. The row moves `created -> live` in one
        conditional statement, so a session that expired meanwhile (`never_started`, maybe on
        another replica) stays ended: False then, and nothing was started. The caller (the
        manager) holds `starting` and has checked the state."""
        started_at = datetime.now(UTC)
        moved = await self.services.repo.update_session_in_state(
            self.id,
            "created",
            state="live",
            started_at=started_at,
            owner=self.services.replica_id,
        )
        if not moved:
            return False
        self.started_mono = time.monotonic()
        self.started_at = started_at
        self.prewarm()
        hooks = self.services.hooks
        self.recorder = hooks.make_recorder(self) if hooks.make_recorder else None
        if self.recorder is not None:
            self.recorder.start()
        self.critic = hooks.make_critic(self) if hooks.make_critic else None
        if self.critic is not None:
            self.observers.append(self.critic)
            self.critic.start()
        if hooks.make_keyframe_picker is not None:
            self.keyframes = hooks.make_keyframe_picker(self)
            self.observers.append(self.keyframes)
        for make in hooks.frame_observers:
            self.observers.append(make(self))
        self._voice = hooks.make_voice(self) if hooks.make_voice else None
        self.transcriber = hooks.make_transcriber(self) if hooks.make_transcriber else None
        if self.transcriber is not None:
            self.transcriber.start()
        if self.state == "created":  # (an `end` during the row's update already finalises)
            self.state = "live"
        await self.emit(StateEvent(t=self.media_time(), state="live"))
        self._spawn("decode", self._decode_loop())
        self._spawn("analysis", self._analysis_loop())
        self._spawn("audio", self._audio_loop())
        self._spawn("deadline", self._end_after(self.settings.limits.max_session_s, "max_duration"))
        if self.target_duration_s:
            self._spawn("time", self._time_cues(self.target_duration_s))
        if self._transports == 0:
            # Media came and went (a WebRTC offer whose peer never attached): the same grace.
            self._spawn("grace", self._grace_then_end())
        log.info("session live", extra={"session_id": self.id})
        return True

    async def _grace_then_end(self) -> None:
        await asyncio.sleep(self.settings.limits.reconnect_grace_s)
        log.info("no transport reconnected within the grace period", extra={"session_id": self.id})
        self.services.request_end(self.id, "disconnected")

    async def _time_cues(self, target_s: float) -> None:
        """The `time` cue of a take with a target length: `on` (`info`) at 80 % of it, `off`
        and `on` (`warn`) at it, each at the moment the threshold is crossed on the session's
        clock; `off` at the end (`stop_pipeline`). Stopped by `_time_stop`, never cancelled
        by the end, so an event is never half emitted. While no transport is attached (the
        reconnect grace) a threshold waits: said on a reconnect, at its moment, and never if
        the grace ends the take, which ends where the transport went (`end_time`)."""
        for at, over in ((0.8 * target_s, False), (target_s, True)):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._time_stop.wait(), max(0.0, at - self.media_time()))
            waited = await self._connected_or_stopped()
            if self._time_stop.is_set():
                return
            t = round(max(at, self.media_time()) if waited else at, 3)
            if self._time_on is not None:
                await self.emit(self._time_on.model_copy(update={"t": t, "state": "off"}))
            cue = CueEvent(
                t=t,
                cue="time",
                state="on",
                severity="warn" if over else "info",
                message=time_cue_message(over, self.language),
            )
            await self.emit(cue)
            self._time_on = cue

    async def _connected_or_stopped(self) -> bool:
        """Until a transport is attached or the `time` cue stops; whether it had to wait."""
        if self._connected.is_set() or self._time_stop.is_set():
            return False
        waits = [
            asyncio.ensure_future(self._connected.wait()),
            asyncio.ensure_future(self._time_stop.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return True

    async def _end_after(self, seconds: float, reason: str) -> None:
        await asyncio.sleep(seconds)
        self.services.request_end(self.id, reason)

    def _spawn(self, name: str, coro: Awaitable[Any]) -> None:
        self._cancel_task(name)
        task = asyncio.ensure_future(coro)
        task.set_name(f"{self.id}:{name}")
        self._tasks[name] = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "session task %s failed",
                task.get_name(),
                exc_info=task.exception(),
                extra={"session_id": self.id},
            )

    def _cancel_task(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None and not task.done():
            task.cancel()

    # --- media in ------------------------------------------------------------------------
    def _admit(self, now: float) -> bool:
        """Per-session input rate limit: frames above `max_fps_in` are dropped and counted."""
        start, count = self._rate_window
        if now - start >= 1.0:
            self._rate_window = (now, 1)
            return True
        if count >= self.settings.limits.max_fps_in:
            self.frames_rate_limited += 1
            self.services.metrics.frames_dropped.inc()
            return False
        self._rate_window = (start, count + 1)
        return True

    def submit_frame_bytes(self, data: bytes, arrived_at: float) -> None:
        """An encoded frame from the WebSocket, into the decode backlog. Never blocks: the
        socket's reader goes straight on to the next message, so a server behind on decoding
        does not leave frames waiting unseen in TCP buffers (the client's latency, not ours:
        BENCHMARKS.md, section Capacity). The decode loop drops a frame that waited longer
        than `decode_max_wait_s` when a newer one waits behind it (under overload the
        newest frames are the useful ones), so a burst (a network stall catching up, the
        frames sent while the session started) is all decoded, and at most
        `decode_backlog` frames are held (the oldest goes)."""
        if self.state != "live":
            return
        # numbered in the order the socket brought them, so `frame` in the events is the
        # frame's number among those this session received, dropped and refused ones too
        index = self._next_index()
        if not self._admit(arrived_at):
            return
        item: bytes | FrameRejected = data
        try:
            check_frame_bytes(len(data), self.settings)
            self._claim_video("picture")
        except FrameRejected as exc:  # refused unread: the backlog holds no oversized frame
            item = exc
        self._backlog(item, self.media_time(arrived_at), arrived_at, index)

    def submit_vp9(
        self,
        data: bytes,
        arrived_at: float,
        *,
        t: float | None = None,
        rate_limited: bool = True,
        after_loss: bool = False,
    ) -> None:
        """A VP9 frame the client encoded (a `VP91` message without its magic, or a WebRTC
        peer's frame: media time `t` from its RTP clock, no rate limit, `after_loss` when the
        transport dropped packets before it). It goes to the recorder as it came, and into the
        decode backlog, where it is decoded even when it is too late to analyse (the frames
        after it need it). A frame lost before the recorder (over the rate limit, refused)
        costs the frames after it until a keyframe."""
        if self.state != "live":
            return
        index = self._next_index()
        if after_loss:
            self._vp9_lost()
        if rate_limited and not self._admit(arrived_at):
            self._vp9_lost()
            return
        if t is None:
            t = self.media_time(arrived_at)
        try:
            check_frame_bytes(len(data), self.settings)
            self._claim_video("vp9")
            header = read_vp9_header(data)
            if header.width is not None and header.height is not None:
                check_frame_size(header.width, header.height, self.settings)
            if not header.keyframe and not self._vp9_keyframe_seen:
                raise FrameRejected("bad_frame", "VP9 video must start with a keyframe")
        except FrameRejected as exc:
            self._vp9_lost()
            self._backlog(exc, t, arrived_at, index)
            return
        if self._vp9_wait_key and not header.keyframe:
            self._dropped_behind()  # its reference frame is lost: undecodable until a key
            self._want_keyframe()
            return
        self._vp9_wait_key = False
        self._vp9_keyframe_seen = True
        if header.keyframe:
            self._vp9_key_t = t
        elif t - self._vp9_key_t >= self.settings.recording.recording_segment_s:
            # A WebRTC peer sends keyframes only when asked: ask once a segment, so the
            # recording gets its segments and a seek point every `recording_segment_s`.
            self._want_keyframe()
        if self.recorder is not None:
            self.recorder.push_video(
                EncodedVideo(index, t, data, header.keyframe, header.width, header.height)
            )
        self._backlog(Vp9Chunk(data, header), t, arrived_at, index)

    def vp9_stream_starts(self) -> None:
        """A new VP9 stream joins (a WebRTC track, a reconnect's among them): its first frame
        must be a keyframe, as the decoder and recording hold another stream's frames."""
        self._vp9_wait_key = True
        self._vp9_layered = False  # until this stream shows a droppable frame

    def _vp9_lost(self) -> None:
        """A VP9 frame did not reach the recorder: the next ones wait for a keyframe."""
        self._vp9_wait_key = True
        self._want_keyframe()

    def _want_keyframe(self) -> None:
        if self.keyframe_wanted is not None:
            self.keyframe_wanted()

    def _claim_video(self, kind: VideoKind) -> None:
        """A session's video is one kind throughout (the recording is one VP9 stream): the
        first frame accepted fixes it, a frame of the other kind is refused."""
        if self._video_kind is None:
            self._video_kind = kind
        elif self._video_kind != kind:
            raise FrameRejected(
                "bad_frame",
                f"this session's video is {_KIND_NAMES[self._video_kind]}: "
                f"{_KIND_NAMES[kind]} cannot join it",
            )

    def submit_video_frame(self, frame: av.VideoFrame, t: float, arrived_at: float) -> None:
        """A decoded WebRTC picture at media time `t`, into the same backlog: its conversion
        to BGR waits there, so the track's reader never waits for it and frames cannot pile up
        in aiortc's track queue ahead of `arrived_at` (seconds at overload: BENCHMARKS.md)."""
        if self.state != "live":
            return
        index = self._next_index()
        item: av.VideoFrame | FrameRejected = frame
        try:  # the WebSocket's limits: a peer's VP8 may be up to 16383 px a side
            check_frame_size(frame.width, frame.height, self.settings)
            self._claim_video("picture")
        except FrameRejected as exc:
            item = exc
        self._backlog(item, t, arrived_at, index)

    def _next_index(self) -> int:
        """The next received video frame's number (`VideoFrame.index`, `frame` in events)."""
        index = self._frames_in
        self._frames_in += 1
        return index

    def _backlog(self, item: Undecoded, t: float, arrived_at: float, index: int) -> None:
        if len(self._undecoded) == self._undecoded.maxlen:
            self._forget(self._undecoded.popleft()[0])
        self._undecoded.append((item, t, arrived_at, index))
        self._undecoded_ready.set()

    def _forget(self, item: Undecoded) -> None:
        """A backlog entry dropped before its decode: a frame received and dropped, or a
        refused one whose error is not sent (it still counts as a bad frame)."""
        if isinstance(item, FrameRejected):
            self._count_bad_frame()
        else:
            if isinstance(item, Vp9Chunk) and not item.header.droppable:
                self._vp9_decode_gap = True  # the frames after it lack their reference
                self._want_keyframe()
            self._dropped_behind()

    def _count_bad_frame(self) -> None:
        self.bad_frames += 1
        self.services.metrics.bad_frames.inc()

    async def _reject(self, refusal: FrameRejected) -> None:
        """A frame that cannot be decoded: counted, and one `error` event says why."""
        self._count_bad_frame()
        await self.emit_error(refusal.code, refusal.reason)

    def _dropped_behind(self, *, undecoded: bool = False) -> None:
        """A frame received and dropped before its decode: behind, or (`undecoded`) a
        droppable VP9 frame whose picture was not wanted."""
        if undecoded:
            self.frames_undecoded += 1
        else:
            self.frames_behind += 1
        self.frames_received += 1
        metrics = self.services.metrics
        metrics.frames_received.inc()
        metrics.frames_dropped.inc()

    def _newer_frame_waits(self) -> bool:
        return any(not isinstance(item, FrameRejected) for item, *_ in self._undecoded)

    async def _skip_to_waiting_keyframe(self) -> bool:
        """A VP9 session behind whose backlog holds a keyframe: every frame before the newest
        one is dropped undecoded (nothing from a keyframe on refers to them), so the session
        catches up at once instead of decoding, without pictures, a backlog it never leaves.
        Refused frames among them still answer their error. True when frames were skipped
        (the caller drops the one it holds as well)."""
        key = None
        for position, (item, *_rest) in enumerate(self._undecoded):
            if isinstance(item, Vp9Chunk) and item.header.keyframe:
                key = position
        if key is None:
            return False
        # taken off at once: the backlog may change while an error is sent
        skipped = [self._undecoded.popleft()[0] for _ in range(key)]
        for item in skipped:
            if isinstance(item, FrameRejected):
                await self._reject(item)
            else:
                self._dropped_behind()
        return True

    def _forget_backlog(self) -> None:
        """Frames still waiting when the decode loop is gone count as dropped (the one in the
        decoder at that moment, if any, is not counted)."""
        while self._undecoded:
            self._forget(self._undecoded.popleft()[0])

    async def _decode_loop(self) -> None:
        """Decodes the backlog off the loop, oldest first, into the pipeline; stops once the
        session no longer takes media and the backlog is empty (`stop_pipeline`)."""
        loop = asyncio.get_running_loop()
        max_wait_s = self.settings.limits.decode_max_wait_s
        while True:
            if not self._undecoded:
                if self.state != "live":
                    self._vp9_decoder = None  # its frame buffers go now
                    return
                self._undecoded_ready.clear()
                await self._undecoded_ready.wait()
                continue
            data, t, arrived_at, index = self._undecoded.popleft()
            if isinstance(data, FrameRejected):
                await self._reject(data)
                continue
            late = time.monotonic() - arrived_at > max_wait_s
            # late, and a newer frame waits: that one instead (at the end: all of them)
            behind = late and self.state == "live" and self._newer_frame_waits()
            starved = max_wait_s > 0 and time.monotonic() - self._picture_at >= max_wait_s
            droppable = isinstance(data, Vp9Chunk) and data.header.droppable
            self._vp9_layered = self._vp9_layered or droppable
            if droppable and await self._droppable_unwanted(
                arrived_at, behind=behind, starved=starved
            ):
                self._dropped_behind(undecoded=True)
                continue
            if behind and (
                not isinstance(data, Vp9Chunk) or await self._skip_to_waiting_keyframe()
            ):
                self._dropped_behind()
                continue
            # A VP9 frame behind is decoded for the frames after it; its picture is kept only
            # when this session has had none for `max_wait_s`, so a session whose backlog
            # stays long under overload is still analysed (at least 1 / max_wait_s a second)
            # rather than starved while others with short backlogs take every picture. (0:
            # no wait allowed, only the newest frame's picture, as for pictures.)
            started = time.perf_counter()
            try:
                if isinstance(data, Vp9Chunk):
                    vp9_image = await self._decode_vp9(data, picture=not behind or starved)
                    if vp9_image is None:  # decoded for the frames after it, not analysed
                        self._dropped_behind()
                        continue
                    image = vp9_image
                elif isinstance(data, av.VideoFrame):
                    image = await loop.run_in_executor(
                        self.services.decode_executor, video_frame_to_bgr, data
                    )
                else:
                    image = await loop.run_in_executor(
                        self.services.decode_executor, decode_frame, data, self.settings
                    )
            except FrameRejected as exc:
                await self._reject(exc)
                continue
            except Exception:  # one odd picture must not stop this session's video
                log.exception("a frame could not be decoded", extra={"session_id": self.id})
                await self._reject(FrameRejected("bad_frame", "the frame could not be decoded"))
                continue
            decode_ms = (time.perf_counter() - started) * 1000
            self._picture_at = time.monotonic()
            vp9 = isinstance(data, Vp9Chunk)
            # a layered stream's reference frames are decoded anyway: the cap takes them first
            preferred = vp9 and self._vp9_layered and not droppable
            # received while live: kept even when the end came during its decode
            self._take_frame(
                image, t, arrived_at, decode_ms, index, recorded=vp9, preferred=preferred
            )

    async def _droppable_unwanted(self, arrived_at: float, *, behind: bool, starved: bool) -> bool:
        """Whether a droppable VP9 frame (no later frame refers to it) goes undecoded: it is
        behind (unless the session has been without a picture too long), the analysis' rate
        cap would skip it, or the analysis is busy and would not take its picture: one under
        the cap already waits for it, or the next frame comes before the analysis is free
        (waited for here: the frame is decoded once the analysis waits for a picture first,
        the end comes, or a refused frame follows). Only error-resilient streams have such
        frames; one that mixed in frames without error resilience after a skipped one would
        have them decoded wrongly (no encoder known here does)."""
        if behind:
            return not starved
        cap = self._cap_at_cadence()  # as the analysis loop will use it
        if not cap.would_admit(arrived_at):
            return True
        waiting = self.mailbox.peek()
        if waiting is not None:
            # this one would replace it: worth its decode only when the waiting picture is
            # over the cap (this later one is not); else the analysis takes the waiting one
            return cap.would_admit(waiting.arrived_at, preferred=waiting.preferred)
        self._holding_droppable = True
        try:
            while not self._undecoded and not self._analysis_waiting and self.state == "live":
                self._undecoded_ready.clear()
                await self._undecoded_ready.wait()
        finally:
            self._holding_droppable = False
        return self._newer_frame_waits()

    def _cap_at_cadence(self) -> RateCap:
        """The analysis' rate cap, at the rate the cadence sets now (lower under load)."""
        cadence = self.services.cadence
        if cadence is not None and cadence.analysis_fps is not None:
            self._rate_cap.rate = cadence.analysis_fps
        return self._rate_cap

    async def _decode_vp9(self, chunk: Vp9Chunk, *, picture: bool) -> np.ndarray | None:
        """Decode a VP9 frame on the decode executor (in order: one at a time per session);
        its picture when `picture`. None when it shows none, or waits for a keyframe."""
        if self._vp9_decode_gap and not chunk.header.keyframe:
            self._want_keyframe()
            return None
        self._vp9_decode_gap = False
        if self._vp9_decoder is None:
            self._vp9_decoder = Vp9Decoder(self.settings)
        decode = functools.partial(self._vp9_decoder.decode, chunk.data, picture=picture)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.services.decode_executor, decode
            )
        except Exception:
            self._vp9_decode_gap = True
            self._want_keyframe()
            raise

    def submit_frame(
        self, image: np.ndarray, t: float, arrived_at: float, decode_ms: float = 0.0
    ) -> None:
        """A decoded frame (from any transport), once the session is live. Never blocks."""
        if self.state != "live":
            return
        self._take_frame(image, t, arrived_at, decode_ms)

    def _take_frame(
        self,
        image: np.ndarray,
        t: float,
        arrived_at: float,
        decode_ms: float,
        index: int | None = None,
        *,
        recorded: bool = False,
        preferred: bool = False,
    ) -> None:
        """A decoded frame into the pipeline; to the recorder unless it has it (`recorded`:
        the client's VP9, pushed on arrival)."""
        if index is None:
            index = self._next_index()
        frame = VideoFrame(
            index=index,
            t=t,
            image=image,
            arrived_at=arrived_at,
            decode_ms=decode_ms,
            preferred=preferred,
        )
        self.frames_received += 1
        metrics = self.services.metrics
        metrics.frames_received.inc()
        if self.recorder is not None and not recorded:
            self.recorder.push_video(frame)
        if self.mailbox.put(frame):
            metrics.frames_dropped.inc()

    def submit_audio(self, chunk: AudioChunk) -> None:
        if self.state != "live":
            return
        self.audio_received += 1
        if self.recorder is not None:
            self.recorder.push_audio(chunk)
        if self.transcriber is not None:
            self.transcriber.feed(chunk)
        if self._voice is None:
            return
        if self._audio_queue.full():
            # Analysis fell behind by seconds: the oldest audio is the least useful.
            self._audio_queue.get_nowait()
            self._audio_queue.task_done()
            self.audio_dropped += 1
        self._audio_queue.put_nowait(chunk)

    # --- analysis ------------------------------------------------------------------------
    async def _analysis_loop(self) -> None:
        cap = self._rate_cap
        try:
            while True:
                self._analysis_waiting = True
                if self._holding_droppable:
                    self._undecoded_ready.set()  # the held frame's picture is wanted now
                frame = await self.mailbox.get()
                self._analysis_waiting = False
                if frame is None:
                    break
                cadence = self.services.cadence
                self._cap_at_cadence()
                # over `analysis_fps`: skipped, counted
                if not cap.admit(frame.arrived_at, preferred=frame.preferred):
                    self.mailbox.dropped += 1
                    self.services.metrics.frames_dropped.inc()
                    continue
                # A frame that waited for the analyser to be built says nothing about load.
                warming_up = self._analyzer is None
                if self._analyzer is None:
                    self.prewarm()
                    assert self._analyzer_ready is not None
                    try:
                        self._analyzer = await self._analyzer_ready
                    except Exception as exc:  # no analysis, but the recording goes on
                        log.exception("building the analyser failed", extra={"session_id": self.id})
                        self._analyzer_ready = None
                        await self.emit_error("analysis_failed", f"{type(exc).__name__}: {exc}")
                        return
                started = time.perf_counter()
                pose_every = None if cadence is None else cadence.every
                try:
                    analysis = await self._analyze(self._analyzer, frame, pose_every)
                except Exception as exc:  # an analyzer bug must not end the rehearsal
                    log.exception("analysis failed", extra={"session_id": self.id})
                    await self.emit_error("analysis_failed", f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                self.services.metrics.analysis_seconds.observe(elapsed)
                self.services.metrics.frames_analyzed.inc()
                self.frames_analyzed += 1
                if cadence is not None and not warming_up:
                    now = time.monotonic()
                    self.services.metrics.pose_every.set(
                        cadence.observe((now - frame.arrived_at) * 1000, now)
                    )
                    self.services.metrics.analysis_fps.set(cadence.analysis_fps or cap.rate)
                await self._after_analysis(analysis, frame)
        finally:
            await self.release_analyzer()

    async def _analyze(
        self, analyzer: LiveAnalyzer, frame: VideoFrame, pose_every: int | None
    ) -> FrameAnalysis:
        """Face on this frame; Pose inline, or in this session's Pose lane: started on this
        frame when it is due and the lane is free, its result carried by later frames."""
        loop = asyncio.get_running_loop()
        if not self.settings.pose.lane:
            call = loop.run_in_executor(
                self.services.analysis_executor, analyzer.analyze, frame, pose_every
            )
            self._face_call = call
            # shielded: cancelling this task (the finaliser's drain timed out) must not mark
            # the call done while its thread still runs (release_analyzer waits for it)
            return await asyncio.shield(call)
        lane_free = self._pose_task is None or self._pose_task.done()
        face = loop.run_in_executor(
            self.services.analysis_executor,
            functools.partial(analyzer.analyze_face, pose_lane_free=lane_free),
            frame,
            pose_every,
        )
        self._face_call = face
        analysis, work = await asyncio.shield(face)
        if work is not None:
            task = loop.run_in_executor(self.services.pose_executor, analyzer.run_pose, work)
            task.add_done_callback(self._pose_done)
            self._pose_task = task
        return analysis

    def _pose_done(self, task: asyncio.Future[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("Pose failed", exc_info=exc, extra={"session_id": self.id})
        reason = f"{type(exc).__name__}: {exc}"
        self._spawn("pose_error", self.emit_error("analysis_failed", reason))

    async def release_analyzer(self) -> None:
        """Close the analyser (also one that was prewarmed but never used), once its Pose
        lane is idle and no face call of it runs (one in a face worker can take seconds)."""
        # Cleared only once done: if this wait is cancelled (the finaliser's drain timed out),
        # the next call waits again instead of handing the analyser back to the pool under a
        # face call or Pose run that would then write into the next session's state.
        running = [f for f in (self._face_call, self._pose_task) if f is not None]
        if running:
            await asyncio.wait(running)
        face, self._face_call, self._pose_task = self._face_call, None, None
        if face is not None and not face.cancelled():
            face.exception()  # (retrieved: its error was reported, or nobody waits)
        ready, self._analyzer_ready = self._analyzer_ready, None
        analyzer, self._analyzer = self._analyzer, None
        if analyzer is None and ready is not None:
            try:
                analyzer = await ready
            except Exception:
                log.exception("building the analyser failed", extra={"session_id": self.id})
        if analyzer is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.services.analysis_executor, analyzer.close)

    async def _after_analysis(self, analysis: FrameAnalysis, frame: VideoFrame) -> None:
        analysis.timings_ms["decode"] = frame.decode_ms
        step = self.chain.step(analysis, frame.image)
        for transition in step.transitions:
            await self._emit_cue(transition)
        now = time.monotonic()
        if now - self._last_metrics_mono >= 1.0 / self.settings.cues.metrics_hz:
            self._last_metrics_mono = now
            event = metrics_event(analysis)
            assert event.latency_ms is not None
            self.services.metrics.event_latency_seconds.observe(event.latency_ms / 1000)
            await self.emit(event)

    async def _emit_cue(self, tr: CueTransition) -> None:
        await self.emit(cue_event(tr, self.language))

    async def _audio_loop(self) -> None:
        voice = self._voice
        if voice is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            chunk = await self._audio_queue.get()
            analyses = await loop.run_in_executor(
                self.services.audio_executor, voice.process, chunk
            )
            for a in analyses:
                await self._after_audio(a)
            self._audio_queue.task_done()

    async def _after_audio(self, a: AudioAnalysis) -> None:
        hooks = self.services.hooks
        if hooks.voice_conditions is not None:
            conditions = hooks.voice_conditions(a, self.language, self.settings)
            for transition in self.chain.update(a.t + a.duration_s, conditions):
                await self._emit_cue(transition)
        if self.critic is not None:
            self.critic.observe_audio(a)
        await self.emit(voice_event(a))

    # --- the end -------------------------------------------------------------------------
    async def stop_pipeline(self, end_t: float) -> None:
        """Stop taking media and drain the analysis; called by the finaliser with the media
        time the session ends at, where the cues still on turn off."""
        self._cancel_task("grace")
        self._cancel_task("deadline")
        self._time_stop.set()
        time_cues = self._tasks.pop("time", None)
        if time_cues is not None:
            await asyncio.wait([time_cues])  # an event under way is emitted whole
        decode = self._tasks.pop("decode", None)
        if decode is not None:
            # Frames received before the end are decoded and recorded (a backlog is short).
            self._undecoded_ready.set()
            try:
                await asyncio.wait_for(decode, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                log.warning(
                    "the decode backlog did not drain in time", extra={"session_id": self.id}
                )
            except Exception:
                log.exception("the decode loop failed", extra={"session_id": self.id})
            self._forget_backlog()
        self.mailbox.close()
        analysis = self._tasks.pop("analysis", None)
        if analysis is not None:
            try:
                await asyncio.wait_for(analysis, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("analysis did not drain in time", extra={"session_id": self.id})
            except Exception:  # what was recorded and emitted still makes a report
                log.exception("the analysis loop failed", extra={"session_id": self.id})
        audio = self._tasks.pop("audio", None)
        if audio is not None:
            # Let queued audio be analysed, then stop.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._audio_queue.join(), timeout=5)
            audio.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await audio
        if self._voice is not None:
            loop = asyncio.get_running_loop()
            try:
                last = await loop.run_in_executor(self.services.audio_executor, self._voice.flush)
            except Exception:  # the last scrap of audio must not keep the rehearsal from ending
                log.exception("voice flush failed", extra={"session_id": self.id})
                last = []
            for a in last:
                await self._after_audio(a)
        for transition in self.chain.close(end_t):
            await self._emit_cue(transition)
        if self._time_on is not None:
            time_on, self._time_on = self._time_on, None
            await self.emit(time_on.model_copy(update={"t": max(end_t, time_on.t), "state": "off"}))

    async def cancel_all(self) -> None:
        for name in list(self._tasks):
            self._cancel_task(name)
        self._forget_backlog()
        if self.transcriber is not None:
            self.transcriber.stop()
        await self.release_analyzer()


def _build_analyzer(hooks: Hooks, settings: Settings) -> LiveAnalyzer:
    analyzer = hooks.make_analyzer(settings)
    try:
        analyzer.warm_up()
    except BaseException:
        analyzer.close()  # back to the pool, not leaked
        raise
    return analyzer


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def cue_event(tr: CueTransition, language: Language) -> CueEvent:
    """The `cue` event of one transition, its message in the session's language."""
    return CueEvent(
        t=tr.t,
        cue=tr.cue,
        state=tr.state,
        severity=tr.severity,
        message=transition_message(tr, language),
        direction=tr.direction,
        hidden=tr.hidden,
    )


def metrics_event(a: FrameAnalysis) -> MetricsEvent:
    """The `metrics` event of one analysed frame."""
    head_tilt = a.face.roll_deg if a.face.roll_deg is not None else a.pose.head_tilt_deg
    return MetricsEvent(
        t=a.t,
        frame=a.index,
        face=a.face.found,
        gaze=Gaze(
            on_camera=a.face.gaze_on_camera if a.face.found else None,
            direction=a.face.gaze_direction if a.face.found else None,
            yaw_deg=_r(a.face.yaw_deg, 1),
            pitch_deg=_r(a.face.pitch_deg, 1),
            calibration=a.face.gaze_calibration,
        ),
        posture=Posture(
            shoulder_tilt_deg=_r(a.pose.shoulder_tilt_deg, 1),
            head_tilt_deg=_r(head_tilt, 1),
            lean=_r(a.pose.lean, 3),
        ),
        gesture=Gesture(hands_visible=a.gesture.hands_visible, activity=_r(a.gesture.activity, 3)),
        sway=_r(a.sway, 3),
        face_size=_r(a.face.face_width_ratio, 3),
        latency_ms=round((time.monotonic() - a.arrived_at) * 1000, 1),
        analysis_ms={k: round(v, 1) for k, v in a.timings_ms.items()},
        # how much older than this frame the posture and gesture fields are (Pose's last run)
        pose_age_ms=None if a.pose_t is None else round((a.t - a.pose_t) * 1000),
    )


def voice_event(a: AudioAnalysis) -> VoiceEvent:
    return VoiceEvent(
        t=a.t,
        level_dbfs=_r(a.level_dbfs, 1),
        speaking=a.speaking,
        speech_ratio=_r(a.speech_ratio, 2),
        syllables_per_s=_r(a.syllables_per_s, 2),
        pitch_semitone_std=_r(a.pitch_semitone_std, 2),
        pause_s=_r(a.pause_s, 2),
    )
