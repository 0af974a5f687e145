"""Face analysis in worker processes: what a graph here finds, each session on its own graph
(its tracked face stays its own), spread over the workers, and a worker that dies or hangs
costs the call it had, not the session."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from app.analysis.face import FaceAnalyzer
from app.analysis.face_process import FaceProcesses, FaceWorkerLost, RemoteFaceAnalyzer
from app.analysis.pipeline import FrameAnalyzer
from app.config import Settings
from app.frames import FaceObservation, VideoFrame
from tests.fixtures.clips import covered_camera_frames, moving_face_frames
from tests.fixtures.gaze_photos import moving_photo_frames
from tests.support.processes import spawned_workers, wait_gone


def _rgb(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]


def _same(a: FaceObservation, b: FaceObservation) -> bool:
    if a.found != b.found or a.gaze_direction != b.gaze_direction:
        return False
    if not a.found:  # what the person segmentation saw instead (app/analysis/person.py)
        return a.person_share == b.person_share
    assert a.landmarks is not None and b.landmarks is not None
    return bool(np.allclose(a.landmarks, b.landmarks, atol=1e-6)) and a.bbox == b.bbox


def test_a_worker_finds_what_a_graph_here_finds_frame_by_frame() -> None:
    """The moving, noisy presenter (tracking mode: each frame's result depends on the ones
    before), then an empty frame, then the presenter again. The worker's graphs share one
    person segmentation: on the empty frame it sees nobody, as a graph here does."""
    settings = Settings()
    frames = _rgb(moving_face_frames(20, seed=3))
    frames[12] = np.zeros_like(frames[12])
    here, workers = FaceAnalyzer(settings), FaceProcesses(settings, 1)
    there = workers.lease()
    try:
        expected = [here.analyze(f) for f in frames]
        got = [there.analyze(f) for f in frames]
    finally:
        here.close()
        there.close()
        workers.close()
    assert [e.found for e in expected] == [i != 12 for i in range(20)]
    assert expected[12].person_share == 0.0 and got[12].person_share == 0.0
    mismatches = [i for i, (e, g) in enumerate(zip(expected, got, strict=True)) if not _same(e, g)]
    assert not mismatches, mismatches


def test_two_sessions_on_one_worker_share_its_segmentation_as_if_each_had_its_own() -> None:
    """Two sessions' graphs on one worker, their frames interleaved, each losing the face on
    other frames (a blank frame, a dark noisy one, a presenter bowed under a cap's brim: the
    real photo mkr_studio1): the one person segmentation the worker's graphs share answers
    each lost frame as a session's own segmentation here does."""
    settings = Settings()
    clips = [_rgb(moving_face_frames(10, seed=s)) for s in (4, 5)]
    clips[1] = [np.ascontiguousarray(f[:, ::-1]) for f in clips[1]]  # another presenter's pose
    clips[0][3] = np.zeros_like(clips[0][3])
    clips[0][7] = _rgb(moving_photo_frames("mkr_studio1", 1, 0, seed=7))[0]
    clips[1][4] = _rgb(covered_camera_frames(1, seed=6))[0]
    clips[1][6] = np.zeros_like(clips[1][6])
    expected = []
    for clip in clips:
        graph = FaceAnalyzer(settings)  # with a segmentation of its own
        expected.append([graph.analyze(f) for f in clip])
        graph.close()
    workers = FaceProcesses(settings, 1)
    leases = [workers.lease() for _ in clips]
    got: list[list[FaceObservation]] = [[], []]
    try:
        assert workers.graphs_per_worker() == [2]
        for i in range(10):
            for k, lease in enumerate(leases):
                got[k].append(lease.analyze(clips[k][i]))
    finally:
        for lease in leases:
            lease.close()
        workers.close()
    assert [i for i, o in enumerate(expected[0]) if not o.found] == [3, 7]
    assert expected[0][7].person_share is not None and expected[0][7].person_share > 0.5
    assert [i for i, o in enumerate(expected[1]) if not o.found] == [4, 6]
    for k in range(2):
        pairs = enumerate(zip(expected[k], got[k], strict=True))
        mismatches = [i for i, (e, g) in pairs if not _same(e, g)]
        assert not mismatches, (k, mismatches)


def test_sessions_spread_over_the_workers_and_keep_their_own_tracked_face() -> None:
    """Two sessions analysed at once from two threads, on two workers; a third session's graph
    goes where fewer are. Each session's results are those of a graph of its own."""
    settings = Settings()
    clips = [_rgb(moving_face_frames(12, seed=s)) for s in (1, 2, 3)]
    clips[1] = [np.ascontiguousarray(f[:, ::-1]) for f in clips[1]]  # another presenter's pose
    expected = []
    for clip in clips:
        graph = FaceAnalyzer(settings)
        expected.append([graph.analyze(f) for f in clip])
        graph.close()

    workers = FaceProcesses(settings, 2)
    leases = [workers.lease() for _ in range(2)]
    assert workers.graphs_per_worker() == [1, 1]
    got: list[list[FaceObservation]] = [[], [], []]

    def run(k: int) -> None:
        got[k] = [leases[k].analyze(f) for f in clips[k]]

    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        leases[0].close()
        assert workers.graphs_per_worker() == [0, 1]
        leases.append(workers.lease())  # goes to the emptier worker
        assert workers.graphs_per_worker() == [1, 1]
        run(2)
        assert workers.started == 2
    finally:
        for lease in leases:
            lease.close()
        workers.close()
    for k in range(3):
        assert all(o.found for o in got[k]), k
        assert all(_same(e, g) for e, g in zip(expected[k], got[k], strict=True)), k


def test_a_killed_worker_fails_the_call_it_had_and_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed while a call waits on it (stopped first, as if stuck in native code, so the
    request sits unread), that call fails with `FaceWorkerLost` at once (no timeout: the
    session loses that frame) and the next goes to a new worker; a worker found dead between
    calls is replaced without failing any. Either way the new graph finds the face afresh."""
    settings = Settings()
    frame = _rgb(moving_face_frames(1))[0]
    workers = FaceProcesses(settings, 1)  # a 30 s timeout: not what ends the call
    lease = workers.lease()
    try:
        assert lease.analyze(frame).found
        (first,) = spawned_workers(os.getpid())
        first.send_signal(signal.SIGSTOP)
        answer: list[BaseException | FaceObservation] = []
        sent = threading.Event()
        worker = workers._workers[0]
        send = worker._send

        def send_and_tell(*args: object) -> None:
            send(*args)  # type: ignore[arg-type]
            sent.set()

        monkeypatch.setattr(worker, "_send", send_and_tell)
        call = threading.Thread(target=lambda: answer.append(_call(lease.analyze, frame)))
        call.start()
        assert sent.wait(30)  # the request is in the stopped worker's socket, unread
        first.send_signal(signal.SIGKILL)
        call.join(120)
        assert len(answer) == 1 and isinstance(answer[0], FaceWorkerLost), answer
        assert lease.analyze(frame).found
        (second,) = spawned_workers(os.getpid())
        second.send_signal(signal.SIGKILL)
        # dead, as the server finds it (a thread of it may outlive the zombie state psutil
        # reads; meanwhile a request would still reach its socket, and fail)
        workers._workers[0]._process.join(10)
        again = lease.analyze(frame)
        (third,) = spawned_workers(os.getpid())
    finally:
        lease.close()
        workers.close()
    assert again.found and workers.started == 3
    assert len({first.pid, second.pid, third.pid}) == 3
    wait_gone(third)  # closing ends the worker


def _call(fn: object, *args: object) -> BaseException | FaceObservation:
    try:
        return fn(*args)  # type: ignore[operator,no-any-return]
    except BaseException as exc:
        return exc


@contextlib.contextmanager
def _stopped_worker() -> Iterator[tuple[FaceProcesses, RemoteFaceAnalyzer, np.ndarray, Any]]:
    """A lease on one worker (2 s timeout) that has found the face once, then SIGSTOPped (as if
    hung in native code): the workers, the lease, the frame and the stopped process."""
    frame = _rgb(moving_face_frames(1))[0]
    workers = FaceProcesses(Settings(), 1, timeout_s=2.0)
    lease = workers.lease()
    try:
        assert lease.analyze(frame).found
        (hung,) = spawned_workers(os.getpid())
        hung.send_signal(signal.SIGSTOP)
        yield workers, lease, frame, hung
    finally:
        lease.close()
        workers.close()


def test_a_hung_worker_times_out_and_is_replaced() -> None:
    with _stopped_worker() as (_workers, lease, frame, hung):
        with pytest.raises(FaceWorkerLost, match="no answer in 2 s"):
            lease.analyze(frame)
        wait_gone(hung)  # replaced: killed, though stopped
        assert lease.analyze(frame).found


def test_forgetting_on_a_hung_worker_does_not_fail_the_session_s_end() -> None:
    """A session's end resets its analyser (`forget`); a worker hung then costs the wait, not
    an error (the graph goes with the killed worker), and the next session gets a new one."""
    with _stopped_worker() as (workers, lease, frame, hung):
        lease.forget(np.zeros_like(frame))  # raises nothing
        wait_gone(hung)
        assert lease.analyze(frame).found and workers.started == 2


def test_a_frame_analyser_with_its_face_in_a_worker_tracks_gaze_and_resets() -> None:
    """The session's analyser (warm-up, frames, a reset between sessions) with FaceMesh in a
    worker: the same observations as with it here."""
    settings = Settings()
    frames = moving_face_frames(8, seed=5)
    workers = FaceProcesses(settings, 1)
    here, there = FrameAnalyzer(settings), FrameAnalyzer(settings, face_graphs=workers)
    try:
        results = []
        for analyzer in (here, there):
            analyzer.warm_up()
            runs = []
            for _ in range(2):  # two sessions on the same (reset) analyser
                runs.append(
                    [
                        analyzer.analyze(VideoFrame(i, i / 15, image=f, arrived_at=0.0)).face
                        for i, f in enumerate(frames)
                    ]
                )
                analyzer.reset()
            results.append(runs)
    finally:
        here.close()
        there.close()
        workers.close()
    for run_here, run_there in zip(results[0], results[1], strict=True):
        assert all(o.found for o in run_there)
        assert all(_same(a, b) for a, b in zip(run_here, run_there, strict=True))
