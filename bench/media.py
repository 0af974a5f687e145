"""Realistic media for the load benchmarks, made once and cached: a presenter's face moving on
every frame with sensor noise (`tests.fixtures.clips.moving_face_frames`) as JPEGs or VP9 for
the WebSocket and as VP8 packets for WebRTC, and speech (espeak-ng sentences with pauses and a
microphone's noise floor) as 16 kHz PCM for the WebSocket and Opus packets for WebRTC.

The VP8 and Opus packets are what a browser would send; replayed with fresh timestamps
(`aiortc` packetizes an `av.Packet` without encoding it), one load generator core carries many
WebRTC sessions instead of encoding every frame of every session.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

CACHE = Path("/tmp/coach-bench-media")
LOOP_S = 20.0  # the clip repeats after this long (sway 0.4 Hz, roll 0.25 Hz: whole periods)
PCM_RATE = 16_000
OPUS_RATE = 48_000
OPUS_FRAME = 960  # 20 ms, as browsers send
SENTENCES = (
    "today I would like to show you how our new product helps small teams work together",
    "it makes planning simple and keeps everyone on the same page",
    "let me walk you through the three most important features one by one",
)
PAUSES_S = (0.6, 1.4, 0.9)

T = TypeVar("T")


def _cached(name: str, make: Callable[[], T]) -> T:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.pkl"
    if path.exists():
        value: T = pickle.loads(path.read_bytes())
        return value
    value = make()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(value))
    tmp.replace(path)
    return value


def _frames(fps: float) -> list[np.ndarray]:
    from tests.fixtures.clips import moving_face_frames

    return moving_face_frames(round(LOOP_S * fps), fps)


def face_jpegs(fps: float, quality: int = 85) -> list[bytes]:
    """One loop of the moving, noisy face as JPEGs (what the page sends over the WebSocket)."""
    from tests.fixtures.clips import encode_jpeg

    return _cached(
        f"jpeg-{fps:g}-{quality}", lambda: [encode_jpeg(f, quality) for f in _frames(fps)]
    )


@dataclass(frozen=True, slots=True)
class RtpClip:
    fps: float
    kbps: int
    frames: list[bytes]  # one VP8 (or VP9) frame each; frames[0] is the only keyframe
    packets_per_frame: list[int]  # RTP packets aiortc cuts each frame into
    codec: str = "VP8"


def face_vp8(fps: float, kbps: int = 1000) -> RtpClip:
    """One loop of the moving, noisy face as VP8, encoded as aiortc's own encoder does
    (libvpx realtime, CBR at `kbps`), with the loop's first frame its only keyframe, so the
    loop replays without a decoder error."""

    def make() -> RtpClip:
        import av
        from aiortc.codecs.vpx import Vp8Encoder

        images = _frames(fps)
        codec = av.CodecContext.create("libvpx", "w")
        codec.width, codec.height = images[0].shape[1], images[0].shape[0]
        codec.pix_fmt = "yuv420p"
        codec.bit_rate = kbps * 1000
        codec.time_base = Fraction(1, round(fps))
        codec.gop_size = len(images) + 1
        codec.qmin, codec.qmax = 2, 56
        codec.options = {
            "bufsize": str(kbps * 1000),
            "cpu-used": "-6",
            "deadline": "realtime",
            "lag-in-frames": "0",
            "minrate": str(kbps * 1000),
            "maxrate": str(kbps * 1000),
            "noise-sensitivity": "4",
            "overshoot-pct": "15",
            "partitions": "0",
            "static-thresh": "1",
            "undershoot-pct": "100",
        }
        out: list[bytes] = []
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, round(fps))
            out.extend(bytes(p) for p in codec.encode(frame))
        out.extend(bytes(p) for p in codec.encode(None))
        if len(out) != len(images):
            raise RuntimeError(f"{len(out)} VP8 packets for {len(images)} frames")
        packets = [len(Vp8Encoder._packetize(data, 0)) for data in out]
        return RtpClip(fps, kbps, out, packets)

    return _cached(f"vp8-{fps:g}-{kbps}", make)


def _layered(layers: int) -> dict[str, Any]:
    """encode_vp9's options for `layers` temporal layers (2: "L1T2", error resilient, as
    WebRTC's VP9 encoder makes it: every other frame droppable)."""
    return {"temporal_layers": layers, "error_resilient": layers > 1}


def _layers_key(layers: int) -> str:
    return "" if layers == 1 else f"-l1t{layers}"


def face_vp9(fps: float, kbps: int = 1000, layers: int = 1) -> list[bytes]:
    """One loop of the moving, noisy face as the VP9 a browser's WebCodecs encoder sends the
    page's way (libvpx realtime, a keyframe every 2 s, as static/transport.js asks), so the
    loop starts on a keyframe and replays without a decoder error. `layers`: temporal layers."""
    from tests.fixtures.clips import encode_vp9

    every = round(2 * fps)
    images = _frames(fps)
    if len(images) % every:
        raise ValueError(f"a {len(images)}-frame loop does not end before a keyframe")
    return _cached(
        f"vp9-{fps:g}-{kbps}{_layers_key(layers)}",
        lambda: encode_vp9(images, fps, keyframe_every=every, kbps=kbps, **_layered(layers)),
    )


def face_vp9_rtp(fps: float, kbps: int = 1000, layers: int = 1) -> RtpClip:
    """The loop as the VP9 a browser's WebRTC encoder sends (libvpx realtime, one spatial
    layer, a keyframe only at the start and when the receiver asks: the loop's first frame is
    its only keyframe), with the RTP packets tests/support/vp9_rtp.py cuts each frame into.
    `layers`: temporal layers."""
    from tests.fixtures.clips import encode_vp9
    from tests.support.vp9_rtp import packetize

    images = _frames(fps)

    def make() -> RtpClip:
        frames = encode_vp9(images, fps, keyframe_every=len(images), kbps=kbps, **_layered(layers))
        packets = [len(packetize(frame, 0)) for frame in frames]
        return RtpClip(fps, kbps, frames, packets, codec="VP9")

    return _cached(f"vp9-rtp-{fps:g}-{kbps}{_layers_key(layers)}", make)


def speech_pcm() -> np.ndarray:
    """A speaker: three English sentences (espeak-ng) with pauses between them, over a quiet
    microphone noise floor (about -60 dBFS); int16 mono at 16 kHz, about 15 s, looped."""

    def make() -> np.ndarray:
        from tests.analysis.espeak_speech import espeak

        parts: list[np.ndarray] = []
        for text, pause in zip(SENTENCES, PAUSES_S, strict=True):
            parts.append(espeak(text, "en", 150).astype(np.float32))
            parts.append(np.zeros(int(pause * PCM_RATE), np.float32))
        speech = np.concatenate(parts)
        noise = np.random.default_rng(1).normal(0.0, 30.0, speech.shape)
        return np.clip(speech + noise, -32768, 32767).astype(np.int16)

    key = hashlib.sha1("|".join(SENTENCES).encode()).hexdigest()[:8]
    return _cached(f"speech-{key}", make)


def speech_opus() -> list[bytes]:
    """`speech_pcm()` as 20 ms Opus packets at 48 kHz mono (what a browser's microphone
    track sends)."""

    def make() -> list[bytes]:
        import av

        pcm = speech_pcm()
        # 16 kHz -> 48 kHz by libswresample
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = PCM_RATE
        resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
        up = np.concatenate(
            [
                f.to_ndarray().reshape(-1)
                for f in [*resampler.resample(frame), *resampler.resample(None)]
            ]
        )
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = OPUS_RATE
        codec.layout = "mono"
        codec.format = "s16"
        codec.bit_rate = 32_000
        packets: list[bytes] = []
        for i in range(len(up) // OPUS_FRAME):
            chunk = up[i * OPUS_FRAME : (i + 1) * OPUS_FRAME].reshape(1, -1)
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="s16", layout="mono")
            f.sample_rate = OPUS_RATE
            f.pts = i * OPUS_FRAME
            f.time_base = Fraction(1, OPUS_RATE)
            packets.extend(bytes(p) for p in codec.encode(f))
        return packets

    key = hashlib.sha1("|".join(SENTENCES).encode()).hexdigest()[:8]
    return _cached(f"opus-{key}", make)
