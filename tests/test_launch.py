"""How the server is started: with permessage-deflate off, in every command that starts it.

Every live frame is a JPEG, which deflate cannot shrink; with the extension on (uvicorn's
default, offered by every browser) the client compresses and the server inflates each frame
for nothing. uvicorn leaves the app no say in it, so the commands must."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.support.server import process_server

ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_commands_turn_permessage_deflate_off() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    commands = [
        line for line in readme.splitlines() if re.search(r"bin/uvicorn app\.main:app", line)
    ]
    assert commands, "the README's server command is gone"
    assert all("--ws-per-message-deflate false" in line for line in commands), commands
    cmd = [
        line
        for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines()
        if line.startswith("CMD")
    ]
    assert cmd and '"--ws-per-message-deflate", "false"' in cmd[0], cmd


async def test_a_server_started_that_way_accepts_no_compression(tmp_path: Path) -> None:
    with process_server(tmp_path / "data", {"COACH_MIN_FREE_DISK_MB": "0"}) as srv:
        async with httpx.AsyncClient(base_url=srv.http) as http:
            body = (await http.post("/api/sessions", json={"language": "en"})).json()
        url = f"{srv.ws}/ws/sessions/{body['session_id']}?token={body['token']}"
        # the client offers permessage-deflate, as browsers do
        async with connect(url, compression="deflate") as ws:
            assert ws.protocol.extensions == []
