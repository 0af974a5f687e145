"""Thread priorities: work that may lag (Pose, optionally the recorder) yields the CPU to the
work a presenter waits for (decode, face, events)."""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value by `nice`. Linux schedules threads one by one, and
    threads started from this one afterwards (libvpx's, a MediaPipe graph's) inherit it. Best
    effort: elsewhere, or without permission, it changes nothing."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:
        log.debug("could not lower the priority of thread %s", threading.current_thread().name)
