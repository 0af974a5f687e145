"""A WebRTC client's VP9 sender for aiortc, which has none: libvpx VP9 as a browser's WebRTC
encoder runs it (realtime, no look-ahead, one spatial layer), packetized per RFC 9628 the way
libwebrtc does for one layer (a 15-bit picture ID, B/E flags, the scalability structure with
the picture size on a keyframe's first packet).

`install_sender()` makes aiortc's senders use it for VP9 (the server's `rtc_vp9.install()`
must have added the codec); a client then prefers VP9 with `prefer_vp9(pc)`.
"""

from __future__ import annotations

import asyncio
import fractions
import random

import aiortc.rtcrtpsender
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import get_encoder as aiortc_get_encoder
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import VIDEO_TIME_BASE, MediaStreamError, convert_timebase
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame
from av.video.codeccontext import VideoCodecContext

from app.media.vp9 import read_vp9_header

PACKET_MAX = 1200  # payload bytes per RTP packet (libwebrtc keeps RTP packets under ~1200)


def packetize(frame: bytes, picture_id: int) -> list[bytes]:
    """One VP9 frame as RTP payloads (RFC 9628, non-flexible mode, one spatial layer)."""
    header = read_vp9_header(frame)
    ss = b""
    if header.keyframe and header.width is not None and header.height is not None:
        # V: N_S = 0, Y = 1 (sizes follow), G = 0; then width and height of the one layer
        ss = bytes([0x10]) + header.width.to_bytes(2, "big") + header.height.to_bytes(2, "big")
    payloads: list[bytes] = []
    pos = 0
    while pos < len(frame) or not payloads:
        first = not payloads
        flags = 0x80  # I: picture ID present
        flags |= 0x00 if header.keyframe else 0x40  # P: inter-picture predicted
        flags |= 0x08 if first else 0
        extra = ss if first else b""
        flags |= 0x02 if extra else 0
        descriptor = bytes([flags, 0x80 | (picture_id >> 8), picture_id & 0xFF]) + extra
        size = min(len(frame) - pos, PACKET_MAX - len(descriptor))
        if pos + size >= len(frame):
            descriptor = bytes([descriptor[0] | 0x04]) + descriptor[1:]  # E: the last one
        payloads.append(descriptor + frame[pos : pos + size])
        pos += size
    return payloads


class Vp9RtpEncoder(Encoder):
    def __init__(self) -> None:
        self.codec: VideoCodecContext | None = None
        self.picture_id = random.randint(0, (1 << 15) - 1)

    def _open(self, width: int, height: int) -> VideoCodecContext:
        codec = av.CodecContext.create("libvpx-vp9", "w")
        assert isinstance(codec, VideoCodecContext)
        codec.width, codec.height = width, height
        codec.pix_fmt = "yuv420p"
        codec.time_base = fractions.Fraction(1, 90_000)
        codec.bit_rate = 1_000_000
        codec.gop_size = 1 << 20  # like a browser's: a keyframe first and when asked, no other
        codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        return codec

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, av.VideoFrame) and frame.pts is not None
        assert frame.time_base is not None
        if self.codec is None or (frame.width, frame.height) != (
            self.codec.width,
            self.codec.height,
        ):
            self.codec = self._open(frame.width, frame.height)
        yuv = frame.reformat(format="yuv420p")
        yuv.pts = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
        yuv.time_base = VIDEO_TIME_BASE
        yuv.pict_type = av.video.frame.PictureType.I if force_keyframe else 0
        payloads: list[bytes] = []
        for packet in self.codec.encode(yuv):
            payloads += self._pack(bytes(packet))
        return payloads, int(yuv.pts)

    def pack(self, packet: av.Packet) -> tuple[list[bytes], int]:  # type: ignore[override]
        """A frame encoded before (a replayed clip): packetized only."""
        assert packet.pts is not None and packet.time_base is not None
        timestamp = convert_timebase(packet.pts, packet.time_base, VIDEO_TIME_BASE)
        return self._pack(bytes(packet)), timestamp

    def _pack(self, frame: bytes) -> list[bytes]:
        payloads = packetize(frame, self.picture_id)
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        return payloads


def _get_encoder(codec: RTCRtpCodecParameters) -> Encoder:
    if codec.mimeType.lower() == "video/vp9":
        return Vp9RtpEncoder()
    return aiortc_get_encoder(codec)


def install_sender() -> None:
    aiortc.rtcrtpsender.get_encoder = _get_encoder  # type: ignore[attr-defined]


def prefer_vp9(pc: RTCPeerConnection, sender: RTCRtpSender) -> None:
    """Offer VP9 (profile 0) only on `sender`'s transceiver, as the page does."""
    for transceiver in pc.getTransceivers():
        if transceiver.sender is sender:
            codecs = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences(
                [c for c in codecs if c.mimeType in ("video/VP9", "video/rtx")]
            )


class Vp9ClipTrack(MediaStreamTrack):
    """A camera track that sends VP9 frames encoded beforehand (aiortc packetizes them with
    `Vp9RtpEncoder.pack`), at `fps`, then ends; `sent` counts those handed to aiortc."""

    kind = "video"

    def __init__(self, frames: list[bytes], fps: float) -> None:
        super().__init__()
        self.frames = frames
        self.fps = fps
        self.sent = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live" or self.sent >= len(self.frames):
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        delay = self._start + self.sent / self.fps - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.frames[self.sent])
        packet.pts = round(self.sent * 90_000 / self.fps)
        packet.time_base = VIDEO_TIME_BASE
        self.sent += 1
        return packet
