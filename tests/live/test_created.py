"""Sessions before their first media: a listener does not start them, they are bounded (per
client address and in all) apart from the live ones, and one that never receives media ends
`failed` / `never_started` at its deadline, giving back its place and its analyser at once."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from app.config import Settings
from app.wiring import AnalyzerService
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.live.test_ws_live import FPS, stream
from tests.support.client import SessionClient
from tests.support.server import ThreadServer

pytestmark = pytest.mark.timeout(600)


def analyzers_built(server: ThreadServer) -> int:
    service = server.app.state.manager.services.hooks.make_analyzer.__self__
    assert isinstance(service, AnalyzerService)
    return service.built


def from_address(address: str) -> httpx.AsyncClient:
    """A client whose connections come from another loopback address (another presenter)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(transport=transport, timeout=30)


async def test_a_listener_leaves_the_session_created_and_the_first_frame_starts_it(
    settings: Settings,
) -> None:
    jpeg = encode_jpeg(labelled_clip(FPS, [Segment("frontal", 0.1)])[0].image)
    with ThreadServer(settings) as srv:
        presenter = await SessionClient.create(srv.http, srv.ws, language="en")
        listener = SessionClient(srv.http, srv.ws, presenter.info)
        await listener.connect()
        await listener.send_json({"type": "ping"})
        await listener.wait_for(lambda e: e["type"] == "pong")
        await presenter.connect()
        await presenter.send_json({"type": "ping"})
        await presenter.wait_for(lambda e: e["type"] == "pong")
        info = (await presenter.get()).json()
        assert info["state"] == "created" and info["started_at"] is None

        await presenter.send_frame(jpeg)
        live = await listener.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        assert live["seq"] == 1
        assert (await presenter.get()).json()["state"] == "live"
        await presenter.end()
        await listener.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 60)
        await presenter.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        listened = [e for e in listener.events if e["type"] != "pong"]
        assert listened == [e for e in presenter.events if e["type"] != "pong"]
        await listener.close()
        await presenter.close()


async def test_created_sessions_are_bounded_per_address_and_in_all(settings: Settings) -> None:
    settings = settings.updated(
        **{
            "max_created_per_client": 2,
            "max_created_sessions": 3,
            "max_concurrent_sessions": 2,
        }
    )
    with ThreadServer(settings) as srv:
        url = f"{srv.http}/api/sessions"
        async with from_address("127.0.0.1") as first, from_address("127.0.0.2") as second:
            mine = [(await first.post(url)).json() for _ in range(2)]
            refused = await first.post(url)
            assert refused.status_code == 429
            assert refused.json()["detail"]["code"] == "rate_limited"
            assert 0 < int(refused.headers["retry-after"]) <= settings.limits.created_ttl_s
            # Another presenter is not held up by the first one's unused sessions ...
            assert (await second.post(url)).status_code == 201
            # ... until the server's own bound on sessions waiting for media.
            async with from_address("127.0.0.3") as third:
                full = await third.post(url)
            assert full.status_code == 503
            assert full.json()["detail"]["code"] == "too_many_sessions"
            assert int(full.headers["retry-after"]) > 0

            # Created sessions are not live ones: two of them start although the live limit
            # is two, and starting one gives its creator's place back.
            jpeg = encode_jpeg(labelled_clip(FPS, [Segment("frontal", 0.1)])[0].image)
            clients = [SessionClient(srv.http, srv.ws, info) for info in mine]
            for client in clients:
                await client.connect()
                await client.send_frame(jpeg)
                await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
            assert (await first.post(url)).status_code == 503  # now the live limit speaks
            for client in clients:
                await client.end()
                await client.wait_completed()
                await client.close()
            assert (await first.post(url)).status_code == 201


async def test_unused_sessions_expire_never_started_and_sixteen_new_ones_stream(
    settings: Settings,
) -> None:
    """The issue's case: 40 sessions created and never connected to. At their deadline every
    one is `failed` / `never_started`, none holds an analyser or a place, a listener hears the
    end, and 16 new sessions then stream normally."""
    ttl = 4.0
    settings = settings.updated(
        **{
            "created_ttl_s": ttl,
            "max_created_per_client": 40,
            "session_create_per_minute": 100,
        }
    )
    with ThreadServer(settings) as srv:
        manager = srv.app.state.manager
        unused = [await SessionClient.create(srv.http, srv.ws, language="ko") for _ in range(40)]
        # (On a busy machine the first ones may reach their deadline before the last is made;
        # that each ended no sooner than its deadline is checked below.)
        # Only a few pre-build an analyser, whatever the number of creations.
        assert analyzers_built(srv) <= settings.limits.prewarm_analyzers
        listener = unused[-1]
        await listener.connect()
        ended = await listener.wait_for(lambda e: e["type"] == "state", timeout=ttl + 60)
        assert ended["state"] == "failed" and ended["reason"] == "never_started"
        assert await listener.wait_closed(30) == 1000

        async with httpx.AsyncClient(base_url=srv.http, timeout=30) as http:
            for client in unused:
                path = f"/api/sessions/{client.id}"
                info = await _wait_failed(http, path, client.auth, ttl + 60)
                assert info["reason"] == "never_started" and info["started_at"] is None
                lived = datetime.fromisoformat(info["ended_at"]) - datetime.fromisoformat(
                    info["created_at"]
                )
                assert lived.total_seconds() >= ttl - 0.01, info
                report = await http.get(f"{path}/report", headers=client.auth)
                assert report.status_code == 409
                assert report.json()["detail"]["code"] == "report_not_ready"
                recording = await http.get(f"{path}/recording.webm", headers=client.auth)
                assert recording.status_code == 404
                events = (await http.get(f"{path}/events", headers=client.auth)).json()["events"]
                assert [(e["type"], e["state"]) for e in events] == [("state", "failed")]
                if client is not unused[0]:  # finished, so it can be deleted now
                    assert (await http.delete(path, headers=client.auth)).status_code == 200
        assert manager.created == {} and manager.sessions == {}
        assert analyzers_built(srv) <= settings.limits.prewarm_analyzers

        # A socket for an expired session starts nothing: it replays the end and closes.
        late = unused[0]
        await late.connect()
        assert await late.wait_closed(30) == 1000
        assert [e["state"] for e in late.events] == ["failed"]
        assert manager.sessions == {}

        # 16 new presenters stream at once, a face moving on every frame.
        frames = labelled_clip(FPS, [Segment("frontal", 1.0), Segment("rotated", 1.0, roll_deg=15)])
        fresh = [await SessionClient.create(srv.http, srv.ws, language="en") for _ in range(16)]
        for client in fresh:
            await client.connect()
        await asyncio.gather(*(stream(client, frames) for client in fresh))
        for client in fresh:
            seen = await client.wait_for(
                lambda e: e["type"] == "metrics" and e["face"] is True, timeout=120
            )
            assert seen["session_id"] == client.id
        for client in fresh:
            await client.send_json({"type": "end"})  # after its last frame, on the same socket
        for client in fresh:
            info = await client.wait_completed(240)
            assert info["state"] == "completed"
            assert info["frames_received"] == len(frames)
            await client.close()
    for client in unused:
        await client.close()


async def _wait_failed(
    http: httpx.AsyncClient, path: str, headers: dict[str, str], timeout: float
) -> dict[str, object]:
    async with asyncio.timeout(timeout):
        while True:
            info: dict[str, object] = (await http.get(path, headers=headers)).json()
            if info["state"] != "created":
                assert info["state"] == "failed", info
                return info
            await asyncio.sleep(0.2)
