"""The VLM critic: keyframes and window measurements to any OpenAI-compatible chat endpoint
(OpenAI, vLLM, Ollama, LM Studio...) with the official async client.

Images go as `image_url` content parts holding base64 JPEG data URLs (the original engine put
the image into the prompt as text, so its model never saw it). Critiques come back as
structured output (`response_format` json_schema) and are validated with pydantic; any
failure raises `CriticError` with a stable reason and the scheduler falls back to rules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Literal

import httpx
import openai
import openai.resources.chat  # at import time, not lazily on the event loop (see VlmCritic)
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, ValidationError

from app.coaching.messages import FRAME_LABELS, VISUAL_CATEGORIES, VisualCategory
from app.config import Settings
from app.frames import Keyframe, Language
from app.media.images import jpeg_data_urls

from .base import (
    CriticError,
    CriticName,
    CritiqueItem,
    CritiqueResult,
    CritiqueWindow,
    SessionSummaryInput,
    SummaryResult,
    TokenUsage,
    items_response_format,
    load_prompt,
)

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 600  # per observation/suggestion; longer answers are cut, not rejected
RETRY_STATUSES = frozenset({429, 502, 503, 504})  # nothing was generated, so nothing is paid
SUMMARY_MAX_TOKENS = 500

CRITIQUE_RESPONSE_FORMAT = items_response_format(
    "critique", VISUAL_CATEGORIES, {"frame_index": {"type": "integer"}}
)


class _ItemAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    category: VisualCategory
    observation: str
    suggestion: str
    severity: Literal["info", "warn"]
    frame_index: int


class _CritiqueAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[_ItemAnswer]


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _fmt(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def describe_frames(keyframes: list[Keyframe], language: Language) -> str:
    labels = FRAME_LABELS[language]
    lines = []
    for number, frame in enumerate(keyframes, start=1):
        if frame.reason.startswith("cue:"):
            why = f"{labels['cue']}: {frame.reason[4:]}"
        else:
            why = labels["coverage"]
        lines.append(f"{number}. t={frame.t:.1f}{labels['seconds']} ({why})")
    return "\n".join(lines) if lines else labels["none"]


def describe_cues(cues: list[dict[str, Any]], language: Language) -> str:
    lines = [
        f"- t={float(c.get('t', 0.0)):.1f}{FRAME_LABELS[language]['seconds']} {c.get('cue')} "
        f"{c.get('state')} ({c.get('severity')}): {c.get('message', '')}".rstrip(": ")
        for c in cues
    ]
    return "\n".join(lines) if lines else FRAME_LABELS[language]["none"]


def build_critique_messages(
    window: CritiqueWindow, image_urls: list[str], *, detail: str, max_items: int
) -> list[dict[str, Any]]:
    """The chat messages for one window; pure, so tests and benchmarks can look at them."""
    prompt = load_prompt("critique", window.language)
    system = prompt.system.substitute(max_items=max_items)
    user = prompt.user.substitute(
        t_start=f"{window.t_start:.1f}",
        t_end=f"{window.t_end:.1f}",
        metrics=json.dumps({k: _fmt(v) for k, v in window.metrics.items()}, ensure_ascii=False),
        cues=describe_cues(window.cues, window.language),
        frames=describe_frames(window.keyframes[: len(image_urls)], window.language),
    )
    content: list[dict[str, Any]] = [{"type": "text", "text": user}]
    content += [
        {"type": "image_url", "image_url": {"url": u, "detail": detail}} for u in image_urls
    ]
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]


def build_summary_messages(
    summary: SessionSummaryInput, image_urls: list[str], *, detail: str
) -> list[dict[str, Any]]:
    prompt = load_prompt("summary", summary.language)
    notes = [
        f"- [{item.get('category')}/{item.get('severity')}] {item.get('observation')} "
        f"{item.get('suggestion')}"
        for event in summary.critiques[-12:]  # the latest notes; the prompt stays small
        for item in event.get("items", [])
    ]
    none = FRAME_LABELS[summary.language]["none"]
    user = prompt.user.substitute(
        duration=f"{summary.duration_s:.0f}",
        scores=json.dumps({k: _fmt(v) for k, v in summary.scores.items()}),
        gaze=(  # percentages, as the scores beside them
            json.dumps({k: round(100 * v) for k, v in summary.gaze_shares.items()})
            if summary.gaze_shares
            else none
        ),
        cue_counts=json.dumps(summary.cue_counts) if summary.cue_counts else none,
        notes="\n".join(notes[-24:]) if notes else none,
        frames=describe_frames(summary.keyframes[: len(image_urls)], summary.language),
    )
    content: list[dict[str, Any]] = [{"type": "text", "text": user}]
    content += [
        {"type": "image_url", "image_url": {"url": u, "detail": detail}} for u in image_urls
    ]
    return [
        {"role": "system", "content": prompt.system.substitute()},
        {"role": "user", "content": content},
    ]


def parse_critique(content: str, keyframes: list[Keyframe], max_items: int) -> list[CritiqueItem]:
    """Validate a model's JSON answer into items; raises CriticError(invalid_json /
    schema_mismatch / empty)."""
    fenced = _FENCE.match(content)  # some local models wrap JSON in a code fence
    text = fenced.group(1) if fenced else content
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CriticError("invalid_json", str(exc)) from exc
    try:
        answer = _CritiqueAnswer.model_validate(data)
    except ValidationError as exc:
        raise CriticError("schema_mismatch", str(exc.errors()[:3])) from exc
    items = [
        CritiqueItem(
            category=item.category,
            observation=item.observation.strip()[:MAX_TEXT_CHARS],
            suggestion=item.suggestion.strip()[:MAX_TEXT_CHARS],
            severity=item.severity,
            frame_t=_frame_t(item.frame_index, keyframes),
        )
        for item in answer.items
        if item.observation.strip() and item.suggestion.strip()
    ]
    if not items:
        raise CriticError("empty", "no critique items")
    return items[:max_items]


def _frame_t(frame_index: int, keyframes: list[Keyframe]) -> float | None:
    if not keyframes:
        return None
    # 1-based as the prompt says; a model that counts from 0 or past the end gets clamped.
    return keyframes[min(max(frame_index, 1), len(keyframes)) - 1].t


class VlmCritic:
    """One per process: the client's connection pool is shared by every session."""

    name: CriticName = "vlm"

    def __init__(self, settings: Settings, client: AsyncOpenAI | None = None) -> None:
        self._settings = settings
        self._client = client or AsyncOpenAI(
            base_url=settings.vlm.base_url,
            # Local servers (Ollama, vLLM) accept any key; the client insists on one.
            api_key=settings.vlm.api_key or "not-needed",
            # Retries are ours (only safe ones, within the deadline); the client's would
            # silently stretch a request past it.
            max_retries=0,
            timeout=httpx.Timeout(settings.vlm.timeout_s, connect=min(5.0, settings.vlm.timeout_s)),
        )
        # The client imports its resource modules on first use of `.chat` (over a second of
        # imports, measured): resolve it now, at start-up, not on the event loop mid-session.
        self._completions = self._client.chat.completions

    async def aclose(self) -> None:
        await self._client.close()

    async def critique(self, window: CritiqueWindow) -> CritiqueResult:
        s = self._settings
        keyframes = window.keyframes[: s.vlm.max_images]
        urls = await asyncio.to_thread(
            jpeg_data_urls, [k.image for k in keyframes], s.vlm.image_max_side, s.vlm.jpeg_quality
        )
        messages = build_critique_messages(
            window, urls, detail=s.vlm.image_detail, max_items=s.critique.max_items
        )
        completion = await self._create(
            messages=messages,
            response_format=CRITIQUE_RESPONSE_FORMAT,
            max_tokens=s.vlm.max_output_tokens,
        )
        usage = _usage(completion)
        try:
            items = parse_critique(_content(completion), keyframes, s.critique.max_items)
        except CriticError as exc:
            exc.usage = usage  # a rejected answer was still paid for
            raise
        return CritiqueResult(items=items, usage=usage, images_sent=len(urls))

    async def summarize(self, summary: SessionSummaryInput) -> SummaryResult:
        s = self._settings
        keyframes = summary.keyframes[: s.vlm.max_images]
        urls = await asyncio.to_thread(
            jpeg_data_urls, [k.image for k in keyframes], s.vlm.image_max_side, s.vlm.jpeg_quality
        )
        messages = build_summary_messages(summary, urls, detail=s.vlm.image_detail)
        completion = await self._create(messages=messages, max_tokens=SUMMARY_MAX_TOKENS)
        usage = _usage(completion)
        try:
            text = _content(completion).strip()
            if not text:
                raise CriticError("empty", "empty summary")
        except CriticError as exc:
            exc.usage = usage
            raise
        return SummaryResult(text=text, usage=usage, images_sent=len(urls))

    async def _create(self, **kwargs: Any) -> Any:
        attempts = 1 + max(0, self._settings.vlm.retries)
        for attempt in range(1, attempts + 1):
            try:
                return await self._completions.create(model=self._settings.vlm.model, **kwargs)
            except openai.APITimeoutError as exc:
                raise CriticError("timeout", "client timeout") from exc
            except openai.APIConnectionError as exc:
                if attempt == attempts:
                    raise CriticError("connection_error", str(exc)) from exc
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRY_STATUSES or attempt == attempts:
                    raise CriticError("http_error", f"HTTP {exc.status_code}") from exc
            except openai.APIResponseValidationError as exc:
                raise CriticError("schema_mismatch", "malformed completion") from exc
            except openai.OpenAIError as exc:
                raise CriticError("http_error", type(exc).__name__) from exc
            log.info("vlm request failed (attempt %d of %d), retrying", attempt, attempts)
            await asyncio.sleep(0.25 * attempt)  # back off a little; the deadline still rules
        raise AssertionError("unreachable")


def _usage(completion: Any) -> TokenUsage | None:
    usage = getattr(completion, "usage", None)
    if usage is None:
        return None
    return TokenUsage(
        prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0
    )


def _content(completion: Any) -> str:
    choices = getattr(completion, "choices", None)
    if not choices:
        raise CriticError("empty", "no choices")
    choice = choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise CriticError("refusal", str(message.refusal)[:200])
    if choice.finish_reason == "content_filter":
        raise CriticError("refusal", "content_filter")
    if not message.content:
        raise CriticError("empty", "no content")
    if choice.finish_reason == "length":
        raise CriticError("invalid_json", "answer cut at max_tokens")
    return str(message.content)
