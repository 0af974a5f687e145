"""Speech recognition for a live session, beside the frame loop, never stalling it.

`LiveTranscriber` (what `app.wiring` builds): audio chunks go through a bounded queue
(drop-oldest, counted) to a `SpeechCutter` run in a worker thread, which cuts stretches of
speech at pauses; the stretches wait in a bounded queue (`asr.queue`; when full the oldest is
dropped and counted) for the one request in flight to the transcription endpoint, under its
deadline. A stretch the endpoint fails (error, timeout, an answer that is no transcription) goes
to the embedded recogniser (vosk, Korean) instead; no stretch is sent twice. Each stretch's
words become a `transcript` event (filler words marked) and may turn the `filler_words` cue on
or off. `finish()` drains everything, asks for feedback on the content and returns the
transcript, which the finaliser stores next to the recording for the report.

`TranscriptionWorker` runs one blocking `Transcriber` over the whole audio on a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

from openai import AsyncOpenAI

from app.analysis.asr import (
    AsrClient,
    AsrError,
    SpeechCutter,
    Stretch,
    StretchWords,
    recognise_local,
)
from app.analysis.transcribe import Filler, Transcriber, Transcript, Word, normalise_word
from app.coaching.content import llm_content, rules_content
from app.coaching.fillers import (
    CueState,
    FillerCue,
    filled_pauses,
    filler_items,
    mark_fillers,
    words_per_minute,
)
from app.coaching.messages import CUE_SEVERITY, cue_message
from app.config import Settings
from app.events import CueEvent, Event, TranscriptEvent, TranscriptWord, WireEvent
from app.frames import AudioChunk, Language

log = logging.getLogger(__name__)

_STOP = object()


class TranscriptionWorker:
    def __init__(self, make: Callable[[], Transcriber], name: str, max_chunks: int = 600) -> None:
        self._make = make  # called on the worker thread: loading a model takes seconds
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_chunks)
        self._thread = threading.Thread(target=self._run, name=f"transcribe:{name}", daemon=True)
        self._result: Transcript | None = None
        self._error: str | None = None
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def feed(self, chunk: AudioChunk) -> None:
        """Never blocks: when recognition falls a minute behind, the oldest audio goes."""
        while True:
            try:
                self._queue.put_nowait(chunk)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        try:
            transcriber = self._make()
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                transcriber.feed(item)
            self._result = transcriber.finish()
        except Exception as exc:  # recognition must never take the session down
            log.exception("transcription failed")
            self._error = f"{type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """Let the thread end (idempotent); `finish` also waits for the result."""
        self.feed(_STOP)  # type: ignore[arg-type]

    async def finish(self, timeout: float = 60.0) -> Transcript | None:
        self.stop()
        await asyncio.to_thread(self._thread.join, timeout)
        return self._result


_MAX_CHUNKS = 600  # about a minute of audio waiting for the cutter


class LiveTranscriber:
    """One session's transcription: cutter task and sender task, both owned and named."""

    def __init__(
        self,
        session_id: str,
        language: Language,
        settings: Settings,
        emit: Callable[[Event], Awaitable[WireEvent]],
        *,
        asr: AsrClient | None,
        local_model: Callable[[], Any] | None,
        content_client: AsyncOpenAI | None = None,
    ) -> None:
        self.id, self.language, self.settings = session_id, language, settings
        self._emit = emit
        self._asr = asr
        self._local_model = local_model  # blocking loader of the vosk model, or None
        self._content_client = content_client
        self._cutter = SpeechCutter(settings)
        self._chunks: asyncio.Queue[AudioChunk | None] = asyncio.Queue(maxsize=_MAX_CHUNKS)
        self._stretches: deque[Stretch] = deque()
        self._stretch_ready = asyncio.Event()
        self._cut_done = False
        self._tasks: list[asyncio.Task[None]] = []
        self._cue = FillerCue(settings.asr.filler_cluster, settings.asr.filler_window_s)
        self._words: list[Word] = []
        self._fillers: list[Filler] = []
        self._texts: list[str] = []
        self._speaking_s = 0.0
        self._sources: set[str] = set()
        # failures by kind (bounded: one entry per kind), with the first one's media time
        self._errors: dict[str, tuple[int, float | None]] = {}
        self._heard_t = 0.0  # where the last recognised stretch ended
        self._finished: Transcript | None = None
        self.chunks_dropped = 0
        self.dropped = 0  # stretches dropped from the full queue, never recognised
        self.sent = 0  # stretches sent to the endpoint (each once)
        self.fallbacks = 0  # stretches the endpoint failed that went to the local recogniser
        self.lost = 0  # stretches neither recogniser could take
        self.stretches = 0

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._cut_loop(), name=f"{self.id}:asr-cut"),
            asyncio.create_task(self._send_loop(), name=f"{self.id}:asr"),
        ]

    def feed(self, chunk: AudioChunk) -> None:
        """Never blocks: when the cutter falls a minute behind, the oldest audio goes."""
        if self._cut_done:
            return
        if self._chunks.full():
            self._chunks.get_nowait()
            self.chunks_dropped += 1
        self._chunks.put_nowait(chunk)

    def add_stretches(self, stretches: Sequence[Stretch]) -> None:
        """Stretches cut elsewhere (an upload's scan cuts them on its own thread), queued whole:
        none is dropped, since a file waits for its transcript instead of moving on."""
        if stretches:
            self._stretches.extend(stretches)
            self._stretch_ready.set()

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def finish(self, end_t: float | None = None) -> Transcript | None:
        """Recognise what is queued, turn the `filler_words` cue off when on (at `end_t`, the
        session's end, or where the speech heard ended) and make the transcript."""
        if self._finished is not None:
            return self._finished
        if not self._cut_done:
            if self._chunks.full():
                self._chunks.get_nowait()
                self.chunks_dropped += 1
            self._chunks.put_nowait(None)
        s = self.settings.asr
        # every queued stretch within its deadline (an upload's may be more than `s.queue`)
        bound = (max(s.queue, len(self._stretches)) + 2) * (s.timeout_s + 10.0)
        try:
            await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=bound)
        except TimeoutError:
            log.warning("transcription did not finish in %.0f s", bound)
            self._error("transcription did not finish in time")
        close_t = max(self._heard_t, end_t if end_t is not None else 0.0)
        await self._filler_cues(self._cue.close(close_t))
        self._finished = await self._transcript()
        return self._finished

    # --- stages ----------------------------------------------------------------------------
    async def _cut_loop(self) -> None:
        try:
            while True:
                batch = [await self._chunks.get()]
                while not self._chunks.empty():
                    batch.append(self._chunks.get_nowait())
                done = None in batch
                chunks = [c for c in batch if c is not None]
                stretches = await asyncio.to_thread(self._cut, chunks, done)
                for stretch in stretches:
                    if len(self._stretches) >= max(1, self.settings.asr.queue):
                        self._stretches.popleft()  # the oldest goes: live feedback is about now
                        self.dropped += 1
                    self._stretches.append(stretch)
                self._stretch_ready.set()
                if done:
                    return
        finally:
            self._cut_done = True
            self._stretch_ready.set()

    def _cut(self, chunks: list[AudioChunk], done: bool) -> list[Stretch]:
        out: list[Stretch] = []
        for chunk in chunks:
            out += self._cutter.push(chunk)
        if done:
            out += self._cutter.flush()
        return out

    async def _send_loop(self) -> None:
        while True:
            if not self._stretches:
                if self._cut_done:
                    return
                self._stretch_ready.clear()
                await self._stretch_ready.wait()
                continue
            stretch = self._stretches.popleft()
            try:
                await self._recognise(stretch)
            except Exception:  # one stretch must never end the session's transcription
                log.exception("stretch %d failed", stretch.index, extra={"session_id": self.id})
                self.lost += 1

    async def _recognise(self, stretch: Stretch) -> None:
        result: StretchWords | None = None
        source: Literal["asr", "local"] = "asr"
        if self._asr is not None:
            self.sent += 1
            try:
                result = await self._asr.transcribe(stretch, self.language)
            except Exception as exc:  # whatever the endpoint did, the stretch is not lost
                if isinstance(exc, AsrError):
                    log.warning("transcription endpoint: %s; the local recogniser takes over", exc)
                    kind = exc.kind
                else:
                    log.exception("transcription endpoint failed; the local recogniser takes over")
                    kind = type(exc).__name__
                self._error(kind, stretch.t_start)
                if self._local_model is not None:
                    self.fallbacks += 1
        if result is None and self._local_model is not None:
            source = "local"
            model = await asyncio.to_thread(self._local_model)
            if model is not None:
                result = await asyncio.to_thread(recognise_local, model, stretch)
        if result is None:
            self.lost += 1
            return
        self.stretches += 1
        await self._take(stretch, result, source)

    async def _take(
        self, stretch: Stretch, result: StretchWords, source: Literal["asr", "local"]
    ) -> None:
        self._sources.add(source)
        flags = mark_fillers(result.words, self.language, self.settings)
        words = [replace(w, filler=f) for w, f in zip(result.words, flags, strict=True)]
        items = filler_items(words, flags) + filled_pauses(stretch.speech_runs, words)
        items.sort(key=lambda i: i.t)
        self._words += words
        self._fillers += [Filler(i.word, i.t) for i in items]
        if result.text:
            self._texts.append(result.text)
        if words and stretch.speech_runs:
            self._speaking_s += stretch.speech_runs[-1][1] - stretch.speech_runs[0][0]
        if words or result.text:
            await self._emit(
                TranscriptEvent(
                    t=round(stretch.t_end, 3),
                    source=source,
                    t_start=stretch.t_start,
                    t_end=round(stretch.t_end, 3),
                    text=result.text,
                    words=[
                        TranscriptWord(
                            word=w.text, t_start=w.t_start, t_end=w.t_end, filler=w.filler
                        )
                        for w in words
                    ],
                )
            )
        self._heard_t = max(self._heard_t, stretch.t_end)
        await self._filler_cues(self._cue.update([i.t for i in items], stretch.t_end))

    def _error(self, kind: str, t: float | None = None) -> None:
        count, first = self._errors.get(kind, (0, t))
        self._errors[kind] = (count + 1, first)

    async def _filler_cues(self, transitions: Sequence[tuple[CueState, float]]) -> None:
        for state, t in transitions:
            await self._emit(
                CueEvent(
                    t=round(t, 3),
                    cue="filler_words",
                    state=state,
                    severity=CUE_SEVERITY["filler_words"],
                    message=cue_message("filler_words", self.language),
                )
            )

    async def _transcript(self) -> Transcript:
        words = tuple(self._words)
        wpm = words_per_minute(words, [w.filler for w in words], self._speaking_s)
        fillers = tuple(self._fillers)
        per_min = len(fillers) / (self._speaking_s / 60) if self._speaking_s > 0 else None
        content = await self._content(words, fillers, wpm, per_min) if words else None
        source: Literal["asr", "local"] = (
            "asr" if "asr" in self._sources or (not self._sources and self._asr) else "local"
        )
        notes = [
            kind
            + (f" at {first:.0f} s" if first is not None else "")
            + (f" (and {count - 1} more)" if count > 1 else "")
            for kind, (count, first) in self._errors.items()
        ]
        if self.dropped:
            notes.append(f"{self.dropped} stretch(es) dropped: recognition fell behind")
        if self.lost:
            notes.append(f"{self.lost} stretch(es) could not be recognised")
        return Transcript(
            self.language,
            source,
            text=" ".join(self._texts),
            words=words,
            fillers=fillers,
            note="; ".join(notes) or None,
            words_per_minute=wpm,
            content=content,
            stretches=self.stretches,
            dropped=self.dropped,
            fallbacks=self.fallbacks,
        )

    async def _content(
        self,
        words: tuple[Word, ...],
        fillers: tuple[Filler, ...],
        wpm: float | None,
        per_min: float | None,
    ) -> dict[str, Any]:
        filler_words = sorted({normalise_word(w.text) for w in words if w.filler})
        if self._content_client is not None:
            try:
                return await llm_content(
                    self._content_client,
                    self.settings,
                    " ".join(self._texts),
                    self.language,
                    duration_s=self._speaking_s,
                    wpm=wpm,
                    fillers=f"{len(fillers)} ({', '.join(filler_words) or '-'})",
                )
            except Exception as exc:  # the rules stand in, as for the critic
                log.warning("content feedback from the model failed: %s", exc)
        return rules_content(
            self._texts, self.language, filler_words=filler_words, fillers_per_minute=per_min
        )


def transcript_json(transcript: Transcript | None, note: str | None = None) -> dict[str, Any]:
    if transcript is None:
        return {"made": False, "note": note or "no transcript was made"}
    out = asdict(transcript)
    out["made"] = transcript.made
    return out


def write_transcript(path: Path, transcript: Transcript | None, note: str | None = None) -> None:
    path.write_text(json.dumps(transcript_json(transcript, note), ensure_ascii=False), "utf-8")
