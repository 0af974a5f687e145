"""What a stretch of analysed frames and audio adds up to: the aggregates a critique window
carries (`CritiqueWindow.metrics`) and the critic's prompt shows.

One accumulator for every path: the live critic keeps one per window and one for the whole
session (`WindowMetrics.add_*` on every observation, O(1)), and the upload flow sums the frames
around its flagged moments with `window_metrics`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from app.frames import AudioAnalysis, FrameAnalysis, GazeDirection

# Where the eyes were instead of the camera, as a critique names it (`CRITIQUE_WHERE`), and the
# directions each place counts (`metrics.gaze.direction`; left and right are one: "to the side").
GAZE_AWAY: dict[str, tuple[GazeDirection, ...]] = {
    "down": ("down",),
    "side": ("left", "right"),
    "up": ("up",),
    "closed": ("closed",),
}


def gaze_away_key(where: str) -> str:
    """The window metric of a place of `GAZE_AWAY`: its share of the frames with a direction."""
    return f"gaze_{where}_ratio"


# The keys of `WindowMetrics.metrics()`, in order.
METRIC_KEYS: tuple[str, ...] = (
    "frames",
    "face_found_ratio",
    # of the frames without a face while `face_lost` was on, the share whose cue said the face
    # is hidden in the frame (head bowed or turned away), not out of it
    # (`FrameAnalysis.face_hidden`); None where the cue was never on without a face
    "face_hidden_share",
    "eye_contact_ratio",
    # where the eyes were instead, as shares of the same frames (`GAZE_AWAY`)
    *(gaze_away_key(where) for where in GAZE_AWAY),
    "mean_abs_yaw_deg",
    "mean_pitch_deg",
    "mean_abs_head_tilt_deg",
    "mean_abs_shoulder_tilt_deg",
    "mean_lean",
    "mean_face_width_ratio",
    "hands_visible_ratio",
    "mean_gesture_activity",
    "max_sway",
    "voice_level_dbfs",
    "speech_ratio",
    "syllables_per_s",
    "pitch_semitone_std",
    "max_pause_s",
)


class _Mean:
    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            self.total += value
            self.count += 1

    def value(self) -> float | None:
        return self.total / self.count if self.count else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class WindowMetrics:
    """Running aggregates of frame and audio analyses; `metrics()` has the `METRIC_KEYS`.
    A value that was never measured is None (and non-finite values are not counted)."""

    def __init__(self) -> None:
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.frames = 0
        self.face_found = 0
        self.face_hidden = 0  # frames without a face while `face_lost` said: hidden
        self.face_lost_said = 0  # frames without a face while `face_lost` was on
        self.gaze_known = 0
        self.gaze_on = 0
        self.gaze_directed = 0  # frames whose gaze_direction is known
        self.gaze_away = dict.fromkeys(GAZE_AWAY, 0)
        self.hands_visible = 0
        self.yaw = _Mean()
        self.pitch = _Mean()
        self.head_tilt = _Mean()
        self.shoulder_tilt = _Mean()
        self.lean = _Mean()
        self.face_width = _Mean()
        self.activity = _Mean()
        self.sway_max: float | None = None
        self.audio_chunks = 0
        self.level = _Mean()
        self.speech_ratio = _Mean()
        self.syllables = _Mean()
        self.pitch_std = _Mean()
        self.pause_max: float | None = None

    def _touch(self, t: float) -> None:
        if self.t_first is None:
            self.t_first = t
        if self.t_last is None or t > self.t_last:
            self.t_last = t

    def add_frame(self, a: FrameAnalysis) -> None:
        self._touch(a.t)
        self.frames += 1
        face, pose = a.face, a.pose
        if face.found:
            self.face_found += 1
            if face.gaze_on_camera is not None:
                self.gaze_known += 1
                self.gaze_on += int(face.gaze_on_camera)
            if face.gaze_direction is not None:
                self.gaze_directed += 1
                for where, directions in GAZE_AWAY.items():
                    self.gaze_away[where] += int(face.gaze_direction in directions)
            self.yaw.add(None if face.yaw_deg is None else abs(face.yaw_deg))
            self.pitch.add(face.pitch_deg)
            self.face_width.add(face.face_width_ratio)
        elif a.face_hidden is not None:
            self.face_lost_said += 1
            self.face_hidden += int(a.face_hidden)
        # FaceMesh's eye line is the sharper head-tilt measure; the ears stand in without a
        # face (as the head_tilt cue, the metrics events and the keyframes measure it).
        head_tilt = face.roll_deg if face.roll_deg is not None else pose.head_tilt_deg
        self.head_tilt.add(None if head_tilt is None else abs(head_tilt))
        if pose.found:
            self.shoulder_tilt.add(
                None if pose.shoulder_tilt_deg is None else abs(pose.shoulder_tilt_deg)
            )
            self.lean.add(pose.lean)
        self.hands_visible += int(a.gesture.hands_visible > 0)
        self.activity.add(a.gesture.activity)
        if a.sway is not None and (self.sway_max is None or a.sway > self.sway_max):
            self.sway_max = a.sway

    def add_audio(self, a: AudioAnalysis) -> None:
        self._touch(a.t + a.duration_s)
        self.audio_chunks += 1
        if a.speaking is not False:  # the level of silence says nothing about the voice
            self.level.add(a.level_dbfs)
        self.speech_ratio.add(a.speech_ratio)
        self.syllables.add(a.syllables_per_s)
        self.pitch_std.add(a.pitch_semitone_std)
        if a.pause_s is not None and (self.pause_max is None or a.pause_s > self.pause_max):
            self.pause_max = a.pause_s

    def metrics(self) -> dict[str, float | None]:
        return {
            "frames": float(self.frames),
            "face_found_ratio": _ratio(self.face_found, self.frames),
            "face_hidden_share": _ratio(self.face_hidden, self.face_lost_said),
            "eye_contact_ratio": _ratio(self.gaze_on, self.gaze_known),
            **{gaze_away_key(w): _ratio(n, self.gaze_directed) for w, n in self.gaze_away.items()},
            "mean_abs_yaw_deg": self.yaw.value(),
            "mean_pitch_deg": self.pitch.value(),
            "mean_abs_head_tilt_deg": self.head_tilt.value(),
            "mean_abs_shoulder_tilt_deg": self.shoulder_tilt.value(),
            "mean_lean": self.lean.value(),
            "mean_face_width_ratio": self.face_width.value(),
            "hands_visible_ratio": _ratio(self.hands_visible, self.frames),
            "mean_gesture_activity": self.activity.value(),
            "max_sway": self.sway_max,
            "voice_level_dbfs": self.level.value(),
            "speech_ratio": self.speech_ratio.value(),
            "syllables_per_s": self.syllables.value(),
            "pitch_semitone_std": self.pitch_std.value(),
            "max_pause_s": self.pause_max,
        }


def window_metrics(
    frames: Iterable[FrameAnalysis], audio: Iterable[AudioAnalysis] = ()
) -> dict[str, float | None]:
    """The aggregates of a finished stretch, as a live window would have them."""
    acc = WindowMetrics()
    for a in frames:
        acc.add_frame(a)
    for chunk in audio:
        acc.add_audio(chunk)
    return acc.metrics()
