"""A real OpenAI-compatible transcription server on loopback (`POST /v1/audio/transcriptions`,
multipart with a WAV file), for the transcription tests.

Each request is answered by the next scripted `AsrReply` (else `default`): word timestamps
relative to the audio it was sent, an HTTP error, garbage, or a hang. It runs in threads, counts
the requests in flight (to catch overlapping calls) and keeps every request's form fields and
audio, so a test can check that no audio was sent twice.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
import wave
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WordSpec = tuple[str, float, float]  # word, start, end: seconds into the request's audio


@dataclass(frozen=True)
class AsrReply:
    words: tuple[WordSpec, ...] | None = None  # None: the default words for the audio
    status: int = 200
    raw: bytes | None = None  # sent as is (garbage)
    delay_s: float = 0.0
    hang: bool = False  # answer only when the server shuts down


@dataclass
class AsrRequest:
    fields: dict[str, list[str]]
    audio: bytes  # the WAV's samples
    duration_s: float


def default_words(duration_s: float) -> tuple[WordSpec, ...]:
    """'um hello world', spread over the audio."""
    step = duration_s / 4
    return (("um", 0.0, step), ("hello", step, 2 * step), ("world", 2 * step, 3 * step))


@dataclass
class FakeAsrServer:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[AsrRequest] = field(default_factory=list)
    words_for: Callable[[float], tuple[WordSpec, ...]] = default_words
    in_flight: int = 0
    max_in_flight: int = 0
    _script: deque[AsrReply] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _shutdown: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *replies: AsrReply) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next(self, request: AsrRequest) -> AsrReply:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._script.popleft() if self._script else AsrReply()

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _parse(headers: Any, body: bytes) -> AsrRequest:
    head = f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, list[str]] = {}
    audio, duration = b"", 0.0
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        if part.get_filename():
            with wave.open(io.BytesIO(payload)) as w:
                audio = w.readframes(w.getnframes())
                duration = w.getnframes() / w.getframerate()
        else:
            fields.setdefault(str(name), []).append(payload.decode())
    return AsrRequest(fields, audio, duration)


def _handler(server: FakeAsrServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path != "/v1/audio/transcriptions":
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            request = _parse(self.headers, body)
            reply = server._next(request)
            try:
                if reply.hang:
                    server._shutdown.wait()
                    return
                if reply.delay_s:
                    server._shutdown.wait(reply.delay_s)
                if reply.raw is not None:
                    self._send(reply.status, reply.raw)
                    return
                if reply.status != 200:
                    self._send(reply.status, b'{"error": {"message": "scripted failure"}}')
                    return
                words = reply.words
                if words is None:
                    words = server.words_for(request.duration_s)
                answer = {
                    "task": "transcribe",
                    "language": (request.fields.get("language") or ["en"])[0],
                    "duration": request.duration_s,
                    "text": " ".join(w for w, _, _ in words),
                    "words": [{"word": w, "start": a, "end": b} for w, a, b in words],
                }
                self._send(200, json.dumps(answer, ensure_ascii=False).encode())
            finally:
                server._leave()

        def _send(self, status: int, payload: bytes) -> None:
            with contextlib.suppress(OSError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def running_fake_asr() -> Iterator[FakeAsrServer]:
    server = FakeAsrServer()
    httpd = ThreadingHTTPServer((server.host, 0), _handler(server))
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, name="fake-asr", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server._shutdown.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
