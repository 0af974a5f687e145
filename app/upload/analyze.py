"""One pass over an uploaded recording (runs in a worker thread, no event loop).

The file is decoded once. Every decoded frame goes to the VP9 WebM (frame rate capped); frames
at `upload_sample_fps` are scaled (aspect ratio kept, longest side `analysis_max_side`) and go
through the same analyzer and stage chain (conditions, cue hysteresis, observers:
app/coaching/chain.py) as the live loop. What comes out is the
list of flagged moments (cue on-transitions and each cue episode's worst frame, de-duplicated
and capped), the cue transitions and one metrics row per analysed frame.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import av
import numpy as np

from app.coaching.chain import ChainStep, StageChain
from app.coaching.messages import CUE_SEVERITY
from app.config import Settings
from app.events import Event, WireEvent
from app.frames import Analyzer, CueName, CueTransition, FrameAnalysis, Language, VideoFrame
from app.media.images import fit_within, quarter_turns, upright
from app.media.recorder import RecordingResult, WebmWriter

if TYPE_CHECKING:
    from app.analysis.conditions import ConditionState, FrameConditions
    from app.coaching.keyframes import Candidate, KeyframePicker
    from app.live.transcription import LiveTranscriber

log = logging.getLogger(__name__)

_SEVERITY_WEIGHT = {"warn": 2.0, "info": 1.0}
_CUE_ON_BONUS = 0.5  # the moment a cue starts is worth showing even if later frames are worse


class ScanCancelled(Exception):
    """The runner is shutting down; the scan stopped between frames."""


@dataclass(frozen=True, slots=True)
class Moment:
    """A flagged frame worth a feedback card."""

    t: float  # media seconds from the first frame
    frame_index: int  # index of the frame among all decoded frames of the upload
    image: np.ndarray  # BGR uint8 at analysis size (what the analyzer saw)
    analysis: FrameAnalysis
    cues: tuple[CueName, ...]  # cues flagged at this frame, most severe first
    score: float
    reason: Literal["cue_on", "worst"]
    # the on-transition of each cue on at this frame: what it said (where the eyes went, a
    # face hidden in the frame), for the card's text as the live cue's message says it
    ons: Mapping[CueName, CueTransition] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScanResult:
    duration_s: float
    frames_decoded: int
    frames_analyzed: int
    moments: list[Moment]
    transitions: list[CueTransition]
    analyses: list[FrameAnalysis]  # one per analysed frame, landmarks dropped
    keyframe_candidates: list[Candidate]  # the report's best/worst frame per category
    recording: RecordingResult | None
    analysis_s: float


@dataclass(frozen=True, slots=True)
class AnalysisStages:
    """The live loop's stages, as `app.wiring` builds them (tests may swap one)."""

    make_analyzer: Callable[[Settings], Analyzer]
    frame_conditions: FrameConditions
    make_condition_state: Callable[[], ConditionState]
    # the report's keyframe picker (a frame observer); None: the report has no keyframes
    make_keyframe_picker: Callable[[Settings], KeyframePicker] | None = None
    # the upload's recogniser (app/upload/speech.py); None: no transcript
    make_transcriber: (
        Callable[[str, Language, Callable[[Event], Awaitable[WireEvent]]], LiveTranscriber | None]
        | None
    ) = None


def moment_score(flagged: Mapping[CueName, bool | None]) -> float:
    return sum(_SEVERITY_WEIGHT[CUE_SEVERITY[c]] for c, on in flagged.items() if on)


def _lean(analysis: FrameAnalysis) -> FrameAnalysis:
    """A copy without landmark arrays, so thousands of rows stay small."""
    from dataclasses import replace

    return replace(
        analysis,
        face=replace(analysis.face, landmarks=None),
        pose=replace(analysis.pose, landmarks=None),
    )


@dataclass
class MomentPicker:
    """Collects candidate moments while the scan runs and picks the final few.

    Candidates are every cue on-transition and, per cue episode (on -> off), the frame where the
    most cues were flagged at once. The pool is bounded (`pool`): the weakest candidate goes
    when it is full, so a long video with many episodes keeps memory flat.
    """

    max_moments: int
    min_gap_s: float
    pool: int = 40
    _heap: list[tuple[float, int, Moment]] = field(default_factory=list)
    _episode_best: dict[CueName, Moment] = field(default_factory=dict)
    _ons: dict[CueName, CueTransition] = field(default_factory=dict)  # cues on now
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def _push(self, moment: Moment) -> None:
        entry = (moment.score, next(self._counter), moment)
        if len(self._heap) < self.pool:
            heapq.heappush(self._heap, entry)
        elif entry[0] > self._heap[0][0]:
            heapq.heapreplace(self._heap, entry)

    def observe(
        self, analysis: FrameAnalysis, image: np.ndarray, frame_index: int, step: ChainStep
    ) -> None:
        """One frame and what the stage chain made of it."""
        t, flagged, transitions, active = analysis.t, step.conditions, step.transitions, step.active
        flagged_cues = tuple(
            sorted(
                (c for c, on in flagged.items() if on),
                key=lambda c: -_SEVERITY_WEIGHT[CUE_SEVERITY[c]],
            )
        )
        score = moment_score(flagged)
        turned_on = [tr.cue for tr in transitions if tr.state == "on"]
        for tr in transitions:
            if tr.state == "off":
                self._ons.pop(tr.cue, None)
                if tr.cue in self._episode_best:
                    self._push(self._episode_best.pop(tr.cue))
            else:
                self._ons[tr.cue] = tr
        ons = dict(self._ons)
        if turned_on:
            cues = tuple(dict.fromkeys((*turned_on, *flagged_cues)))
            self._push(
                Moment(t, frame_index, image, analysis, cues, score + _CUE_ON_BONUS, "cue_on", ons)
            )
        for cue in active:
            if cue not in flagged_cues:
                continue
            best = self._episode_best.get(cue)
            if best is None or score > best.score:
                self._episode_best[cue] = Moment(
                    t, frame_index, image, analysis, flagged_cues, score, "worst", ons
                )

    def pick(self) -> list[Moment]:
        for moment in self._episode_best.values():
            self._push(moment)
        self._episode_best.clear()
        ranked = sorted(self._heap, key=lambda e: (-e[0], e[1]))
        chosen: list[Moment] = []
        for _score, _n, moment in ranked:
            near = next((m for m in chosen if abs(m.t - moment.t) < self.min_gap_s), None)
            if near is not None:
                # A near duplicate: keep the stronger card, but mention every cue either saw.
                merged = tuple(dict.fromkeys((*near.cues, *moment.cues)))
                if merged != near.cues:
                    ons = {**moment.ons, **near.ons}
                    chosen[chosen.index(near)] = _with_cues(near, merged, ons)
                continue
            if len(chosen) < self.max_moments:
                chosen.append(moment)
        return sorted(chosen, key=lambda m: m.t)


def _with_cues(
    moment: Moment, cues: tuple[CueName, ...], ons: Mapping[CueName, CueTransition]
) -> Moment:
    from dataclasses import replace

    return replace(moment, cues=cues, ons=ons)


def scan_video(
    path: Path,
    settings: Settings,
    stages: AnalysisStages,
    *,
    duration_hint_s: float,
    recording_path: Path | None,
    on_progress: Callable[[float], None] = lambda _f: None,
    cancelled: threading.Event | None = None,
    on_audio: Callable[[av.AudioFrame, float], None] | None = None,
) -> ScanResult:
    """Decode `path` once; analyse a sample of its frames and re-encode it to VP9 WebM.
    `on_audio` gets each audio frame and its media time (the upload's speech recognition)."""
    started = time.perf_counter()
    sample_interval = 1.0 / settings.upload.sample_fps
    hold_s = settings.cues.cue_hold_s
    picker = MomentPicker(max_moments=settings.upload.max_feedbacks, min_gap_s=max(2.0, 2 * hold_s))
    transitions: list[CueTransition] = []
    analyses: list[FrameAnalysis] = []
    analyzer: Analyzer | None = None
    picker_for_report = (
        stages.make_keyframe_picker(settings) if stages.make_keyframe_picker is not None else None
    )
    # conditions -> cues -> observers, the chain a live session drives
    chain = StageChain(
        settings,
        stages.frame_conditions,
        stages.make_condition_state,
        [picker_for_report] if picker_for_report is not None else [],
    )
    recorder: WebmWriter | None = None
    frames_decoded = frames_analyzed = 0
    t0: float | None = None
    next_sample = 0.0
    last_t = 0.0
    last_progress = 0.0
    try:
        with av.open(str(path), mode="r") as container:
            vstream = container.streams.video[0]
            vstream.thread_type = "AUTO"
            astream = container.streams.audio[0] if container.streams.audio else None
            streams: list[Any] = [vstream] if astream is None else [vstream, astream]
            src_w, src_h = vstream.codec_context.width, vstream.codec_context.height
            aw, ah = fit_within(
                src_w, src_h, settings.analysis.max_side, settings.analysis.max_side, even=True
            )
            analyzer = stages.make_analyzer(settings)
            for packet in container.demux(*streams):
                if cancelled is not None and cancelled.is_set():
                    raise ScanCancelled
                for frame in packet.decode():
                    if frame.time is None:
                        continue
                    if isinstance(frame, av.AudioFrame):
                        audio_t = frame.time - t0 if t0 is not None else None  # before pts goes
                        if recorder is not None and audio_t is not None:
                            recorder.add_audio(frame, audio_t)
                        if on_audio is not None and audio_t is not None:
                            on_audio(frame, audio_t)
                        continue
                    rotation = frame.rotation
                    if t0 is None:
                        t0 = frame.time
                        if recording_path is not None:
                            shown = (frame.width, frame.height)
                            if quarter_turns(rotation) % 2:
                                shown = (frame.height, frame.width)
                            recorder = WebmWriter(
                                recording_path, settings, *shown, audio=astream is not None
                            )
                    index = frames_decoded
                    frames_decoded += 1
                    t = frame.time - t0
                    if t < last_t - 1.0:
                        continue  # a timestamp going backwards: a broken muxer, skip the frame
                    last_t = max(last_t, t)
                    if recorder is not None:
                        recorder.add_video(frame, t, rotation)
                    if t + 1e-6 < next_sample:
                        continue
                    next_sample = max(next_sample + sample_interval, t)
                    image = upright(
                        frame.reformat(width=aw, height=ah, format="bgr24").to_ndarray(), rotation
                    )
                    video_frame = VideoFrame(
                        index=index, t=round(t, 3), image=image, arrived_at=time.monotonic()
                    )
                    analysis: FrameAnalysis = analyzer.analyze(video_frame)
                    frames_analyzed += 1
                    step = chain.step(analysis, image)
                    transitions.extend(step.transitions)
                    picker.observe(analysis, image, index, step)
                    analyses.append(_lean(step.analysis))
                    if duration_hint_s > 0:
                        fraction = min(1.0, t / duration_hint_s)
                        if fraction - last_progress >= 0.01:
                            last_progress = fraction
                            on_progress(fraction)
        if t0 is None:
            raise ValueError("the video has no decodable frame")
        transitions.extend(chain.close(round(last_t, 3)))
        recording: RecordingResult | None = None
        if recorder is not None:
            recording = recorder.close()
            recorder = None
    finally:
        if recorder is not None:
            recorder.abort()
        if analyzer is not None:
            analyzer.close()
    return ScanResult(
        duration_s=round(last_t, 3),
        frames_decoded=frames_decoded,
        frames_analyzed=frames_analyzed,
        moments=picker.pick(),
        transitions=transitions,
        analyses=analyses,
        keyframe_candidates=picker_for_report.candidates() if picker_for_report is not None else [],
        recording=recording,
        analysis_s=round(time.perf_counter() - started, 3),
    )
