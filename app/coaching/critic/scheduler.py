"""The per-session critique scheduler.

The frame loop calls `observe*` (cheap, synchronous, never blocks); the scheduler's own named
task cuts a window every `interval_s`, picks at most K keyframes covering the window and the
moments cues fired, and asks the critic, with one request in flight per session, a global
concurrency limit shared by the sessions, a deadline per request and a per-session cost cap.
Whatever goes wrong with the VLM, the window still gets a critique: the rules critic's, with
`source: "rules"` and a `reason`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from app.coaching.window_metrics import WindowMetrics
from app.config import Settings
from app.events import CritiqueEvent
from app.frames import AudioAnalysis, FrameAnalysis, Keyframe, Language
from app.media.images import downscale

from .base import (
    Critic,
    CriticError,
    CriticName,
    CritiqueItem,
    CritiqueWindow,
    FailureReason,
    SessionSummaryInput,
    TokenUsage,
)
from .rules import RulesCritic

log = logging.getLogger(__name__)

Emit = Callable[[CritiqueEvent], Awaitable[object]]

MAX_CUES_PER_WINDOW = 64  # cue events kept for one window's prompt; more are counted only
MAX_CRITIQUES_KEPT = 400  # critique events kept for the summary (2 h at 20 s is 360)
CUE_FRAME_MATCH_S = 0.5  # a cue's keyframe is the frame within this of the cue's time
CLOSE_GRACE_S = 2.0


class WindowAccumulator(WindowMetrics):
    """One critique window: its running aggregates (`WindowMetrics`, O(1) per observation),
    its cue events and its keyframe candidates."""

    def __init__(self, *, slot_s: float, max_coverage: int, max_cue_frames: int) -> None:
        super().__init__()
        self.cues: list[dict[str, Any]] = []
        self.pending_cues: list[str] = []  # cue names waiting for the next frame
        self.coverage: list[Keyframe] = []
        self.cue_frames: list[Keyframe] = []
        self._slot_s = max(slot_s, 1e-3)
        self._max_coverage = max_coverage
        self._max_cue_frames = max_cue_frames
        self._next_slot = 0

    def add_cue(self, event: dict[str, Any]) -> None:
        if len(self.cues) < MAX_CUES_PER_WINDOW:
            self.cues.append(event)

    def wants_coverage(self, t: float) -> bool:
        """True for the first frame past the centre of the next time slot."""
        if self.t_first is None or len(self.coverage) >= self._max_coverage:
            return False
        return t - self.t_first >= (self._next_slot + 0.5) * self._slot_s

    def add_coverage(self, frame: Keyframe) -> None:
        self.coverage.append(frame)
        assert self.t_first is not None
        self._next_slot = int((frame.t - self.t_first) / self._slot_s - 0.5) + 1

    def wants_cue_frame(self, cue: str) -> bool:
        return len(self.cue_frames) < self._max_cue_frames and all(
            k.reason != f"cue:{cue}" for k in self.cue_frames
        )


def thin_keyframes(frames: list[Keyframe], limit: int) -> list[Keyframe]:
    """Drop frames until `limit` remain, each time one of the two closest in time (a coverage
    frame before a cue frame), so what remains still spans the whole stretch."""
    kept = sorted(frames, key=lambda k: k.t)
    while len(kept) > max(limit, 0):
        if len(kept) == 1:
            return []
        _, i = min((kept[j + 1].t - kept[j].t, j) for j in range(len(kept) - 1))
        earlier, later = kept[i], kept[i + 1]
        if earlier.reason == "coverage" and later.reason != "coverage":
            drop = i
        elif later.reason == "coverage" and earlier.reason != "coverage":
            drop = i + 1
        else:  # same kind: keep the very last frame, the end of the stretch matters
            drop = i if i + 1 == len(kept) - 1 else i + 1
        del kept[drop]
    return kept


def select_keyframes(
    coverage: list[Keyframe], cue_frames: list[Keyframe], k: int
) -> list[Keyframe]:
    """At most k keyframes: up to half of them where cues fired, the rest spread over the
    window (farthest from what is already chosen), in time order."""
    if k <= 0:
        return []
    chosen = sorted(cue_frames, key=lambda f: f.t)[: math.ceil(k / 2)]
    pool = sorted(coverage, key=lambda f: f.t)
    if not chosen and pool:
        count = min(k, len(pool))
        indices = sorted({round(i) for i in np.linspace(0, len(pool) - 1, count)})
        chosen = [pool[i] for i in indices]
        pool = [f for i, f in enumerate(pool) if i not in set(indices)]
    while len(chosen) < k and pool:
        best = max(pool, key=lambda f: min(abs(f.t - c.t) for c in chosen))
        chosen.append(best)
        pool.remove(best)
    leftover = [f for f in cue_frames if f not in chosen]
    chosen += leftover[: k - len(chosen)]
    return sorted(chosen, key=lambda f: f.t)


@dataclass
class CriticStats:
    """What the critic did for one session: outcomes and spend."""

    windows: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "vlm" or a fallback reason
    vlm_calls: int = 0  # requests attempted (counted against the cap, failed ones too)
    images_sent: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add_usage(self, usage: TokenUsage | None) -> None:
        if usage is not None:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "outcomes": dict(self.outcomes),
            "vlm_calls": self.vlm_calls,
            "images_sent": self.images_sent,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class CritiqueScheduler:
    """One per session. `observe*` must be called from the event loop's thread."""

    def __init__(
        self,
        *,
        session_id: str,
        language: Language,
        settings: Settings,
        critic: Critic,
        fallback: RulesCritic,
        emit: Emit,
        global_limit: asyncio.Semaphore,
        interval_s: float | None = None,
    ) -> None:
        self.session_id = session_id
        self.language: Language = language
        self._settings = settings
        self._critic = critic
        self._fallback = fallback
        self._emit = emit
        self._global_limit = global_limit
        self.interval_s = (
            interval_s if interval_s and interval_s > 0 else settings.critique.interval_s
        )
        self._k = max(0, settings.vlm.max_images)
        self._acc = self._new_window()
        self._session = WindowMetrics()
        self._window_start: float | None = None
        self._last_frame: tuple[float, np.ndarray] | None = None
        self._session_keyframes: list[Keyframe] = []
        self._critiques: deque[dict[str, Any]] = deque(maxlen=MAX_CRITIQUES_KEPT)
        self._cue_counts: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._final = True
        self._closed = False
        self.in_flight = False
        self.stats = CriticStats()

    # --- called by the frame loop --------------------------------------------------------
    def observe(self, analysis: FrameAnalysis, image: np.ndarray) -> None:
        acc = self._acc
        acc.add_frame(analysis)
        self._session.add_frame(analysis)
        self._last_frame = (analysis.t, image)
        if acc.pending_cues:
            for cue in acc.pending_cues:
                if acc.wants_cue_frame(cue):
                    acc.cue_frames.append(self._keyframe(analysis.t, image, f"cue:{cue}"))
            acc.pending_cues.clear()
        if acc.wants_coverage(analysis.t):
            acc.add_coverage(self._keyframe(analysis.t, image, "coverage"))

    def observe_cue(self, cue_event: dict[str, Any]) -> None:
        acc = self._acc
        acc.add_cue(cue_event)
        if cue_event.get("state") != "on":
            return
        cue = str(cue_event.get("cue"))
        self._cue_counts[cue] += 1
        if not acc.wants_cue_frame(cue) or cue in acc.pending_cues:
            return
        t = float(cue_event.get("t", 0.0))
        last = self._last_frame
        if last is not None and abs(last[0] - t) <= CUE_FRAME_MATCH_S:
            acc.cue_frames.append(self._keyframe(last[0], last[1], f"cue:{cue}"))
        else:
            acc.pending_cues.append(cue)

    def observe_audio(self, a: AudioAnalysis) -> None:
        self._acc.add_audio(a)
        self._session.add_audio(a)

    def _keyframe(self, t: float, image: np.ndarray, reason: str) -> Keyframe:
        # A copy (the caller may reuse its buffer), at most the size the VLM gets; a few per
        # window, so this stays well under a millisecond a frame on average.
        return Keyframe(
            t=t, image=downscale(image, self._settings.vlm.image_max_side), reason=reason
        )

    def _new_window(self) -> WindowAccumulator:
        k = max(self._k, 1)
        return WindowAccumulator(slot_s=self.interval_s / k, max_coverage=2 * k, max_cue_frames=k)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("critique scheduler already started")
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"{self.session_id}:critic"
        )

    async def aclose(self, final: bool = True) -> None:
        """Stop the timer. With `final`, the request in flight finishes and the last partial
        window gets its critique; both are bounded by the deadline, then it is cancelled."""
        if self._closed:
            return
        self._closed = True
        self._final = final
        self._stop.set()
        task = self._task
        if task is None:
            if final:
                await self._critique_window(final=True)
            return
        if not final:
            task.cancel()
        budget = 2 * self._settings.vlm.timeout_s + CLOSE_GRACE_S if final else CLOSE_GRACE_S
        done, _ = await asyncio.wait({task}, timeout=budget)
        if not done:
            log.warning(
                "critic of session %s did not stop in %.1f s; cancelling", self.session_id, budget
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.interval_s
        try:
            while not await self._stopped_within(next_tick - loop.time()):
                await self._critique_window(final=False)
                # A slow request stretches the next window instead of queueing requests.
                next_tick = max(next_tick + self.interval_s, loop.time())
            if self._final:
                await self._critique_window(final=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # the critic must never take the session down with it
            log.exception("critic of session %s failed", self.session_id)

    async def _stopped_within(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(max(timeout_s, 0.0)):
                await self._stop.wait()
        except TimeoutError:
            return self._stop.is_set()
        return True

    # --- one window ----------------------------------------------------------------------
    def _cut_window(self, final: bool) -> CritiqueWindow | None:
        acc, self._acc = self._acc, self._new_window()
        if acc.t_last is None or acc.t_first is None:
            return None
        t_start = self._window_start if self._window_start is not None else acc.t_first
        t_end = max(acc.t_last, t_start)
        if final and t_end - t_start < self._settings.critique.min_window_s:
            return None
        self._window_start = t_end
        keyframes = select_keyframes(acc.coverage, acc.cue_frames, self._k)
        self._session_keyframes = thin_keyframes(
            self._session_keyframes + keyframes, self._settings.critique.session_keyframes
        )
        return CritiqueWindow(
            session_id=self.session_id,
            language=self.language,
            t_start=t_start,
            t_end=t_end,
            keyframes=keyframes,
            metrics=acc.metrics(),
            cues=acc.cues,
        )

    async def _critique_window(self, *, final: bool) -> None:
        window = self._cut_window(final)
        if window is None:
            return
        self.stats.windows += 1
        source, items, reason = await self._critique(window)
        event = CritiqueEvent(
            t=window.t_end,
            source=source,
            t_start=window.t_start,
            t_end=window.t_end,
            items=[item.as_event_item() for item in items],
            reason=reason,
        )
        self._critiques.append(event.model_dump(mode="json"))
        try:
            await self._emit(event)
        except Exception:
            log.exception("emitting a critique of session %s failed", self.session_id)

    def _budget_reason(self, images: int) -> FailureReason | None:
        s = self._settings
        # The last call is kept for the end-of-session summary.
        if self.stats.vlm_calls + 1 >= s.vlm.max_calls_per_session:
            return "capped"
        if images > 0 and self.stats.images_sent >= s.vlm.max_images_per_session:
            return "capped"
        return None

    async def _critique(
        self, window: CritiqueWindow
    ) -> tuple[CriticName, list[CritiqueItem], FailureReason | None]:
        if self._critic.name == "rules":
            self.stats.outcomes["rules"] += 1
            return "rules", self._fallback.critique_now(window), None
        reason: FailureReason | None = (
            self._budget_reason(len(window.keyframes)) if window.keyframes else "no_frames"
        )
        if reason is None:
            images_left = self._settings.vlm.max_images_per_session - self.stats.images_sent
            window = replace(window, keyframes=window.keyframes[: min(self._k, images_left)])
            outcome = await self._call_vlm(window)
            if isinstance(outcome, list):
                return "vlm", outcome, None
            reason = outcome
        self.stats.outcomes[reason] += 1
        if reason != "no_frames":
            log.warning(
                "critique of session %s window %.1f-%.1f s fell back to rules: %s",
                self.session_id,
                window.t_start,
                window.t_end,
                reason,
            )
        return "rules", self._fallback.critique_now(window), reason

    async def _call_vlm(self, window: CritiqueWindow) -> list[CritiqueItem] | FailureReason:
        """One VLM request under the deadline: its items, or why there are none."""
        self.stats.vlm_calls += 1
        self.stats.images_sent += len(window.keyframes)
        self.in_flight = True
        try:
            # The deadline covers the wait for a global slot too: a saturated endpoint means
            # rules now, not a queue of stale windows.
            async with asyncio.timeout(self._settings.vlm.timeout_s):
                async with self._global_limit:
                    result = await self._critic.critique(window)
        except TimeoutError:
            return "timeout"
        except CriticError as exc:
            self.stats.add_usage(exc.usage)
            log.info("vlm critique failed: %s", exc)
            return exc.reason
        except Exception:
            log.exception("vlm critique of session %s crashed", self.session_id)
            return "internal_error"
        finally:
            self.in_flight = False
        self.stats.add_usage(result.usage)
        self.stats.outcomes["vlm"] += 1
        return result.items

    # --- end of session ------------------------------------------------------------------
    @property
    def session_keyframes(self) -> list[Keyframe]:
        """Up to `critique_session_keyframes` keyframes spread over the session (cue moments
        preferred), for the summary and the report."""
        return list(self._session_keyframes)

    @property
    def critiques(self) -> list[dict[str, Any]]:
        return list(self._critiques)

    @property
    def cue_counts(self) -> dict[str, int]:
        return dict(self._cue_counts)

    async def summarize(
        self,
        *,
        duration_s: float,
        scores: Mapping[str, float | None],
        gaze_shares: Mapping[str, float] | None = None,
    ) -> tuple[str, Literal["vlm", "rules"]]:
        """The report's summary: the VLM's within the deadline, else the rules'. Call after
        `aclose()` so the last window's critique is included. `gaze_shares`: the report's
        (where the eyes were), so the summary gives the report's figures."""
        images_left = max(0, self._settings.vlm.max_images_per_session - self.stats.images_sent)
        summary = SessionSummaryInput(
            session_id=self.session_id,
            language=self.language,
            duration_s=duration_s,
            scores=dict(scores),
            cue_counts=self.cue_counts,
            critiques=self.critiques,
            keyframes=self._session_keyframes[: min(self._k, images_left)],
            metrics=self._session.metrics(),
            gaze_shares=dict(gaze_shares) if gaze_shares is not None else None,
        )
        if self._critic.name == "rules":
            return self._fallback.summarize_now(summary), "rules"
        reason: FailureReason | None = None
        if self.stats.vlm_calls >= self._settings.vlm.max_calls_per_session:
            reason = "capped"
        else:
            self.stats.vlm_calls += 1
            self.stats.images_sent += len(summary.keyframes)
            try:
                async with asyncio.timeout(self._settings.vlm.timeout_s):
                    async with self._global_limit:
                        result = await self._critic.summarize(summary)
            except TimeoutError:
                reason = "timeout"
            except CriticError as exc:
                self.stats.add_usage(exc.usage)
                reason = exc.reason
            except Exception:
                log.exception("vlm summary of session %s crashed", self.session_id)
                reason = "internal_error"
            else:
                self.stats.add_usage(result.usage)
                return result.text, "vlm"
        log.warning("summary of session %s fell back to rules: %s", self.session_id, reason)
        return self._fallback.summarize_now(summary), "rules"
