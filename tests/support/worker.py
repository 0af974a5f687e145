"""A real Celery worker (`python -m celery -A app.worker worker`) as a child process, so a test can
read its log and SIGKILL it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.server import ROOT


class CeleryWorker:
    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str],
        *,
        name: str = "worker",
        pool: str = "solo",
        concurrency: int = 1,
    ) -> None:
        self.data_dir = data_dir
        self.env = env
        self.name = name
        self.pool = pool
        self.concurrency = concurrency
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log: Any = None

    def start(self, timeout: float = 90) -> CeleryWorker:
        env = {
            **os.environ,
            "COACH_DATA_DIR": str(self.data_dir),
            "PYTHONPATH": str(ROOT),
            "COACH_JOBS": "celery",
            **self.env,
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "app.worker",
                "worker",
                f"--pool={self.pool}",
                f"--concurrency={self.concurrency}",
                "--loglevel=INFO",
                "--hostname",
                f"{self.name}@%h",
                # one worker per test: nothing to synchronise with, start faster
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log()[-3000:]}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker did not become ready: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # warm shutdown: the job in hand finishes
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
