"""The final report: the contract's report JSON and a self-contained `report.html`, as a pure
function of what a rehearsal collected.

`ReportInput` is that plain input (events, keyframe candidates, transcript, timings), gathered
from a live session or the repository (`app.live.report`) or from an upload's analysis
(`app.upload.report`). `build_report(inp, settings)` turns it into the report; a live session
whose critic writes the summary goes in two steps, `assess` (scores, timeline and cue
statistics, which the critic's summary draws on) and `render_report`. All of it is CPU work
(scoring, drawing, JPEG, template): callers run it in a worker thread.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from app.coaching.content import rules_content
from app.coaching.keyframes import Candidate, render_keyframe
from app.coaching.keyframes import ReportKeyframe as Keyframe
from app.coaching.messages import cue_message, looking_down_sentence
from app.coaching.scoring import (
    Scores,
    TimelineRow,
    build_timeline,
    compute_scores,
    cue_periods,
    gaze_shares,
)
from app.config import Settings
from app.frames import Language
from app.security import REPORT_SCRIPT

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
REPORT_EVENT_TYPES = ("metrics", "cue", "critique", "voice")
ScoreKey = Literal["eye_contact", "posture", "gestures", "voice"]
SCORE_KEYS: tuple[ScoreKey, ...] = ("eye_contact", "posture", "gestures", "voice")
SummarySource = Literal["rules", "vlm"]
Summary = tuple[str, SummarySource]  # the summary's text and who wrote it

# Which cues shade which timeline chart.
CHART_CUES: dict[str, tuple[str, ...]] = {
    "eye_contact": ("eye_contact", "face_lost"),
    "posture": ("posture", "head_tilt", "sway", "too_close", "too_far"),
    "gesture_activity": ("gesture_none", "gesture_excess"),
    "voice_level": ("too_quiet", "too_fast", "long_pause", "monotone"),
}

LABELS: dict[Language, dict[str, str]] = {
    "en": {
        "report": "Rehearsal report",
        "untitled": "Untitled rehearsal",
        "duration": "Duration",
        "recovered": "Recovered after a server restart: the end of the rehearsal may be missing.",
        "scores": "Scores",
        "eye_contact": "Eye contact",
        "posture": "Posture",
        "gestures": "Gestures",
        "voice": "Voice",
        "overall": "Overall",
        "not_measured": "not measured",
        "def_eye_contact": "Share of the time you looked at the camera.",
        "def_posture": "How level and steady your shoulders, head and stance were.",
        "def_gestures": "Share of the time your hands were used naturally.",
        "def_voice": "Share of the time without a voice cue (too quiet, fast, flat, long pauses).",
        "def_overall": "The mean of the scores above.",
        "timeline": "Timeline",
        "timeline_note": "Shaded: times when a live cue was on.",
        "gesture_activity": "Gesture activity",
        "voice_level": "Voice level",
        "speech_rate": "Pace (pauses shaded)",
        "syllables_unit": "syll/s",
        "transcript": "Transcript",
        "fillers": "Filler words",
        "no_transcript": "No transcript was made",
        "content": "What you said",
        "words_per_minute": "words a minute",
        "per_minute": "a minute",
        "no_data": "No data",
        "seconds_unit": " s",
        "source_rules": "Coach",
        "source_vlm": "AI coach",
        "category_gaze": "Gaze",
        "category_facial_expression": "Expression",
        "category_gestures": "Gestures",
        "category_posture": "Posture",
        "category_movement": "Movement",
        "category_voice": "Voice",
        "keyframes": "Key moments",
        "best": "Best",
        "worst": "Needs work",
        "no_keyframes": "No key moments were captured.",
        "critiques": "Coach's critiques",
        "no_critiques": "No critiques for this rehearsal.",
        "suggestion": "Try",
        "cues": "Live cues",
        "no_cues": "No cues were shown: well done.",
        "cue": "Cue",
        "times": "Times",
        "total": "Total",
        "summary": "Summary",
        "recording": "Download the recording",
        "recording_heading": "Recording",
        "seek_note": "Select a marker, a cue, a key moment or a word to play the recording "
        "from that moment.",
        "seek": "Play from",
        "markers": "Moments",
        "when": "When",
        "no_video": "Your browser cannot play this recording.",
        "generated": "Generated",
        "gaze_shares": "Where your eyes were",
        "gaze_camera": "on the camera",
        "gaze_down": "down",
        "gaze_up": "up",
        "gaze_left": "to your left",
        "gaze_right": "to your right",
        "gaze_closed": "eyes closed",
        "gaze_no_face": "face out of view",
    },
    "ko": {
        "report": "리허설 리포트",
        "untitled": "제목 없는 리허설",
        "duration": "길이",
        "recovered": "서버 재시작 후 복구된 리포트예요. 리허설의 끝부분이 빠졌을 수 있어요.",
        "scores": "점수",
        "eye_contact": "시선 처리",
        "posture": "자세",
        "gestures": "손동작",
        "voice": "목소리",
        "overall": "종합",
        "not_measured": "측정 안 됨",
        "def_eye_contact": "카메라(청중)를 바라본 시간의 비율이에요.",
        "def_posture": "어깨와 고개가 얼마나 바르고 몸이 얼마나 안정적이었는지예요.",
        "def_gestures": "손을 자연스럽게 사용한 시간의 비율이에요.",
        "def_voice": "목소리 알림(작음, 빠름, 단조로움, 긴 침묵)이 없던 시간의 비율이에요.",
        "def_overall": "위 점수들의 평균이에요.",
        "timeline": "타임라인",
        "timeline_note": "음영: 실시간 알림이 켜져 있던 구간",
        "gesture_activity": "손동작 활동량",
        "voice_level": "목소리 크기",
        "speech_rate": "말 빠르기 (침묵 구간 음영)",
        "syllables_unit": "음절/초",
        "transcript": "말한 내용",
        "fillers": "군말",
        "no_transcript": "음성 인식 결과가 없어요",
        "content": "말한 내용에 대한 피드백",
        "words_per_minute": "분당 단어 수",
        "per_minute": "분당",
        "no_data": "데이터 없음",
        "seconds_unit": "초",  # no space: 6초
        "source_rules": "코치",
        "source_vlm": "AI 코치",
        "category_gaze": "시선",
        "category_facial_expression": "표정",
        "category_gestures": "제스처",
        "category_posture": "자세",
        "category_movement": "움직임",
        "category_voice": "목소리",
        "keyframes": "주요 장면",
        "best": "가장 좋은 순간",
        "worst": "개선이 필요한 순간",
        "no_keyframes": "포착된 장면이 없어요.",
        "critiques": "코치의 피드백",
        "no_critiques": "이번 리허설에는 피드백이 없어요.",
        "suggestion": "제안",
        "cues": "실시간 알림",
        "no_cues": "알림이 한 번도 없었어요. 잘했어요!",
        "cue": "알림",
        "times": "횟수",
        "total": "총 시간",
        "summary": "요약",
        "recording": "녹화 영상 내려받기",
        "recording_heading": "녹화 영상",
        "seek_note": "표시, 알림, 주요 장면이나 단어를 누르면 그 순간부터 녹화 영상이 재생돼요.",
        "seek": "여기부터 재생",
        "markers": "순간들",
        "when": "시점",
        "no_video": "이 브라우저에서는 녹화 영상을 재생할 수 없어요.",
        "generated": "생성 시각",
        "gaze_shares": "시선이 머문 곳",
        "gaze_camera": "카메라",
        "gaze_down": "아래",
        "gaze_up": "위",
        "gaze_left": "왼쪽",
        "gaze_right": "오른쪽",
        "gaze_closed": "눈 감음",
        "gaze_no_face": "얼굴이 화면 밖",
    },
}

TIPS: dict[ScoreKey, dict[Language, str]] = {
    "eye_contact": {
        "en": "Next time, put your notes right under the camera and look into the lens at the "
        "start and end of every key sentence.",
        "ko": "다음에는 메모를 카메라 바로 아래에 두고, "
        "핵심 문장의 시작과 끝에서 렌즈를 바라보세요.",
    },
    "posture": {
        "en": "Next time, stand with your weight on both feet, shoulders level, and keep your "
        "head upright.",
        "ko": "다음에는 양발에 체중을 고르게 싣고 어깨를 수평으로, 고개를 곧게 세워 보세요.",
    },
    "gestures": {
        "en": "Next time, use open, deliberate hand movements at chest height to underline your "
        "key points, then let your hands rest.",
        "ko": "다음에는 가슴 높이에서 펼친 손동작으로 핵심을 강조하고, "
        "그 뒤에는 손을 편하게 내려 두세요.",
    },
    "voice": {
        "en": "Next time, speak a little louder and slower, and let your pitch rise and fall "
        "with your message.",
        "ko": "다음에는 조금 더 크고 천천히 말하고, 내용에 맞춰 억양에 변화를 주세요.",
    },
}


@dataclass(frozen=True, slots=True)
class CueSummary:
    cue: str
    count: int
    seconds: float
    message: str


@dataclass(frozen=True, slots=True)
class ReportInput:
    """What a rehearsal collected: everything its report is made from, as plain data."""

    session_id: str
    title: str
    language: Language
    duration_s: float | None  # None or 0: the last event's time
    # The session's events in seq order; the report reads metrics, cue, critique and voice.
    events: Sequence[Mapping[str, Any]]
    keyframe_candidates: Sequence[Candidate] = ()
    transcript: Mapping[str, Any] | None = None  # transcript.json: text, words, fillers, note
    recording_url: str | None = None
    recovered: bool = False
    generated_at: datetime | None = None  # None: when the report is rendered


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything the report says, before keyframes and the summary: what `assess` makes of a
    `ReportInput`."""

    session_id: str
    title: str
    language: Language
    duration_s: float
    recovered: bool
    scores: Scores
    timeline: list[TimelineRow]
    cues: list[dict[str, Any]]
    critiques: list[dict[str, Any]]
    cue_summary: list[CueSummary]  # most time first
    cue_periods: list[tuple[str, float, float]]
    transcript: dict[str, Any] | None = None  # transcript.json: text, words, fillers, note
    gaze_shares: dict[str, float] | None = None  # where the eyes were (`scoring.gaze_shares`)


@dataclass(frozen=True, slots=True)
class Report:
    """The report: its JSON (the contract's) and its self-contained HTML page."""

    data: dict[str, Any]
    html: str = field(repr=False)


def build_report(inp: ReportInput, settings: Settings) -> Report:
    """Pure: the report of `inp`, with the rules summary."""
    findings = assess(inp, settings)
    return render_report(inp, findings, (rules_summary(findings), "rules"), settings)


def render_report(
    inp: ReportInput, findings: Findings, summary: Summary, settings: Settings
) -> Report:
    """Pure: the report of `inp` as `assess` found it, with `summary`: keyframes drawn, JSON
    and HTML."""
    keyframes = render_keyframes(
        inp.keyframe_candidates, inp.language, settings.report.report_font_path
    )
    data = report_json(
        findings,
        keyframes=keyframes,
        summary=summary[0],
        summary_source=summary[1],
        recording_url=inp.recording_url,
        generated_at=inp.generated_at,
    )
    return Report(data, render_html(data, findings))


def assess(inp: ReportInput, settings: Settings) -> Findings:
    """Pure: scores, timeline and cue statistics from the session's events (and the
    transcript's filler words, when one was made)."""
    events, transcript, language = inp.events, inp.transcript, inp.language
    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in REPORT_EVENT_TYPES}
    for e in events:
        bucket = by_type.get(str(e.get("type")))
        if bucket is not None:
            bucket.append(dict(e))
    last_t = max((float(e["t"]) for e in events), default=0.0)
    duration_s = inp.duration_s
    duration = float(duration_s) if duration_s is not None and duration_s > 0 else last_t
    cues, metrics, voice = by_type["cue"], by_type["metrics"], by_type["voice"]
    periods = cue_periods(cues, duration)
    totals: dict[str, tuple[int, float]] = {}
    for cue, start, end in periods:
        count, seconds = totals.get(cue, (0, 0.0))
        totals[cue] = (count + 1, seconds + max(0.0, end - start))
    summary = sorted(
        (
            CueSummary(cue, count, round(seconds, 1), _cue_summary_text(cue, cues, language))
            for cue, (count, seconds) in totals.items()
        ),
        key=lambda c: (-c.seconds, -c.count, c.cue),
    )
    return Findings(
        session_id=inp.session_id,
        title=inp.title,
        language=language,
        duration_s=round(duration, 3),
        recovered=inp.recovered,
        scores=compute_scores(metrics, voice, cues, settings),
        timeline=build_timeline(
            metrics,
            voice,
            duration,
            settings,
            filler_times=[float(f["t"]) for f in (transcript or {}).get("fillers") or ()],
        ),
        cues=cues,
        critiques=by_type["critique"],
        cue_summary=summary,
        cue_periods=periods,
        transcript=dict(transcript) if transcript is not None else None,
        gaze_shares=gaze_shares(metrics, settings),
    )


def _cue_summary_text(cue: str, events: list[dict[str, Any]], language: Language) -> str:
    """What a cue's row of the report says: the message every time it turned on gave where
    they all agree (every `eye_contact` a look down, every `face_lost` a face hidden in the
    frame), the cue's plain message otherwise."""
    said = {_said(e, language) for e in events if e.get("cue") == cue and e.get("state") == "on"}
    return said.pop() if len(said) == 1 else _cue_text(cue, language)


def _said(event: Mapping[str, Any], language: Language) -> str:
    """What a logged cue event said (which way the eyes went, a face hidden in the frame): its
    message, or the cue's plain one where the log has none."""
    message = event.get("message")
    if isinstance(message, str) and message:
        return message
    return _cue_text(str(event.get("cue")), language)


def _cue_text(cue: str, language: Language) -> str:
    try:
        return cue_message(cue, language)  # type: ignore[arg-type]
    except KeyError:
        return cue


def format_duration(seconds: float, language: Language) -> str:
    total = max(0, round(seconds))
    minutes, secs = divmod(total, 60)
    if language == "ko":
        return f"{minutes}분 {secs}초" if minutes else f"{secs}초"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def rules_summary(findings: Findings) -> str:
    """A short paragraph from the scores and cues (used when no critic summarises)."""
    lang, labels = findings.language, LABELS[findings.language]
    duration = format_duration(findings.duration_s, lang)
    scores = findings.scores
    scored = [(k, getattr(scores, k)) for k in SCORE_KEYS if getattr(scores, k) is not None]
    parts: list[str] = []
    if lang == "ko":
        parts.append(f"이번 리허설은 {duration} 동안 진행되었어요.")
    else:
        parts.append(f"This rehearsal lasted {duration}.")
    if not scored:
        parts.append(
            "점수를 매길 만큼 영상이 충분하지 않았어요. 얼굴과 상체가 화면에 보이도록 해 주세요."
            if lang == "ko"
            else "There was not enough video to score it: make sure your face and upper body "
            "are in view."
        )
        return " ".join(parts)
    best_key, best = max(scored, key=lambda kv: kv[1])
    worst_key, worst = min(scored, key=lambda kv: kv[1])
    if lang == "ko":
        parts.append(f"가장 잘한 부분은 {labels[best_key]}({best}점)이에요.")
        if worst_key != best_key and worst < 80:
            parts.append(f"{labels[worst_key]}({worst}점)은 더 연습이 필요해요.")
    else:
        parts.append(f"Your strongest area was {labels[best_key].lower()} ({best}/100).")
        if worst_key != best_key and worst < 80:
            parts.append(f"{labels[worst_key]} needs the most work ({worst}/100).")
    looked_down = looking_down_sentence((findings.gaze_shares or {}).get("down"), lang)
    if looked_down:
        parts.append(looked_down)
    if findings.cue_summary:
        top = findings.cue_summary[0]
        if lang == "ko":
            parts.append(
                f"가장 오래 켜져 있던 알림은 “{top.message}”였어요 "
                f"({top.count}회, 총 {round(top.seconds)}초)."
            )
        else:
            parts.append(
                f"The cue that stayed on longest was “{top.message}” "
                f"({'once' if top.count == 1 else f'{top.count} times'}, "
                f"{round(top.seconds)} s in total)."
            )
    if worst < 80:
        parts.append(TIPS[worst_key][lang])
    elif lang == "ko":
        parts.append("모든 영역에서 좋은 모습이었어요. 이 흐름을 유지하세요!")
    else:
        parts.append("Strong work across the board: keep it up.")
    return " ".join(parts)


def report_json(
    findings: Findings,
    *,
    keyframes: Sequence[Keyframe],
    summary: str,
    summary_source: SummarySource,
    recording_url: str | None,
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The contract's report JSON (plus additive fields: summary_source, recovered, cue_summary,
    generated_at, gaze_shares)."""
    return {
        "session_id": findings.session_id,
        "title": findings.title,
        "language": findings.language,
        "duration_s": findings.duration_s,
        "scores": findings.scores.as_dict(),
        "timeline": [
            {
                "t": r.t,
                "eye_contact": r.eye_contact,
                "posture": r.posture,
                "gesture_activity": r.gesture_activity,
                "voice_level": r.voice_level,
                "speech_rate": r.speech_rate,
                "speaking": r.speaking,
                "fillers": r.fillers,
            }
            for r in findings.timeline
        ],
        "cues": findings.cues,
        "critiques": findings.critiques,
        "keyframes": [k.as_dict() for k in keyframes],
        "summary": summary,
        "summary_source": summary_source,
        "recording_url": recording_url,
        "recovered": findings.recovered,
        "cue_summary": [
            {"cue": c.cue, "count": c.count, "seconds": c.seconds, "message": c.message}
            for c in findings.cue_summary
        ],
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
        "gaze_shares": (
            None
            if findings.gaze_shares is None
            else {place: round(share, 3) for place, share in findings.gaze_shares.items()}
        ),
        **speech_report(findings),
    }


def speech_report(findings: Findings) -> dict[str, Any]:
    """The report's fields about what was said (additive: `words_per_minute`, and
    `transcript_note`, why no transcript was made or what went wrong on the way)."""
    transcript = findings.transcript
    fillers = fillers_report(transcript, findings.duration_s)
    return {
        "transcript": transcript_report(transcript),
        "transcript_note": (transcript or {}).get("note")
        or (None if transcript else "no transcript was made"),
        "fillers": fillers,
        "words_per_minute": (transcript or {}).get("words_per_minute"),
        "content": content_report(transcript, findings.language, fillers["per_minute"]),
    }


def transcript_report(transcript: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The report's `transcript`: `{"source", "text", "words": [{word, t_start, t_end,
    filler}]}`, or None when no transcript was made."""
    if not transcript or not transcript.get("made"):
        return None
    return {
        "source": transcript.get("source"),
        "text": transcript.get("text", ""),
        "words": [
            {
                "word": str(w.get("text", w.get("word", ""))),
                "t_start": float(w["t_start"]),
                "t_end": float(w["t_end"]),
                "filler": bool(w.get("filler", False)),
            }
            for w in transcript.get("words") or ()
        ],
    }


def fillers_report(transcript: Mapping[str, Any] | None, duration_s: float) -> dict[str, Any]:
    """The report's `fillers`: `{"count", "per_minute" (of the session), "items": [{word,
    t}]}`; `per_minute` is None without a transcript."""
    made = bool(transcript and transcript.get("made"))
    items = [
        {"word": str(f["text"]), "t": float(f["t"])}
        for f in ((transcript or {}).get("fillers") or ())
    ]
    per_minute = round(len(items) / (duration_s / 60.0), 2) if made and duration_s > 0 else None
    return {"count": len(items), "per_minute": per_minute, "items": items}


def content_report(
    transcript: Mapping[str, Any] | None, language: Language, fillers_per_minute: float | None
) -> dict[str, Any] | None:
    """The report's `content`: what the transcriber's feedback said, else the rules over the
    transcript; None without words."""
    if not transcript or not transcript.get("made"):
        return None
    content = transcript.get("content")
    if isinstance(content, Mapping) and content.get("source") in ("llm", "rules"):
        return {"source": content["source"], "items": list(content.get("items") or ())}
    words = transcript.get("words") or ()
    if not words:
        return None
    return rules_content(
        [str(transcript.get("text", ""))],
        language,
        filler_words=[str(w.get("text", "")) for w in words if w.get("filler")],
        fillers_per_minute=fillers_per_minute,
    )


# --- HTML --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title: str
    unit: str
    width: int
    height: int
    plot: tuple[int, int, int, int]  # left, top, right, bottom
    lines: list[str]  # SVG polyline `points`, one per run of measured seconds
    dots: list[tuple[float, float]]  # isolated measured seconds (a line needs two points)
    shades: list[tuple[float, float, str, float]]  # x, width, cue message (tooltip), start t
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    empty: bool


CHART_W, CHART_H = 720, 150
PLOT = (48, 12, CHART_W - 26, CHART_H - 26)


def _nice_step(duration: float) -> int:
    for step in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800):
        if duration / step <= 8:
            return step
    return 3600


def make_chart(
    key: str,
    title: str,
    unit: str,
    values: Sequence[float | None],
    y_range: tuple[float, float],
    periods: Sequence[tuple[str, float, float]],
    duration: float,
    language: Language,
    said: Mapping[tuple[str, float], str] | None = None,
) -> Chart:
    """One chart; `said`: what each cue said when it turned on, by (cue, time), for the
    shading of its period (the cue's plain message where missing)."""
    left, top, right, bottom = PLOT
    span_t = max(duration, 1.0)
    y0, y1 = y_range

    def x_of(t: float) -> float:
        return round(left + (right - left) * min(max(t, 0.0), span_t) / span_t, 1)

    def y_of(v: float) -> float:
        frac = (min(max(v, y0), y1) - y0) / (y1 - y0)
        return round(bottom - (bottom - top) * frac, 1)

    lines: list[str] = []
    dots: list[tuple[float, float]] = []
    run: list[tuple[float, float]] = []
    for i, v in enumerate([*values, None]):
        if v is not None:
            run.append((x_of(i + 0.5), y_of(v)))
            continue
        if len(run) >= 2:
            lines.append(" ".join(f"{x},{y}" for x, y in run))
        elif len(run) == 1:
            dots.append(run[0])
        run = []
    wanted = set(CHART_CUES.get(key, ()))
    shades = [
        (
            x_of(start),
            max(1.0, round(x_of(end) - x_of(start), 1)),
            (said or {}).get((cue, start)) or _cue_text(cue, language),
            round(start, 2),
        )
        for cue, start, end in periods
        if cue in wanted
    ]
    step = _nice_step(span_t)
    x_ticks = [(x_of(t), _clock(t)) for t in range(0, int(span_t) + 1, step)]
    y_ticks = [(y_of(y0 + (y1 - y0) * f), _fmt_tick(y0 + (y1 - y0) * f)) for f in (0, 0.5, 1)]
    return Chart(
        key,
        title,
        unit,
        CHART_W,
        CHART_H,
        PLOT,
        lines,
        dots,
        shades,
        x_ticks,
        y_ticks,
        empty=not lines and not dots,
    )


def _clock(t: float) -> str:
    t = int(t)
    return f"{t // 60}:{t % 60:02d}"


def _fmt_tick(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def charts_for(findings: Findings) -> list[Chart]:
    labels = LABELS[findings.language]
    rows = findings.timeline
    activity = [r.gesture_activity for r in rows]
    top_activity = max([3.0, *(a for a in activity if a is not None)])
    levels = [r.voice_level for r in rows]
    pace = [r.speech_rate for r in rows]
    top_pace = max([8.0, *(p for p in pace if p is not None)])
    specs: list[tuple[str, str, list[float | None], tuple[float, float]]] = [
        ("eye_contact", "%", [r.eye_contact for r in rows], (0.0, 100.0)),
        ("posture", "%", [r.posture for r in rows], (0.0, 100.0)),
        ("gesture_activity", "", activity, (0.0, math.ceil(top_activity))),
        ("voice_level", "dBFS", levels, (-60.0, 0.0)),
    ]
    if any(p is not None for p in pace):
        # Pace and pauses: syllables a second, with the long-pause cue periods shaded.
        specs.append(("speech_rate", labels["syllables_unit"], pace, (0.0, math.ceil(top_pace))))
    said = {
        (str(c.get("cue")), float(c["t"])): _said(c, findings.language)
        for c in findings.cues
        if c.get("state") == "on" and isinstance(c.get("t"), int | float)
    }
    return [
        make_chart(
            key,
            labels[key],
            unit,
            values,
            y_range,
            findings.cue_periods,
            findings.duration_s,
            findings.language,
            said,
        )
        for key, unit, values, y_range in specs
    ]


def score_band(score: int | None) -> str:
    if score is None:
        return "none"
    return "good" if score >= 80 else "fair" if score >= 60 else "low"


@functools.cache
def _environment() -> Environment:
    # Autoescape on for everything: titles, critiques and captions are user or model text.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["clock"] = _clock
    return env


def render_html(report: Mapping[str, Any], findings: Findings) -> str:
    labels = LABELS[findings.language]
    scores = report["scores"]
    cards = [
        {
            "key": key,
            "label": labels[key],
            "score": scores.get(key),
            "band": score_band(scores.get(key)),
            "definition": labels[f"def_{key}"],
        }
        for key in (*SCORE_KEYS, "overall")
    ]
    # Every cue that turned on is a moment of the timeline the recording can be played from.
    markers: list[dict[str, Any]] = []
    cue_times: dict[str, list[float]] = {}
    for cue in findings.cues:
        if cue.get("state") != "on" or not isinstance(cue.get("t"), int | float):
            continue
        name, t = str(cue.get("cue")), round(float(cue["t"]), 2)
        cue_times.setdefault(name, []).append(t)
        severity = "warn" if cue.get("severity") == "warn" else "info"
        markers.append({"t": t, "label": _said(cue, findings.language), "severity": severity})
    markers.sort(key=lambda m: m["t"])
    shares = findings.gaze_shares or {}  # unrounded: the camera's is the eye-contact score
    gaze = [
        {"label": labels[f"gaze_{place}"], "pct": round(100 * share)}
        for place, share in shares.items()
        if round(100 * share) > 0
    ]
    return (
        _environment()
        .get_template("report.html")
        .render(
            r=report,
            findings=findings,
            L=labels,
            lang=findings.language,
            title=findings.title or labels["untitled"],
            duration=format_duration(findings.duration_s, findings.language),
            cards=cards,
            gaze=gaze,
            charts=charts_for(findings),
            markers=markers,
            cue_times=cue_times,
            # Opened from a file, the video is the recording beside it: `recording.webm`, or the
            # name the rehearsal page downloads it as.
            offline_recording=f"rehearsal-{findings.session_id[:8]}.webm",
            seek_script=Markup(REPORT_SCRIPT),
            labels_for_category={
                "eye_contact": labels["eye_contact"],
                "posture": labels["posture"],
                "gestures": labels["gestures"],
            },
        )
    )


# --- files -------------------------------------------------------------------------------------
def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report_files(directory: Path, report: Report) -> None:
    """`report.json` and `report.html` into `directory`, each replaced whole."""
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(directory / "report.json", json.dumps(report.data, ensure_ascii=False))
    _atomic_write_text(directory / "report.html", report.html)


def render_keyframes(
    candidates: Sequence[Candidate], language: Language, font_path: str | None
) -> list[Keyframe]:
    return [render_keyframe(c, language, font_path) for c in candidates]
