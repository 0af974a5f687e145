"""Types shared by the critics: what goes in (a window of the session), what comes out
(critique items), the `Critic` protocol, and the prompt templates.

A critic never raises for a bad answer of its model: `VlmCritic` raises `CriticError` with a
stable `reason`, and the scheduler turns that into a rules critique for the same window.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from app.coaching.messages import CritiqueCategory
from app.events import CritiqueEventItem
from app.frames import Keyframe, Language

# The categories are the vocabulary's (app.coaching.messages); `Category` is the critic's name.
Category = CritiqueCategory
Severity = Literal["info", "warn"]
CriticName = Literal["vlm", "rules"]
FailureReason = Literal[
    "timeout",  # the deadline passed (waiting for a global slot counts)
    "http_error",  # the endpoint answered an HTTP error status
    "connection_error",  # no answer at all
    "refusal",  # the model refused
    "empty",  # no content (or an empty list of items / an empty summary)
    "invalid_json",  # content that is not JSON
    "schema_mismatch",  # JSON that is not the critique schema
    "capped",  # the session's VLM call or image budget is spent
    "no_frames",  # nothing to show the model (an audio-only window)
    "internal_error",  # a bug on our side; logged with its traceback
]

PROMPTS_DIR = Path(__file__).resolve().parents[3] / "prompts"


@dataclass(frozen=True, slots=True)
class CritiqueWindow:
    session_id: str
    language: Language
    t_start: float
    t_end: float
    keyframes: list[Keyframe]
    # Window aggregates; keys are app.coaching.window_metrics.METRIC_KEYS.
    metrics: dict[str, float | None]
    cues: list[dict[str, Any]]  # cue events (contract shape) that fired in the window


@dataclass(frozen=True, slots=True)
class CritiqueItem:
    category: Category
    observation: str
    suggestion: str
    severity: Severity
    frame_t: float | None  # media time of the keyframe it refers to

    def as_event_item(self) -> CritiqueEventItem:
        return CritiqueEventItem(**asdict(self))


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class CritiqueResult:
    items: list[CritiqueItem]
    usage: TokenUsage | None = None  # None when no model was called
    images_sent: int = 0


@dataclass(frozen=True, slots=True)
class SessionSummaryInput:
    session_id: str
    language: Language
    duration_s: float
    scores: dict[str, float | None]  # the report's scores (0-100 or None)
    cue_counts: dict[str, int]  # how often each cue turned on
    critiques: list[dict[str, Any]]  # critique events of the session, oldest first
    keyframes: list[Keyframe] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)  # whole-session aggregates
    # the report's where the eyes were (`scoring.gaze_shares`); None: not given, or not told
    gaze_shares: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class SummaryResult:
    text: str
    usage: TokenUsage | None = None
    images_sent: int = 0


class CriticError(Exception):
    """A model call that produced no usable critique; `reason` is a stable code."""

    def __init__(self, reason: FailureReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: FailureReason = reason
        self.detail = detail
        self.usage: TokenUsage | None = None  # tokens spent on an answer that was rejected


class Critic(Protocol):
    name: CriticName

    async def critique(self, window: CritiqueWindow) -> CritiqueResult: ...

    async def summarize(self, summary: SessionSummaryInput) -> SummaryResult: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    system: string.Template
    user: string.Template


def _split_sections(text: str, name: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("[system]", "[user]"):
            current = sections.setdefault(stripped[1:-1], [])
        elif current is not None:
            current.append(line)
    if set(sections) != {"system", "user"}:
        raise ValueError(f"prompt {name} needs a [system] and a [user] section")
    return {key: "\n".join(lines).strip() + "\n" for key, lines in sections.items()}


@functools.cache
def load_prompt(
    kind: Literal["critique", "summary", "content"], language: Language
) -> PromptTemplate:
    """Read `prompts/<kind>_<language>.txt` once per process."""
    name = f"{kind}_{language}.txt"
    sections = _split_sections((PROMPTS_DIR / name).read_text(encoding="utf-8"), name)
    return PromptTemplate(
        system=string.Template(sections["system"]), user=string.Template(sections["user"])
    )


def items_response_format(
    name: str, categories: Sequence[str], extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `response_format` (strict JSON schema) of an answer that is a list of items, each a
    category, an observation, a suggestion and a severity, plus `extra` properties (all
    required, as strict mode wants)."""
    properties: dict[str, Any] = {
        "category": {"type": "string", "enum": list(categories)},
        "observation": {"type": "string"},
        "suggestion": {"type": "string"},
        "severity": {"type": "string", "enum": ["info", "warn"]},
        **(extra or {}),
    }
    item = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}},
        "required": ["items"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
