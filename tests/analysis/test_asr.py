"""Stretches of speech cut at pauses, and the transcription endpoint client, against a real
HTTP server speaking the OpenAI transcription protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.analysis.asr import (
    AsrClient,
    AsrError,
    SpeechCutter,
    Stretch,
    StretchWords,
    parse_verbose,
)
from app.analysis.transcribe import load_vosk_model
from app.config import Settings
from app.events import Event, WireEvent, to_wire
from app.frames import AudioChunk, Language
from app.live.transcription import LiveTranscriber
from tests.analysis.espeak_speech import SENTENCES, espeak, silence
from tests.support.fake_asr import AsrReply, running_fake_asr

SR = 16000


def cut(settings: Settings, audio: np.ndarray, t0: float, chunk_s: float = 0.1) -> list[Stretch]:
    cutter = SpeechCutter(settings)
    step = round(chunk_s * SR)
    out: list[Stretch] = []
    for i in range(0, audio.size, step):
        out += cutter.push(AudioChunk(t=t0 + i / SR, samples=audio[i : i + step]))
    return out + cutter.flush()


def two_sentences() -> tuple[np.ndarray, list[tuple[float, float]]]:
    a = espeak(SENTENCES["ko"][0][0], "ko", 150)
    b = espeak(SENTENCES["ko"][1][0], "ko", 150)
    audio = np.concatenate([silence(1.0), a, silence(1.5), b, silence(1.0)])
    spans = [(1.0, 1.0 + a.size / SR), (2.5 + a.size / SR, 2.5 + (a.size + b.size) / SR)]
    return audio, spans


def test_speech_is_cut_at_pauses_in_media_time_and_no_sample_twice(settings: Settings) -> None:
    audio, spans = two_sentences()
    t0 = 7.0  # the session's media time of the first sample
    stretches = cut(settings, audio, t0)
    assert len(stretches) == 2
    for stretch, (a, b) in zip(stretches, spans, strict=True):
        assert t0 + a - 0.25 <= stretch.t_start <= t0 + a + 0.05
        assert t0 + b - 0.05 <= stretch.t_end <= t0 + b + settings.asr.pause_cut_s + 0.05
        assert stretch.speech_runs[0][0] >= stretch.t_start
        assert stretch.speech_runs[-1][1] <= stretch.t_end
    assert stretches[0].t_end <= stretches[1].t_start  # nothing in two stretches
    # the samples are the audio's own, where the times say
    first = stretches[0]
    offset = round((first.t_start - t0) * SR)
    assert np.array_equal(first.samples, audio[offset : offset + first.samples.size])


def test_silence_and_a_click_make_no_stretch(settings: Settings) -> None:
    click = np.zeros(SR * 3, np.int16)
    click[SR : SR + 160] = 20000
    assert cut(settings, click, 0.0) == []


def test_a_long_stretch_is_cut_without_a_pause(settings: Settings) -> None:
    s = settings.updated(asr_max_stretch_s=2.0)
    speech = np.concatenate([espeak(SENTENCES["en"][0][0], "en", 150)] * 2)
    stretches = cut(s, speech, 0.0)
    assert len(stretches) >= 2
    assert all(st.duration_s <= 2.0 + 1e-6 for st in stretches)
    assert sum(st.samples.size for st in stretches) <= speech.size


def _stretch(t0: float = 12.0, seconds: float = 2.0) -> Stretch:
    return Stretch(1, t0, np.zeros(round(seconds * SR), np.int16), ((t0 + 0.2, t0 + 1.8),))


async def test_the_endpoint_gets_wav_and_word_times_land_in_media_time(settings: Settings) -> None:
    with running_fake_asr() as fake:
        fake.script(AsrReply(words=(("음", 0.1, 0.3), ("제품은", 0.5, 1.0))))
        client = AsrClient(fake.base_url, api_key="k", model="whisper-test", timeout_s=5.0)
        try:
            result = await client.transcribe(_stretch(), "ko")
        finally:
            await client.aclose()
    assert [(w.text, w.t_start, w.t_end) for w in result.words] == [
        ("음", 12.1, 12.3),
        ("제품은", 12.5, 13.0),
    ]
    assert result.text == "음 제품은"
    (request,) = fake.requests
    assert request.fields["model"] == ["whisper-test"]
    assert request.fields["language"] == ["ko"]
    assert request.fields["response_format"] == ["verbose_json"]
    assert request.fields["timestamp_granularities[]"] == ["word"]
    assert request.duration_s == 2.0


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (AsrReply(status=500), "http_error"),
        (AsrReply(raw=b"<html>not json</html>"), "garbage"),
        (AsrReply(raw=b'{"words": 3}'), "garbage"),
        (AsrReply(raw=json.dumps({"text": "x", "words": [{"word": "x"}]}).encode()), "garbage"),
        (AsrReply(words=(("late", 99.0, 99.5),)), "garbage"),
        (AsrReply(hang=True), "timeout"),
    ],
)
async def test_failures_and_garbage_raise(settings: Settings, reply: AsrReply, kind: str) -> None:
    with running_fake_asr() as fake:
        fake.script(reply)
        client = AsrClient(fake.base_url, api_key=None, model="m", timeout_s=0.5)
        try:
            with pytest.raises(AsrError) as caught:
                await client.transcribe(_stretch(), "en")
        finally:
            await client.aclose()
    assert caught.value.kind == kind
    assert len(fake.requests) == 1  # sent once: no retry


def test_text_without_word_times_is_spread_over_the_speech() -> None:
    result = parse_verbose({"text": "one two three four"}, _stretch(t0=3.0))
    assert [w.text for w in result.words] == ["one", "two", "three", "four"]
    assert result.words[0].t_start == 3.2 and result.words[-1].t_end == 4.8


def test_the_older_transcribe_names_still_configure_the_endpoint() -> None:
    assert AsrClient.from_settings(Settings(_env_file=None)) is None
    old = AsrClient.from_settings(
        Settings(_env_file=None, transcribe_base_url="http://x/v1", transcribe_model="old")
    )
    new = AsrClient.from_settings(
        Settings(_env_file=None, transcribe_base_url="http://x/v1", asr_base_url="http://y/v1")
    )
    assert old is not None and old.model == "old"
    assert new is not None and new.model == "whisper-1"


class _BrokenAsr(AsrClient):
    """The endpoint's client failing in a way it does not name (not an `AsrError`)."""

    async def transcribe(self, stretch: Stretch, language: Language) -> StretchWords:
        raise RuntimeError("unexpected answer")


async def test_any_endpoint_failure_falls_back_locally_and_errors_count_by_kind(
    settings: Settings,
) -> None:
    audio, _spans = two_sentences()
    stretches = cut(settings, audio, 0.0)
    assert len(stretches) >= 2
    events: list[Event] = []

    async def emit(event: Event) -> WireEvent:
        events.append(event)
        return to_wire(event, "s", len(events))

    asr = _BrokenAsr("http://127.0.0.1:9", api_key=None, model="m", timeout_s=1.0)
    transcriber = LiveTranscriber(
        "s", "ko", settings, emit, asr=asr, local_model=lambda: load_vosk_model("ko")
    )
    transcriber.start()
    transcriber.add_stretches(stretches)
    try:
        transcript = await transcriber.finish()
    finally:
        await asr.aclose()
    assert transcript is not None
    n = len(stretches)
    assert (transcriber.sent, transcriber.fallbacks, transcriber.lost) == (n, n, 0)
    assert transcript.source == "local" and transcript.words
    # one note for the kind, however many stretches failed
    first = stretches[0].t_start
    assert transcript.note == f"RuntimeError at {first:.0f} s (and {n - 1} more)"
