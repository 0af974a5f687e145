"""Phone videos: frames stored turned, with a display rotation. The upload is analysed and
recorded the way it is shown, so it reads the same as the same clip stored upright."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.config import Settings
from app.media.images import quarter_turns, upright
from app.upload.analyze import ScanResult, scan_video
from app.wiring import default_hooks, upload_stages
from tests.fixtures.clips import Segment
from tests.fixtures.videos import write_mp4

SEGMENTS = (Segment("frontal", 2.0), Segment("rotated", 2.0, roll_deg=22.0))


def test_upright_turns_by_the_display_rotation() -> None:
    picture = np.arange(6, dtype=np.uint8).reshape(2, 3)  # [[0 1 2] [3 4 5]]
    assert np.array_equal(upright(picture, 0), picture)
    # 90 counter-clockwise: the right-hand column becomes the top row
    assert upright(picture, 90).tolist() == [[2, 5], [1, 4], [0, 3]]
    assert upright(picture, -90).tolist() == [[3, 0], [4, 1], [5, 2]]
    assert upright(picture, 180).tolist() == [[5, 4, 3], [2, 1, 0]]
    assert upright(picture, 270).tolist() == upright(picture, -90).tolist()
    assert [quarter_turns(a) for a in (0, 89.6, -90, 180, -180, 360)] == [0, 1, 3, 2, 2, 0]


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    folder = tmp_path_factory.mktemp("rotation")
    settings = Settings(data_dir=folder / "data", _env_file=None)  # type: ignore[call-arg]
    hooks = default_hooks(settings)
    stages = upload_stages(hooks)

    def run(display_rotation: int) -> tuple[ScanResult, Path]:
        source = write_mp4(
            folder / f"clip{display_rotation}.mp4",
            SEGMENTS,
            audio=False,
            display_rotation=display_rotation,
        )
        recording = folder / f"recording{display_rotation}.webm"
        result = scan_video(source, settings, stages, duration_hint_s=4.0, recording_path=recording)
        return result, recording

    yield run
    import asyncio

    for close in hooks.on_shutdown:
        asyncio.run(close())


def _rolls(result: ScanResult, start: float, end: float) -> list[float]:
    return [
        a.face.roll_deg
        for a in result.analyses
        if start <= a.t < end and a.face.found and a.face.roll_deg is not None
    ]


def _first_picture(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY).astype(float)


@pytest.mark.parametrize("display_rotation", [90, -90, 180])
def test_a_phone_video_reads_as_the_same_clip_stored_upright(
    scan: object, display_rotation: int
) -> None:
    plain, plain_recording = scan(0)  # type: ignore[operator]
    turned, turned_recording = scan(display_rotation)  # type: ignore[operator]

    frontal = [a for a in turned.analyses if a.t < 2.0]
    assert frontal and all(a.face.found for a in frontal)
    for start, end in ((0.3, 2.0), (2.3, 4.0)):  # frontal, then the head rolled 22 degrees
        expected, got = _rolls(plain, start, end), _rolls(turned, start, end)
        assert got, (start, end)
        assert abs(statistics.median(got) - statistics.median(expected)) < 3
    assert any(c.cue == "head_tilt" for c in turned.transitions)

    assert turned.recording is not None and plain.recording is not None
    assert (turned.recording.width, turned.recording.height) == (640, 480)
    a, b = _first_picture(plain_recording), _first_picture(turned_recording)
    assert a.shape == b.shape and np.abs(a - b).mean() < 6  # the same picture, not turned
