"""The original engine's upload flow against a real server on loopback, with real video files."""

from __future__ import annotations

import asyncio
import base64
import http.client
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from app.config import Settings
from tests.fixtures.clips import moving_face_frames
from tests.fixtures.videos import (
    tilted_segment_span,
    write_images_mp4,
    write_mp4,
    write_webm_without_duration,
)
from tests.support.contract import REPORT_FIELDS
from tests.support.gate import FrameGate, gated_hooks
from tests.support.server import ThreadServer

FEEDBACK_KEYS = {"gaze_processing", "facial_expression", "gestures", "posture_body", "movement"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    webm = write_webm_without_duration(folder / "tilt.webm")
    with av.open(str(webm)) as container:
        assert container.duration is None  # as MediaRecorder writes it: no duration header
    return {"mp4": write_mp4(folder / "tilt.mp4"), "webm": webm}


async def upload(
    http: httpx.AsyncClient, path: Path, field: str = "file", url: str = "/api/video/receive-video/"
) -> httpx.Response:
    with path.open("rb") as handle:
        return await http.post(url, files={field: (path.name, handle, "video/mp4")})


async def poll_until_done(
    http: httpx.AsyncClient, video_id: str, timeout: float = 120, every_s: float = 0.1
) -> tuple[dict[str, Any], list[float]]:
    """Poll the feedback until it is no longer processing: (the answer, progress seen)."""
    seen: list[float] = []
    async with asyncio.timeout(timeout):
        while True:
            answer = await http.get(f"/api/video/video-send-feedback/{video_id}/")
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            if body["problem"] != "processing":
                return body, seen
            seen.append(body["progress"])
            await asyncio.sleep(every_s)


async def wait_done(http: httpx.AsyncClient, video_id: str, timeout: float = 120) -> dict[str, Any]:
    return (await poll_until_done(http, video_id, timeout))[0]


def upload_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.uploads_dir.rglob("*") if p.is_file())


def check_feedback_frame(frame: dict[str, Any], video_id: str) -> None:
    assert set(frame) >= {"video_id", "frame_index", "timestamp", "feedback_text", "image_base64"}
    assert frame["video_id"] == video_id
    assert isinstance(frame["frame_index"], int) and frame["frame_index"] >= 0
    minutes, seconds = frame["timestamp"].split(" ")
    assert minutes.endswith("m") and seconds.endswith("s")
    assert int(minutes[:-1]) * 60 + int(seconds[:-1]) == int(frame["t"])
    assert set(frame["feedback_text"]) == FEEDBACK_KEYS
    for text in frame["feedback_text"].values():
        assert set(text) == {"improvement", "recommendations"}
        assert isinstance(text["improvement"], str) and isinstance(text["recommendations"], str)
    assert not frame["image_base64"].startswith("data:")
    jpeg = base64.b64decode(frame["image_base64"], validate=True)
    assert jpeg[:3] == b"\xff\xd8\xff" and jpeg[-2:] == b"\xff\xd9"


@pytest.mark.parametrize("kind", ["mp4", "webm"])
async def test_upload_analyses_a_labelled_clip(
    server: ThreadServer, clips: dict[str, Path], kind: str
) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        answer = await upload(http, clips[kind])
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"video_id", "message"}
        video_id = body["video_id"]
        assert len(video_id) >= 22
        assert "업로드" in body["message"]  # Korean is this flow's default

        done = await wait_done(http, video_id)
        assert done["problem"] == "success", done
        assert done["progress"] == 100
        assert isinstance(done["message"], str) and done["message"]
        feedbacks = done["feedbacks"]
        assert 1 <= len(feedbacks) <= server.settings.upload.max_feedbacks
        for frame in feedbacks:
            check_feedback_frame(frame, video_id)
        # de-duplicated: no two cards for the same instant
        times = [f["t"] for f in feedbacks]
        assert times == sorted(times) and len(set(times)) == len(times)

        start, end = tilted_segment_span()
        tilted = [f for f in feedbacks if start <= f["t"] <= end]
        assert tilted, f"no flagged moment in the tilted segment {start}-{end}: {times}"
        assert any("head_tilt" in f["cues"] for f in tilted)
        posture = " ".join(f["feedback_text"]["posture_body"]["improvement"] for f in tilted)
        assert "고개" in posture or "머리" in posture or "기울" in posture

        # the same VP9 WebM a live session gets
        assert done["recording_url"] == f"/api/video/recording/{video_id}"
        recording = await http.get(done["recording_url"])
        assert recording.status_code == 200
        assert recording.headers["content-type"] == "video/webm"
        webm = server.settings.uploads_dir / video_id / "recording.webm"
        with av.open(str(webm)) as container:
            codecs = {s.type: s.codec_context.name for s in container.streams}
            assert codecs["video"] == "vp9"
            if kind == "mp4":  # the MP4 carries a tone
                assert codecs["audio"] == "opus"
            frames = sum(1 for _ in container.decode(video=0))
        assert frames >= 140  # 10 s at 15 fps

        # the same report as a live session, reachable from the feedback answer
        assert done["report_url"] == f"/api/video/report/{video_id}"
        report = (await http.get(done["report_url"])).json()
        assert set(report) >= REPORT_FIELDS
        assert report["session_id"] == video_id and report["language"] == "ko"
        assert report["recording_url"] == done["recording_url"]
        assert abs(report["duration_s"] - 10.0) < 0.5
        assert len(report["timeline"]) >= 9
        assert any(c["cue"] == "head_tilt" and c["state"] == "on" for c in report["cues"])
        assert report["keyframes"] and report["critiques"]
        # where the eyes were: every sample somewhere, the camera's share the eye-contact score
        shares = report["gaze_shares"]
        assert abs(sum(shares.values()) - 1.0) < 0.01, shares
        assert abs(100 * shares["camera"] - report["scores"]["eye_contact"]) <= 0.6, shares
        page = await http.get(done["report_html_url"])
        assert page.status_code == 200 and page.text.lstrip().lower().startswith("<!doctype html")
        assert "시선이 머문 곳" in page.text


async def test_older_front_end_field_and_both_path_forms(
    server: ThreadServer, clips: dict[str, Path]
) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        answer = await upload(http, clips["webm"], field="video", url="/api/video/receive-video")
        assert answer.status_code == 200, answer.text
        video_id = answer.json()["video_id"]
        for path in (
            f"/api/video/video-send-feedback/{video_id}/",
            f"/api/video/video-send-feedback/{video_id}",
        ):
            polled = await http.get(path)  # httpx does not follow redirects by default
            assert polled.status_code == 200, (path, polled.status_code)
            assert polled.json()["problem"] in ("processing", "success", "no_feedback")
        await wait_done(http, video_id)
        for suffix in ("", "/"):
            unknown = await http.get(f"/api/video/video-send-feedback/{'x' * 24}{suffix}")
            assert unknown.status_code == 404
            assert unknown.json()["detail"]["code"] == "video_not_found"
        deleted = await http.delete(f"/api/video/delete_files/{video_id}")
        assert deleted.status_code == 200
        assert deleted.json() == {"video_id": video_id, "message": deleted.json()["message"]}
        assert not (server.settings.uploads_dir / video_id).exists()
        gone = await http.get(f"/api/video/video-send-feedback/{video_id}/")
        assert gone.status_code == 404
        again = await http.delete(f"/api/video/delete_files/{video_id}/")
        assert again.status_code == 404


async def test_garbage_with_a_video_name_is_400(server: ThreadServer, tmp_path: Path) -> None:
    garbage = tmp_path / "talk.mp4"
    garbage.write_bytes(bytes(range(256)) * 400)
    image = tmp_path / "photo.mp4"
    with av.open(str(image), "w", format="image2pipe") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        frame = av.VideoFrame(64, 48, "yuv420p")
        container.mux(stream.encode(frame.reformat(format="yuvj420p")))
        container.mux(stream.encode(None))
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        for path in (garbage, image):
            answer = await upload(http, path)
            assert answer.status_code == 400, answer.text
            assert answer.json()["detail"]["code"] == "not_a_video"
        no_file = await http.post("/api/video/receive-video/", files={"other": ("a.txt", b"hi")})
        assert no_file.status_code == 400 and no_file.json()["detail"]["code"] == "no_file"
    assert upload_files(server.settings) == []


@pytest.fixture
def small_limit_server(settings: Settings) -> Iterator[ThreadServer]:
    limited = settings.updated(upload_max_bytes=256 * 1024)
    with ThreadServer(limited) as srv:
        yield srv


async def test_oversize_upload_is_413_and_leaves_nothing(
    small_limit_server: ThreadServer, clips: dict[str, Path]
) -> None:
    server = small_limit_server
    sent = 0
    boundary = "----coachtest"

    async def body() -> AsyncIterator[bytes]:
        # Chunked, no Content-Length: the server can only find out while streaming.
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"'
            "\r\nContent-Type: video/mp4\r\n\r\n"
        ).encode()
        chunk = clips["mp4"].read_bytes()[: 64 * 1024]
        for _ in range(48):  # 3 MiB in all, 12x the limit
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        answer = await http.post(
            "/api/video/receive-video/",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["detail"]["code"] == "too_large"
        assert upload_files(server.settings) == []  # the partial file is gone
        assert list(server.settings.uploads_dir.iterdir()) == []

        # A declared Content-Length over the limit is refused before anything is written.
        big = await upload(http, clips["mp4"])  # ~0.5 MB
        assert big.status_code == 413
        assert big.json()["detail"]["code"] == "too_large"
        assert list(server.settings.uploads_dir.iterdir()) == []


def upload_rows(settings: Settings) -> int:
    with sqlite3.connect(settings.storage.data_dir / "coach.db") as db:
        (count,) = db.execute("SELECT count(*) FROM sessions WHERE kind = 'upload'").fetchone()
    return int(count)


def assert_nothing_left(settings: Settings) -> None:
    assert list(settings.uploads_dir.iterdir()) == []
    assert upload_rows(settings) == 0


@pytest.fixture(scope="module")
def too_wide_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A panorama 8200 px wide (the probe's limit is 8192 a side), 64 px high, of the moving
    presenter: a real, decodable H.264 MP4 of 0.4 s."""
    frames = moving_face_frames(6, size=(8200, 64))
    return write_images_mp4(tmp_path_factory.mktemp("wide") / "wide.mp4", frames)


async def test_a_video_over_the_duration_limit_is_413_video_too_long(
    settings: Settings, clips: dict[str, Path]
) -> None:
    # The 10 s clips against a 4 s limit: the MP4 says its duration in its header, the WebM
    # (as MediaRecorder writes it) does not, so the probe measures it by demuxing.
    limited = settings.updated(upload_max_duration_s=4.0)
    with ThreadServer(limited) as server:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            for kind in ("mp4", "webm"):
                answer = await upload(http, clips[kind])
                assert answer.status_code == 413, (kind, answer.text)
                detail = answer.json()["detail"]
                assert detail["code"] == "video_too_long" and detail["message"], kind
                assert_nothing_left(limited)


async def test_frames_over_the_size_limit_are_413_video_too_large(
    server: ThreadServer, too_wide_clip: Path
) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        answer = await upload(http, too_wide_clip)
    assert answer.status_code == 413, answer.text
    detail = answer.json()["detail"]
    assert detail["code"] == "video_too_large" and "8200x64" in detail["message"]
    assert_nothing_left(server.settings)


async def test_a_body_that_is_not_multipart_is_400_not_multipart(
    server: ThreadServer, clips: dict[str, Path]
) -> None:
    video = clips["mp4"].read_bytes()
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        for content_type in (
            "video/mp4",  # the file as the raw body
            "application/x-www-form-urlencoded",
            "multipart/form-data",  # no boundary
        ):
            answer = await http.post(
                "/api/video/receive-video/", content=video, headers={"Content-Type": content_type}
            )
            assert answer.status_code == 400, (content_type, answer.text)
            assert answer.json()["detail"]["code"] == "not_multipart", content_type
        bare = await http.post("/api/video/receive-video/", content=video)  # no Content-Type
        assert bare.status_code == 400 and bare.json()["detail"]["code"] == "not_multipart"
    assert_nothing_left(server.settings)


async def test_a_malformed_multipart_body_is_400_bad_multipart(
    server: ThreadServer, clips: dict[str, Path]
) -> None:
    video = clips["mp4"].read_bytes()
    boundary = "----coachtest"
    bodies = {
        # the file where the first boundary should be
        "no boundary": video,
        # a part header without its colon
        "broken header": (
            f"--{boundary}\r\nContent-Disposition form-data; name=file\r\n\r\n".encode()
            + video
            + f"\r\n--{boundary}--\r\n".encode()
        ),
        # bare LF line ends where multipart needs CRLF
        "LF line ends": (
            f'--{boundary}\nContent-Disposition: form-data; name="file"; filename="a.mp4"'
            f"\nContent-Type: video/mp4\n\n".encode()
            + video
            + f"\n--{boundary}--\n".encode()
        ),
    }
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        for name, body in bodies.items():
            answer = await http.post(
                "/api/video/receive-video/",
                content=body,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["detail"]["code"] == "bad_multipart", (name, answer.text)
            assert_nothing_left(server.settings)


async def test_low_disk_refuses_an_upload_with_503_disk_full(
    settings: Settings, clips: dict[str, Path]
) -> None:
    free_mb = shutil.disk_usage(settings.storage.data_dir.parent).free / 1e6
    low = settings.updated(min_free_disk_mb=int(free_mb) + 10_000)
    with ThreadServer(low) as server:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            answer = await upload(http, clips["mp4"])
        assert answer.status_code == 503, answer.text
        assert answer.json()["detail"]["code"] == "disk_full"
        assert int(answer.headers["retry-after"]) > 0
        assert_nothing_left(low)


async def test_a_full_analysis_queue_is_503_busy_and_keeps_nothing(
    settings: Settings, clips: dict[str, Path]
) -> None:
    """One analysis at a time and no queue: while the first upload's analysis runs (held at
    its first frame), a second upload is refused whole; the first finishes normally."""
    one = settings.updated(upload_concurrency=1, upload_max_queued=0)
    gate = FrameGate()
    with ThreadServer(one, gated_hooks(one, gate)) as server:
        try:
            async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
                first = await upload(http, clips["mp4"])
                assert first.status_code == 200, first.text
                video_id = first.json()["video_id"]
                await gate.wait_entered(1)

                refused = await upload(http, clips["webm"])
                assert refused.status_code == 503, refused.text
                assert refused.json()["detail"]["code"] == "busy"
                assert int(refused.headers["retry-after"]) > 0
                # only the first upload's folder and row
                assert [p.name for p in one.uploads_dir.iterdir()] == [video_id]
                assert upload_rows(one) == 1

                gate.open()
                done = await wait_done(http, video_id)
                assert done["problem"] == "success"
                # the slot is free again: the next upload is taken
                again = await upload(http, clips["webm"])
                assert again.status_code == 200, again.text
                await wait_done(http, again.json()["video_id"])
        finally:
            gate.open()


async def test_an_upload_with_nothing_to_point_out_answers_no_feedback(
    server: ThreadServer, tmp_path: Path
) -> None:
    """A presenter standing still, facing the camera, well framed, for 4 s (short of the
    8 s without gestures that would be worth a remark): the analysis runs to the end and finds
    no moment to show."""
    still = moving_face_frames(60, sway_px=0.0, roll_deg=0.0)
    clip = write_images_mp4(tmp_path / "steady.mp4", still)
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        answer = await upload(http, clip)
        assert answer.status_code == 200, answer.text
        video_id = answer.json()["video_id"]
        done = await wait_done(http, video_id)
        assert done["problem"] == "no_feedback", done
        assert done["feedbacks"] == [] and done["progress"] == 100
        assert done["message"] == "분석이 끝났어요. 특별히 고칠 점을 찾지 못했어요."
        # analysed all the same: a recording and a report, with no cue in it
        assert done["recording_url"] and done["report_url"]
        report = (await http.get(done["report_url"])).json()
        assert report["cues"] == [] and abs(report["duration_s"] - 4.0) < 0.5
        assert report["scores"]["eye_contact"] is not None


def raw_request(port: int, method: str, path: str) -> tuple[int, bytes]:
    """Sends `path` byte for byte (httpx would normalise `..` away)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


async def test_delete_with_malformed_ids_touches_nothing(
    server: ThreadServer, clips: dict[str, Path]
) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
        video_id = (await upload(http, clips["webm"])).json()["video_id"]
        await wait_done(http, video_id)
        before = upload_files(server.settings)
        assert any(p.name == "source" for p in before)
        for bad in (
            "_",
            "..",
            "%2E%2E",
            "*",
            "%2A",
            video_id[:-1] + "*",
            "..%2F..%2Fdata",
            "x" * 24,
        ):
            for suffix in ("", "/"):
                status, body = await asyncio.to_thread(
                    raw_request, server.port, "DELETE", f"/api/video/delete_files/{bad}{suffix}"
                )
                assert status == 404, (bad, suffix, status, body)
        assert upload_files(server.settings) == before
        assert (await http.get(f"/api/video/video-send-feedback/{video_id}")).status_code == 200


async def test_polls_answer_from_stored_state_while_the_analysis_runs(
    settings: Settings, clips: dict[str, Path]
) -> None:
    """A poll never waits on the analysis: with the analysis held at a frame, polls still
    answer `processing` with the progress so far (and no feedback yet), and the progress climbs
    as frames are let through."""
    gate = FrameGate()
    with ThreadServer(settings, gated_hooks(settings, gate)) as server:
        try:
            async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
                video_id = (await upload(http, clips["mp4"])).json()["video_id"]

                async def polls_while_held(analysed: int) -> list[float]:
                    """Once the analysis has done `analysed` frames and is held at the next
                    one: three polls (their progress)."""
                    await gate.wait_entered(analysed + 1)
                    seen = []
                    for _ in range(3):
                        answer = await http.get(f"/api/video/video-send-feedback/{video_id}/")
                        assert answer.status_code == 200, answer.text
                        body = answer.json()
                        assert body["problem"] == "processing" and body["feedbacks"] == []
                        assert "%" in body["message"]
                        seen.append(body["progress"])
                    assert gate.entered == analysed + 1  # held all along
                    return seen

                progress = await polls_while_held(0)
                assert progress == [0, 0, 0]
                gate.release(20)
                progress += await polls_while_held(20)
                gate.release(15)
                progress += await polls_while_held(35)
                gate.open()
                done = await wait_done(http, video_id)
        finally:
            gate.open()
    assert done["problem"] == "success" and done["progress"] == 100
    # 10 s sampled at 5 fps: 20 and 35 of 50 frames are ~40 % and ~70 % of the scan's share
    assert progress[3] == progress[4] == progress[5]
    assert progress[6] == progress[7] == progress[8]
    assert 0 < progress[3] < progress[6] < 100, progress


async def test_an_unfinished_upload_is_resumed_after_a_restart(
    settings: Settings, clips: dict[str, Path]
) -> None:
    with ThreadServer(settings) as server:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            video_id = (await upload(http, clips["mp4"])).json()["video_id"]
    # The server stopped mid-analysis: the row is still `processing`.
    with sqlite3.connect(settings.storage.data_dir / "coach.db") as db:
        (state,) = db.execute("SELECT state FROM sessions WHERE id = ?", (video_id,)).fetchone()
    assert state == "processing"
    with ThreadServer(settings) as server:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            done = await wait_done(http, video_id)
            assert done["problem"] == "success"


async def test_finished_uploads_expire_with_the_retention_period(
    settings: Settings, clips: dict[str, Path]
) -> None:
    # A retention of 3 s swept every 0.3 s: the analysed upload is served, then deleted whole.
    short = settings.updated(retention_days=3 / 86400, retention_sweep_s=0.3)
    with ThreadServer(short) as server:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            video_id = (await upload(http, clips["mp4"])).json()["video_id"]
            done = await wait_done(http, video_id)
            assert done["problem"] == "success"
            assert upload_files(short)
            async with asyncio.timeout(30):
                while True:
                    answer = await http.get(f"/api/video/video-send-feedback/{video_id}/")
                    if answer.status_code == 404:
                        break
                    await asyncio.sleep(0.2)
    assert upload_files(short) == []
    with sqlite3.connect(short.storage.data_dir / "coach.db") as db:
        assert db.execute("SELECT count(*) FROM sessions WHERE id = ?", (video_id,)).fetchone() == (
            0,
        )
