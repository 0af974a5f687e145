"""The session REST calls against a real server on loopback."""

from __future__ import annotations

import asyncio

import httpx

from app.config import Settings
from tests.fixtures.clips import encode_jpeg, moving_face_frames
from tests.support.client import SessionClient, wait_state
from tests.support.server import ThreadServer


async def test_create_get_end_and_events(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        created = await http.post("/api/sessions", json={"title": "Demo day", "language": "en"})
        assert created.status_code == 201
        body = created.json()
        assert set(body) >= {"session_id", "token", "state", "ws_url", "offer_url", "created_at"}
        assert body["state"] == "created"
        assert len(body["session_id"]) >= 22 and len(body["token"]) >= 22
        assert body["ws_url"].startswith(f"ws://127.0.0.1:{server.port}/ws/sessions/")
        assert body["offer_url"].endswith(f"/api/sessions/{body['session_id']}/offer")
        sid, auth = body["session_id"], {"Authorization": f"Bearer {body['token']}"}

        info = (await http.get(f"/api/sessions/{sid}", headers=auth)).json()
        for field in (
            "session_id",
            "title",
            "state",
            "created_at",
            "started_at",
            "ended_at",
            "duration_s",
            "frames_received",
            "frames_analyzed",
            "report_url",
            "recording_url",
        ):
            assert field in info
        assert info["title"] == "Demo day" and info["state"] == "created"

        # the token also works as a query parameter
        by_query = await http.get(f"/api/sessions/{sid}", params={"token": body["token"]})
        assert by_query.status_code == 200

        ended = await http.post(f"/api/sessions/{sid}/end", headers=auth)
        assert ended.status_code == 202 and ended.json() == {"state": "finalizing"}
        await wait_state(http, f"/api/sessions/{sid}", auth, "completed")
        again = await http.post(f"/api/sessions/{sid}/end", headers=auth)
        assert again.status_code == 202 and again.json()["state"] == "completed"

        events = (await http.get(f"/api/sessions/{sid}/events", headers=auth)).json()["events"]
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        states = [e["state"] for e in events if e["type"] == "state"]
        assert states == ["finalizing", "completed"]
        assert all(e["session_id"] == sid and isinstance(e["t"], float | int) for e in events)


async def test_tokens_and_unknown_ids(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        body = (await http.post("/api/sessions")).json()
        sid = body["session_id"]
        missing = await http.get(f"/api/sessions/{sid}")
        assert missing.status_code == 401
        assert missing.json()["detail"]["code"] == "token_missing"
        wrong = await http.get(f"/api/sessions/{sid}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        assert wrong.json()["detail"]["code"] == "token_invalid"
        for path in ("", "/events", "/report", "/report.html", "/recording.webm"):
            answer = await http.get(f"/api/sessions/{sid}{path}", params={"token": "x" * 43})
            assert answer.status_code == 403, path
        unknown = await http.get("/api/sessions/doesnotexist", params={"token": body["token"]})
        assert unknown.status_code == 404
        assert unknown.json()["detail"]["code"] == "session_not_found"
        # another session's token does not open this one
        other = (await http.post("/api/sessions")).json()
        cross = await http.get(f"/api/sessions/{sid}", params={"token": other["token"]})
        assert cross.status_code == 403


async def test_report_is_409_until_completed(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        body = (await http.post("/api/sessions", json={"language": "ko"})).json()
        answer = await http.get(
            f"/api/sessions/{body['session_id']}/report", params={"token": body["token"]}
        )
        assert answer.status_code == 409
        assert answer.json()["detail"]["code"] == "report_not_ready"


async def test_invalid_body_is_a_coded_error(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        answer = await http.post("/api/sessions", json={"language": "fr"})
        assert answer.status_code == 422
        assert answer.json()["detail"]["code"] == "invalid_request"


async def test_events_after_seq_are_exactly_the_later_ones_in_order(settings: Settings) -> None:
    jpegs = [encode_jpeg(f) for f in moving_face_frames(30)]
    dense = settings.updated(metrics_hz=1000.0)  # an event for every frame
    with ThreadServer(dense) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        await client.send_frame(jpegs[0])  # the analyser built, then 2 s of frames
        await client.wait_for(lambda e: e["type"] == "metrics", 60)
        await client.send_paced(jpegs[1:], 15.0)
        await client.send_json({"type": "end"})
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
        await client.close()
        async with asyncio.timeout(30):  # the log is written just behind the live events
            while True:
                logged = (await client.get("/events")).json()["events"]
                if logged[-1]["type"] == "state" and logged[-1]["state"] == "completed":
                    break
                await asyncio.sleep(0.05)
        last = logged[-1]["seq"]
        assert [e["seq"] for e in logged] == list(range(1, last + 1)) and last >= 10
        for after in (0, 1, 7, last // 2, last - 1, last, last + 100):
            answer = await client.get("/events", params={"after_seq": after})
            assert answer.status_code == 200, answer.text
            assert answer.json()["events"] == [e for e in logged if e["seq"] > after], after
        for bad in ("-1", "x"):
            refused = await client.get("/events", params={"after_seq": bad})
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["detail"]["code"] == "invalid_request"
