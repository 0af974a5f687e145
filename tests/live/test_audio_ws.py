"""Audio over the WebSocket (`AUD1` messages): voice events, cues, the Opus track in the
recording and, for Korean, a transcript made off the event loop."""

from __future__ import annotations

import asyncio
import io
import json
import time

import av
import numpy as np

from tests.analysis.espeak_speech import SENTENCES, espeak, silence
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.live.test_ws_live import FPS
from tests.support.client import SessionClient
from tests.support.server import ThreadServer

CHUNK = 1600  # 100 ms at 16 kHz


async def test_audio_messages_feed_voice_recording_and_transcript(server: ThreadServer) -> None:
    speech = np.concatenate(
        [
            silence(0.5),
            espeak(SENTENCES["ko"][0][0], "ko", 150),
            silence(2.5),
            espeak(SENTENCES["ko"][1][0], "ko", 150),
            silence(0.5),
        ]
    )
    seconds = len(speech) / 16000
    frames = labelled_clip(FPS, [Segment("frontal", seconds)])
    jpegs = [encode_jpeg(f.image) for f in frames]
    client = await SessionClient.create(server.http, server.ws, language="ko")
    await client.connect()
    start = time.monotonic()
    next_frame = next_chunk = 0
    while next_chunk * CHUNK < len(speech) or next_frame < len(jpegs):
        t_frame = next_frame / FPS if next_frame < len(jpegs) else float("inf")
        t_chunk = next_chunk * CHUNK / 16000 if next_chunk * CHUNK < len(speech) else float("inf")
        t_next = min(t_frame, t_chunk)
        delay = start + t_next - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if t_frame <= t_chunk:
            await client.send_frame(jpegs[next_frame])
            next_frame += 1
        else:
            pcm = speech[next_chunk * CHUNK : (next_chunk + 1) * CHUNK].astype("<i2").tobytes()
            await client.send_frame(b"AUD1" + pcm)
            next_chunk += 1
    await client.send_frame(b"AUD1" + b"\x01")  # odd length: an error, nothing else
    await client.wait_for(lambda e: e["type"] == "error" and e["code"] == "bad_audio")
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    await client.close()

    voice = client.of_type("voice")
    assert len(voice) >= seconds - 2
    loud = [v for v in voice if v["speaking"]]
    quiet = [v for v in voice if v["speaking"] is False]
    assert loud and quiet
    assert min(v["level_dbfs"] for v in loud) > max(v["level_dbfs"] for v in quiet)

    recording = await client.get("/recording.webm")
    with av.open(io.BytesIO(recording.content)) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "opus"
        audio_end = max(
            float((p.pts + p.duration) * p.time_base)
            for p in container.demux(audio)
            if p.pts is not None
        )
    assert abs(audio_end - seconds) < 0.5, (audio_end, seconds)

    transcript_path = server.settings.sessions_dir / client.id / "transcript.json"
    transcript = json.loads(transcript_path.read_text("utf-8"))
    assert transcript["made"] is True and transcript["source"] == "local"
    assert transcript["words"], transcript
    assert all(0 <= w["t_start"] <= seconds + 1 for w in transcript["words"])


async def test_audio_held_up_by_the_network_is_recorded_whole(server: ThreadServer) -> None:
    """A stall (1.5 s of `AUD1` messages held back, then sent at once with the next one, as a
    network does) loses no audio: the burst fills the time it was held up for, each chunk
    after the last (before, they were laid over one another and the recorder dropped the
    overlap: ~1.4 s of this tone gone)."""
    seconds, stalled = 6.0, range(20, 35)  # 100 ms chunks 20-34: 2.0-3.5 s
    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000)).astype(
        np.int16
    )
    chunks = [tone[i : i + CHUNK] for i in range(0, len(tone), CHUNK)]
    jpegs = [encode_jpeg(f.image) for f in labelled_clip(FPS, [Segment("frontal", seconds)])]
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    start = time.monotonic()
    held: list[bytes] = []
    next_frame = next_chunk = 0
    while next_chunk < len(chunks) or next_frame < len(jpegs):
        t_frame = next_frame / FPS if next_frame < len(jpegs) else float("inf")
        t_chunk = next_chunk * CHUNK / 16000 if next_chunk < len(chunks) else float("inf")
        delay = start + min(t_frame, t_chunk) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if t_frame <= t_chunk:
            await client.send_frame(jpegs[next_frame])
            next_frame += 1
            continue
        message = b"AUD1" + chunks[next_chunk].astype("<i2").tobytes()
        if next_chunk in stalled:
            held.append(message)
        else:
            for late in held:  # the stall ends: everything held back at once
                await client.send_frame(late)
            held = []
            await client.send_frame(message)
        next_chunk += 1
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=120)
    await client.close()
    recording = await client.get("/recording.webm")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
    with av.open(io.BytesIO(recording.content)) as container:
        decoded = [
            out.to_ndarray().reshape(-1)
            for frame in container.decode(container.streams.audio[0])
            for out in resampler.resample(frame)
        ]
    samples = np.concatenate(decoded).astype(np.float64)
    windows = samples[: len(samples) // 320 * 320].reshape(-1, 320)  # 20 ms each
    loud_s = float(np.sum(np.sqrt(np.mean(windows**2, axis=1)) > 2000)) * 0.02
    assert loud_s >= seconds - 0.2, (loud_s, seconds)
