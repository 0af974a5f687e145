"""Cue hysteresis: a cue turns on only after its condition held for `hold_s`, and off only after
it cleared for as long, so cues never flicker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.coaching.messages import CUE_SEVERITY
from app.frames import CueName, CueTransition


@dataclass(slots=True)
class _CueState:
    active: bool = False
    changing_since: float | None = None  # first t at which the condition disagreed with `active`


class CueEngine:
    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._states: dict[CueName, _CueState] = {}

    def update(self, t: float, conditions: Mapping[CueName, bool | None]) -> list[CueTransition]:
        """Feed one observation. `None` means "cannot tell": the cue keeps its state and any
        pending change waits for real evidence."""
        out: list[CueTransition] = []
        for cue, condition in conditions.items():
            if condition is None:
                continue
            st = self._states.setdefault(cue, _CueState())
            if condition == st.active:
                st.changing_since = None
                continue
            if st.changing_since is None:
                st.changing_since = t
            if t - st.changing_since >= self.hold_s:
                st.active = condition
                st.changing_since = None
                out.append(
                    CueTransition(
                        cue=cue,
                        state="on" if condition else "off",
                        t=t,
                        severity=CUE_SEVERITY[cue],
                    )
                )
        return out

    def active(self) -> list[CueName]:
        return [cue for cue, st in self._states.items() if st.active]

    def close(self, t: float) -> list[CueTransition]:
        """Turn every active cue off at the end of the session."""
        out = [
            CueTransition(cue=cue, state="off", t=t, severity=CUE_SEVERITY[cue])
            for cue in self.active()
        ]
        self._states.clear()
        return out
