"""The report and the delete call through a real server on loopback."""

from __future__ import annotations

import asyncio
import math
import time
from html.parser import HTMLParser
from typing import Any

import httpx

from app.config import Settings
from app.store.repository import SessionRepository
from tests.fixtures.clips import LabelledFrame, Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient, wait_state
from tests.support.contract import REPORT_FIELDS
from tests.support.server import ThreadServer

FPS = 15.0


def _metrics(t: float, on_camera: bool) -> dict[str, Any]:
    return {
        "type": "metrics",
        "t": t,
        "frame": int(t * 15),
        "face": True,
        "gaze": {"on_camera": on_camera, "yaw_deg": 0.0, "pitch_deg": 0.0},
        "posture": {"shoulder_tilt_deg": 1.0, "head_tilt_deg": 0.5, "lean": 1.0},
        "gesture": {"hands_visible": 2, "activity": 0.6},
        "sway": 0.02,
        "face_size": 0.2,
        "latency_ms": 20.0,
    }


async def _insert_events(settings: Settings, session_id: str, events: list[dict[str, Any]]) -> None:
    """Events as the live loop would have persisted them, written through a second repository on
    the server's SQLite file (seq numbers clear of the ones the session itself emits)."""
    repo = SessionRepository(settings.resolved_database_url)
    try:
        await repo.add_events(
            [{**e, "session_id": session_id, "seq": 1000 + i} for i, e in enumerate(events)]
        )
    finally:
        await repo.close()


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.append(tag)


async def test_report_json_and_html_after_the_end(server: ThreadServer, settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        title = "<script>document.title='pwned'</script>"
        body = (await http.post("/api/sessions", json={"title": title, "language": "en"})).json()
        sid, auth = body["session_id"], {"Authorization": f"Bearer {body['token']}"}
        events = [_metrics(i / 5, on_camera=(i // 5) % 4 != 0) for i in range(40)]
        events += [
            {
                "type": "cue",
                "t": 3.0,
                "cue": "eye_contact",
                "state": "on",
                "severity": "warn",
                "message": "Look at the camera: that is your audience.",
            },
            {
                "type": "cue",
                "t": 5.0,
                "cue": "eye_contact",
                "state": "off",
                "severity": "warn",
                "message": "Look at the camera: that is your audience.",
            },
        ]
        await _insert_events(settings, sid, events)

        assert (await http.post(f"/api/sessions/{sid}/end", headers=auth)).status_code == 202
        info = await wait_state(http, f"/api/sessions/{sid}", auth, "completed", "failed")
        assert info["state"] == "completed", info
        assert info["report_url"] == f"/api/sessions/{sid}/report"

        answer = await http.get(f"/api/sessions/{sid}/report", headers=auth)
        assert answer.status_code == 200
        report = answer.json()
        for field in sorted(REPORT_FIELDS):
            assert field in report, field
        assert report["title"] == title
        assert report["scores"]["eye_contact"] == 75  # one second in four looking away
        assert report["scores"]["voice"] is None
        assert len(report["timeline"]) == 8  # the last event at 7.8 s: eight seconds
        assert [c["state"] for c in report["cues"]] == ["on", "off"]
        assert report["critiques"] == [] and report["recording_url"] is None

        page = await http.get(f"/api/sessions/{sid}/report.html", params={"token": body["token"]})
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        tags = _Tags()
        tags.feed(page.text)
        assert "svg" in tags.names and "polyline" in tags.names
        assert title not in page.text and "&lt;script&gt;document.title=" in page.text

        events_after = (await http.get(f"/api/sessions/{sid}/events", headers=auth)).json()
        ready = [e for e in events_after["events"] if e["type"] == "report_ready"]
        assert ready and ready[0]["report_url"] == f"/api/sessions/{sid}/report"
        # No video came, so no recording: the event says so, as the session and report do.
        assert ready[0]["recording_url"] is None and info["recording_url"] is None
        missing = await http.get(f"/api/sessions/{sid}/recording.webm", headers=auth)
        assert missing.status_code == 404


async def test_delete_removes_a_finished_session(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        body = (await http.post("/api/sessions", json={"language": "ko"})).json()
        sid, auth = body["session_id"], {"Authorization": f"Bearer {body['token']}"}
        assert (await http.delete(f"/api/sessions/{sid}")).status_code == 401
        wrong = await http.delete(f"/api/sessions/{sid}", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 403

        active = await http.delete(f"/api/sessions/{sid}", headers=auth)
        assert active.status_code == 409
        assert active.json()["detail"]["code"] == "session_active"

        await http.post(f"/api/sessions/{sid}/end", headers=auth)
        await wait_state(http, f"/api/sessions/{sid}", auth, "completed")
        directory = server.settings.sessions_dir / sid
        assert (directory / "report.json").is_file()
        neighbour = server.settings.sessions_dir / "unrelated-file.txt"
        neighbour.write_text("keep me")

        deleted = await http.delete(f"/api/sessions/{sid}", headers=auth)
        assert deleted.status_code == 200
        assert deleted.json()["session_id"] == sid
        assert not directory.exists() and neighbour.read_text() == "keep me"
        gone = await http.get(f"/api/sessions/{sid}", headers=auth)
        assert gone.status_code == 404
        again = await http.delete(f"/api/sessions/{sid}", headers=auth)
        assert again.status_code == 404


async def _stream_and_report(server: ThreadServer, frames: list[LabelledFrame]) -> dict[str, Any]:
    client = await SessionClient.create(server.http, server.ws, language="en", title="clip")
    await client.connect()
    jpegs = [encode_jpeg(f.image) for f in frames]
    # The analysers load on the first frame (a second or two): wait for them, so the clip's
    # first segment is analysed like the rest instead of falling into the start-up gap.
    await client.send_frame(jpegs[0])
    await client.wait_for(lambda e: e["type"] == "metrics", timeout=60)
    start = time.monotonic()
    for i, data in enumerate(jpegs):  # paced like a camera
        delay = start + i / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await client.send_frame(data)
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
    await client.close()
    info = await client.wait_completed()
    assert info["state"] == "completed", info
    answer = await client.get("/report")
    assert answer.status_code == 200
    report: dict[str, Any] = answer.json()
    page = await client.get("/report.html")
    tags = _Tags()
    tags.feed(page.text)
    report["_html_tags"] = tags.names
    return report


async def test_eye_contact_score_separates_facing_from_looking_away(server: ThreadServer) -> None:
    """Real photos through the real analysers. A flat photo cannot turn its eyes, so looking
    away is the presenter turning from the camera (to the slides) until no face is visible."""
    facing = labelled_clip(
        FPS,
        [
            Segment("frontal", 4.0),
            Segment("frontal", 4.0, source="grace_hopper"),
        ],
    )
    half_away = labelled_clip(
        FPS,
        [
            Segment("frontal", 2.0),
            Segment("empty", 2.0),
            Segment("frontal", 2.0, source="grace_hopper"),
            Segment("empty", 2.0),
        ],
    )
    good, away = await asyncio.gather(
        _stream_and_report(server, facing), _stream_and_report(server, half_away)
    )
    assert good["scores"]["eye_contact"] >= 85, good["scores"]
    assert away["scores"]["eye_contact"] <= 65, away["scores"]
    assert good["scores"]["eye_contact"] - away["scores"]["eye_contact"] >= 30
    for report in (good, away):
        assert 7.5 <= report["duration_s"] <= 20.0  # the clip plus the analysers' start-up
        assert len(report["timeline"]) == math.ceil(report["duration_s"])
        assert report["scores"]["overall"] is not None
        kinds = {(k["category"], k["kind"]) for k in report["keyframes"]}
        assert ("eye_contact", "best") in kinds
        assert all(k["image"].startswith("data:image/jpeg;base64,") for k in report["keyframes"])
        assert "svg" in report["_html_tags"]
        assert report["_html_tags"].count("img") == len(report["keyframes"])
    # the away clip's worst eye-contact moment is one with no face in view
    worst = next(
        k for k in away["keyframes"] if (k["category"], k["kind"]) == ("eye_contact", "worst")
    )
    assert worst["caption"].startswith("Face out of view")
    # seconds with no face score 0 on the timeline; facing seconds score 100
    away_rows = [r["eye_contact"] for r in away["timeline"] if r["eye_contact"] is not None]
    assert min(away_rows) == 0.0 and max(away_rows) == 100.0
