"""A session's frames wait for their decode in a short backlog, not in the socket or aiortc's
track queue: the reader goes on reading (a `ping` is answered, WebRTC frames are received)
while decoding is behind, the newest frames are the ones kept (past the backlog's length, and
past the longest wait), a burst on a server that keeps up is decoded whole, and frames still
waiting when the end comes are decoded and recorded."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import av
import pytest

from app.config import Settings
from app.media.vp9 import VP9_MAGIC, Vp9Decoder
from tests.fixtures.clips import Segment, encode_jpeg, encode_vp9, labelled_clip, moving_face_frames
from tests.live.test_ws_vp9 import recorded_packets
from tests.support.client import SessionClient
from tests.support.metrics import scrape
from tests.support.rtc_client import FaceThenEmptyTrack, RtcClient
from tests.support.server import ThreadServer

BACKLOG = 5
FRAMES = [encode_jpeg(f.image) for f in labelled_clip(15.0, [Segment("frontal", 2.0)])]


async def received(client: SessionClient, frames: int) -> dict[str, Any]:
    """GET the session until it has received `frames` frames (a REST counter: no event)."""
    async with asyncio.timeout(30):
        while True:
            info: dict[str, Any] = (await client.get()).json()
            if info["frames_received"] >= frames:
                return info
            await asyncio.sleep(0.05)


@asynccontextmanager
async def decoding_stalled(server: ThreadServer) -> AsyncIterator[None]:
    """Every decode thread busy (a server behind on decoding) until the block exits."""
    gate = threading.Event()
    executor = server.app.state.manager.services.decode_executor
    busy = [executor.submit(gate.wait, 60) for _ in range(8)]
    try:
        yield
    finally:
        gate.set()
        for future in busy:
            future.result(timeout=10)


async def live_session(server: ThreadServer) -> SessionClient:
    """A live session whose analyser is built (its first frame analysed)."""
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    await client.send_frame(FRAMES[0])
    await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] == 0, timeout=60)
    return client


async def burst_while_stalled(server: ThreadServer, client: SessionClient) -> None:
    """Frames 1-29 at once and a ping, with decoding stalled: the reader gets past all 29 to
    the ping (a pong comes) while none of them is decoded."""
    async with decoding_stalled(server):
        for data in FRAMES[1:]:
            await client.send_frame(data)
        await client.send_json({"type": "ping"})
        await client.wait_for(lambda e: e["type"] == "pong", timeout=30)
        assert {e["frame"] for e in client.of_type("metrics")} == {0}


def tuned(settings: Settings, **changes: object) -> Settings:
    # every frame analysed that the analysis is free for, however close their arrivals
    return settings.updated(
        **{"decode_backlog": BACKLOG, "metrics_hz": 1e6, "analysis_fps": 1e6, **changes}
    )


async def recorded_frames(client: SessionClient) -> int:
    recording = (await client.get("/recording.webm")).content
    with av.open(io.BytesIO(recording)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_the_socket_is_read_while_decoding_is_behind_and_the_newest_frames_kept(
    settings: Settings,
) -> None:
    with ThreadServer(tuned(settings)) as server:
        client = await live_session(server)
        await burst_while_stalled(server, client)

        # Every frame is counted, kept or dropped; `frame` stays the client's own count.
        info = await received(client, len(FRAMES))
        newest = len(FRAMES) - BACKLOG
        assert info["frames_dropped"] >= newest - 2  # frames 2..24 at least, never decoded
        last = await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] >= newest)
        assert last["face"]
        # Of the burst only the first (already with the decoder) or the newest were analysed.
        analysed = {e["frame"] for e in client.of_type("metrics")} - {0}
        assert analysed and all(i == 1 or i >= newest for i in analysed), sorted(analysed)
        await client.end()
        await client.wait_completed()
        await client.close()


async def test_frames_waiting_for_their_decode_at_the_end_are_recorded(settings: Settings) -> None:
    with ThreadServer(tuned(settings)) as server:
        client = await live_session(server)
        async with decoding_stalled(server):
            for data in FRAMES[1:4]:
                await client.send_frame(data)
            await client.send_json({"type": "ping"})
            await client.wait_for(lambda e: e["type"] == "pong", timeout=30)
            await client.end()  # the end waits for the backlog
        done = await client.wait_completed()
        assert done["frames_received"] == 4
        assert await recorded_frames(client) == 4
        await client.close()


async def test_a_frame_that_waited_too_long_gives_way_to_the_newest(settings: Settings) -> None:
    # no wait allowed at all: a frame with a newer one behind it is never decoded
    with ThreadServer(tuned(settings, decode_backlog=100, decode_max_wait_s=0.0)) as server:
        client = await live_session(server)
        await burst_while_stalled(server, client)
        info = await received(client, len(FRAMES))
        assert info["frames_dropped"] >= len(FRAMES) - 3
        newest = len(FRAMES) - 1
        await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] == newest)
        # one early frame went to the decoder before the rest came; of the rest only the newest
        analysed = {e["frame"] for e in client.of_type("metrics")} - {0, newest}
        assert len(analysed) <= 1, sorted(analysed)
        await client.end()
        await client.wait_completed()
        await client.close()


async def test_a_burst_the_server_keeps_up_with_is_all_decoded_and_recorded(
    settings: Settings,
) -> None:
    """12 frames at once, sent while the session starts (the reader waits for that): a network
    stall catching up looks the same. Default backlog and wait."""
    with ThreadServer(settings) as server:
        client = await SessionClient.create(server.http, server.ws, language="en")
        await client.connect()
        for data in FRAMES[:12]:
            await client.send_frame(data)
        await received(client, 12)
        await client.end()
        done = await client.wait_completed()
        assert done["frames_received"] == 12
        assert await recorded_frames(client) == 12
        await client.close()


async def test_a_refused_frame_pushed_out_of_a_full_backlog_still_counts_as_bad(
    settings: Settings,
) -> None:
    """An oversized frame is refused on arrival and waits in the backlog only to answer its
    error; pushed out unread, it is counted as a bad frame, never as a good frame dropped,
    and it takes no good frame's place uncounted."""
    too_big = FRAMES[1] + b"\0" * 100_000  # over the limit below, refused before decoding
    with ThreadServer(tuned(settings, decode_backlog=2, max_frame_bytes=90_000)) as server:
        client = await live_session(server)
        async with decoding_stalled(server):
            for data in (FRAMES[1], too_big, FRAMES[2], FRAMES[3], FRAMES[4]):
                await client.send_frame(data)
            await client.send_json({"type": "ping"})
            await client.wait_for(lambda e: e["type"] == "pong", timeout=30)
        # frame 1 with the decoder; the refused one and frame 2 pushed out; 3 and 4 decoded
        info = await received(client, 5)
        scraped = await scrape(server.http)
        assert scraped["coach_bad_frames_total"] == 1
        # (its error is sent only if the decoder reached it before it was pushed out)
        assert len(client.of_type("error")) <= 1
        assert info["frames_received"] == 5  # 0, 1, 2 (dropped), 3, 4: the refused one is not
        await client.end()
        await client.wait_completed()
        await client.close()


class SteppedCamera(FaceThenEmptyTrack):
    """The face camera at 30 fps, up to `allowed` frames; `allow(n)` lets it go on to frame n
    (the frames it owes come at once, as after a stalled capture)."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed = 0
        self.idle = asyncio.Event()
        self._more = asyncio.Event()

    def allow(self, frames: int) -> None:
        self.allowed = frames
        self.idle.clear()
        self._more.set()

    async def recv(self) -> Any:
        while self.sent >= self.allowed:
            self._more.clear()
            self.idle.set()
            await self._more.wait()
        return await super().recv()


async def test_webrtc_frames_are_taken_off_the_track_while_decoding_is_behind(
    settings: Settings,
) -> None:
    """A WebRTC picture waits for its BGR conversion in the session's backlog, not in aiortc's
    track queue, where the server's clock would not see it: with every decode thread held the
    track is still read (frames are received: kept in the backlog or dropped there), and once
    decoding is free the newest frames are analysed, not the stale ones."""
    # (a frame the jitter buffer lost on a loaded machine shifts the indices: 2 allowed for)
    with ThreadServer(tuned(settings)) as server:
        client = await RtcClient.create(server.http, language="en")
        camera = SteppedCamera()
        try:
            await client.connect(camera)
            camera.allow(30)
            await client.wait_for(lambda e: e["type"] == "metrics" and e["face"], timeout=60)
            await camera.idle.wait()
            await client.poll(lambda i: i["frames_received"] >= 28, timeout=30)
            async with decoding_stalled(server):
                camera.allow(120)
                await camera.idle.wait()
                # all but the backlog's frames (and one with the decoder) count as received
                stalled = await client.poll(
                    lambda i: i["frames_received"] >= 120 - BACKLOG - 3, timeout=30
                )
                assert stalled["frames_dropped"] >= 120 - 30 - 2 * BACKLOG - 2
                assert not any(e["frame"] >= 30 for e in client.of_type("metrics") if e["face"])
            info = await client.poll(lambda i: i["frames_received"] >= 118, timeout=30)
            newest = await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] >= 117)
            assert newest["face"]
            # after the stall: the one frame already handed to the decoder, then the newest
            analysed = {e["frame"] for e in client.of_type("metrics") if e["frame"] >= 30}
            stale = sorted(i for i in analysed if i < 120 - BACKLOG - 3)
            assert len(stale) <= 1, stale
            assert info["frames_dropped"] >= 120 - 30 - 2 * BACKLOG - 2
            await client.end()
            await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed")
        finally:
            await client.close()


class BigCamera(FaceThenEmptyTrack):
    """A peer sending pictures over the server's size limit (VP8 allows up to 16383 a side)."""

    async def recv(self) -> Any:
        frame = await super().recv()
        big = frame.reformat(width=1280, height=720)
        big.pts, big.time_base = frame.pts, frame.time_base
        return big


async def test_a_webrtc_picture_over_the_size_limit_is_refused_with_bad_frame(
    settings: Settings,
) -> None:
    """The WebSocket's pixel limits hold for WebRTC pictures too: each answers `bad_frame`
    (error events) and is counted, none is analysed or held."""
    with ThreadServer(settings.updated(max_frame_width=640, max_frame_pixels=640 * 480)) as server:
        client = await RtcClient.create(server.http, language="en")
        try:
            await client.connect(BigCamera())
            error = await client.wait_for(lambda e: e["type"] == "error", timeout=60)
            assert error["code"] == "bad_frame" and "1280x720" in error["reason"]
            info = await client.get()
            assert info["frames_received"] == 0
            metrics = await scrape(server.http)
            assert metrics["coach_bad_frames_total"] >= 1
            assert not client.of_type("metrics")
        finally:
            await client.close()


# --- the client's VP9: every frame is a reference, so "behind" cannot simply skip ---------------
KEY_EVERY_20 = encode_vp9(moving_face_frames(30, 15.0), 15.0, keyframe_every=20)


class DecodeLog:
    """Which VP9 frames the server's decoders were given (by their index in `chunks`), and
    how long each decode is held up (`delay_s`: a server too slow for its sessions)."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes], delay_s: float = 0.0
    ) -> None:
        self.decoded: list[int] = []
        index = {c: i for i, c in enumerate(chunks)}
        original = Vp9Decoder.decode

        def decode(decoder: Vp9Decoder, data: bytes, *, picture: bool) -> Any:
            self.decoded.append(index[data])
            time.sleep(delay_s)
            return original(decoder, data, picture=picture)

        monkeypatch.setattr(Vp9Decoder, "decode", decode)


async def live_vp9_session(server: ThreadServer, first: bytes) -> SessionClient:
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    await client.send_frame(VP9_MAGIC + first)
    await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] == 0, timeout=60)
    return client


async def sent_while_stalled(
    server: ThreadServer, client: SessionClient, messages: list[bytes]
) -> None:
    """`messages` sent with decoding stalled, then a ping answered: all are in the backlog."""
    async with decoding_stalled(server):
        for data in messages:
            await client.send_frame(data)
        await client.send_json({"type": "ping"})
        await client.wait_for(lambda e: e["type"] == "pong", timeout=30)


async def test_a_vp9_session_behind_skips_to_the_keyframe_that_waits(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames before a keyframe in the backlog are dropped undecoded when the session is
    behind (nothing from the keyframe on refers to them): after the stall the decoder gets
    the keyframe (20) and the frames after it, not 2-19 for nothing."""
    log = DecodeLog(monkeypatch, KEY_EVERY_20)
    with ThreadServer(tuned(settings, decode_backlog=30, decode_max_wait_s=0.0)) as server:
        client = await live_vp9_session(server, KEY_EVERY_20[0])
        await sent_while_stalled(server, client, [VP9_MAGIC + c for c in KEY_EVERY_20[1:26]])
        await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] == 25, timeout=30)
        # frame 1 may have gone to the (stalled) decoder before the rest came
        assert [i for i in log.decoded if i != 1] == [0, *range(20, 26)], log.decoded
        info = await received(client, 26)
        # (and the analysis's newest-frame-wins mailbox may drop some decoded ones)
        assert info["frames_dropped"] >= 26 - len(log.decoded)
        analysed = {e["frame"] for e in client.of_type("metrics")}
        # no wait allowed: of the frames behind, only the newest keeps its picture
        assert 25 in analysed and analysed <= {0, 1, 25}, sorted(analysed)
        assert not client.of_type("error")
        await client.end()
        await client.wait_completed()
        _codec, packets = recorded_packets((await client.get("/recording.webm")).content)
        assert packets == KEY_EVERY_20[:26]  # the recording has every frame all the same
        await client.close()


async def test_a_refused_frame_skipped_over_still_answers_its_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture in a VP9 session is refused on arrival and waits in the backlog only to
    answer its error; skipped over on the way to a keyframe, it still answers it."""
    log = DecodeLog(monkeypatch, KEY_EVERY_20)
    with ThreadServer(tuned(settings, decode_backlog=30, decode_max_wait_s=0.0)) as server:
        client = await live_vp9_session(server, KEY_EVERY_20[0])
        vp9 = [VP9_MAGIC + c for c in KEY_EVERY_20]
        # frames 1-5, a JPEG as frame 6, then VP9 frames 6-21 as frames 7-22
        await sent_while_stalled(server, client, [*vp9[1:6], FRAMES[1], *vp9[6:22]])
        error = await client.wait_for(lambda e: e["type"] == "error", timeout=30)
        assert error["code"] == "bad_frame" and "VP9" in error["reason"], error
        await client.wait_for(lambda e: e["type"] == "metrics" and e["frame"] == 22, timeout=30)
        assert [i for i in log.decoded if i != 1] == [0, 20, 21], log.decoded
        assert len(client.of_type("error")) == 1
        assert (await scrape(server.http))["coach_bad_frames_total"] == 1
        await client.end()
        await client.wait_completed()
        await client.close()


async def test_a_vp9_session_that_stays_behind_is_still_analysed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server too slow for the camera (each decode held 0.1 s, a frame every 1/15 s, one
    keyframe): the backlog only grows, every frame from about the tenth on has waited longer
    than `decode_max_wait_s` with a newer one behind it, and each is decoded for the next. A
    picture is still kept whenever the session has had none for that long, so the session is
    analysed while live instead of starved until its end."""
    chunks = encode_vp9(moving_face_frames(60, 15.0), 15.0, keyframe_every=1000)
    log = DecodeLog(monkeypatch, chunks, delay_s=0.1)
    with ThreadServer(tuned(settings, decode_backlog=100, decode_max_wait_s=0.3)) as server:
        client = await live_vp9_session(server, chunks[0])
        await client.send_paced([VP9_MAGIC + c for c in chunks[1:]], 15.0)
        # while live: before the fix none of 12-49 had a picture until the backlog drained
        await client.wait_for(
            lambda e: e["type"] == "metrics" and 12 <= e["frame"] < 50, timeout=30
        )
        await client.end()
        done = await client.wait_completed()
        assert done["frames_received"] == 60
        assert sorted(log.decoded) == list(range(60))  # every one decoded: each a reference
        assert done["frames_dropped"] >= 20  # most decoded for the next frame alone
        await client.close()
