"""The per-session recorder: VP9 + Opus in WebM, encoded while the session runs.

Every received frame is pushed (never blocking) into a bounded queue; a named worker thread
encodes it with one continuous VP9 encoder and one continuous Opus encoder and muxes the
packets into short WebM segments under `directory/segments/`. A segment is named
`seg_NNNNN.webm.part` while written and renamed when finished; inside it, WebM clusters are
closed and written through at least every `recording_cluster_ms`, so a server killed
mid-session leaves segments whose readable part reaches about half a second before the kill.
The same packets also go into one continuous file (`recording.webm.live`), so `stop()` only
flushes the encoders, closes that file and renames it to `directory/recording.webm`. Where the
continuous file had to be given up (audio joining after the first segment changes the tracks;
a write error), `stop()` remuxes the segments (no re-encode) instead, and
`recover_recording()` does the same for what a killed process left.

`WebmWriter` is the same encoders writing one file in one go, for a finished video (the upload
flow re-encodes its decoded frames with it); it needs no queue or segments.

Timestamps are the frames' own media times (`VideoFrame.t`, `AudioChunk.t`) in milliseconds,
so a variable frame rate plays back at wall-clock speed. Encoders are shared across segments
(a segment starts on a forced keyframe), so audio has no glitch at segment boundaries.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final, Literal, cast

import av
import av.error
import cv2
import numpy as np
import numpy.typing as npt
from av.audio.resampler import AudioResampler
from av.codec.context import CodecContext
from av.container import OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.frame import PictureType

from app.config import Settings
from app.frames import AudioChunk, EncodedVideo, VideoFrame
from app.media.images import fit_within, quarter_turns, upright
from app.media.webm import (
    join_segments,
    list_segments,
    probe_recording,
    segment_path,
)
from app.priority import ThreadPriority

log = logging.getLogger(__name__)

RECORDING_NAME: Final = "recording.webm"
WHOLE_NAME: Final = "recording.webm.live"  # the continuous copy being written
SEGMENTS_DIR: Final = "segments"
MS: Final = Fraction(1, 1000)  # WebM's own time base; every pts we write is in it
AUDIO_RATE: Final = 48_000  # Opus in WebM runs at 48 kHz
AUDIO_TIME_BASE: Final = Fraction(1, AUDIO_RATE)
OPUS_FRAME: Final = 960  # 20 ms
# Audio is laid down contiguously; only a gap or overlap larger than this between a chunk's
# timestamp and where the audio track has got to is corrected (with silence or by trimming),
# so arrival jitter does not chop the sound while real gaps keep audio in sync with video.
AUDIO_RESYNC_TOLERANCE_S: Final = 0.1
DEFAULT_FRAME_GAP_MS: Final = 67  # duration given to a last frame whose successor never came
UPLOAD_MAX_FPS: Final = 30.0  # an uploaded video is re-encoded at most this many frames a second
# Opus rate of an uploaded video's re-encoding (libopus's own default for mono; the live
# recorder uses `recording_audio_bitrate`).
UPLOAD_AUDIO_BITRATE: Final = 64_000

TrackKind = Literal["video", "audio"]
# Why recording stopped early, for the owner's `on_failure` callback: the disk (nearly) full,
# or any other write error.
RecordingFailure = Literal["disk_full", "recording_failed"]
DISK_CHECK_INTERVAL_S: Final = 1.0


@dataclass(frozen=True)
class RecordingResult:
    """What a recording left: a live session's (`SessionRecorder.stop()`), a recovered one's
    (`recover_recording()`) or an uploaded video's re-encoding (`WebmWriter.close()`)."""

    path: Path | None  # final recording.webm, None if nothing was recorded
    frames_encoded: int
    frames_dropped: int
    duration_s: float
    has_audio: bool
    recovered: bool = False
    audio_chunks_dropped: int = 0
    encode_cpu_s: float = 0.0  # worker-thread CPU time spent encoding and muxing (live)
    error: str | None = None  # why recording stopped early, if it did
    width: int | None = None  # recorded picture size; None when no video was written
    height: int | None = None
    encode_s: float = 0.0  # wall seconds spent encoding video (uploads)


class _Stop:
    """Queue sentinel: flush and finish."""


class BadFrameError(ValueError):
    """A pushed frame or chunk the recorder cannot use; it is dropped, recording goes on."""


_STOP: Final = _Stop()
_QueueItem = VideoFrame | EncodedVideo | AudioChunk | _Stop


def vp9_options(settings: Settings) -> dict[str, str]:
    """libvpx-vp9 options shared by the live recorder and the upload flow: realtime speed, and
    constrained quality under `vp9_bitrate` (set as the codec's bit_rate) when `vp9_crf`."""
    options = {
        "deadline": "realtime",
        "cpu-used": str(settings.recording.vp9_cpu_used),
        "row-mt": "1",
    }
    if settings.recording.vp9_crf > 0:
        options["crf"] = str(settings.recording.vp9_crf)
    return options


class Vp9Encoder:
    """The one VP9 encoder (timestamps in ms). `live`: no look-ahead, so a frame's packet comes
    out at once (libvpx otherwise holds up to 25 frames, which would both delay crash-safe
    writes and cost speed), and a keyframe at least every `vp9_max_keyframe_interval_s`.
    Otherwise (a finished video) libvpx keeps its look-ahead and keyframe spacing."""

    def __init__(self, width: int, height: int, settings: Settings, *, live: bool = True) -> None:
        self.width = width
        self.height = height
        ctx = CodecContext.create("libvpx-vp9", "w")
        ctx.width = width
        ctx.height = height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = MS
        ctx.bit_rate = settings.recording.vp9_bitrate
        options = {**vp9_options(settings), "threads": str(settings.recording.vp9_threads)}
        if live:
            # gop_size counts frames; at a variable rate, cap by the fastest rate we accept.
            ctx.gop_size = max(
                1,
                round(settings.recording.vp9_max_keyframe_interval_s * settings.limits.max_fps_in),
            )
            options |= {"lag-in-frames": "0", "auto-alt-ref": "0"}
        else:
            ctx.framerate = Fraction(UPLOAD_MAX_FPS)
        ctx.options = options
        ctx.open()
        self._ctx = ctx

    def encode(self, image: np.ndarray, pts_ms: int, *, keyframe: bool = False) -> list[Packet]:
        """A BGR uint8 picture; scaled to the encoder's size if it has another."""
        if image.shape[:2] == (self.height, self.width):
            # OpenCV's BT.601 4:2:0 conversion: the same pixels as swscale's at a third of
            # the CPU (~0.7 against ~2 ms at 640x480), on every recorded frame.
            yuv = cast("npt.NDArray[np.uint8]", cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420))
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        else:
            # One swscale pass converts to 4:2:0 and scales to the recording size (a
            # mid-session size change lands on the first frame's recorded size).
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        return self._encode(frame, pts_ms, keyframe=keyframe)

    def encode_frame(
        self, frame: av.VideoFrame, pts_ms: int, *, keyframe: bool = False
    ) -> list[Packet]:
        """A decoded frame in any pixel format: one swscale pass to the encoder's size."""
        out = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        return self._encode(out, pts_ms, keyframe=keyframe)

    def _encode(self, frame: av.VideoFrame, pts_ms: int, *, keyframe: bool) -> list[Packet]:
        frame.pts = pts_ms
        frame.time_base = MS
        if keyframe:
            frame.pict_type = PictureType.I
        return list(self._ctx.encode(frame))

    def flush(self) -> list[Packet]:
        return list(self._ctx.encode(None))


class OpusEncoder:
    """Audio in (16 kHz chunks, or decoded frames of any rate and layout), 48 kHz mono Opus
    packets out, laid on the track at their timestamps."""

    def __init__(self, settings: Settings, *, bit_rate: int | None = None) -> None:
        self.bit_rate = settings.recording.recording_audio_bitrate if bit_rate is None else bit_rate
        ctx = CodecContext.create("libopus", "w")
        ctx.sample_rate = AUDIO_RATE
        ctx.layout = "mono"
        ctx.format = "s16"
        ctx.bit_rate = self.bit_rate
        ctx.time_base = AUDIO_TIME_BASE
        ctx.options = {"compression_level": str(settings.recording.recording_audio_complexity)}
        ctx.open()
        self._ctx = ctx
        self._resampler: AudioResampler | None = None
        self._resampler_input: tuple[int, str, str] | None = None  # rate, format, layout
        self._pending = np.zeros(0, dtype=np.int16)  # resampled, not yet encoded
        self._pending_start: int | None = None  # track position (48 kHz samples) of _pending[0]

    def encode(self, chunk: AudioChunk) -> list[Packet]:
        mono = np.ascontiguousarray(chunk.samples, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(mono, format="s16", layout="mono")
        frame.sample_rate = chunk.sample_rate
        return self.encode_frame(frame, chunk.t)

    def encode_frame(self, frame: av.AudioFrame, t: float) -> list[Packet]:
        """`t`: media seconds of the frame's first sample."""
        samples = self._resample(frame)
        if samples.size == 0:
            return []
        start = round(t * AUDIO_RATE)
        if self._pending_start is None:
            self._pending_start = start
        track_end = self._pending_start + self._pending.size
        drift = start - track_end
        tolerance = round(AUDIO_RESYNC_TOLERANCE_S * AUDIO_RATE)
        if drift > tolerance:  # audio went missing: keep sync with silence
            self._pending = np.concatenate([self._pending, np.zeros(drift, dtype=np.int16)])
        elif drift < -tolerance:  # overlaps what we already laid down: drop the overlap
            samples = samples[-drift:]
        self._pending = np.concatenate([self._pending, samples])
        return self._encode_pending(final=False)

    def flush(self) -> list[Packet]:
        packets = self._encode_pending(final=True)
        packets.extend(self._ctx.encode(None))
        return packets

    def _resample(self, frame: av.AudioFrame) -> np.ndarray:
        source = (frame.sample_rate, frame.format.name, frame.layout.name)
        if self._resampler is None or source != self._resampler_input:
            # One resampler for the session (its filter state carries across chunks).
            self._resampler = AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
            self._resampler_input = source
        frame.pts = None  # our timing is `t`; the resampler keeps its own
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)

    def _encode_pending(self, *, final: bool) -> list[Packet]:
        packets: list[Packet] = []
        if self._pending_start is None:
            return packets
        offset = 0
        # libopus accepts a short last frame, so the flush needs no padding.
        while self._pending.size - offset >= OPUS_FRAME or (final and offset < self._pending.size):
            piece = self._pending[offset : offset + OPUS_FRAME]
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._pending_start + offset
            frame.time_base = AUDIO_TIME_BASE
            packets.extend(self._ctx.encode(frame))
            offset += piece.size
        self._pending = self._pending[offset:]
        self._pending_start += offset
        return packets


class _HeldVideo:
    """A video packet waits for the next frame's pts, which is its true duration."""

    def __init__(self) -> None:
        self._held: Packet | None = None
        self._gap_ms = DEFAULT_FRAME_GAP_MS

    def swap(self, packet: Packet) -> Packet | None:
        """Hold `packet`; the previous one, its duration set, is ready to mux."""
        held, self._held = self._held, packet
        if held is not None and held.pts is not None and packet.pts is not None:
            self._gap_ms = max(1, packet.pts - held.pts)
            held.duration = self._gap_ms
            return held
        return None

    def release(self, next_pts: int | None = None) -> Packet | None:
        """The held packet, lasting until `next_pts` (or as long as the last gap)."""
        held, self._held = self._held, None
        if held is not None:
            if next_pts is not None and held.pts is not None:
                self._gap_ms = max(1, next_pts - held.pts)
            held.duration = self._gap_ms
        return held


def _add_tracks(
    container: OutputContainer, video: tuple[int, int] | None, audio: OpusEncoder | None
) -> dict[TrackKind, Stream]:
    """Mux streams for the packets of a VP9 video of size `video` (from our encoder or from the
    client's) and of the Opus encoder (the packets never come from these streams)."""
    streams: dict[TrackKind, Stream] = {}
    if video is not None:
        streams["video"] = container.add_mux_stream("libvpx-vp9", width=video[0], height=video[1])
        streams["video"].time_base = MS
    if audio is not None:
        # Opened for its parameters only (the OpusHead the WebM header needs).
        track = container.add_stream("libopus", rate=AUDIO_RATE, layout="mono", format="s16")
        track.bit_rate = audio.bit_rate
        streams["audio"] = track
    return streams


class _SegmentWriter:
    """Encoders plus the segment being written. Used by the worker thread only."""

    def __init__(self, segments_dir: Path, whole_path: Path, settings: Settings) -> None:
        self._dir = segments_dir
        self._settings = settings
        # Every packet also goes into one continuous file, so stop() only has to close it;
        # the segments are what a crash leaves. Given up (and the segments joined instead)
        # if the tracks change after it was opened, e.g. audio joining late.
        self._whole_path = whole_path
        self._whole: OutputContainer | None = None
        self._whole_streams: dict[TrackKind, Stream] = {}
        self._whole_usable = True
        self.whole_finished = False  # True once finish() closed a complete whole file
        self.track_ends: dict[TrackKind, float] = {}  # media seconds each track reaches
        self._video: Vp9Encoder | None = None
        # the size of the client's own VP9 once its frames are muxed unchanged (no encoder)
        self._passthrough: tuple[int, int] | None = None
        self._audio: OpusEncoder | None = None
        self._container: OutputContainer | None = None
        self._streams: dict[TrackKind, Stream] = {}
        self._segment_index = 0
        self._segment_started_t = 0.0
        self._force_keyframe = True
        self._held_video = _HeldVideo()
        self._last_video_pts = -1
        self.video_frames_written = 0  # read by other threads (an int: atomic to read)

    @property
    def _video_size(self) -> tuple[int, int] | None:
        if self._video is not None:
            return self._video.width, self._video.height
        return self._passthrough

    def write_video(self, frame: VideoFrame) -> None:
        if self._passthrough is not None:
            raise BadFrameError("a picture cannot join a recording of the client's own VP9")
        image = frame.image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
            raise BadFrameError(
                f"expected a BGR uint8 H x W x 3 image, got {image.dtype} {image.shape}"
            )
        if self._video is None:
            height, width = frame.image.shape[:2]
            size = fit_within(
                width,
                height,
                self._settings.recording.recording_max_width,
                self._settings.recording.recording_max_height,
                even=True,
            )
            self._video = Vp9Encoder(*size, self._settings)
        pts, keyframe = self._place_video(frame.t, may_cut=True)
        for packet in self._video.encode(frame.image, pts, keyframe=keyframe):
            self._mux_video(packet)

    def write_encoded(self, frame: EncodedVideo) -> None:
        """A VP9 frame the client encoded, muxed as it came. A segment opens on a keyframe
        (the client's: ours cannot be forced), so it starts once `recording_segment_s` has
        passed and the next keyframe comes."""
        if self._video is not None:
            raise BadFrameError("a VP9 frame cannot join a recording of pictures")
        if self._passthrough is None:
            if not frame.keyframe or frame.width is None or frame.height is None:
                raise BadFrameError("the client's VP9 must start with a keyframe")
            self._passthrough = (frame.width, frame.height)
        pts, _opens = self._place_video(frame.t, may_cut=frame.keyframe)
        packet = Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = MS
        packet.is_keyframe = frame.keyframe
        self._mux_video(packet)

    def _place_video(self, t: float, *, may_cut: bool) -> tuple[int, bool]:
        """A video frame's pts (strictly increasing: a repeated or backwards timestamp moves to
        the next ms) and whether it opens a new segment. The segment is cut before it once
        `recording_segment_s` has passed, if `may_cut` (any frame of ours: it becomes a
        keyframe; only a keyframe of the client's), or when the segment has no video track."""
        pts = max(round(t * 1000), self._last_video_pts + 1)
        if self._container is not None and (
            "video" not in self._streams
            or (
                may_cut
                and t - self._segment_started_t >= self._settings.recording.recording_segment_s
            )
        ):
            self._close_segment(next_video_pts=pts)
        opens = self._force_keyframe
        if opens:
            self._segment_started_t = t
        self._force_keyframe = False
        self._last_video_pts = pts
        return pts, opens

    def write_audio(self, chunk: AudioChunk) -> None:
        if chunk.samples.ndim != 1 or chunk.sample_rate <= 0:
            raise BadFrameError(
                f"expected 1-D int16 samples, got {chunk.samples.dtype} {chunk.samples.shape}"
            )
        if self._audio is None:
            self._audio = OpusEncoder(self._settings)
            if self._container is not None:
                # The segment was opened without an audio track; the next one has it.
                self._close_segment(next_video_pts=None)
        for packet in self._audio.encode(chunk):
            self._mux(packet, "audio")

    def finish(self) -> None:
        """Flush both encoders and finish the current segment."""
        if self._video is not None:
            for packet in self._video.flush():
                self._mux_video(packet)
        if self._audio is not None:
            for packet in self._audio.flush():
                self._mux(packet, "audio")
        self._close_segment(next_video_pts=None)
        if self._whole is not None:
            self._whole.close()
            self._whole = None
            self.whole_finished = True

    def abandon(self) -> None:
        """After an error: close what can be closed, keep what was written."""
        self._give_up_whole()
        try:
            self._close_segment(next_video_pts=None)
        except (av.error.FFmpegError, OSError, ValueError):
            log.exception("could not close the recording segment cleanly")

    def release(self) -> None:
        """Drop the encoders and containers once the recording is finished or abandoned, so
        their native memory (libvpx keeps tens of MiB of frame buffers and a thread pool per
        encoder) goes now, not whenever the garbage collector frees the session's cycle."""
        self._video = None
        self._passthrough = None
        self._audio = None
        self._container = None
        self._streams = {}
        self._whole = None
        self._whole_streams = {}
        self._held_video = _HeldVideo()

    def _mux_video(self, packet: Packet) -> None:
        ready = self._held_video.swap(packet)
        if ready is not None:
            self._mux(ready, "video")

    def _mux(self, packet: Packet, kind: TrackKind) -> None:
        if self._container is None:
            self._open_segment()
        assert self._container is not None
        packet.stream = self._streams[kind]
        self._container.mux(packet)
        if kind == "video":
            self.video_frames_written += 1
        if packet.pts is not None and packet.time_base is not None:
            self.track_ends[kind] = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        if self._whole is not None:
            try:
                packet.stream = self._whole_streams[kind]
                self._whole.mux(packet)
            except (av.error.FFmpegError, OSError) as exc:
                log.warning("continuous recording file failed, will join segments: %s", exc)
                self._give_up_whole()

    def _open_segment(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        path = segment_path(self._dir, self._segment_index, part=True)
        container = av.open(
            str(path),
            "w",
            format="webm",
            container_options={
                "cluster_time_limit": str(self._settings.recording.recording_cluster_ms),
                "flush_packets": "1",
            },
        )
        self._container = container
        self._streams = _add_tracks(container, self._video_size, self._audio)
        if self._whole_usable and self._whole is None:
            try:
                self._whole = av.open(str(self._whole_path), "w", format="webm")
                self._whole_streams = _add_tracks(self._whole, self._video_size, self._audio)
            except (av.error.FFmpegError, OSError) as exc:
                log.warning("cannot write the continuous recording file: %s", exc)
                self._give_up_whole()
        elif self._whole is not None and self._whole_streams.keys() != self._streams.keys():
            self._give_up_whole()

    def _give_up_whole(self) -> None:
        self._whole_usable = False
        self.whole_finished = False
        whole, self._whole = self._whole, None
        if whole is not None:
            try:
                whole.close()
            except (av.error.FFmpegError, OSError):
                log.debug("closing the abandoned continuous recording failed", exc_info=True)
        self._whole_path.unlink(missing_ok=True)

    def _close_segment(self, *, next_video_pts: int | None) -> None:
        held = self._held_video.release(next_video_pts)
        if held is not None:
            self._mux(held, "video")
        if self._container is None:
            return
        self._container.close()
        self._container = None
        self._streams = {}
        part = segment_path(self._dir, self._segment_index, part=True)
        part.replace(segment_path(self._dir, self._segment_index, part=False))
        self._segment_index += 1
        self._force_keyframe = True


class WebmWriter:
    """A finished video re-encoded to one WebM file (VP9, plus Opus when `audio`), written in
    one go by the caller's thread: the upload flow's recording. Frames above `UPLOAD_MAX_FPS`
    are skipped; a rotated frame is written upright (WebM players apply no display matrix).
    `close()` flushes and returns the result; `abort()` removes the file."""

    def __init__(
        self, path: Path, settings: Settings, width: int, height: int, *, audio: bool
    ) -> None:
        self.path = path
        self.width, self.height = fit_within(
            width,
            height,
            settings.recording.recording_max_width,
            settings.recording.recording_max_height,
            even=True,
        )
        self._video = Vp9Encoder(self.width, self.height, settings, live=False)
        self._audio = OpusEncoder(settings, bit_rate=UPLOAD_AUDIO_BITRATE) if audio else None
        self._container = av.open(str(path), mode="w", format="webm")
        self._streams = _add_tracks(self._container, (self.width, self.height), self._audio)
        self._held_video = _HeldVideo()
        self._track_ends: dict[TrackKind, float] = {}
        self.frames = 0
        self._last_pts = -1
        self.encode_s = 0.0

    def add_video(self, frame: av.VideoFrame, t: float, rotation: float = 0.0) -> None:
        """`rotation`: the frame's display rotation (PyAV's `VideoFrame.rotation`)."""
        pts = round(t * 1000)
        if self.frames and pts - self._last_pts < 1000 / UPLOAD_MAX_FPS - 0.5:
            return  # above the frame-rate cap
        started = time.perf_counter()
        quarter = quarter_turns(rotation)
        if quarter == 0:
            packets = self._video.encode_frame(frame, pts)
        else:
            stored = (self.height, self.width) if quarter % 2 else (self.width, self.height)
            picture = frame.reformat(width=stored[0], height=stored[1], format="bgr24")
            packets = self._video.encode(upright(picture.to_ndarray(), rotation), pts)
        for packet in packets:
            self._mux_video(packet)
        self._last_pts = pts
        self.frames += 1
        self.encode_s += time.perf_counter() - started

    def add_audio(self, frame: av.AudioFrame, t: float) -> None:
        if self._audio is None or t < 0:
            return
        for packet in self._audio.encode_frame(frame, t):
            self._mux(packet, "audio")

    def close(self) -> RecordingResult:
        try:
            for packet in self._video.flush():
                self._mux_video(packet)
            held = self._held_video.release()
            if held is not None:
                self._mux(held, "video")
            if self._audio is not None:
                for packet in self._audio.flush():
                    self._mux(packet, "audio")
        finally:
            self._container.close()
        return RecordingResult(
            path=self.path,
            frames_encoded=self.frames,
            frames_dropped=0,
            duration_s=max(self._track_ends.values(), default=0.0),
            has_audio=self._audio is not None,
            width=self.width,
            height=self.height,
            encode_s=round(self.encode_s, 3),
        )

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:  # already failing: the file goes either way
            log.debug("closing an aborted recording failed", exc_info=True)
        self.path.unlink(missing_ok=True)

    def _mux_video(self, packet: Packet) -> None:
        ready = self._held_video.swap(packet)
        if ready is not None:
            self._mux(ready, "video")

    def _mux(self, packet: Packet, kind: TrackKind) -> None:
        packet.stream = self._streams[kind]
        self._container.mux(packet)
        if packet.pts is not None and packet.time_base is not None:
            self._track_ends[kind] = float((packet.pts + (packet.duration or 0)) * packet.time_base)


class SessionRecorder:
    """Records one session. `push_*` from any thread; `stop()` from the event loop."""

    def __init__(
        self,
        directory: Path,
        settings: Settings,
        on_failure: Callable[[RecordingFailure], None] | None = None,
    ) -> None:
        """`on_failure` is called once, from the worker thread, when recording stops early
        (the session should end then: what it says from now on would not be recorded)."""
        self._directory = directory
        self._on_failure = on_failure
        self._next_disk_check = 0.0
        self._segments_dir = directory / SEGMENTS_DIR
        self._settings = settings
        # Bounded by the counters below (per kind), checked under the lock on every put.
        self._queue: queue.SimpleQueue[_QueueItem] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = False
        self._video_pending = 0
        self._audio_pending = 0
        self._frames_accepted = 0
        self._frames_dropped = 0  # refused at push, bad, or lost to a failed encoder
        self._vp9_gap = False  # a client VP9 frame was dropped: the next must be a keyframe
        self._worker_dropped = 0  # the part of _frames_dropped the worker counted
        self._audio_dropped = 0
        self._writer: _SegmentWriter | None = None
        self._cpu_s = 0.0
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop_lock = threading.Lock()
        self._stopping = threading.Event()  # cuts the worker's batch wait short
        self.batches = 0  # times the worker found its queue empty and waited for more
        self._result: RecordingResult | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._directory.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(
                target=self._run, name=f"recorder:{self._directory.name}", daemon=True
            )
            self._accepting = True
            self._thread.start()

    async def stop(self) -> RecordingResult:
        """Flush, finish the segment and join the segments into recording.webm."""
        return await asyncio.to_thread(self._stop_blocking)

    # --- producers -----------------------------------------------------------------------

    def push_video(self, frame: VideoFrame | EncodedVideo) -> bool:
        """Queue a frame for encoding, or a client's VP9 frame for muxing; False (and counted)
        when dropped. Never blocks. Once a VP9 frame is dropped, the ones after it are too
        until a keyframe (they could not be decoded without it)."""
        with self._lock:
            encoded = isinstance(frame, EncodedVideo)
            if (
                not self._accepting
                or self._video_pending >= self._settings.recording.recording_queue
                or (self._vp9_gap and isinstance(frame, EncodedVideo) and not frame.keyframe)
            ):
                self._frames_dropped += 1
                self._vp9_gap = self._vp9_gap or encoded
                return False
            self._vp9_gap = False
            self._video_pending += 1
            self._frames_accepted += 1
            self._queue.put(frame)
            return True

    def push_audio(self, chunk: AudioChunk) -> bool:
        """Queue 16 kHz mono int16 audio; False (and counted) when dropped. Never blocks."""
        with self._lock:
            if (
                not self._accepting
                or self._audio_pending >= self._settings.recording.recording_audio_queue
            ):
                self._audio_dropped += 1
                return False
            self._audio_pending += 1
            self._queue.put(chunk)
            return True

    # --- state ---------------------------------------------------------------------------

    @property
    def frames_encoded(self) -> int:
        """Video frames written to the recording so far."""
        writer = self._writer
        return writer.video_frames_written if writer is not None else 0

    @property
    def frames_dropped(self) -> int:
        return self._frames_dropped

    @property
    def queue_depth(self) -> int:
        """Video frames waiting for the encoder."""
        return self._video_pending

    # --- worker --------------------------------------------------------------------------

    def _run(self) -> None:
        ThreadPriority(nice=self._settings.recording.recorder_nice).apply()
        writer = self._writer = _SegmentWriter(
            self._segments_dir, self._directory / WHOLE_NAME, self._settings
        )
        cpu_start = time.thread_time()
        failed = False
        try:
            while True:
                item = self._next_item()
                if isinstance(item, _Stop):
                    break
                is_video = isinstance(item, VideoFrame | EncodedVideo)
                with self._lock:
                    if is_video:
                        self._video_pending -= 1
                    else:
                        self._audio_pending -= 1
                if failed:
                    self._count_dropped(is_video)
                    continue
                low_on_disk = self._disk_low()
                if low_on_disk is not None:
                    # Stop while there is still room to close the file and write the report:
                    # finish (not abandon), so the continuous copy is a complete recording.
                    log.warning("recording stopped in %s: %s", self._directory, low_on_disk)
                    self._error = low_on_disk
                    self._count_dropped(is_video)
                    failed = True
                    try:
                        writer.finish()
                    except (av.error.FFmpegError, OSError, ValueError):
                        log.exception("recording flush failed in %s", self._directory)
                        writer.abandon()
                    self._notify_failure("disk_full")
                    continue
                try:
                    if isinstance(item, VideoFrame):
                        writer.write_video(item)
                    elif isinstance(item, EncodedVideo):
                        writer.write_encoded(item)
                    else:
                        writer.write_audio(item)
                except BadFrameError as exc:
                    log.warning("recorder dropped bad input in %s: %s", self._directory, exc)
                    self._count_dropped(is_video)
                except (av.error.FFmpegError, OSError, ValueError) as exc:
                    # Recording stops and the owner is told: keep what was written.
                    log.exception("recording failed in %s", self._directory)
                    self._error = f"{type(exc).__name__}: {exc}"
                    self._count_dropped(is_video)
                    failed = True
                    writer.abandon()
                    self._notify_failure("disk_full" if _is_disk_full(exc) else "recording_failed")
            if not failed:
                try:
                    writer.finish()
                except (av.error.FFmpegError, OSError, ValueError) as exc:
                    log.exception("recording flush failed in %s", self._directory)
                    self._error = f"{type(exc).__name__}: {exc}"
                    writer.abandon()
        finally:
            writer.release()
            self._cpu_s = time.thread_time() - cpu_start

    def _next_item(self) -> _QueueItem:
        """The next queued item; with the queue empty, first a pause of `recorder_batch_s`
        (unless stopping) so that what arrives meanwhile is written in one go."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            pass
        self.batches += 1
        batch_s = self._settings.recording.recorder_batch_s
        if batch_s > 0:
            self._stopping.wait(batch_s)
        return self._queue.get()

    def _disk_low(self) -> str | None:
        """A reason to stop when the recording's filesystem is below its reserve (checked at
        most once a second; a statvfs call)."""
        reserve = self._settings.limits.min_free_disk_live_mb
        now = time.monotonic()
        if reserve <= 0 or now < self._next_disk_check:
            return None
        self._next_disk_check = now + DISK_CHECK_INTERVAL_S
        try:
            free_mb = shutil.disk_usage(self._directory).free / 1e6
        except OSError:
            return None
        if free_mb < reserve:
            return f"disk_full: {free_mb:.1f} MB free, below the {reserve} MB reserve"
        return None

    def _notify_failure(self, reason: RecordingFailure) -> None:
        callback, self._on_failure = self._on_failure, None  # once
        if callback is not None:
            try:
                callback(reason)
            except Exception:
                log.exception("the recorder's failure callback failed")

    def _count_dropped(self, is_video: bool) -> None:
        with self._lock:
            if is_video:
                self._frames_dropped += 1
                self._worker_dropped += 1
            else:
                self._audio_dropped += 1

    def _stop_blocking(self) -> RecordingResult:
        with self._stop_lock:
            if self._result is not None:
                return self._result
            started = time.perf_counter()
            with self._lock:
                self._accepting = False
                thread = self._thread
                if thread is not None:
                    self._queue.put(_STOP)
                    self._stopping.set()
            if thread is not None:
                thread.join()
            flushed = time.perf_counter()
            frames_encoded = self.frames_encoded
            with self._lock:
                # Exact now the worker is done: whatever was accepted but not written
                # (bad frames, frames lost with a failed encoder) counts as dropped.
                self._frames_dropped += (
                    self._frames_accepted - frames_encoded - self._worker_dropped
                )
            final = self._directory / RECORDING_NAME
            writer = self._writer
            path: Path | None = None
            duration = 0.0
            has_audio = False
            how = "nothing recorded"
            if writer is not None and writer.whole_finished:
                # The usual end: the continuous copy is complete, the segments are spares.
                os.replace(self._directory / WHOLE_NAME, final)
                path = final
                duration = max(writer.track_ends.values(), default=0.0)
                has_audio = "audio" in writer.track_ends
                how = "continuous file"
            else:
                (self._directory / WHOLE_NAME).unlink(missing_ok=True)
                joined = join_segments(list_segments(self._segments_dir), final)
                if joined is not None:
                    path = joined.path
                    duration = joined.duration_s
                    has_audio = joined.audio_packets > 0
                    how = f"joined {joined.segments_read} segments"
            finalised = time.perf_counter()
            if path is not None:
                shutil.rmtree(self._segments_dir, ignore_errors=True)
            self._result = RecordingResult(
                path=path,
                frames_encoded=frames_encoded,
                frames_dropped=self._frames_dropped,
                duration_s=duration,
                has_audio=has_audio,
                audio_chunks_dropped=self._audio_dropped,
                encode_cpu_s=self._cpu_s,
                error=self._error,
            )
            log.info(
                "recording stopped in %.3f s (flush %.3f s, %s %.3f s, clean-up %.3f s): "
                "%d frames, %d dropped, %.1f s",
                time.perf_counter() - started,
                flushed - started,
                how,
                finalised - flushed,
                time.perf_counter() - finalised,
                frames_encoded,
                self._frames_dropped,
                duration,
            )
            return self._result


def _is_disk_full(exc: BaseException) -> bool:
    code = getattr(exc, "errno", None)
    return code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or "No space left" in str(exc)


def recover_recording(directory: Path, settings: Settings) -> RecordingResult | None:
    """Turn what a killed process left in `directory` into a playable recording.webm.

    Joins every segment, finished or cut short, by remuxing. If the segments are already
    gone but a recording.webm exists (the process died after joining), that recording is
    reported. None when nothing usable is there. Blocking: call it off the event loop.
    """
    del settings  # the segments carry everything; kept for a stable signature
    segments_dir = directory / SEGMENTS_DIR
    final = directory / RECORDING_NAME
    # A continuous copy cut short has no index; the segments hold the same packets.
    (directory / WHOLE_NAME).unlink(missing_ok=True)
    segments = list_segments(segments_dir)
    if segments:
        joined = join_segments(segments, final)
        if joined is None:
            return None
        shutil.rmtree(segments_dir, ignore_errors=True)
        log.info(
            "recovered %s from %d segments (%d damaged): %d video frames, %.1f s",
            final,
            joined.segments_read,
            joined.segments_damaged,
            joined.video_packets,
            joined.duration_s,
        )
        return RecordingResult(
            path=final,
            frames_encoded=joined.video_packets,
            frames_dropped=0,  # unknown after a crash
            duration_s=joined.duration_s,
            has_audio=joined.audio_packets > 0,
            recovered=True,
        )
    if not final.is_file():
        return None
    try:
        probe = probe_recording(final)
    except (av.error.FFmpegError, OSError):
        log.exception("recording %s is unreadable", final)
        return None
    return RecordingResult(
        path=final,
        frames_encoded=probe.video_frames,
        frames_dropped=0,
        duration_s=probe.duration_s,
        has_audio=probe.audio_codec is not None,
        recovered=True,
    )
