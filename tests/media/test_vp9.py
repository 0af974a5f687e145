"""Reading the headers of VP9 frames a client encoded, against libvpx's own output."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.config import Settings
from app.media.decode import FrameRejected
from app.media.vp9 import Vp9Decoder, parse_vp9_rtp, read_vp9_header
from tests.fixtures.clips import encode_vp9, moving_face_frames
from tests.support.vp9_rtp import packetize


@pytest.mark.parametrize("size", [(640, 480), (321, 243), (1280, 720)])
def test_keyframes_give_their_size_and_other_frames_none(size: tuple[int, int]) -> None:
    chunks = encode_vp9(moving_face_frames(12, size=size), keyframe_every=5)
    headers = [read_vp9_header(c) for c in chunks]
    assert [h.keyframe for h in headers] == [i % 5 == 0 for i in range(12)]
    assert {(h.width, h.height) for h in headers if h.keyframe} == {size}
    assert all(h.width is None for h in headers if not h.keyframe)


def test_upper_temporal_layer_frames_are_droppable_and_nothing_refers_to_them() -> None:
    """An error-resilient L1T2 stream (as WebRTC's VP9 encoder sends for `scalabilityMode`
    "L1T2"): every other frame refreshes no reference slot. Decoding the stream without them
    gives, for the other frames, exactly the pictures decoding all of it gives. Neither a plain
    stream nor an L1T2 one without error resilience (its frames hand motion vectors and
    probabilities on to the next) has any."""
    images = moving_face_frames(24)
    for layers, resilient in ((1, False), (1, True), (2, False)):
        chunks = encode_vp9(
            images, keyframe_every=10, temporal_layers=layers, error_resilient=resilient
        )
        assert not any(read_vp9_header(c).droppable for c in chunks), (layers, resilient)

    chunks = encode_vp9(images, keyframe_every=10, temporal_layers=2, error_resilient=True)
    headers = [read_vp9_header(c) for c in chunks]
    droppable = [h.droppable for h in headers]
    assert not any(d for d, h in zip(droppable, headers, strict=True) if h.keyframe)
    assert 10 <= sum(droppable) <= 12
    assert all(not (a and b) for a, b in itertools.pairwise(droppable))

    every, kept = Vp9Decoder(Settings()), Vp9Decoder(Settings())
    for chunk, header in zip(chunks, headers, strict=True):
        whole = every.decode(chunk, picture=True)
        if header.droppable:
            continue
        assert whole is not None
        assert np.array_equal(kept.decode(chunk, picture=True), whole)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x00garbage", "frame marker"),
        (bytes([0b1010_0010]) + b"\x49\x83\x42" + bytes(8), "profile 1"),
        (bytes([0b1000_0010]) + b"\x00\x00\x00" + bytes(8), "sync code"),
    ],
)
def test_what_is_not_profile_0_vp9_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FrameRejected) as refused:
        read_vp9_header(data)
    assert refused.value.code == "bad_frame" and reason in refused.value.reason


def test_the_decoder_gives_pictures_in_order_and_refuses_over_the_size_limit() -> None:
    images = moving_face_frames(6)
    chunks = encode_vp9(images, keyframe_every=30)
    decoder = Vp9Decoder(Settings())
    pictures = [decoder.decode(c, picture=i % 2 == 0) for i, c in enumerate(chunks)]
    assert [p is not None for p in pictures] == [True, False] * 3
    for i in (0, 2, 4):
        picture = pictures[i]
        assert picture is not None and picture.shape == images[i].shape
        assert abs(picture.astype(int) - images[i]).mean() < 6  # the same scene, lossy

    small = Vp9Decoder(Settings(max_frame_width=320))
    with pytest.raises(FrameRejected, match="exceeds the size limit"):
        small.decode(chunks[0], picture=True)


def test_rtp_payloads_reassemble_into_the_frames_that_were_sent() -> None:
    chunks = encode_vp9(moving_face_frames(12, 15.0), 15.0, keyframe_every=6)
    for picture_id, chunk in enumerate(chunks, start=32760):  # across the 15-bit wrap
        payloads = packetize(chunk, picture_id % (1 << 15))
        parsed = [parse_vp9_rtp(p) for p in payloads]
        assert b"".join(body for _, body in parsed) == chunk
        assert [d.start for d, _ in parsed] == [True] + [False] * (len(parsed) - 1)
        assert [d.end for d, _ in parsed] == [False] * (len(parsed) - 1) + [True]
        assert {d.picture_id for d, _ in parsed} == {picture_id % (1 << 15)}
        assert {d.spatial_id for d, _ in parsed} == {0}


@pytest.mark.parametrize(
    ("descriptor", "picture_id", "spatial_id"),
    [
        (bytes([0x0C]), None, 0),  # B, E only
        (bytes([0x8C, 0x05]), 5, 0),  # a 7-bit picture ID
        # flexible mode: 15-bit ID, layer indices (SID 1), two reference indices (N on the first)
        (bytes([0xFC, 0x81, 0x02, 0x02, 0x03, 0x04]), 0x102, 1),
        # non-flexible: layer indices then TL0PICIDX; scalability structure with 2 layers'
        # sizes and a picture group of 2 entries (1 and 2 reference indices)
        (
            bytes([0xAE, 0x81, 0x00, 0x00, 0x07, 0x38])
            + bytes(8)
            + bytes([0x02, 0x04, 0x11, 0x08, 0x01, 0x02]),
            0x100,
            0,
        ),
    ],
)
def test_rtp_descriptors_of_every_shape_are_read(
    descriptor: bytes, picture_id: int | None, spatial_id: int
) -> None:
    parsed, body = parse_vp9_rtp(descriptor + b"FRAME")
    assert body == b"FRAME"
    assert (parsed.picture_id, parsed.spatial_id, parsed.start) == (picture_id, spatial_id, True)
    with pytest.raises(ValueError):
        parse_vp9_rtp(descriptor[:-1])  # cut short: the packet is refused, not misread
