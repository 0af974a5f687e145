"""A WebRTC client peer for tests and the benchmark: aiortc playing a synthetic camera (a real
face, then an empty room) and a microphone (a tone with silences), reading the session's events
from the `events` data channel."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Callable
from typing import Any

import av
import cv2
import httpx
import numpy as np
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from skimage import data as skdata

from tests.support.events import EventLog
from tests.support.vp9_rtp import prefer_vp9

WIDTH, HEIGHT = 640, 480
MIC_RATE = 48_000
MIC_PTIME_S = 0.02


def face_canvas() -> np.ndarray:
    """skimage's astronaut (a real face) scaled into the middle of a 640x480 BGR canvas."""
    face = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    face = cv2.resize(face, (400, 400), interpolation=cv2.INTER_AREA)
    canvas = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    y, x = (HEIGHT - 400) // 2, (WIDTH - 400) // 2
    canvas[y : y + 400, x : x + 400] = face
    return canvas


def blank_canvas() -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), 40, np.uint8)


class FaceThenEmptyTrack(VideoStreamTrack):
    """30 fps: the face for `face_s` seconds, then an empty room (the presenter left)."""

    def __init__(self, face_s: float = float("inf")) -> None:
        super().__init__()
        self.face_s = face_s
        self._face = av.VideoFrame.from_ndarray(face_canvas(), format="bgr24")
        self._blank = av.VideoFrame.from_ndarray(blank_canvas(), format="bgr24")
        self.sent = 0
        self.sent_at: dict[int, float] = {}  # pts -> time.monotonic() when handed to the encoder

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        elapsed = float(pts * time_base)
        source = self._face if elapsed < self.face_s else self._blank
        frame = source.reformat(format="yuv420p")
        frame.pts = pts
        frame.time_base = time_base
        self.sent += 1
        self.sent_at[pts] = time.monotonic()
        return frame


class _MicTrack(AudioStreamTrack):
    """48 kHz mono int16 in 20 ms frames, paced in real time like a microphone; a subclass
    says which samples (`_samples`)."""

    def __init__(self) -> None:
        super().__init__()
        self._start_wall = 0.0
        self._next = 0  # samples sent so far

    def _samples(self, start: int, n: int) -> np.ndarray:
        raise NotImplementedError

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = int(MIC_RATE * MIC_PTIME_S)
        if self._next == 0:
            self._start_wall = time.time()
        else:
            await asyncio.sleep(self._start_wall + self._next / MIC_RATE - time.time())
        samples = self._samples(self._next, n).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = MIC_RATE
        frame.pts = self._next
        frame.time_base = fractions.Fraction(1, MIC_RATE)
        self._next += n
        return frame


class ToneWithSilencesTrack(_MicTrack):
    """48 kHz mono: a 440 Hz tone (amplitude `amplitude` of full scale) for `tone_s`, then
    `silence_s` of digital silence, repeating."""

    def __init__(self, tone_s: float = 1.0, silence_s: float = 1.0, amplitude: float = 0.3):
        super().__init__()
        self.tone_s = tone_s
        self.silence_s = silence_s
        self.amplitude = amplitude

    def _samples(self, start: int, n: int) -> np.ndarray:
        t = np.arange(start, start + n) / MIC_RATE
        tone = (t % (self.tone_s + self.silence_s)) < self.tone_s
        wave = self.amplitude * np.sin(2 * np.pi * 440.0 * t) * tone
        return (wave * 32767).astype(np.int16)


class SpeechTrack(_MicTrack):
    """48 kHz mono: `speech` (int16 at 16 kHz, e.g. espeak-ng's) as a microphone sends it, in
    real time, then silence; `played` is set once the last speech sample went out."""

    def __init__(self, speech: np.ndarray, rate: int = 16000) -> None:
        super().__init__()
        n = round(speech.size * MIC_RATE / rate)
        positions = np.arange(n) * (rate / MIC_RATE)
        self._speech = np.interp(positions, np.arange(speech.size), speech).astype(np.int16)
        self.played = asyncio.Event()

    def _samples(self, start: int, n: int) -> np.ndarray:
        chunk = np.zeros(n, dtype=np.int16)
        part = self._speech[start : start + n]
        chunk[: part.size] = part
        if start + n >= self._speech.size:
            self.played.set()
        return chunk


class RtcClient:
    """One session's client peer: offers video (and audio), keeps every event it receives."""

    def __init__(self, base_http: str, info: dict[str, Any]) -> None:
        self.base_http = base_http
        self.id: str = info["session_id"]
        self.token: str = info["token"]
        self.offer_url: str = info["offer_url"]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel = self.pc.createDataChannel("events")
        self.log = EventLog()
        self.events = self.log.events
        self.wait_for = self.log.wait_for
        self.of_type = self.log.of_type
        self.received_at: list[float] = []
        self.channel_closed = asyncio.Event()
        self.answer_sdp = ""
        self.video: MediaStreamTrack | None = None
        self.audio: ToneWithSilencesTrack | SpeechTrack | None = None

        @self.channel.on("message")
        def on_message(message: str | bytes) -> None:
            assert isinstance(message, str), "events are JSON text"
            self.received_at.append(time.monotonic())
            self.log.add(json.loads(message))

        @self.channel.on("close")
        def on_close() -> None:
            self.channel_closed.set()
            self.log.close("the events channel closed")

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @classmethod
    async def create(cls, base_http: str, **body: Any) -> RtcClient:
        async with httpx.AsyncClient(base_url=base_http, timeout=30) as http:
            answer = await http.post("/api/sessions", json=body)
            answer.raise_for_status()
            return cls(base_http, answer.json())

    async def connect(
        self,
        video: MediaStreamTrack | None = None,
        audio: ToneWithSilencesTrack | SpeechTrack | None = None,
        *,
        vp9: bool = False,
    ) -> None:
        """Offer `video` and `audio`; with `vp9`, the video as VP9 only (as the page prefers
        it; the server must offer VP9: `rtc_vp9`, and `vp9_rtp.install_sender()` here)."""
        self.video, self.audio = video, audio
        if video is not None:
            sender = self.pc.addTrack(video)
            if vp9:
                prefer_vp9(self.pc, sender)
        if audio is not None:
            self.pc.addTrack(audio)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                self.offer_url, json={"sdp": offer.sdp, "type": offer.type}, headers=self.auth
            )
        assert response.status_code == 200, response.text
        answer = response.json()
        self.answer_sdp = answer["sdp"]
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))

    async def get(self, path: str = "") -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base_http, timeout=30) as http:
            response = await http.get(f"/api/sessions/{self.id}{path}", headers=self.auth)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    async def poll(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        """GET the session until `check(info)` holds (a REST counter has no event to await)."""
        async with asyncio.timeout(timeout):
            while True:
                info = await self.get()
                if check(info):
                    return info
                await asyncio.sleep(0.1)

    async def end(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_http, timeout=30) as http:
            response = await http.post(f"/api/sessions/{self.id}/end", headers=self.auth)
            assert response.status_code == 202, response.text

    async def close(self) -> None:
        await self.pc.close()
