"""Recording benchmark: what it costs to record a session and how soon the file is ready.

Feeds synthetic 640x480 sessions at 15 fps (timestamps synthetic, frames fed as fast as the
encoder takes them) through `SessionRecorder`, then measures:

- stop s: `stop()` (flush the encoders, finish the segment, join the segments into
  recording.webm) once the encoder has caught up, as it has at the end of a live session;
- x real time: media seconds encoded per wall second while feeding (the encoder's headroom;
  wall-clock, so it drops when other processes share the cores);
- x RT per core: media seconds per CPU second of the whole process, i.e. the speed on one
  otherwise idle core (robust to load from other processes);
- CPU % at 1x: process CPU seconds per media second, i.e. the share of one core the
  recorder takes during a live session;
- MB/min: recording size per minute (VP9 at `vp9_bitrate` plus Opus at 32 kb/s).

The frames are a real photo (skimage's astronaut) panning and swaying with sensor-like noise,
so the encoder does about the work a webcam gives it. Usage:

    python -m bench.finalize                      # 1, 5, 10 min, default settings, 2 cores
    python -m bench.finalize --one-core           # pinned to one core, vp9_threads=1
    python -m bench.finalize --minutes 1 --sweep  # cpu-used 5..8 (tuning)
    python -m bench.finalize --minutes 1 --crf 0  # bitrate-only VP9, to compare
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import psutil
from skimage import data as skdata

from app.config import Settings
from app.frames import AudioChunk, VideoFrame
from app.media.recorder import SessionRecorder

FPS = 15.0
WIDTH, HEIGHT = 640, 480
POOL_FRAMES = 150  # 10 s of distinct frames, looped
AUDIO_RATE = 16000
AUDIO_EVERY = 3  # frames between audio chunks: 0.2 s chunks at 15 fps
AUDIO_CHUNK = round(AUDIO_RATE * AUDIO_EVERY / FPS)


def frame_pool() -> list[np.ndarray]:
    photo = cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR)
    big = cv2.resize(photo, (WIDTH + 160, HEIGHT + 120), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    pool = []
    for i in range(POOL_FRAMES):
        phase = 2 * np.pi * i / POOL_FRAMES
        x = int(80 + 60 * np.sin(phase))
        y = int(60 + 20 * np.sin(2 * phase))
        crop = big[y : y + HEIGHT, x : x + WIDTH].astype(np.int16)
        noisy = crop + rng.normal(0, 2.0, crop.shape).astype(np.int16)
        pool.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return pool


@dataclass(frozen=True)
class Run:
    minutes: float
    stop_s: float
    realtime_x: float
    per_core_x: float
    cpu_pct: float
    mb_per_min: float
    frames: int
    dropped: int


def voice_like() -> np.ndarray:
    """60 s of 16 kHz noise shaped into syllable-like bursts (Opus works as for speech)."""
    rng = np.random.default_rng(1)
    t = np.arange(60 * AUDIO_RATE) / AUDIO_RATE
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, 1) * (np.sin(2 * np.pi * 0.3 * t) > -0.5)
    tone = np.sin(2 * np.pi * 160 * t) + 0.5 * rng.normal(size=t.size)
    return (envelope * tone * 6000).astype(np.int16)


def run_once(minutes: float, settings: Settings, pool: list[np.ndarray], voice: np.ndarray) -> Run:
    total = round(minutes * 60 * FPS)
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
        recorder = SessionRecorder(Path(tmp), settings)
        recorder.start()
        cpu0 = sum(process.cpu_times()[:2])
        wall0 = time.perf_counter()
        for i in range(total):
            # Faster than real time, but never past the queue: nothing is dropped.
            while recorder.queue_depth >= settings.recording.recording_queue - 1:
                time.sleep(0.0005)
            t = i / FPS
            recorder.push_video(VideoFrame(index=i, t=t, image=pool[i % len(pool)], arrived_at=t))
            if i % AUDIO_EVERY == 0:  # 0.2 s of microphone audio
                start = round(t * AUDIO_RATE) % (len(voice) - AUDIO_CHUNK)
                recorder.push_audio(AudioChunk(t=t, samples=voice[start : start + AUDIO_CHUNK]))
        while recorder.queue_depth > 0:
            time.sleep(0.0005)
        feed_s = time.perf_counter() - wall0
        stop0 = time.perf_counter()
        result = asyncio.run(recorder.stop())
        stop_s = time.perf_counter() - stop0
        cpu_s = sum(process.cpu_times()[:2]) - cpu0
        assert result.path is not None and result.has_audio
        size = result.path.stat().st_size
    media_s = total / FPS
    return Run(
        minutes=minutes,
        stop_s=stop_s,
        realtime_x=media_s / feed_s,
        per_core_x=media_s / cpu_s,
        cpu_pct=100 * cpu_s / media_s,
        mb_per_min=size / 1e6 / minutes,
        frames=result.frames_encoded,
        dropped=result.frames_dropped,
    )


def median_run(runs: list[Run]) -> Run:
    return Run(
        minutes=runs[0].minutes,
        stop_s=statistics.median(r.stop_s for r in runs),
        realtime_x=statistics.median(r.realtime_x for r in runs),
        per_core_x=statistics.median(r.per_core_x for r in runs),
        cpu_pct=statistics.median(r.cpu_pct for r in runs),
        mb_per_min=statistics.median(r.mb_per_min for r in runs),
        frames=runs[0].frames,
        dropped=max(r.dropped for r in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 10.0])
    parser.add_argument("--runs", type=int, default=3, help="runs for sessions <= 1 min")
    parser.add_argument("--one-core", action="store_true", help="pin to one CPU, 1 VP9 thread")
    parser.add_argument("--sweep", action="store_true", help="try cpu-used 5..8")
    parser.add_argument("--threads", type=int, help="override vp9_threads")
    parser.add_argument("--crf", type=int, help="override vp9_crf (0: bitrate only)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log stop() breakdowns")
    args = parser.parse_args()
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")

    base = Settings()
    if args.one_core:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        base = base.updated(vp9_threads=1)
    if args.threads is not None:
        base = base.updated(vp9_threads=args.threads)
    if args.crf is not None:
        base = base.updated(vp9_crf=args.crf)
    configs = [base]
    if args.sweep:
        configs = [base.updated(vp9_cpu_used=c) for c in (5, 6, 7, 8)]
    cores = len(os.sched_getaffinity(0))
    pool = frame_pool()
    voice = voice_like()
    print(f"# {cores} core(s), {WIDTH}x{HEIGHT} @ {FPS:g} fps, python {sys.version.split()[0]}")
    print(f"# load average before: {os.getloadavg()[0]:.1f}")
    print(
        "| session | cpu-used | threads | stop s | x real time | x RT per core "
        "| CPU % at 1x | MB/min | frames |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for settings in configs:
        for minutes in args.minutes:
            runs = [run_once(minutes, settings, pool, voice)]
            if minutes <= 1.0:
                runs += [run_once(minutes, settings, pool, voice) for _ in range(args.runs - 1)]
            row = median_run(runs)
            label = f"{minutes:g} min" + (f" (median of {len(runs)})" if len(runs) > 1 else "")
            print(
                f"| {label} | {settings.recording.vp9_cpu_used} | {settings.recording.vp9_threads} "
                f"| {row.stop_s:.2f} | {row.realtime_x:.1f} | {row.per_core_x:.1f} "
                f"| {row.cpu_pct:.0f} "
                f"| {row.mb_per_min:.1f} | {row.frames} ({row.dropped} dropped) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
