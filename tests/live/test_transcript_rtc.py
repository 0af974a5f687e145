"""Transcripts over WebRTC, in English: espeak-ng speech as a microphone track of a real
aiortc peer, the Opus audio the server decodes cut at pauses and sent to a real server speaking
the OpenAI transcription protocol; word times land in the session's media time."""

from __future__ import annotations

import numpy as np

from app.config import Settings
from tests.analysis.espeak_speech import SENTENCES, espeak, silence
from tests.support.fake_asr import WordSpec, running_fake_asr
from tests.support.rtc_client import FaceThenEmptyTrack, RtcClient, SpeechTrack
from tests.support.server import ThreadServer

# "Um, we like it. Uh, it works": "like" after a subject is a verb, um and uh are fillers.
WORDS = ("Um,", "we", "like", "it.", "Uh,", "it", "works")
FLAGS = [True, False, False, False, True, False, False]


def scripted_words(d: float) -> tuple[WordSpec, ...]:
    """The seven words back to back over the whole stretch (no gap: no pause sets one off)."""
    step = d / len(WORDS)
    return tuple((w, i * step, (i + 1) * step) for i, w in enumerate(WORDS))


async def test_english_speech_over_webrtc_is_transcribed_in_media_time(
    settings: Settings,
) -> None:
    parts = [silence(0.5)]
    for text, _ in SENTENCES["en"][:2]:
        parts += [espeak(text, "en", 150), silence(1.5)]
    speech = np.concatenate(parts)
    with running_fake_asr() as fake:
        fake.words_for = scripted_words
        s = settings.updated(asr_base_url=fake.base_url, asr_api_key="sk-test")
        with ThreadServer(s) as server:
            client = await RtcClient.create(server.http, language="en")
            track = SpeechTrack(speech)
            try:
                await client.connect(FaceThenEmptyTrack(), track)
                await track.played.wait()
                await client.wait_for(lambda e: e["type"] == "transcript", timeout=60)
                await client.wait_for(
                    lambda e: len(client.of_type("transcript")) >= len(fake.requests) >= 2,
                    timeout=60,
                )
                await client.end()
                await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
                report = await client.get("/report")
            finally:
                await client.close()
    events = client.of_type("transcript")
    assert len(events) == len(fake.requests) == 2  # two sentences, two stretches
    assert fake.max_in_flight == 1
    assert all(r.fields["language"] == ["en"] for r in fake.requests)
    assert len({r.audio for r in fake.requests}) == 2  # no audio sent twice
    for event, request in zip(events, fake.requests, strict=True):
        assert event["source"] == "asr"
        assert [w["word"] for w in event["words"]] == list(WORDS)
        assert [w["filler"] for w in event["words"]] == FLAGS
        for word, (_, a, b) in zip(event["words"], scripted_words(request.duration_s), strict=True):
            assert abs(word["t_start"] - (event["t_start"] + a)) < 0.002
            assert abs(word["t_end"] - (event["t_start"] + b)) < 0.002
    # In media time: after the 0.5 s lead-in, the second stretch after the first.
    assert events[0]["t_start"] >= 0.2
    assert events[0]["t_end"] <= events[1]["t_start"]
    assert report["transcript"]["source"] == "asr"
    assert report["fillers"]["count"] == 4
    assert [f["word"] for f in report["fillers"]["items"]] == ["um", "uh"] * 2
