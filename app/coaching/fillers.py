"""Filler words from recognised words, filled pauses from the voice-activity detector, the
`filler_words` cue on clusters, and pace in words per minute. Pure functions.

A listed filler (settings `voice_fillers_ko` / `voice_fillers_en`; phrases match consecutive
words, longest first) counts, except where its position says it is a word of the sentence:
- 그 / 저 directly before another word ("그 제품은") are determiners; followed by a pause, a
  comma, another filler or nothing, they are fillers ("그, 음", "저... 오늘은");
- "like" right after a subject, an auxiliary or a verb of seeming ("I like it", "looks like
  rain", "it is like a map") is a verb or a preposition, unless a pause or comma sets it off;
- "so" counts only when a pause or comma follows it ("So, ..."), not "so we built";
- "you know" after do/did/if, or before that/what/how/the... ("do you know what") is a question.
A filled pause is a stretch the detector calls speech that no recognised word covers: a hum or
an "um" that the recogniser left out, in any language.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.analysis.transcribe import Word, normalise_word
from app.config import Settings
from app.frames import Language

PAUSE_S = 0.3  # a gap between words at least this long sets a word off, like a comma
FILLED_PAUSE_WORD = "(…)"  # how a filled pause is listed among the fillers
_FILLED_MIN_S, _FILLED_MAX_S = 0.15, 1.2  # longer uncovered speech is missed words, not a hum
_COVER_TOLERANCE_S = 0.08
_SET_OFF = re.compile(r"[,.…?!;:]$")

_KO_DETERMINERS = frozenset({"그", "저"})
_LIKE_NOT_FILLER_AFTER = frozenset(
    [
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "it",
        "people",
        "would",
        "do",
        "does",
        "did",
        "don't",
        "doesn't",
        "didn't",
        "to",
        "really",
        "also",
        "i'd",
        "we'd",
        "you'd",
        "they'd",
        "look",
        "looks",
        "looked",
        "feel",
        "feels",
        "felt",
        "seem",
        "seems",
        "seemed",
        "sound",
        "sounds",
        "something",
        "anything",
        "nothing",
        "just",
        "more",
        "much",
        "is",
        "was",
        "are",
        "were",
        "be",
        "been",
        "'s",
        "it's",
    ]
)
_YOU_KNOW_QUESTION_BEFORE = frozenset({"do", "did", "don't", "didn't", "if", "whether"})
_YOU_KNOW_QUESTION_AFTER = frozenset(
    [
        "that",
        "what",
        "how",
        "why",
        "where",
        "who",
        "when",
        "whether",
        "the",
        "a",
        "an",
        "it",
        "him",
        "her",
        "them",
        "this",
        "these",
    ]
)


@dataclass(frozen=True, slots=True)
class FillerItem:
    word: str  # the filler as listed ("음", "you know"), or FILLED_PAUSE_WORD
    t: float  # media seconds where it starts


def _phrases(language: Language, settings: Settings) -> list[tuple[str, ...]]:
    listed = {tuple(normalise_word(f).split()) for f in settings.voice.fillers(language)}
    return sorted((p for p in listed if p), key=len, reverse=True)


def mark_fillers(words: Sequence[Word], language: Language, settings: Settings) -> list[bool]:
    """For each word, whether it is (part of) a filler."""
    tokens = [normalise_word(w.text) for w in words]
    phrases = _phrases(language, settings)
    flags = [False] * len(words)
    i = 0
    while i < len(tokens):
        for phrase in phrases:
            n = len(phrase)
            if tuple(tokens[i : i + n]) == phrase and _counts(phrase, i, words, tokens, phrases):
                for k in range(i, i + n):
                    flags[k] = True
                i += n
                break
        else:
            i += 1
    return flags


def _set_off_after(i: int, words: Sequence[Word]) -> bool:
    if i + 1 >= len(words) or _SET_OFF.search(words[i].text.strip()):
        return True
    return words[i + 1].t_start - words[i].t_end >= PAUSE_S


def _set_off_before(i: int, words: Sequence[Word]) -> bool:
    if i == 0 or _SET_OFF.search(words[i - 1].text.strip()):
        return True
    return words[i].t_start - words[i - 1].t_end >= PAUSE_S


def _counts(
    phrase: tuple[str, ...],
    i: int,
    words: Sequence[Word],
    tokens: list[str],
    phrases: list[tuple[str, ...]],
) -> bool:
    """Whether the listed filler `phrase` at word `i` is a filler where it stands."""
    last = i + len(phrase) - 1
    after = tokens[last + 1] if last + 1 < len(tokens) else None
    before = tokens[i - 1] if i > 0 else None
    if phrase[0] in _KO_DETERMINERS and len(phrase) == 1:
        next_is_filler = after is not None and (after,) in phrases
        return _set_off_after(i, words) or next_is_filler
    if phrase == ("like",):
        if _set_off_before(i, words) or _set_off_after(i, words):
            return True
        return before not in _LIKE_NOT_FILLER_AFTER
    if phrase == ("so",):
        return _set_off_after(i, words) and i + 1 < len(words)
    if phrase == ("you", "know"):
        if before in _YOU_KNOW_QUESTION_BEFORE and not _set_off_before(i, words):
            return False
        return not (after in _YOU_KNOW_QUESTION_AFTER and not _set_off_after(last, words))
    return True


def filler_items(words: Sequence[Word], flags: Sequence[bool]) -> list[FillerItem]:
    """One item per filler: a phrase ("you know") is one, at its first word."""
    items: list[FillerItem] = []
    i = 0
    while i < len(words):
        if not flags[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(words) and flags[j + 1] and _same_phrase(words, i, j + 1):
            j += 1
        items.append(
            FillerItem(" ".join(normalise_word(w.text) for w in words[i : j + 1]), words[i].t_start)
        )
        i = j + 1
    return items


def _same_phrase(words: Sequence[Word], start: int, k: int) -> bool:
    # multi-word fillers are the English phrases; consecutive single fillers ("음 어") stay two
    first = normalise_word(words[start].text)
    return (first, normalise_word(words[k].text)) in {("you", "know"), ("i", "mean")}


def filled_pauses(
    speech_runs: Sequence[tuple[float, float]], words: Sequence[Word]
) -> list[FillerItem]:
    """Short runs of detected speech that no recognised word overlaps. In a stretch where the
    recogniser heard no word at all, only a lone short run counts (an "um" between silences):
    several runs and not one word are sound it could not read (a beep, a clap, speech it
    failed on), not a speaker hesitating."""
    if not words and len(speech_runs) != 1:
        return []
    out: list[FillerItem] = []
    for a, b in speech_runs:
        if not _FILLED_MIN_S <= b - a <= _FILLED_MAX_S:
            continue
        covered = any(
            w.t_start - _COVER_TOLERANCE_S < b and w.t_end + _COVER_TOLERANCE_S > a for w in words
        )
        if not covered:
            out.append(FillerItem(FILLED_PAUSE_WORD, round(a, 3)))
    return out


def words_per_minute(
    words: Sequence[Word], flags: Sequence[bool], speaking_s: float
) -> float | None:
    """Words that are not fillers, per minute of speech."""
    spoken = sum(1 for f in flags if not f)
    if speaking_s <= 0 or not words:
        return None
    return round(spoken / (speaking_s / 60.0), 1)


CueState = Literal["on", "off"]


class FillerCue:
    """The `filler_words` cue: on when `cluster` fillers fall within `window_s`, off when a
    later look finds fewer than that in the window before it, or at the end (`close`)."""

    def __init__(self, cluster: int, window_s: float) -> None:
        self.cluster = max(1, cluster)
        self.window_s = window_s
        self.on = False
        self._times: deque[float] = deque()

    def update(self, times: Sequence[float], now: float) -> list[tuple[CueState, float]]:
        """New filler times (in order), and the media time up to which speech was heard."""
        out: list[tuple[CueState, float]] = []
        for t in sorted(times):
            self._times.append(t)
            self._forget(t)
            if not self.on and len(self._times) >= self.cluster:
                self.on = True
                out.append(("on", t))
        self._forget(now)
        if self.on and len(self._times) < self.cluster:
            self.on = False
            out.append(("off", now))
        return out

    def close(self, end_t: float) -> list[tuple[CueState, float]]:
        """The end: `off` at `end_t` when still on."""
        if not self.on:
            return []
        self.on = False
        return [("off", end_t)]

    def _forget(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
