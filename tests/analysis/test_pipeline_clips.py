"""The whole per-session analyser over the labelled clip, against its ground truth."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from app.analysis.pipeline import FrameAnalyzer
from app.config import Settings
from app.frames import FrameAnalysis, VideoFrame
from tests.fixtures.clips import LabelledFrame, Segment, labelled_clip

# Tracking mode carries the previous face into the first frame after a hard cut between
# segments (a real camera never jumps 40 degrees between frames), so truth is compared from the
# third frame of each segment on.
SETTLE_FRAMES = 2


def _settled(clip: list[LabelledFrame]) -> list[int]:
    keep, run = [], 0
    for i, frame in enumerate(clip):
        run = run + 1 if i and clip[i - 1].segment == frame.segment else 0
        if run >= SETTLE_FRAMES:
            keep.append(i)
    return keep


def _run(settings: Settings, clip: list[LabelledFrame]) -> list[FrameAnalysis]:
    analyzer = FrameAnalyzer(settings)
    try:
        return [
            analyzer.analyze(VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic()))
            for f in clip
        ]
    finally:
        analyzer.close()


@pytest.fixture(scope="module")
def clip() -> list[LabelledFrame]:
    return labelled_clip(fps=15)


@pytest.fixture(scope="module")
def analysed(clip: list[LabelledFrame]) -> Iterator[list[FrameAnalysis]]:
    yield _run(Settings(), clip)


def test_frontal_frames_have_a_face_with_eye_contact(
    clip: list[LabelledFrame], analysed: list[FrameAnalysis]
) -> None:
    frontal = [i for i in _settled(clip) if clip[i].label == "frontal"]
    assert len(frontal) > 60
    for i in frontal:
        assert analysed[i].face.found, i
        assert analysed[i].face.gaze_on_camera is True, i


def test_roll_within_5_degrees_of_truth_on_rotated_frames(
    clip: list[LabelledFrame], analysed: list[FrameAnalysis]
) -> None:
    rotated = [i for i in _settled(clip) if clip[i].label == "rotated"]
    assert {(clip[i].roll_deg or 0.0) > 0 for i in rotated} == {True, False}  # both directions
    for i in rotated:
        roll, truth = analysed[i].face.roll_deg, clip[i].roll_deg
        assert roll is not None and truth is not None
        assert abs(roll - truth) <= 5.0, (i, roll, truth)


def test_no_face_on_empty_frames(clip: list[LabelledFrame], analysed: list[FrameAnalysis]) -> None:
    empty = [i for i, f in enumerate(clip) if f.label == "empty"]
    assert empty
    assert not any(analysed[i].face.found for i in empty)
    # Pose may be the one reused from the frame before the cut (pose_every), not after that.
    assert not any(analysed[i].pose.found for i in _settled(clip) if i in set(empty))


def test_face_leaving_the_frame_is_lost(
    clip: list[LabelledFrame], analysed: list[FrameAnalysis]
) -> None:
    gone = [i for i, f in enumerate(clip) if f.label == "out_of_frame" and f.face_present is False]
    inside = [i for i, f in enumerate(clip) if f.label == "out_of_frame" and f.face_present]
    assert gone and inside
    assert all(analysed[i].face.found for i in inside[SETTLE_FRAMES:])
    assert not any(analysed[i].face.found for i in gone)


def test_turned_face_reads_as_turned_toward_image_right(
    clip: list[LabelledFrame], analysed: list[FrameAnalysis]
) -> None:
    settled = _settled(clip)
    turned = [analysed[i].face.yaw_deg for i in settled if clip[i].label == "turned"]
    frontal = [
        analysed[i].face.yaw_deg
        for i in settled
        if clip[i].label == "frontal" and clip[i].source == "astronaut"
    ]
    turned_found = [y for y in turned if y is not None]
    assert len(turned_found) >= len(turned) // 2
    assert np.median(turned_found) > np.median([y for y in frontal if y is not None]) + 2.0


def test_pose_every_second_frame_reuses_the_last_pose(clip: list[LabelledFrame]) -> None:
    frames = labelled_clip(fps=15, segments=[Segment("frontal", 0.4)])
    results = _run(Settings(pose_every=2), frames)
    assert all(r.pose.found for r in results)
    for odd, even in zip(results[1::2], results[0::2], strict=False):
        assert odd.pose is even.pose  # reused, not re-run
        assert odd.timings_ms["pose"] < even.timings_ms["pose"]
    assert set(results[0].timings_ms) >= {"resize", "face", "pose"}


def test_cadence_passed_per_frame_takes_effect_at_once() -> None:
    frames = labelled_clip(fps=15, segments=[Segment("frontal", 1.0)])[:12]
    analyzer = FrameAnalyzer(Settings(pose_every=2))
    try:
        cadences = [1, 1, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2]
        results = [
            analyzer.analyze(
                VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic()), pose_every=every
            )
            for f, every in zip(frames, cadences, strict=True)
        ]
    finally:
        analyzer.close()
    ran = [i for i, r in enumerate(results) if i == 0 or r.pose is not results[i - 1].pose]
    # every frame, then one in three from frame 1's Pose, then one in two
    assert ran == [0, 1, 4, 7, 9, 11]


def test_pose_lane_face_now_pose_published_for_later_frames() -> None:
    """`analyze_face` hands out a Pose job only when Pose is due and the lane is free; the
    result shows on the frames analysed after `run_pose`, with its time and its frame's t."""
    frames = labelled_clip(fps=15, segments=[Segment("frontal", 1.0)])[:8]
    analyzer = FrameAnalyzer(Settings(pose_every=2))

    def video(i: int) -> VideoFrame:
        f = frames[i]
        return VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic())

    try:
        first, work = analyzer.analyze_face(video(0))
        assert work is not None and work.t == frames[0].t  # the first frame always runs Pose
        assert first.face.found and not first.pose.found and first.pose_t is None
        # the lane is still busy with frame 0: frames 1 and 2 get no job, and say no body yet
        for i in (1, 2):
            busy, none = analyzer.analyze_face(video(i), pose_lane_free=False)
            assert none is None and busy.pose_t is None and busy.timings_ms["pose"] == 0.0
        analyzer.run_pose(work)
        # frame 3: Pose is overdue and the lane free again; frame 0's result shows now
        third, again = analyzer.analyze_face(video(3))
        assert third.pose.found and third.pose_t == frames[0].t
        assert third.timings_ms["pose"] > 0.0
        assert again is not None and again.t == frames[3].t
        fourth, none = analyzer.analyze_face(video(4))
        assert none is None  # due every 2nd frame, counted from frame 3's start
        assert fourth.pose is third.pose and fourth.timings_ms["pose"] == 0.0
        analyzer.run_pose(again)
        fifth, _ = analyzer.analyze_face(video(5))
        assert fifth.pose_t == frames[3].t and fifth.pose is not third.pose
    finally:
        analyzer.close()


def test_downscaled_analysis_reports_in_received_pixels() -> None:
    frame = labelled_clip(fps=1, segments=[Segment("frontal", 1)])[0]
    big = np.ascontiguousarray(np.kron(np.asarray(frame.image), np.ones((2, 2, 1), np.uint8)))
    full = _run(Settings(analysis_max_side=1280), [frame])[0].face
    small = _run(
        Settings(analysis_max_side=640),
        [LabelledFrame(0, 0.0, big, "frontal", "astronaut", True, None, True)],
    )[0]
    assert (small.width, small.height) == (1280, 960)
    assert full.bbox is not None and small.face.bbox is not None
    assert small.face.bbox[2] == pytest.approx(2 * full.bbox[2], rel=0.08)
    assert small.face.landmarks is not None and full.landmarks is not None
    assert np.abs(small.face.landmarks - 2 * full.landmarks).mean() < 4.0


def test_closed_analyzer_refuses_frames() -> None:
    analyzer = FrameAnalyzer(Settings())
    analyzer.close()
    analyzer.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        analyzer.analyze(VideoFrame(0, 0.0, np.zeros((48, 64, 3), np.uint8), 0.0))
