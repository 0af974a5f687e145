"""Feedback on what was said, at the end of a rehearsal: from the VLM endpoint (one text-only
chat request, JSON-schema answer, prompts/content_<language>.txt) when one is configured, else
from rules (hedges, repeated words, very long sentences, fillers per minute).

The report's `content` is `{"source": "llm" | "rules", "items": [{category, observation,
suggestion, severity}]}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict, ValidationError

from app.analysis.transcribe import normalise_word
from app.coaching.critic.base import items_response_format, load_prompt
from app.config import Settings
from app.frames import Language

log = logging.getLogger(__name__)

ContentCategory = Literal["structure", "clarity", "hedging", "repetition", "evidence", "fillers"]
ContentSource = Literal["llm", "rules"]
MAX_TRANSCRIPT_CHARS = 12_000  # the prompt stays small; the start of a pitch matters most
MAX_ITEMS = 5

CONTENT_RESPONSE_FORMAT = items_response_format("content", ContentCategory.__args__)  # type: ignore[attr-defined]


class ContentItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    category: ContentCategory
    observation: str
    suggestion: str
    severity: Literal["info", "warn"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[ContentItem]


# --- rules -----------------------------------------------------------------------------------
_HEDGES: dict[Language, tuple[str, ...]] = {
    "en": ("maybe", "i think", "sort of", "kind of", "probably", "i guess", "perhaps"),
    "ko": ("아마", "같아요", "같습니다", "것 같", "혹시", "어쩌면"),
}


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_STOPWORDS: dict[Language, frozenset[str]] = {
    "en": _word_set(
        "the a an and or but to of in on at for with is are was were be it this that we you i "
        "our they he she my your their as by from so not do can will have has"
    ),
    "ko": _word_set("이 그 저 것 수 등 및 또 더 잘 좀 안 못 제 저희 우리"),
}
_LONG_SENTENCE_WORDS: dict[Language, int] = {"en": 40, "ko": 25}  # Korean words are eojeol
_SENTENCE_END = re.compile(r"(?<=[.?!。])\s+")

_TEXT: dict[str, dict[Language, tuple[str, str]]] = {
    "hedging": {
        "en": (
            "You hedged {n} times ({examples}).",
            "State your key claims plainly; keep the caveats for the Q&A.",
        ),
        "ko": (
            "확신을 낮추는 표현을 {n}번 썼어요 ({examples}).",
            "핵심 주장은 단정적으로 말하고, 단서는 질의응답에서 다루세요.",
        ),
    },
    "repetition": {
        "en": (
            "You said “{word}” {n} times.",
            "Vary the wording, or make the repetition a deliberate refrain.",
        ),
        "ko": (
            "“{word}”라는 말을 {n}번 했어요.",
            "표현을 바꾸거나, 반복한다면 의도된 핵심 문구로 만들어 보세요.",
        ),
    },
    "clarity": {
        "en": (
            "{n} sentence(s) ran past {limit} words.",
            "Break long sentences into short ones: one idea each.",
        ),
        "ko": (
            "{limit}어절이 넘는 긴 문장이 {n}개 있었어요.",
            "긴 문장은 한 문장에 한 가지 생각만 담도록 나눠 보세요.",
        ),
    },
    "fillers": {
        "en": (
            "About {per_min} filler words a minute.",
            "When you need a moment, pause silently instead of filling it.",
        ),
        "ko": (
            "1분에 약 {per_min}번 군말(음, 어 등)을 썼어요.",
            "생각할 시간이 필요하면 군말 대신 잠깐 멈춰 보세요.",
        ),
    },
    "structure": {
        "en": (
            "Nothing in the wording stood out as a problem.",
            "Check that your pitch names the problem, the solution, the evidence and the ask.",
        ),
        "ko": (
            "말한 내용에서 특별히 문제가 되는 부분은 보이지 않았어요.",
            "문제, 해결책, 근거, 요청이 모두 들어갔는지 확인해 보세요.",
        ),
    },
}


def _item(
    category: ContentCategory, language: Language, severity: str, **fmt: Any
) -> dict[str, Any]:
    observation, suggestion = _TEXT[category][language]
    return {
        "category": category,
        "observation": observation.format(**fmt),
        "suggestion": suggestion.format(**fmt),
        "severity": severity,
    }


def rules_content(
    sentences: Sequence[str],
    language: Language,
    *,
    filler_words: Sequence[str] = (),
    fillers_per_minute: float | None = None,
) -> dict[str, Any]:
    """Pure: the rules' feedback on `sentences` (what was said, one stretch or sentence each;
    `filler_words` are left out of the word counts)."""
    text = " ".join(sentences)
    lowered = f" {' '.join(normalise_word(w) for w in text.split())} "
    items: list[dict[str, Any]] = []
    hedges = [h for h in _HEDGES[language] for _ in range(_count(lowered, h, language))]
    if len(hedges) >= 3:
        examples = ", ".join(dict.fromkeys(hedges))
        sev = "warn" if len(hedges) >= 6 else "info"
        items.append(_item("hedging", language, sev, n=len(hedges), examples=examples))
    fillers = set(filler_words)
    tokens = [t for t in (normalise_word(w) for w in text.split()) if t and t not in fillers]
    content = [t for t in tokens if t not in _STOPWORDS[language] and len(t) > 1]
    if content:
        word, n = Counter(content).most_common(1)[0]
        if n >= 5 and n / len(tokens) >= 0.04:
            items.append(_item("repetition", language, "info", word=word, n=n))
    pieces = [p for s in sentences for p in _SENTENCE_END.split(s) if p.strip()]
    limit = _LONG_SENTENCE_WORDS[language]
    long = sum(1 for p in pieces if len(p.split()) > limit)
    if long:
        items.append(
            _item("clarity", language, "warn" if long >= 3 else "info", n=long, limit=limit)
        )
    if fillers_per_minute is not None and fillers_per_minute >= 3:
        sev = "warn" if fillers_per_minute >= 6 else "info"
        items.append(_item("fillers", language, sev, per_min=round(fillers_per_minute)))
    if not items and tokens:
        items.append(_item("structure", language, "info"))
    return {"source": "rules", "items": items[:MAX_ITEMS]}


def _count(lowered: str, hedge: str, language: Language) -> int:
    if language == "ko":  # Korean endings attach to the word: match inside words
        return lowered.count(hedge)
    return lowered.count(f" {hedge} ")


# --- the language model ----------------------------------------------------------------------
def build_content_messages(
    text: str, language: Language, *, duration_s: float, wpm: float | None, fillers: str
) -> list[dict[str, Any]]:
    prompt = load_prompt("content", language)
    user = prompt.user.substitute(
        duration=f"{duration_s:.0f}",
        wpm="-" if wpm is None else f"{wpm:.0f}",
        fillers=fillers,
        transcript=text[:MAX_TRANSCRIPT_CHARS],
    )
    return [
        {"role": "system", "content": prompt.system.substitute()},
        {"role": "user", "content": user},
    ]


def parse_content(content: str) -> list[dict[str, Any]]:
    """The items of the model's answer; raises ValueError on anything else."""
    text = content.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        answer = _Answer.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"not a content answer: {exc}") from exc
    return [item.model_dump() for item in answer.items[:MAX_ITEMS]]


async def llm_content(
    client: AsyncOpenAI,
    settings: Settings,
    text: str,
    language: Language,
    *,
    duration_s: float,
    wpm: float | None,
    fillers: str,
) -> dict[str, Any]:
    """One text-only chat request under the VLM's deadline; raises on any failure."""
    messages = build_content_messages(
        text, language, duration_s=duration_s, wpm=wpm, fillers=fillers
    )
    request: dict[str, Any] = {
        "model": settings.vlm.model,
        "messages": messages,
        "response_format": CONTENT_RESPONSE_FORMAT,
        "max_tokens": settings.vlm.max_output_tokens,
    }
    completion = await asyncio.wait_for(
        client.chat.completions.create(**request), timeout=settings.vlm.timeout_s
    )
    choices = getattr(completion, "choices", None) or []
    if not choices or not choices[0].message.content:
        raise ValueError("no content in the answer")
    return {"source": "llm", "items": parse_content(str(choices[0].message.content))}


def make_content_client(settings: Settings) -> AsyncOpenAI | None:
    """A client for the VLM endpoint (text only here), or None when none is configured."""
    if not settings.vlm.base_url:
        return None
    return AsyncOpenAI(
        base_url=settings.vlm.base_url,
        api_key=settings.vlm.api_key or "not-needed",
        max_retries=0,
        timeout=settings.vlm.timeout_s,
    )
