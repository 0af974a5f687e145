"""Run by test_recorder's kill test: records paced frames until it is killed.

Usage: python recording_child.py DIRECTORY SEGMENT_S
Prints "<index> <t>" after each accepted frame, so the parent knows what was received.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from app.config import Settings
from app.frames import AudioChunk, VideoFrame
from app.media.recorder import SessionRecorder

FPS = 15.0


def main() -> None:
    directory = Path(sys.argv[1])
    settings = Settings(recording_segment_s=float(sys.argv[2]))
    recorder = SessionRecorder(directory, settings)
    recorder.start()
    base = np.zeros((240, 320, 3), dtype=np.uint8)
    base[:, :, 1] = np.linspace(0, 255, 320, dtype=np.uint8)
    tone = (np.sin(np.arange(1600) / 16000 * 2 * np.pi * 440) * 8000).astype(np.int16)
    started = time.monotonic()
    index = 0
    while True:
        # Paced like a camera: frame `index` is due at index / FPS.
        due = started + index / FPS
        time.sleep(max(0.0, due - time.monotonic()))
        t = time.monotonic() - started
        image = np.roll(base, index * 4, axis=1)
        if recorder.push_video(VideoFrame(index=index, t=t, image=image, arrived_at=t)):
            print(f"{index} {t:.4f}", flush=True)
        recorder.push_audio(AudioChunk(t=t, samples=tone[: int(16000 / FPS)]))
        index += 1


if __name__ == "__main__":
    main()
