"""Analysers reused across sessions: a reused one must behave exactly like a new one."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.analysis.pipeline import AnalyzerPool, FrameAnalyzer
from app.config import Settings
from app.frames import FrameAnalysis, VideoFrame
from tests.fixtures.clips import LabelledFrame, Segment, labelled_clip

# Session A ends on a big, rolled astronaut; session B starts on a smaller, upright Grace
# Hopper. A tracker that remembered A would start B from A's face box and pose (the hard-cut
# carry-over noted in test_pipeline_clips.py), and a kept lean baseline would read B's
# narrower shoulders as leaning back.
SESSION_A = [Segment("rotated", 1.0, roll_deg=25, scale=1.3)]
SESSION_B = [Segment("frontal", 3.0, scale=0.8, source="grace_hopper"), Segment("empty", 0.4)]
# Pose's visibility smoothing is the one state a blank frame does not clear (see
# PoseAnalyzer.forget): which wrists count as seen may differ for about the first second.
VISIBILITY_SETTLE_FRAMES = 23  # 1.5 s at 15 fps


def _feed(analyzer: FrameAnalyzer, clip: list[LabelledFrame]) -> list[FrameAnalysis]:
    return [
        analyzer.analyze(VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic()))
        for f in clip
    ]


def _tracking(a: FrameAnalysis) -> tuple[object, ...]:
    """What the face and body trackers found, and what the session state made of it."""

    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return (
        a.face.found,
        r(a.face.roll_deg),
        r(a.face.yaw_deg),
        a.face.bbox,
        a.pose.found,
        r(a.pose.shoulder_tilt_deg),
        None if a.pose.lean is None else round(a.pose.lean, 2),
        a.sway is None,
    )


def test_a_reused_analyser_gives_what_a_new_one_gives(settings: Settings) -> None:
    clip_b = labelled_clip(15.0, SESSION_B)
    fresh = FrameAnalyzer(settings)
    try:
        fresh.warm_up()
        expected = _feed(fresh, clip_b)
    finally:
        fresh.close()

    pool = AnalyzerPool(settings, max_idle=1)
    try:
        first = pool.acquire()
        first.warm_up()
        seen_a = _feed(first._leased(), labelled_clip(15.0, SESSION_A))
        assert seen_a[-1].face.found and seen_a[-1].pose.found  # A ends with someone tracked
        first.close()
        assert pool.idle == 1

        second = pool.acquire()
        assert pool.built == 1 and pool.idle == 0  # the same graphs, not new ones
        # No warm_up here: its blank frame would hide a reset that forgot to end tracking.
        got = [
            second.analyze(VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic()))
            for f in clip_b
        ]
        second.close()
    finally:
        pool.close()
    # The first frame above all: nothing of A's face, body or baseline carried over.
    assert [_tracking(a) for a in got] == [_tracking(a) for a in expected]
    settled = slice(VISIBILITY_SETTLE_FRAMES, None)
    hands = [a.gesture.hands_visible for a in got[settled]]
    assert hands == [a.gesture.hands_visible for a in expected[settled]]


def test_the_pool_is_bounded_and_closed_leases_are_spent(settings: Settings) -> None:
    pool = AnalyzerPool(settings, max_idle=1)
    leases = [pool.acquire(), pool.acquire()]
    assert pool.built == 2
    for lease in leases:
        lease.close()
        lease.close()  # idempotent: handed back once
    assert pool.idle == 1  # the second one was closed, not kept
    with pytest.raises(RuntimeError):
        leases[0].analyze(VideoFrame(0, 0.0, np.zeros((48, 64, 3), np.uint8), 0.0))
    pool.close()
    assert pool.idle == 0
    with pytest.raises(RuntimeError):
        pool.acquire()
