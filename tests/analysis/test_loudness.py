from __future__ import annotations

import numpy as np
import pytest

from app.analysis.loudness import SILENCE_DBFS, LoudnessMeter, level_dbfs
from app.frames import AudioChunk

RATE = 16_000


def tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def test_level_of_a_sine_and_of_silence() -> None:
    assert level_dbfs(tone(1.0, 1.0)) == pytest.approx(-3.01, abs=0.05)
    assert level_dbfs(tone(1.0, 0.1)) == pytest.approx(-23.01, abs=0.05)
    assert level_dbfs(np.zeros(RATE, np.int16)) == SILENCE_DBFS
    assert level_dbfs(np.zeros(0, np.int16)) == SILENCE_DBFS


def test_one_level_a_second_from_chunks_of_any_size() -> None:
    meter = LoudnessMeter()
    audio = np.concatenate([tone(1.0, 0.5), np.zeros(RATE, np.int16), tone(0.5, 0.5)])
    out = []
    for start in range(0, len(audio), 700):  # chunks that do not divide a second
        out += meter.process(AudioChunk(t=10.0 + start / RATE, samples=audio[start : start + 700]))
    assert [round(a.t, 3) for a in out] == [10.0, 11.0]
    assert out[0].level_dbfs == pytest.approx(-9.03, abs=0.1)
    assert out[1].level_dbfs == SILENCE_DBFS
    rest = meter.flush()
    assert len(rest) == 1 and rest[0].t == pytest.approx(12.0) and rest[0].duration_s == 0.5
    assert meter.flush() == []


def test_a_gap_in_the_stream_closes_the_window() -> None:
    meter = LoudnessMeter()
    assert meter.process(AudioChunk(t=0.0, samples=tone(0.5, 0.5))) == []
    out = meter.process(AudioChunk(t=5.0, samples=tone(1.0, 0.5)))
    assert [(a.t, a.duration_s) for a in out] == [(0.0, 0.5), (5.0, 1.0)]


def test_other_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        LoudnessMeter().process(AudioChunk(t=0.0, samples=tone(0.1, 0.5), sample_rate=48_000))
