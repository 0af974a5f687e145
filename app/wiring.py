"""The one place that says which implementations are built: a session's stages, the upload's,
and the job runner. The composition roots (`app.main`, `app.worker`) call it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app.analysis.asr import AsrClient
from app.analysis.transcribe import load_vosk_model, vosk_model_path
from app.analysis.voice import VoiceAnalyzer, voice_conditions
from app.celery_jobs import CeleryJobRunner
from app.coaching.content import make_content_client
from app.coaching.critic import Critic, CritiqueScheduler, RulesCritic, build_critic
from app.coaching.keyframes import KeyframePicker
from app.config import Settings
from app.events import Event, WireEvent
from app.frames import Language
from app.jobs import InProcessJobRunner, JobRunner
from app.live.report import keyframe_picker_for, write_session_report
from app.live.services import Hooks, SessionView
from app.live.transcription import LiveTranscriber
from app.media.recorder import RecordingFailure, SessionRecorder, recover_recording
from app.priority import pose_lane_priority
from app.upload.analyze import AnalysisStages

if TYPE_CHECKING:
    from app.analysis.pipeline import PooledAnalyzer

log = logging.getLogger(__name__)


def pose_runner(settings: Settings) -> Any:
    """Where this process's sessions run Pose: worker processes (`pose_processes`), shared
    graphs here (`pose_graphs`), or None (a tracking graph per session). In a Pose lane, Pose
    yields to face analysis (`pose_lane_priority`)."""
    from app.analysis.pose import PoseGraphs
    from app.analysis.pose_process import PoseProcess

    priority = pose_lane_priority(settings)
    if settings.pose.processes > 0:
        if not multiprocessing.current_process().daemon:
            return PoseProcess(settings.pose.processes, priority, settings.pose.timeout_s)
        # A Celery prefork child is a daemonic process, and those may not start children.
        log.info("Pose runs in this process: a daemonic process cannot start its worker")
    if settings.pose.graphs > 0:
        return PoseGraphs(settings.pose.graphs, priority)
    return None


def face_runner(settings: Settings) -> Any:
    """Where this process's sessions run FaceMesh: worker processes (`face_processes`), or
    None (in this process)."""
    from app.analysis.face_process import FaceProcesses

    processes = settings.analysis.face_processes
    if processes <= 0:
        return None
    if multiprocessing.current_process().daemon:
        log.info("face analysis runs in this process: a daemonic process cannot start workers")
        return None
    return FaceProcesses(settings, processes, settings.analysis.face_timeout_s)


class AnalyzerService:
    """One pool of reused FrameAnalyzers per process (see `AnalyzerPool`), built on the first
    session: MediaPipe is imported then, not at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: Any = None
        self._pose_graphs: Any = None
        self._face_graphs: Any = None
        self._lock = threading.Lock()

    def make_analyzer(self, settings: Settings) -> PooledAnalyzer:
        with self._lock:
            if self._pool is None:
                from app.analysis.pipeline import AnalyzerPool, FrameAnalyzer

                self._pose_graphs = pose_runner(self.settings)
                self._face_graphs = face_runner(self.settings)
                graphs, faces = self._pose_graphs, self._face_graphs
                self._pool = AnalyzerPool(
                    self.settings,
                    self.settings.limits.analyzer_pool_size,
                    make=lambda s: FrameAnalyzer(s, pose_graphs=graphs, face_graphs=faces),
                )
            pool = self._pool
        return pool.acquire(settings)

    @property
    def built(self) -> int:
        """Analysers built so far in this process (each is tens of MB of graphs)."""
        return 0 if self._pool is None else int(self._pool.built)

    async def aclose(self) -> None:
        # each step even if one before it failed: worker processes must not outlive this
        async with contextlib.AsyncExitStack() as closing:  # (last pushed, first closed)
            for closer in (self._face_graphs, self._pose_graphs, self._pool):
                if closer is not None:
                    closing.push_async_callback(asyncio.to_thread, closer.close)


def _make_condition_state() -> Any:
    from app.analysis.conditions import ConditionState

    return ConditionState()


def _frame_conditions(*args: Any) -> Any:
    from app.analysis.conditions import frame_conditions

    return frame_conditions(*args)


def make_upload_critic(settings: Settings) -> Any:
    """The critic for uploads: the VLM when one is configured, else the rules critic."""
    from app.coaching.critic import build_critic

    return build_critic(settings)


def _without_gaze_calibration(settings: Settings) -> Settings:
    cues = settings.cues.model_copy(update={"gaze_calibration_s": 0.0})
    return settings.model_copy(update={"cues": cues})


def upload_stages(hooks: Hooks) -> AnalysisStages:
    """The live loop's analysis stages, for the upload flow's single pass. The analyser learns
    no gaze baseline: an upload has no "look at the camera" step, so its first seconds say
    nothing about how the presenter looks at the camera (see `GazeTracker`)."""
    return AnalysisStages(
        make_analyzer=lambda settings: hooks.make_analyzer(_without_gaze_calibration(settings)),
        frame_conditions=hooks.frame_conditions,
        make_condition_state=hooks.make_condition_state,
        # no directory: nothing to persist, a crashed upload is analysed again from its file
        make_keyframe_picker=lambda settings: KeyframePicker(settings, None),
        make_transcriber=hooks.make_file_transcriber,
    )


def _make_recorder(session: SessionView) -> SessionRecorder:
    directory = session.settings.sessions_dir / session.id
    directory.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()

    def end_session(reason: RecordingFailure) -> None:
        # From the recorder's thread: a session that can no longer be recorded ends (and is
        # finalised with what was recorded) rather than coaching on with nothing kept.
        loop.call_soon_threadsafe(session.services.request_end, session.id, reason)

    return SessionRecorder(directory, session.settings, on_failure=end_session)


class CriticService:
    """One critic (and its HTTP client) per process, one rules fallback, one global limit on
    requests in flight; a scheduler per session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.critic: Critic = build_critic(settings)
        self.fallback = RulesCritic(settings)
        self.limit = asyncio.Semaphore(max(1, settings.vlm.concurrency))

    def make_scheduler(self, session: SessionView) -> CritiqueScheduler:
        return CritiqueScheduler(
            session_id=session.id,
            language=session.language,
            settings=self.settings,
            critic=self.critic,
            fallback=self.fallback,
            emit=session.emit,  # numbered, published and stored as the session's events
            global_limit=self.limit,
            interval_s=session.critique_interval_s,
        )

    async def aclose(self) -> None:
        await self.critic.aclose()


class TranscriptionService:
    """Recognisers per session: one transcription endpoint client per process (`asr_*`, or the
    older `transcribe_*`), the vosk model loaded once per process on first use, on a worker
    thread, and a client for the content feedback (the VLM endpoint)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.asr = AsrClient.from_settings(settings)
        self.content_client = make_content_client(settings)

    def _model(self, language: str) -> Any:
        with self._lock:
            if language not in self._models:
                self._models[language] = load_vosk_model(language)  # type: ignore[arg-type]
            return self._models[language]

    def preload(self, language: str) -> bool:
        """Load the language's embedded model now, as a session's first stretch would (blocking,
        seconds); True when one is installed."""
        return self._model(language) is not None

    def make_worker(self, session: SessionView) -> LiveTranscriber | None:
        return self.make_file_worker(session.id, session.language, session.emit)

    def make_file_worker(
        self, owner_id: str, language: Language, emit: Callable[[Event], Awaitable[WireEvent]]
    ) -> LiveTranscriber | None:
        """A recogniser for a live session or an upload (`owner_id`), emitting with `emit`."""
        settings = self.settings
        local = language == "ko" and settings.transcribe.vosk and vosk_model_path(language)
        if not local and self.asr is None:
            return None  # the report says no transcript was made, and why
        return LiveTranscriber(
            owner_id,
            language,
            settings,
            emit,
            asr=self.asr,
            local_model=(lambda: self._model(language)) if local else None,
            content_client=self.content_client,
        )

    async def aclose(self) -> None:
        if self.asr is not None:
            await self.asr.aclose()
        if self.content_client is not None:
            await self.content_client.close()


def default_hooks(settings: Settings) -> Hooks:
    critics = CriticService(settings)
    transcription = TranscriptionService(settings)
    analyzers = AnalyzerService(settings)
    return Hooks(
        make_critic=critics.make_scheduler,
        make_recorder=_make_recorder,
        make_transcriber=transcription.make_worker,
        make_file_transcriber=transcription.make_file_worker,
        recover_recording=recover_recording,
        on_shutdown=[critics.aclose, analyzers.aclose, transcription.aclose],
        make_analyzer=analyzers.make_analyzer,
        frame_conditions=_frame_conditions,
        make_condition_state=_make_condition_state,
        make_voice=lambda session: VoiceAnalyzer(session.language, session.settings),
        voice_conditions=voice_conditions,
        make_keyframe_picker=keyframe_picker_for,
        build_report=write_session_report,
    )


def make_job_runner(settings: Settings, redis: Any = None) -> JobRunner:
    """The runner `settings.cluster.jobs` names: in-process, or Celery (which needs the
    cluster's Redis client for its job keys)."""
    if settings.cluster.jobs == "celery":
        if redis is None:
            raise RuntimeError("COACH_JOBS=celery needs COACH_REDIS_URL")
        return CeleryJobRunner(settings, redis)
    return InProcessJobRunner(
        max_concurrent=settings.upload.concurrency, max_pending=settings.upload.max_queued
    )
