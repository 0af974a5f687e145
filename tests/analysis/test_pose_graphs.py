"""Shared static-image Pose graphs: any session on any graph, in any order, gets what it
would get on a graph of its own; concurrent sessions never use one graph at once."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest

from app.analysis.pipeline import FrameAnalyzer
from app.analysis.pose import PoseAnalyzer, PoseGraphs
from app.config import Settings
from app.frames import PoseObservation, VideoFrame
from tests.fixtures.clips import Segment, labelled_clip, rgb_clip


def _same(a: PoseObservation, b: PoseObservation) -> bool:
    if a.found != b.found:
        return False
    if not a.found:
        return True
    assert a.landmarks is not None and b.landmarks is not None
    return (
        np.array_equal(a.landmarks, b.landmarks)
        and a.shoulder_tilt_deg == b.shoulder_tilt_deg
        and a.lean == b.lean
    )


def test_interleaved_sessions_on_one_graph_get_what_they_get_alone() -> None:
    settings = Settings()
    upright = rgb_clip(5, [Segment("frontal", 1.2), Segment("empty", 0.4)])
    tilted = rgb_clip(
        5, [Segment("rotated", 1.2, roll_deg=18.0), Segment("frontal", 0.4, scale=1.3)]
    )

    def alone(frames: list[np.ndarray]) -> list[PoseObservation]:
        graphs = PoseGraphs(1)
        analyzer = PoseAnalyzer(settings, graphs=graphs)
        try:
            return [analyzer.analyze(f, i / 5) for i, f in enumerate(frames)]
        finally:
            graphs.close()

    expected_a, expected_b = alone(upright), alone(tilted)

    shared = PoseGraphs(1)
    a, b = PoseAnalyzer(settings, graphs=shared), PoseAnalyzer(settings, graphs=shared)
    got_a, got_b = [], []
    try:
        for i, (fa, fb) in enumerate(zip(upright, tilted, strict=True)):
            got_a.append(a.analyze(fa, i / 5))
            got_b.append(b.analyze(fb, i / 5))
    finally:
        shared.close()

    assert shared.built == 1
    assert all(_same(x, y) for x, y in zip(got_a, expected_a, strict=True))
    assert all(_same(x, y) for x, y in zip(got_b, expected_b, strict=True))
    # and the two sessions are told apart: different bodies, each its own lean baseline
    assert got_a[0].found and got_b[0].found
    assert got_a[0].shoulder_tilt_deg is not None and got_b[0].shoulder_tilt_deg is not None
    assert abs(got_a[0].shoulder_tilt_deg - got_b[0].shoulder_tilt_deg) > 10
    assert not got_a[-1].found  # session A's empty frames
    assert got_b[-1].lean is not None and got_b[-1].lean > 1.15  # B stepped nearer, A did not


def test_concurrent_sessions_wait_for_a_graph_instead_of_sharing_one() -> None:
    settings = Settings()
    frames = labelled_clip(fps=10, segments=[Segment("frontal", 1.0)])
    graphs = PoseGraphs(1)
    in_use, most_in_use, lock = 0, 0, threading.Lock()
    original = graphs.lease

    def counting_lease():  # type: ignore[no-untyped-def]
        nonlocal in_use, most_in_use
        with original() as graph:
            with lock:
                in_use += 1
                most_in_use = max(most_in_use, in_use)
            try:
                yield graph
            finally:
                with lock:
                    in_use -= 1

    graphs.lease = contextmanager(counting_lease)  # type: ignore[method-assign]
    results: dict[int, list[bool]] = {}

    def session(n: int) -> None:
        analyzer = FrameAnalyzer(settings, pose_graphs=graphs)
        try:
            results[n] = [
                analyzer.analyze(
                    VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic()), pose_every=1
                ).pose.found
                for f in frames
            ]
        finally:
            analyzer.close()

    threads = [threading.Thread(target=session, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    graphs.close()

    assert sorted(results) == [0, 1, 2]
    assert all(all(found) for found in results.values())
    assert graphs.built == 1 and most_in_use == 1


def test_a_graph_leased_at_close_is_closed_when_it_comes_back() -> None:
    graphs = PoseGraphs(2)
    blank = np.zeros((120, 160, 3), np.uint8)
    with graphs.lease() as graph:
        graph.process(blank)
        graphs.close()
        graph.process(blank)  # still usable while leased
    with pytest.raises(ValueError, match="None"):  # MediaPipe: the graph was closed
        graph.process(blank)
    with pytest.raises(RuntimeError, match="closed"), graphs.lease():
        pass
