from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.config import Settings
from app.frames import VideoFrame
from app.media.http_range import WEBM_MEDIA_TYPE, webm_file_response
from app.media.recorder import SessionRecorder


@pytest.fixture
async def recording(tmp_path: Path) -> Path:
    recorder = SessionRecorder(tmp_path, Settings())
    recorder.start()
    rng = np.random.default_rng(1)
    for i in range(15):
        image = rng.integers(0, 255, size=(120, 160, 3), dtype=np.uint8)
        assert recorder.push_video(VideoFrame(index=i, t=i / 15, image=image, arrived_at=0.0))
    result = await recorder.stop()
    assert result.path is not None
    return result.path


@pytest.fixture
def recording_data(recording: Path) -> bytes:
    return recording.read_bytes()


@pytest.fixture
async def base_url(recording: Path) -> AsyncIterator[str]:
    """A real uvicorn on loopback serving the recording at /recording.webm."""

    async def serve_recording(request: Request) -> Response:
        return webm_file_response(recording)

    app = Starlette(routes=[Route("/recording.webm", serve_recording, methods=["GET", "HEAD"])])
    # Bound and listening before uvicorn starts, so requests queue instead of racing it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name="test:uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


async def test_whole_file(base_url: str, recording_data: bytes) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/recording.webm")
    assert response.status_code == 200
    assert response.headers["content-type"] == WEBM_MEDIA_TYPE
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"].startswith("inline")
    assert response.content == recording_data


async def test_first_hundred_bytes(base_url: str, recording_data: bytes) -> None:
    data = recording_data
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/recording.webm", headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.content == data[:100]
    assert response.headers["content-length"] == "100"
    assert response.headers["content-range"] == f"bytes 0-99/{len(data)}"
    assert response.headers["content-type"] == WEBM_MEDIA_TYPE


async def test_open_ended_and_suffix_ranges(base_url: str, recording_data: bytes) -> None:
    data = recording_data
    async with httpx.AsyncClient(base_url=base_url) as client:
        tail = await client.get("/recording.webm", headers={"Range": "bytes=-50"})
        rest = await client.get("/recording.webm", headers={"Range": f"bytes={len(data) - 10}-"})
    assert tail.status_code == 206 and tail.content == data[-50:]
    assert rest.status_code == 206 and rest.content == data[-10:]
    assert rest.headers["content-range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"


async def test_range_past_the_end_is_not_satisfiable(base_url: str, recording_data: bytes) -> None:
    size = len(recording_data)
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/recording.webm", headers={"Range": f"bytes={size}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


async def test_head_reports_size_without_body(base_url: str, recording_data: bytes) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        response = await client.head("/recording.webm")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(recording_data))
    assert response.content == b""
