"""Hostile WebSocket input against a real server process: random binary and text messages,
truncated JPEGs, decompression bombs (a small PNG or JPEG whose header claims 30000x30000) and
`AUD1` audio of odd and oversize lengths. Every bad message answers an `error` event, nothing
else goes wrong, the session stays live and the process never crashes. Seeded, so a failure
reproduces; bounded, so CI stays fast."""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path

import httpx

from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.server import process_server

SEED = 20261124
MESSAGES = 300


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose IHDR claims width x height."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    # a compressed stream that would inflate to a huge image of zeros
    idat = zlib.compress(b"\x00" * 1_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_bomb(real_jpeg: bytes, width: int = 30_000, height: int = 30_000) -> bytes:
    """A real JPEG whose SOF marker is rewritten to claim width x height."""
    data = bytearray(real_jpeg)
    i = 2
    while i < len(data) - 9:
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker")


def hostile_messages(rng: random.Random, jpeg: bytes) -> list[bytes | str]:
    messages: list[bytes | str] = [
        png_bomb(),
        jpeg_bomb(jpeg),
        png_bomb(1, 2_000_000),
        b"",
        b"AUD1",
        b"AUD1\x00",
        b"AUD1" + b"\x01\x00" * 16_001,  # just over 1 s
        "",
        "[" * 10_000 + "]" * 10_000,
        '{"type": "end"',
        '{"type": ["end"]}',
        json.dumps({"type": "ping", "x": 1e308}),
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    ]
    while len(messages) < MESSAGES:
        kind = rng.randrange(5)
        if kind == 0:
            messages.append(rng.randbytes(rng.randrange(1, 4096)))
        elif kind == 1:
            messages.append(jpeg[: rng.randrange(1, len(jpeg) - 1)])
        elif kind == 2:
            body = bytearray(jpeg)
            for _ in range(rng.randrange(1, 20)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            messages.append(bytes(body))
        elif kind == 3:
            messages.append(b"AUD1" + rng.randbytes(rng.randrange(0, 40_000) | 1))  # odd
        else:
            alphabet = '{}[]":,typeendping0123456789 \\u00e9한'
            messages.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 200))))
    rng.shuffle(messages)
    return messages


async def test_hostile_messages_only_make_errors(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    jpeg = encode_jpeg(labelled_clip(15.0, [Segment("frontal", 0.1)])[0].image)
    messages = hostile_messages(rng, jpeg)
    # the input rate limit and the decode backlog's bounds are lifted so every message reaches
    # the decoder (a flood past them drops the oldest frames unread, errors and all)
    env = {
        "COACH_LOG_LEVEL": "WARNING",
        "COACH_MIN_FREE_DISK_MB": "0",
        "COACH_MAX_FPS_IN": "100000",
        "COACH_DECODE_BACKLOG": "100000",
        "COACH_DECODE_MAX_WAIT_S": "1e9",
    }
    with process_server(tmp_path / "data", env) as srv:
        client = await SessionClient.create(srv.http, srv.ws, language="en")
        await client.connect()
        for message in messages:
            assert client.ws is not None
            await client.ws.send(message)
        # a ping answered after the flood: everything before it was taken in
        await client.send_json({"type": "ping"})
        await client.wait_for(lambda e: e["type"] == "pong", timeout=60)
        await client.send_frame(jpeg)  # and a good frame is still analysed
        await client.wait_for(lambda e: e["type"] == "metrics", timeout=60)
        info = (await client.get()).json()
        assert srv.proc is not None and srv.proc.poll() is None  # alive
        async with httpx.AsyncClient(base_url=srv.http) as http:
            assert (await http.get("/healthz")).status_code == 200
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
        await client.close()

    assert info["state"] == "live"
    kinds = {e["type"] for e in client.events}
    assert kinds <= {
        "state",
        "error",
        "metrics",
        "cue",
        "voice",
        "critique",
        "pong",
        "report_ready",
    }
    errors = client.of_type("error")
    codes = {e["code"] for e in errors}
    assert codes <= {"bad_frame", "bad_audio", "bad_message"}, codes
    # the bombs were refused on their header
    reasons = [e.get("reason", "") for e in errors]
    bombs = [r for r in reasons if "30000x30000" in r or "DecompressionBomb" in r]
    assert len(bombs) == 2, bombs
    assert any("1x2000000" in r for r in reasons)
    states = [e["state"] for e in client.of_type("state")]
    assert "failed" not in states and states[-1] == "completed"
    # at least one error for each message that cannot be valid (random bytes never make a
    # valid image of the right size; odd AUD1 lengths never pass)
    assert len(errors) >= sum(
        1 for m in messages if isinstance(m, bytes) and m.startswith(b"AUD1") and len(m) % 2
    )
