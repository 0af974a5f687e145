"""A real OpenAI-compatible chat-completions server on loopback, for the critic's tests.

It records every request and answers what the test scripts: a completion, an HTTP error, a
slow answer or a hang. It runs in threads (ThreadingHTTPServer), so a hanging answer never
blocks the test's event loop, and it counts requests in flight to catch overlapping calls.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] | str | None = None
    delay_s: float = 0.0
    hang: bool = False  # never answer (until the server shuts down)


def completion(
    content: str | None,
    *,
    refusal: str | None = None,
    finish_reason: str = "stop",
    prompt_tokens: int = 321,
    completion_tokens: int = 45,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-vlm",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    arrived_at: float  # time.monotonic(), comparable with the event loop's clock


@dataclass
class FakeVlmServer:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    default: Reply = field(default_factory=lambda: Reply(body=completion("{}")))
    in_flight: int = 0
    max_in_flight: int = 0
    _script: deque[Reply] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _shutdown: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def enter(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler(server: FakeVlmServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            request = RecordedRequest(
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw or b"{}"),
                arrived_at=time.monotonic(),
            )
            server.enter(request)
            try:
                if self.path != "/v1/chat/completions":
                    self._send(Reply(status=404, body={"error": {"message": "not found"}}))
                    return
                reply = server.next_reply()
                if reply.hang:
                    self._wait_for_disconnect()
                    return
                if reply.delay_s:
                    server._shutdown.wait(reply.delay_s)
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its deadline); that is the point of some tests
            finally:
                server.leave()

        def _wait_for_disconnect(self) -> None:
            """Hang until the client gives up (closes the connection) or the server stops, so
            `in_flight` counts what the client is still waiting for."""
            while not server._shutdown.is_set():
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable:
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return  # EOF: the client closed its end
                    except OSError:
                        return
                    server._shutdown.wait(0.05)  # unexpected bytes; keep hanging

        def _send(self, reply: Reply) -> None:
            if isinstance(reply.body, str):
                payload, kind = reply.body.encode(), "text/plain"
            else:
                body = reply.body if reply.body is not None else {"error": {"message": "boom"}}
                payload, kind = json.dumps(body).encode(), "application/json"
            self.send_response(reply.status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def running_fake_vlm() -> Iterator[FakeVlmServer]:
    fake = FakeVlmServer()
    httpd = ThreadingHTTPServer((fake.host, 0), _handler(fake))
    httpd.daemon_threads = True
    fake.port = httpd.server_address[1]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-vlm", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake._shutdown.set()  # releases hanging handlers
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
