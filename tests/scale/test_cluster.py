"""Scale-out end to end: two replicas on PostgreSQL and Redis. A session streamed to A is
watched live on B; media for A's session sent to B is refused naming A; A killed mid-session is
taken over and finalised by B with the recording A had written."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.live.test_recording_e2e import probe
from tests.live.test_ws_live import FPS, stream
from tests.scale.conftest import Cluster
from tests.support.client import SessionClient, wait_state

pytestmark = pytest.mark.timeout(240)


async def test_a_session_streamed_to_a_is_watched_live_on_b_in_seq_order(
    cluster: Cluster,
) -> None:
    media = await SessionClient.create(cluster.a.http, cluster.a.ws, language="en")
    # B listens before any media: that claims nothing and starts nothing.
    watcher = SessionClient(cluster.b.http, cluster.b.ws, media.info)
    await watcher.connect()
    await watcher.send_json({"type": "ping"})  # answered once B's socket is subscribed
    await watcher.wait_for(lambda e: e["type"] == "pong")
    await media.connect()
    for replica in (cluster.a, cluster.b):
        async with httpx.AsyncClient(base_url=replica.http, timeout=30) as http:
            info = (await http.get(f"/api/sessions/{media.id}", headers=media.auth)).json()
        assert info["state"] == "created" and info["started_at"] is None

    # The presenter's frames go to A, which the first of them makes the owner.
    frames = labelled_clip(FPS, [Segment("frontal", 3.0), Segment("empty", 3.0)])
    await stream(media, frames)
    # B hears A's events while the session is still live, not only after the end.
    first_live = await watcher.wait_for(lambda e: e["type"] == "metrics", timeout=30)
    assert first_live["session_id"] == media.id
    # End once the empty frames were seen (a busy machine analyses them late, not never).
    await media.wait_for(lambda e: e["type"] == "cue" and e["cue"] == "face_lost", timeout=60)
    await media.send_json({"type": "end"})
    await watcher.wait_for(
        lambda e: e["type"] == "state" and e["state"] == "completed", timeout=120
    )
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
    await media.close()
    await watcher.close()

    seqs = [e["seq"] for e in watcher.events if e["type"] != "pong"]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert [e for e in watcher.events if e["type"] != "pong"] == media.events
    assert any(e["type"] == "cue" and e["cue"] == "face_lost" for e in watcher.events)
    async with httpx.AsyncClient(base_url=cluster.b.http, timeout=30) as http:
        persisted = (await http.get(f"/api/sessions/{media.id}/events", headers=media.auth)).json()
        info = (await http.get(f"/api/sessions/{media.id}", headers=media.auth)).json()
        recording = await http.get(f"/api/sessions/{media.id}/recording.webm", headers=media.auth)
    assert persisted["events"] == media.events
    assert info["state"] == "completed"
    # The recording A wrote to the shared data directory, served by B.
    assert recording.status_code == 200
    assert probe(recording.content)[0] == "vp9"


async def test_media_for_a_session_owned_by_a_is_refused_on_b_naming_a(cluster: Cluster) -> None:
    media = await SessionClient.create(cluster.a.http, cluster.a.ws, language="ko")
    await media.connect()
    frame = encode_jpeg(labelled_clip(FPS, [Segment("frontal", 0.2)])[0].image)
    await media.send_frame(frame)
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")

    url = f"{cluster.b.ws}/ws/sessions/{media.id}?token={media.token}"
    async with connect(url) as wrong:
        await wrong.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await wrong.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
    assert json.loads(closed.value.rcvd.reason) == {
        "code": "session_owned_elsewhere",
        "owner": "replica-a",
    }

    async with httpx.AsyncClient(base_url=cluster.b.http, timeout=30) as http:
        offer = await http.post(
            f"/api/sessions/{media.id}/offer",
            json={"sdp": "v=0\r\n", "type": "offer"},
            headers=media.auth,
        )
    assert offer.status_code == 409
    assert offer.json()["detail"]["code"] == "session_owned_elsewhere"
    assert offer.json()["detail"]["owner"] == "replica-a"

    # The owner is untouched: it still takes media and ends normally.
    await media.send_frame(frame)
    await media.end()
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 120)
    await media.close()


async def test_replica_a_killed_mid_session_is_taken_over_and_finalised_by_b(
    cluster: Cluster,
) -> None:
    frames = labelled_clip(FPS, [Segment("frontal", 3.0), Segment("rotated", 3.0, roll_deg=20)])
    jpegs = [encode_jpeg(f.image) for f in frames]
    media = await SessionClient.create(cluster.a.http, cluster.a.ws, language="ko")
    await media.connect()
    # A claims the session with its first frame; wait until A says the session is live
    # before B is asked about it.
    await media.send_frame(jpegs[0])
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
    watcher = SessionClient(cluster.b.http, cluster.b.ws, media.info)
    await watcher.connect()
    sent = await media.send_paced(jpegs, FPS)
    sent_until = time.monotonic()
    cluster.a.kill()
    killed_at = time.monotonic()
    await media.close()
    frames_before_cutoff = sum(1 for t in sent if t <= sent_until - 2.0)

    # The watcher on B hears the end that B's takeover publishes.
    final = await watcher.wait_for(
        lambda e: e["type"] == "state" and e["state"] == "completed", timeout=120
    )
    takeover_s = time.monotonic() - killed_at
    assert final["recovered"] is True
    await watcher.close()

    async with httpx.AsyncClient(base_url=cluster.b.http, timeout=30) as http:
        info = await wait_state(
            http, f"/api/sessions/{media.id}", media.auth, "completed", "failed", timeout=60
        )
        assert info["state"] == "completed" and info["recovered"] is True, info
        recording = await http.get(f"/api/sessions/{media.id}/recording.webm", headers=media.auth)
        assert recording.status_code == 200
        codec, _duration, count = probe(recording.content)
        assert codec == "vp9"
        assert count >= frames_before_cutoff, (count, frames_before_cutoff)
        events = (await http.get(f"/api/sessions/{media.id}/events", headers=media.auth)).json()[
            "events"
        ]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert events[-1]["type"] == "state" and events[-1]["state"] == "completed"
    # TTL 2 s + check every 0.5 s + recovery; a bound far above that catches a takeover that
    # only happened by accident (e.g. at B's shutdown).
    assert takeover_s < 30, takeover_s


async def test_end_sent_to_b_ends_the_session_whose_media_a_holds(cluster: Cluster) -> None:
    """REST `end` and a listening socket's `end` on B are forwarded to the owner A; a session
    with no media yet (nobody owns it) is ended by B itself."""
    frames = labelled_clip(FPS, [Segment("frontal", 1.5)])
    media = await SessionClient.create(cluster.a.http, cluster.a.ws, language="en")
    await media.connect()
    await stream(media, frames)
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
    on_b = SessionClient(cluster.b.http, cluster.b.ws, media.info)
    assert await on_b.end() == {"state": "finalizing"}
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 120)
    finalizing = next(e for e in media.events if e.get("state") == "finalizing")
    assert finalizing["reason"] == "ended"
    assert await on_b.end() == {"state": "completed"}  # idempotent: the current state
    info = (await on_b.get()).json()
    assert info["state"] == "completed" and info["frames_received"] == len(frames)
    assert info["recovered"] is not True
    await media.close()

    # `{"type": "end"}` from a socket on B that only listens.
    media = await SessionClient.create(cluster.a.http, cluster.a.ws, language="en")
    await media.connect()
    await stream(media, frames)
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
    watcher = SessionClient(cluster.b.http, cluster.b.ws, media.info)
    await watcher.connect()
    await watcher.send_json({"type": "end"})
    await watcher.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 120)
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 120)
    await watcher.close()
    await media.close()

    # Created on A, never sent media: B ends it.
    idle = await SessionClient.create(cluster.a.http, cluster.a.ws, language="ko")
    idle_on_b = SessionClient(cluster.b.http, cluster.b.ws, idle.info)
    assert await idle_on_b.end() == {"state": "finalizing"}
    assert (await idle_on_b.wait_completed(60))["state"] == "completed"
