"""VP9 frames a client encoded itself (a browser's WebCodecs `VideoEncoder`), sent over the
WebSocket as `VP91` messages: read their header, decode them for analysis.

The recorder muxes such frames into the recording as they came (no re-encode: the VP9 encode
is ~40 % of the server's CPU a frame when it records pictures, BENCHMARKS.md, section
Capacity), so only what analysis needs is decoded here. VP9 frames depend on the frames before
them: every frame is decoded in order, and after a frame is lost the next ones wait for a
keyframe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import av
import numpy as np

from app.config import Settings
from app.media.decode import FrameRejected, check_frame_size, video_frame_to_bgr

VP9_MAGIC: Final = b"VP91"  # a WebSocket binary message: these 4 bytes, then one VP9 frame
_SYNC_CODE: Final = b"\x49\x83\x42"


@dataclass(frozen=True, slots=True)
class Vp9Header:
    keyframe: bool
    width: int | None  # a keyframe's picture size; None for other frames
    height: int | None
    # A shown, error-resilient inter frame that refreshes no reference slot: in a stream of
    # error-resilient frames no later frame depends on it, so it need not be decoded when its
    # picture is not wanted. An encoder sends such frames when asked for temporal layers
    # (`scalabilityMode` "L1T2": every other frame) in error-resilient mode, as WebRTC's VP9
    # encoder does for layered streams; never in a plain stream.
    droppable: bool = False


def read_vp9_header(data: bytes) -> Vp9Header:
    """The uncompressed header of a VP9 frame (or of a superframe's first frame): whether it is
    a keyframe and, if so, its size. Raises `FrameRejected` for what is not profile 0 VP9
    (8-bit 4:2:0: what browsers encode for `vp09.00.*`)."""
    if not data:
        raise FrameRejected("bad_frame", "empty VP9 frame")
    first = data[0]
    if first >> 6 != 0b10:
        raise FrameRejected("bad_frame", "not a VP9 frame (no frame marker)")
    profile = ((first >> 5) & 1) | (((first >> 4) & 1) << 1)
    if profile != 0:
        raise FrameRejected("bad_frame", f"VP9 profile {profile}: only profile 0 is accepted")
    show_existing = (first >> 3) & 1
    keyframe = not show_existing and not (first >> 2) & 1
    if not keyframe:
        return Vp9Header(keyframe=False, width=None, height=None, droppable=_droppable(data))
    # profile 0 keyframe: marker..error_resilient in byte 0, sync code, then color_space (3
    # bits), color_range (1 bit, as color_space is never sRGB in profile 0), then the size
    if len(data) < 8 or data[1:4] != _SYNC_CODE:
        raise FrameRejected("bad_frame", "VP9 keyframe without its sync code")
    bits = int.from_bytes(data[4:9].ljust(5, b"\0"), "big")  # 40 bits from byte 4
    if (bits >> 37) == 7:
        raise FrameRejected("bad_frame", "VP9 sRGB colour space is not profile 0")
    width = ((bits >> 20) & 0xFFFF) + 1
    height = ((bits >> 4) & 0xFFFF) + 1
    return Vp9Header(keyframe=True, width=width, height=height)


def _droppable(data: bytes) -> bool:
    """Whether a profile 0 inter frame is shown, error resilient and refreshes no reference
    slot (VP9 spec, uncompressed_header: in error-resilient mode refresh_frame_flags, 8 bits,
    follow the first byte at once). Without error resilience a frame is never droppable: the
    next frame reads its motion vectors and may inherit its probability context and loop
    filter deltas (measured: skipping such frames breaks the decode of the next ones). A
    superframe (several frames in one chunk) is never droppable here: its first frame is all
    the header says."""
    first = data[0]
    shown, error_resilient = (first >> 1) & 1, first & 1
    if (first >> 3) & 1 or not shown or not error_resilient or len(data) < 2:
        return False
    last = data[-1]
    if last & 0xE0 == 0xC0:  # a superframe index ends the chunk
        index_size = 2 + (((last >> 3) & 3) + 1) * ((last & 7) + 1)
        if len(data) >= index_size and data[-index_size] == last:
            return False
    return data[1] == 0  # refresh_frame_flags


@dataclass(frozen=True, slots=True)
class Vp9Chunk:
    """One received VP9 frame, its header read."""

    data: bytes
    header: Vp9Header


class Vp9Decoder:
    """One session's VP9 decoder. Frames go in in order, from one thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._codec = av.CodecContext.create("vp9", "r")
        self._codec.thread_count = 1  # sessions run in parallel; one thread each is enough

    def decode(self, data: bytes, *, picture: bool) -> np.ndarray | None:
        """Decode one frame; its BGR picture when `picture` (None when the frame shows
        nothing, e.g. a hidden reference frame). Raises `FrameRejected` for corrupt data."""
        try:
            frames = self._codec.decode(av.Packet(data))
        except av.error.FFmpegError as exc:
            raise FrameRejected("bad_frame", f"VP9 frame could not be decoded: {exc}") from None
        for frame in frames:  # VP9 may change size on any frame, not only on keyframes
            check_frame_size(frame.width, frame.height, self._settings)
        if not picture or not frames:
            return None
        return video_frame_to_bgr(frames[-1])


# --- RTP (RFC 9628): a WebRTC peer's VP9 ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Vp9RtpDescriptor:
    """The payload descriptor in front of each RTP packet's share of a VP9 frame."""

    start: bool  # B: the packet starts a (layer) frame
    end: bool  # E: the packet ends one
    picture_id: int | None
    spatial_id: int  # 0 without layer indices


def parse_vp9_rtp(payload: bytes) -> tuple[Vp9RtpDescriptor, bytes]:
    """Split an RTP payload into its VP9 payload descriptor and its share of the frame.
    Raises ValueError for a truncated descriptor (aiortc drops such a packet)."""
    try:
        first = payload[0]
        pos = 1
        has_pid, has_pdiff, has_layers = first & 0x80, first & 0x40, first & 0x20
        flexible, start, end, has_ss = first & 0x10, first & 0x08, first & 0x04, first & 0x02
        picture_id = None
        if has_pid:
            picture_id = payload[pos] & 0x7F
            if payload[pos] & 0x80:  # M: a 15-bit picture ID
                picture_id = (picture_id << 8) | payload[pos + 1]
                pos += 1
            pos += 1
        spatial_id = 0
        if has_layers:
            spatial_id = (payload[pos] >> 1) & 0x07
            pos += 1 if flexible else 2  # non-flexible mode: TL0PICIDX follows
        if has_pdiff and flexible:
            for _ in range(3):  # up to three reference indices, N marks one more
                more = payload[pos] & 0x01
                pos += 1
                if not more:
                    break
        if has_ss:
            ss = payload[pos]
            pos += 1
            if ss & 0x10:  # Y: each spatial layer's width and height
                pos += 4 * ((ss >> 5) + 1)
            if ss & 0x08:  # G: the picture group
                groups = payload[pos]
                pos += 1
                for _ in range(groups):
                    pos += 1 + ((payload[pos] >> 2) & 0x03)
    except IndexError:
        raise ValueError("VP9 payload descriptor is truncated") from None
    if pos > len(payload):
        raise ValueError("VP9 payload descriptor is truncated")
    descriptor = Vp9RtpDescriptor(
        start=bool(start), end=bool(end), picture_id=picture_id, spatial_id=spatial_id
    )
    return descriptor, payload[pos:]
