"""The one place that says which stage implementations a session is built from."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.live.manager import Hooks
from app.upload.analyze import AnalysisStages


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


def make_upload_critic(settings: Settings) -> Any:
    """The critic for uploads (VLM when configured, else rules); None until the critic module
    is part of the build, in which case uploads use the message table."""
    try:
        from app.coaching.critic import build_critic
    except ModuleNotFoundError as exc:
        if exc.name != "app.coaching.critic":
            raise
        return None
    return build_critic(settings)


def upload_stages(hooks: Hooks) -> AnalysisStages:
    """The live loop's analysis stages, for the upload flow's single pass."""
    return AnalysisStages(
        make_analyzer=hooks.make_analyzer,
        frame_conditions=hooks.frame_conditions,
        make_condition_state=hooks.make_condition_state,
    )


def default_hooks(settings: Settings) -> Hooks:
    return Hooks(
        make_analyzer=_make_analyzer,
        frame_conditions=_frame_conditions,
        make_condition_state=_make_condition_state,
    )
