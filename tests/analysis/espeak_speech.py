"""Speech made at test time with espeak-ng (Debian) and resampled to 16 kHz with sox.

Each clip is one sentence without punctuation (so espeak adds no pause of its own), with its
leading and trailing silence trimmed, so its length is the time the words take. Clips are
joined with silences of known length in NumPy. Generated audio is cached per test session.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from app.frames import Language

SAMPLE_RATE = 16000

# Fixed sentences; syllables: Korean = Hangul syllable blocks, English = counted by hand.
SENTENCES: dict[Language, list[tuple[str, int]]] = {
    "ko": [
        ("안녕하세요 오늘은 우리 회사의 새로운 제품을 소개하겠습니다", 0),
        ("이 제품은 작은 팀이 함께 일하는 방법을 더 쉽게 바꾸어 줍니다", 0),
        ("지금부터 세 가지 핵심 기능을 차례대로 보여 드리겠습니다", 0),
    ],
    "en": [
        # to-day I would like to show you how our new pro-duct helps small teams work to-ge-ther
        ("today I would like to show you how our new product helps small teams work together", 20),
        # it makes plan-ning sim-ple and keeps ev-ery-one on the same page
        ("it makes planning simple and keeps everyone on the same page", 15),
        # let me walk you through the three most im-por-tant fea-tures one by one
        ("let me walk you through the three most important features one by one", 17),
    ],
}
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def syllable_count(text: str, language: str, hand_count: int) -> int:
    return len(HANGUL.findall(text)) if language == "ko" else hand_count


@dataclass(frozen=True)
class Clip:
    samples: np.ndarray  # int16 at 16 kHz
    syllables: int
    speech_s: float  # seconds of speech (silences excluded)
    pauses: tuple[tuple[float, float], ...]  # inserted silences (start, end), seconds


def have_tools() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def espeak(text: str, language: str, words_per_minute: int, *, ssml: bool = False) -> np.ndarray:
    """One utterance as int16 16 kHz samples, leading/trailing silence removed."""
    cmd = ["espeak-ng", "-v", language, "-s", str(words_per_minute), "-z", "--stdout"]
    if ssml:
        cmd.append("-m")
    wav = subprocess.run([*cmd, text], capture_output=True, check=True).stdout
    raw = subprocess.run(
        [
            "sox",
            "-t",
            "wav",
            "-",
            "-r",
            str(SAMPLE_RATE),
            "-t",
            "raw",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            "-",
        ],
        input=wav,
        capture_output=True,
        check=True,
    ).stdout
    x = np.frombuffer(raw, dtype=np.int16)
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 300)
    return x[loud[0] : loud[-1] + 1].copy()


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), dtype=np.int16)


def talk(
    language: Language, words_per_minute: int, gaps_s: tuple[float, ...], *, monotone: bool = False
) -> Clip:
    """The language's sentences with the given silences between them (and 0.5 s lead-in/out)."""
    parts: list[np.ndarray] = [silence(0.5)]
    pauses: list[tuple[float, float]] = []
    syllables = 0
    speech_n = 0
    for i, (text, hand_count) in enumerate(SENTENCES[language]):
        spoken = f'<speak><prosody range="0%">{text}</prosody></speak>' if monotone else text
        utterance = espeak(spoken, language, words_per_minute, ssml=monotone)
        parts.append(utterance)
        syllables += syllable_count(text, language, hand_count)
        speech_n += utterance.size
        if i < len(gaps_s):
            start = sum(p.size for p in parts) / SAMPLE_RATE
            pauses.append((start, start + gaps_s[i]))
            parts.append(silence(gaps_s[i]))
    parts.append(silence(0.5))
    return Clip(np.concatenate(parts), syllables, speech_n / SAMPLE_RATE, tuple(pauses))


RATES_WPM = (120, 170, 230)  # espeak -s, words per minute
GAPS_S = (0.8, 4.0)  # silences inserted between the three sentences
