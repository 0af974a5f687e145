"""A small test client for the live protocol: REST over httpx, media and events over a real
WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.events import EventLog


class SessionClient:
    def __init__(self, base_http: str, base_ws: str, info: dict[str, Any]) -> None:
        self.base_http = base_http
        self.base_ws = base_ws
        self.info = info
        self.id: str = info["session_id"]
        self.token: str = info["token"]
        self.log = EventLog()
        self.events = self.log.events
        self.wait_for = self.log.wait_for
        self.of_type = self.log.of_type
        self.ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed_code: int | None = None
        self.closed_why: str | None = None  # the server's close reason

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @classmethod
    async def create(cls, base_http: str, base_ws: str, **body: Any) -> SessionClient:
        async with httpx.AsyncClient(base_url=base_http, timeout=30) as http:
            answer = await http.post("/api/sessions", json=body)
            answer.raise_for_status()
            return cls(base_http, base_ws, answer.json())

    async def connect(self, after_seq: int | None = None) -> None:
        url = f"{self.base_ws}/ws/sessions/{self.id}?token={self.token}"
        if after_seq is not None:
            url += f"&after_seq={after_seq}"
        self.ws = await connect(url, max_size=None)
        self.log.closed_reason = None
        self._reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                if isinstance(message, str):
                    self.log.add(json.loads(message))
        except Exception:
            pass
        finally:
            self.closed_code = ws.close_code
            self.closed_why = ws.close_reason
            self.log.close(f"socket closed ({ws.close_code})")

    async def send_frame(self, data: bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def send_paced(
        self, frames: Iterable[bytes], fps: float, start: float | None = None
    ) -> list[float]:
        """Send encoded frames as a camera would, at `fps` from `start` (monotonic; default
        now), catching up at once when late. Returns each frame's send time."""
        start = time.monotonic() if start is None else start
        sent: list[float] = []
        for i, data in enumerate(frames):
            delay = start + i / fps - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(time.monotonic())
            await self.send_frame(data)
        return sent

    async def send_json(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def end(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base_http, timeout=30) as http:
            answer = await http.post(f"/api/sessions/{self.id}/end", headers=self.auth)
            assert answer.status_code == 202, answer.text
            return answer.json()

    async def get(
        self, path: str = "", headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_http, timeout=30) as http:
            return await http.get(
                f"/api/sessions/{self.id}{path}", headers={**self.auth, **(headers or {})}, **kw
            )

    async def wait_completed(self, timeout: float = 60.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                info = (await self.get()).json()
                if info["state"] in ("completed", "failed"):
                    return info
                await asyncio.sleep(0.1)

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        """Until the server closes the socket (without closing it from here); its close code."""
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.closed_code

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


async def wait_state(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], *states: str, timeout: float = 60
) -> dict[str, Any]:
    """Poll a session over REST until it reaches one of `states` (for tests without a socket)."""
    async with asyncio.timeout(timeout):
        while True:
            info: dict[str, Any] = (await http.get(path, headers=headers)).json()
            if info["state"] in states:
                return info
            await asyncio.sleep(0.05)
