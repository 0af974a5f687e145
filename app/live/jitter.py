"""A video jitter buffer that hands a frame on when its last packet is in, not one frame later.

aiortc's `JitterBuffer` (1.16) knows a video frame is complete only when a packet of the *next*
frame arrives (a new RTP timestamp), so every frame waits one frame interval in it before it
is decoded: 67 ms at 15 fps, 33 ms at 30, on every WebRTC latency figure (BENCHMARKS.md,
"The WebRTC latency gap"). The sender marks a frame's last packet (the RTP marker bit: RFC
7741 for VP8, RFC 6184 for H.264; aiortc's own sender and browsers set it), so a frame whose
packets from the buffer's origin up to a marked one are all present is complete already.

The marker is a hint that can be lost with its packet, so the timestamp rule stays: a frame
whose marked packet never comes is still handed on when the next frame starts, as before.
Audio keeps aiortc's buffer (there the marker means the start of a talkspurt).

Every video buffer here also marks the first frame it hands on after it dropped packets
(`after_loss`: aiortc's buffer drops only when it overflows or the sequence jumps, and then asks
for a keyframe): a receiver that passes the client's VP9 on unchanged (app/live/rtc_vp9.py)
must not record or decode a frame whose reference went with them.

`install()` makes aiortc's receivers build this one (they look the class up by name in
`aiortc.rtcrtpreceiver` when a track starts): process-wide, like the loopback fallback of
app/live/rtc.py.
"""

from __future__ import annotations

import logging

import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)


class LossMarkingJitterBuffer(JitterBuffer):
    """aiortc's buffer, but the first frame after a drop carries `after_loss = True`."""

    _lost = False

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if pli_flag:  # aiortc asks for a keyframe exactly when it dropped packets
            self._lost = True
        if frame is not None:
            frame.after_loss = self._lost  # type: ignore[attr-defined]
            if frame.data:  # an empty frame (padding, a dropped layer) goes nowhere: keep it
                self._lost = False
        return pli_flag, frame


def after_loss(frame: JitterFrame) -> bool:
    """Whether packets were dropped just before `frame` (False from a buffer that does not say)."""
    return bool(getattr(frame, "after_loss", False))


class MarkerJitterBuffer(LossMarkingJitterBuffer):
    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if self._is_video and self._origin is not None:
            # Padding-only packets (no payload: a sender probing bandwidth, often right after a
            # marked packet and with its timestamp) at the head belong to no frame left here:
            # aiortc's rule would glue them to the next frame, but alone they would make an
            # empty frame, which drains the decoder and ends the track's video for good.
            head = self._packets[self._origin % self.capacity]
            while head is not None and not head._data:  # type: ignore[attr-defined]
                self.remove(1)
                head = self._packets[self._origin % self.capacity]
            timestamp = None
            for count in range(self.capacity):
                packet = self._packets[(self._origin + count) % self.capacity]
                if packet is None:
                    break  # a gap: wait for it (or for the timestamp rule)
                if timestamp is None:
                    timestamp = packet.timestamp
                elif packet.timestamp != timestamp:
                    break  # the next frame started before this one's marker: as before
                if packet.marker:
                    data = b"".join(
                        self._packets[(self._origin + k) % self.capacity]._data  # type: ignore[union-attr]
                        for k in range(count + 1)
                    )
                    self.remove(count + 1)
                    return JitterFrame(data=data, timestamp=timestamp)
        return super()._remove_frame(sequence_number)


def _fits_this_aiortc() -> bool:
    """The subclass reads aiortc's private state (written against aiortc 1.16)."""
    probe = JitterBuffer(capacity=2, is_video=True)
    return all(hasattr(probe, name) for name in ("_packets", "_origin", "_is_video")) and hasattr(
        JitterBuffer, "_remove_frame"
    )


def install(on_marker: bool = True) -> None:
    """aiortc's receivers build their jitter buffers from this class from now on (False, or
    an aiortc whose buffer looks different: aiortc's own, marking losses)."""
    if on_marker and not _fits_this_aiortc():
        log.warning("this aiortc's jitter buffer is not the one MarkerJitterBuffer knows: kept")
        on_marker = False
    chosen = MarkerJitterBuffer if on_marker else LossMarkingJitterBuffer
    aiortc.rtcrtpreceiver.JitterBuffer = chosen  # type: ignore[misc]
