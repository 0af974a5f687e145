"""Security headers on every answer, and token redaction in the server's own logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The rehearsal page loads only its own scripts and styles; camera previews are blob: URLs,
# keyframes data: URLs, and the events come over ws:/wss: to this origin.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; frame-ancestors 'none'"
)
# report.html is one self-contained file: inline CSS, embedded images, the recording from this
# origin, and one inline script (seeking the recording from the report), allowed by its hash.
REPORT_SCRIPT = (Path(__file__).resolve().parent / "templates" / "report-seek.js").read_text(
    "utf-8"
)
# Every report-seek.js ever released, by hash. A report.html is rendered once, when its session
# or upload is finalised, and stored with the script of that day inlined, so the policy must
# keep allowing each released version: when the script changes, APPEND its new hash here; never
# remove one (every stored report built with it would stop seeking its recording).
# tests/coaching/test_report.py fails until the current script's hash is listed.
REPORT_SCRIPT_HASHES: tuple[str, ...] = ("sha256-RhioUdzceNUDd9GD8BqnproCkVVV+7qBEpXGATIfLIg=",)
_REPORT_SCRIPT_SOURCES = " ".join(f"'{h}'" for h in REPORT_SCRIPT_HASHES)
REPORT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; media-src 'self'; "
    f"script-src {_REPORT_SCRIPT_SOURCES}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
# The rehearsal page shows the report in an iframe of its own origin.
REPORT_HEADERS = {"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"}
# FastAPI's interactive docs load their scripts from a CDN; they keep working (where a CDN can
# be reached) under a policy that still forbids framing.
DOCS_CSP = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Pure ASGI middleware (it must not buffer streamed recordings): adds the headers above to
    every HTTP answer. A route that set its own Content-Security-Policy keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in (*_ALWAYS, (b"content-security-policy", csp.encode())):
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
_BEARER_IN_TEXT = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`?token=abc` -> `?token=***` and `Bearer abc` -> `Bearer ***`."""
    return _BEARER_IN_TEXT.sub(r"\1***", _TOKEN_IN_TEXT.sub(r"\1***", text))


class RedactTokens(logging.Filter):
    """Masks session tokens in a record's message and string arguments. uvicorn's access log
    (and its WebSocket lines in uvicorn.error) print the whole path with its query string, and
    a link or the WebSocket carries the token there. The arguments are rewritten in place rather
    than pre-formatted, because uvicorn's access formatter unpacks them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "app")


def install_log_redaction() -> None:
    """Idempotent: one RedactTokens on each logger that could print a URL."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
