"""The one place that says which stage implementations a session is built from."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from app.analysis.voice import VoiceAnalyzer, voice_conditions
from app.coaching.critic import Critic, CritiqueScheduler, RulesCritic, build_critic
from app.config import Settings
from app.live.manager import Hooks
from app.live.session import LiveSession
from app.media.recorder import SessionRecorder, recover_recording


class AnalyzerService:
    """One pool of reused FrameAnalyzers per process (see `AnalyzerPool`), built on the first
    session: MediaPipe is imported then, not at start-up."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: Any = None
        self._lock = threading.Lock()

    def make_analyzer(self, settings: Settings) -> Any:
        with self._lock:
            if self._pool is None:
                from app.analysis.pipeline import AnalyzerPool

                self._pool = AnalyzerPool(self.settings, self.settings.analyzer_pool_size)
            pool = self._pool
        return pool.acquire(settings)

    async def aclose(self) -> None:
        if self._pool is not None:
            await asyncio.to_thread(self._pool.close)


def _make_condition_state() -> Any:
    from app.analysis.conditions import ConditionState

    return ConditionState()


def _frame_conditions(*args: Any) -> Any:
    from app.analysis.conditions import frame_conditions

    return frame_conditions(*args)


def _make_recorder(session: LiveSession) -> SessionRecorder:
    directory = session.settings.sessions_dir / session.id
    directory.mkdir(parents=True, exist_ok=True)
    return SessionRecorder(directory, session.settings)


def _make_voice(session: LiveSession) -> VoiceAnalyzer:
    return VoiceAnalyzer(session.language, session.settings)


class CriticService:
    """One critic (and its HTTP client) per process, one rules fallback, one global limit on
    requests in flight; a scheduler per session."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.critic: Critic = build_critic(settings)
        self.fallback = RulesCritic(settings)
        self.limit = asyncio.Semaphore(max(1, settings.vlm_concurrency))

    def make_scheduler(self, session: LiveSession) -> CritiqueScheduler:
        async def emit(event: dict[str, Any]) -> None:
            fields = {k: v for k, v in event.items() if k not in ("type", "t")}
            await session.emit("critique", event["t"], **fields)

        return CritiqueScheduler(
            session_id=session.id,
            language=session.language,
            settings=self.settings,
            critic=self.critic,
            fallback=self.fallback,
            emit=emit,
            global_limit=self.limit,
            interval_s=session.critique_interval_s,
        )

    async def aclose(self) -> None:
        await self.critic.aclose()


def default_hooks(settings: Settings) -> Hooks:
    critics = CriticService(settings)
    analyzers = AnalyzerService(settings)
    return Hooks(
        make_critic=critics.make_scheduler,
        make_recorder=_make_recorder,
        recover_recording=recover_recording,
        on_shutdown=[critics.aclose, analyzers.aclose],
        make_analyzer=analyzers.make_analyzer,
        frame_conditions=_frame_conditions,
        make_condition_state=_make_condition_state,
        make_voice=_make_voice,
        voice_conditions=voice_conditions,
    )
