"""What was said in an upload: an MP4 whose sound is Korean espeak speech, uploaded to a real
server on loopback that sends its stretches to a real server speaking the OpenAI transcription
protocol. The poll answer, result.json and the report carry the same transcript, fillers and
content feedback as a live session, with word times in the upload's media time."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np

from app.config import Settings
from tests.analysis.espeak_speech import SAMPLE_RATE, SENTENCES, espeak, silence
from tests.api.test_upload import upload, wait_done
from tests.live.test_transcript_live import FILLER_FLAGS, scripted_words
from tests.support.fake_asr import running_fake_asr
from tests.support.server import ThreadServer

FPS = 10
LEAD_S, GAP_S, TAIL_S = 0.5, 1.5, 1.0


def speech_mp4(path: Path) -> tuple[Path, list[float]]:
    """Two Korean sentences (0.5 s of silence first, 1.5 s between) over a plain grey picture:
    the file and where each sentence starts, in seconds."""
    first, second = (espeak(text, "ko", 150) for text, _ in SENTENCES["ko"][:2])
    starts = [LEAD_S, LEAD_S + first.size / SAMPLE_RATE + GAP_S]
    pcm = np.concatenate([silence(LEAD_S), first, silence(GAP_S), second, silence(TAIL_S)])
    with av.open(str(path), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.options = {"preset": "ultrafast"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        picture = np.full((120, 160, 3), 128, np.uint8)
        for i in range(int(pcm.size / SAMPLE_RATE * FPS)):
            frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        step = 1024
        for start in range(0, pcm.size - step + 1, step):
            chunk = av.AudioFrame.from_ndarray(
                pcm[None, start : start + step], format="s16", layout="mono"
            )
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            chunk.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    return path, starts


async def test_an_upload_gets_the_transcript_fillers_and_content_of_a_live_session(
    settings: Settings, tmp_path: Path
) -> None:
    clip, starts = speech_mp4(tmp_path / "speech.mp4")
    with running_fake_asr() as fake:
        fake.words_for = scripted_words  # 음 그(determiner) 제품은 어, 좋습니다
        s = settings.updated(asr_base_url=fake.base_url, asr_api_key="sk-test")
        with ThreadServer(s) as server:
            async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
                answer = await upload(http, clip)
                assert answer.status_code == 200, answer.text
                video_id = answer.json()["video_id"]
                done = await wait_done(http, video_id)
                assert done["problem"] in ("success", "no_feedback"), done
                report = (await http.get(done["report_url"])).json()
                html = (await http.get(done["report_html_url"])).text
            folder = server.settings.uploads_dir / video_id
            result = json.loads((folder / "result.json").read_text("utf-8"))

    # one request per stretch of speech, one at a time, each piece of audio sent once
    assert len(fake.requests) == 2 and fake.max_in_flight == 1
    assert all(r.fields["language"] == ["ko"] for r in fake.requests)
    assert len({r.audio for r in fake.requests}) == 2

    transcript = done["transcript"]
    assert transcript == report["transcript"] == result["transcript"]
    assert transcript["source"] == "asr"
    words = transcript["words"]
    assert len(words) == 10
    assert [w["filler"] for w in words] == FILLER_FLAGS * 2
    # in media time: each stretch's words start where its sentence does (the cutter keeps
    # 0.2 s of silence before speech) and follow the scripted times within the stretch
    for k, (start, request) in enumerate(zip(starts, fake.requests, strict=True)):
        stretch_words = words[5 * k : 5 * k + 5]
        first = stretch_words[0]["t_start"]
        assert start - 0.35 <= first <= start + 0.1, (start, first)
        for word, (_, a, b) in zip(stretch_words, scripted_words(request.duration_s), strict=True):
            assert abs(word["t_start"] - (first + a)) < 0.002
            assert abs(word["t_end"] - (first + b)) < 0.002
    assert words[4]["t_end"] <= words[5]["t_start"]

    fillers = done["fillers"]
    assert fillers == report["fillers"]
    assert fillers["count"] == 4  # counted once each: no filled pause, the words cover it all
    assert [f["word"] for f in fillers["items"]] == ["음", "어"] * 2
    assert [f["t"] for f in fillers["items"]] == [words[i]["t_start"] for i in (0, 3, 5, 8)]
    assert fillers["per_minute"] > 0
    assert done["content"] == report["content"]
    assert done["content"]["source"] == "rules" and done["content"]["items"]
    assert html.count('class="word filler"') == 4
