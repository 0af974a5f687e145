"""Stream a multipart upload to disk, chunk by chunk, under a size limit.

The body is parsed as it arrives with python-multipart's streaming parser; the file part is
written in ~1 MiB slices on a worker thread. As soon as the file crosses the limit the partial
file is deleted and the rest of the body is drained (bounded) and thrown away, so the client
can read the refusal instead of a connection reset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

FILE_FIELDS = ("file", "video")  # `video` is what an older front end sent
MULTIPART_OVERHEAD = 64 * 1024  # headers, boundaries and small fields around the file
WRITE_SLICE = 1024 * 1024
DRAIN_MAX_BYTES = 8 * 1024 * 1024  # after a refusal, read at most this much more
DRAIN_MAX_S = 5.0

UploadRefusal = Literal["not_multipart", "bad_multipart", "no_file", "too_large"]


class UploadRejected(Exception):
    def __init__(self, code: UploadRefusal, message: str) -> None:
        super().__init__(message)
        self.code: UploadRefusal = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    path: Path
    size: int
    filename: str
    field: str


def _header_params(value: bytes) -> dict[str, str]:
    _kind, params = parse_options_header(value)
    return {k.decode("latin-1").lower(): v.decode("utf-8", "replace") for k, v in params.items()}


class _Parts:
    """State the parser's synchronous callbacks fill in."""

    def __init__(self) -> None:
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[str, bytes] = {}
        self.in_file = False
        self.file_field: str | None = None
        self.filename = ""
        self.pending = bytearray()
        self.file_bytes = 0
        self.file_done = False

    def on_part_begin(self) -> None:
        self.headers = {}
        self.in_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        params = _header_params(self.headers.get("content-disposition", b""))
        name = params.get("name")
        # The first part in a file field is the upload; anything else is read and ignored.
        if name in FILE_FIELDS and self.file_field is None:
            self.in_file = True
            self.file_field = name
            self.filename = params.get("filename", "")[:300]

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.pending += data[start:end]
            self.file_bytes += end - start

    def on_part_end(self) -> None:
        if self.in_file:
            self.file_done = True
        self.in_file = False


async def drain(chunks: AsyncIterator[bytes]) -> None:
    """Read and discard what the client is still sending, within bounds."""
    read = 0
    deadline = time.monotonic() + DRAIN_MAX_S
    try:
        async for chunk in chunks:
            read += len(chunk)
            if read > DRAIN_MAX_BYTES or time.monotonic() > deadline:
                return
    except Exception:  # the client went away: nothing left to drain
        return


async def receive_file(
    chunks: AsyncIterator[bytes],
    content_type: str,
    content_length: int | None,
    dest: Path,
    max_bytes: int,
) -> ReceivedFile:
    """Write the multipart file part of the body in `chunks` to `dest`. Raises `UploadRejected`
    (and leaves no file behind) for a body that is not multipart, has no file, or is too large."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        await drain(chunks)
        raise UploadRejected(
            "not_multipart", "Send the video as multipart/form-data in the field `file`."
        )
    if content_length is not None and content_length > max_bytes + MULTIPART_OVERHEAD:
        await drain(chunks)
        raise _too_large(max_bytes)

    parts = _Parts()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": parts.on_part_begin,
            "on_header_field": parts.on_header_field,
            "on_header_value": parts.on_header_value,
            "on_header_end": parts.on_header_end,
            "on_headers_finished": parts.on_headers_finished,
            "on_part_data": parts.on_part_data,
            "on_part_end": parts.on_part_end,
        },
    )
    body_bytes = 0
    handle: BinaryIO | None = None
    try:
        handle = await asyncio.to_thread(dest.open, "wb")
        async for chunk in chunks:
            body_bytes += len(chunk)
            try:
                parser.write(chunk)
            except FormParserError:
                raise _malformed() from None
            if parts.file_bytes > max_bytes or body_bytes > max_bytes + MULTIPART_OVERHEAD:
                raise _too_large(max_bytes)
            if len(parts.pending) >= WRITE_SLICE or (parts.file_done and parts.pending):
                data = bytes(parts.pending)
                parts.pending.clear()
                await asyncio.to_thread(handle.write, data)
        try:
            parser.finalize()
        except FormParserError:
            raise _malformed() from None
        if parts.pending:
            await asyncio.to_thread(handle.write, bytes(parts.pending))
            parts.pending.clear()
        await asyncio.to_thread(handle.close)
        handle = None
    except UploadRejected:
        await _discard(handle, dest)
        handle = None
        await drain(chunks)
        raise
    except BaseException:
        await _discard(handle, dest)
        handle = None
        raise
    if parts.file_field is None or not parts.file_done:
        await asyncio.to_thread(dest.unlink, True)
        raise UploadRejected(
            "no_file", "No file in the upload: send it in the multipart field `file`."
        )
    return ReceivedFile(
        path=dest, size=parts.file_bytes, filename=parts.filename, field=parts.file_field
    )


async def _discard(handle: BinaryIO | None, dest: Path) -> None:
    if handle is not None:
        await asyncio.to_thread(handle.close)
    await asyncio.to_thread(dest.unlink, True)


def _too_large(max_bytes: int) -> UploadRejected:
    limit = f"{max_bytes / 1e6:.0f} MB" if max_bytes >= 1_000_000 else f"{max_bytes} bytes"
    return UploadRejected("too_large", f"The upload exceeds the limit of {limit}.")


def _malformed() -> UploadRejected:
    return UploadRejected("bad_multipart", "The multipart body is malformed.")
