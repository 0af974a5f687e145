"""Jobs on Celery (`COACH_JOBS=celery`): two replicas and a real worker subprocess on shared
PostgreSQL, Redis and data directory. An upload sent to A is analysed by the worker and read
from B, and one deleted on B mid-analysis stops on the worker; a job delivered again (a worker
killed mid-job, duplicate messages) gives one result; a dead replica's session is recovered by
the worker."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import av
import httpx
import pytest

from app.celery_jobs import TASK_NAME, make_celery, task_id
from app.config import Settings
from app.live.manager import RECOVERY_JOB_KIND
from app.store.repository import SessionRepository
from app.upload.service import JOB_KIND
from tests.api.test_upload import check_feedback_frame, poll_until_done, upload
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.fixtures.videos import TILT_SEGMENTS, write_mp4
from tests.live.test_recording_e2e import probe
from tests.live.test_ws_live import FPS, stream
from tests.scale.conftest import CELERY_ENV, Cluster, start_cluster
from tests.support.client import SessionClient, wait_state

pytestmark = pytest.mark.timeout(180)

UPLOAD_FILES = {"source", "recording.webm", "result.json", "report.json", "report.html"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s: long enough that the analysis is seen in progress (and can be cut short)."""
    segments = (*TILT_SEGMENTS, *TILT_SEGMENTS)
    return write_mp4(tmp_path_factory.mktemp("clip") / "tilt.mp4", segments, audio=False)


async def wait_progress(http: httpx.AsyncClient, video_id: str, above: float) -> float:
    async with asyncio.timeout(60):
        while True:
            body = (await http.get(f"/api/video/video-send-feedback/{video_id}/")).json()
            assert body["problem"] == "processing", body
            if body["progress"] > above:
                return float(body["progress"])
            await asyncio.sleep(0.05)


def deliveries(log: str, video_id: str) -> int:
    """Deliveries of the upload's job a worker log shows (Celery's own line per message)."""
    return len(re.findall(rf"{TASK_NAME}\[{JOB_KIND}:{re.escape(video_id)}\] received", log))


async def test_an_upload_sent_to_a_is_analysed_by_the_worker_and_read_from_b(
    celery_cluster: Cluster, clip: Path
) -> None:
    cluster = celery_cluster
    async with (
        httpx.AsyncClient(base_url=cluster.a.http, timeout=60) as a,
        httpx.AsyncClient(base_url=cluster.b.http, timeout=60) as b,
    ):
        answer = await upload(a, clip)
        assert answer.status_code == 200, answer.text
        video_id = answer.json()["video_id"]
        done, progress = await poll_until_done(b, video_id, timeout=90, every_s=0.05)

        assert done["problem"] == "success", done
        assert done["progress"] == 100
        for frame in done["feedbacks"]:
            check_feedback_frame(frame, video_id)
        # B saw the worker's progress move while it ran (written to the row it reads).
        assert progress == sorted(progress), progress
        assert any(0 < p < 100 for p in progress), progress
        assert len(set(progress)) >= 3, progress

        recording = await b.get(done["recording_url"])
        assert recording.status_code == 200
        assert recording.headers["content-type"] == "video/webm"
        report = (await b.get(done["report_url"])).json()
        assert report["session_id"] == video_id
        assert any(c["cue"] == "head_tilt" for c in report["cues"])

    # The worker ran it; A only sent it, and neither replica analysed anything.
    worker_log = cluster.workers[0].log()
    assert deliveries(worker_log, video_id) == 1, worker_log[-3000:]
    assert f"job {JOB_KIND}:{video_id} done" in worker_log
    assert "upload analysed" in worker_log
    a_log, b_log = cluster.a.log_path.read_text(), cluster.b.log_path.read_text()
    assert f"job {JOB_KIND}:{video_id} sent to the workers" in a_log
    assert "upload analysed" not in a_log and "upload analysed" not in b_log
    with av.open(str(cluster.data_dir / "uploads" / video_id / "recording.webm")) as container:
        assert container.streams.video[0].codec_context.name == "vp9"

    # Deleted on B while the worker analyses it: the worker stops, and nothing comes back.
    async with (
        httpx.AsyncClient(base_url=cluster.a.http, timeout=60) as a,
        httpx.AsyncClient(base_url=cluster.b.http, timeout=60) as b,
    ):
        doomed = (await upload(a, clip)).json()["video_id"]
        await wait_progress(b, doomed, above=5)
        deleted = await b.delete(f"/api/video/delete_files/{doomed}")
        assert deleted.status_code == 200, deleted.text
        # DELETE returned once the worker let go of the job (it checks every 0.5 s).
        assert f"job {JOB_KIND}:{doomed} cancelled" in cluster.workers[0].log()
        await asyncio.sleep(1.0)  # anything a late write would bring back, it would by now
        assert not (cluster.data_dir / "uploads" / doomed).exists()
        gone = await b.get(f"/api/video/video-send-feedback/{doomed}/")
        assert gone.status_code == 404


async def test_a_job_delivered_again_gives_one_result(tmp_path: Path, clip: Path) -> None:
    """The worker is SIGKILLed mid-analysis: its unacknowledged task is delivered again (after
    the visibility timeout) to a second worker, which analyses the upload from the start over
    what the first left. Then the same job is delivered twice more, by hand. One set of events,
    one set of files."""
    env = {
        # redeliver an unacknowledged task after 2 s; the dead worker's lease lapses after 2 s
        "COACH_CELERY_VISIBILITY_TIMEOUT_S": "2",
        "COACH_JOB_LEASE_S": "2",
    }
    async with (
        start_cluster(tmp_path, {**CELERY_ENV, **env}) as cluster,
        httpx.AsyncClient(base_url=cluster.b.http, timeout=60) as b,
    ):
        first = cluster.new_worker("first")
        await asyncio.to_thread(first.start)
        async with httpx.AsyncClient(base_url=cluster.a.http, timeout=60) as a:
            video_id = (await upload(a, clip)).json()["video_id"]
        await wait_progress(b, video_id, above=10)
        first.kill()  # mid-analysis, task unacknowledged
        folder = cluster.data_dir / "uploads" / video_id
        assert not (folder / "result.json").exists()

        second = cluster.new_worker("second")
        await asyncio.to_thread(second.start)
        done, _progress = await poll_until_done(b, video_id, timeout=120, every_s=0.05)
        assert done["problem"] == "success", done

        repo = SessionRepository(cluster.database_url)
        try:
            events = await repo.list_events(video_id)
            row = await repo.get_session(video_id)
            assert row is not None
            ended_at = row.ended_at
            result_mtime = (folder / "result.json").stat().st_mtime_ns

            # Two more deliveries of the same job, as a broker redelivery would make them.
            settings = Settings(redis_url=cluster.redis_url, data_dir=cluster.data_dir)
            sender = make_celery(settings)
            done_line = f"job {JOB_KIND}:{video_id} done"
            runs_before = second.log().count(done_line)
            for _ in range(2):
                await asyncio.to_thread(
                    sender.send_task,
                    TASK_NAME,
                    args=[JOB_KIND, video_id],
                    task_id=task_id(JOB_KIND, video_id),
                )
            async with asyncio.timeout(60):
                while True:
                    if second.log().count(done_line) >= runs_before + 2:
                        break
                    await asyncio.sleep(0.1)

            assert await repo.list_events(video_id) == events
            again = await repo.get_session(video_id)
            assert again is not None and again.ended_at == ended_at
        finally:
            await repo.close()

    # One set of events: seq 1..N, one metrics event per analysed frame, no cue twice.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    metrics = [e for e in events if e["type"] == "metrics"]
    assert len(metrics) == row.frames_analyzed
    cues = [(e["t"], e["cue"], e["state"]) for e in events if e["type"] == "cue"]
    assert cues and len(cues) == len(set(cues))
    # One set of files, each whole: nothing half-written left by the killed worker.
    assert {p.name for p in folder.iterdir()} == UPLOAD_FILES
    assert (folder / "result.json").stat().st_mtime_ns == result_mtime
    with av.open(str(folder / "recording.webm")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 15 * 19  # 20 s at 15 fps, whole
    # The first worker started it and died; the second analysed it once and then dropped the
    # deliveries that found it done.
    assert deliveries(first.log(), video_id) == 1 and "upload analysed" not in first.log()
    assert second.log().count("upload analysed") == 1
    assert second.log().count("upload analysis skipped: the upload is completed") == 2
    assert deliveries(second.log(), video_id) == 3


async def test_a_dead_replicas_session_is_recovered_by_the_worker(
    celery_cluster: Cluster,
) -> None:
    cluster = celery_cluster
    media = await SessionClient.create(cluster.a.http, cluster.a.ws, language="en")
    await media.connect()
    frames = labelled_clip(FPS, [Segment("frontal", 3.0)])
    await media.send_frame(encode_jpeg(frames[0].image))  # the first frame: A owns it now
    await media.wait_for(lambda e: e["type"] == "state" and e["state"] == "live")
    watcher = SessionClient(cluster.b.http, cluster.b.ws, media.info)
    await watcher.connect()
    await stream(media, frames[1:])
    await asyncio.sleep(1.0)  # the last cluster of the recording is on disk
    cluster.a.kill()
    await media.close()

    final = await watcher.wait_for(
        lambda e: e["type"] == "state" and e["state"] == "completed", timeout=90
    )
    assert final["recovered"] is True
    await watcher.close()
    async with httpx.AsyncClient(base_url=cluster.b.http, timeout=30) as http:
        info = await wait_state(
            http, f"/api/sessions/{media.id}", media.auth, "completed", "failed", timeout=30
        )
        assert info["state"] == "completed" and info["recovered"] is True, info
        recording = await http.get(f"/api/sessions/{media.id}/recording.webm", headers=media.auth)
        assert recording.status_code == 200
        assert probe(recording.content)[0] == "vp9"
        report = await http.get(f"/api/sessions/{media.id}/report", headers=media.auth)
        assert report.status_code == 200
    events = watcher.events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    # B found the orphan and sent the job; the worker took the session over.
    b_log, worker_log = cluster.b.log_path.read_text(), cluster.workers[0].log()
    assert f"job {RECOVERY_JOB_KIND}:{media.id} sent to the workers" in b_log
    assert "taking over an orphaned session" not in b_log
    assert f"job {RECOVERY_JOB_KIND}:{media.id} done" in worker_log
    assert "taking over an orphaned session" in worker_log
