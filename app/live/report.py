"""A live session's report: what the session collected, gathered into a plain `ReportInput`
(from the live session as it ends, or from the repository and the session's folder after a
crash), the critic's summary, and the files. The report itself is `app.coaching.report`'s pure
builder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.coaching.keyframes import KeyframePicker, load_candidates
from app.coaching.report import (
    REPORT_EVENT_TYPES,
    Findings,
    ReportInput,
    Summary,
    assess,
    render_report,
    rules_summary,
    write_report_files,
)
from app.config import Settings
from app.frames import Language
from app.store.repository import SessionRepository

if TYPE_CHECKING:
    from app.live.services import EndedSession, SessionStorage, SessionView

log = logging.getLogger(__name__)

KEYFRAMES_DIR = "keyframes"  # the picker's crash-safety copies, in the session's folder


def keyframe_picker_for(session: SessionView) -> KeyframePicker:
    """`Hooks.make_keyframe_picker`: one picker per session, persisting next to its files."""
    return KeyframePicker(
        session.settings, session.settings.sessions_dir / session.id / KEYFRAMES_DIR
    )


async def gather_report_input(
    repo: SessionRepository, directory: Path, session_id: str, session: EndedSession | None
) -> ReportInput:
    """What the session collected: its row, its report events, the transcript in `directory`
    and its keyframe candidates, from `session`'s picker (closed here) when it has just ended
    or from the picker's persisted copies (`session` None: crash recovery)."""
    row = await repo.get_session(session_id)
    if row is None:
        raise LookupError(f"no session row for {session_id}")
    events = await repo.list_events(session_id, types=REPORT_EVENT_TYPES)
    transcript = await asyncio.to_thread(_read_json, directory / "transcript.json")
    picker = session.keyframes if session is not None else None
    if picker is not None:
        await picker.aclose()
        candidates = picker.candidates()
    else:
        candidates = await asyncio.to_thread(load_candidates, directory / KEYFRAMES_DIR)
    language: Language = "ko" if row.language == "ko" else "en"
    return ReportInput(
        session_id=session_id,
        title=row.title,
        language=language,
        duration_s=row.duration_s,
        events=events,
        keyframe_candidates=candidates,
        transcript=transcript,
        recording_url=f"/api/sessions/{session_id}/recording.webm" if row.has_recording else None,
        recovered=bool(row.recovered),
    )


async def write_session_report(
    storage: SessionStorage, session_id: str, *, session: EndedSession | None
) -> None:
    """`Hooks.build_report`: write `report.json` and `report.html` into the session directory.

    Called after the session's events are flushed (`session` is the live object) or from crash
    recovery (`session` is None: keyframes come from the picker's persisted candidates).
    Raises on failure; the manager marks the session failed with the reason.
    """
    settings = storage.settings
    directory = storage.session_dir(session_id)
    inp = await gather_report_input(storage.repo, directory, session_id, session)
    findings = await asyncio.to_thread(assess, inp, settings)
    summary = await critic_summary(session, findings, settings)
    report = await asyncio.to_thread(render_report, inp, findings, summary, settings)
    await asyncio.to_thread(write_report_files, directory, report)
    # The report embeds the keyframes; the crash-safety copies are no longer needed.
    await asyncio.to_thread(shutil.rmtree, directory / KEYFRAMES_DIR, True)


async def critic_summary(
    session: EndedSession | None, findings: Findings, settings: Settings
) -> Summary:
    """The critic's summary when this session has a critic, else the rules summary. A failing
    or slow critic falls back to the rules."""
    critic = session.critic if session is not None else None
    if critic is not None:
        try:
            # CritiqueScheduler.summarize: the VLM's summary within its deadline, else its rules
            # summary (which also draws on the critiques). Our own bound on top, in case.
            text, source = await asyncio.wait_for(
                critic.summarize(
                    duration_s=findings.duration_s,
                    scores=findings.scores.as_dict(),
                    gaze_shares=findings.gaze_shares,
                ),
                timeout=settings.vlm.timeout_s + 5,
            )
            if isinstance(text, str) and text.strip():
                return text.strip(), "vlm" if source == "vlm" else "rules"
        except Exception:
            log.warning("critic summary failed; using the rules summary", exc_info=True)
    return rules_summary(findings), "rules"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
