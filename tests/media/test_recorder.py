from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
import pytest

from app.config import Settings
from app.frames import AudioChunk, EncodedVideo, VideoFrame
from app.media.images import fit_within
from app.media.recorder import (
    RECORDING_NAME,
    SEGMENTS_DIR,
    OpusEncoder,
    RecordingResult,
    SessionRecorder,
    recover_recording,
)
from app.media.vp9 import read_vp9_header
from app.media.webm import list_segments, probe_recording
from tests.fixtures.clips import Segment, encode_vp9, labelled_clip, moving_face_frames

REPO_ROOT = Path(__file__).resolve().parents[2]


def scene(width: int, height: int) -> np.ndarray:
    """A gradient with a bright block: enough structure for the encoder to do real work."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[:, :, 2] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    image[height // 4 : height // 2, width // 4 : width // 2] = 255
    return image


def frames_at(times: Iterable[float], width: int = 320, height: int = 240) -> list[VideoFrame]:
    base = scene(width, height)
    return [
        VideoFrame(index=i, t=t, image=np.roll(base, i * 3, axis=1), arrived_at=t)
        for i, t in enumerate(times)
    ]


async def record(
    directory: Path,
    settings: Settings,
    frames: list[VideoFrame],
    audio: list[AudioChunk] | None = None,
) -> RecordingResult:
    """Push everything in media-time order, at once; the queues are made big enough that
    nothing is dropped (a live session's encoder keeps up; bench/finalize.py measures that)."""
    settings = settings.updated(
        recording_queue=len(frames) + 1, recording_audio_queue=len(audio or []) + 1
    )
    recorder = SessionRecorder(directory, settings)
    recorder.start()
    items: list[VideoFrame | AudioChunk] = [*frames, *(audio or [])]
    items.sort(key=lambda item: item.t)
    for item in items:
        if isinstance(item, VideoFrame):
            assert recorder.push_video(item)
        else:
            assert recorder.push_audio(item)
    return await recorder.stop()


def decoded_video_pts(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0) if frame.time is not None]


@pytest.fixture
def settings() -> Settings:
    return Settings(recording_segment_s=4.0)


def test_fit_within_keeps_aspect_and_even_sides() -> None:
    assert fit_within(640, 480, 1280, 720, even=True) == (640, 480)  # never upscaled
    assert fit_within(1920, 1080, 1280, 720, even=True) == (1280, 720)
    assert fit_within(1080, 1920, 1280, 720, even=True) == (404, 720)  # portrait: height-bound
    assert fit_within(1001, 601, 1280, 720, even=True) == (1000, 600)  # odd sides become even
    # rounded, not floored: float error must not cost the bound side two pixels (1280x718)
    assert fit_within(1366, 768, 1280, 720, even=True) == (1280, 720)
    width, height = fit_within(4000, 3000, 1280, 720, even=True)
    assert (width, height) == (960, 720)
    with pytest.raises(ValueError):
        fit_within(0, 10, 1280, 720, even=True)


async def test_constant_rate_recording_is_vp9_with_wall_clock_duration(
    tmp_path: Path, settings: Settings
) -> None:
    frames = frames_at(i / 15 for i in range(300))  # 20 s at 15 fps, 5 segments
    result = await record(tmp_path, settings, frames)
    assert result.path is not None

    assert result.path == tmp_path / RECORDING_NAME
    assert result.frames_encoded == 300 and result.frames_dropped == 0
    assert not result.has_audio and not result.recovered and result.error is None
    assert not (tmp_path / SEGMENTS_DIR).exists()  # segments are removed once joined
    probe = probe_recording(result.path)
    assert probe.video_codec == "vp9"
    assert (probe.width, probe.height) == (320, 240)
    assert probe.video_frames >= 0.95 * len(frames)
    assert result.duration_s == pytest.approx(20.0, rel=0.05)
    decoded = decoded_video_pts(result.path)
    assert len(decoded) == 300
    assert decoded == pytest.approx([frame.t for frame in frames], abs=0.001)


async def test_variable_frame_rate_keeps_real_timestamps(
    tmp_path: Path, settings: Settings
) -> None:
    rng = np.random.default_rng(7)
    gaps = rng.uniform(0.02, 0.3, size=120)
    gaps[60] = 2.5  # the camera froze for a moment
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    frames = frames_at(times.tolist())
    result = await record(tmp_path, settings, frames)
    assert result.path is not None

    span = float(times[-1] - times[0])
    assert result.frames_encoded == len(frames)
    assert result.duration_s == pytest.approx(span, rel=0.05)
    decoded = decoded_video_pts(result.path)
    assert decoded == pytest.approx(times.tolist(), abs=0.001)


async def test_audio_is_in_the_same_file_and_in_sync(tmp_path: Path, settings: Settings) -> None:
    frames = frames_at(i / 15 for i in range(300))
    rate = 16000
    chunks: list[AudioChunk] = []
    beep_at = 12.0
    for k in range(40):  # 0.5 s chunks over 20 s, with 10-11 s lost (a network hiccup)
        t = k * 0.5
        if t in (10.0, 10.5):
            continue
        times = t + np.arange(rate // 2) / rate
        loud = (times >= beep_at) & (times < beep_at + 0.3)
        samples = np.where(loud, np.sin(2 * np.pi * 1000 * times) * 20000, 0.0)
        chunks.append(AudioChunk(t=t, samples=samples.astype(np.int16)))
    result = await record(tmp_path, settings, frames, chunks)
    assert result.path is not None

    assert result.has_audio
    probe = probe_recording(result.path)
    assert probe.audio_codec == "opus"
    assert probe.video_end_s is not None and probe.audio_end_s is not None
    assert abs(probe.audio_end_s - probe.video_end_s) < 0.2
    # The beep must play when it was heard, even after the lost second of audio.
    with av.open(str(result.path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == 48000
        onset: float | None = None
        for frame in container.decode(audio=0):
            if frame.time is None:
                continue
            samples = frame.to_ndarray().reshape(-1)  # float, full scale 1.0
            loud_at = np.flatnonzero(np.abs(samples) > 0.3)
            if loud_at.size:
                onset = float(frame.time) + int(loud_at[0]) / frame.sample_rate
                break
    assert onset == pytest.approx(beep_at, abs=0.05)


def _opus_round_trip(settings: Settings, samples: np.ndarray) -> tuple[bytes, np.ndarray]:
    """16 kHz speech through the recorder's Opus encoder: (the packets, decoded at 48 kHz)."""
    encoder = OpusEncoder(settings)
    packets = []
    for start in range(0, samples.size, 1600):  # 100 ms chunks, as the page sends them
        chunk = AudioChunk(t=start / 16000, samples=samples[start : start + 1600])
        packets += encoder.encode(chunk)
    packets += encoder.flush()
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate, decoder.layout = 48000, "mono"
    decoded = [f.to_ndarray().reshape(-1) for p in packets for f in decoder.decode(p)]
    return b"".join(bytes(p) for p in packets), np.concatenate(decoded)


def test_opus_complexity_reaches_the_encoder_and_keeps_the_speech(settings: Settings) -> None:
    """`recording_audio_complexity` is libopus' own knob (the default, 5, costs a third of the
    CPU of 10): the packets differ between 10 and the default, and at the default the
    speech's loudness contour survives (louder where it was spoken, quiet in its pauses)."""
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 4) / 16000
    voiced = (t % 1.0) < 0.6  # 0.6 s of "speech", 0.4 s pause, four times
    tone = np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 360 * t + 1.0)
    speech = np.where(voiced, tone * 8000, 0.0) + rng.normal(0.0, 30.0, t.size)
    samples = speech.astype(np.int16)
    low, decoded = _opus_round_trip(settings, samples)
    high, _ = _opus_round_trip(settings.updated(recording_audio_complexity=10), samples)
    assert settings.recording.recording_audio_complexity == 5
    assert low != high
    # per 100 ms window of the 48 kHz output (the codec's delay is well under a window)
    windows = decoded[: decoded.size // 4800 * 4800].reshape(-1, 4800)
    rms = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=1))
    spoken = [rms[k * 10 + 1 : k * 10 + 5].min() for k in range(4)]  # 0.1-0.5 s of each second
    paused = [rms[k * 10 + 7 : k * 10 + 9].max() for k in range(4)]  # 0.7-0.9 s
    assert min(spoken) > 20 * max(paused), (spoken, paused)


async def test_large_frames_are_downscaled_and_size_changes_follow_the_first(
    tmp_path: Path,
) -> None:
    settings = Settings(recording_max_width=640, recording_max_height=360)
    frames = frames_at((i / 15 for i in range(20)), width=1920, height=1080)
    frames += [
        VideoFrame(index=20 + i, t=(20 + i) / 15, image=scene(1280, 720), arrived_at=0.0)
        for i in range(10)
    ]
    result = await record(tmp_path, settings, frames)
    assert result.path is not None

    probe = probe_recording(result.path)
    assert (probe.width, probe.height) == (640, 360)
    with av.open(str(result.path)) as container:
        sizes = {(frame.width, frame.height) for frame in container.decode(video=0)}
    assert sizes == {(640, 360)}
    assert result.frames_encoded == 30


async def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    settings = Settings(recording_queue=1)
    recorder = SessionRecorder(tmp_path, settings)
    frame_before_start = frames_at([0.0])[0]
    assert not recorder.push_video(frame_before_start)  # not started: not accepted
    recorder.start()
    # 1080p frames pushed in a tight loop: each takes the encoder milliseconds, a push
    # microseconds, so a one-frame queue must overflow.
    accepted = [recorder.push_video(f) for f in frames_at([i / 30 for i in range(40)], 1920, 1080)]
    result = await recorder.stop()

    assert sum(accepted) >= 1 and not all(accepted)
    assert result.frames_encoded == sum(accepted)
    assert result.frames_dropped == 1 + accepted.count(False)
    assert not recorder.push_video(frame_before_start)  # stopped: not accepted
    assert await recorder.stop() is result  # idempotent


async def test_bad_frame_is_dropped_and_recording_goes_on(
    tmp_path: Path, settings: Settings
) -> None:
    # Room for every frame at once: this test is about the bad frame, not the queue bound.
    recorder = SessionRecorder(tmp_path, settings.updated(recording_queue=128))
    recorder.start()
    frames = frames_at(i / 15 for i in range(60))
    for frame in frames[:30]:
        assert recorder.push_video(frame)
    gray = VideoFrame(index=99, t=2.0, image=np.zeros((240, 320), np.uint8), arrived_at=0.0)
    assert recorder.push_video(gray)
    for frame in frames[30:]:
        assert recorder.push_video(frame)
    result = await recorder.stop()

    assert result.error is None
    assert result.frames_encoded == 60 and result.frames_dropped == 1
    assert result.path is not None and probe_recording(result.path).video_frames == 60


async def test_storage_failure_stops_recording_but_keeps_what_was_written(
    tmp_path: Path,
) -> None:
    settings = Settings(recording_segment_s=1.0)
    # A directory squatting on the second segment's file name: opening it must fail.
    (tmp_path / SEGMENTS_DIR / "seg_00001.webm.part").mkdir(parents=True)
    recorder = SessionRecorder(tmp_path, settings)
    recorder.start()
    for frame in frames_at(i / 15 for i in range(45)):
        assert recorder.push_video(frame)
    result = await recorder.stop()

    assert result.error is not None
    assert result.frames_encoded == 15  # the first second, in the first segment
    assert result.frames_dropped == 30  # every frame that is not in the recording
    assert result.path is not None
    assert decoded_video_pts(result.path) == pytest.approx([i / 15 for i in range(15)], abs=0.001)


async def test_nothing_pushed_means_no_recording(tmp_path: Path, settings: Settings) -> None:
    recorder = SessionRecorder(tmp_path, settings)
    recorder.start()
    result = await recorder.stop()
    assert result.path is None and result.frames_encoded == 0
    assert recover_recording(tmp_path, settings) is None


async def test_recover_reports_an_already_joined_recording(
    tmp_path: Path, settings: Settings
) -> None:
    result = await record(tmp_path, settings, frames_at(i / 15 for i in range(45)))
    assert result.path is not None
    recovered = recover_recording(tmp_path, settings)
    assert recovered is not None and recovered.recovered
    assert recovered.path == result.path and recovered.frames_encoded == 45


def test_killed_recording_is_recovered(tmp_path: Path) -> None:
    """SIGKILL a process that records paced frames; what it left must be recoverable with
    every frame received up to 2 s before the kill."""
    kill_after_s = 5.0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    received: list[tuple[int, float]] = []
    with subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("recording_child.py")), str(tmp_path), "2"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        try:
            assert child.stdout is not None
            for line in child.stdout:
                index, t = line.split()
                received.append((int(index), float(t)))
                if received[-1][1] >= kill_after_s:
                    break
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()  # no-op when already dead; ends it if an assertion fired first
    assert received and received[-1][1] >= kill_after_s, "the recording child died early"

    segments = list_segments(tmp_path / SEGMENTS_DIR)
    assert any(path.name.endswith(".part") for path in segments)  # it really was cut short
    recovered = recover_recording(tmp_path, Settings())

    assert recovered is not None and recovered.recovered
    assert recovered.path == tmp_path / RECORDING_NAME
    t_kill = received[-1][1]
    must_hold = [index for index, t in received if t <= t_kill - 2.0]
    decoded = decoded_video_pts(recovered.path)
    story = f"killed at {t_kill:.2f} s after {len(received)} frames; recovered {len(decoded)}"
    assert len(decoded) >= len(must_hold), story
    assert max(decoded) >= t_kill - 2.0 - 1 / 15, story
    assert probe_recording(recovered.path).video_codec == "vp9"
    assert not (tmp_path / SEGMENTS_DIR).exists()


async def test_frames_at_camera_rate_are_all_recorded(tmp_path: Path, settings: Settings) -> None:
    """Paced like a 30 fps 640x480 camera with the default queue: the encoder keeps up."""
    recorder = SessionRecorder(tmp_path, settings)
    recorder.start()
    frames = frames_at((i / 30 for i in range(60)), width=640, height=480)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for frame in frames:
        await asyncio.sleep(max(0.0, started + frame.t - loop.time()))  # the camera's pace
        recorder.push_video(frame)
    result = await recorder.stop()

    assert result.frames_encoded >= 0.95 * len(frames)
    assert result.frames_encoded + result.frames_dropped == len(frames)
    assert result.duration_s == pytest.approx(2.0, rel=0.05)


async def test_the_recorder_writes_in_batches_and_loses_nothing(
    tmp_path: Path, settings: Settings
) -> None:
    """With its queue empty the worker waits `recorder_batch_s` (here the most allowed, 1 s)
    and then writes what came meanwhile in one go: frames at a camera's pace wake it at most
    once per wait, not once a frame; frames pushed during a wait, the last ones while `stop()`
    cuts it short, are all recorded, in order."""
    batch_s = 1.0
    recorder = SessionRecorder(tmp_path, settings.updated(recorder_batch_s=batch_s))
    recorder.start()
    frames = frames_at([i / 15 for i in range(45)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    for frame in frames:
        await asyncio.sleep(max(0.0, started + frame.t - loop.time()))  # the camera's pace
        assert recorder.push_video(frame)
    elapsed = loop.time() - started
    result = await recorder.stop()

    assert result.frames_encoded == len(frames) and result.frames_dropped == 0
    assert recorder.batches <= elapsed / batch_s + 2  # at most one wake-up per wait
    assert result.path is not None
    assert decoded_video_pts(result.path) == pytest.approx([f.t for f in frames], abs=0.002)


async def test_audio_joining_late_is_kept_in_sync(tmp_path: Path, settings: Settings) -> None:
    """Audio that starts after the first segment opened (a WebRTC audio track arriving
    late) changes the tracks mid-session; the recording still has both, in place."""
    frames = frames_at(i / 15 for i in range(150))  # 10 s
    rate = 16000
    chunks = [
        AudioChunk(t=5.0 + k * 0.25, samples=np.full(rate // 4, 3000, dtype=np.int16))
        for k in range(20)  # 5 s .. 10 s
    ]
    result = await record(tmp_path, settings, frames, chunks)
    assert result.path is not None

    assert result.has_audio and result.frames_encoded == 150
    assert decoded_video_pts(result.path) == pytest.approx([f.t for f in frames], abs=0.001)
    with av.open(str(result.path)) as container:
        audio_times = [float(p.pts * p.time_base) for p in container.demux(audio=0) if p.pts]
    assert min(audio_times) == pytest.approx(5.0, abs=0.05)
    probe = probe_recording(result.path)
    assert probe.audio_end_s is not None and probe.video_end_s is not None
    assert abs(probe.audio_end_s - probe.video_end_s) < 0.2


def _decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))


async def test_recorded_picture_matches_what_was_sent(tmp_path: Path, settings: Settings) -> None:
    # A real photo (colours, skin, edges): the recording shows it with the colours it was sent
    # in, whichever 4:2:0 conversion the encoder is fed by.
    photo = np.ascontiguousarray(labelled_clip(1.0, [Segment("frontal", 1.0)])[0].image)
    frames = [
        VideoFrame(index=i, t=i / 15, image=np.roll(photo, i * 2, axis=1), arrived_at=0.0)
        for i in range(30)
    ]
    result = await record(tmp_path, settings, frames)
    assert result.path is not None
    decoded = _decoded_frames(result.path)
    assert len(decoded) == len(frames)
    scores = [_psnr(got, sent.image) for got, sent in zip(decoded, frames, strict=True)]
    # the realtime encoder's first keyframe is rough (~26 dB, bitrate-only mode too), then
    # the picture settles well above 30 dB
    assert min(scores) > 24.0 and float(np.median(scores)) > 33.0, scores
    # a colour swap (BGR read as RGB) or a range error would move the means far more than this
    for channel in range(3):
        sent_mean = float(frames[-1].image[:, :, channel].mean())
        assert abs(float(decoded[-1][:, :, channel].mean()) - sent_mean) < 3.0


async def test_constrained_quality_spends_few_bits_on_a_still_picture(
    tmp_path: Path, settings: Settings
) -> None:
    photo = np.ascontiguousarray(labelled_clip(1.0, [Segment("frontal", 1.0)])[0].image)
    still = [VideoFrame(index=i, t=i / 15, image=photo, arrived_at=0.0) for i in range(90)]
    quality = await record(tmp_path / "crf", settings, still)
    bitrate = await record(tmp_path / "cbr", settings.updated(vp9_crf=0), still)
    assert quality.path is not None and bitrate.path is not None
    assert quality.path.stat().st_size < 0.5 * bitrate.path.stat().st_size
    assert float(np.median([_psnr(got, photo) for got in _decoded_frames(quality.path)])) > 33.0


async def test_the_clients_vp9_is_muxed_unchanged_across_segments_and_late_audio(
    tmp_path: Path,
) -> None:
    """The client's own VP9 (the WebSocket's `VP91` messages): segments open at its
    keyframes, audio joining mid-segment cuts one at a delta frame, and the recording still
    holds every frame as sent, decodable from start to end, in time with the audio."""
    settings = Settings(recording_segment_s=1.0)
    images = moving_face_frames(150, 15.0, size=(320, 240))
    chunks = encode_vp9(images, 15.0, keyframe_every=10)
    frames = []
    for i, data in enumerate(chunks):
        header = read_vp9_header(data)
        frames.append(EncodedVideo(i, i / 15, data, header.keyframe, header.width, header.height))
    rate = 16000
    audio = [
        AudioChunk(t=5.0 + k * 0.25, samples=np.full(rate // 4, 3000, dtype=np.int16))
        for k in range(20)
    ]
    settings = settings.updated(recording_queue=200, recording_audio_queue=50)
    recorder = SessionRecorder(tmp_path, settings)
    recorder.start()
    for item in sorted([*frames, *audio], key=lambda item: item.t):
        if isinstance(item, EncodedVideo):
            assert recorder.push_video(item)
        else:
            assert recorder.push_audio(item)
    result = await recorder.stop()
    assert result.path is not None and result.has_audio
    assert result.frames_encoded == 150 and result.frames_dropped == 0

    with av.open(str(result.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("vp9", 320, 240)
        packets = [p for p in container.demux(stream) if p.size]
        assert [bytes(p) for p in packets] == chunks
        assert [p.is_keyframe for p in packets] == [f.keyframe for f in frames]
    assert decoded_video_pts(result.path) == pytest.approx([f.t for f in frames], abs=0.001)
    probe = probe_recording(result.path)
    assert probe.audio_end_s is not None and probe.video_end_s is not None
    assert abs(probe.audio_end_s - probe.video_end_s) < 0.2


async def test_after_a_dropped_vp9_frame_the_recorder_waits_for_a_keyframe(
    tmp_path: Path,
) -> None:
    """The frames after a dropped one cannot be decoded without it: they are dropped too,
    until the next keyframe, so the recording never holds a broken run."""
    chunks = encode_vp9(moving_face_frames(30, 15.0, size=(320, 240)), 15.0, keyframe_every=10)
    frames = []
    for i, data in enumerate(chunks):
        header = read_vp9_header(data)
        frames.append(EncodedVideo(i, i / 15, data, header.keyframe, header.width, header.height))
    recorder = SessionRecorder(tmp_path, Settings())
    assert not recorder.push_video(frames[0])  # not started yet: dropped
    recorder.start()
    accepted = [recorder.push_video(f) for f in frames[1:]]
    result = await recorder.stop()

    assert accepted == [False] * 9 + [True] * 20  # frames 1-9 wait for the keyframe at 10
    assert result.path is not None and result.frames_dropped == 10
    with av.open(str(result.path)) as container:
        assert [bytes(p) for p in container.demux(video=0) if p.size] == chunks[10:]
