"""Pose in a worker process: the same landmarks as in the server, at the lane's priority, and a
worker that dies costs the runs it had, not the next ones."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest

from app.analysis.pipeline import FrameAnalyzer
from app.analysis.pose import PoseAnalyzer, PoseGraphs
from app.analysis.pose_process import PoseProcess, PoseWorkerLost
from app.config import Settings
from app.frames import VideoFrame
from app.priority import ThreadPriority
from app.wiring import pose_runner
from tests.fixtures.clips import Segment, labelled_clip, rgb_clip
from tests.support.processes import spawned_workers, wait_gone


def test_the_worker_finds_what_a_graph_here_finds() -> None:
    frames = rgb_clip(
        5, [Segment("frontal", 0.6), Segment("rotated", 0.6, roll_deg=18.0), Segment("empty", 0.4)]
    )
    here, there = PoseGraphs(1), PoseProcess(1)
    try:
        expected = [here.landmarks(f) for f in frames]
        got = [there.landmarks(f) for f in frames]
    finally:
        here.close()
        there.close()

    assert [e is None for e in expected] == [g is None for g in got]
    assert expected[0] is not None and expected[-1] is None  # a body, then nobody
    for e, g in zip(expected, got, strict=True):
        if e is not None and g is not None:
            assert np.array_equal(e.points, g.points)
            assert np.array_equal(e.visibility, g.visibility)


def test_a_session_on_the_worker_measures_its_posture() -> None:
    settings = Settings()
    upright, tilted = rgb_clip(5, [Segment("frontal", 0.2), Segment("rotated", 0.2, roll_deg=18)])
    runner = PoseProcess(1)
    try:
        analyzer = PoseAnalyzer(settings, graphs=runner)
        a, b = analyzer.analyze(upright, 0.0), analyzer.analyze(tilted, 0.2)
    finally:
        runner.close()
    assert a.found and b.found
    assert a.shoulder_tilt_deg is not None and b.shoulder_tilt_deg is not None
    # the photo rotated by 18 degrees turns the shoulder line (Pose measures ~24 on this crop)
    assert 10 < abs(b.shoulder_tilt_deg - a.shoulder_tilt_deg) < 30
    assert a.landmarks is not None and a.landmarks.shape == (33, 2)
    height, width = upright.shape[:2]
    assert 0 < a.landmarks[:, 0].mean() < width and 0 < a.landmarks[:, 1].mean() < height


def test_the_worker_and_its_graph_threads_run_idle() -> None:
    runner = PoseProcess(1, ThreadPriority(idle=True))
    try:
        assert runner.landmarks(np.zeros((240, 320, 3), np.uint8)) is None
        (worker,) = spawned_workers(os.getpid())
        policies = {t.id: os.sched_getscheduler(t.id) for t in worker.threads()}
    finally:
        runner.close()
    assert len(policies) > 2, "the graph started no thread"  # main, watcher, graph threads
    assert set(policies.values()) == {os.SCHED_IDLE}, policies
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this process keeps its own


def test_a_killed_worker_fails_its_run_and_the_next_run_gets_a_new_one() -> None:
    frame = rgb_clip(5, [Segment("frontal", 0.2)])[0]
    runner = PoseProcess(1)
    try:
        assert runner.landmarks(frame) is not None
        (first,) = spawned_workers(os.getpid())
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        with pytest.raises(PoseWorkerLost):
            runner.landmarks(frame)
        again = runner.landmarks(frame)
        (second,) = spawned_workers(os.getpid())
    finally:
        runner.close()
    assert again is not None
    assert second.pid != first.pid and runner.restarts == 1
    wait_gone(second)  # closing ends the worker


def test_a_hung_worker_times_out_and_is_replaced() -> None:
    frame = rgb_clip(5, [Segment("frontal", 0.2)])[0]
    runner = PoseProcess(1, timeout_s=2.0)
    try:
        assert runner.landmarks(frame) is not None
        (hung,) = spawned_workers(os.getpid())
        hung.send_signal(signal.SIGSTOP)  # as good as stuck in native code
        started = time.monotonic()
        with pytest.raises(PoseWorkerLost, match="within 2 s"):
            runner.landmarks(frame)
        waited = time.monotonic() - started
        wait_gone(hung)  # replaced: killed, though stopped
        assert runner.landmarks(frame) is not None
    finally:
        runner.close()
    assert 2.0 <= waited < 10 and runner.restarts == 1


def test_close_does_not_wait_for_a_hung_worker() -> None:
    runner = PoseProcess(1)
    assert runner.landmarks(np.zeros((48, 64, 3), np.uint8)) is None
    (hung,) = spawned_workers(os.getpid())
    hung.send_signal(signal.SIGSTOP)
    started = time.monotonic()
    runner.close()
    assert time.monotonic() - started < 15
    wait_gone(hung)


def test_a_lost_run_costs_warm_up_and_inline_analysis_nothing() -> None:
    """Uploads run Pose inline, and a session's analyser is warmed up before its first frame:
    neither may fail because the worker died, and warm-up does not wait for the worker (a
    stopped one here; a starved one under SCHED_IDLE on a busy machine)."""
    image = np.asarray(labelled_clip(fps=5, segments=[Segment("frontal", 0.2)])[0].image)
    runner = PoseProcess(1)
    analyzer = FrameAnalyzer(Settings(), pose_graphs=runner)
    try:
        analyzer.warm_up()  # starts the worker, waits for nothing
        (first,) = spawned_workers(os.getpid())
        first.send_signal(signal.SIGSTOP)
        analyzer.warm_up()  # returns although the worker cannot answer
        first.send_signal(signal.SIGKILL)
        wait_gone(first)
        lost = analyzer.analyze(VideoFrame(0, 0.0, image, time.monotonic()), pose_every=1)
        found = analyzer.analyze(VideoFrame(1, 0.2, image, time.monotonic()), pose_every=1)
        (second,) = spawned_workers(os.getpid())
        second.send_signal(signal.SIGKILL)
        wait_gone(second)
        kept = analyzer.analyze(VideoFrame(2, 0.4, image, time.monotonic()), pose_every=1)
    finally:
        analyzer.close()
        runner.close()
    assert lost.face.found and not lost.pose.found  # the run was lost, the frame was not
    assert found.pose.found and found.face.found
    assert kept.face.found and kept.pose is found.pose  # the last result stands
    assert runner.restarts == 2


def _runner_kind(queue: Any) -> None:
    runner = pose_runner(Settings(_env_file=None))  # type: ignore[call-arg]
    queue.put(type(runner).__name__)
    runner.close()


def test_a_daemonic_process_runs_pose_itself() -> None:
    """A Celery prefork child is daemonic and may not start a worker of its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_runner_kind, args=(queue,), daemon=True)
    child.start()
    try:
        kind = queue.get(timeout=60)
    finally:
        child.join(30)
    assert kind == "PoseGraphs"
    runner = pose_runner(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        assert isinstance(runner, PoseProcess)  # here, not daemonic: the worker
    finally:
        runner.close()


def test_closed_runner_refuses_work() -> None:
    runner = PoseProcess(1)
    runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        runner.landmarks(np.zeros((48, 64, 3), np.uint8))


def test_a_worker_does_not_outlive_a_killed_server() -> None:
    """SIGKILL gives the server no shutdown: its worker notices and ends by itself."""
    script = textwrap.dedent(
        """
        import sys, time
        import numpy as np
        from app.analysis.pose_process import PoseProcess
        runner = PoseProcess(1)
        runner.landmarks(np.zeros((48, 64, 3), np.uint8))
        print("ready", flush=True)
        time.sleep(600)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    ) as server:
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            (worker,) = spawned_workers(server.pid)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
            started = time.monotonic()
            wait_gone(worker, timeout=10)
            assert time.monotonic() - started < 5
        finally:
            if server.poll() is None:
                server.kill()
