"""The typed wire events (app/events.py): the JSON they make is the JSON the session sent before
them, docs/protocol.md lists exactly their fields, and every event of a real session validates
against the JSON Schema the server serves."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import numpy as np

from app.config import Settings
from app.events import (
    EVENT,
    CritiqueEvent,
    CritiqueEventItem,
    ErrorEvent,
    StateEvent,
    event_json_schema,
    to_wire,
)
from app.frames import (
    AudioAnalysis,
    FaceObservation,
    FrameAnalysis,
    GestureObservation,
    PoseObservation,
)
from app.live.manager import report_ready
from app.live.session import metrics_event, voice_event
from tests.fixtures.clips import Segment, encode_jpeg, labelled_clip
from tests.support.client import SessionClient
from tests.support.fake_asr import running_fake_asr
from tests.support.server import ThreadServer

PROTOCOL = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
SCHEMA = event_json_schema()
DEFS = SCHEMA["$defs"]
ENVELOPE = {"type", "session_id", "seq", "t"}


def wire_json(event: Any, seq: int = 7) -> str:
    return json.dumps(to_wire(event, "s1", seq))


# --- the same JSON as before -----------------------------------------------------------------


def test_metrics_and_voice_keep_their_fields_order_and_nulls() -> None:
    now = time.monotonic()
    analysis = FrameAnalysis(
        index=12,
        t=2.5,
        arrived_at=now,
        width=640,
        height=480,
        face=FaceObservation(True, yaw_deg=3.14159, pitch_deg=-1.06, roll_deg=None),
        pose=PoseObservation(True, shoulder_tilt_deg=2.04, head_tilt_deg=4.46, lean=1.01234),
        gesture=GestureObservation(hands_visible=2, activity=None),
        sway=0.01234,
        timings_ms={"face": 12.345},
        pose_t=2.4,
    )
    wire = to_wire(metrics_event(analysis), "s1", 7)
    assert isinstance(wire["latency_ms"], float) and wire["latency_ms"] >= 0
    wire["latency_ms"] = 1.5
    assert json.dumps(wire) == json.dumps(
        {
            "type": "metrics",
            "session_id": "s1",
            "seq": 7,
            "t": 2.5,
            "frame": 12,
            "face": True,
            "gaze": {
                "on_camera": None,
                "direction": None,
                "yaw_deg": 3.1,
                "pitch_deg": -1.1,
                "calibration": None,  # no session's tracker has seen this observation
            },
            "posture": {"shoulder_tilt_deg": 2.0, "head_tilt_deg": 4.5, "lean": 1.012},
            "gesture": {"hands_visible": 2, "activity": None},
            "sway": 0.012,
            "face_size": None,
            "latency_ms": 1.5,
            "analysis_ms": {"face": 12.3},
            "pose_age_ms": 100,
        }
    )
    voice = voice_event(AudioAnalysis(t=3.0, duration_s=1.0, level_dbfs=-20.04, speaking=True))
    assert wire_json(voice) == json.dumps(
        {
            "type": "voice",
            "session_id": "s1",
            "seq": 7,
            "t": 3.0,
            "level_dbfs": -20.0,
            "speaking": True,
            "speech_ratio": None,
            "syllables_per_s": None,
            "pitch_semitone_std": None,
            "pause_s": None,
        }
    )


def test_optional_fields_are_left_out_not_sent_as_null() -> None:
    envelope = '{"type": "state", "session_id": "s1", "seq": 7, "t": 0.0, "state": '
    assert wire_json(StateEvent(t=0.0, state="live")) == envelope + '"live"}'
    failed = StateEvent(t=0.0, state="failed", reason="never_started")
    assert wire_json(failed) == envelope + '"failed", "reason": "never_started"}'
    error = ErrorEvent(t=1.0, code="bad_frame", message="m")
    assert to_wire(error, "s1", 1)["message"] == "m" and "reason" not in to_wire(error, "s1", 1)
    item = CritiqueEventItem(
        category="gaze", observation="o", suggestion="s", severity="warn", frame_t=None
    )
    critique = CritiqueEvent(t=9.0, source="rules", t_start=0.0, t_end=9.0, items=[item])
    assert wire_json(critique) == json.dumps(
        {
            "type": "critique",
            "session_id": "s1",
            "seq": 7,
            "t": 9.0,
            "source": "rules",
            "t_start": 0.0,
            "t_end": 9.0,
            "items": [
                {
                    "category": "gaze",
                    "observation": "o",
                    "suggestion": "s",
                    "severity": "warn",
                    "frame_t": None,
                }
            ],
        }
    )
    ready = {
        "type": "report_ready",
        "session_id": "s1",
        "seq": 7,
        "t": 4.0,
        "report_url": "/api/sessions/s1/report",
        "recording_url": "/api/sessions/s1/recording.webm",
    }
    assert wire_json(report_ready("s1", 4.0, has_recording=True)) == json.dumps(ready)
    # A contract field, not an optional one: null, not left out, where no recording was kept.
    no_video = report_ready("s1", 4.0, has_recording=False)
    assert wire_json(no_video) == json.dumps({**ready, "recording_url": None})


# --- docs/protocol.md ------------------------------------------------------------------------


def documented_fields(text: str) -> dict[str, set[str]]:
    """Field -> its own fields, from a line of the protocol's event table: the backticked names
    outside parentheses (which hold values and prose); a backticked `{...}` or `[{...}]` right
    after a field lists that field's fields."""
    fields: dict[str, set[str]] = {}
    last = ""
    for token in re.findall(r"`([^`]+)`", re.sub(r"\([^()]*\)", "", text)):
        if token[0] in "{[":
            fields[last] = set(re.findall(r"\w+", token))
        else:
            fields[last := token] = set()
    return fields


def schema_fields(definition: str) -> dict[str, set[str]]:
    fields: dict[str, set[str]] = {}
    for name, prop in DEFS[definition]["properties"].items():
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        fields[name] = set(DEFS[ref.rsplit("/", 1)[1]]["properties"]) if ref else set()
    return fields


def test_the_protocol_lists_every_event_and_field_of_the_schema() -> None:
    section = PROTOCOL.read_text().split("## 3. Events")[1].split("\n## ")[0]
    (envelope,) = re.findall(r"^Every event: (.+)$", section, re.M)
    assert set(documented_fields(envelope)) == ENVELOPE
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", section, re.M))
    by_type = {t: ref.rsplit("/", 1)[1] for t, ref in SCHEMA["discriminator"]["mapping"].items()}
    assert set(rows) == set(by_type)
    for type_, definition in by_type.items():
        fields = schema_fields(definition)
        assert set(fields) >= ENVELOPE, type_
        own = {k: v for k, v in fields.items() if k not in ENVELOPE}
        assert documented_fields(rows[type_]) == own, type_


# --- a real session --------------------------------------------------------------------------


async def test_every_event_of_a_session_validates_against_the_served_schema(
    settings: Settings,
) -> None:
    # a transcription endpoint, so that the session's speech also makes `transcript` events
    with (
        running_fake_asr() as fake,
        ThreadServer(settings.updated(asr_base_url=fake.base_url)) as server,
    ):
        await _a_session_of_every_event(server)


async def _a_session_of_every_event(server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
        answer = await http.get("/api/schema/events")
        openapi = (await http.get("/openapi.json")).json()
    assert answer.status_code == 200 and answer.json() == SCHEMA
    assert "200" in openapi["paths"]["/api/schema/events"]["get"]["responses"]
    validator = jsonschema_rs.validator_for(answer.json())

    fps = 10.0
    frames = labelled_clip(fps, [Segment("frontal", 1.5), Segment("empty", 2.5)])
    tone = (3000 * np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000)).astype("<i2").tobytes()
    client = await SessionClient.create(
        server.http, server.ws, language="en", critique_interval_s=5.0
    )
    await client.connect()
    await client.send_frame(encode_jpeg(frames[0].image))
    await client.send_frame(b"not a picture")  # an `error` event
    for second in range(4):
        await client.send_frame(b"AUD1" + tone)  # a `voice` event a second
        await client.send_paced(
            [encode_jpeg(f.image) for f in frames[second * 10 : second * 10 + 10]], fps
        )
    # A busy machine analyses fewer of the frames: the camera stays on (the empty room, every
    # frame its own) until the face_lost cue has come, whatever the machine's speed.
    empty = [encode_jpeg(f.image) for f in frames[15:]]
    start = time.monotonic()
    for sent in range(600):
        if any(e["type"] == "cue" for e in client.events):
            break
        await client.send_paced([empty[sent % len(empty)]], fps, start=start + sent / fps)
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "state" and e["state"] == "completed", 120)
    await client.close()
    events = [e for e in client.events if e["type"] != "pong"]
    for _ in range(100):  # the store may write the last events a moment after they are sent
        stored = (await client.get("/events")).json()["events"]
        if len(stored) == len(events):
            break
        await asyncio.sleep(0.05)
    assert stored == events
    assert {e["type"] for e in events} == set(SCHEMA["discriminator"]["mapping"])
    for event in events:
        errors = [str(e) for e in validator.iter_errors(event)]
        assert not errors, (event, errors)
        # The model reproduces the event, field order and all: nothing on the wire escapes it.
        again = to_wire(EVENT.validate_python(event), event["session_id"], event["seq"])
        assert list(again.items()) == list(event.items())
