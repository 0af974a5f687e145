"""Secrets and isolation: tokens stored hashed and never logged, every artefact behind the
token, security headers and CSPs, the CORS allow-list."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.security import PAGE_CSP, REPORT_CSP, REPORT_SCRIPT_HASHES, redact
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.server import ThreadServer, process_server

ARTEFACT_GETS = ("", "/events", "/report", "/report.html", "/recording.webm")


def test_redact_masks_query_tokens_and_bearer_headers() -> None:
    line = 'GET /api/sessions/abc/recording.webm?token=s3cr3t-_x&after_seq=2 "Bearer zz.Y-1"'
    assert redact(line) == (
        'GET /api/sessions/abc/recording.webm?token=***&after_seq=2 "Bearer ***"'
    )


async def test_every_artefact_needs_this_sessions_token(server: ThreadServer) -> None:
    """Once the session is completed and its files exist: no token 401, a wrong one or another
    session's 403, on every URL and on the WebSocket."""
    owner = await SessionClient.create(server.http, server.ws, title="mine", language="en")
    await owner.connect()
    await owner.send_frame(encode_jpeg(labelled_clip(15.0, [Segment("frontal", 0.1)])[0].image))
    await owner.wait_for(lambda e: e["type"] == "metrics", timeout=60)
    await owner.end()
    await owner.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
    await owner.close()
    # the report stage is another module's; its file stands in here so the route serves it
    session_dir = server.manager.session_dir(owner.id)
    (session_dir / "report.html").write_text("<p>report</p>", "utf-8")
    (session_dir / "report.json").write_text("{}", "utf-8")
    assert (await owner.get("/recording.webm")).status_code == 200
    assert (await owner.get("/report.html")).status_code == 200

    stranger = (await SessionClient.create(server.http, server.ws)).token
    base = f"/api/sessions/{owner.id}"
    async with httpx.AsyncClient(base_url=server.http) as http:
        for path in ARTEFACT_GETS:
            assert (await http.get(base + path)).status_code == 401, path
            for token in ("wrong", stranger, owner.token[:-1]):
                by_query = await http.get(base + path, params={"token": token})
                by_header = await http.get(
                    base + path, headers={"Authorization": f"Bearer {token}"}
                )
                assert by_query.status_code == by_header.status_code == 403, path
                assert by_query.json()["detail"]["code"] == "token_invalid"
        for post in ("/end", "/offer"):
            answer = await http.post(
                base + post, params={"token": stranger}, json={"sdp": "v=0", "type": "offer"}
            )
            assert answer.status_code == 403, post
    async with connect(f"{server.ws}/ws/sessions/{owner.id}?token={stranger}") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1008


async def test_tokens_are_stored_hashed(server: ThreadServer, settings: Settings) -> None:
    client = await SessionClient.create(server.http, server.ws)
    check_stored_hashed(settings, client)


def check_stored_hashed(settings: Settings, client: SessionClient) -> None:
    stored = Path(settings.resolved_database_url.split("///", 1)[1])
    with sqlite3.connect(stored) as db:
        (token_hash,) = db.execute(
            "SELECT token_hash FROM sessions WHERE id = ?", (client.id,)
        ).fetchone()
    assert token_hash == hashlib.sha256(client.token.encode()).hexdigest()
    assert client.token.encode() not in stored.read_bytes()


async def test_a_script_title_comes_back_as_inert_json(server: ThreadServer) -> None:
    title = '</script><script>alert("x")</script><img src=x onerror=alert(1)>'
    client = await SessionClient.create(server.http, server.ws, title=title)
    answer = await client.get()
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.json()["title"] == title  # data, never markup: the page sets textContent


async def test_page_and_api_carry_security_headers(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        for path in ("/", "/app.js", "/api/sessions/nosuch", "/healthz"):
            answer = await http.get(path)
            assert answer.headers["content-security-policy"] == PAGE_CSP, path
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in PAGE_CSP and "'unsafe-inline'" not in PAGE_CSP
    # The report's one script (seeking its recording) is allowed by hash, each version ever
    # released (stored reports keep theirs), nothing else.
    script_src = REPORT_CSP.split("script-src ", 1)[1].split(";", 1)[0].split()
    assert script_src == [f"'{h}'" for h in REPORT_SCRIPT_HASHES]
    assert all(h.startswith("sha256-") for h in REPORT_SCRIPT_HASHES)
    assert "default-src 'none'" in REPORT_CSP


async def test_report_html_has_its_own_policy_without_scripts(server: ThreadServer) -> None:
    client = await SessionClient.create(server.http, server.ws)
    await client.end()
    await client.wait_completed()
    (server.manager.session_dir(client.id)).mkdir(parents=True, exist_ok=True)
    (server.manager.session_dir(client.id) / "report.html").write_text("<p>r</p>", "utf-8")
    answer = await client.get("/report.html")
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == REPORT_CSP
    assert "style-src 'unsafe-inline'" in REPORT_CSP and "img-src data:" in REPORT_CSP
    # the rehearsal page frames the report; nobody else may
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in REPORT_CSP


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }


async def test_cors_default_is_same_origin_only(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        answer = await http.options("/api/sessions", headers=preflight("https://evil.example"))
        assert answer.status_code == 400
        assert "access-control-allow-origin" not in answer.headers
        simple = await http.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers


async def test_cors_allow_list_lets_a_listed_origin_in(settings: Settings) -> None:
    allowed = "https://coach.example"
    with ThreadServer(settings.updated(cors_origins=[allowed])) as srv:
        async with httpx.AsyncClient(base_url=srv.http) as http:
            ok = await http.options("/api/sessions", headers=preflight(allowed))
            refused = await http.options("/api/sessions", headers=preflight("https://x.example"))
            created = await http.post("/api/sessions", headers={"Origin": allowed})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == allowed
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == allowed


async def test_tokens_never_reach_the_logs_and_logs_carry_ids(tmp_path: Path) -> None:
    """A real server process with uvicorn's access log on and JSON logs: links and the
    WebSocket carry `?token=` in the URL, and none of it appears in the output; the app's own
    lines carry the session and request ids."""
    env = {"COACH_LOG_LEVEL": "INFO", "COACH_LOG_JSON": "true", "COACH_MIN_FREE_DISK_MB": "0"}
    with process_server(tmp_path / "data", env, log_level="info") as srv:
        async with httpx.AsyncClient(base_url=srv.http) as http:
            created = await http.post("/api/sessions", headers={"X-Request-ID": "req-test-42"})
            body = created.json()
            sid, token = body["session_id"], body["token"]
            await http.get(f"/api/sessions/{sid}", params={"token": token})
            await http.get(f"/api/sessions/{sid}", headers={"Authorization": f"Bearer {token}"})
            async with connect(f"{srv.ws}/ws/sessions/{sid}?token={token}") as ws:
                # the first frame makes the session live (a line this test looks for)
                await ws.send(encode_jpeg(labelled_clip(15.0, [Segment("frontal", 0.1)])[0].image))
                await ws.send(json.dumps({"type": "ping"}))
                while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "pong":
                    pass
            await http.post(f"/api/sessions/{sid}/end", params={"token": token})
        log_path = srv.log_path
    output = log_path.read_text("utf-8", errors="replace")
    assert token not in output
    assert "token=***" in output  # the access log line is there, masked
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    created_line = next(r for r in records if r["msg"] == "session created")
    assert created_line["session_id"] == sid
    assert created_line["request_id"] == "req-test-42"
    assert any(r.get("session_id") == sid and r["msg"] == "session live" for r in records)
