"""Fixtures for the analysis tests: speech generated once per test session."""

from __future__ import annotations

import pytest

from app.frames import Language
from tests.analysis.espeak_speech import GAPS_S, RATES_WPM, Clip, have_tools, talk

LANGUAGES: tuple[Language, ...] = ("ko", "en")


def _need_tools() -> None:
    if not have_tools():
        pytest.fail("espeak-ng and sox are needed: apt-get install -y espeak-ng sox")


@pytest.fixture(scope="session")
def speech_clips() -> dict[tuple[Language, int], Clip]:
    """(language, espeak words per minute) -> clip with GAPS_S silences between sentences."""
    _need_tools()
    return {(lang, wpm): talk(lang, wpm, GAPS_S) for lang in LANGUAGES for wpm in RATES_WPM}


@pytest.fixture(scope="session")
def monotone_clips() -> dict[Language, Clip]:
    """Each language's sentences with a flat pitch (SSML prosody range 0%)."""
    _need_tools()
    return {lang: talk(lang, 170, (0.3, 0.3), monotone=True) for lang in LANGUAGES}
