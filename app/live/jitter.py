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

`install()` makes aiortc's receivers build this one (they look the class up by name in
`aiortc.rtcrtpreceiver` when a track starts): process-wide, like the loopback fallback of
app/live/rtc.py.
"""

from __future__ import annotations

import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame


class MarkerJitterBuffer(JitterBuffer):
    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if self._is_video and self._origin is not None:
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


def install(on_marker: bool = True) -> None:
    """aiortc's receivers build their jitter buffers from this class from now on (False:
    aiortc's own again)."""
    chosen = MarkerJitterBuffer if on_marker else JitterBuffer
    aiortc.rtcrtpreceiver.JitterBuffer = chosen  # type: ignore[misc]
