"""The VLM critic and the scheduler against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import pytest

from app.coaching.critic import (
    CritiqueScheduler,
    RulesCritic,
    VlmCritic,
    build_critic,
)
from app.config import Settings
from app.events import CritiqueEvent, to_wire
from app.frames import FrameAnalysis, Language

from .fake_vlm import FakeVlmServer, Reply, completion
from .settings import make_settings

HANGUL = re.compile(r"[가-힣]")
GOOD_ANSWER = json.dumps(
    {
        "items": [
            {
                "category": "gaze",
                "observation": "You keep looking into the lens.",
                "suggestion": "Keep doing that at the end of each sentence.",
                "severity": "info",
                "frame_index": 1,
            },
            {
                "category": "posture",
                "observation": "Your left shoulder drops.",
                "suggestion": "Stand evenly on both feet.",
                "severity": "warn",
                "frame_index": 2,
            },
        ]
    }
)
EYE_CONTACT_CUE = {
    "type": "cue",
    "cue": "eye_contact",
    "state": "on",
    "severity": "warn",
    "t": 1.0,
    "message": "Look at the camera",
}


def vlm_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "vlm_base_url": base_url,
        "COACH_VLM_API_KEY": "test-key",
        "vlm_model": "test-vlm",
        "vlm_timeout_s": 1.0,
        "vlm_max_images": 3,
        "vlm_image_max_side": 320,
        "vlm_retries": 0,
        "critique_interval_s": 2.0,
    }
    values.update(overrides)
    return make_settings(**values)


class EventSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.emitted_at: list[float] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: CritiqueEvent) -> None:
        # as the session would put it on the wire
        self.events.append(to_wire(event, "session", len(self.events) + 1))
        self.emitted_at.append(time.monotonic())
        self._changed.set()

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        async with asyncio.timeout(30):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


def scheduler_for(
    settings: Settings,
    sink: EventSink,
    *,
    critic: Any = None,
    language: Language = "en",
    limit: asyncio.Semaphore | None = None,
    interval_s: float | None = None,
    session_id: str = "s1",
) -> CritiqueScheduler:
    return CritiqueScheduler(
        session_id=session_id,
        language=language,
        settings=settings,
        critic=critic if critic is not None else VlmCritic(settings),
        fallback=RulesCritic(settings),
        emit=sink,
        global_limit=limit or asyncio.Semaphore(settings.vlm.concurrency),
        interval_s=interval_s,
    )


def feed_window(
    scheduler: CritiqueScheduler,
    image: np.ndarray,
    make_analysis: Callable[..., FrameAnalysis],
    *,
    seconds: float = 2.0,
    fps: int = 10,
    cue_at: float | None = 1.0,
    **readings: Any,
) -> None:
    """Frames every 1/fps s over `seconds`, with the eye-contact cue turning on at `cue_at`."""
    for index in range(round(seconds * fps) + 1):
        t = index / fps
        scheduler.observe(make_analysis(index, t, **readings), image)
        if cue_at is not None and abs(t - cue_at) < 1e-9:
            scheduler.observe_cue(dict(EYE_CONTACT_CUE, t=t))


async def closed_critic(scheduler: CritiqueScheduler) -> None:
    await scheduler.aclose(final=True)
    await scheduler._critic.aclose()


def image_parts(request_body: dict[str, Any]) -> list[dict[str, Any]]:
    user = next(m for m in request_body["messages"] if m["role"] == "user")
    return [p for p in user["content"] if p["type"] == "image_url"]


def texts(request_body: dict[str, Any]) -> str:
    out = []
    for message in request_body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            out.append(content)
        else:
            out += [p["text"] for p in content if p["type"] == "text"]
    return "\n".join(out)


async def test_images_arrive_as_small_jpeg_data_urls_at_most_k(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    vlm_server.default = Reply(body=completion(GOOD_ANSWER))
    settings = vlm_settings(vlm_server.base_url, vlm_max_images=3, vlm_image_max_side=320)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink)
    feed_window(scheduler, face_image, make_analysis, seconds=4.0)  # longer than the interval
    await closed_critic(scheduler)

    assert len(vlm_server.requests) == 1
    request = vlm_server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "test-vlm"
    assert request.body["response_format"]["type"] == "json_schema"
    parts = image_parts(request.body)
    assert 1 <= len(parts) <= 3
    for part in parts:
        url = part["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
        assert raw[:3] == b"\xff\xd8\xff"  # a JPEG, not a PNG or raw pixels
        decoded = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and max(decoded.shape[:2]) <= 320
    # The cue's moment is among the frames shown, and the frames span the window.
    frame_lines = re.findall(r"^\d+\. t=([\d.]+)s \((.*)\)$", texts(request.body), re.M)
    assert len(frame_lines) == len(parts)
    assert any("eye_contact" in why for _, why in frame_lines)
    times = [float(t) for t, _ in frame_lines]
    assert times == sorted(times) and times[-1] - times[0] >= 2.0


@pytest.mark.parametrize("language", ["ko", "en"])
async def test_prompt_is_in_the_session_language(
    vlm_server: FakeVlmServer,
    face_image: np.ndarray,
    make_analysis: Callable[..., FrameAnalysis],
    language: Language,
) -> None:
    vlm_server.default = Reply(body=completion(GOOD_ANSWER))
    settings = vlm_settings(vlm_server.base_url)
    scheduler = scheduler_for(settings, EventSink(), language=language)
    feed_window(scheduler, face_image, make_analysis)
    await closed_critic(scheduler)

    prompt = texts(vlm_server.requests[0].body)
    hangul = len(HANGUL.findall(prompt))
    if language == "ko":
        assert hangul > 100 and "한국어" in prompt and "연습 구간" in prompt
    else:
        assert hangul == 0 and "in English" in prompt and "Rehearsal window" in prompt
    for category in ("gaze", "facial_expression", "gestures", "posture", "movement"):
        assert category in prompt


async def test_well_formed_answer_becomes_a_vlm_critique(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    vlm_server.default = Reply(
        body=completion(GOOD_ANSWER, prompt_tokens=700, completion_tokens=90)
    )
    settings = vlm_settings(vlm_server.base_url)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink)
    feed_window(scheduler, face_image, make_analysis)
    await closed_critic(scheduler)

    [event] = sink.events
    assert event["type"] == "critique" and event["source"] == "vlm" and "reason" not in event
    assert event["t_start"] == 0.0 and event["t"] == event["t_end"] == 2.0
    keyframe_times = sorted(k.t for k in scheduler.session_keyframes)
    assert [i["category"] for i in event["items"]] == ["gaze", "posture"]
    assert event["items"][1] == {
        "category": "posture",
        "observation": "Your left shoulder drops.",
        "suggestion": "Stand evenly on both feet.",
        "severity": "warn",
        "frame_t": keyframe_times[1],  # frame_index 2 -> the second image sent
    }
    assert scheduler.stats.outcomes["vlm"] == 1
    assert (scheduler.stats.prompt_tokens, scheduler.stats.completion_tokens) == (700, 90)
    assert scheduler.stats.images_sent == len(image_parts(vlm_server.requests[0].body))


SCHEMA_MISMATCH = json.dumps(
    {"items": [{"category": "voice", "observation": "x", "suggestion": "y", "severity": "bad"}]}
)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(status=500, body={"error": {"message": "internal"}}), "http_error"),
        (Reply(hang=True), "timeout"),
        (Reply(body=completion("this is not JSON {")), "invalid_json"),
        (Reply(body=completion(SCHEMA_MISMATCH)), "schema_mismatch"),
        (Reply(body=completion('{"notes": "fine"}')), "schema_mismatch"),
        (Reply(body=completion(None, refusal="I can't help with that.")), "refusal"),
    ],
    ids=["http500", "hang", "invalid_json", "bad_enum", "missing_items", "refusal"],
)
async def test_failures_become_rules_critiques_within_the_deadline(
    vlm_server: FakeVlmServer,
    face_image: np.ndarray,
    make_analysis: Callable[..., FrameAnalysis],
    reply: Reply,
    reason: str,
) -> None:
    vlm_server.default = reply
    deadline_s = 0.6
    settings = vlm_settings(vlm_server.base_url, vlm_timeout_s=deadline_s)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink, language="ko")
    feed_window(scheduler, face_image, make_analysis, gaze_on=False)
    started = time.monotonic()
    await scheduler.aclose(final=True)
    elapsed = time.monotonic() - started
    await scheduler._critic.aclose()

    [event] = sink.events
    assert event["source"] == "rules" and event["reason"] == reason
    assert len(vlm_server.requests) == 1
    assert sink.emitted_at[0] - vlm_server.requests[0].arrived_at <= deadline_s + 1.0
    assert elapsed <= deadline_s + 1.0
    if reason == "timeout":
        assert elapsed >= deadline_s * 0.9
    # The fallback still says something useful, in the session's language.
    gaze = [i for i in event["items"] if i["category"] == "gaze"]
    assert gaze and gaze[0]["severity"] == "warn" and "0%" in gaze[0]["observation"]
    assert all(HANGUL.search(i["observation"] + i["suggestion"]) for i in event["items"])
    assert scheduler.stats.outcomes[reason] == 1 and scheduler.stats.outcomes["vlm"] == 0


async def test_unreachable_endpoint_falls_back_with_connection_error(
    face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = vlm_settings(f"http://127.0.0.1:{port}/v1", vlm_retries=1)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink)
    feed_window(scheduler, face_image, make_analysis)
    await closed_critic(scheduler)
    assert [e["reason"] for e in sink.events] == ["connection_error"]


async def test_overloaded_endpoint_is_retried_once(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    vlm_server.script(Reply(status=503, body={"error": {"message": "busy"}}))
    vlm_server.default = Reply(body=completion(GOOD_ANSWER))
    settings = vlm_settings(vlm_server.base_url, vlm_retries=1, vlm_timeout_s=3.0)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink)
    feed_window(scheduler, face_image, make_analysis)
    await closed_critic(scheduler)
    assert len(vlm_server.requests) == 2
    assert [e["source"] for e in sink.events] == ["vlm"]
    assert scheduler.stats.vlm_calls == 1  # a retry of a refused request is not a new call


async def test_never_two_requests_in_flight_for_one_session(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    # Each answer takes 4x the interval: a naive timer would stack requests.
    vlm_server.default = Reply(body=completion(GOOD_ANSWER), delay_s=0.2)
    settings = vlm_settings(vlm_server.base_url, vlm_timeout_s=5.0)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink, interval_s=0.05)
    stop_feeding = asyncio.Event()

    async def camera() -> None:
        loop = asyncio.get_running_loop()
        start, index = loop.time(), 0
        while not stop_feeding.is_set():
            scheduler.observe(make_analysis(index, loop.time() - start), face_image)
            index += 1
            await asyncio.sleep(0.01)  # a 100 fps camera

    feeder = asyncio.create_task(camera())
    scheduler.start()
    events = await sink.wait_for(4)
    stop_feeding.set()
    await feeder
    await closed_critic(scheduler)

    assert vlm_server.max_in_flight == 1
    assert len(vlm_server.requests) == len(sink.events) >= 4
    assert all(e["source"] == "vlm" for e in sink.events)
    # Windows tile the session: each starts where the previous one ended.
    for previous, current in itertools.pairwise(events):
        assert current["t_start"] == previous["t_end"]
        assert current["t_end"] >= current["t_start"]


async def test_global_limit_bounds_requests_across_sessions(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    vlm_server.default = Reply(body=completion(GOOD_ANSWER), delay_s=0.2)
    settings = vlm_settings(vlm_server.base_url, vlm_timeout_s=5.0)
    limit = asyncio.Semaphore(1)
    sinks = [EventSink(), EventSink(), EventSink()]
    critic = VlmCritic(settings)  # shared, as the app shares it
    schedulers = [
        scheduler_for(settings, sink, critic=critic, limit=limit, session_id=f"s{i}")
        for i, sink in enumerate(sinks)
    ]
    for scheduler in schedulers:
        feed_window(scheduler, face_image, make_analysis)
    await asyncio.gather(*(s.aclose(final=True) for s in schedulers))
    await critic.aclose()
    assert len(vlm_server.requests) == 3 and vlm_server.max_in_flight == 1
    assert [e["source"] for sink in sinks for e in sink.events] == ["vlm"] * 3


async def test_cost_cap_limits_calls_and_keeps_one_for_the_summary(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    vlm_server.default = Reply(body=completion(GOOD_ANSWER))
    settings = vlm_settings(vlm_server.base_url, vlm_max_calls_per_session=3)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink)
    for _ in range(4):
        feed_window(scheduler, face_image, make_analysis)
        await scheduler._critique_window(final=False)
    assert [e["source"] for e in sink.events] == ["vlm", "vlm", "rules", "rules"]
    assert [e.get("reason") for e in sink.events[2:]] == ["capped", "capped"]
    assert len(vlm_server.requests) == 2

    vlm_server.script(Reply(body=completion("A focused rehearsal. Work on eye contact.")))
    text, source = await scheduler.summarize(duration_s=8.0, scores={"overall": 70.0})
    assert (text, source) == ("A focused rehearsal. Work on eye contact.", "vlm")
    assert len(vlm_server.requests) == 3
    text, source = await scheduler.summarize(duration_s=8.0, scores={"overall": 70.0})
    assert source == "rules" and len(vlm_server.requests) == 3
    await closed_critic(scheduler)


async def test_image_cap_limits_images_sent(
    vlm_server: FakeVlmServer, face_image: np.ndarray, make_analysis: Callable[..., FrameAnalysis]
) -> None:
    vlm_server.default = Reply(body=completion(GOOD_ANSWER))
    settings = vlm_settings(vlm_server.base_url, vlm_max_images=3, vlm_max_images_per_session=4)
    sink = EventSink()
    scheduler = scheduler_for(settings, sink)
    for _ in range(3):
        feed_window(scheduler, face_image, make_analysis)
        await scheduler._critique_window(final=False)
    sent = [len(image_parts(r.body)) for r in vlm_server.requests]
    assert sent == [3, 1]
    assert [e["source"] for e in sink.events] == ["vlm", "vlm", "rules"]
    assert scheduler.stats.images_sent == 4
    await closed_critic(scheduler)


@pytest.mark.parametrize("language", ["ko", "en"])
async def test_summary_sends_keyframes_and_falls_back_to_rules(
    vlm_server: FakeVlmServer,
    face_image: np.ndarray,
    make_analysis: Callable[..., FrameAnalysis],
    language: Language,
) -> None:
    vlm_server.default = Reply(body=completion(GOOD_ANSWER))
    settings = vlm_settings(vlm_server.base_url)
    scheduler = scheduler_for(settings, EventSink(), language=language)
    feed_window(scheduler, face_image, make_analysis, gaze_on=False)
    await scheduler.aclose(final=True)

    vlm_server.script(Reply(status=500))
    scores: dict[str, float | None] = {
        "eye_contact": 20.0,
        "posture": 90.0,
        "gestures": 70.0,
        "voice": None,
        "overall": 60.0,
    }
    shares = {"camera": 0.2, "down": 0.6, "left": 0.1, "no_face": 0.1}
    text, source = await scheduler.summarize(duration_s=2.0, scores=scores, gaze_shares=shares)
    await scheduler._critic.aclose()
    summary_request = vlm_server.requests[-1].body
    assert "response_format" not in summary_request
    assert 1 <= len(image_parts(summary_request)) <= settings.vlm.max_images
    # the model sees them too, in percent as the scores beside them
    assert '{"camera": 20, "down": 60, "left": 10, "no_face": 10}' in texts(summary_request)
    assert source == "rules" and "60" in text
    assert bool(HANGUL.search(text)) == (language == "ko")
    # the rules summary gives the report's share of the time looking down, not its own count
    assert ("60% 동안 아래를 보았습니다" if language == "ko" else "You looked down 60%") in text


async def test_no_endpoint_means_rules_only_and_no_network(
    vlm_server: FakeVlmServer,
    face_image: np.ndarray,
    make_analysis: Callable[..., FrameAnalysis],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "COACH_VLM_API_KEY", "COACH_VLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    # Were a client built anyway, the openai library would default to this server.
    monkeypatch.setenv("OPENAI_BASE_URL", vlm_server.base_url)
    settings = make_settings(critique_interval_s=0.05)
    critic = build_critic(settings)
    assert isinstance(critic, RulesCritic)

    connections: list[tuple[str, Any]] = []
    with network_audit(connections):
        sink = EventSink()
        scheduler = scheduler_for(settings, sink, critic=critic)
        feed_window(scheduler, face_image, make_analysis)
        scheduler.start()
        await sink.wait_for(1)
        feed_window(scheduler, face_image, make_analysis, gaze_on=False)
        await scheduler.aclose(final=True)
        text, source = await scheduler.summarize(duration_s=4.0, scores={"overall": 80.0})
    assert connections == []
    assert vlm_server.requests == []
    assert sink.events and all(e["source"] == "rules" for e in sink.events)
    assert all("reason" not in e for e in sink.events)
    assert source == "rules" and text
    assert scheduler.stats.vlm_calls == 0


_audit_sinks: list[list[tuple[str, Any]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _audit_sinks and event in ("socket.connect", "socket.getaddrinfo"):
        _audit_sinks[-1].append((event, args[1:] if event == "socket.connect" else args))


class network_audit:
    """Records every socket connect and name lookup made by this process while active.
    Audit hooks cannot be removed, so one is installed once and gated by `_audit_sinks`."""

    _installed = False

    def __init__(self, sink: list[tuple[str, Any]]) -> None:
        self.sink = sink

    def __enter__(self) -> None:
        import sys

        if not network_audit._installed:
            sys.addaudithook(_audit)
            network_audit._installed = True
        _audit_sinks.append(self.sink)

    def __exit__(self, *exc: object) -> None:
        _audit_sinks.remove(self.sink)
