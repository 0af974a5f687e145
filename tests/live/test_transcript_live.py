"""Transcripts of a live session: Korean espeak speech over the WebSocket (`AUD1`), a real
server speaking the OpenAI transcription protocol, and the embedded recogniser taking over
when that endpoint fails."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np

from app.config import Settings
from tests.analysis.espeak_speech import SENTENCES, espeak, silence
from tests.support.client import SessionClient
from tests.support.fake_asr import AsrReply, WordSpec, running_fake_asr
from tests.support.server import ThreadServer

CHUNK = 1600  # 100 ms at 16 kHz
FILLER_FLAGS = [True, False, False, True, False]  # 음 그(determiner) 제품은 어 좋습니다


def scripted_words(d: float) -> tuple[WordSpec, ...]:
    """Five words covering the whole stretch (so no filled pause is counted)."""
    return (
        ("음", 0.0, 0.1 * d),
        ("그", 0.15 * d, 0.2 * d),
        ("제품은", 0.22 * d, 0.5 * d),
        ("어,", 0.55 * d, 0.6 * d),
        ("좋습니다", 0.62 * d, d),
    )


def speech(n: int) -> np.ndarray:
    parts = [silence(0.5)]
    for text, _ in SENTENCES["ko"][:n]:
        parts += [espeak(text, "ko", 150), silence(1.5)]
    return np.concatenate(parts)


async def stream(server: ThreadServer, audio: np.ndarray) -> SessionClient:
    """The audio as a microphone sends it (paced in real time), then `end` and the report."""
    client = await SessionClient.create(server.http, server.ws, language="ko")
    await client.connect()
    start = time.monotonic()
    for i in range(0, audio.size, CHUNK):
        delay = start + i / 16000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await client.send_frame(b"AUD1" + audio[i : i + CHUNK].astype("<i2").tobytes())
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    await client.close()
    return client


async def test_endpoint_words_land_in_media_time_once_each(settings: Settings) -> None:
    audio = speech(2)
    with running_fake_asr() as fake:
        fake.words_for = scripted_words
        fake.script(AsrReply(delay_s=2.0))  # the second stretch waits: one request at a time
        s = settings.updated(asr_base_url=fake.base_url, asr_api_key="sk-test")
        with ThreadServer(s) as server:
            client = await stream(server, audio)
            report = (await client.get("/report")).json()
            html = (await client.get("/report.html")).text
    events = client.of_type("transcript")
    assert len(events) == len(fake.requests) == 2
    assert fake.max_in_flight == 1
    assert all(r.fields["language"] == ["ko"] for r in fake.requests)
    # no audio twice: the stretches are distinct and together no longer than what was sent
    assert len({r.audio for r in fake.requests}) == 2
    assert sum(r.duration_s for r in fake.requests) <= audio.size / 16000
    for event, request in zip(events, fake.requests, strict=True):
        assert event["source"] == "asr"
        assert [w["filler"] for w in event["words"]] == FILLER_FLAGS
        d = request.duration_s
        assert (
            event["t_end"] - event["t_start"] == round(d, 3)
            or abs(event["t_end"] - event["t_start"] - d) < 0.002
        )
        for word, (_, a, b) in zip(event["words"], scripted_words(d), strict=True):
            assert abs(word["t_start"] - (event["t_start"] + a)) < 0.002
            assert abs(word["t_end"] - (event["t_start"] + b)) < 0.002
    # the first stretch starts where the speech does, in media time (0.5 s of silence first)
    assert 0.2 <= events[0]["t_start"] <= 0.6
    assert events[0]["t_end"] <= events[1]["t_start"]
    cues = [c for c in client.of_type("cue") if c["cue"] == "filler_words"]
    # on with the second stretch (4 fillers within 30 s), and off only at the end
    assert [c["state"] for c in cues] == ["on", "off"]
    finalizing = next(e for e in client.of_type("state") if e["state"] == "finalizing")
    assert cues[1]["seq"] > finalizing["seq"] and cues[1]["t"] >= events[-1]["t_end"]
    assert report["transcript"]["source"] == "asr"
    assert len(report["transcript"]["words"]) == 10
    assert report["fillers"]["count"] == 4  # counted once each
    assert [f["word"] for f in report["fillers"]["items"]] == ["음", "어"] * 2
    assert report["fillers"]["per_minute"] > 0
    assert report["content"]["source"] == "rules" and report["content"]["items"]
    assert html.count('class="word filler"') == 4 and 'data-t="' in html


async def test_failures_fall_back_to_the_local_recogniser_and_nothing_is_lost(
    settings: Settings,
) -> None:
    audio = speech(3)
    with running_fake_asr() as fake:
        fake.script(AsrReply(status=500), AsrReply(raw=b"<html>oops</html>"), AsrReply(hang=True))
        s = settings.updated(asr_base_url=fake.base_url, asr_timeout_s=1.0)
        with ThreadServer(s) as server:
            client = await stream(server, audio)
            report = (await client.get("/report")).json()
            path = server.settings.sessions_dir / client.id / "transcript.json"
            transcript = json.loads(path.read_text("utf-8"))
    events = client.of_type("transcript")
    assert len(fake.requests) == 3  # each stretch sent once
    assert len(events) == 3 and all(e["source"] == "local" for e in events)
    assert all(e["words"] for e in events)
    assert transcript["fallbacks"] == 3 and transcript["dropped"] == 0
    assert report["transcript"]["source"] == "local"
    assert all(0 <= w["t_start"] <= audio.size / 16000 + 0.5 for w in report["transcript"]["words"])
