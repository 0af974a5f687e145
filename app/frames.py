"""Typed frames: everything that moves between the stages of the pipeline.

Transports turn wire messages into these; analysis, cues, the critic, the recorder and the
report consume them. They are small frozen dataclasses so a stage can never mutate what
another stage holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

import numpy as np

VideoCueName = Literal[
    "eye_contact",
    "posture",
    "head_tilt",
    "face_lost",
    "too_close",
    "too_far",
    "gesture_none",
    "gesture_excess",
    "sway",
]
AudioCueName = Literal["too_quiet", "too_fast", "long_pause", "monotone"]
TranscriptCueName = Literal["filler_words"]  # from the recognised words
ClockCueName = Literal["time"]  # from the session's clock: against a pitch's target length
# the `cue` of the cue events
CueName = Literal[VideoCueName, AudioCueName, TranscriptCueName, ClockCueName]
VIDEO_CUES: tuple[CueName, ...] = get_args(VideoCueName)
AUDIO_CUES: tuple[CueName, ...] = get_args(AudioCueName)

Language = Literal["ko", "en"]
# where the presenter looks (left/right: their own); `closed`: eyes shut longer than a blink
GazeDirection = Literal["camera", "down", "up", "left", "right", "closed"]
# A session's calibration (`GazeTracker`): looking for or learning the presenter's own look at
# the camera; learnt; skipped (no first look in time: the defaults for the session); off (the
# session learns none: uploads, COACH_GAZE_CALIBRATION_S=0)
GazeCalibration = Literal["learning", "learnt", "skipped", "off"]
SessionState = Literal["created", "live", "finalizing", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One received camera frame, decoded."""

    index: int  # per session, counts every received frame
    t: float  # media seconds since the session started
    image: np.ndarray  # BGR uint8, H x W x 3
    arrived_at: float  # time.monotonic() when the bytes arrived; latency is measured from here
    decode_ms: float = 0.0  # decode (JPEG) or conversion (WebRTC picture to BGR), queue included
    # Decoded whether analysed or not, beside frames that need no decode (a reference frame of
    # a layered VP9 stream): the analysis' rate cap takes it first (`RateCap`, `preferred`).
    preferred: bool = False


@dataclass(frozen=True, slots=True)
class EncodedVideo:
    """One received VP9 frame as the client encoded it, for the recorder to mux unchanged."""

    index: int  # as `VideoFrame.index`
    t: float  # media seconds since the session started
    data: bytes  # one VP9 frame (or superframe)
    keyframe: bool
    width: int | None = None  # a keyframe's picture size
    height: int | None = None


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Microphone audio: 16-bit mono PCM at `sample_rate` (16 kHz on every path)."""

    t: float  # media seconds of the first sample
    samples: np.ndarray  # int16, 1-D
    sample_rate: int = 16000

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True, slots=True)
class EyeMeasures:
    """Both eyes averaged, in the eye's own frame (along the corner line and across it)."""

    iris_x: float  # iris centre from the eye centre, eye widths, + = image right
    iris_y: float  # iris centre from the lids' midpoint, lid gaps, + = image down
    upper_lid: float  # upper lid above the corner line, eye widths (falls as the eyes lower)
    openness: float  # lid gap / eye width


@dataclass(frozen=True, slots=True)
class FaceObservation:
    found: bool
    yaw_deg: float | None = None  # + = the presenter turns to their left (image right)
    pitch_deg: float | None = None  # + = looking up
    roll_deg: float | None = None  # + = head tilted clockwise in the image
    gaze_on_camera: bool | None = None  # gaze_direction == "camera"
    gaze_direction: GazeDirection | None = None
    # this frame's own reading (the session's baseline applied) before `GazeTracker` holds a
    # blink: what the `eye_contact` cue reads, its own hysteresis outlasting any blink
    gaze_frame_direction: GazeDirection | None = None
    # the session's calibration state (`GazeTracker`); None where no session tracks the gaze
    gaze_calibration: GazeCalibration | None = None
    iris_offset: tuple[float, float] | None = None  # mean iris offset in eye widths/heights
    eyes: EyeMeasures | None = None  # the measures gaze_direction is read from
    face_width_ratio: float | None = None  # face width / frame width (distance proxy)
    bbox: tuple[int, int, int, int] | None = None  # x, y, w, h in pixels
    landmarks: np.ndarray | None = None  # N x 2 pixel coordinates, for drawing
    # with no face found: the share of the frame's middle (0.2-0.8 of its width) a person
    # covers (app/analysis/person.py): a face hidden in the frame, or nobody there
    person_share: float | None = None


@dataclass(frozen=True, slots=True)
class PoseObservation:
    found: bool
    shoulder_tilt_deg: float | None = None  # + = right shoulder (image left) lower
    head_tilt_deg: float | None = None  # from the ears; + = clockwise in the image
    lean: float | None = None  # shoulder width relative to calibration; >1 leaning in
    shoulder_center: tuple[float, float] | None = None  # normalised 0..1
    shoulder_width: float | None = None  # share of the frame's width (both shoulders seen)
    wrists: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None)
    landmarks: np.ndarray | None = None  # N x 2 pixel coordinates, for drawing
    # head and shoulders well inside the frame, near enough (app/analysis/pose.py): the
    # presenter is in view, so a face FaceMesh cannot find is hidden (head bowed or turned
    # away), not out of the picture
    in_view: bool = False


@dataclass(frozen=True, slots=True)
class GestureObservation:
    hands_visible: int
    activity: float | None  # wrist speed in shoulder widths per second, smoothed


@dataclass(frozen=True, slots=True)
class FrameAnalysis:
    """Everything measured on one analysed frame."""

    index: int
    t: float
    arrived_at: float
    width: int
    height: int
    face: FaceObservation
    pose: PoseObservation
    gesture: GestureObservation
    sway: float | None = None  # std of shoulder centre x over the sway window, in shoulder widths
    timings_ms: dict[str, float] = field(default_factory=dict)
    pose_t: float | None = None  # media time of the frame `pose`/`gesture`/`sway` come from
    # with no face found while the `face_lost` cue is on: whether it said the face is hidden in
    # the frame (head bowed or turned away) or out of it, and out of it once nobody has been in
    # the middle of the frame for the cue's hold (`ConditionState.nobody_left`); the stage chain
    # fills it in (`ChainStep.analysis`, what its observers see: the keyframes, the window
    # metrics); None with a face, or before the cue turns on
    face_hidden: bool | None = None


@dataclass(frozen=True, slots=True)
class PauseSpan:
    """A silence inside the talk (after the first speech), in media seconds."""

    t_start: float
    t_end: float

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


@dataclass(frozen=True, slots=True)
class AudioAnalysis:
    """Voice measurements over one window of audio (about a second).

    Levels are dBFS (0 = full scale; RMS of a full-scale sine is -3 dBFS; digital silence is
    reported as -100). Rates and pitch variability are over sliding windows of several seconds
    that end with this window (see the voice_* settings).
    """

    t: float
    duration_s: float
    level_dbfs: float | None  # RMS of the whole window
    speaking: bool | None = None
    speech_ratio: float | None = None
    syllables_per_s: float | None = None  # syllable nuclei per second of speech (articulation)
    pitch_semitone_std: float | None = None
    pause_s: float | None = None  # length of the current silence, if any
    # additions by the voice stage (all optional, so older producers still build these)
    speech_level_dbfs: float | None = None  # RMS over the speech frames only
    syllable_count: int | None = None  # nuclei counted in this window (sum / speech time = pace)
    pause_started_t: float | None = None  # start of the current silence
    pauses_ended: tuple[PauseSpan, ...] = ()  # pauses >= voice_report_pause_s ending here


# eq=False: keyframes are compared by identity; field equality would compare numpy images,
# which raises ("truth value of an array is ambiguous") inside `in` and `list.remove`.
@dataclass(frozen=True, slots=True, eq=False)
class Keyframe:
    """A frame picked for the critic to look at: a live window's coverage and cue frames, the
    session summary's, or an upload's flagged moments (`reason` says which)."""

    t: float  # media seconds
    image: np.ndarray  # BGR uint8, already at most vlm_image_max_side on its longest side
    reason: str  # "coverage" or "cue:<cue name>"


@dataclass(frozen=True, slots=True)
class CueTransition:
    cue: CueName
    state: Literal["on", "off"]
    t: float
    severity: Literal["info", "warn"]
    direction: GazeDirection | None = None  # eye_contact on: where the presenter looks instead
    # face_lost on: the face is hidden in the frame (Pose sees the presenter in view, or the
    # face vanished from the middle of the frame, not past an edge), not out of it
    hidden: bool | None = None


class Analyzer(Protocol):
    """The analysis stage: one decoded frame in, its measurements out (a MediaPipe graph is
    used by one thread at a time, with increasing timestamps). `close()` releases the graphs,
    or hands them back to a pool."""

    def analyze(self, frame: VideoFrame) -> FrameAnalysis: ...

    def close(self) -> None: ...


class FrameObserver(Protocol):
    """A stage that looks at every analysed frame and the picture it was measured on (the
    keyframe picker, the critic's scheduler); cheap and synchronous."""

    def observe(self, analysis: FrameAnalysis, image: np.ndarray) -> None: ...
