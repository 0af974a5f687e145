"""A real uvicorn server on loopback, in a thread (for most tests) or in a subprocess (for the
tests that kill it)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.config import Settings
from app.live.services import Hooks
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ThreadServer:
    """uvicorn serving `create_app(settings)` on 127.0.0.1 in a background thread."""

    def __init__(
        self, settings: Settings, hooks: Hooks | None = None, *, send_buffer: int | None = None
    ) -> None:
        """`send_buffer`: a fixed SO_SNDBUF for the accepted sockets (they inherit it from the
        listening one), so a test can fill a connection's buffers with little data."""
        self.settings = settings
        self.app = create_app(settings, hooks)
        self._sock = free_socket()
        if send_buffer is not None:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            ws_max_size=16 * 1024 * 1024,
            ws_per_message_deflate=False,  # as the README runs it: JPEG frames don't compress
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, name="uvicorn", daemon=True
        )

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def manager(self):  # type: ignore[no-untyped-def]
        return self.app.state.manager

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)
        self._sock.close()


class ProcessServer:
    """`python -m uvicorn app.main:app` as a child process, so a test can SIGKILL it."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, log_level: str = "warning"
    ) -> None:
        self.data_dir = data_dir
        self.env = env or {}
        self.log_level = log_level  # uvicorn's: "info" turns its access log on
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{time.monotonic_ns()}.log"
        self._log: Any = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> ProcessServer:
        with contextlib.closing(free_socket()) as sock:
            self.port = sock.getsockname()[1]
        env = {
            **os.environ,
            "COACH_DATA_DIR": str(self.data_dir),
            "PYTHONPATH": str(ROOT),
            **self.env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                self.log_level,
                "--ws-per-message-deflate",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.http}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_log()


@contextlib.contextmanager
def process_server(
    data_dir: Path, env: dict[str, str] | None = None, log_level: str = "warning"
) -> Iterator[ProcessServer]:
    server = ProcessServer(data_dir, env, log_level).start()
    try:
        yield server
    finally:
        server.stop()
