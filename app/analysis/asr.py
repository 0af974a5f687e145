"""Speech in stretches cut at pauses, and their words: from a transcription endpoint speaking
OpenAI's `POST /v1/audio/transcriptions`, or from the embedded recogniser (vosk, Korean).

- `SpeechCutter` (pure, blocking: call it off the event loop) turns a session's audio chunks
  into `Stretch`es: the voice-activity detector of app/analysis/voice.py (webrtcvad, 20 ms
  frames) marks speech, and a silence of `asr.pause_cut_s` (or `asr.max_stretch_s` of audio)
  ends a stretch. Stretches with too little speech are not kept. Each has its media time.
- `AsrClient.transcribe` sends one stretch as WAV (`verbose_json`, word timestamps) under a
  deadline; an answer that is not a transcription raises `AsrError`, like a failure.
- `recognise_local` runs vosk over one stretch.
Word times come back relative to the stretch and are placed in session media time here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import openai
import webrtcvad
from openai import AsyncOpenAI

from app.analysis.transcribe import SAMPLE_RATE, Word, wav_bytes
from app.config import Settings
from app.frames import AudioChunk, Language

log = logging.getLogger(__name__)

_FILLER_PROMPTS: dict[Language, str] = {
    # Recognisers drop hesitations unless the prompt shows some.
    "ko": "음, 어, 그, 저... 이제 약간 그러니까",
    "en": "Um, uh, like, you know... so, basically",
}
_GAP_CUT_S = 0.05  # a hole this long between chunks ends the stretch (media time jumps)
_RUN_MERGE_S = 0.1  # speech runs closer than this are one run


@dataclass(frozen=True, slots=True)
class Stretch:
    """A stretch of speech: its samples, where it starts in media time, where the detector
    heard speech in it (media seconds)."""

    index: int
    t_start: float
    samples: np.ndarray  # int16 at 16 kHz
    speech_runs: tuple[tuple[float, float], ...]

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE

    @property
    def t_end(self) -> float:
        return self.t_start + self.duration_s


class SpeechCutter:
    """Audio chunks in, stretches of speech out, cut at pauses. One per session; blocking."""

    def __init__(self, settings: Settings) -> None:
        asr, voice = settings.asr, settings.voice
        self._frame_n = SAMPLE_RATE * voice.vad_frame_ms // 1000
        self._frame_s = self._frame_n / SAMPLE_RATE
        self._vad = webrtcvad.Vad(voice.vad_mode)
        self._cut_n = max(1, round(asr.pause_cut_s / self._frame_s))
        self._max_n = max(self._cut_n, round(asr.max_stretch_s / self._frame_s))
        self._pad_n = max(1, round(0.2 / self._frame_s))  # silence kept around speech
        self._min_speech_n = max(1, round(asr.min_speech_s / self._frame_s))
        self._frames: list[np.ndarray] = []
        self._flags: list[bool] = []
        self._t0 = 0.0  # media time of self._frames[0]
        self._rest = np.zeros(0, np.int16)  # samples short of a whole frame
        self._next_t: float | None = None  # media time the next chunk should start at
        self._silence_run = 0
        self._count = 0
        self.discarded = 0  # stretches with too little speech to send

    def push(self, chunk: AudioChunk) -> list[Stretch]:
        if chunk.sample_rate != SAMPLE_RATE or chunk.samples.dtype != np.int16:
            raise ValueError("the cutter takes 16 kHz int16 mono audio")
        out: list[Stretch] = []
        if self._next_t is None or abs(chunk.t - self._next_t) > _GAP_CUT_S:
            out += self.flush()
            self._t0 = chunk.t
        self._next_t = chunk.t + chunk.samples.size / SAMPLE_RATE
        samples = np.concatenate([self._rest, chunk.samples]) if self._rest.size else chunk.samples
        whole = samples.size - samples.size % self._frame_n
        for i in range(0, whole, self._frame_n):
            stretch = self._frame(samples[i : i + self._frame_n])
            if stretch is not None:
                out.append(stretch)
        self._rest = samples[whole:].copy()
        return out

    def flush(self) -> list[Stretch]:
        """What is buffered, as a last stretch (the session ended, or media time jumped)."""
        stretch = self._cut(len(self._frames)) if any(self._flags) else None
        self._t0 += (len(self._frames) + self._rest.size / self._frame_n) * self._frame_s
        self._frames, self._flags, self._silence_run = [], [], 0
        self._rest = np.zeros(0, np.int16)
        return [stretch] if stretch is not None else []

    def _frame(self, frame: np.ndarray) -> Stretch | None:
        speech = bool(self._vad.is_speech(frame.tobytes(), SAMPLE_RATE))
        self._frames.append(frame)
        self._flags.append(speech)
        if not any(self._flags):
            excess = len(self._frames) - self._pad_n  # keep a little silence before speech
            if excess > 0:
                del self._frames[:excess], self._flags[:excess]
                self._t0 += excess * self._frame_s
            return None
        self._silence_run = 0 if speech else self._silence_run + 1
        if self._silence_run >= self._cut_n:
            return self._cut(len(self._frames) - (self._silence_run - self._pad_n))
        if len(self._frames) >= self._max_n:
            return self._cut(len(self._frames))
        return None

    def _cut(self, keep: int) -> Stretch | None:
        frames, flags, t0 = self._frames[:keep], self._flags[:keep], self._t0
        self._frames, self._flags = self._frames[keep:], self._flags[keep:]
        self._t0 = t0 + keep * self._frame_s
        self._silence_run = 0
        if sum(flags) < self._min_speech_n:
            self.discarded += 1
            return None
        self._count += 1
        return Stretch(
            index=self._count,
            t_start=round(t0, 3),
            samples=np.concatenate(frames),
            speech_runs=_runs(flags, t0, self._frame_s),
        )


def _runs(flags: list[bool], t0: float, frame_s: float) -> tuple[tuple[float, float], ...]:
    runs: list[tuple[float, float]] = []
    start: int | None = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            a, b = t0 + start * frame_s, t0 + i * frame_s
            if runs and a - runs[-1][1] < _RUN_MERGE_S:
                a = runs.pop()[0]
            runs.append((round(a, 3), round(b, 3)))
            start = None
    return tuple(runs)


# ---- the endpoint --------------------------------------------------------------------------
class AsrError(Exception):
    """The endpoint failed, timed out or answered something that is not a transcription."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class StretchWords:
    text: str
    words: tuple[Word, ...]


def parse_verbose(answer: Any, stretch: Stretch) -> StretchWords:
    """The words of a `verbose_json` answer, in media time. Raises `AsrError("garbage")` for
    anything else. Without word times, the words are spread over the stretch's speech."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except ValueError as exc:
            raise AsrError("garbage", "not JSON") from exc
    if hasattr(answer, "model_dump"):
        answer = answer.model_dump(warnings=False)
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        raise AsrError("garbage", "no text")
    text = answer["text"].strip()
    raw = answer.get("words") or []
    if not isinstance(raw, list):
        raise AsrError("garbage", "words is not a list")
    limit = stretch.duration_s + 1.0
    words: list[Word] = []
    for item in raw:
        try:
            word = str(item["word"]).strip()
            start, end = float(item["start"]), float(item["end"])
        except (TypeError, KeyError, ValueError) as exc:
            raise AsrError("garbage", "a word without word/start/end") from exc
        if not (math.isfinite(start) and math.isfinite(end)) or not -0.5 <= start <= limit:
            raise AsrError("garbage", f"word time {start} outside the stretch")
        if not word:
            continue
        start = min(max(start, 0.0), stretch.duration_s)
        end = min(max(end, start), stretch.duration_s)
        words.append(Word(word, round(stretch.t_start + start, 3), round(stretch.t_start + end, 3)))
    if not words and text:
        words = _spread(text.split(), stretch)
    return StretchWords(text or " ".join(w.text for w in words), tuple(words))


def _spread(tokens: list[str], stretch: Stretch) -> list[Word]:
    runs = stretch.speech_runs or ((stretch.t_start, stretch.t_end),)
    a, b = runs[0][0], runs[-1][1]
    step = (b - a) / max(1, len(tokens))
    return [
        Word(tok, round(a + i * step, 3), round(a + (i + 1) * step, 3))
        for i, tok in enumerate(tokens)
    ]


class AsrClient:
    """One per process (its connection pool is shared by every session's transcriber)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        model: str,
        timeout_s: float,
        client: AsyncOpenAI | None = None,
    ) -> None:
        self.model = model
        self.timeout_s = timeout_s
        self._client = client or AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,  # a stretch is sent once: a failure goes to the local recogniser
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
        )
        # Resolve the lazily imported resource now, not on the event loop mid-session.
        self._transcriptions = self._client.audio.transcriptions

    @classmethod
    def from_settings(cls, settings: Settings) -> AsrClient | None:
        """The configured endpoint: `asr_*`, else the older `transcribe_*` names."""
        asr, old = settings.asr, settings.transcribe
        if asr.base_url:
            return cls(asr.base_url, api_key=asr.api_key, model=asr.model, timeout_s=asr.timeout_s)
        if old.base_url:
            return cls(old.base_url, api_key=old.api_key, model=old.model, timeout_s=asr.timeout_s)
        return None

    async def aclose(self) -> None:
        await self._client.close()

    async def transcribe(self, stretch: Stretch, language: Language) -> StretchWords:
        wav = await asyncio.to_thread(wav_bytes, stretch.samples)
        try:
            answer = await asyncio.wait_for(
                self._transcriptions.create(
                    model=self.model,
                    file=(f"stretch-{stretch.index}.wav", wav, "audio/wav"),
                    language=language,
                    response_format="verbose_json",
                    timestamp_granularities=["word"],
                    prompt=_FILLER_PROMPTS[language],
                ),
                timeout=self.timeout_s,
            )
        except (TimeoutError, openai.APITimeoutError) as exc:
            raise AsrError("timeout") from exc
        except openai.APIStatusError as exc:
            raise AsrError("http_error", f"HTTP {exc.status_code}") from exc
        except openai.APIConnectionError as exc:
            raise AsrError("connection_error", str(exc)) from exc
        except (openai.OpenAIError, ValueError) as exc:
            raise AsrError("garbage", type(exc).__name__) from exc
        return parse_verbose(answer, stretch)


# ---- the embedded recogniser ---------------------------------------------------------------
def recognise_local(model: Any, stretch: Stretch) -> StretchWords:
    """Vosk over one stretch (blocking, about real time / 10): its words in media time."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE)
    recognizer.SetWords(True)
    results: list[str] = []
    step = SAMPLE_RATE // 2
    for i in range(0, stretch.samples.size, step):
        if recognizer.AcceptWaveform(stretch.samples[i : i + step].tobytes()):
            results.append(recognizer.Result())
    results.append(recognizer.FinalResult())
    words: list[Word] = []
    for result in results:
        for item in json.loads(result).get("result", []):
            words.append(
                Word(
                    str(item["word"]),
                    round(stretch.t_start + float(item["start"]), 3),
                    round(stretch.t_start + float(item["end"]), 3),
                    float(item["conf"]) if "conf" in item else None,
                )
            )
    return StretchWords(" ".join(w.text for w in words), tuple(words))
