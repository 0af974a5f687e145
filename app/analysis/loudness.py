"""Loudness of the microphone, one level a second: the minimal voice analysis until the full
voice analyser (speech rate, pauses, pitch) takes the `make_voice` hook.

Pure and synchronous: `process` runs in the session's audio executor.
"""

from __future__ import annotations

import math

import numpy as np

from app.frames import AudioAnalysis, AudioChunk

SILENCE_DBFS = -100.0  # the floor reported for digital silence instead of -inf
FULL_SCALE = 32768.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples in dB relative to full scale (a full-scale sine is -3 dBFS)."""
    if len(samples) == 0:
        return SILENCE_DBFS
    x = samples.astype(np.float64) / FULL_SCALE
    rms = math.sqrt(float(np.mean(x * x)))
    if rms <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(rms))


class LoudnessMeter:
    """Accumulates chunks into windows of `window_s` and reports each window's dBFS."""

    def __init__(self, window_s: float = 1.0, sample_rate: int = 16_000) -> None:
        self.window_s = window_s
        self.sample_rate = sample_rate
        self._window = int(window_s * sample_rate)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._start_t: float | None = None

    def process(self, chunk: AudioChunk) -> list[AudioAnalysis]:
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(f"expected {self.sample_rate} Hz audio, got {chunk.sample_rate}")
        if self._start_t is None:
            self._start_t = chunk.t
        elif abs(chunk.t - (self._start_t + self._buffered / self.sample_rate)) > 0.5:
            # The stream jumped (a reconnect): close the window at the gap.
            out = self.flush()
            self._start_t = chunk.t
            return out + self._take(chunk.samples)
        return self._take(chunk.samples)

    def _take(self, samples: np.ndarray) -> list[AudioAnalysis]:
        self._buffer.append(samples)
        self._buffered += len(samples)
        out: list[AudioAnalysis] = []
        if self._buffered < self._window:
            return out
        data = np.concatenate(self._buffer)
        while len(data) >= self._window:
            out.append(self._analyse(data[: self._window]))
            data = data[self._window :]
        self._buffer = [data] if len(data) else []
        self._buffered = len(data)
        return out

    def _analyse(self, window: np.ndarray) -> AudioAnalysis:
        assert self._start_t is not None
        t = self._start_t
        duration = len(window) / self.sample_rate
        self._start_t = t + duration
        return AudioAnalysis(t=round(t, 3), duration_s=duration, level_dbfs=level_dbfs(window))

    def flush(self) -> list[AudioAnalysis]:
        """The last partial window, if it holds at least a tenth of a second."""
        if self._buffered < self.sample_rate // 10 or self._start_t is None:
            self._buffer, self._buffered = [], 0
            return []
        analysis = self._analyse(np.concatenate(self._buffer))
        self._buffer, self._buffered = [], 0
        return [analysis]
