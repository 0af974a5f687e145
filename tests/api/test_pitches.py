"""Pitches and their takes (contract v1.1) against a real server on loopback, on the embedded
SQLite and on PostgreSQL: takes streamed with real-face frames, the pitch's takes with their
scores and figures, the comparison, the pitch token and who it opens, the `time` cue against
the target length, and deleting a pitch while a take is live."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.errors import CoachError
from app.live import pitches
from app.live.manager import hash_token
from app.live.retention import sweep_expired
from app.store.db import PitchRow
from tests.fixtures.clips import encode_jpeg, moving_face_frames
from tests.support.client import SessionClient, wait_state
from tests.support.manager import running_manager
from tests.support.server import ThreadServer
from tests.support.services import fresh_postgres

FPS = 15.0
JPEGS = [encode_jpeg(f) for f in moving_face_frames(30, fps=FPS)]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'coach.db'}"
        return
    async with fresh_postgres() as url:
        yield url


@pytest.fixture
def pitch_server(settings: Settings, database_url: str) -> Iterator[ThreadServer]:
    with ThreadServer(settings.updated(database_url=database_url)) as srv:
        yield srv


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_pitch(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await http.post("/api/pitches", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def new_take(server: ThreadServer, pitch: dict[str, Any], **body: Any) -> SessionClient:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        answer = await http.post(
            "/api/sessions",
            json={"pitch_id": pitch["pitch_id"], **body},
            headers=bearer(pitch["token"]),
        )
    assert answer.status_code == 201, answer.text
    client = SessionClient(server.http, server.ws, answer.json())
    await client.connect()
    return client


async def stream_until(client: SessionClient, done: asyncio.Future[Any]) -> None:
    """Real-face frames, paced like a camera, until `done` (or the server ends the session and
    closes the socket)."""
    await client.send_frame(JPEGS[0])
    await client.wait_for(lambda e: e["type"] == "metrics", timeout=60)
    sender = asyncio.ensure_future(client.send_paced(itertools.cycle(JPEGS), FPS))
    try:
        await done
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await sender


async def stream_briefly(client: SessionClient) -> None:
    """Frames (no audio) until the session's metrics pass half a second."""
    passed = asyncio.ensure_future(
        client.wait_for(lambda e: e["type"] == "metrics" and e["t"] >= 0.5, timeout=60)
    )
    await stream_until(client, passed)


def cue_of(severity: str) -> Any:
    return lambda e: e["type"] == "cue" and e["cue"] == "time" and e["severity"] == severity


async def timed_take(server: ThreadServer, pitch: dict[str, Any]) -> SessionClient:
    """A take streamed until its `time` cue said it is past the target, then ended."""
    client = await new_take(server, pitch)
    past = asyncio.ensure_future(client.wait_for(cue_of("warn"), timeout=60))
    await stream_until(client, past)
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
    await client.close()
    return client


async def test_takes_of_a_pitch_their_scores_comparison_and_time_cue(
    pitch_server: ThreadServer,
) -> None:
    server = pitch_server
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        pitch = await new_pitch(http, title="Seed round", language="en", target_duration_s=1.0)
        assert set(pitch) == {
            "pitch_id",
            "token",
            "title",
            "language",
            "target_duration_s",
            "created_at",
        }
        assert (pitch["title"], pitch["language"], pitch["target_duration_s"]) == (
            "Seed round",
            "en",
            1.0,
        )
        pid, auth = pitch["pitch_id"], bearer(pitch["token"])

        first = await timed_take(server, pitch)
        # The `time` cue: `info` on at 80 % of the target, off and `warn` on at the target
        # (at the moments the thresholds were crossed), off at the end.
        timed = [e for e in first.of_type("cue") if e["cue"] == "time"]
        assert [(e["state"], e["severity"], e["t"]) for e in timed[:3]] == [
            ("on", "info", 0.8),
            ("off", "info", 1.0),
            ("on", "warn", 1.0),
        ]
        assert [(e["state"], e["severity"]) for e in timed[3:]] == [("off", "warn")]
        assert timed[3]["t"] >= 1.0
        assert "80 %" in timed[0]["message"] and "past your target" in timed[2]["message"]
        ended = next(e for e in first.of_type("state") if e["state"] == "finalizing")
        assert timed[3]["seq"] > ended["seq"]  # turned off by the end

        # The second take inherits the pitch's language and title; live, it cannot be compared.
        second = await new_take(server, pitch, language="ko")
        info = (await second.get()).json()
        assert (info["language"], info["title"]) == ("en", "Seed round")
        assert (info["pitch_id"], info["take"]) == (pid, 2)
        live = asyncio.get_running_loop().create_future()
        streaming = asyncio.ensure_future(stream_until(second, live))
        await second.wait_for(lambda e: e["type"] == "metrics", timeout=60)
        early = await http.get(
            f"/api/pitches/{pid}/compare", params={"a": first.id, "b": second.id}, headers=auth
        )
        assert early.status_code == 409, early.text
        assert early.json()["detail"]["code"] == "take_not_completed"
        assert early.json()["detail"]["session_id"] == second.id
        await second.wait_for(cue_of("warn"), timeout=60)
        live.set_result(None)
        await streaming
        await second.send_json({"type": "end"})
        await second.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
        await second.close()

        answer = await http.get(f"/api/pitches/{pid}", headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["pitch_id"], body["title"], body["language"]) == (pid, "Seed round", "en")
        takes = body["takes"]
        assert [(t["take"], t["session_id"], t["state"]) for t in takes] == [
            (1, first.id, "completed"),
            (2, second.id, "completed"),
        ]
        for take in takes:
            report = (await http.get(take["report_url"], headers=auth)).json()
            assert take["scores"] == report["scores"]
            assert take["scores"]["eye_contact"] is not None  # a real face, facing the camera
            figures = take["figures"]
            assert 0.0 < figures["eye_contact_share"] <= 1.0
            on = [c for c in report["cues"] if c["state"] == "on" and c["cue"] != "time"]
            assert figures["cues_on"] == len(on)
            # No audio was sent: nothing to transcribe, so no speech figures.
            assert figures["fillers_per_min"] is None and figures["words_per_min"] is None
            assert take["duration_s"] == report["duration_s"]
            assert take["recording_url"] == f"/api/sessions/{take['session_id']}/recording.webm"
            # The pitch token opens the take's report and recording.
            video = await http.get(take["recording_url"], params={"token": pitch["token"]})
            assert video.status_code == 200 and video.content[:4] == b"\x1a\x45\xdf\xa3"

        compared = await http.get(
            f"/api/pitches/{pid}/compare", params={"a": first.id, "b": second.id}, headers=auth
        )
        assert compared.status_code == 200, compared.text
        comparison = compared.json()
        assert comparison["a"] == takes[0] and comparison["b"] == takes[1]
        for group in ("scores", "figures"):
            a, b = takes[0][group], takes[1][group]
            expected = {
                k: None if a[k] is None or b[k] is None else round(b[k] - a[k], 3) for k in a
            }
            assert comparison["delta"][group] == expected

        # Takes of another pitch, or sessions of none, are not takes of this one.
        other = await new_pitch(http, title="Other")
        stranger = await new_take(server, other)
        await stranger.close()
        loose = (await http.post("/api/sessions")).json()
        for foreign in (stranger.id, loose["session_id"], "no-such-session"):
            wrong = await http.get(
                f"/api/pitches/{pid}/compare", params={"a": first.id, "b": foreign}, headers=auth
            )
            assert wrong.status_code == 404, wrong.text
            assert wrong.json()["detail"]["code"] == "take_not_found"

        # Who opens the pitch: its token only.
        missing = await http.get(f"/api/pitches/{pid}")
        assert missing.status_code == 401 and missing.json()["detail"]["code"] == "token_missing"
        for token in ("nope", first.token, other["token"], loose["token"]):
            refused = await http.get(f"/api/pitches/{pid}", headers=bearer(token))
            assert refused.status_code == 403, token
            assert refused.json()["detail"]["code"] == "token_invalid"
            gone = await http.delete(f"/api/pitches/{pid}", params={"token": token})
            assert gone.status_code == 403
        unknown = await http.get("/api/pitches/no-such-pitch", headers=auth)
        assert unknown.status_code == 404 and unknown.json()["detail"]["code"] == "pitch_not_found"
        # Another pitch's token does not open this pitch's takes.
        cross = await http.get(f"/api/sessions/{first.id}", headers=bearer(other["token"]))
        assert cross.status_code == 403

        # A take needs the pitch's own token.
        for headers, status in (
            ({}, 401),
            (bearer(other["token"]), 403),
            (bearer(first.token), 403),
        ):
            refused = await http.post("/api/sessions", json={"pitch_id": pid}, headers=headers)
            assert refused.status_code == status, refused.text
        no_pitch = await http.post("/api/sessions", json={"pitch_id": "nope"}, headers=auth)
        assert no_pitch.status_code == 404
        assert no_pitch.json()["detail"]["code"] == "pitch_not_found"
        # ...and the numbering goes on (the refused calls took no number).
        third = await new_take(server, pitch)
        await third.close()
        numbers = [
            t["take"] for t in (await http.get(f"/api/pitches/{pid}", headers=auth)).json()["takes"]
        ]
        assert numbers == [1, 2, 3]


async def test_deleting_a_pitch_ends_its_live_take_then_removes_everything(
    pitch_server: ThreadServer,
) -> None:
    server = pitch_server
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        pitch = await new_pitch(http, title="발표", language="ko")
        pid, auth = pitch["pitch_id"], bearer(pitch["token"])
        other = await new_pitch(http, title="kept")
        kept = await new_take(server, other)
        await kept.close()

        done = await new_take(server, pitch)
        await done.close()
        await http.post(f"/api/sessions/{done.id}/end", headers=auth)  # the pitch token ends it
        await wait_state(http, f"/api/sessions/{done.id}", auth, "completed")

        live = await new_take(server, pitch)
        never = asyncio.get_running_loop().create_future()
        streaming = asyncio.ensure_future(stream_until(live, never))
        await live.wait_for(lambda e: e["type"] == "metrics", timeout=60)
        sessions_dir = server.settings.sessions_dir
        assert (sessions_dir / live.id).is_dir()

        deleted = await http.delete(f"/api/pitches/{pid}", headers=auth)
        assert deleted.status_code == 204, deleted.text
        # Ended as a normal end (reason given), finalised to the end, before it was deleted.
        finalizing = await live.wait_for(
            lambda e: e["type"] == "state" and e["state"] == "finalizing"
        )
        assert finalizing["reason"] == "pitch_deleted"
        await live.wait_for(lambda e: e["type"] == "report_ready")
        await live.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        never.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streaming
        await live.close()

        for take in (done, live):
            assert not (sessions_dir / take.id).exists()
            gone = await http.get(f"/api/sessions/{take.id}", headers=bearer(take.token))
            assert gone.status_code == 404
        assert (await http.get(f"/api/pitches/{pid}", headers=auth)).status_code == 404
        assert (await http.delete(f"/api/pitches/{pid}", headers=auth)).status_code == 404
        # Another pitch and its take are untouched.
        other_now = await http.get(
            f"/api/pitches/{other['pitch_id']}", headers=bearer(other["token"])
        )
        assert [t["session_id"] for t in other_now.json()["takes"]] == [kept.id]


async def test_a_pitch_being_deleted_refuses_takes_and_a_retry_removes_everything(
    settings: Settings, database_url: str
) -> None:
    """A delete that stopped midway (the pitch marked, a take left): no take is added any more,
    and deleting again with the same pitch finishes, also ending a take still `created` that
    nothing in memory holds (as after a restart)."""
    async with running_manager(settings.updated(database_url=database_url)) as manager:
        created, token = await pitches.create_pitch(
            manager, title="t", language="en", target_duration_s=None, client="c"
        )
        pitch = await manager.repo.get_pitch(created.id)
        assert pitch is not None and pitch.deleting_at is None
        # Only the token's hash is stored.
        assert pitch.token_hash != token and pitch.token_hash == hash_token(token)
        take, _token, _ = await manager.create(
            title="", language="en", critique_interval_s=None, client="c", pitch=pitch
        )
        # As after a restart: only the row is left, `created`.
        manager.sessions.pop(take.id)
        entry = manager.created.pop(take.id)
        assert entry.expiry is not None
        entry.expiry.cancel()
        await take.cancel_all()

        assert await manager.repo.mark_pitch_deleting(pitch.id, datetime.now(UTC))
        with pytest.raises(CoachError) as refused:
            await manager.create(
                title="", language="en", critique_interval_s=None, client="c", pitch=pitch
            )
        assert refused.value.code == "pitch_not_found"
        marked = await manager.repo.get_pitch(pitch.id)
        assert marked is not None and marked.deleting_at is not None  # still there
        assert [r.id for r in await manager.repo.takes_of(pitch.id)] == [take.id]

        await pitches.delete_pitch(manager, marked)
        assert await manager.repo.get_pitch(pitch.id) is None
        assert await manager.repo.takes_of(pitch.id) == []
        assert await manager.repo.get_session(take.id) is None
        assert not manager.session_dir(take.id).exists()


async def test_retention_deletes_pitches_left_without_takes(
    settings: Settings, database_url: str
) -> None:
    """Takes expire like any session; a pitch goes once it is itself past retention and none
    of its takes is left."""
    settings = settings.updated(database_url=database_url, retention_days=30.0)
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    async with running_manager(settings) as manager:
        repo = manager.repo
        for pitch_id, created in (("old-empty", old), ("new-empty", now), ("old-taken", old)):
            row = PitchRow(id=pitch_id, token_hash="h", title="", language="ko", created_at=created)
            await repo.create_pitch(row)
        taken = await repo.get_pitch("old-taken")
        assert taken is not None
        session, _token, _ = await manager.create(
            title="", language="en", critique_interval_s=None, client="c", pitch=taken
        )
        manager.sessions.pop(session.id)  # as after a restart: only the row is left
        await repo.update_session(session.id, state="completed", created_at=old, ended_at=old)
        recent, _token, _ = await manager.create(
            title="", language="en", critique_interval_s=None, client="c", pitch=taken
        )
        manager.sessions.pop(recent.id)
        await repo.update_session(recent.id, state="completed")
        assert [r.take for r in await repo.takes_of("old-taken")] == [1, 2]

        # The old take expires; the pitch keeps its recent one. The old empty pitch goes.
        assert await sweep_expired(manager, now) == [session.id]
        assert await repo.get_pitch("old-empty") is None
        assert await repo.get_pitch("new-empty") is not None
        assert await repo.get_pitch("old-taken") is not None
        # Once its last take expired too, the pitch goes with it.
        later = now + timedelta(days=31)
        assert await sweep_expired(manager, later) == [recent.id]
        assert await repo.get_pitch("old-taken") is None
        assert await repo.get_pitch("new-empty") is None  # past retention itself by then


GRACE_S = 5.0


@pytest.fixture
def graceful_server(settings: Settings) -> Iterator[ThreadServer]:
    limits = settings.limits.model_copy(update={"reconnect_grace_s": GRACE_S})
    with ThreadServer(settings.updated(limits=limits)) as srv:
        yield srv


async def test_a_take_left_by_a_closed_tab_ends_where_the_tab_went(
    graceful_server: ThreadServer,
) -> None:
    """A take whose socket closes without `end` is finalised after the reconnect grace "as if
    `end` had been sent": its length is what was rehearsed, not that plus the grace, and its
    `time` cue says nothing while nobody is there (the target falls inside the grace)."""
    server = graceful_server
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        pitch = await new_pitch(http, title="Tab closed", language="en", target_duration_s=4.0)
        take = await new_take(server, pitch)
        await stream_briefly(take)
        seen = max(e["t"] for e in take.events)
        await take.close()  # no `end`: the browser tab went away
        info = await take.wait_completed(timeout=60)
        events = (await take.get("/events")).json()["events"]
        report = (await take.get("/report")).json()
        listed = await http.get(f"/api/pitches/{pitch['pitch_id']}", headers=bearer(pitch["token"]))
    finalizing = next(e for e in events if e["type"] == "state" and e["state"] == "finalizing")
    assert finalizing["reason"] == "disconnected"
    # Ended where the socket went: after everything the client saw, well before the grace ran
    # out (before, the grace was counted as rehearsal: seen + 5 s at least).
    assert seen <= info["duration_s"] < seen + GRACE_S
    assert finalizing["t"] == info["duration_s"] == report["duration_s"]
    assert listed.json()["takes"][0]["duration_s"] == info["duration_s"]
    closing = [e for e in events if e["type"] == "report_ready" or e.get("state") == "completed"]
    assert len(closing) == 2 and all(e["t"] >= finalizing["t"] for e in closing), closing
    timed = [e for e in events if e["type"] == "cue" and e["cue"] == "time"]
    assert all(e["t"] <= info["duration_s"] for e in timed), timed
    if info["duration_s"] < 0.8 * 4.0:  # left before the first threshold: nothing said
        assert timed == []


async def test_a_korean_take_without_audio_has_no_speech_figures(
    graceful_server: ThreadServer,
) -> None:
    """Korean has an embedded recogniser; a take that sent it no audio was not measured, so
    its speech figures are null (not the zeros of an empty transcript) and so is the
    comparison's delta of them."""
    server = graceful_server
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        pitch = await new_pitch(http, title="무음", language="ko")
        take = await new_take(server, pitch)
        await stream_briefly(take)
        await take.send_json({"type": "end"})
        await take.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
        await take.close()
        report = (await take.get("/report")).json()
        listed = await http.get(f"/api/pitches/{pitch['pitch_id']}", headers=bearer(pitch["token"]))
    assert report["language"] == "ko"
    assert report["transcript"] is None and report["transcript_note"] == "no audio was received"
    assert report["fillers"]["per_minute"] is None and report["fillers"]["count"] == 0
    figures = listed.json()["takes"][0]["figures"]
    assert figures["fillers_per_min"] is None and figures["words_per_min"] is None
    assert figures["eye_contact_share"] is not None  # the frames were measured
