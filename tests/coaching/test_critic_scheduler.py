"""Keyframe choice and the scheduler's bookkeeping, without a network."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from app.coaching.critic import (
    CritiqueScheduler,
    Keyframe,
    RulesCritic,
    select_keyframes,
    thin_keyframes,
)
from app.config import Settings
from app.events import CritiqueEvent
from app.frames import AudioAnalysis, FrameAnalysis

from .settings import make_settings

PIXEL = np.zeros((2, 2, 3), np.uint8)


def frame(t: float, reason: str = "coverage") -> Keyframe:
    return Keyframe(t=t, image=PIXEL, reason=reason)


def test_select_spreads_coverage_over_the_window() -> None:
    coverage = [frame(t) for t in (1, 3, 5, 7, 9, 11, 13, 15)]
    chosen = select_keyframes(coverage, [], 4)
    assert [f.t for f in chosen] == [1, 5, 11, 15]  # both ends and evenly between
    assert select_keyframes(coverage[:2], [], 4) == coverage[:2]


def test_select_includes_cue_moments_and_still_covers() -> None:
    coverage = [frame(t) for t in (1, 5, 9, 13, 17)]
    cues = [frame(8.2, "cue:eye_contact"), frame(8.4, "cue:posture"), frame(8.6, "cue:sway")]
    chosen = select_keyframes(coverage, cues, 4)
    reasons = [f.reason for f in chosen]
    assert len(chosen) == 4 and [f.t for f in chosen] == sorted(f.t for f in chosen)
    assert reasons.count("cue:eye_contact") + reasons.count("cue:posture") == 2
    assert chosen[0].t <= 5 and chosen[-1].t >= 13  # both ends of the window are shown
    assert select_keyframes(coverage, cues, 0) == []


def test_select_with_real_distinct_images() -> None:
    # Each keyframe owns its image, as in a live session (a shared array hid a crash once:
    # field equality compared numpy images inside `in`).
    def own(t: float, reason: str = "coverage") -> Keyframe:
        return Keyframe(t=t, image=np.full((4, 4, 3), int(t), np.uint8), reason=reason)

    # A cue moment is often also a coverage moment: same t, another copy of the image.
    coverage = [own(13)]
    cues = [own(9, "cue:eye_contact"), own(13, "cue:posture")]
    chosen = select_keyframes(coverage, cues, 2)
    assert [(f.t, f.reason) for f in chosen] == [(9, "cue:eye_contact"), (13, "coverage")]


def test_thin_keeps_ends_and_prefers_cue_frames() -> None:
    frames = [frame(t) for t in range(10)] + [frame(4.5, "cue:face_lost")]
    kept = thin_keyframes(frames, 4)
    assert len(kept) == 4
    assert kept[0].t == 0 and kept[-1].t == 9
    assert any(f.reason == "cue:face_lost" for f in kept)
    assert thin_keyframes(frames, 0) == []


async def emit_nothing(event: CritiqueEvent) -> None:
    return None


def rules_scheduler(settings: Settings, emit: Any = emit_nothing) -> CritiqueScheduler:
    return CritiqueScheduler(
        session_id="s",
        language="en",
        settings=settings,
        critic=RulesCritic(settings),
        fallback=RulesCritic(settings),
        emit=emit,
        global_limit=asyncio.Semaphore(1),
    )


async def test_candidates_stay_bounded_and_are_copies(
    face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    settings = make_settings(vlm_max_images=4, vlm_image_max_side=256)
    scheduler = rules_scheduler(settings)
    image = face_image.copy()
    cues = ("eye_contact", "posture", "sway", "face_lost", "too_close", "head_tilt")
    for index in range(3000):  # 200 s at 15 fps in one window: the timer never fired
        t = index / 15
        scheduler.observe(make_analysis(index, t), image)
        if index % 100 == 50:
            cue = cues[(index // 100) % len(cues)]
            scheduler.observe_cue({"cue": cue, "state": "on", "t": t, "severity": "warn"})
    acc = scheduler._acc
    assert len(acc.coverage) <= 8 and len(acc.cue_frames) <= 4
    assert all(max(k.image.shape[:2]) <= 256 for k in acc.coverage + acc.cue_frames)
    image[:] = 0  # the caller reuses its buffer; what the critic kept must not change
    assert all(k.image.any() for k in acc.coverage + acc.cue_frames)
    assert scheduler.cue_counts == {c: 5 for c in cues}


async def test_windows_aggregate_video_and_audio(
    face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    events: list[CritiqueEvent] = []

    async def emit(event: CritiqueEvent) -> None:
        events.append(event)

    settings = make_settings()
    scheduler = rules_scheduler(settings, emit)
    for index in range(40):
        scheduler.observe(make_analysis(index, index / 10, gaze_on=index < 10), face_image)
    scheduler.observe_audio(AudioAnalysis(t=0.0, duration_s=1.0, level_dbfs=-50.0, speaking=True))
    scheduler.observe_audio(AudioAnalysis(t=1.0, duration_s=1.0, level_dbfs=-10.0, speaking=False))
    window = scheduler._cut_window(final=False)
    assert window is not None
    assert window.metrics["frames"] == 40 and window.metrics["eye_contact_ratio"] == 0.25
    assert window.metrics["voice_level_dbfs"] == -50.0  # silence does not count as voice
    assert window.t_start == 0.0 and window.t_end == 3.9
    assert 1 <= len(window.keyframes) <= settings.vlm.max_images
    assert scheduler._cut_window(final=False) is None  # nothing new since

    # A final stretch shorter than critique_min_window_s is dropped, not critiqued.
    scheduler.observe(make_analysis(40, 4.0), face_image)
    await scheduler.aclose(final=True)
    assert events == []


async def test_windows_count_where_the_eyes_were(
    face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    async def emit(event: CritiqueEvent) -> None:
        return None

    scheduler = rules_scheduler(make_settings(), emit)
    # 40 frames: 10 on the camera, 20 down, 4 to each side, 2 shut; then 10 with no face
    looks = ["camera"] * 10 + ["down"] * 20 + ["left", "right"] * 4 + ["closed"] * 2
    for index, direction in enumerate(looks):
        analysis = make_analysis(
            index, index / 10, gaze_on=direction == "camera", direction=direction
        )
        scheduler.observe(analysis, face_image)
    for index in range(40, 50):
        scheduler.observe(make_analysis(index, index / 10, face=False), face_image)
    window = scheduler._cut_window(final=False)
    assert window is not None
    m = window.metrics
    assert (m["eye_contact_ratio"], m["gaze_down_ratio"], m["gaze_side_ratio"]) == (0.25, 0.5, 0.2)
    assert (m["gaze_up_ratio"], m["gaze_closed_ratio"]) == (0.0, 0.05)
