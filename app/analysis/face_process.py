"""Face analysis in worker processes, so a second core (and a sixteenth) counts.

Every live session's per-frame Python work ran in one interpreter: at 15 fps the server's
threads held its GIL ~10 % of wall time per WebSocket session (BENCHMARKS.md, "The GIL"), so
one process topped out near ten sessions however many cores it had, and FaceMesh with its
glue (landmarks to pixels, head pose, gaze measures) was the largest share. With
`analysis.face_processes = N`, each session's FaceMesh graph lives in one of N worker
processes instead (the one with the fewest graphs when the session's analyser is built), and
the session's analyser copies the analysis-size RGB frame (at most `max_side`² x 3 bytes)
into the worker's shared-memory buffer, sends a few bytes naming it, and gets back the
`FaceObservation`. Gaze tracking, Pose, cues and events stay with the session. (Over the pipe
itself, a 0.9 MB frame took ~14 round trips through the socket's buffer, and a send to a hung
worker blocked for good; the short message never waits for the reader.)

A worker serves one request at a time in the order they come (one MediaPipe graph, one
thread at a time), so its sessions' calls queue on its lock here, as they queued on the
analysis executor before. A FaceMesh graph in tracking mode remembers the face it found, so a
session's frames must all reach the same graph in time order: the analyser's key names it.

A worker that dies (killed, out of memory, a native crash) or hangs past `timeout_s` fails
the call it was serving with `FaceWorkerLost` (that session loses the frame) and is killed; the
next call starts a new worker (its first answer may take `START_TIMEOUT_S`), where every
session on it finds the face again from scratch. Calls queue on the worker's lock meanwhile:
a worker starting up holds up its own sessions' frames (and the analysis threads they wait
on).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from app.config import Settings
from app.frames import FaceObservation

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # a cold worker imports MediaPipe and builds a graph


class FaceWorkerLost(RuntimeError):
    """The face worker process ended (or hung) while serving a call; the next call starts a
    new one."""


# --- in the worker process ---------------------------------------------------------------
def _watch_parent(parent: int) -> None:
    # A worker whose server was killed (SIGKILL: no shutdown) must not linger holding graphs.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _serve(conn: Connection, settings: Settings, parent: int, buffer: str) -> None:
    """The worker's loop: (op, key, shape), where `shape` names the frame waiting in the
    shared `buffer`; answers ("ok", value) or ("error", text)."""
    from app.analysis.face import FaceAnalyzer
    from app.analysis.person import PersonSegmenter

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server shuts its workers down itself
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch").start()
    # The server owns the buffer and unlinks it; attaching registers it again with the
    # resource tracker the two share (a no-op), which unlinks it only if the server dies.
    shared = SharedMemory(buffer)
    graphs: dict[int, FaceAnalyzer] = {}
    segmenter = PersonSegmenter()  # one for all the graphs: this loop calls one at a time
    while True:
        try:
            op, key, shape = conn.recv()
        except EOFError:  # the server closed its end: stop
            break
        try:
            value: Any = None
            # a view, not a copy: the server writes the next frame only after this answer
            rgb: np.ndarray | None = None
            if shape is not None:
                rgb = np.ndarray(shape, np.uint8, buffer=shared.buf)
            if op == "close":
                graph = graphs.pop(key, None)
                if graph is not None:
                    graph.close()
            else:
                graph = graphs.get(key)
                if graph is None:
                    graph = graphs[key] = FaceAnalyzer(settings, segmenter=segmenter)
                if op == "analyze":
                    value = graph.analyze(rgb)  # type: ignore[arg-type]
                elif op == "warm_up":
                    graph.warm_up(rgb)  # type: ignore[arg-type]
                elif op == "forget":
                    graph.forget(rgb)  # type: ignore[arg-type]
                else:
                    raise ValueError(f"unknown face worker op {op!r}")
            conn.send(("ok", value))
        except Exception as exc:  # the server re-raises it; the worker serves on
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        rgb = None  # (no view of the buffer outlives its call)
    for graph in graphs.values():
        graph.close()
    segmenter.close()
    shared.close()


# --- in the server -----------------------------------------------------------------------
class _Worker:
    """One worker process and the pipe to it; thread-safe (one call at a time)."""

    def __init__(self, settings: Settings, index: int, timeout_s: float) -> None:
        self._settings = settings
        side = settings.analysis.max_side
        self._buffer = SharedMemory(create=True, size=side * side * 3)
        self._index = index
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._warm = False  # answered once: MediaPipe is imported there
        self._closed = False
        self.graphs = 0  # the analysers whose graphs live here
        self.started = 0  # processes started so far (a replaced one counts again)

    def _start(self) -> Connection:
        context = get_context("spawn")  # fork would copy the server's threads' locks
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(theirs, self._settings, os.getpid(), self._buffer.name),
            name=f"face-{self._index}",
            daemon=True,
        )
        try:
            process.start()
        except OSError as exc:  # out of processes or descriptors: this call fails, not the pool
            ours.close()
            raise FaceWorkerLost(f"face worker {self._index} cannot start: {exc}") from exc
        finally:
            theirs.close()
        self._process, self._conn, self._warm = process, ours, False
        self.started += 1
        log.info("face worker %d started (pid %d)", self._index, process.pid)
        return ours

    def _stop(self, grace_s: float = 2.0) -> None:
        """Ends the process: told by EOF, given `grace_s` to close its graphs, then killed."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            process.join(timeout=grace_s)
            if process.is_alive():
                process.kill()
                process.join(timeout=2.0)

    def call(self, op: str, key: int, rgb: np.ndarray | None = None) -> Any:
        with self._lock:
            if self._closed:
                raise FaceWorkerLost("the face workers are closed")
            for attempt in range(2):
                conn = self._conn
                if conn is None or not self._process.is_alive():
                    self._stop()
                    if op == "close":
                        return None  # the graph went with the process: nothing to close
                    conn = self._start()
                try:
                    self._send(conn, op, key, rgb)
                    break
                except OSError as exc:
                    # Not delivered: a worker killed a moment ago still looks alive while its
                    # threads exit. Nothing was asked of anyone, so a new worker takes it.
                    self._lost(exc)
                    if attempt or op == "close":
                        raise FaceWorkerLost(f"face worker {self._index} lost: {exc}") from exc
            timeout = self._timeout_s if self._warm else max(self._timeout_s, START_TIMEOUT_S)
            try:
                assert conn is not None
                if not conn.poll(timeout):
                    raise TimeoutError(f"no answer in {timeout:.0f} s")
                status, value = conn.recv()
            except (EOFError, OSError, TimeoutError) as exc:
                self._lost(exc)
                raise FaceWorkerLost(f"face worker {self._index} lost: {exc}") from exc
            self._warm = True
        if status != "ok":
            raise RuntimeError(f"face worker {self._index}: {value}")
        return value

    def _send(self, conn: Connection, op: str, key: int, rgb: np.ndarray | None) -> None:
        shape = None
        if rgb is not None:
            size = self._buffer.size
            if rgb.dtype != np.uint8 or rgb.nbytes > size:
                raise ValueError(f"a face worker takes uint8 frames of at most {size} bytes")
            shape = rgb.shape
            np.copyto(np.ndarray(shape, np.uint8, buffer=self._buffer.buf), rgb)
        conn.send((op, key, shape))  # a few bytes: never waits for the worker to read

    def _lost(self, exc: BaseException) -> None:
        code = None if self._process is None else self._process.exitcode
        self._stop(grace_s=0.0)  # dead or hung: no grace, the sessions behind it are waiting
        log.warning("face worker %d lost (%s, exit code %s)", self._index, exc, code)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop()
            self._buffer.close()
            self._buffer.unlink()


class FaceProcesses:
    """Face analysis for this server's sessions in `processes` worker processes (started on
    first use). `lease()` builds a `RemoteFaceAnalyzer`, the `FaceAnalyzer` interface over one
    graph in the worker with the fewest."""

    def __init__(self, settings: Settings, processes: int, timeout_s: float = 30.0) -> None:
        if processes < 1:
            raise ValueError("FaceProcesses needs at least one process")
        self._workers = [_Worker(settings, i, timeout_s) for i in range(processes)]
        self._keys = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def started(self) -> int:
        """Worker processes started so far (for tests and logs)."""
        return sum(w.started for w in self._workers)

    def graphs_per_worker(self) -> list[int]:
        return [w.graphs for w in self._workers]

    def lease(self, _settings: Settings | None = None) -> RemoteFaceAnalyzer:
        with self._lock:
            worker = min(self._workers, key=lambda w: w.graphs)
            worker.graphs += 1
            key = next(self._keys)
        return RemoteFaceAnalyzer(self, worker, key)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            worker.graphs -= 1

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


class RemoteFaceAnalyzer:
    """`FaceAnalyzer` (app/analysis/face.py) whose graph lives in a face worker process: the
    same calls, one at a time, frames in time order."""

    def __init__(self, owner: FaceProcesses, worker: _Worker, key: int) -> None:
        self._owner = owner
        self._worker: _Worker | None = worker
        self._key = key
        # close() waits for a call in flight, so "close" never overtakes it in the worker's
        # queue (which would rebuild the graph for a key nobody holds)
        self._lock = threading.Lock()

    def _call(self, op: str, rgb: np.ndarray | None = None) -> Any:
        with self._lock:
            if self._worker is None:
                raise RuntimeError("RemoteFaceAnalyzer is closed")
            return self._worker.call(op, self._key, rgb)

    def analyze(self, rgb: np.ndarray) -> FaceObservation:
        result: FaceObservation = self._call("analyze", rgb)
        return result

    def warm_up(self, rgb: np.ndarray) -> None:
        self._call("warm_up", rgb)

    def forget(self, blank_rgb: np.ndarray) -> None:
        # A lost worker took the graph with it: the next call builds a fresh one, which is all
        # forgetting asks (and a session's end must not fail on it).
        with contextlib.suppress(FaceWorkerLost):
            self._call("forget", blank_rgb)

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        self._owner._release(worker)
        with contextlib.suppress(FaceWorkerLost, RuntimeError):
            worker.call("close", self._key)  # (a lost worker took the graph with it)
