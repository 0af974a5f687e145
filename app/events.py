"""The wire events: everything a session says, one model per `type` (docs/protocol.md, section 3,
is checked against them by tests/test_events.py).

A stage builds a model (`CueEvent(t=..., cue=...)`); whoever numbers it (the live session's
`emit`, the upload, the finaliser's recovery) turns it into its wire form with `to_wire`: a
JSON-ready dict, which the bus, the event store, the WebSocket and the data channel carry as is
(`WireEvent`; `encode` is the text they send). `EVENT` validates a wire event back, and
`event_json_schema()` is what `GET /api/schema/events` serves, for front ends to generate their
types from.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from app.frames import CueName, GazeCalibration, GazeDirection

Severity = Literal["info", "warn"]

# An event as sent and stored: `to_wire(event, ...)`, the JSON types of an `Event`.
WireEvent = dict[str, Any]


def _is_none(value: object) -> bool:
    return value is None


def _numbered(schema: dict[str, Any]) -> None:
    schema.pop("default")  # `to_wire` fills the field in: its default is never sent


def _optional(description: str) -> Any:
    """A field that is left out of the event, rather than sent as null, when not given."""
    return Field(None, exclude_if=_is_none, description=description)


class _Model(BaseModel):
    # Unknown fields are refused, so the schema lists everything an event may carry; every
    # field is sent (`null` where not measured) except the `_optional` ones.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class EventBase(_Model):
    """What every event carries: its `type`, the session, its number `seq` in the session
    (1, 2, 3...) and its media time `t` in seconds."""

    type: str
    session_id: str = Field(default="", json_schema_extra=_numbered)
    seq: int = Field(default=0, json_schema_extra=_numbered)
    t: float


class StateEvent(EventBase):
    type: Literal["state"] = "state"
    state: Literal["live", "finalizing", "completed", "failed"]
    reason: str | None = _optional("why the session is finalizing or failed")
    recovered: bool | None = _optional("true when a replica finalised a session after a crash")


class Gaze(_Model):
    on_camera: bool | None
    direction: GazeDirection | None = Field(
        description="camera, down, up, left, right (the presenter's own) or closed; "
        "on_camera is true exactly when it is camera"
    )
    yaw_deg: float | None
    pitch_deg: float | None
    calibration: GazeCalibration | None = Field(
        default=None,
        description="the session's learning of the presenter's own look at the camera: "
        "learning (until 3 s from their first look at it), learnt, skipped (no first look "
        "within 20 s: the defaults for the session), off (the session learns none)",
    )


class Posture(_Model):
    shoulder_tilt_deg: float | None
    head_tilt_deg: float | None
    lean: float | None


class Gesture(_Model):
    hands_visible: int
    activity: float | None


class MetricsEvent(EventBase):
    """One analysed frame's measurements (at most `metrics_hz` a second)."""

    type: Literal["metrics"] = "metrics"
    frame: int
    face: bool
    gaze: Gaze
    posture: Posture
    gesture: Gesture
    sway: float | None
    face_size: float | None
    latency_ms: float | None = Field(description="frame arrival to event; null for an upload")
    analysis_ms: dict[str, float]
    pose_age_ms: int | None = Field(description="how much older than `frame` Pose's fields are")


class CueEvent(EventBase):
    type: Literal["cue"] = "cue"
    cue: CueName
    state: Literal["on", "off"]
    severity: Severity
    message: str
    direction: GazeDirection | None = _optional(
        "eye_contact on: where the presenter looks instead (as metrics.gaze.direction)"
    )
    hidden: bool | None = _optional(
        "face_lost on: true when the face is hidden in the frame (head bowed or turned away: "
        "Pose still sees the presenter's head and shoulders, or the face vanished from the "
        "middle of the frame rather than past its edge), false otherwise (it went past an "
        "edge, was never seen, or Pose sees a presenter standing far back); absent on off "
        "events and for other cues. Fixed when the cue turns on: no event updates it"
    )


class CritiqueEventItem(_Model):
    category: str
    observation: str
    suggestion: str
    severity: Severity
    frame_t: float | None


class CritiqueEvent(EventBase):
    type: Literal["critique"] = "critique"
    source: Literal["vlm", "rules"]
    t_start: float
    t_end: float
    items: list[CritiqueEventItem]
    reason: str | None = _optional("why the rules critic stood in for the VLM")


class VoiceEvent(EventBase):
    """About a second of audio (one a second while audio flows)."""

    type: Literal["voice"] = "voice"
    level_dbfs: float | None
    speaking: bool | None
    speech_ratio: float | None
    syllables_per_s: float | None
    pitch_semitone_std: float | None
    pause_s: float | None


class TranscriptWord(_Model):
    word: str
    t_start: float
    t_end: float
    filler: bool


class TranscriptEvent(EventBase):
    """The final text of one stretch of speech (times in session media time)."""

    type: Literal["transcript"] = "transcript"
    source: Literal["asr", "local"]
    t_start: float
    t_end: float
    text: str
    words: list[TranscriptWord]


class ErrorEvent(EventBase):
    """A non-fatal error: the session goes on."""

    type: Literal["error"] = "error"
    code: str
    message: str
    reason: str | None = _optional("the detail, in English")


class ReportReadyEvent(EventBase):
    type: Literal["report_ready"] = "report_ready"
    report_url: str
    recording_url: str | None  # null where no recording was kept (no video came)


Event = Annotated[
    StateEvent
    | MetricsEvent
    | CueEvent
    | CritiqueEvent
    | VoiceEvent
    | TranscriptEvent
    | ErrorEvent
    | ReportReadyEvent,
    Field(discriminator="type"),
]
# (mypy takes the Annotated union for a value, not a type)
EVENT: TypeAdapter[Event] = TypeAdapter(Event)  # type: ignore[arg-type]


def to_wire(event: Event, session_id: str, seq: int) -> WireEvent:
    """`event` as the `seq`-th of session `session_id`, in JSON types: what is sent and stored."""
    return event.model_copy(update={"session_id": session_id, "seq": seq}).model_dump(mode="json")


def encode(event: WireEvent) -> str:
    """The text message of one event (WebSocket and data channel)."""
    return json.dumps(event, ensure_ascii=False)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of `Event` as sent, served at `GET /api/schema/events`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Event",
        **EVENT.json_schema(mode="serialization"),
    }
