"""Scores, timeline, keyframes and the report files, from synthetic events and frames."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from app.coaching import keyframes as kf
from app.coaching.keyframes import (
    Candidate,
    KeyframePicker,
    caption_font,
    draw_keyframe,
    draws_hangul,
    fallback_caption_font,
    find_cjk_font,
    load_candidates,
)
from app.coaching.messages import KeyframeReason
from app.coaching.report import ReportInput, assess, build_report, rules_summary
from app.coaching.scoring import build_timeline, compute_scores
from app.config import Settings
from app.frames import (
    FaceObservation,
    FrameAnalysis,
    GazeDirection,
    GestureObservation,
    PoseObservation,
)
from app.live.report import keyframe_picker_for, write_session_report
from app.security import REPORT_CSP, REPORT_SCRIPT, REPORT_SCRIPT_HASHES
from tests.support.contract import REPORT_FIELDS
from tests.support.manager import running_manager


# --- synthetic input ---------------------------------------------------------------------------
def metrics(
    t: float,
    *,
    face: bool = True,
    on_camera: bool | None = True,
    shoulder: float | None = 0.0,
    head: float | None = 0.0,
    sway: float | None = 0.02,
    hands: int = 2,
    activity: float | None = 0.5,
    direction: str | None = None,
) -> dict[str, Any]:
    gaze: dict[str, Any] = {"on_camera": on_camera if face else None, "yaw_deg": 0.0}
    gaze["pitch_deg"] = 0.0
    if direction is not None:  # v1.1 (None: an event log from before gaze directions)
        gaze["direction"] = direction if face else None
    return {
        "type": "metrics",
        "t": round(t, 3),
        "frame": int(t * 15),
        "face": face,
        "gaze": gaze,
        "posture": {"shoulder_tilt_deg": shoulder, "head_tilt_deg": head, "lean": 1.0},
        "gesture": {"hands_visible": hands, "activity": activity},
        "sway": sway,
        "face_size": 0.2,
        "latency_ms": 30.0,
    }


def cue(t: float, name: str, state: str) -> dict[str, Any]:
    return {"type": "cue", "t": t, "cue": name, "state": state, "severity": "warn", "message": name}


def at_5hz(seconds: float) -> list[float]:
    return [i / 5 for i in range(int(seconds * 5))]


def numbered(events: list[dict[str, Any]], session_id: str, start: int = 1) -> list[dict[str, Any]]:
    ordered = sorted(events, key=lambda e: e["t"])
    return [{**e, "session_id": session_id, "seq": start + i} for i, e in enumerate(ordered)]


def frame(
    t: float,
    *,
    found: bool = True,
    on_camera: bool = True,
    yaw: float = 0.0,
    shoulder: float = 0.0,
    activity: float | None = 0.5,
    hands: int = 2,
    direction: GazeDirection | None = None,
) -> FrameAnalysis:
    angles = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    face_pts = np.stack([320 + 60 * np.cos(angles), 180 + 80 * np.sin(angles)], axis=1)
    pose_pts = np.stack([np.linspace(150, 490, 33), np.linspace(100, 460, 33)], axis=1)
    return FrameAnalysis(
        index=int(t * 15),
        t=t,
        arrived_at=0.0,
        width=640,
        height=480,
        face=FaceObservation(
            found=found,
            yaw_deg=yaw if found else None,
            pitch_deg=0.0 if found else None,
            roll_deg=0.0 if found else None,
            gaze_on_camera=on_camera if found else None,
            gaze_direction=direction if found else None,
            landmarks=face_pts if found else None,
        ),
        pose=PoseObservation(
            found=True,
            shoulder_tilt_deg=shoulder,
            head_tilt_deg=0.0,
            lean=1.0,
            landmarks=pose_pts,
        ),
        gesture=GestureObservation(hands_visible=hands, activity=activity),
        sway=0.02,
    )


def image_for(t: float, size: tuple[int, int] = (720, 1280)) -> np.ndarray:
    """A frame whose colour encodes its time, so a test can tell which frame was kept."""
    value = int(t * 10) % 256
    return np.full((*size, 3), value, dtype=np.uint8)


# --- scoring -----------------------------------------------------------------------------------
def test_eye_contact_score_is_the_share_of_time_looking(settings: Settings) -> None:
    facing = [metrics(t) for t in at_5hz(20)]
    half_away = [metrics(t, on_camera=(int(t) % 2 == 0)) for t in at_5hz(20)]
    lost = [metrics(t, face=(t < 15)) for t in at_5hz(20)]
    assert compute_scores(facing, [], [], settings).eye_contact == 100
    assert compute_scores(half_away, [], [], settings).eye_contact == 50
    # a lost face counts as not looking at the audience
    assert compute_scores(lost, [], [], settings).eye_contact == 75
    # unknown gaze with a face is left out, not counted against the presenter
    unknown = [metrics(t, on_camera=None if t >= 10 else True) for t in at_5hz(20)]
    assert compute_scores(unknown, [], [], settings).eye_contact == 100
    assert compute_scores([], [], [], settings).eye_contact is None


def test_where_the_eyes_were_adds_up_with_the_eye_contact_score(settings: Settings) -> None:
    # 20 s: the camera for 10, down at the notes for 6, to their left 2, face gone 2
    def looking(t: float) -> dict[str, Any]:
        if t < 10:
            return metrics(t, direction="camera")
        if t < 16:
            return metrics(t, on_camera=False, direction="down")
        if t < 18:
            return metrics(t, on_camera=False, direction="left")
        return metrics(t, face=False, direction="camera")

    events = [looking(t) for t in at_5hz(20)]
    inp = ReportInput(session_id="s" * 24, title="", language="en", duration_s=20.0, events=events)
    built = build_report(inp, settings)
    shares = built.data["gaze_shares"]
    assert shares == {
        "camera": 0.5,
        "down": 0.3,
        "up": 0.0,
        "left": 0.1,
        "right": 0.0,
        "closed": 0.0,
        "no_face": 0.1,
    }
    assert round(100 * shares["camera"]) == built.data["scores"]["eye_contact"]
    assert "You looked down 30% of the time: at your notes?" in built.data["summary"]
    assert "Where your eyes were:" in built.html and "down 30%" in built.html
    assert "to your left 10%" in built.html and "up 0%" not in built.html
    korean = build_report(replace(inp, language="ko"), settings)
    assert "30%의 시간 동안 아래를 봤어요" in korean.data["summary"]
    assert "시선이 머문 곳" in korean.html and "아래 30%" in korean.html

    # under a fifth of the time down, the summary says nothing of it; a log from before
    # directions has no shares (not a made-up "camera" share)
    brief = [
        metrics(t, on_camera=t >= 3, direction="camera" if t >= 3 else "down") for t in at_5hz(20)
    ]
    brief_report = build_report(replace(inp, events=brief), settings).data
    assert brief_report["gaze_shares"]["down"] == 0.15
    assert "looked down" not in brief_report["summary"]
    older = build_report(replace(inp, events=[metrics(t) for t in at_5hz(20)]), settings)
    assert older.data["gaze_shares"] is None and "Where your eyes were" not in older.html
    # a rehearsal that never showed a face: all out of view, not "not measured"
    unseen = [metrics(t, face=False, direction="camera") for t in at_5hz(4)]
    shares = build_report(replace(inp, events=unseen), settings).data["gaze_shares"]
    assert shares["no_face"] == 1.0 and shares["camera"] == 0.0


def test_the_camera_share_on_the_page_is_the_eye_contact_score(settings: Settings) -> None:
    # 47 of 101 samples on the camera: 46.53 %, which a share rounded to 0.465 first would
    # show as 46 beside a score of 47
    events = [
        metrics(i / 5, on_camera=i < 47, direction="camera" if i < 47 else "down")
        for i in range(101)
    ]
    inp = ReportInput(session_id="s" * 24, title="", language="en", duration_s=21.0, events=events)
    built = build_report(inp, settings)
    assert built.data["scores"]["eye_contact"] == 47
    assert "on the camera 47%" in built.html and "down 53%" in built.html


def test_posture_score_falls_linearly_past_the_thresholds(settings: Settings) -> None:
    limit = settings.cues.shoulder_tilt_max_deg
    upright = [metrics(t, shoulder=limit * 0.9) for t in at_5hz(10)]
    tilted = [metrics(t, shoulder=limit * 1.5) for t in at_5hz(10)]
    very = [metrics(t, head=settings.cues.head_tilt_max_deg * 3) for t in at_5hz(10)]
    swaying = [metrics(t, sway=settings.cues.sway_max * 1.25) for t in at_5hz(10)]
    unmeasured = [metrics(t, shoulder=None, head=None, sway=None) for t in at_5hz(10)]
    assert compute_scores(upright, [], [], settings).posture == 100
    assert compute_scores(tilted, [], [], settings).posture == 50
    assert compute_scores(very, [], [], settings).posture == 0
    assert compute_scores(swaying, [], [], settings).posture == 75
    assert compute_scores(unmeasured, [], [], settings).posture is None


def test_gesture_score_rewards_regular_moderate_movement(settings: Settings) -> None:
    def moving_every(period: float) -> list[dict[str, Any]]:
        return [metrics(t, activity=1.0 if (t % period) < 0.5 else 0.0) for t in at_5hz(40)]

    assert compute_scores(moving_every(3.0), [], [], settings).gestures == 100
    still = [metrics(t, activity=0.0) for t in at_5hz(40)]
    assert compute_scores(still, [], [], settings).gestures == 0
    # moving every 16 s: long stretches with no gesture within +-4 s
    sparse = compute_scores(moving_every(16.0), [], [], settings).gestures
    assert sparse is not None and 30 < sparse < 80
    frantic = [metrics(t, activity=settings.cues.gesture_excess_activity * 2) for t in at_5hz(40)]
    assert compute_scores(frantic, [], [], settings).gestures == 0
    no_body = [metrics(t, shoulder=None, head=None, hands=0, activity=None) for t in at_5hz(10)]
    assert compute_scores(no_body, [], [], settings).gestures is None


def test_voice_score_is_the_cue_free_share_and_overall_the_mean(settings: Settings) -> None:
    voice = [{"type": "voice", "t": float(t), "level_dbfs": -20.0} for t in range(20)]
    cues = [
        cue(5.0, "too_quiet", "on"),
        cue(15.0, "too_quiet", "off"),
        cue(10.0, "too_fast", "on"),
        cue(12.0, "too_fast", "off"),
        cue(3.0, "eye_contact", "on"),
        cue(8.0, "eye_contact", "off"),
    ]
    samples = [metrics(t) for t in at_5hz(20)]
    scores = compute_scores(samples, voice, cues, settings)
    assert scores.voice == 50  # 10 of 20 s under a voice cue (overlaps counted once)
    assert compute_scores(samples, [], cues, settings).voice is None
    parts = [scores.eye_contact, scores.posture, scores.gestures, scores.voice]
    assert scores.overall == round(sum(p for p in parts if p is not None) / 4)


def test_timeline_has_one_row_a_second(settings: Settings) -> None:
    samples = [metrics(t, on_camera=t < 5) for t in at_5hz(10.4)]
    samples.append(metrics(10.9, on_camera=False))  # past the duration: folds into the last row
    voice = [
        {"type": "voice", "t": 2.0, "level_dbfs": -30.0},
        {"type": "voice", "t": 2.5, "level_dbfs": -20.0},
    ]
    rows = build_timeline(samples, voice, 10.4, settings)
    assert [r.t for r in rows] == list(range(11))
    assert rows[0].eye_contact == 100.0 and rows[6].eye_contact == 0.0
    assert rows[2].voice_level == -25.0 and rows[3].voice_level is None
    assert rows[4].gesture_activity == 0.5
    assert build_timeline([], [], 0.0, settings) == []


# --- keyframes ---------------------------------------------------------------------------------
def test_pace_pauses_and_fillers_reach_the_timeline_and_the_page(settings: Settings) -> None:
    voice = [
        {
            "type": "voice",
            "t": float(t),
            "level_dbfs": -20.0,
            "speaking": t != 3,
            "syllables_per_s": None if t == 3 else 4.0 + t / 10,
        }
        for t in range(6)
    ]
    transcript = {
        "made": True,
        "source": "vosk",
        "text": "음 안녕하세요 어 오늘은",
        "fillers": [{"text": "음", "t": 0.4}, {"text": "어", "t": 4.2}],
    }
    inp = ReportInput(
        session_id="s" * 20,
        title="t",
        language="ko",
        duration_s=6.0,
        events=voice,
        transcript=transcript,
    )
    rows = assess(inp, settings).timeline
    assert [r.fillers for r in rows] == [1, 0, 0, 0, 1, 0]
    assert rows[3].speaking is False and rows[3].speech_rate is None
    assert rows[1].speaking is True and rows[1].speech_rate == 4.1
    report = build_report(inp, settings)
    assert report.data["transcript"]["source"] == "vosk"
    assert [f["word"] for f in report.data["fillers"]["items"]] == ["음", "어"]
    html = report.html
    assert "말 빠르기" in html and html.count("<svg") >= 5
    assert "음 (0:00)" in html


async def test_picker_keeps_best_and_worst_and_copies_only_on_replacement(
    settings: Settings, tmp_path: Path
) -> None:
    picker = KeyframePicker(settings, tmp_path / "keyframes", persist_every_s=3600)
    plan: list[tuple[float, dict[str, Any]]] = [
        (0.0, {"on_camera": True, "yaw": 10.0}),
        (1.0, {"on_camera": True, "yaw": 2.0}),  # best eye contact: nearest to centre
        (2.0, {"on_camera": False, "yaw": 30.0}),
        (3.0, {"on_camera": False, "yaw": 55.0}),  # worst: furthest away
        (4.0, {"found": False}),  # a lost face is less instructive than looking away
        (5.0, {"on_camera": True, "yaw": 5.0, "shoulder": 20.0}),  # worst posture
    ]
    images = []
    for t, kw in plan:
        image = image_for(t)
        images.append(image)
        picker.observe(frame(t, **kw), image)
    for t in np.arange(6.0, 12.0, 0.2):  # unremarkable frames: no new copies
        picker.observe(frame(float(t), on_camera=True, yaw=8.0), image_for(float(t)))
    found = {(c.category, c.kind): c for c in picker.candidates()}
    assert found[("eye_contact", "best")].t == 1.0
    assert found[("eye_contact", "worst")].t == 3.0
    assert found[("eye_contact", "worst")].reason == "eye_away"  # no direction: a v1 frame
    assert found[("posture", "worst")].t == 5.0
    assert picker.replacements <= 12
    best = found[("eye_contact", "best")]
    assert max(best.image.shape[:2]) == settings.report.keyframe_max_side
    assert int(best.image[0, 0, 0]) == 10  # the pixels of the frame at t=1.0
    images[1][:] = 0  # the caller reuses its buffer: the candidate holds its own copy
    assert int(best.image[0, 0, 0]) == 10
    # landmarks follow the downscale (640 -> 480 wide analysis frame, 1280 -> 480 image)
    assert best.face_landmarks is not None
    assert best.face_landmarks[:, 0].max() == pytest.approx(380 * 480 / 640, abs=0.5)

    await picker.flush()
    loaded = {(c.category, c.kind): c for c in load_candidates(tmp_path / "keyframes")}
    assert set(loaded) == set(found)
    assert loaded[("eye_contact", "worst")].t == 3.0
    assert loaded[("eye_contact", "best")].face_landmarks is not None
    assert loaded[("eye_contact", "best")].image.shape == best.image.shape


async def test_the_worst_eye_contact_moment_says_where_the_eyes_were(
    settings: Settings, tmp_path: Path
) -> None:
    picker = KeyframePicker(settings, tmp_path / "keyframes", persist_every_s=3600)
    picker.observe(frame(0.0, on_camera=True, direction="camera"), image_for(0.0))
    # eyes on the notes with the head nearly level, then a glance aside with the head turned
    picker.observe(frame(1.0, on_camera=False, yaw=4.0, direction="down"), image_for(1.0))
    worst = {(c.category, c.kind): c for c in picker.candidates()}[("eye_contact", "worst")]
    assert worst.reason == "eye_down"
    assert kf.caption_text(worst, "en") == "Looking down (at notes?) · 0:01"
    assert kf.caption_text(worst, "ko").startswith("시선이 아래로 향함")
    picker.observe(frame(2.0, on_camera=False, yaw=40.0, direction="left"), image_for(2.0))
    worst = {(c.category, c.kind): c for c in picker.candidates()}[("eye_contact", "worst")]
    assert (worst.t, worst.reason) == (2.0, "eye_side")  # furthest from the lens, as before


async def test_picker_persists_at_most_every_interval(settings: Settings, tmp_path: Path) -> None:
    directory = tmp_path / "keyframes"
    picker = KeyframePicker(settings, directory, persist_every_s=3600)
    picker.observe(frame(0.0, yaw=10.0), image_for(0.0))  # the first change writes at once
    await picker.aclose()
    first = {p.name: p.stat().st_mtime_ns for p in directory.glob("*.json")}
    assert "eye_contact-best.json" in first
    picker.observe(frame(1.0, yaw=1.0), image_for(1.0))  # better, but within the interval
    await picker.aclose()
    assert json.loads((directory / "eye_contact-best.json").read_text())["t"] == 0.0
    await picker.flush()
    assert json.loads((directory / "eye_contact-best.json").read_text())["t"] == 1.0


def _candidate(reason: KeyframeReason = "eye_good", kind: kf.Kind = "best") -> Candidate:
    return Candidate(
        category="eye_contact",
        kind=kind,
        t=75.0,
        quality=1.0,
        reason=reason,
        image=np.full((270, 480, 3), 90, np.uint8),
        face_landmarks=np.array([[240.0, 100.0], [250.0, 110.0]], np.float32),
        pose_landmarks=np.stack([np.linspace(100, 380, 33), np.linspace(60, 250, 33)], 1),
    )


def test_korean_captions_render_with_a_cjk_font() -> None:
    path = find_cjk_font()
    assert path is not None, "install fonts-noto-cjk (Debian) for Korean captions"
    font = caption_font(28)
    assert font.cjk and draws_hangul(font.font)
    left, top, right, bottom = font.font.getbbox("시선 처리")
    assert right - left > 40 and bottom - top > 10
    # the fallback font has no Hangul: it would draw identical boxes ("tofu")
    assert not draws_hangul(fallback_caption_font(28).font)

    with_cjk = np.asarray(draw_keyframe(_candidate(), "ko"))
    fallback = np.asarray(draw_keyframe(_candidate(), "ko", fonts=fallback_caption_font))
    assert with_cjk.shape == fallback.shape == (270, 480, 3)
    bar = slice(270 - 40, 270)
    assert (with_cjk[bar] > 200).any()  # white caption text in the bar
    assert not np.array_equal(with_cjk[bar], fallback[bar])
    # landmarks are drawn in the kind's colour
    assert tuple(with_cjk[100, 240]) != (90, 90, 90)


def test_caption_falls_back_to_ascii_without_a_cjk_font() -> None:
    drawn = []

    def recording_font(size: int) -> kf.CaptionFont:
        font = fallback_caption_font(size)
        drawn.append(font)
        return font

    image = draw_keyframe(_candidate("face_lost", "worst"), "ko", fonts=recording_font)
    assert image.size == (480, 270) and drawn
    assert kf._ascii_caption(_candidate("face_lost")) == "Face out of view - 1:15"
    assert kf.caption_text(_candidate("face_lost"), "ko") == "얼굴이 화면 밖에 있음 · 1:15"
    assert kf._ascii_caption(_candidate("face_hidden")) == (
        "Face hidden (head down or turned away) - 1:15"
    )


def test_a_lost_face_is_captioned_as_face_lost_said_it(settings: Settings) -> None:
    """A frame with no face rates the eye contact with the word the stage chain puts on it
    while `face_lost` is on: hidden in the frame (head bowed or turned away), or out of it;
    before the cue turns on (no word), a loss is no moment."""
    lost = FrameAnalysis(
        0,
        1.0,
        1.0,
        640,
        480,
        FaceObservation(False),
        PoseObservation(False),
        GestureObservation(0, None),
    )
    reasons = [
        kf.rate_frame(replace(lost, face_hidden=hidden), settings)["eye_contact"]
        for hidden in (True, False)
    ]
    assert [r.reason for r in reasons] == ["face_hidden", "face_lost"]
    assert {(r.good, r.quality) for r in reasons} == {(False, 0.25)}
    assert "eye_contact" not in kf.rate_frame(lost, settings)


# --- the report --------------------------------------------------------------------------------
class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def _session_events(session_id: str) -> list[dict[str, Any]]:
    events = [metrics(t, on_camera=not (6 <= t < 10)) for t in at_5hz(20)]
    events += [
        cue(7.5, "eye_contact", "on"),
        cue(11.5, "eye_contact", "off"),
        cue(16.0, "gesture_none", "on"),
    ]
    item = {
        "category": "eye_contact",
        "observation": "You looked down <b>often</b>.",
        "suggestion": "Look up.",
        "severity": "warn",
        "frame_t": 8.0,
    }
    events.append(rules_critique(20.0, [item]))
    return numbered(events, session_id)


def rules_critique(t_end: float, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A rules critique event of the stretch from 0 to `t_end`."""
    return {
        "type": "critique",
        "t": t_end,
        "source": "rules",
        "t_start": 0.0,
        "t_end": t_end,
        "items": items,
    }


def test_report_is_the_contract_json_and_a_safe_page(settings: Settings) -> None:
    title = '<script>alert("x")</script> Demo'
    session_id = "s" * 24
    picker = KeyframePicker(settings, None)
    for t in at_5hz(20):
        picker.observe(
            frame(t, on_camera=not (6 <= t < 10), yaw=25.0 if 6 <= t < 10 else 3.0),
            image_for(t, (480, 640)),
        )
    inp = ReportInput(
        session_id=session_id,
        title=title,
        language="en",
        duration_s=20.0,
        events=_session_events(session_id),
        keyframe_candidates=picker.candidates(),
        recording_url=f"/api/sessions/{session_id}/recording.webm",
    )
    built = build_report(inp, settings)
    report = built.data
    assert set(report) >= REPORT_FIELDS
    assert report["session_id"] == session_id and report["title"] == title
    assert report["language"] == "en" and report["duration_s"] == 20.0
    assert set(report["scores"]) == {"eye_contact", "posture", "gestures", "voice", "overall"}
    assert report["scores"]["eye_contact"] == 80 and report["scores"]["voice"] is None
    assert all(
        isinstance(report["scores"][k], int)
        for k in ("eye_contact", "posture", "gestures", "overall")
    )
    assert [row["t"] for row in report["timeline"]] == list(range(20))
    # the contract's fields, plus the additive pace/pause/filler ones
    assert set(report["timeline"][0]) == {
        "t",
        "eye_contact",
        "posture",
        "gesture_activity",
        "voice_level",
        "speech_rate",
        "speaking",
        "fillers",
    }
    assert report["transcript"] is None and report["transcript_note"]
    assert report["fillers"] == {"count": 0, "per_minute": None, "items": []}
    assert report["content"] is None
    assert [c["cue"] for c in report["cues"]] == ["eye_contact", "eye_contact", "gesture_none"]
    assert report["critiques"][0]["items"][0]["frame_t"] == 8.0
    assert isinstance(report["summary"], str) and len(report["summary"]) > 40
    assert report["summary_source"] == "rules"
    assert report["recording_url"] == f"/api/sessions/{session_id}/recording.webm"
    kinds = {(k["category"], k["kind"]) for k in report["keyframes"]}
    assert {("eye_contact", "best"), ("eye_contact", "worst")} <= kinds
    worst_eye = next(
        k for k in report["keyframes"] if (k["category"], k["kind"]) == ("eye_contact", "worst")
    )
    assert 6.0 <= worst_eye["t"] < 10.0 and worst_eye["caption"].endswith("0:06")
    for k in report["keyframes"]:
        assert k["image"].startswith("data:image/jpeg;base64,")
        jpeg = Image.open(io.BytesIO(base64.b64decode(k["image"].split(",", 1)[1])))
        assert jpeg.format == "JPEG" and max(jpeg.size) <= settings.report.keyframe_max_side

    html = built.html
    doc = parse(html)
    names = [tag for tag, _ in doc.tags]
    assert names.count("svg") == 4 and "polyline" in names
    shaded = [a for tag, a in doc.tags if tag == "rect" and a.get("class") == "cue"]
    assert len(shaded) >= 2  # eye-contact period and the still-open gesture cue
    images = [a["src"] for tag, a in doc.tags if tag == "img"]
    assert len(images) == len(report["keyframes"])
    assert all(src and src.startswith("data:image/jpeg;base64,") for src in images)
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Demo" in html
    assert "<b>often</b>" not in html and "&lt;b&gt;often&lt;/b&gt;" in html
    assert all("alert" not in text for text in doc.script_text)
    assert "@media print" in html and "@media (max-width" in html


def test_report_plays_its_recording_from_every_moment(settings: Settings) -> None:
    """report.html shows the recording; the cues' markers and times, the charts' cue shades,
    the critiques and the keyframes carry `data-t` (seconds); the one inline script that seeks
    is the one the report's CSP allows by hash, and the downloaded file finds the recording
    beside it."""
    session_id = "p" * 24
    picker = KeyframePicker(settings, None)
    for t in at_5hz(20):
        picker.observe(frame(t, on_camera=not (6 <= t < 10)), image_for(t, (480, 640)))
    inp = ReportInput(
        session_id=session_id,
        title="Seed round",
        language="ko",
        duration_s=20.0,
        events=_session_events(session_id),
        keyframe_candidates=picker.candidates(),
        recording_url=f"/api/sessions/{session_id}/recording.webm",
    )
    doc = parse(build_report(inp, settings).html)
    [video] = [a for tag, a in doc.tags if tag == "video"]
    assert video["id"] == "recording" and video["data-src"] == inp.recording_url
    assert video["preload"] == "none"  # nothing is fetched before the script adds the token
    sources = [a["src"] for tag, a in doc.tags if tag == "source"]
    assert sources == ["recording.webm", f"rehearsal-{session_id[:8]}.webm"]
    moments = [(tag, a) for tag, a in doc.tags if "data-t" in a]
    markers = [
        float(a["data-t"] or "nan") for tag, a in moments if a.get("class") == "marker sev-warn"
    ]
    assert markers == [7.5, 16.0]  # every cue that turned on, in time order
    at = sorted(float(a["data-t"] or "nan") for tag, a in moments if a.get("class") == "at")
    assert at == [7.5, 16.0]  # the cues table: when each cue turned on
    assert all(tag == "button" for tag, a in moments if a.get("class", "").startswith("marker"))
    assert {float(a["data-t"] or "nan") for tag, a in moments if tag == "rect"} >= {7.5}
    assert len([1 for tag, _ in moments if tag == "figure"]) == len(picker.candidates())
    assert [a["data-t"] for tag, a in moments if a.get("class") == "when"] == ["0.0"]
    script = "".join(doc.script_text)
    assert script == REPORT_SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    # A changed script must be released: its hash appended to the list (stored reports keep the
    # one they were built with, so none is ever removed), and the policy allows every one.
    assert f"sha256-{digest}" in REPORT_SCRIPT_HASHES
    script_src = REPORT_CSP.split("script-src ", 1)[1].split(";", 1)[0].split()
    assert script_src == [f"'{h}'" for h in REPORT_SCRIPT_HASHES]
    assert len(set(REPORT_SCRIPT_HASHES)) == len(REPORT_SCRIPT_HASHES)
    assert "media-src 'self'" in REPORT_CSP

    # Without a recording there is no player and no script.
    bare = parse(build_report(replace(inp, recording_url=None), settings).html)
    assert not [tag for tag, _ in bare.tags if tag in ("video", "script")]


async def test_recovered_report_uses_the_persisted_keyframes(settings: Settings) -> None:
    """End to end through a real manager: what a crash left in the repository and the session's
    folder is gathered, the report written, the keyframe copies removed."""
    async with running_manager(settings) as manager:
        session, _token, _ = await manager.create(
            title="복구 테스트", language="ko", critique_interval_s=None, client="test"
        )
        await manager.repo.add_events(_session_events(session.id))
        await manager.repo.update_session(session.id, recovered=True, duration_s=None)
        picker = keyframe_picker_for(session)
        for t in at_5hz(12):
            picker.observe(
                frame(t, on_camera=t < 6, yaw=3.0 if t < 6 else 40.0), image_for(t, (480, 640))
            )
        await picker.flush()  # what a killed process left on disk
        directory = manager.session_dir(session.id)
        assert (directory / "keyframes").is_dir()
        await write_session_report(manager, session.id, session=None)
        report = json.loads((directory / "report.json").read_text("utf-8"))
        assert report["recovered"] is True and report["language"] == "ko"
        assert report["duration_s"] == 20.0  # no recorded duration: the last event's time
        assert len(report["timeline"]) == 20
        assert report["recording_url"] is None
        captions = {
            k["kind"]: k["caption"] for k in report["keyframes"] if k["category"] == "eye_contact"
        }
        assert captions["worst"].startswith("시선이 청중을 벗어남")
        html = (directory / "report.html").read_text("utf-8")
        assert '<html lang="ko">' in html and "시선 처리" in html and "복구" in html
        # the crash-safety copies are gone once the report embeds the keyframes
        assert not (directory / "keyframes").exists()


def test_report_for_an_empty_session_is_complete(settings: Settings) -> None:
    inp = ReportInput(session_id="s" * 24, title="", language="en", duration_s=0.0, events=[])
    built = build_report(inp, settings)
    report = built.data
    assert report["scores"] == {
        "eye_contact": None,
        "posture": None,
        "gestures": None,
        "voice": None,
        "overall": None,
    }
    assert report["timeline"] == [] and report["keyframes"] == []
    assert "not enough video" in report["summary"]
    doc = parse(built.html)
    assert [tag for tag, _ in doc.tags].count("svg") == 4


def test_summary_names_the_strongest_and_weakest_area(settings: Settings) -> None:
    events = [metrics(t, shoulder=settings.cues.shoulder_tilt_max_deg * 1.6) for t in at_5hz(60)]
    events += [cue(2.0, "posture", "on"), cue(50.0, "posture", "off")]
    for language, strongest, weakest in (
        ("en", "eye contact (100/100)", "Posture needs"),
        ("ko", "시선 처리(100점)", "자세(40점)"),
    ):
        inp = ReportInput(
            session_id="s" * 24,
            title="t",
            language=language,  # type: ignore[arg-type]
            duration_s=60.0,
            events=events,
        )
        findings = assess(inp, settings)
        text = rules_summary(findings)
        assert strongest in text and weakest in text
        assert findings.cue_summary[0].cue == "posture" and findings.cue_summary[0].seconds == 48.0


def test_a_cue_row_says_what_its_cues_said_only_where_they_agree(settings: Settings) -> None:
    """The cue summary row takes the cue's logged message (a face hidden in the frame, a look
    down) where every time it turned on said the same; a cue that said different things, or
    nothing (an old log), gets its plain message. The timeline markers and the charts' shading
    take each one's own."""
    hidden = "얼굴이 보이지 않아요. 고개를 숙이거나 돌리고 있나요? 카메라를 바라보세요."
    down = "아래를 보고 있어요. 메모를 읽고 있나요? 카메라를 바라보세요."
    events: list[dict[str, Any]] = [metrics(t) for t in at_5hz(60)]
    for start, name, message in (
        (5.0, "face_lost", hidden),
        (20.0, "face_lost", hidden),
        (10.0, "eye_contact", down),
        (30.0, "eye_contact", "카메라(청중)를 바라보세요."),
        (40.0, "posture", None),
    ):
        on = {**cue(start, name, "on"), "message": message}
        events += [on, cue(start + 3.0, name, "off")]
    inp = ReportInput(session_id="s" * 24, title="t", language="ko", duration_s=60.0, events=events)
    built = build_report(inp, settings)
    rows = {row["cue"]: row["message"] for row in built.data["cue_summary"]}
    assert rows["face_lost"] == hidden
    assert rows["eye_contact"] == "카메라(청중)를 바라보세요."  # the plain one: they disagree
    assert rows["posture"] == "어깨가 기울어졌어요. 바르게 서 보세요."  # none logged: the plain one
    html = built.html
    assert html.count(f"· {hidden}</button>") == 2 and html.count(f"· {down}</button>") == 1
    # ... and the eye-contact chart shades each period with what its cue said
    assert html.count(f"<title>{hidden}</title>") == 2 and html.count(f"<title>{down}</title>") == 1


def test_critiques_and_cue_times_are_said_in_the_reports_language(settings: Settings) -> None:
    """A critique's source and categories and the cue table's seconds are words of the
    report's language, not the event's keys; a category the report does not know is shown as
    it came."""
    session_id = "k" * 24
    events = [metrics(t) for t in at_5hz(20)] + [
        cue(2.0, "posture", "on"),
        cue(8.0, "posture", "off"),
    ]
    items = [
        {"category": c, "observation": "o", "suggestion": "s", "severity": "info", "frame_t": None}
        for c in ("posture", "voice", "lighting")
    ]
    events.append(rules_critique(20.0, items))
    inp = ReportInput(
        session_id=session_id,
        title="t",
        language="ko",
        duration_s=20.0,
        events=numbered(events, session_id),
    )
    korean = build_report(inp, settings).html
    assert "<strong>자세</strong>" in korean and "<strong>목소리</strong>" in korean
    assert "<strong>lighting</strong>" in korean  # unknown: as sent
    assert "· 코치</div>" in korean and "· rules" not in korean
    assert "6초</td>" in korean and " s</td>" not in korean
    english = build_report(replace(inp, language="en"), settings).html
    assert "<strong>Posture</strong>" in english and "· Coach</div>" in english
    assert "6 s</td>" in english
