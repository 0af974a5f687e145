"""The report's scores and its per-second timeline: the ONE place where they are defined.

Every score is 0-100 (higher is better) or `None` when the session gave nothing to measure it
on. `docs/scoring.md` explains the same definitions for presenters; keep the two in step.

The building blocks are per-sample values (one `metrics` event, at most `metrics_hz` a second,
is one sample). A timeline row holds, for its second, the same value averaged over the samples
of that second, so the chart and the score always agree:

* **Eye contact** - the share of samples in which the presenter looked at the camera
  (`gaze.on_camera`). A sample in which no face was found counts as *not* looking: the audience
  cannot see your eyes either. Samples where the face was found but the gaze could not be told
  are left out.
* **Posture** - per sample, each of shoulder tilt, head tilt and sway scores 1 while within its
  live-cue threshold (`shoulder_tilt_max_deg`, `head_tilt_max_deg`, `sway_max`) and falls
  linearly to 0 at twice the threshold; the sample's posture value is the worst of the three.
  The score is the mean over samples in which at least one of them was measured.
* **Gestures** - a sample counts as natural when the hands moved purposefully (activity at least
  `gesture_min_activity`) at some point within `gesture_none_after_s` around it (half before,
  half after) and the hands are not moving excessively right now (activity at most
  `gesture_excess_activity`). The score is the share of natural samples. `None` when no body was
  ever measured (no pose and no hand activity in any sample).
* **Voice** - the share of the time (from the first to the last voice measurement) that was free
  of every voice cue (`too_quiet`, `too_fast`, `long_pause`, `monotone`), so it uses exactly the
  thresholds the live cues use. `None` without voice measurements (no microphone).
* **Overall** - the plain mean of the scores that exist; `None` when none does.

Beside the scores, **where the eyes were** (`gaze_shares`): the share of samples looking at the
camera, down, up, to the presenter's left or right, with the eyes closed (`gaze.direction`), or
with no face found, over the samples the eye-contact score counts; so the `camera` share is that
score. `None` for an event log without gaze directions (older than v1.1).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from app.config import Settings
from app.frames import AUDIO_CUES

VOICE_CUES: tuple[str, ...] = AUDIO_CUES
Event = Mapping[str, Any]
# Where the eyes can be (`gaze_shares`): a gaze direction, or no face in view.
GazePlace = Literal["camera", "down", "up", "left", "right", "closed", "no_face"]
GAZE_PLACES: tuple[GazePlace, ...] = get_args(GazePlace)


@dataclass(frozen=True, slots=True)
class Scores:
    eye_contact: int | None
    posture: int | None
    gestures: int | None
    voice: int | None
    overall: int | None

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TimelineRow:
    t: int  # the row covers [t, t + 1) seconds
    eye_contact: float | None  # 0-100, the eye-contact score of that second
    posture: float | None  # 0-100, the posture score of that second
    gesture_activity: float | None  # mean wrist speed, shoulder widths per second
    voice_level: float | None  # mean level, dBFS
    speech_rate: float | None = None  # syllables per second of speech (the pace)
    speaking: bool | None = None  # whether that second had speech (False: a pause)
    fillers: int = 0  # filler words ("음", "um"...) the transcript found in that second


# --- per-sample values ------------------------------------------------------------------------
def eye_contact_value(face_found: bool | None, on_camera: bool | None) -> float | None:
    """1.0 looking at the camera, 0.0 looking away or no face, None when it cannot be told."""
    if face_found is False:
        return 0.0
    if on_camera is None:
        return None
    return 1.0 if on_camera else 0.0


def _within(value: float | None, limit: float) -> float | None:
    """1 within the limit, linearly down to 0 at twice the limit."""
    if value is None or limit <= 0:
        return None
    excess = abs(value) - limit
    if excess <= 0:
        return 1.0
    return max(0.0, 1.0 - excess / limit)


def posture_value(
    shoulder_tilt_deg: float | None,
    head_tilt_deg: float | None,
    sway: float | None,
    settings: Settings,
) -> float | None:
    """0..1: the worst of shoulder tilt, head tilt and sway against their cue thresholds."""
    parts = [
        _within(shoulder_tilt_deg, settings.cues.shoulder_tilt_max_deg),
        _within(head_tilt_deg, settings.cues.head_tilt_max_deg),
        _within(sway, settings.cues.sway_max),
    ]
    measured = [p for p in parts if p is not None]
    return min(measured) if measured else None


def _get(event: Event, group: str, key: str) -> Any:
    inner = event.get(group)
    return inner.get(key) if isinstance(inner, Mapping) else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Sample:
    """The values of one `metrics` event that the report uses."""

    t: float
    eye_contact: float | None
    posture: float | None
    activity: float | None  # None: not measured in this sample
    body_measured: bool  # pose or hands measured: gestures can be judged
    gaze: GazePlace | None = None  # None: the face was found, its direction not told


def gaze_place(face_found: bool | None, direction: Any) -> GazePlace | None:
    """Where one sample's eyes were: `no_face`, the gaze direction, or None (not told)."""
    if face_found is False:
        return "no_face"
    if face_found is True and direction in GAZE_PLACES and direction != "no_face":
        return direction  # type: ignore[no-any-return]
    return None


def sample_from_metrics(event: Event, settings: Settings) -> Sample:
    face = event.get("face")
    activity = _num(_get(event, "gesture", "activity"))
    shoulder = _num(_get(event, "posture", "shoulder_tilt_deg"))
    head = _num(_get(event, "posture", "head_tilt_deg"))
    sway = _num(event.get("sway"))
    hands = _get(event, "gesture", "hands_visible")
    return Sample(
        t=float(event["t"]),
        eye_contact=eye_contact_value(
            face if isinstance(face, bool) else None, _get(event, "gaze", "on_camera")
        ),
        posture=posture_value(shoulder, head, sway, settings),
        activity=activity,
        body_measured=activity is not None
        or shoulder is not None
        or (isinstance(hands, int) and hands > 0),
        gaze=gaze_place(face if isinstance(face, bool) else None, _get(event, "gaze", "direction")),
    )


# --- scores -----------------------------------------------------------------------------------
def _percent(values: Iterable[float | None]) -> int | None:
    measured = [v for v in values if v is not None]
    if not measured:
        return None
    return round(100 * sum(measured) / len(measured))


def gesture_natural(samples: Sequence[Sample], settings: Settings) -> list[float]:
    """Per sample 1.0 (natural) or 0.0, as defined in the module docstring. Samples must be in
    time order. Linear time: a two-pointer sweep over the samples that showed purposeful motion."""
    half = settings.cues.gesture_none_after_s / 2
    moving_ts = [
        s.t
        for s in samples
        if s.activity is not None and s.activity >= settings.cues.gesture_min_activity
    ]
    out: list[float] = []
    j = 0
    for s in samples:
        while j < len(moving_ts) and moving_ts[j] < s.t - half:
            j += 1
        lively = j < len(moving_ts) and moving_ts[j] <= s.t + half
        excessive = s.activity is not None and s.activity > settings.cues.gesture_excess_activity
        out.append(1.0 if lively and not excessive else 0.0)
    return out


def cue_periods(cue_events: Iterable[Event], end_t: float) -> list[tuple[str, float, float]]:
    """(cue, start, end) for each on..off pair; a cue still on at the end runs to `end_t`."""
    open_at: dict[str, float] = {}
    periods: list[tuple[str, float, float]] = []
    for e in sorted(cue_events, key=lambda e: (float(e["t"]), int(e.get("seq", 0)))):
        cue, state, t = str(e.get("cue")), e.get("state"), float(e["t"])
        if state == "on":
            open_at.setdefault(cue, t)
        elif state == "off" and cue in open_at:
            periods.append((cue, open_at.pop(cue), t))
    for cue, start in open_at.items():
        periods.append((cue, start, max(start, end_t)))
    periods.sort(key=lambda p: (p[1], p[0]))
    return periods


def _union_length(spans: Iterable[tuple[float, float]], lo: float, hi: float) -> float:
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted((max(lo, s), min(hi, e)) for s, e in spans):
        if end <= start:
            continue
        if cur_end is None or start > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def voice_score(voice_events: Sequence[Event], cue_events: Sequence[Event]) -> int | None:
    measured = [e for e in voice_events if _num(e.get("level_dbfs")) is not None]
    if not measured:
        return None
    lo = min(float(e["t"]) for e in measured)
    hi = max(float(e["t"]) + (_num(e.get("duration_s")) or 1.0) for e in measured)
    span = hi - lo
    if span <= 0:
        return None
    voice_cues = [e for e in cue_events if e.get("cue") in VOICE_CUES]
    flagged = _union_length(((s, e) for _c, s, e in cue_periods(voice_cues, hi)), lo, hi)
    return round(100 * (1 - flagged / span))


def compute_scores(
    metrics: Sequence[Event],
    voice: Sequence[Event],
    cues: Sequence[Event],
    settings: Settings,
) -> Scores:
    samples = sorted((sample_from_metrics(e, settings) for e in metrics), key=lambda s: s.t)
    eye = _percent(s.eye_contact for s in samples)
    posture = _percent(s.posture for s in samples)
    gestures = (
        _percent(gesture_natural(samples, settings))
        if any(s.body_measured for s in samples)
        else None
    )
    voice_ = voice_score(voice, cues)
    present = [s for s in (eye, posture, gestures, voice_) if s is not None]
    overall = round(sum(present) / len(present)) if present else None
    return Scores(eye, posture, gestures, voice_, overall)


def gaze_shares(metrics: Sequence[Event], settings: Settings) -> dict[str, float] | None:
    """Where the eyes were (the module docstring): each of `GAZE_PLACES` as a share (0-1,
    unrounded: `round(100 * share)` of `camera` is the eye-contact score) of the samples whose
    eye contact is known. None without such samples, or where faces were found but no sample
    tells a direction (a log from before v1.1); a session that never showed a face is all
    `no_face`."""
    samples = [sample_from_metrics(e, settings) for e in metrics]
    counted = [s for s in samples if s.eye_contact is not None]
    directed = any(s.gaze not in (None, "no_face") for s in counted)
    if not counted or (not directed and any(s.gaze is None for s in counted)):
        return None
    return {place: sum(s.gaze == place for s in counted) / len(counted) for place in GAZE_PLACES}


# --- timeline ---------------------------------------------------------------------------------
def _mean(values: list[float], digits: int) -> float | None:
    return round(sum(values) / len(values), digits) if values else None


def build_timeline(
    metrics: Sequence[Event],
    voice: Sequence[Event],
    duration_s: float,
    settings: Settings,
    filler_times: Sequence[float] = (),
) -> list[TimelineRow]:
    """One row per started second of `duration_s` (t = 0, 1, ...). Samples past the duration
    (the clock can run a little past the recorded duration) land in the last row."""
    n = max(0, math.ceil(duration_s - 1e-9))
    if n == 0:
        return []
    eye: list[list[float]] = [[] for _ in range(n)]
    posture: list[list[float]] = [[] for _ in range(n)]
    activity: list[list[float]] = [[] for _ in range(n)]
    level: list[list[float]] = [[] for _ in range(n)]
    rate: list[list[float]] = [[] for _ in range(n)]
    speaking: list[bool | None] = [None] * n
    filler_counts = [0] * n

    def slot(t: float) -> int:
        return min(n - 1, max(0, int(t)))

    for e in metrics:
        s = sample_from_metrics(e, settings)
        i = slot(s.t)
        if s.eye_contact is not None:
            eye[i].append(100 * s.eye_contact)
        if s.posture is not None:
            posture[i].append(100 * s.posture)
        if s.activity is not None:
            activity[i].append(s.activity)
    for e in voice:
        dbfs = _num(e.get("level_dbfs"))
        i = slot(float(e["t"]))
        if dbfs is not None:
            level[i].append(dbfs)
        pace = _num(e.get("syllables_per_s"))
        if pace is not None:
            rate[i].append(pace)
        if e.get("speaking") is not None:
            speaking[i] = bool(e["speaking"]) or bool(speaking[i])
    for t in filler_times:
        filler_counts[slot(t)] += 1
    return [
        TimelineRow(
            t=i,
            eye_contact=_mean(eye[i], 1),
            posture=_mean(posture[i], 1),
            gesture_activity=_mean(activity[i], 3),
            voice_level=_mean(level[i], 1),
            speech_rate=_mean(rate[i], 2),
            speaking=speaking[i],
            fillers=filler_counts[i],
        )
        for i in range(n)
    ]
