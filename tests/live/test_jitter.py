"""The video jitter buffer hands a frame on at its marked last packet, and falls back to aiortc's
rule (the next frame's first packet) when the marker never comes."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from app.live.jitter import LossMarkingJitterBuffer, MarkerJitterBuffer, after_loss


def packet(seq: int, timestamp: int, marker: bool = False, data: bytes | None = None) -> RtpPacket:
    p = RtpPacket(sequence_number=seq, timestamp=timestamp, marker=int(marker))
    p._data = data if data is not None else f"{seq}.".encode()  # type: ignore[attr-defined]
    return p


def feed(buffer: JitterBuffer, packets: list[RtpPacket]) -> list[tuple[int, JitterFrame | None]]:
    """(sequence number, the frame that packet completed) for each packet, in order."""
    return [(p.sequence_number, buffer.add(p)[1]) for p in packets]


def frames_of(results: list[tuple[int, JitterFrame | None]]) -> list[tuple[int, int, bytes]]:
    """(the packet that released it, timestamp, data) per frame handed on."""
    return [(seq, f.timestamp, f.data) for seq, f in results if f is not None]


# three frames of three packets, 6000 ticks apart (15 fps at 90 kHz), the last one marked
STREAM = [
    packet(100 + 3 * k + i, 1000 + 6000 * k, marker=i == 2) for k in range(3) for i in range(3)
]


def test_a_frame_goes_on_at_its_marked_last_packet_not_one_frame_later() -> None:
    ours = frames_of(feed(MarkerJitterBuffer(capacity=512, is_video=True), STREAM))
    aiortcs = frames_of(feed(JitterBuffer(capacity=512, is_video=True), STREAM))

    assert ours == [
        (102, 1000, b"100.101.102."),
        (105, 7000, b"103.104.105."),
        (108, 13000, b"106.107.108."),
    ]
    # aiortc's own: each frame only once the next one's first packet is in; the last never
    assert aiortcs == [(103, 1000, b"100.101.102."), (106, 7000, b"103.104.105.")]


def test_a_reordered_frame_goes_on_when_its_missing_middle_packet_arrives() -> None:
    reordered = [STREAM[0], STREAM[2], STREAM[1], *STREAM[3:6]]
    frames = frames_of(feed(MarkerJitterBuffer(capacity=512, is_video=True), reordered))
    assert frames[0] == (101, 1000, b"100.101.102.")
    assert frames[1] == (105, 7000, b"103.104.105.")


def test_a_lost_marker_still_releases_the_frame_when_the_next_one_starts() -> None:
    unmarked = [
        packet(200, 5, data=b"a"),
        packet(201, 5, data=b"b"),  # its marker lost: the next frame's packet releases it
        packet(202, 6005, marker=True, data=b"c"),
        packet(203, 12005, data=b"d"),
    ]
    frames = frames_of(feed(MarkerJitterBuffer(capacity=512, is_video=True), unmarked))
    # One frame a packet: the marked frame after it follows with the next packet.
    assert frames == [(202, 5, b"ab"), (203, 6005, b"c")]


def test_audio_keeps_aiortcs_buffer_where_the_marker_starts_a_talkspurt() -> None:
    talk = [packet(300 + i, 960 * i, marker=i == 0) for i in range(8)]
    ours = frames_of(feed(MarkerJitterBuffer(capacity=16, prefetch=4), talk))
    aiortcs = frames_of(feed(JitterBuffer(capacity=16, prefetch=4), talk))
    assert ours == aiortcs and len(ours) == 4


def test_padding_after_a_marked_frame_never_becomes_an_empty_frame() -> None:
    padded = [
        *STREAM[:3],
        packet(103, 1000, data=b""),  # padding-only, the released frame's timestamp
        packet(104, 1000, data=b""),
        packet(105, 7000, data=b"x"),
        packet(106, 7000, data=b""),  # padding inside a frame adds nothing
        packet(107, 7000, marker=True, data=b"y"),
        packet(108, 13000, data=b""),  # padding with a timestamp of its own
        packet(109, 19000, marker=True, data=b"z"),
    ]
    frames = frames_of(feed(MarkerJitterBuffer(capacity=512, is_video=True), padded))
    assert frames == [(102, 1000, b"100.101.102."), (107, 7000, b"xy"), (109, 19000, b"z")]


def test_the_first_frame_after_dropped_packets_is_marked() -> None:
    """A frame whose packet never comes is dropped when the buffer overflows (aiortc asks for
    a keyframe then); the frame handed on next says so, for a receiver that records the
    client's VP9 as it came (its reference went with the dropped one)."""
    for kind in (MarkerJitterBuffer, LossMarkingJitterBuffer):
        buffer = kind(capacity=16, is_video=True)
        # frame 0 complete; frame 1 loses its middle packet; frames 2.. arrive complete
        stream = [p for p in STREAM[:6] if p.sequence_number != 104]
        stream += [
            packet(109 + 3 * k + i, 19000 + 6000 * k, marker=i == 2)
            for k in range(6)
            for i in range(3)
        ]
        flags = [(f.timestamp, after_loss(f)) for _, f in feed(buffer, stream) if f is not None]
        assert flags[0] == (1000, False), kind
        assert 7000 not in [t for t, _ in flags], kind  # never handed on broken
        lost = [t for t, marked in flags if marked]
        assert len(lost) == 1 and lost[0] > 7000, (kind, flags)
        assert all(not marked for t, marked in flags if t > lost[0]), (kind, flags)


def test_an_empty_frame_after_dropped_packets_passes_the_mark_on() -> None:
    """A frame that carries nothing after depayloading (a higher VP9 spatial layer alone) goes
    nowhere, so the first frame with data after the drop still says packets were lost."""
    for kind in (MarkerJitterBuffer, LossMarkingJitterBuffer):
        stream = [p for p in STREAM[:6] if p.sequence_number != 104]
        stream += [
            packet(109 + 3 * k + i, 19000 + 6000 * k, marker=i == 2)
            for k in range(6)
            for i in range(3)
        ]
        marked = [
            f.timestamp
            for _, f in feed(kind(capacity=16, is_video=True), stream)
            if f is not None and after_loss(f)
        ]
        # the same stream with that first marked frame's packets empty
        emptied = [
            packet(p.sequence_number, p.timestamp, bool(p.marker), b"")
            if p.timestamp == marked[0]
            else p
            for p in stream
        ]
        frames = [f for _, f in feed(kind(capacity=16, is_video=True), emptied) if f is not None]
        with_data = [f for f in frames if f.data and f.timestamp > 7000]
        assert with_data[0].timestamp == marked[0] + 6000, kind
        assert after_loss(with_data[0]), kind
