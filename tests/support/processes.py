"""Finding a server's worker processes (Pose: app/analysis/pose_process.py; face:
app/analysis/face_process.py) from outside."""

from __future__ import annotations

import contextlib
import time

import psutil


def spawned_workers(pid: int, timeout: float = 10.0) -> list[psutil.Process]:
    """The multiprocessing workers `pid` spawned (not its resource tracker). Waits up to
    `timeout` for at least one."""
    deadline = time.monotonic() + timeout
    while True:
        workers = []
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                if "spawn_main" in " ".join(child.cmdline()):
                    workers.append(child)
        if workers or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


def _gone(process: psutil.Process) -> bool:
    try:
        # an orphan's zombie lingers where nothing reaps it (a container without an init)
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(process: psutil.Process, timeout: float = 10.0) -> None:
    """Waits for `process` (a child or not) to end; fails the test if it does not."""
    deadline = time.monotonic() + timeout
    while not _gone(process):
        assert time.monotonic() < deadline, f"process {process.pid} still runs"
        time.sleep(0.05)
