"""The one place that says which stage implementations a session is built from."""

from __future__ import annotations

from typing import Any

from app.analysis.voice import VoiceAnalyzer, voice_conditions
from app.coaching.report import build_report, keyframe_picker_for
from app.config import Settings
from app.live.manager import Hooks
from app.live.session import LiveSession


def _make_analyzer(settings: Settings) -> Any:
    # MediaPipe is imported on the first analysed frame, not at start-up.
    from app.analysis.pipeline import FrameAnalyzer

    return FrameAnalyzer(settings)


def _make_condition_state() -> Any:
    from app.analysis.conditions import ConditionState

    return ConditionState()


def _frame_conditions(*args: Any) -> Any:
    from app.analysis.conditions import frame_conditions

    return frame_conditions(*args)


def _make_voice(session: LiveSession) -> VoiceAnalyzer:
    return VoiceAnalyzer(session.language, session.settings)


def default_hooks(settings: Settings) -> Hooks:
    return Hooks(
        make_analyzer=_make_analyzer,
        frame_conditions=_frame_conditions,
        make_condition_state=_make_condition_state,
        make_voice=_make_voice,
        voice_conditions=voice_conditions,
        frame_observers=[keyframe_picker_for],
        build_report=build_report,
    )
