"""Finding a server's Pose worker processes (app/analysis/pose_process.py) from outside."""

from __future__ import annotations

import time

import psutil


def pose_workers(pid: int, timeout: float = 10.0) -> list[psutil.Process]:
    """The multiprocessing workers `pid` spawned (not its resource tracker). Waits up to
    `timeout` for at least one."""
    deadline = time.monotonic() + timeout
    while True:
        workers = [
            child
            for child in psutil.Process(pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]
        if workers or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


def wait_gone(process: psutil.Process, timeout: float = 10.0) -> None:
    """Waits for `process` (a child or not) to end; fails the test if it does not."""
    _, alive = psutil.wait_procs([process], timeout=timeout)
    assert not alive, f"process {process.pid} still runs"
