"""What was said in an upload: the same stretches, recognisers, filler words and content
feedback as a live session (app/analysis/asr.py, app/live/transcription.py).

The scan's single decode pass hands each audio frame to `UploadSpeech.audio` on the scan's
worker thread, where it is resampled to 16 kHz mono and cut at pauses (`SpeechCutter`, blocking,
so it belongs on that thread). Each stretch is handed to the event loop's `LiveTranscriber`
whole (`add_stretches`: a file waits for its transcript, nothing is dropped), which recognises
them one request at a time while the scan goes on (the endpoint, else or on failure the embedded
recogniser). Its `transcript` events and `filler_words` cues are kept for the upload's events;
`finish` returns them with the transcript (`transcript_json`'s shape, which the report reads).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import av
import numpy as np

from app.analysis.asr import SpeechCutter, Stretch
from app.analysis.transcribe import SAMPLE_RATE
from app.coaching.report import content_report, fillers_report, transcript_report
from app.config import Settings
from app.events import Event, WireEvent, to_wire
from app.frames import AudioChunk, Language
from app.live.transcription import LiveTranscriber, transcript_json
from app.upload.analyze import AnalysisStages

log = logging.getLogger(__name__)

SPEECH_KEYS = ("transcript", "fillers", "content")  # in the upload's result and poll answer
_JUMP_S = 0.1  # a frame this far from where the last one ended starts anew (a gap in the file)


class UploadSpeech:
    """One upload's speech recognition. Built and finished on the event loop; `audio` and
    `close_audio` are called on the scan's thread."""

    def __init__(
        self,
        video_id: str,
        settings: Settings,
        loop: asyncio.AbstractEventLoop,
        transcriber: LiveTranscriber,
        events: list[Event],
    ) -> None:
        self.video_id = video_id
        self._loop = loop
        self._transcriber = transcriber
        self._events = events
        self._cutter = SpeechCutter(settings)
        self._resampler: av.AudioResampler | None = None
        self._next_t: float | None = None  # media time where the last resampled audio ended
        self.stretches = 0

    @classmethod
    def start(
        cls, stages: AnalysisStages, video_id: str, language: Language, settings: Settings
    ) -> UploadSpeech | None:
        """On the event loop. None when there is no recogniser for the language."""
        if stages.make_transcriber is None:
            return None
        events: list[Event] = []

        async def emit(event: Event) -> WireEvent:
            events.append(event)
            return to_wire(event, video_id, len(events))

        transcriber = stages.make_transcriber(video_id, language, emit)
        if transcriber is None:
            return None
        transcriber.start()
        return cls(video_id, settings, asyncio.get_running_loop(), transcriber, events)

    # --- the scan's thread ---------------------------------------------------------------
    def audio(self, frame: av.AudioFrame, t: float) -> None:
        """One decoded audio frame at media time `t` (blocking: the scan's thread)."""
        if t < 0:
            return  # before the first video frame, where media time starts
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frame.pts = None  # the media time is `t`; the resampler keeps its own
        parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        samples = np.concatenate(parts).astype(np.int16, copy=False) if parts else None
        if samples is None or not samples.size:
            return
        if self._next_t is not None and abs(t - self._next_t) <= _JUMP_S:
            t = self._next_t  # contiguous: keep the cutter's clock free of rounding jitter
        self._next_t = t + samples.size / SAMPLE_RATE
        self._hand_over(
            self._cutter.push(AudioChunk(t=t, samples=samples, sample_rate=SAMPLE_RATE))
        )

    def close_audio(self) -> None:
        """The file's audio ended (blocking: the scan's thread, or one after it)."""
        self._hand_over(self._cutter.flush())

    def _hand_over(self, stretches: list[Stretch]) -> None:
        if stretches:
            self.stretches += len(stretches)
            self._loop.call_soon_threadsafe(self._transcriber.add_stretches, stretches)

    # --- the event loop ------------------------------------------------------------------
    async def finish(self) -> tuple[dict[str, Any], list[Event]]:
        """After the scan: the transcript (`transcript_json`'s shape) and the events it made."""
        await asyncio.to_thread(self.close_audio)
        transcript = await self._transcriber.finish()
        log.info(
            "upload transcribed",
            extra={"video_id": self.video_id, "stretches": self.stretches},
        )
        return transcript_json(transcript), list(self._events)

    def stop(self) -> None:
        """The upload failed or was deleted: stop recognising."""
        self._transcriber.stop()


def speech_fields(
    transcript: dict[str, Any] | None, duration_s: float, language: Language
) -> dict[str, Any]:
    """The upload result's `transcript`, `fillers` and `content`, shaped as the report's."""
    fillers = fillers_report(transcript, duration_s)
    return {
        "transcript": transcript_report(transcript),
        "fillers": fillers,
        "content": content_report(transcript, language, fillers["per_minute"]),
    }
