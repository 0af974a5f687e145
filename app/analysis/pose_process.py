"""Pose in a worker process of its own, at the Pose lane's priority.

With Pose on threads of the server process, the server's threads share one GIL with it. Under
SCHED_IDLE a Pose thread runs only when the CPUs have nothing else to do, but MediaPipe's graph
threads call back into Python for every output packet, so a Pose thread preempted (or handed
the GIL) while normal threads wait for it stalls face analysis, decoding and the event loop
behind it: at N = 8 sessions on 2 cores the face stage took 16 ms at the median beside an idle
Pose against 9 ms with Pose off (BENCHMARKS.md, Live loop). In a process of its own, Pose
shares no lock with the server; the kernel alone decides, and SCHED_IDLE means what it says.

Shared graphs run in static-image mode, so a Pose run is a pure function of the frame: the
server sends the analysis-size RGB frame (at most ~0.9 MB) and gets back 33 landmarks and
their visibilities. Lean, gesture and sway stay with the session.

A worker that dies (killed, out of memory, a native crash) fails the runs it had, each with
`PoseWorkerLost`; the next run starts a new worker, so a session loses a few Pose results,
never the session.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

import numpy as np

from app.analysis.pose import (
    PoseLandmarks,
    PoseUnavailable,
    landmarks_from_result,
    new_pose_graph,
)
from app.priority import NORMAL, ThreadPriority

log = logging.getLogger(__name__)

WARM_UP_SHAPE = (48, 64, 3)  # 9 KB


class PoseWorkerLost(PoseUnavailable):
    """The Pose worker process ended while running a frame; a new one takes the next."""


# --- in the worker process ---------------------------------------------------------------
_graph: Any = None


def _watch_parent(parent: int) -> None:
    # A worker whose server was killed (SIGKILL: no shutdown) must not linger holding a graph.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _init_worker(priority: ThreadPriority, parent: int) -> None:
    # Ctrl-C reaches the whole process group: the server shuts its workers down itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    priority.apply_to_process()  # the graph threads started later inherit it
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch").start()


def _run_pose(rgb: np.ndarray) -> PoseLandmarks | None:
    global _graph
    if _graph is None:
        _graph = new_pose_graph(static_images=True)
    return landmarks_from_result(_graph.process(rgb))


# --- in the server -----------------------------------------------------------------------
class PoseProcess:
    """Pose runs in `processes` worker processes (one static-image graph each, built on its
    first frame), at `priority`. Thread-safe: `landmarks` blocks the calling thread until its
    frame's result comes back; runs beyond the workers wait in line.

    A run with no result within `timeout_s` (a worker hung in native code, or starved for
    that long under SCHED_IDLE) fails with `PoseWorkerLost` and the workers are replaced, so
    neither the Pose lane's threads nor a session's end (which waits for its last Pose run
    before its analyser goes back to the pool) can hang on it."""

    # A new worker's first run also starts it: interpreter, imports, graph (several seconds,
    # more at SCHED_IDLE on a busy machine). Only a worker that answered once is held to
    # `timeout_s`, or an overloaded server would kill each new worker before it is up.
    COLD_TIMEOUT_S = 120.0

    def __init__(
        self, processes: int = 1, priority: ThreadPriority = NORMAL, timeout_s: float = 30.0
    ) -> None:
        self.size = max(1, processes)
        self.timeout_s = timeout_s
        self._priority = priority
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0
        self._pool = self._new_pool()
        self._warm = False  # the current pool has answered a run
        self._starting: ProcessPoolExecutor | None = None  # the pool a warm-up run was sent to
        self._warming: Future[Any] | None = None  # ...and that run

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a fork of a server that runs threads (and MediaPipe graphs) is not safe
        return ProcessPoolExecutor(
            self.size,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._priority, os.getpid()),
        )

    def landmarks(self, rgb: np.ndarray) -> PoseLandmarks | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("PoseProcess is closed")
            pool, warm = self._pool, self._warm
            warming = self._warming if not warm and self._starting is pool else None
        budget = self.timeout_s if warm else max(self.timeout_s, self.COLD_TIMEOUT_S)
        try:
            if warming is not None:
                # The worker is starting: wait for its warm-up run rather than queue a frame
                # behind it. A frame left in the pipe of a worker that dies before reading it
                # blocks the pool's feeder thread for good on Pythons without the gh-94777 fix
                # (Debian 12's 3.11.2), and interpreter exit then waits on that thread.
                warming.result(timeout=budget)
            result = pool.submit(_run_pose, rgb).result(timeout=budget)
        except BrokenProcessPool as exc:
            self._replace(pool)
            raise PoseWorkerLost("the Pose worker process ended; a new one is starting") from exc
        except CancelledError as exc:  # it waited on workers that were replaced or closed
            raise PoseWorkerLost("the Pose worker was replaced before this run started") from exc
        except TimeoutError as exc:
            self._replace(pool)
            raise PoseWorkerLost(
                f"no Pose result within {budget:g} s; the worker was replaced"
            ) from exc
        except RuntimeError as exc:
            if pool is self._pool:
                raise  # from the run itself
            # submit() on the pool another thread was just shutting down
            raise PoseWorkerLost("the Pose worker was being replaced") from exc
        with self._lock:
            if self._pool is pool:
                self._warm = True
        return result

    def warm_up(self, rgb: np.ndarray) -> None:
        """Start the worker (interpreter, imports, graph: seconds, far more when SCHED_IDLE
        starves it) with one run nobody waits for; the first frames queue behind it. Once per
        pool: a worker that answered, or is already starting, needs nothing."""
        with self._lock:
            if self._closed or self._warm or self._starting is self._pool:
                return
            self._starting = pool = self._pool
        # A tiny frame: one that size fits the pipe's buffer whole, so a worker that dies
        # before reading it cannot leave the pool's feeder thread blocked writing it (see
        # `landmarks`). Replaced or closed meanwhile (RuntimeError): the next run starts the
        # new one.
        try:
            future = pool.submit(_run_pose, np.zeros(WARM_UP_SHAPE, np.uint8))
        except RuntimeError:
            return
        with self._lock:
            if self._starting is pool:
                self._warming = future
        future.add_done_callback(functools.partial(self._warmed, pool))

    def _warmed(self, pool: ProcessPoolExecutor, future: Future[Any]) -> None:
        """The warm-up run ended (on the pool's manager thread): a worker that answered is
        held to `timeout_s` from now on; a lost run is only logged (the next run finds the
        pool broken and replaces it)."""
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            log.warning("Pose warm-up run lost: %r", error)
            return
        with self._lock:
            if self._pool is pool:
                self._warm = True

    def _replace(self, old: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._closed or self._pool is not old:
                return  # closed, or another thread already replaced it
            self._pool = self._new_pool()
            self._warm = False
            self.restarts += 1
        log.warning("Pose worker process lost; started a new one (restart %d)", self.restarts)
        _stop(old, grace_s=0.0)

    def close(self) -> None:
        """Ends the workers: the runs under way get up to 5 s to finish."""
        with self._lock:
            self._closed = True
            pool = self._pool
        _stop(pool, grace_s=5.0)


def _stop(pool: ProcessPoolExecutor, grace_s: float) -> None:
    # ProcessPoolExecutor has no way to stop a busy worker before Python 3.14
    # (terminate_workers); a hung or stopped one would make shutdown wait for ever. SIGKILL,
    # not SIGTERM: a stopped process only acts on SIGTERM once continued, and a worker keeps
    # nothing worth flushing.
    table = getattr(pool, "_processes", None) or {}  # shutdown() drops the pool's reference
    pool.shutdown(wait=False, cancel_futures=True)
    for process in list(table.values()):
        process.join(grace_s)
        if process.is_alive():
            process.kill()
            process.join(5.0)
    pool.shutdown(wait=True)
