"""Thread priorities: work that may lag (Pose, optionally the recorder) yields the CPU to the
work a presenter waits for (decode, face, events)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadPriority:
    """How much a thread yields. Linux schedules threads one by one, and threads started from
    a lowered thread afterwards (libvpx's, a MediaPipe graph's) inherit its priority.

    `nice` only weighs a thread's share of the CPU: under the EEVDF scheduler (Linux 6.6 on) a
    niced thread that is running keeps the CPU to the end of its slice (~3 ms) when a normal
    thread wakes, and a face analysis wakes several graph threads in turn, so it waited behind
    a nice-19 Pose over and over (measured: N = 8 sessions' face median 6 -> 15 ms with Pose
    running beside it). `idle` (SCHED_IDLE) runs the thread only on CPU time no normal thread
    wants, and a waking normal thread preempts it at once; `nice` is then moot."""

    nice: int = 0
    idle: bool = False

    @property
    def lowered(self) -> bool:
        return self.idle or self.nice > 0

    def apply(self, tid: int | None = None) -> None:
        """Lower the calling thread (or thread `tid`). Best effort: elsewhere than Linux, or
        without permission, `idle` falls back to `nice` and `nice` to nothing."""
        tid = threading.get_native_id() if tid is None else tid
        if self.idle and hasattr(os, "sched_setscheduler"):
            try:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                return
            except OSError:
                log.debug("could not set SCHED_IDLE on thread %d", tid)
        if self.nice <= 0 or not hasattr(os, "setpriority"):
            return
        try:
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
        except OSError:
            log.debug("could not lower the priority of thread %d", tid)

    def apply_to_process(self) -> None:
        """Lower every thread this process runs now (a worker process's imports start some,
        numpy's OpenBLAS pool among them) and, through the calling one, those it starts."""
        tasks = Path("/proc/self/task")
        tids = [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else []
        for tid in tids or [threading.get_native_id()]:
            self.apply(tid)


NORMAL = ThreadPriority()


def pose_lane_priority(settings: Settings) -> ThreadPriority:
    """The Pose lane's threads and graphs: they yield to face analysis, which every metrics
    event waits for (`pose_sched_idle`, else `pose_nice`). Without a lane, Pose runs inline."""
    if not settings.pose.lane:
        return NORMAL
    return ThreadPriority(nice=settings.pose.nice, idle=settings.pose.sched_idle)


def pose_thread_priority(settings: Settings) -> ThreadPriority:
    """The server's Pose lane threads. With Pose in worker processes they only wait for its
    result and turn it into a posture, and lowered they could be preempted holding the GIL
    that face analysis waits for: they run at normal priority, the workers lowered."""
    if settings.pose.processes > 0:
        return NORMAL
    return pose_lane_priority(settings)
