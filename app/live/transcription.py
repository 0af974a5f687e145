"""Speech recognition for a live session, on its own thread so it never stalls the frame loop.

Audio chunks go through a bounded queue (drop-oldest, counted) to a `Transcriber` used by this
worker's thread only; `finish()` drains it and returns the transcript, which the finaliser
stores next to the recording for the report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.analysis.transcribe import Transcriber, Transcript
from app.frames import AudioChunk

log = logging.getLogger(__name__)

_STOP = object()


class TranscriptionWorker:
    def __init__(self, make: Callable[[], Transcriber], name: str, max_chunks: int = 600) -> None:
        self._make = make  # called on the worker thread: loading a model takes seconds
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_chunks)
        self._thread = threading.Thread(target=self._run, name=f"transcribe:{name}", daemon=True)
        self._result: Transcript | None = None
        self._error: str | None = None
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def feed(self, chunk: AudioChunk) -> None:
        """Never blocks: when recognition falls a minute behind, the oldest audio goes."""
        while True:
            try:
                self._queue.put_nowait(chunk)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        try:
            transcriber = self._make()
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                transcriber.feed(item)
            self._result = transcriber.finish()
        except Exception as exc:  # recognition must never take the session down
            log.exception("transcription failed")
            self._error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """Let the thread end (idempotent); `finish` also waits for the result."""
        self.feed(_STOP)  # type: ignore[arg-type]

    async def finish(self, timeout: float = 60.0) -> Transcript | None:
        self.stop()
        await asyncio.to_thread(self._thread.join, timeout)
        return self._result


def transcript_json(transcript: Transcript | None, note: str | None = None) -> dict[str, Any]:
    if transcript is None:
        return {"made": False, "note": note or "no transcript was made"}
    out = asdict(transcript)
    out["made"] = transcript.made
    return out


def write_transcript(path: Path, transcript: Transcript | None, note: str | None = None) -> None:
    path.write_text(json.dumps(transcript_json(transcript, note), ensure_ascii=False), "utf-8")
