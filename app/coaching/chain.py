"""The per-frame stage chain that live sessions and uploads both drive.

    analysis -> conditions -> cues (hysteresis) -> observers

A live session feeds it the frames its analysis loop gets to (and turns the transitions into
`cue` events); the upload scan feeds it its sampled frames (and picks feedback moments from the
step). Same order, same thresholds, same cue hysteresis, one implementation.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.coaching.cues import CueEngine
from app.config import Settings
from app.frames import CueName, CueTransition, FrameAnalysis, FrameObserver

if TYPE_CHECKING:
    from app.analysis.conditions import ConditionState, FrameConditions


@dataclass(frozen=True, slots=True)
class ChainStep:
    """What one frame did: the raw conditions and the cue changes they caused."""

    conditions: Mapping[CueName, bool | None]
    transitions: list[CueTransition]
    active: list[CueName]  # cues on after this frame
    # the frame as the observers saw it: with `face_hidden` filled in while `face_lost` is on
    analysis: FrameAnalysis


def _with_whereabouts(
    transitions: list[CueTransition], analysis: FrameAnalysis, state: ConditionState
) -> list[CueTransition]:
    """`eye_contact` turning on says where the presenter looks instead, and `face_lost` turning
    on whether the face is hidden in the frame rather than out of it (their messages do):
    hidden where Pose still sees the presenter's head and shoulders well inside the frame, or
    where the face was last seen in the middle of the frame (it did not go past an edge: a head
    bowed steeply, whose body Pose's head-first detector mostly loses too, or turned away),
    unless Pose sees shoulders too close together for that (a presenter standing too far back
    for FaceMesh, not hiding the face) or the person segmentation sees nobody in the middle of
    the frame (an empty room, a covered camera) (`ConditionState.face_hidden`)."""
    face = analysis.face
    direction = face.gaze_frame_direction or face.gaze_direction  # what turned the cue on
    if direction == "camera":
        direction = None
    out = []
    for tr in transitions:
        if tr.state == "on" and tr.cue == "eye_contact" and direction is not None:
            tr = dataclasses.replace(tr, direction=direction)
        elif tr.state == "on" and tr.cue == "face_lost":
            tr = dataclasses.replace(tr, hidden=state.face_hidden())
        out.append(tr)
    return out


class StageChain:
    """Conditions -> cues -> observers for one session or upload. Not thread-safe."""

    def __init__(
        self,
        settings: Settings,
        frame_conditions: FrameConditions,
        make_condition_state: Callable[[], ConditionState],
        observers: Iterable[FrameObserver] = (),
    ) -> None:
        self._settings = settings
        self._conditions = frame_conditions
        self._make_state = make_condition_state
        self._state: ConditionState | None = None  # built with the first frame
        self.cues = CueEngine(settings.cues.cue_hold_s)
        self.observers: list[FrameObserver] = list(observers)
        # while `face_lost` is on: whether it said the face is hidden (`CueTransition.hidden`)
        self._lost_hidden: bool | None = None
        # ... and whether nobody has been in the frame for the cue's hold since a face was last
        # found (`ConditionState.nobody_left`): the presenter left; a face found clears it
        self._left = False

    def step(self, analysis: FrameAnalysis, image: np.ndarray) -> ChainStep:
        """One analysed frame through the chain; its cost lands in `timings_ms["cues"]`."""
        started = time.perf_counter()
        if self._state is None:
            self._state = self._make_state()
        conditions = self._conditions(analysis, self._settings, self._state)
        transitions = self.cues.update(analysis.t, conditions)
        if transitions:
            transitions = _with_whereabouts(transitions, analysis, self._state)
            for tr in transitions:
                if tr.cue == "face_lost":
                    self._lost_hidden = bool(tr.hidden) if tr.state == "on" else None
        if analysis.face.found:
            self._left = False
        elif self._lost_hidden and self._state.nobody_left(analysis.t, self.cues.hold_s):
            # hidden when the cue turned on, then nobody in the frame for as long as the cue
            # waits to turn on: the presenter left (the cue's message stays as it was sent;
            # what the frames say from here is not, until a face is found again)
            self._left = True
        analysis.timings_ms["cues"] = (time.perf_counter() - started) * 1000
        if not analysis.face.found and self._lost_hidden is not None:
            # what the cue said, decided over the frames of its hold, not one frame's reading
            hidden = self._lost_hidden and not self._left
            analysis = dataclasses.replace(analysis, face_hidden=hidden)
        for observer in self.observers:
            observer.observe(analysis, image)
        return ChainStep(conditions, transitions, self.cues.active(), analysis)

    def update(self, t: float, conditions: Mapping[CueName, bool | None]) -> list[CueTransition]:
        """Conditions that do not come from a frame (the voice stage's) share the hysteresis."""
        return self.cues.update(t, conditions)

    def close(self, t: float) -> list[CueTransition]:
        """Every cue still on turns off at `t`, the end of the media."""
        return self.cues.close(t)
