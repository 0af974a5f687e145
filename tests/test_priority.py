"""Thread priorities: Pose (its worker process, or the Pose lane's threads and the MediaPipe
threads its graphs start) runs under SCHED_IDLE so face analysis never waits behind it; a nice
value stays per thread."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from app.analysis.pose import PoseGraphs
from app.config import Settings
from app.live.services import open_services
from app.priority import NORMAL, ThreadPriority, pose_lane_priority, pose_thread_priority
from app.wiring import default_hooks

T = TypeVar("T")


def _in_thread(priority: ThreadPriority, probe: Callable[[], T]) -> T:
    with ThreadPoolExecutor(1, initializer=priority.apply) as pool:
        return pool.submit(probe).result()


def _tasks() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/task")}


def test_idle_thread_and_the_threads_it_starts_run_under_sched_idle() -> None:
    def probe() -> tuple[int, int]:
        child: list[int] = []
        thread = threading.Thread(target=lambda: child.append(os.sched_getscheduler(0)))
        thread.start()
        thread.join()
        return os.sched_getscheduler(0), child[0]

    assert _in_thread(ThreadPriority(idle=True), probe) == (os.SCHED_IDLE, os.SCHED_IDLE)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the caller keeps its own


def test_nice_lowers_only_the_thread_that_applies_it() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def probe() -> tuple[int, int]:
        return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert _in_thread(ThreadPriority(nice=3), probe) == (os.SCHED_OTHER, min(19, mine + 3))
    assert _in_thread(NORMAL, probe) == (os.SCHED_OTHER, mine)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_pose_graph_threads_run_idle() -> None:
    """MediaPipe's graph threads do the Pose work: they must inherit the lane's priority."""
    before = _tasks()
    graphs = PoseGraphs(1, ThreadPriority(idle=True))
    try:
        with graphs.lease() as graph:
            graph.process(np.zeros((240, 320, 3), np.uint8))
            started = _tasks() - before
            policies = {tid: os.sched_getscheduler(tid) for tid in started}
    finally:
        graphs.close()
    assert started, "building a Pose graph started no thread"
    assert set(policies.values()) == {os.SCHED_IDLE}, policies


def test_pose_lane_priority_follows_the_settings() -> None:
    assert pose_lane_priority(Settings()) == ThreadPriority(nice=5, idle=True)
    assert pose_lane_priority(Settings(pose_sched_idle=False, pose_nice=7)) == ThreadPriority(
        nice=7, idle=False
    )
    assert pose_lane_priority(Settings(pose_lane=False)) == NORMAL  # inline Pose: face's pace


def test_pose_lane_threads_stay_normal_when_pose_runs_in_a_worker() -> None:
    assert pose_thread_priority(Settings()) == NORMAL  # the worker process runs idle instead
    in_process = Settings(pose_processes=0)
    assert pose_thread_priority(in_process) == pose_lane_priority(in_process)


async def test_services_pose_executor_priority(tmp_path: Path) -> None:
    async def policies(settings: Settings) -> tuple[int, int]:
        async with open_services(settings, default_hooks(settings), "test") as services:
            pose = services.pose_executor.submit(os.sched_getscheduler, 0).result()
            analysis = services.analysis_executor.submit(os.sched_getscheduler, 0).result()
        return pose, analysis

    assert await policies(Settings(data_dir=tmp_path)) == (os.SCHED_OTHER, os.SCHED_OTHER)
    in_process = Settings(data_dir=tmp_path, pose_processes=0)
    assert await policies(in_process) == (os.SCHED_IDLE, os.SCHED_OTHER)
