"""Filler words with their position rules (Korean and English), filled pauses, the cluster cue,
pace, and the rules' feedback on content."""

from __future__ import annotations

from app.analysis.transcribe import Word
from app.coaching.content import rules_content
from app.coaching.fillers import (
    FILLED_PAUSE_WORD,
    FillerCue,
    filled_pauses,
    filler_items,
    mark_fillers,
    words_per_minute,
)
from app.config import Settings
from app.frames import Language


def words(text: str, t0: float = 0.0, gaps: dict[int, float] | None = None) -> list[Word]:
    """Words 0.3 s long, 0.05 s apart (or `gaps[i]` after word i)."""
    out, t = [], t0
    for i, token in enumerate(text.split()):
        out.append(Word(token, round(t, 3), round(t + 0.3, 3)))
        t += 0.3 + (gaps or {}).get(i, 0.05)
    return out


def fillers(text: str, language: Language, settings: Settings, **kw: object) -> list[str]:
    ws = words(text, **kw)  # type: ignore[arg-type]
    flags = mark_fillers(ws, language, settings)
    return [item.word for item in filler_items(ws, flags)]


def test_korean_fillers_and_the_determiner(settings: Settings) -> None:
    assert fillers("음 오늘은 어 제품을 소개합니다", "ko", settings) == ["음", "어"]
    # 그 / 저 before a word are determiners ...
    assert fillers("그 제품은 저 회사가 만들었어요", "ko", settings) == []
    # ... set off by a comma, a pause, another filler or the end, they are fillers
    assert fillers("그, 제품은 좋아요", "ko", settings) == ["그"]
    assert fillers("저 오늘은", "ko", settings, gaps={0: 0.6}) == ["저"]
    assert fillers("그 음 이제 시작할게요", "ko", settings) == ["그", "음", "이제"]
    assert fillers("마지막으로 그", "ko", settings) == ["그"]
    assert fillers("약간 뭐 그러니까 좋아요", "ko", settings) == ["약간", "뭐", "그러니까"]


def test_english_fillers_like_so_and_you_know(settings: Settings) -> None:
    assert fillers("um today uh we launch", "en", settings) == ["um", "uh"]
    # "like" as a verb or a preposition is not a filler
    assert fillers("I like it and it looks like rain", "en", settings) == []
    assert fillers("we like this product", "en", settings) == []
    # set off, or after a word it cannot belong to, it is
    assert fillers("it is, like, really good", "en", settings) == ["like"]
    assert fillers("and like we grew fast", "en", settings) == ["like"]
    # "so" only when a pause or comma follows it
    assert fillers("so we built it", "en", settings) == []
    assert fillers("So, we built it", "en", settings) == ["so"]
    # "you know" is one filler, but not in a question
    assert fillers("it is you know really simple", "en", settings) == ["you know"]
    assert fillers("do you know what we did", "en", settings) == []
    assert fillers("basically it works", "en", settings) == ["basically"]


def test_filler_items_keep_their_times_and_count_a_phrase_once(settings: Settings) -> None:
    ws = words("um you know we ship", t0=10.0)
    items = filler_items(ws, mark_fillers(ws, "en", settings))
    assert [(i.word, i.t) for i in items] == [("um", 10.0), ("you know", 10.35)]


def test_filled_pauses_are_speech_no_word_covers() -> None:
    ws = [Word("hello", 1.0, 1.4), Word("world", 2.5, 3.0)]
    runs = [(1.0, 1.4), (1.7, 2.1), (2.5, 3.0), (4.0, 7.0)]  # a hum at 1.7; 4-7: missed words
    assert [(i.word, i.t) for i in filled_pauses(runs, ws)] == [(FILLED_PAUSE_WORD, 1.7)]


def test_sound_the_recogniser_read_no_word_in_is_not_hesitation() -> None:
    """A lone short run between silences is an "um" of its own; several short runs in a
    stretch without one recognised word are sound the recogniser could not read (the fake
    microphone's beeps counted 62 fillers in 31 s with no word heard), not a speaker
    hesitating."""
    assert [i.t for i in filled_pauses([(0.2, 0.6)], [])] == [0.2]
    beeps = [(0.5 * k, 0.5 * k + 0.2) for k in range(8)]
    assert filled_pauses(beeps, []) == []
    assert filled_pauses([(0.2, 0.6), (1.0, 4.0)], []) == []  # with missed words around it


def test_the_cue_fires_on_a_cluster_and_clears(settings: Settings) -> None:
    cue = FillerCue(cluster=3, window_s=30.0)
    assert cue.update([1.0, 12.0], now=15.0) == []  # two are not a cluster
    assert cue.update([20.0], now=25.0) == [("on", 20.0)]
    assert cue.update([26.0], now=28.0) == []  # still on: no repeat
    assert cue.update([], now=45.0) == [("off", 45.0)]  # 20, 26 left in the window
    assert cue.update([46.0, 47.0], now=48.0) == [("on", 46.0)]  # with 20 and 26
    assert cue.close(50.0) == [("off", 50.0)]  # the end turns it off
    assert cue.close(51.0) == []  # once
    assert FillerCue(cluster=3, window_s=30.0).close(10.0) == []  # never on: nothing


def test_words_per_minute_leaves_fillers_out() -> None:
    ws = words("um one two three four five")
    flags = [True] + [False] * 5
    assert words_per_minute(ws, flags, speaking_s=3.0) == 100.0
    assert words_per_minute([], [], speaking_s=3.0) is None


def test_rules_feedback_on_content_in_both_languages() -> None:
    en = rules_content(
        [
            "maybe we can sort of help, I think, and maybe grow",
            "the product the product the product and the product helps the product",
        ],
        "en",
        fillers_per_minute=7.0,
    )
    assert en["source"] == "rules"
    categories = {i["category"]: i for i in en["items"]}
    assert set(categories) == {"hedging", "repetition", "fillers"}
    assert categories["fillers"]["severity"] == "warn"
    assert "product" in categories["repetition"]["observation"]
    long = " ".join(["단어"] * 10 + ["문장이"] * 20)
    ko = rules_content(
        [long, "아마 될 것 같아요 아마 좋을 것 같습니다"], "ko", fillers_per_minute=1.0
    )
    assert {i["category"] for i in ko["items"]} >= {"clarity", "hedging"}
    assert all(i["observation"] and i["suggestion"] for i in ko["items"])
    plain = rules_content(["we cut onboarding from two weeks to two days"], "en")
    assert [i["category"] for i in plain["items"]] == ["structure"]
