"""What the live sessions of a process run on: the shared `Services` (repository, event writer,
bus, executors, scale-out parts) and the `Hooks` that build each session's stages.

Built by a composition root (`app.main` for the server, `app.worker` for a Celery worker, the
tests) with `open_services`, and handed to the `SessionManager` and each `LiveSession`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from app.analysis.cadence import PoseCadence
from app.config import Settings
from app.events import Event, WireEvent
from app.frames import (
    Analyzer,
    AudioAnalysis,
    AudioChunk,
    CueName,
    EncodedVideo,
    FrameAnalysis,
    FrameObserver,
    Language,
    VideoFrame,
)
from app.jobs import JobRunner
from app.live.bus import EventBus, InMemoryEventBus
from app.live.load import LoadMonitor
from app.observability import CoachMetrics
from app.priority import pose_thread_priority
from app.store.repository import EventWriter, SessionRepository

if TYPE_CHECKING:
    from app.analysis.conditions import ConditionState, FrameConditions
    from app.analysis.pipeline import PoseWork
    from app.analysis.transcribe import Transcript
    from app.coaching.critic import CriticStats
    from app.coaching.keyframes import KeyframePicker
    from app.live.control import ControlChannel
    from app.live.ownership import SessionOwnership
    from app.live.transcription import LiveTranscriber
    from app.media.recorder import RecordingResult

# The stages a live session drives, as protocols: `app.wiring` builds the implementations
# named in each docstring, and tests may swap any of them.


class LiveAnalyzer(Analyzer, Protocol):
    """The analysis stage as the live loop drives it (a pooled `FrameAnalyzer`, app.analysis
    .pipeline): face on every analysed frame, Pose inline (`analyze`) or, with a Pose lane,
    `analyze_face` here and `run_pose` on the returned work in the lane's thread."""

    def analyze(self, frame: VideoFrame, pose_every: int | None = None) -> FrameAnalysis: ...

    def analyze_face(
        self, frame: VideoFrame, pose_every: int | None = None, *, pose_lane_free: bool = True
    ) -> tuple[FrameAnalysis, PoseWork | None]: ...

    def run_pose(self, work: PoseWork) -> None: ...

    def warm_up(self) -> None:
        """Run the graphs once, before the first live frame (they initialise on first use)."""
        ...


class Recorder(Protocol):
    """Every received frame and audio chunk, encoded while the session runs (`SessionRecorder`,
    app.media.recorder). `push_*` never block: False when the bounded queue dropped it."""

    @property
    def queue_depth(self) -> int: ...

    def start(self) -> None: ...

    def push_video(self, frame: VideoFrame | EncodedVideo) -> bool: ...

    def push_audio(self, chunk: AudioChunk) -> bool: ...

    async def stop(self) -> RecordingResult:
        """Flush and close the recording."""
        ...


class SessionCritic(FrameObserver, Protocol):
    """The session's critic (`CritiqueScheduler`, app.coaching.critic): it sees the analysed
    frames, the cues and the voice windows, critiques on its own timer, and writes the report's
    summary once closed."""

    @property
    def stats(self) -> CriticStats: ...

    def start(self) -> None: ...

    def observe_cue(self, cue_event: WireEvent) -> None: ...

    def observe_audio(self, a: AudioAnalysis) -> None: ...

    async def aclose(self, final: bool = True) -> None: ...

    async def summarize(
        self,
        *,
        duration_s: float,
        scores: Mapping[str, float | None],
        gaze_shares: Mapping[str, float] | None = None,
    ) -> tuple[str, Literal["vlm", "rules"]]: ...


class VoiceStage(Protocol):
    """Voice analysis of the session's audio (`VoiceAnalyzer`, app.analysis.voice), run on the
    audio executor: chunks in, a measurement per completed window out; `flush` measures what is
    left when the session ends."""

    def process(self, chunk: AudioChunk) -> list[AudioAnalysis]: ...

    def flush(self) -> list[AudioAnalysis]: ...


class SessionTranscriber(Protocol):
    """Speech recognition beside the session (`TranscriptionWorker`, app.live.transcription):
    `feed` never blocks; `finish` drains it, closes its cues at `end_t` (the session's end) and
    returns the transcript, if one was made."""

    def start(self) -> None: ...

    def feed(self, chunk: AudioChunk) -> None: ...

    def stop(self) -> None: ...

    async def finish(self, end_t: float | None = None) -> Transcript | None: ...


class EndedSession(Protocol):
    """What the report reads of a session that has just ended (a `LiveSession`)."""

    @property
    def keyframes(self) -> KeyframePicker | None: ...

    @property
    def critic(self) -> SessionCritic | None: ...


class SessionStorage(Protocol):
    """Where sessions' rows and files are kept (the `SessionManager`)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def repo(self) -> SessionRepository: ...

    def session_dir(self, session_id: str) -> Path: ...


class ReportHook(Protocol):
    """`Hooks.build_report` (`write_session_report`, app.live.report): write a session's
    report; `session` is the session that just ended, or None after a crash. Raises on
    failure."""

    async def __call__(
        self, storage: SessionStorage, session_id: str, *, session: EndedSession | None
    ) -> None: ...


class SessionView(Protocol):
    """What a stage factory (`Hooks.make_*`) sees of the session it builds a stage for: a
    `LiveSession` (app.live.session), which is built from these services."""

    id: str
    language: Language
    settings: Settings
    critique_interval_s: float
    services: Services

    async def emit(self, event: Event) -> WireEvent:
        """Number, publish and persist one event of the session."""
        ...


@dataclass
class Hooks:
    """The stages a session is built from. Wired once in `app.wiring`; tests may swap one."""

    make_analyzer: Callable[[Settings], LiveAnalyzer]
    frame_conditions: FrameConditions
    make_condition_state: Callable[[], ConditionState]
    make_recorder: Callable[[SessionView], Recorder] | None = None
    make_critic: Callable[[SessionView], SessionCritic] | None = None
    make_voice: Callable[[SessionView], VoiceStage] | None = None
    # None from the factory: no recogniser for the session's language
    make_transcriber: Callable[[SessionView], SessionTranscriber | None] | None = None
    # the upload flow's recogniser: (upload id, language, emit) -> one, or None (no recogniser)
    make_file_transcriber: (
        Callable[[str, Language, Callable[[Event], Awaitable[WireEvent]]], LiveTranscriber | None]
        | None
    ) = None
    voice_conditions: (
        Callable[[AudioAnalysis, Language, Settings], Mapping[CueName, bool | None]] | None
    ) = None
    # the session's keyframe picker (also a frame observer), which its report draws from
    make_keyframe_picker: Callable[[SessionView], KeyframePicker] | None = None
    frame_observers: list[Callable[[SessionView], FrameObserver]] = field(default_factory=list)
    build_report: ReportHook | None = None
    # recover(session_dir, settings) -> recording result or None (crash recovery)
    recover_recording: Callable[[Path, Settings], RecordingResult | None] | None = None
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass
class Services:
    settings: Settings
    repo: SessionRepository
    writer: EventWriter
    bus: EventBus
    decode_executor: Executor
    analysis_executor: Executor
    pose_executor: Executor
    audio_executor: Executor
    hooks: Hooks
    replica_id: str
    metrics: CoachMetrics = field(default_factory=CoachMetrics)
    request_end: Callable[[str, str], object] = lambda _id, _reason: None
    # scale-out (app/live/cluster.py): None when this is the only replica
    ownership: SessionOwnership | None = None
    control: ControlChannel | None = None  # commands to the replica that owns a session
    load: LoadMonitor | None = None
    # Pose cadence shared by this process's live sessions (it follows their latency)
    cadence: PoseCadence | None = None
    # With Celery jobs: takeover recovery is a job (manager.RECOVERY_JOB_KIND) a worker runs.
    # None: the replica that finds an orphan finalises it itself.
    jobs: JobRunner | None = None

    def __post_init__(self) -> None:
        if self.cadence is None:
            s = self.settings
            self.cadence = PoseCadence(
                least=s.pose.every,
                most=s.pose.every_max,
                high_ms=s.pose.cadence_high_ms,
                fps=s.analysis.fps,
                fps_least=s.analysis.fps_min,
                relax_s=s.pose.cadence_relax_s,
            )
        self.metrics.pose_every.set(self.cadence.every)
        self.metrics.analysis_fps.set(self.cadence.analysis_fps or self.settings.analysis.fps)


@asynccontextmanager
async def open_services(
    settings: Settings,
    hooks: Hooks,
    replica_id: str,
    *,
    bus: EventBus | None = None,
    threads: tuple[int, int, int] | None = None,
    **parts: Any,
) -> AsyncIterator[Services]:
    """What a `SessionManager` runs on, for the server, a Celery worker and the tests alike:
    the data folders, the repository (schema migrated), the event writer, the decode,
    analysis and audio executors (`threads`; default 2, `analysis_threads`, 1) and the Pose
    lanes' (`pose_threads`, at `pose_thread_priority`). `bus` defaults to the in-memory one;
    `parts` are the other `Services` fields (ownership, control, load, jobs). On exit the
    writer flushes, the executors finish and the repository closes, in that order; what uses
    them (the manager, jobs) must be stopped inside the block."""
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    settings.sessions_dir.mkdir(parents=True, exist_ok=True)
    decode_n, analysis_n, audio_n = threads or (2, settings.analysis.threads, 1)
    repo = SessionRepository(settings.resolved_database_url)
    await repo.init()
    writer = EventWriter(repo)
    writer.start()
    executors = (
        ThreadPoolExecutor(decode_n, thread_name_prefix="decode"),
        ThreadPoolExecutor(analysis_n, thread_name_prefix="analysis"),
        ThreadPoolExecutor(audio_n, thread_name_prefix="audio"),
        ThreadPoolExecutor(
            max(1, settings.pose.threads),
            thread_name_prefix="pose",
            initializer=pose_thread_priority(settings).apply,
        ),
    )
    try:
        yield Services(
            settings=settings,
            repo=repo,
            writer=writer,
            bus=bus or InMemoryEventBus(),
            decode_executor=executors[0],
            analysis_executor=executors[1],
            audio_executor=executors[2],
            pose_executor=executors[3],
            hooks=hooks,
            replica_id=replica_id,
            **parts,
        )
    finally:
        try:
            await writer.close()
        finally:
            for executor in executors:
                executor.shutdown(wait=True, cancel_futures=True)
            await repo.close()
