"""Field lists the contract (`../shared/CONTRACT.md`) fixes, asserted by more than one test."""

from __future__ import annotations

# The report JSON: the same fields for a live session and for an upload.
REPORT_FIELDS = frozenset(
    {
        "session_id",
        "title",
        "language",
        "duration_s",
        "scores",
        "timeline",
        "cues",
        "critiques",
        "keyframes",
        "summary",
        "recording_url",
    }
)
