"""Is this file a video we can analyse? Decided by probing the content with PyAV, never by the
file's name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

log = logging.getLogger(__name__)

# Demuxers that read single images or raw streams: a JPEG is not a recording.
_IMAGE_FORMAT_SUFFIXES = ("_pipe", "image2", "gif", "apng", "webp")
MAX_SIDE = 8192  # larger frames are refused before anything is decoded


@dataclass(frozen=True, slots=True)
class VideoProbe:
    format_name: str
    codec: str
    width: int
    height: int
    duration_s: float
    duration_from_header: bool  # False: measured by demuxing (e.g. MediaRecorder WebM)
    has_audio: bool


ProbeRefusal = Literal["not_a_video", "video_too_large", "video_too_long"]


class ProbeRejected(Exception):
    def __init__(self, code: ProbeRefusal, message: str) -> None:
        super().__init__(message)
        self.code: ProbeRefusal = code
        self.message = message


def probe_video(path: Path, max_duration_s: float) -> VideoProbe:
    """Open `path`, check it has a video stream whose first frame decodes, and measure its
    duration (from the header, else from the packet timestamps). Raises `ProbeRejected`."""
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ProbeRejected(
            "not_a_video", f"The file is not a video ({type(exc).__name__})."
        ) from None
    with container:
        format_name = container.format.name or ""
        if any(part.endswith(_IMAGE_FORMAT_SUFFIXES) for part in format_name.split(",")):
            raise ProbeRejected(
                "not_a_video", f"The file is an image ({format_name}), not a video."
            )
        if not container.streams.video:
            raise ProbeRejected("not_a_video", "The file has no video stream.")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width > MAX_SIDE or height > MAX_SIDE:
            raise ProbeRejected("video_too_large", f"Frames of {width}x{height} are too large.")
        try:
            first = next(container.decode(stream), None)
        except (av.error.FFmpegError, ValueError) as exc:
            raise ProbeRejected(
                "not_a_video", f"The video cannot be decoded ({type(exc).__name__})."
            ) from None
        if first is None:
            raise ProbeRejected("not_a_video", "The video has no decodable frame.")
        width, height = first.width, first.height
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ProbeRejected("video_too_large", f"Frames of {width}x{height} are too large.")
        has_audio = bool(container.streams.audio)
        codec = stream.codec_context.name
        if container.duration is not None and container.duration > 0:
            duration = container.duration / av.time_base
            from_header = True
        else:
            container.seek(0)
            duration = _demuxed_duration(container, stream, max_duration_s)
            from_header = False
    if duration > max_duration_s:
        raise ProbeRejected(
            "video_too_long",
            f"The video is {duration:.0f} s long; at most {max_duration_s:.0f} s are accepted.",
        )
    return VideoProbe(
        format_name=format_name,
        codec=codec,
        width=width,
        height=height,
        duration_s=round(duration, 3),
        duration_from_header=from_header,
        has_audio=has_audio,
    )


def _demuxed_duration(
    container: av.container.InputContainer, stream: av.VideoStream, limit_s: float
) -> float:
    """Span of the video packets' timestamps; stops reading once past `limit_s`."""
    time_base: Fraction = stream.time_base or Fraction(1, 1000)
    first: int | None = None
    last = 0
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        if first is None:
            first = packet.pts
        last = max(last, packet.pts + (packet.duration or 0))
        if float((last - first) * time_base) > limit_s:
            break
    if first is None:
        return 0.0
    return float((last - first) * time_base)
