"""VP9 over WebRTC: a peer that prefers VP9 has its frames analysed and recorded as it sent
them (nothing decoded and encoded again), over a real server and aiortc peers; a peer that
offers VP8 still gets VP8."""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import httpx
import pytest

from app.config import Settings
from tests.fixtures.clips import encode_vp9, moving_face_frames
from tests.live.test_decode_backlog import decoding_stalled
from tests.live.test_ws_vp9 import recorded_packets
from tests.support.rtc_client import FaceThenEmptyTrack, RtcClient
from tests.support.server import ThreadServer
from tests.support.vp9_rtp import Vp9ClipTrack, install_sender

FPS = 15.0


@pytest.fixture
def server(settings: Settings) -> Iterator[ThreadServer]:
    install_sender()
    with ThreadServer(settings) as srv:
        yield srv


def video_codec(sdp: str) -> str:
    """The first codec of the answer's video section: the one the client sends."""
    video = sdp.split("m=video ", 1)[1]
    first_pt = video.split("\r\n", 1)[0].split()[2]
    return video.split(f"a=rtpmap:{first_pt} ", 1)[1].split("/", 1)[0]


async def test_vp9_from_a_peer_is_analysed_and_recorded_as_sent(server: ThreadServer) -> None:
    chunks = encode_vp9(moving_face_frames(60, FPS), FPS, keyframe_every=30)
    client = await RtcClient.create(server.http, language="en")
    track = Vp9ClipTrack(chunks, FPS)
    try:
        await client.connect(track, vp9=True)
        assert video_codec(client.answer_sdp) == "VP9"
        await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
        peer = server.app.state.rtc_peers.peers[client.id]
        info = await client.poll(lambda i: i["frames_received"] >= len(chunks), timeout=60)
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    finally:
        await client.close()

    metrics = client.of_type("metrics")
    assert metrics and sum(m["face"] for m in metrics) >= 0.9 * len(metrics), metrics[:3]
    assert not client.of_type("error")
    assert info["frames_received"] == len(chunks) == track.sent
    assert peer.keyframes_requested == 0  # nothing was lost on the way
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        answer = await http.get(f"/api/sessions/{client.id}/recording.webm", headers=client.auth)
    assert answer.status_code == 200
    codec, packets = recorded_packets(answer.content)
    assert codec == "vp9"
    assert packets == chunks  # muxed as the peer sent them: nothing re-encoded, nothing lost


async def test_a_vp8_peer_still_gets_vp8(server: ThreadServer) -> None:
    client = await RtcClient.create(server.http, language="en")
    try:
        await client.connect(FaceThenEmptyTrack())  # aiortc offers VP8 first
        assert video_codec(client.answer_sdp) == "VP8"
        await client.wait_for(lambda e: e["type"] == "metrics" and e["face"])
    finally:
        await client.close()


async def test_vp9_is_not_offered_when_turned_off(settings: Settings) -> None:
    install_sender()
    settings.transport.rtc_vp9 = False
    with ThreadServer(settings) as server:
        client = await RtcClient.create(server.http, language="en")
        try:
            await client.connect(FaceThenEmptyTrack())
            assert "VP9/90000" not in client.answer_sdp
            assert video_codec(client.answer_sdp) == "VP8"
        finally:
            await client.close()


async def test_a_lost_reference_asks_the_peer_for_a_keyframe(server: ThreadServer) -> None:
    """Decoding stalls, the backlog drops VP9 frames the next ones need: the server sends a
    PLI, the peer's encoder (a keyframe only when asked) answers with a keyframe, and
    analysis resumes from it. The recording holds every frame: they reached it on arrival."""
    client = await RtcClient.create(server.http, language="en")
    try:
        await client.connect(FaceThenEmptyTrack(), vp9=True)
        assert video_codec(client.answer_sdp) == "VP9"
        await client.wait_for(lambda e: e["type"] == "metrics" and e["face"], timeout=60)
        peer = server.app.state.rtc_peers.peers[client.id]
        assert peer.keyframes_requested == 0
        async with decoding_stalled(server):
            await client.poll(
                lambda i: i["frames_dropped"] > 0 and peer.keyframes_requested > 0, timeout=30
            )
        # a frame that came after the stall (its number is past every frame read by then) is
        # analysed: decodable only from the keyframe the PLI brought (a metrics event of a
        # frame decoded before the stall would not show that)
        read_by_then = peer.video_frames
        await client.wait_for(
            lambda e: e["type"] == "metrics" and e["face"] and e["frame"] >= read_by_then,
            timeout=60,
        )
        await client.end()
        await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    finally:
        await client.close()
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        answer = await http.get(f"/api/sessions/{client.id}/recording.webm", headers=client.auth)
    with av.open(io.BytesIO(answer.content)) as container:
        keyframes = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert keyframes[0] and sum(keyframes) >= 2, sum(keyframes)  # the first, and the asked-for


async def test_a_peer_is_asked_for_a_keyframe_each_recording_segment(settings: Settings) -> None:
    """A browser's WebRTC encoder sends a keyframe first and then only when asked: the server
    asks once a `recording_segment_s`, so the recording has its segments and seek points."""
    install_sender()
    settings.recording.recording_segment_s = 1.0
    with ThreadServer(settings) as server:
        client = await RtcClient.create(server.http, language="en")
        camera = FaceThenEmptyTrack()
        try:
            await client.connect(camera, vp9=True)
            await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
            await client.poll(lambda i: i["frames_received"] >= 150, timeout=60)  # 5 s at 30 fps
            await client.end()
            await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
        finally:
            await client.close()
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
            answer = await http.get(
                f"/api/sessions/{client.id}/recording.webm", headers=client.auth
            )
    with av.open(io.BytesIO(answer.content)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    keys = [float(p.pts * p.time_base) for p in packets if p.is_keyframe]
    seconds = float((packets[-1].pts - packets[0].pts) * packets[0].time_base)
    assert seconds >= 4.5
    # about one a second (a request takes a round trip); the peer alone would send one
    assert len(keys) >= 3, (keys, seconds)


async def test_a_reconnecting_peer_is_recorded_from_its_first_keyframe(
    server: ThreadServer,
) -> None:
    """A page reload's new peer whose first frames are deltas (its keyframe lost on the way):
    their references are in the new peer's stream, not in what the session holds, so they
    are neither recorded nor decoded; the server asks for a keyframe and the recording goes
    on from it, one unbroken chain."""
    chunks = encode_vp9(moving_face_frames(50, FPS), FPS, keyframe_every=30)
    first = await RtcClient.create(server.http, language="en")
    second = RtcClient(
        server.http, {"session_id": first.id, "token": first.token, "offer_url": first.offer_url}
    )
    try:
        await first.connect(Vp9ClipTrack(chunks[:20], FPS), vp9=True)
        await first.poll(lambda i: i["frames_received"] >= 20, timeout=60)
        await second.connect(Vp9ClipTrack(chunks[25:], FPS), vp9=True)  # 25-29: deltas
        # the new peer's late frames are analysed (received frames are numbered on: 20 + 20)
        await second.wait_for(
            lambda e: e["type"] == "metrics" and e["frame"] >= 40 and e["face"], timeout=60
        )
        peer = server.app.state.rtc_peers.peers[first.id]
        await second.end()
        await second.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    finally:
        await first.close()
        await second.close()
    assert peer.keyframes_requested >= 1
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        answer = await http.get(f"/api/sessions/{first.id}/recording.webm", headers=first.auth)
    _codec, packets = recorded_packets(answer.content)
    # up to the frame analysed last before `end` (frame 40 is chunk 45), nothing else between
    assert len(packets) >= 20 + 16
    assert packets == chunks[:20] + chunks[30 : 30 + len(packets) - 20]
