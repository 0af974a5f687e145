from __future__ import annotations

import datetime
from fractions import Fraction

from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc import clock as aiortc_clock
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from app.live.rtc import RtpClock, _media_ssrc

VIDEO = Fraction(1, 90_000)


def test_first_frame_maps_to_its_arrival_and_later_ones_keep_the_sender_spacing() -> None:
    clock = RtpClock()
    assert clock.media_time(1_000_000, VIDEO, 2.5) == 2.5
    # Arrival jitter does not move a frame: 3000 ticks are 1/30 s whatever the arrival time.
    assert abs(clock.media_time(1_003_000, VIDEO, 2.9) - (2.5 + 1 / 30)) < 1e-9
    assert abs(clock.media_time(1_006_000, VIDEO, 2.55) - (2.5 + 2 / 30)) < 1e-9


def test_the_32_bit_rtp_timestamp_wraps() -> None:
    clock = RtpClock()
    start = (1 << 32) - 1500
    assert clock.media_time(start, VIDEO, 1.0) == 1.0
    after = clock.media_time(1500, VIDEO, 1.0)  # 3000 ticks later, past the wrap
    assert abs(after - (1.0 + 1 / 30)) < 1e-9
    # A reordered (older) frame is a small step back, not a wrap forwards.
    assert abs(clock.media_time(start + 1000, VIDEO, 1.0) - (1.0 + 1000 / 90_000)) < 1e-9


def test_a_restarted_sender_is_mapped_afresh() -> None:
    clock = RtpClock()
    clock.media_time(10_000, VIDEO, 1.0)
    # New random RTP start: the RTP time jumps by hours; the arrival clock decides.
    assert clock.media_time(3_000_000_000, VIDEO, 1.5) == 1.5


def test_a_keyframe_request_names_the_media_source_not_its_retransmissions() -> None:
    """aiortc lists every SSRC it saw, RTX ones too; a PLI must name the media stream the
    packets come on now (a reconnect or a new encoder brings a new one)."""
    transport = RTCDtlsTransport(
        RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
    )
    receiver = RTCRtpReceiver("video", transport)
    rtx: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    seen: dict[int, datetime.datetime] = receiver._RTCRtpReceiver__active_ssrc  # type: ignore[attr-defined]
    assert _media_ssrc(receiver) is None
    start = aiortc_clock.current_datetime() - datetime.timedelta(seconds=2)  # aiortc keeps 10 s
    seen[111] = start  # the first media stream
    seen[222] = start + datetime.timedelta(seconds=1)  # its retransmissions
    rtx[222] = 111
    assert _media_ssrc(receiver) == 111
    seen[333] = start + datetime.timedelta(seconds=0.5)  # a new encoder's stream
    assert _media_ssrc(receiver) == 333
