"""The voice stage on speech made by espeak-ng at known rates, with silences of known length."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from app.analysis.voice import AudioFormatError, VoiceAnalyzer, voice_conditions
from app.config import Settings
from app.frames import AudioAnalysis, AudioChunk, Language
from tests.analysis.espeak_speech import RATES_WPM, Clip, espeak, silence

SETTINGS = Settings()


def analyse(
    clip: Clip | np.ndarray, language: Language, chunk_s: float = 0.1, t0: float = 0.0
) -> list[AudioAnalysis]:
    samples = clip.samples if isinstance(clip, Clip) else clip
    analyzer = VoiceAnalyzer(language, SETTINGS)
    step = round(chunk_s * 16000)
    out: list[AudioAnalysis] = []
    for i in range(0, samples.size, step):
        out += analyzer.process(AudioChunk(t=t0 + i / 16000, samples=samples[i : i + step]))
    return out + analyzer.flush()


def articulation_rate(analyses: list[AudioAnalysis]) -> float:
    nuclei = sum(a.syllable_count or 0 for a in analyses)
    speech_s = sum((a.speech_ratio or 0.0) * a.duration_s for a in analyses)
    return nuclei / speech_s


@pytest.mark.parametrize("language", ["ko", "en"])
def test_rate_orders_clips_and_is_within_20_percent(
    speech_clips: dict[tuple[Language, int], Clip], language: Language
) -> None:
    whole_talk, sliding = [], []
    for wpm in RATES_WPM:
        clip = speech_clips[(language, wpm)]
        truth = clip.syllables / clip.speech_s
        analyses = analyse(clip, language)
        rate = articulation_rate(analyses)
        live = statistics.median(a.syllables_per_s for a in analyses if a.syllables_per_s)
        assert rate == pytest.approx(truth, rel=0.2), (wpm, rate, truth)
        assert live == pytest.approx(truth, rel=0.2), (wpm, live, truth)
        whole_talk.append(rate)
        sliding.append(live)
    assert whole_talk == sorted(whole_talk) and len(set(whole_talk)) == 3
    assert sliding == sorted(sliding) and len(set(sliding)) == 3


@pytest.mark.parametrize("language", ["ko", "en"])
@pytest.mark.parametrize("wpm", RATES_WPM)
def test_long_pauses_are_found_where_inserted(
    speech_clips: dict[tuple[Language, int], Clip], language: Language, wpm: int
) -> None:
    clip = speech_clips[(language, wpm)]
    analyses = analyse(clip, language)
    threshold = SETTINGS.voice.thresholds(language).long_pause_s
    inserted = [(a, b) for a, b in clip.pauses if b - a > threshold]
    short = [(a, b) for a, b in clip.pauses if b - a < threshold]
    assert inserted and short  # the fixture has one of each (GAPS_S)
    found = [p for a in analyses for p in a.pauses_ended if p.duration_s >= threshold]
    assert len(found) == len(inserted)
    for (start, end), pause in zip(inserted, found, strict=True):
        assert abs(pause.t_start - start) <= 0.3
        assert abs(pause.t_end - end) <= 0.3
    # the live condition holds exactly in the windows that end inside a long silence
    for a in analyses:
        long_pause = voice_conditions(a, language, SETTINGS)["long_pause"]
        window_end = a.t + a.duration_s
        inside_long = any(s + threshold + 0.3 <= window_end <= e for s, e in inserted)
        inside_short = any(s <= window_end <= e for s, e in short)
        if inside_long:
            assert long_pause is True, a
        elif inside_short or a.speaking:
            assert long_pause is False, a


@pytest.mark.parametrize("language", ["ko", "en"])
def test_a_clip_30_db_quieter_raises_too_quiet(
    speech_clips: dict[tuple[Language, int], Clip], language: Language
) -> None:
    clip = speech_clips[(language, 170)]
    quiet = (clip.samples.astype(np.float64) * 10 ** (-30 / 20)).round().astype(np.int16)
    normal_flags = [
        voice_conditions(a, language, SETTINGS)["too_quiet"] for a in analyse(clip, language)
    ]
    quiet_flags = [
        voice_conditions(a, language, SETTINGS)["too_quiet"] for a in analyse(quiet, language)
    ]
    assert True not in normal_flags and normal_flags.count(False) >= 5
    assert False not in quiet_flags and quiet_flags.count(True) >= 5
    # silent windows cannot tell
    assert None in quiet_flags


@pytest.mark.parametrize("language", ["ko", "en"])
def test_flat_voice_raises_monotone_and_natural_intonation_does_not(
    speech_clips: dict[tuple[Language, int], Clip],
    monotone_clips: dict[Language, Clip],
    language: Language,
) -> None:
    flat = [
        voice_conditions(a, language, SETTINGS)["monotone"]
        for a in analyse(monotone_clips[language], language)
    ]
    assert False not in flat and flat.count(True) >= 3
    for wpm in RATES_WPM:
        natural = [
            voice_conditions(a, language, SETTINGS)["monotone"]
            for a in analyse(speech_clips[(language, wpm)], language)
        ]
        assert True not in natural and natural.count(False) >= 3, wpm


def test_windows_do_not_depend_on_chunk_size(
    speech_clips: dict[tuple[Language, int], Clip],
) -> None:
    clip = speech_clips[("en", 170)]
    by_10ms = analyse(clip, "en", chunk_s=0.01)
    by_1s = analyse(clip, "en", chunk_s=1.0)
    assert by_10ms == by_1s
    assert [a.t for a in by_10ms[:-1]] == [float(i) for i in range(len(by_10ms) - 1)]
    assert by_10ms[-1].duration_s == pytest.approx(clip.samples.size / 16000 % 1.0)


def test_missing_audio_counts_as_silence_on_the_media_clock(
    speech_clips: dict[tuple[Language, int], Clip],
) -> None:
    clip = speech_clips[("en", 170)].samples
    first = clip[: 3 * 16000]
    analyzer = VoiceAnalyzer("en", SETTINGS)
    out = analyzer.process(AudioChunk(t=50.0, samples=first))
    # 5 s of media time with no audio, then speech again
    out += analyzer.process(AudioChunk(t=58.0, samples=clip[3 * 16000 : 6 * 16000]))
    out += analyzer.flush()
    assert [a.t for a in out] == [50.0 + i for i in range(len(out))]
    pauses = [p for a in out for p in a.pauses_ended]
    assert any(53.0 - 0.3 <= p.t_start <= 53.3 and abs(p.t_end - 58.0) <= 0.3 for p in pauses)


def test_bad_audio_is_refused_with_a_stable_code() -> None:
    analyzer = VoiceAnalyzer("ko", SETTINGS)
    with pytest.raises(AudioFormatError) as err:
        analyzer.process(AudioChunk(t=0.0, samples=np.zeros(800, np.int16), sample_rate=8000))
    assert err.value.code == "bad_audio"
    with pytest.raises(AudioFormatError):
        analyzer.process(AudioChunk(t=0.0, samples=np.zeros(800, np.float32)))
    # nothing was taken in by the refused chunks
    assert analyzer.process(AudioChunk(t=0.0, samples=np.zeros(16000, np.int16)))[0].t == 0.0


def test_silence_has_no_pause_pitch_or_loudness_verdict() -> None:
    analyses = analyse(silence(3.0), "en")
    assert len(analyses) == 3
    for a in analyses:
        assert a.level_dbfs == -100.0 and a.speaking is False
        assert voice_conditions(a, "en", SETTINGS) == {
            "too_quiet": None,
            "too_fast": None,
            "long_pause": None,
            "monotone": None,
        }
    assert fine_share(analyses, "en") is None


def fine_share(analyses: list[AudioAnalysis], language: Language) -> float | None:
    """Mean over the four voice cues of the share of judged seconds without the problem
    (None: nothing was judged). The report's voice score is the cue-free share of the talk
    (app/coaching/scoring.py); this is the same idea on the raw per-second conditions."""
    judged: dict[str, list[bool]] = {}
    for a in analyses:
        for cue, problem in voice_conditions(a, language, SETTINGS).items():
            if problem is not None:
                judged.setdefault(cue, []).append(not problem)
    if not any(a.speaking for a in analyses) or not judged:
        return None
    return 100.0 * sum(sum(ok) / len(ok) for ok in judged.values()) / len(judged)


@pytest.mark.parametrize("language", ["ko", "en"])
def test_voice_conditions_prefer_a_lively_audible_talk(
    speech_clips: dict[tuple[Language, int], Clip],
    monotone_clips: dict[Language, Clip],
    language: Language,
) -> None:
    lively = fine_share(analyse(speech_clips[(language, 170)], language), language)
    flat = monotone_clips[language].samples
    flat_quiet = (flat * 10 ** (-30 / 20)).astype(np.int16)
    dull = fine_share(analyse(flat_quiet, language), language)
    assert lively is not None and dull is not None
    assert 0.0 <= dull < lively <= 100.0
    assert lively >= 80.0 and dull <= 60.0


@pytest.mark.parametrize("seconds", [0.119, 0.128, 0.13])
def test_a_session_shorter_than_praats_window_flushes_without_error(seconds: float) -> None:
    # A session can end within its first window with a little speech buffered: Praat's
    # intensity analysis refuses anything under 0.128 s, which once failed the session's end.
    speech = espeak("안녕하세요", "ko", 160)
    start = int(np.argmax(np.abs(speech) > 1000))  # where the voice begins
    tail = speech[start : start + round(seconds * 16000)]
    analyzer = VoiceAnalyzer("ko", SETTINGS)
    assert analyzer.process(AudioChunk(t=0.0, samples=tail)) == []
    (last,) = analyzer.flush()
    assert last.duration_s == pytest.approx(seconds, abs=1e-3)
    assert last.level_dbfs is not None and last.level_dbfs > -40
