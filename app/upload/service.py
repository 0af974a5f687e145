"""The upload flow's service: receive and probe an upload, run its analysis as a background job,
answer polls from stored state, delete exactly one upload's files.

State lives in two places that survive a restart: a `sessions` row with `kind="upload"`
(`state` processing | completed | failed, `extra` with `problem` and `progress`) and, per
upload, `<uploads_dir>/<video_id>/` holding `source` (the upload), `recording.webm` and
`result.json` (the feedback frames). An upload still `processing` when the server stopped is
queued again at the next start.

The analysis is a job (`JOB_KIND`, keyed by the video id) on whichever `JobRunner` the app was
built with: in this process by default, on a Celery worker with `COACH_JOBS=celery`. It may run
more than once for one upload (a redelivered task, a restart), so it is idempotent: it only
starts on a `processing` row, replaces the upload's events in one transaction and moves every
file into place whole (written beside it, then renamed).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from app.config import Settings
from app.errors import CoachError, ErrorCode, not_found
from app.events import Event, WireEvent, to_wire
from app.frames import Language
from app.jobs import JobContext, JobQueueFull, JobRunner
from app.live.retention import FINISHED_STATES, delete_finished_before, retention_cutoff
from app.store.db import SessionRow
from app.store.repository import SessionRepository
from app.upload.analyze import AnalysisStages, Moment, ScanResult, scan_video
from app.upload.feedback import FeedbackFrame, build_feedback_frames, critique_moments
from app.upload.probe import ProbeRejected, VideoProbe, probe_video
from app.upload.receive import UploadRejected, receive_file
from app.upload.speech import SPEECH_KEYS, UploadSpeech, speech_fields

log = logging.getLogger(__name__)

JOB_KIND = "upload_analysis"
# token_urlsafe(18): 24 characters; anything else (`_`, `..`, `*`, a path) is not an id.
VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{22,64}")
Problem = Literal["processing", "success", "no_feedback", "failed"]
SOURCE_NAME = "source"
RECORDING_NAME = "recording.webm"
RECORDING_PART_NAME = "recording.part.webm"  # being written; renamed when complete
RESULT_NAME = "result.json"
REPORT_NAME = "report.json"
ARTEFACT_NAMES = {
    "recording": RECORDING_NAME,
    "report": REPORT_NAME,
    "report_html": "report.html",
}
NOT_READY: dict[str, ErrorCode] = {
    "recording": "recording_not_ready",
    "report": "report_not_ready",
    "report_html": "report_html_not_ready",
}
# Shares of the progress bar: the single decode pass is most of the work.
SCAN_SHARE, CRITIC_SHARE = 85.0, 10.0

MESSAGES: dict[str, dict[Language, str]] = {
    "received": {
        "ko": "영상이 업로드되었어요. 분석을 시작합니다.",
        "en": "The video was uploaded. Analysis has started.",
    },
    "processing": {
        "ko": "영상을 분석하고 있어요 ({progress}%).",
        "en": "Analysing the video ({progress}%).",
    },
    "success": {
        "ko": "분석이 끝났어요. 피드백 {count}개를 확인해 보세요.",
        "en": "Analysis finished: {count} feedback items.",
    },
    "no_feedback": {
        "ko": "분석이 끝났어요. 특별히 고칠 점을 찾지 못했어요.",
        "en": "Analysis finished: nothing worth pointing out.",
    },
    "failed": {
        "ko": "영상을 분석하지 못했어요: {reason}",
        "en": "The video could not be analysed: {reason}",
    },
    "deleted": {
        "ko": "영상과 분석 결과를 삭제했어요.",
        "en": "The video and its analysis were deleted.",
    },
}


def message(key: str, language: Language, **fields: Any) -> str:
    return MESSAGES[key][language].format(**fields)


def new_video_id() -> str:
    return secrets.token_urlsafe(18)  # 144 bits


@dataclass(frozen=True, slots=True)
class UploadReportInput:
    """What a report builder gets for a finished upload (the seam for `app.coaching.report`)."""

    video_id: str
    title: str
    language: Language
    duration_s: float
    events: list[dict[str, Any]]  # cue, metrics and critique events, contract shape, seq order
    moments: list[Moment]
    keyframe_candidates: list[Any]  # app.coaching.keyframes.Candidate
    recording_url: str | None
    recording_path: Path | None
    upload_dir: Path
    transcript: dict[str, Any] | None = None  # transcript.json's shape (app.live.transcription)


# report_builder(input) -> writes report.json/report.html into input.upload_dir; None: none.
ReportBuilder = Callable[[UploadReportInput], Awaitable[None]]


@dataclass
class UploadService:
    settings: Settings
    repo: SessionRepository
    jobs: JobRunner
    stages: AnalysisStages
    make_critic: Callable[[Settings], Any] | None = None
    report_builder: ReportBuilder | None = None
    # Uploads this process is analysing: progress (0-100) and language, so their polls are
    # answered from memory without touching the database.
    _progress: dict[str, float] = field(default_factory=dict)
    _languages: dict[str, Language] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    # --- lifecycle -----------------------------------------------------------------------
    def register_jobs(self) -> None:
        """Register the analysis on the runner (a Celery worker does only this)."""
        self.jobs.register(JOB_KIND, self._run_job)

    async def start(self) -> None:
        self.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.register_jobs()
        for row in await self.repo.sessions_in_states(("processing",), kind="upload"):
            log.info("re-queueing an unfinished upload", extra={"video_id": row.id})
            try:
                self.jobs.submit(JOB_KIND, row.id)
            except JobQueueFull:
                await self._fail(row.id, "the server restarted with too many queued uploads")

    # --- paths ---------------------------------------------------------------------------
    def upload_dir(self, video_id: str) -> Path:
        """The folder of one upload; `video_not_found` for anything that is not a well-formed id
        or whose resolved path is not directly inside the uploads folder."""
        if not VIDEO_ID_RE.fullmatch(video_id):
            raise not_found("video")
        root = self.settings.uploads_dir.resolve()
        path = (root / video_id).resolve()
        if path.parent != root:
            raise not_found("video")
        return path

    async def _upload_row(self, video_id: str) -> tuple[SessionRow, Path]:
        path = self.upload_dir(video_id)
        row = await self.repo.get_session(video_id)
        if row is None or row.kind != "upload":
            raise not_found("video")
        return row, path

    # --- receive -------------------------------------------------------------------------
    async def receive(
        self,
        chunks: AsyncIterator[bytes],
        content_type: str,
        content_length: int | None,
        language: Language,
    ) -> tuple[str, str]:
        """Stream the upload to disk, probe it and queue its analysis: (video_id, message)."""
        free_mb = shutil.disk_usage(self.settings.uploads_dir).free / 1e6
        if free_mb - (content_length or 0) / 1e6 < self.settings.limits.min_free_disk_mb:
            raise CoachError("disk_full", "The server is low on disk space.", retry_after_s=300)
        video_id = new_video_id()
        folder = self.upload_dir(video_id)
        await asyncio.to_thread(folder.mkdir, parents=True)
        try:
            received = await receive_file(
                chunks,
                content_type,
                content_length,
                folder / SOURCE_NAME,
                self.settings.upload.max_bytes,
            )
            probe = await asyncio.to_thread(
                probe_video, received.path, self.settings.upload.max_duration_s
            )
        except (UploadRejected, ProbeRejected) as exc:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise CoachError(exc.code, exc.message) from None
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        await self.repo.create_session(
            SessionRow(
                id=video_id,
                token_hash="",  # the upload flow has no token: the id is unguessable
                kind="upload",
                title=received.filename,
                language=language,
                state="processing",
                created_at=datetime.now(UTC),
                started_at=datetime.now(UTC),
                duration_s=probe.duration_s,
                extra={
                    "problem": "processing",
                    "progress": 0.0,
                    "probe": _probe_dict(probe),
                    "size": received.size,
                },
            )
        )
        try:
            self.jobs.submit(JOB_KIND, video_id)
        except JobQueueFull:
            await self.repo.delete_session(video_id)
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise CoachError(
                "busy", "Too many videos are being analysed; try again later.", retry_after_s=60
            ) from None
        log.info("upload received", extra={"video_id": video_id, "bytes": received.size})
        return video_id, message("received", language)

    # --- poll ----------------------------------------------------------------------------
    async def feedback(self, video_id: str) -> dict[str, Any]:
        """The poll answer, from stored state only: this process's progress while it analyses
        the upload, else the row and, when done, `result.json`."""
        progress = self._progress.get(video_id)
        if progress is not None and VIDEO_ID_RE.fullmatch(video_id):
            running_language = self._languages.get(video_id, "ko")
            return {
                "video_id": video_id,
                "feedbacks": [],
                "problem": "processing",
                "progress": round(progress, 1),
                "message": message("processing", running_language, progress=int(progress)),
                "duration_s": None,
                "report_url": None,
                "recording_url": None,
            }
        row, folder = await self._upload_row(video_id)
        language: Language = row.language if row.language in ("ko", "en") else "ko"  # type: ignore[assignment]
        extra = row.extra or {}
        problem: Problem = extra.get("problem", "processing")
        progress = self._progress.get(video_id, float(extra.get("progress", 0.0)))
        answer: dict[str, Any] = {
            "video_id": video_id,
            "feedbacks": [],
            "problem": problem,
            "progress": round(progress if problem == "processing" else 100.0, 1),
            "duration_s": row.duration_s,
            "report_url": None,
            "recording_url": None,
        }
        if problem == "processing":
            answer["message"] = message("processing", language, progress=int(progress))
            return answer
        if problem == "failed":
            answer["message"] = message("failed", language, reason=row.reason or "unknown")
            return answer
        result = await asyncio.to_thread(_read_json, folder / RESULT_NAME)
        answer["feedbacks"] = result.get("feedbacks", []) if result else []
        for key in SPEECH_KEYS:  # what was said, shaped as in the report
            answer[key] = (result or {}).get(key)
        count = len(answer["feedbacks"])
        answer["message"] = (
            message("success", language, count=count)
            if problem == "success"
            else message("no_feedback", language)
        )
        if row.has_recording:
            answer["recording_url"] = f"/api/video/recording/{video_id}"
        if row.has_report:
            answer["report_url"] = f"/api/video/report/{video_id}"
            answer["report_html_url"] = f"/api/video/report/{video_id}/html"
        return answer

    async def artefact(
        self, video_id: str, which: Literal["recording", "report", "report_html"]
    ) -> Path:
        row, folder = await self._upload_row(video_id)
        ready = row.has_recording if which == "recording" else row.has_report
        path = folder / ARTEFACT_NAMES[which]
        if not ready or not path.is_file():
            raise CoachError(NOT_READY[which], f"The {which} is not ready.")
        return path

    # --- delete --------------------------------------------------------------------------
    async def delete(self, video_id: str) -> str:
        row, folder = await self._upload_row(video_id)
        await self.jobs.cancel(JOB_KIND, video_id)
        if folder.is_dir() and not folder.is_symlink():
            await asyncio.to_thread(shutil.rmtree, folder)
        await self.repo.delete_session(video_id)
        self._progress.pop(video_id, None)
        log.info("upload deleted", extra={"video_id": video_id})
        return message("deleted", row.language if row.language in ("ko", "en") else "ko")  # type: ignore[arg-type]

    async def sweep_expired(self, now: datetime | None = None) -> list[str]:
        """Delete uploads (video, artefacts, rows) whose analysis finished more than
        `retention_days` ago, as `app.live.retention.sweep_expired` does for live sessions.
        Returns the deleted ids."""
        cutoff = retention_cutoff(self.settings.storage.retention_days, now)
        if cutoff is None:
            return []
        rows = await self.repo.sessions_in_states(FINISHED_STATES, kind="upload")
        return await delete_finished_before(rows, cutoff, self.delete, "upload", "video_id")

    # --- the job -------------------------------------------------------------------------
    async def _run_job(self, ctx: JobContext) -> None:
        video_id = ctx.job_id
        row = await self.repo.get_session(video_id)
        if row is None or row.kind != "upload" or row.state != "processing":
            # Deleted, or analysed by an earlier delivery of this job: nothing to do.
            log.info(
                "upload analysis skipped: the upload is %s",
                "gone" if row is None else row.state,
                extra={"video_id": video_id},
            )
            return
        folder = self.upload_dir(video_id)
        language: Language = row.language if row.language in ("ko", "en") else "ko"  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        self._progress[video_id] = 0.0
        self._languages[video_id] = language

        def on_scan_progress(fraction: float) -> None:  # called on the worker thread
            loop.call_soon_threadsafe(self._set_progress, video_id, fraction * SCAN_SHARE)

        persister = loop.create_task(self._persist_progress(video_id), name=f"{video_id}:progress")
        speech = UploadSpeech.start(self.stages, video_id, language, self.settings)

        async def stop_persister() -> None:
            # Before the final write, so a late progress write cannot overwrite `problem`.
            persister.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await persister

        try:
            started = time.perf_counter()
            scan: ScanResult = await ctx.run_cpu(
                _scan,
                folder,
                self.settings,
                self.stages,
                float(row.duration_s or 0.0),
                on_scan_progress,
                ctx.cancelled,
                speech.audio if speech is not None else None,
            )
            self._progress[video_id] = SCAN_SHARE
            transcript, speech_events = (
                await speech.finish() if speech is not None else (None, list[Event]())
            )
            speech = None
            critic = self.make_critic(self.settings) if self.make_critic is not None else None
            try:
                texts, critique_events = await critique_moments(
                    critic,
                    scan.moments,
                    scan.analyses,
                    self.settings,
                    video_id=video_id,
                    language=language,
                )
            finally:
                if critic is not None:
                    await critic.aclose()
            self._progress[video_id] = SCAN_SHARE + CRITIC_SHARE
            frames: list[FeedbackFrame] = await ctx.run_cpu(
                build_feedback_frames, video_id, scan.moments, texts
            )
            events = await self._store_events(
                video_id, scan, [*critique_events, *speech_events], language
            )
            result = {
                "video_id": video_id,
                "feedbacks": frames,
                "duration_s": scan.duration_s,
                "frames_decoded": scan.frames_decoded,
                "frames_analyzed": scan.frames_analyzed,
                "analysis_s": scan.analysis_s,
                "total_s": round(time.perf_counter() - started, 3),
                "recording": None
                if scan.recording is None
                else {
                    "width": scan.recording.width,
                    "height": scan.recording.height,
                    "frames": scan.recording.frames_encoded,
                    "encode_s": scan.recording.encode_s,
                },
                **speech_fields(transcript, scan.duration_s, language),
            }
            if ctx.cancelled.is_set():
                return  # deleted or shutting down while the last steps ran
            await asyncio.to_thread(_write_json, folder / RESULT_NAME, result)
            has_report = await self._build_report(row, folder, scan, events, language, transcript)
            await stop_persister()
            problem: Problem = "success" if frames else "no_feedback"
            await self.repo.update_session(
                video_id,
                state="completed",
                ended_at=datetime.now(UTC),
                duration_s=scan.duration_s,
                frames_received=scan.frames_decoded,
                frames_analyzed=scan.frames_analyzed,
                has_recording=scan.recording is not None,
                has_report=has_report,
                extra={
                    **(row.extra or {}),
                    "problem": problem,
                    "progress": 100.0,
                    "feedbacks": len(frames),
                },
            )
            self._progress.pop(video_id, None)  # polls now read the finished row
            log.info(
                "upload analysed",
                extra={"video_id": video_id, "feedbacks": len(frames), "s": result["total_s"]},
            )
        except asyncio.CancelledError:
            raise  # deleted or shutting down: a restart re-queues a `processing` upload
        except Exception as exc:
            if ctx.cancelled.is_set():
                return
            log.exception("upload analysis failed", extra={"video_id": video_id})
            await stop_persister()
            await self._fail(video_id, f"{type(exc).__name__}: {exc}")
            self._progress.pop(video_id, None)
        finally:
            if speech is not None:  # the scan failed or was cancelled
                speech.stop()
            await stop_persister()
            self._progress.pop(video_id, None)
            self._languages.pop(video_id, None)

    def _set_progress(self, video_id: str, progress: float) -> None:
        if video_id in self._progress:  # not after the job ended
            self._progress[video_id] = progress

    async def _persist_progress(self, video_id: str) -> None:
        """Write the progress to the row now and then, so another replica (or a restart) can
        answer polls; this replica answers from memory."""
        last = -1.0
        while True:
            await asyncio.sleep(self.settings.upload.progress_persist_s)
            progress = self._progress.get(video_id)
            if progress is None or progress - last < 1.0:
                continue
            last = progress
            row = await self.repo.get_session(video_id)
            if row is None or row.state != "processing":
                return
            await self.repo.update_session(
                video_id, extra={**(row.extra or {}), "progress": round(progress, 1)}
            )

    async def _fail(self, video_id: str, reason: str) -> None:
        row = await self.repo.get_session(video_id)
        if row is None:
            return
        await self.repo.update_session(
            video_id,
            state="failed",
            reason=reason[:500],
            ended_at=datetime.now(UTC),
            extra={**(row.extra or {}), "problem": "failed"},
        )

    async def _store_events(
        self,
        video_id: str,
        scan: ScanResult,
        critique_events: list[Event],
        language: Language,
    ) -> list[WireEvent]:
        """Cue, metrics, critique and transcript events, as a live session's, so the same
        report code can read an upload like a session."""
        from app.live.session import cue_event, metrics_event

        timed: list[Event] = []
        for a in scan.analyses:
            metrics = metrics_event(a)
            metrics.latency_ms = None  # nothing arrived live
            timed.append(metrics)
        timed.extend(cue_event(tr, language) for tr in scan.transitions)
        timed.extend(critique_events)
        timed.sort(key=lambda e: e.t)
        # All of an upload's events come from this one pass: a second run (a redelivered job)
        # replaces the first run's, never adds to them.
        events = [to_wire(e, video_id, i) for i, e in enumerate(timed, start=1)]
        await self.repo.replace_events(video_id, events)
        return events

    async def _build_report(
        self,
        row: SessionRow,
        folder: Path,
        scan: ScanResult,
        events: list[dict[str, Any]],
        language: Language,
        transcript: dict[str, Any] | None = None,
    ) -> bool:
        if self.report_builder is None:
            return False
        await self.report_builder(
            UploadReportInput(
                video_id=row.id,
                title=row.title,
                language=language,
                duration_s=scan.duration_s,
                events=events,
                moments=scan.moments,
                keyframe_candidates=scan.keyframe_candidates,
                recording_url=f"/api/video/recording/{row.id}" if scan.recording else None,
                recording_path=scan.recording.path if scan.recording is not None else None,
                upload_dir=folder,
                transcript=transcript,
            )
        )
        return True


def _scan(
    folder: Path,
    settings: Settings,
    stages: AnalysisStages,
    duration_hint_s: float,
    on_progress: Callable[[float], None],
    cancelled: Any,
    on_audio: Callable[[Any, float], None] | None = None,
) -> ScanResult:
    """The single pass; the recording is written beside its final name and renamed once it is
    complete, so a run cut short (a killed worker) never leaves a truncated recording.webm."""
    part = folder / RECORDING_PART_NAME
    try:
        scan = scan_video(
            folder / SOURCE_NAME,
            settings,
            stages,
            duration_hint_s=duration_hint_s,
            recording_path=part,
            on_progress=on_progress,
            cancelled=cancelled,
            on_audio=on_audio,
        )
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if scan.recording is None:
        return scan
    final = part.replace(folder / RECORDING_NAME)
    return dataclasses.replace(scan, recording=dataclasses.replace(scan.recording, path=final))


def _probe_dict(probe: VideoProbe) -> dict[str, Any]:
    return {
        "format": probe.format_name,
        "codec": probe.codec,
        "width": probe.width,
        "height": probe.height,
        "duration_s": probe.duration_s,
        "duration_from_header": probe.duration_from_header,
        "has_audio": probe.has_audio,
    }


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
