"""WebM plumbing for the recorder: joining segments by remuxing, probing.

The recorder writes a session as short WebM segments (see `app.media.recorder`); these helpers
are the parts that need no live state, so they can be tested alone and reused by recovery.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
from av.container import InputContainer, OutputContainer
from av.stream import Stream

log = logging.getLogger(__name__)

SEGMENT_PREFIX = "seg_"
SEGMENT_SUFFIX = ".webm"
PART_SUFFIX = ".part"  # a segment still being written (or cut short by a crash)
_SEGMENT_NAME = re.compile(r"^seg_(\d+)\.webm(\.part)?$")


def segment_path(directory: Path, index: int, *, part: bool) -> Path:
    name = f"{SEGMENT_PREFIX}{index:05d}{SEGMENT_SUFFIX}"
    return directory / (name + PART_SUFFIX if part else name)


def list_segments(directory: Path) -> list[Path]:
    """Segment files in `directory` in recording order, finished and unfinished alike."""
    if not directory.is_dir():
        return []
    found: list[tuple[int, Path]] = []
    for path in directory.iterdir():
        match = _SEGMENT_NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


@dataclass(frozen=True, slots=True)
class JoinResult:
    path: Path
    video_packets: int
    audio_packets: int
    segments_read: int
    segments_damaged: int  # unreadable, or cut short (their readable part was kept)
    video_end_s: float | None  # end of the last video frame
    audio_end_s: float | None

    @property
    def duration_s(self) -> float:
        return max(self.video_end_s or 0.0, self.audio_end_s or 0.0)


def join_segments(segments: Sequence[Path], output: Path) -> JoinResult | None:
    """Remux `segments` (no re-encode) into one WebM at `output`, atomically.

    Segments carry absolute timestamps, so packets are copied as they are. A segment cut
    short by a crash contributes every packet that can still be read. Returns None (and
    leaves `output` untouched) when no segment holds a packet.
    """
    tmp = output.with_name(output.name + ".tmp")
    inputs: list[InputContainer] = []
    damaged = 0
    for path in segments:
        try:
            inputs.append(av.open(str(path), "r", format="webm"))
        except (av.error.FFmpegError, OSError) as exc:
            # Typically a segment killed before its header reached the disk.
            log.warning("recording segment %s is unreadable: %s", path.name, exc)
            damaged += 1
    try:
        video_template = _first_stream(inputs, "video")
        audio_template = _first_stream(inputs, "audio")
        if video_template is None and audio_template is None:
            return None
        counts = {"video": 0, "audio": 0}
        last_dts: dict[str, int] = {}
        ends: dict[str, float] = {}
        out: OutputContainer = av.open(str(tmp), "w", format="webm")
        try:
            out_streams: dict[str, Stream] = {}
            if video_template is not None:
                out_streams["video"] = out.add_stream_from_template(video_template)
            if audio_template is not None:
                out_streams["audio"] = out.add_stream_from_template(audio_template)
            for container in inputs:
                try:
                    for packet in container.demux():
                        kind = packet.stream.type
                        if packet.dts is None or kind not in out_streams:
                            continue  # demuxer flush packets, data tracks
                        # The muxer needs strictly increasing dts per track; a packet that
                        # repeats one across a segment boundary is a duplicate.
                        if kind in last_dts and packet.dts <= last_dts[kind]:
                            continue
                        last_dts[kind] = packet.dts
                        if packet.pts is not None and packet.time_base is not None:
                            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                            ends[kind] = max(ends.get(kind, end), end)
                        packet.stream = out_streams[kind]
                        out.mux(packet)
                        counts[kind] += 1
                except (av.error.FFmpegError, OSError) as exc:
                    log.warning("recording segment %s ends early: %s", container.name, exc)
                    damaged += 1
        finally:
            out.close()
        if counts["video"] + counts["audio"] == 0:
            tmp.unlink(missing_ok=True)
            return None
        os.replace(tmp, output)
        return JoinResult(
            path=output,
            video_packets=counts["video"],
            audio_packets=counts["audio"],
            segments_read=len(inputs),
            segments_damaged=damaged,
            video_end_s=ends.get("video"),
            audio_end_s=ends.get("audio"),
        )
    finally:
        for container in inputs:
            container.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _first_stream(inputs: Sequence[InputContainer], kind: str) -> Stream | None:
    for container in inputs:
        for stream in container.streams:
            if stream.type == kind:
                return stream
    return None


@dataclass(frozen=True, slots=True)
class RecordingProbe:
    duration_s: float
    video_codec: str | None
    video_frames: int  # video packets (one per frame: the recorder never uses alt-ref frames)
    width: int | None
    height: int | None
    audio_codec: str | None
    video_end_s: float | None  # end of the last video frame
    audio_end_s: float | None  # end of the last audio packet


def probe_recording(path: Path) -> RecordingProbe:
    """Read a WebM's streams and packet timestamps (no decoding)."""
    with av.open(str(path), "r", format="webm") as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = 0
        ends: dict[str, float] = {}
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            kind = packet.stream.type
            if kind == "video":
                frames += 1
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            ends[kind] = max(ends.get(kind, end), end)
        duration = container.duration / av.time_base if container.duration else 0.0
        return RecordingProbe(
            duration_s=duration,
            video_codec=video.codec_context.name if video is not None else None,
            video_frames=frames,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            video_end_s=ends.get("video"),
            audio_end_s=ends.get("audio"),
        )
