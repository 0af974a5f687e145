"""Pitches and their takes: creation and the pitch's token, every take's scores and figures (read
from its stored report), the comparison of two takes, and deleting a pitch (a live take is
ended first, as `POST .../end` would, so its recording and report are finished before they go).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.coaching.progress import (
    FIGURE_NAMES,
    SCORE_NAMES,
    delta,
    take_figures,
    take_scores,
)
from app.errors import CoachError
from app.frames import Language
from app.live import retention
from app.live.manager import ACTIVE_STATES, SessionManager, artefact_urls, hash_token
from app.store.db import PitchRow, SessionRow

log = logging.getLogger(__name__)

# How long deleting a pitch waits for a take it ended to finish finalising.
END_WAIT_S = 60.0


def pitch_not_found() -> CoachError:
    return CoachError("pitch_not_found", "No such pitch.")


async def create_pitch(
    manager: SessionManager,
    *,
    title: str,
    language: Language,
    target_duration_s: float | None,
    client: str,
) -> tuple[PitchRow, str]:
    """A new pitch and its token (kept only hashed). Counts against the creation rate of
    `client`, like a session."""
    manager.check_create_rate(client)
    token = secrets.token_urlsafe(32)
    row = PitchRow(
        id=secrets.token_urlsafe(18),  # 144 bits, like a session id
        token_hash=hash_token(token),
        title=title,
        language=language,
        target_duration_s=target_duration_s,
        created_at=datetime.now(UTC),
        takes_started=0,
    )
    await manager.repo.create_pitch(row)
    log.info("pitch created", extra={"pitch_id": row.id})
    return row, token


async def authorize_pitch(manager: SessionManager, pitch_id: str, token: str | None) -> PitchRow:
    """The pitch's row if `token` is its token: `pitch_not_found` for an unknown id (checked
    first, as for sessions), `token_missing` / `token_invalid`. A take's own token is not the
    pitch's."""
    if len(pitch_id) > 64:
        raise pitch_not_found()
    row = await manager.repo.get_pitch(pitch_id)
    if row is None:
        raise pitch_not_found()
    if not token:
        raise CoachError(
            "token_missing",
            "This call needs the pitch token (Authorization: Bearer <token> or ?token=).",
        )
    if not hmac.compare_digest(hash_token(token), row.token_hash):
        raise CoachError("token_invalid", "The pitch token is not valid.")
    return row


async def list_takes(manager: SessionManager, pitch: PitchRow) -> list[dict[str, Any]]:
    """Every take of `pitch`, in order, as the contract's `Take`."""
    rows = await manager.repo.takes_of(pitch.id)
    states = [_state(manager, row) for row in rows]
    paths = [
        manager.session_dir(row.id) / "report.json"
        if row.has_report and state == "completed"
        else None
        for row, state in zip(rows, states, strict=True)
    ]
    reports = await asyncio.to_thread(_read_reports, paths)
    return [
        _take(manager, row, state, report)
        for row, state, report in zip(rows, states, reports, strict=True)
    ]


async def compare_takes(manager: SessionManager, pitch: PitchRow, a: str, b: str) -> dict[str, Any]:
    """`{"a", "b", "delta"}`: `take_not_found` unless both are takes of `pitch`,
    `take_not_completed` while either is not completed."""
    takes = {take["session_id"]: take for take in await list_takes(manager, pitch)}
    for session_id in (a, b):
        if session_id not in takes:
            raise CoachError(
                "take_not_found",
                "That session is not a take of this pitch.",
                extra={"session_id": session_id[:64]},
            )
    for session_id in (a, b):
        state = takes[session_id]["state"]
        if state != "completed":
            raise CoachError(
                "take_not_completed",
                f"Takes can be compared once completed (this one is {state}).",
                extra={"session_id": session_id, "state": state},
            )
    first, second = takes[a], takes[b]
    return {
        "a": first,
        "b": second,
        "delta": {
            "scores": delta(first["scores"], second["scores"], SCORE_NAMES),
            "figures": delta(first["figures"], second["figures"], FIGURE_NAMES),
        },
    }


async def delete_pitch(manager: SessionManager, pitch: PitchRow) -> None:
    """Mark the pitch as being deleted (no take is added from then on: `pitch_not_found`), end
    every take still active (the normal end: recording closed, report built), delete each
    take's files and rows, and the pitch's row last. A take that cannot be ended in time
    answers 409 `session_active`, and a delete that failed midway leaves the pitch's row and
    token: calling it again picks up where it stopped."""
    await manager.repo.mark_pitch_deleting(pitch.id, datetime.now(UTC))
    # Every take is listed now: the mark and a take's creation update the same row, in order.
    rows = await manager.repo.takes_of(pitch.id)
    for row in rows:
        await _end_and_wait(manager, row)
    for row in rows:
        await retention.delete_session(manager, row.id)
    await manager.repo.delete_pitch(pitch.id)
    log.info("pitch deleted with %d takes", len(rows), extra={"pitch_id": pitch.id})


async def _end_and_wait(manager: SessionManager, row: SessionRow) -> None:
    if row.state == "created" and row.id not in manager.sessions and row.id not in manager.created:
        # Created before a restart (or on a replica that died): nothing here would end it, so
        # it ends as at its deadline; whatever it became meanwhile is read again.
        ownership = manager.services.ownership
        if ownership is None or await ownership.owner(row.id) is None:
            await manager.expire_created(row.id)
            row = await manager.repo.get_session(row.id) or row
    if _state(manager, row) in ACTIVE_STATES:
        await manager.end(row, "pitch_deleted")
    try:
        async with asyncio.timeout(END_WAIT_S):
            while True:
                live = manager.sessions.get(row.id)
                if live is not None:
                    await live.finalized.wait()
                fresh = await manager.repo.get_session(row.id)
                if fresh is None or fresh.state not in ACTIVE_STATES:
                    return
                # Held by another replica, which finalises it: its row says when.
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise CoachError(
            "session_active",
            "A take of this pitch is still finishing; try deleting the pitch again shortly.",
            extra={"session_id": row.id},
        ) from None


def _state(manager: SessionManager, row: SessionRow) -> str:
    live = manager.sessions.get(row.id)
    return live.state if live is not None else row.state


def _take(
    manager: SessionManager, row: SessionRow, state: str, report: dict[str, Any] | None
) -> dict[str, Any]:
    urls = artefact_urls(row.id)
    return {
        "take": row.take or 0,
        "session_id": row.id,
        "state": state,
        "created_at": row.created_at,
        "duration_s": manager.duration_s(row),
        "scores": take_scores(report),
        "figures": take_figures(report),
        "report_url": urls["report_url"] if report is not None else None,
        "recording_url": urls["recording_url"] if row.has_recording else None,
    }


def _read_reports(paths: Sequence[Path | None]) -> list[dict[str, Any] | None]:
    reports: list[dict[str, Any] | None] = []
    for path in paths:
        try:
            reports.append(json.loads(path.read_text("utf-8")) if path is not None else None)
        except (OSError, ValueError):
            reports.append(None)  # deleted meanwhile, or never written
    return reports
