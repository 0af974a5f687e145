"""Critiques of a live session: a VLM critic, a rules critic, and the per-session scheduler."""

from __future__ import annotations

from app.coaching.messages import VISUAL_CATEGORIES
from app.config import Settings
from app.frames import Keyframe

from .base import (
    Category,
    Critic,
    CriticError,
    CriticName,
    CritiqueItem,
    CritiqueResult,
    CritiqueWindow,
    FailureReason,
    SessionSummaryInput,
    SummaryResult,
    TokenUsage,
)
from .rules import RulesCritic
from .scheduler import CriticStats, CritiqueScheduler, select_keyframes, thin_keyframes
from .vlm import VlmCritic


def vlm_configured(settings: Settings) -> bool:
    return bool(settings.vlm.base_url or settings.vlm.api_key)


def build_critic(settings: Settings) -> Critic:
    """The VLM critic when an endpoint or an API key is configured, else the rules critic
    (which makes no network connection at all). The caller owns it and calls `aclose()`."""
    if vlm_configured(settings):
        return VlmCritic(settings)
    return RulesCritic(settings)


__all__ = [
    "VISUAL_CATEGORIES",
    "Category",
    "Critic",
    "CriticError",
    "CriticName",
    "CriticStats",
    "CritiqueItem",
    "CritiqueResult",
    "CritiqueScheduler",
    "CritiqueWindow",
    "FailureReason",
    "Keyframe",
    "RulesCritic",
    "SessionSummaryInput",
    "SummaryResult",
    "TokenUsage",
    "VlmCritic",
    "build_critic",
    "select_keyframes",
    "thin_keyframes",
    "vlm_configured",
]
