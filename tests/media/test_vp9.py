"""Reading the headers of VP9 frames a client encoded, against libvpx's own output."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.media.decode import FrameRejected
from app.media.vp9 import Vp9Decoder, read_vp9_header
from tests.fixtures.clips import encode_vp9, moving_face_frames


@pytest.mark.parametrize("size", [(640, 480), (321, 243), (1280, 720)])
def test_keyframes_give_their_size_and_other_frames_none(size: tuple[int, int]) -> None:
    chunks = encode_vp9(moving_face_frames(12, size=size), keyframe_every=5)
    headers = [read_vp9_header(c) for c in chunks]
    assert [h.keyframe for h in headers] == [i % 5 == 0 for i in range(12)]
    assert {(h.width, h.height) for h in headers if h.keyframe} == {size}
    assert all(h.width is None for h in headers if not h.keyframe)


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
