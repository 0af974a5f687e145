"""The session registry of this process: creation, authorisation, ending and finalising, recovery
after a crash, and graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import math
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import CoachError, ErrorCode, not_found
from app.events import ReportReadyEvent, StateEvent, to_wire
from app.frames import Language
from app.jobs import JobContext, JobQueueFull
from app.live.load import overloaded
from app.live.services import Services
from app.live.session import LiveSession
from app.memory import release_free_memory
from app.store.db import PitchRow, SessionRow

log = logging.getLogger(__name__)

ACTIVE_STATES = ("created", "live", "finalizing")
# What counts against `max_concurrent_sessions`: a session still `created` holds no media.
RUNNING_STATES = ("live", "finalizing")
NEVER_STARTED = "never_started"
RECOVERY_JOB_KIND = "session_recovery"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(18)  # 144 bits


@dataclass
class CreatedSession:
    """A session this process created that has not received media yet: who asked for it, and
    the task that ends it `never_started` at its deadline."""

    client: str
    deadline: float  # time.monotonic()
    expiry: asyncio.Task[None] | None = None


class SessionManager:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.repo = services.repo
        self.sessions: dict[str, LiveSession] = {}
        self._finalizing: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._create_times: dict[str, list[float]] = {}
        self.created: dict[str, CreatedSession] = {}  # created here, no media yet
        self.end_to_ready_s: list[float] = []
        self._heap_frozen = False
        services.request_end = self.request_end
        if services.jobs is not None:
            services.jobs.register(RECOVERY_JOB_KIND, self._recovery_job)
        services.metrics.bind_gauges(
            live=lambda: len(self.sessions),
            recorder_depth=lambda: sum(
                s.recorder.queue_depth for s in self.sessions.values() if s.recorder is not None
            ),
        )

    # --- files ---------------------------------------------------------------------------
    def session_dir(self, session_id: str) -> Path:
        return self.settings.sessions_dir / session_id

    # --- create / authorise --------------------------------------------------------------
    def check_create_rate(self, client: str) -> None:
        now = time.monotonic()
        recent = [t for t in self._create_times.get(client, []) if now - t < 60.0]
        if len(recent) >= self.settings.limits.session_create_per_minute:
            raise CoachError(
                "rate_limited",
                "Too many sessions created from this address; try again in a minute.",
                retry_after_s=60,
            )
        recent.append(now)
        self._create_times[client] = recent
        if len(self._create_times) > 10_000:  # bound the table itself
            self._create_times = {
                k: v for k, v in self._create_times.items() if v and now - v[-1] < 60
            }

    def _check_created_bounds(self, client: str) -> None:
        """Sessions waiting for their first media are bounded in this process and per client
        address: each holds a row, a timer and perhaps an analyser until `created_ttl_s`."""
        settings = self.settings
        mine = [c for c in self.created.values() if c.client == client]
        if len(mine) >= settings.limits.max_created_per_client:
            raise _waiting_too_many(
                mine,
                "rate_limited",
                "Too many sessions from this address are waiting for their first frame; start "
                "or end one, or wait until an unused one expires.",
            )
        if len(self.created) >= settings.limits.max_created_sessions:
            raise _waiting_too_many(
                self.created.values(),
                "too_many_sessions",
                "This server has too many sessions waiting for their first frame; try again "
                "shortly.",
            )

    def check_running_capacity(self, session: LiveSession | None = None) -> None:
        """`too_many_sessions` when `max_concurrent_sessions` sessions are live or
        finalizing here (`session`, if given, not counted); `overloaded` while the others
        run at the analysis floor (`refuse_at_floor`)."""
        running = sum(
            1 for s in self.sessions.values() if s.state in RUNNING_STATES and s is not session
        )
        if running >= self.settings.limits.max_concurrent_sessions:
            raise CoachError(
                "too_many_sessions",
                "This server is at its limit of live sessions; try again shortly.",
                retry_after_s=30,
            )
        cadence = self.services.cadence
        limits = self.settings.limits
        if (
            running
            and limits.refuse_at_floor
            and cadence is not None
            and cadence.at_floor(time.monotonic())
        ):
            retry = limits.floor_retry_after_s
            self.services.metrics.sessions_refused_at_floor.inc()
            log.warning(
                "new session refused: %d live sessions run at the analysis floor (%g fps)",
                running,
                cadence.analysis_fps or 0.0,
            )
            raise overloaded(
                "This server's live sessions are at the least analysis they may get", retry
            )

    async def create(
        self,
        *,
        title: str,
        language: Language,
        critique_interval_s: float | None,
        client: str,
        pitch: PitchRow | None = None,
    ) -> tuple[LiveSession, str, datetime]:
        """A new session; with `pitch`, its next take (the pitch's language and target length,
        and its title when `title` is empty)."""
        self.check_create_rate(client)
        if self.services.load is not None:
            self.services.load.check()
        self.check_running_capacity()
        self._check_created_bounds(client)
        free_mb = shutil.disk_usage(self.settings.storage.data_dir).free / 1e6
        if free_mb < self.settings.limits.min_free_disk_mb:
            raise CoachError(
                "disk_full",
                "The server is low on disk space and cannot record a new session.",
                retry_after_s=300,
            )
        session_id, token = new_session_id(), secrets.token_urlsafe(32)
        interval = critique_interval_s or self.settings.critique.interval_s
        row = SessionRow(
            id=session_id,
            token_hash=hash_token(token),
            title=title or (pitch.title if pitch is not None else ""),
            language=pitch.language if pitch is not None else language,
            critique_interval_s=interval,
            state="created",
            created_at=datetime.now(UTC),
            extra={},
        )
        if pitch is None:
            await self.repo.create_session(row)
        else:
            row.pitch_id, row.target_duration_s = pitch.id, pitch.target_duration_s
            if await self.repo.create_take(row) is None:  # deleted meanwhile
                raise CoachError("pitch_not_found", "No such pitch.")
        session = self._session_from_row(row)
        ttl = self.settings.limits.created_ttl_s
        entry = CreatedSession(client=client, deadline=time.monotonic() + ttl)
        self.created[session_id] = entry
        entry.expiry = self.spawn(self._expire_after(session_id, ttl), f"{session_id}:ttl")
        if self.services.ownership is None:
            self.sessions[session_id] = session
            # A few sessions pre-build their analyser while their client connects; a burst of
            # creations must not build one each (each is tens of MB of graphs).
            prewarmed = sum(
                1 for s in self.sessions.values() if s.state == "created" and s.prewarmed
            )
            if prewarmed < self.settings.limits.prewarm_analyzers:
                session.prewarm()
        # With replicas, the one that receives the first media owns the session (a balancer
        # routes by session id, not to whoever created it): `live_session` claims it there.
        log.info("session created", extra={"session_id": session_id})
        return session, token, row.created_at

    # --- the first media, or none --------------------------------------------------------
    async def go_live(self, session: LiveSession) -> None:
        """Start `session` with its first media (a frame, audio, a WebRTC offer); nothing when
        it is live already. `too_many_sessions` when this process runs its limit of live
        sessions (the session stays `created`, to be tried again); `session_not_live` when
        it ended meanwhile (expired, or ended by a call)."""
        if session.state == "live":
            return
        async with session.starting:
            if session.state == "live":
                return
            if session.state != "created":
                raise CoachError("session_not_live", f"The session is {session.state}.")
            try:
                self.check_running_capacity(session)
            except CoachError:
                await self._let_go(session)
                raise
            try:
                started = await session.go_live()
            except Exception:
                log.exception("starting the session failed", extra={"session_id": session.id})
                self.request_end(session.id, "start_failed")  # finalised with what there is
                raise
            if not started:
                # Ended (expired) by another replica between our claim and the first media.
                fresh = await self.repo.get_session(session.id)
                state = fresh.state if fresh is not None else "failed"
                if session.state == "created":
                    await self._drop(session)
                raise CoachError("session_not_live", f"The session is {state}.")
        self._forget_created(session.id)

    async def let_go(self, session: LiveSession) -> None:
        """A claimed session whose first media was refused (a bad offer): see `_let_go`."""
        async with session.starting:
            await self._let_go(session)

    async def _let_go(self, session: LiveSession) -> None:
        """With replicas, a session this replica claimed for media it then refused goes back
        to nobody (still `created`, its creator's deadline running), so the next media may
        start it anywhere. Alone, it stays here until its deadline."""
        ownership = self.services.ownership
        if ownership is None or session.state != "created":
            return
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        self._forget_created(session.id)
        await session.cancel_all()
        await ownership.release(session.id)

    def _forget_created(self, session_id: str) -> None:
        entry = self.created.pop(session_id, None)
        expiry = entry.expiry if entry is not None else None
        if expiry is not None and expiry is not asyncio.current_task():
            expiry.cancel()

    async def _expire_after(self, session_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await self.expire_created(session_id)
        except Exception:
            log.exception("expiring an unused session failed", extra={"session_id": session_id})

    async def expire_created(self, session_id: str) -> bool:
        """End a session that received no media: `failed` with reason `never_started`, one
        `state` event, its slot and analyser given back at once. Nothing (False) when it went
        live or ended meanwhile, here or on another replica."""
        session = self.sessions.get(session_id)
        ended_at = datetime.now(UTC)
        if session is not None:
            async with session.starting:  # a first media being started goes first
                if session.state != "created":
                    return False
                session.state = "failed"  # the first media now finds it ended
                session.reason = NEVER_STARTED
                session.ended_at = ended_at  # what GET answers until the row takes over
        self._forget_created(session_id)
        moved = await self.repo.update_session_in_state(
            session_id, "created", state="failed", reason=NEVER_STARTED, ended_at=ended_at
        )
        if not moved:
            if session is not None:  # it cannot be live elsewhere while held here
                await self._drop(session)
            return False
        failed = StateEvent(t=0.0, state="failed", reason=NEVER_STARTED)
        if session is not None:
            await session.emit(failed)
            await self.services.writer.flush()
            await self._drop(session)  # its listeners get the event, then the end
        else:
            event = to_wire(failed, session_id, await self.repo.max_seq(session_id) + 1)
            await self.repo.add_events([event])
            self.services.bus.publish(session_id, event)
            self.services.bus.close_session(session_id)
        log.info(
            "session never started; ended after %.0f s",
            self.settings.limits.created_ttl_s,
            extra={"session_id": session_id},
        )
        return True

    async def _drop(self, session: LiveSession) -> None:
        """Let go of a session that never ran: its listeners, slot, claim and analyser. It is
        forgotten and `finalized` (it writes nothing more) first: giving back a prewarmed
        analyser waits for its build, which must not keep the ended session visible or hold
        up a DELETE meanwhile."""
        if self.sessions.get(session.id) is session:  # not another copy's listeners or claim
            self._forget_created(session.id)
            del self.sessions[session.id]
            self.services.bus.close_session(session.id)
            if self.services.ownership is not None:
                await self.services.ownership.release(session.id)
        session.finalized.set()
        await session.cancel_all()

    def _session_from_row(self, row: SessionRow, seq: int = 0) -> LiveSession:
        return LiveSession(
            session_id=row.id,
            title=row.title,
            language=row.language,  # type: ignore[arg-type]
            critique_interval_s=row.critique_interval_s,
            services=self.services,
            state=row.state,  # type: ignore[arg-type]
            seq=seq,
            target_duration_s=row.target_duration_s,
        )

    async def authorize(self, session_id: str, token: str | None) -> SessionRow:
        """The session's row if `token` is its token (or, for a take, its pitch's token).
        `token_missing` without a token,
        `token_invalid` for a wrong one, `session_not_found` for an unknown id (the token is
        checked only after the id exists, so a wrong token
        cannot tell an attacker more than a missing id would)."""
        if len(session_id) > 64:
            raise not_found()
        row = await self.repo.get_session(session_id)
        if row is None:
            raise not_found()
        if not token:
            raise CoachError(
                "token_missing",
                "This call needs the session token (Authorization: Bearer <token> or ?token=).",
            )
        if hmac.compare_digest(hash_token(token), row.token_hash):
            return row
        # A take also opens with its pitch's token.
        pitch = await self.repo.get_pitch(row.pitch_id) if row.pitch_id else None
        if pitch is None or not hmac.compare_digest(hash_token(token), pitch.token_hash):
            raise CoachError("token_invalid", "The session token is not valid.")
        return row

    async def live_session(self, row: SessionRow) -> LiveSession:
        """The in-memory session for a row that still takes media (created or live)."""
        session = self.sessions.get(row.id)
        if session is not None:
            return session
        if row.state != "created":
            await self._refuse_if_owned_elsewhere(row.id)
            raise CoachError("session_not_live", f"The session is {row.state}.")
        if self.services.ownership is not None:
            await self.services.ownership.require(row.id)
            session = self.sessions.get(row.id)  # claimed while we waited
            if session is not None:
                return session
        # Built here (created on another replica, or before a restart); `go_live` builds its
        # analyser with the first media.
        session = self._session_from_row(row, await self.repo.max_seq(row.id))
        session = self.sessions.setdefault(row.id, session)  # one copy, however many waited
        if row.id not in self.created:
            # Its deadline runs here too, so a refused first media cannot keep it forever.
            left = (
                self.settings.limits.created_ttl_s
                - (datetime.now(UTC) - _utc(row.created_at)).total_seconds()
            )
            entry = CreatedSession(client="", deadline=time.monotonic() + max(0.0, left))
            self.created[row.id] = entry
            entry.expiry = self.spawn(self._expire_after(row.id, max(0.0, left)), f"{row.id}:ttl")
        return session

    async def _refuse_if_owned_elsewhere(self, session_id: str) -> None:
        ownership = self.services.ownership
        if ownership is not None:
            owner = await ownership.owner(session_id)
            if owner is not None and owner != ownership.replica_id:
                from app.live.ownership import owned_elsewhere

                raise owned_elsewhere(session_id, owner)

    # --- ending --------------------------------------------------------------------------
    async def end(self, row: SessionRow, reason: str = "ended") -> str:
        """End a session from whichever replica was asked (REST `end`, a listening socket's
        `end`): here if this replica holds it or nobody does yet, else by a command to its
        owner. Returns the state to answer."""
        if row.id in self.sessions:
            return self.request_end(row.id, reason)
        ownership, control = self.services.ownership, self.services.control
        if ownership is None or control is None or row.state not in ("created", "live"):
            return row.state
        if row.state == "created":
            # No media yet, so nobody owns it: claim it here and end it (an empty session).
            try:
                await self.live_session(row)
            except CoachError as exc:
                if exc.code != "session_owned_elsewhere":
                    raise
            else:
                return self.request_end(row.id, reason)
        owner = await ownership.owner(row.id)
        if owner is None:
            # Live without an owner: it died, and the takeover finalises the session.
            return "finalizing"
        if owner == ownership.replica_id:
            return row.state  # held here but not in memory: its end is under way
        from redis.exceptions import RedisError  # only with replicas: redis is an extra

        try:
            state = await control.request_end(
                owner, row.id, reason, timeout=self.settings.cluster.end_forward_timeout_s
            )
        except (RedisError, OSError) as exc:
            raise CoachError(
                "owner_unreachable",
                f"The session is held by {owner}, which cannot be reached now ({exc}).",
                retry_after_s=5,
            ) from None
        if state is None:
            return "finalizing"  # the command waits in the owner's stream
        if state == "unknown":  # the owner finished it meanwhile
            fresh = await self.repo.get_session(row.id)
            return fresh.state if fresh is not None else row.state
        return state

    def duration_s(self, row: SessionRow) -> float | None:
        """A session's length: the live one's here (its end's once ending), else the row's."""
        live = self.sessions.get(row.id)
        length = live.length_s() if live is not None else None
        return row.duration_s if length is None else length

    def request_end(self, session_id: str, reason: str = "ended") -> str:
        """Start finalising (idempotent). Returns the state the session is in now."""
        session = self.sessions.get(session_id)
        if session is None:
            return "unknown"
        if session.state in ("created", "live") and session_id not in self._finalizing:
            self._forget_created(session_id)
            task = asyncio.get_running_loop().create_task(
                self._finalize(session, reason), name=f"{session_id}:finalize"
            )
            self._finalizing[session_id] = task
            session.state = "finalizing"
            if session.detached_t is not None:
                # Where it ends, taken now: a socket attaching before the task runs does not
                # move it to the end of the grace.
                session.duration_s = round(session.end_time(), 3)
        return session.state

    async def _finalize(self, session: LiveSession, reason: str) -> None:
        ended_mono = time.monotonic()
        async with session.starting:
            pass  # a first media being started finishes starting first, then this stops it
        try:
            # The session's own clock ends where it ended: for a disconnect, where the last
            # transport went, not when the grace ran out; the closing events keep that offset.
            if session.duration_s is None:
                session.duration_s = round(session.end_time(), 3)
            t = session.duration_s
            behind = session.media_time() - t
            await session.emit(StateEvent(t=t, state="finalizing", reason=reason))
            session.ended_at = datetime.now(UTC)
            await session.stop_pipeline(t)
            recording = None
            if session.critic is not None:
                await session.critic.aclose(final=True)
                for outcome, count in session.critic.stats.outcomes.items():
                    self.services.metrics.vlm_calls.labels(outcome=outcome).inc(count)
            if session.recorder is not None:
                recording = await session.recorder.stop()
            await self._store_transcript(session, t)
            has_recording = bool(recording is not None and recording.path is not None)
            await self.repo.update_session(
                session.id,
                state="finalizing",
                reason=reason,
                ended_at=session.ended_at,
                duration_s=session.duration_s,
                frames_received=session.frames_received,
                frames_analyzed=session.frames_analyzed,
                frames_dropped=session.frames_dropped,
                has_recording=has_recording,
            )
            await self.services.writer.flush()
            has_report = False
            if self.services.hooks.build_report is not None:
                await self.services.hooks.build_report(self, session.id, session=session)
                has_report = True
            # The row says `completed` before any event does, so a client that reacts to
            # `report_ready` finds the report served.
            await self.repo.update_session(session.id, has_report=has_report, state="completed")
            session.state = "completed"
            await session.emit(
                report_ready(session.id, session.media_time() - behind, has_recording=has_recording)
            )
            await session.emit(StateEvent(t=session.media_time() - behind, state="completed"))
            elapsed = time.monotonic() - ended_mono
            self.end_to_ready_s.append(elapsed)
            log.info(
                "session completed; end -> report ready in %.2f s",
                elapsed,
                extra={"session_id": session.id},
            )
        except Exception as exc:
            log.exception("finalising failed", extra={"session_id": session.id})
            session.state = "failed"
            reason_text = f"finalize_failed: {type(exc).__name__}: {exc}"
            try:
                await session.emit(
                    StateEvent(t=session.media_time(), state="failed", reason=reason_text)
                )
                await self.repo.update_session(session.id, state="failed", reason=reason_text)
            except Exception:
                log.exception("could not persist the failure", extra={"session_id": session.id})
        finally:
            await session.cancel_all()
            await self.services.writer.flush()
            self.services.bus.close_session(session.id)
            self.sessions.pop(session.id, None)
            self._finalizing.pop(session.id, None)
            if self.services.ownership is not None:
                await self.services.ownership.release(session.id)
            session.finalized.set()
            self._collect_garbage()

    def _collect_garbage(self) -> None:
        """Free what the ended session left in reference cycles now. aiortc's peers and the
        recorder's codecs (native decoder/encoder threads and buffers behind them) form cycles,
        so without this they wait for the next full collection and pile up, and the peak they
        leave fragments the heap; `malloc_trim` then hands the freed pages back.

        A full collection walks every tracked object (~300k once MediaPipe and aiortc are
        loaded: ~250 ms), so the first time no session runs the heap is collected and frozen
        (`gc.freeze`: start-up objects and modules are not walked again); from then on a
        collection takes a few ms. Freezing only with no session running keeps a live
        session's objects out of the frozen set."""
        if self._heap_frozen:
            gc.collect()
        elif not self.sessions:
            gc.collect()
            gc.freeze()
            self._heap_frozen = True
        release_free_memory()

    async def _store_transcript(self, session: LiveSession, end_t: float) -> None:
        """transcript.json of a session ending at media time `end_t`."""
        from app.live.transcription import write_transcript

        path = self.session_dir(session.id) / "transcript.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        if session.transcriber is None:
            note = "no recogniser for this language is installed or configured"
            await asyncio.to_thread(write_transcript, path, None, note)
            return
        transcript = await session.transcriber.finish(end_t=end_t)
        if session.audio_received == 0:
            # Nothing to transcribe: no speech figures (null), not an empty transcript's zeros.
            await asyncio.to_thread(write_transcript, path, None, "no audio was received")
            return
        await asyncio.to_thread(write_transcript, path, transcript)

    # --- crash recovery ------------------------------------------------------------------
    async def recover_orphans(self) -> None:
        """Sessions a killed process left `live` or `finalizing`: recover what was recorded and
        finalise them; `completed` with `recovered: true`, or `failed` with a reason."""
        rows = await self.repo.sessions_in_states(("live", "finalizing"))
        ownership = self.services.ownership
        for row in rows:
            if row.id in self.sessions:
                continue
            if ownership is None:
                await self._recover(row)
                continue
            # Another replica's session: only once its owner key has expired (the owner died)
            # and this replica wins the claim.
            if await ownership.owner(row.id) is not None:
                continue
            if self.services.jobs is not None:
                # A worker takes it over; the runner sends a job that is queued or running
                # already only once, whichever replica asks.
                try:
                    self.services.jobs.submit(RECOVERY_JOB_KIND, row.id)
                except JobQueueFull:
                    log.warning("recovery not queued; retried at the next check")
                continue
            await self._take_over(row.id)

    async def _take_over(self, session_id: str) -> None:
        """Claim an orphaned session and finalise it; nothing when its owner is back, another
        replica holds it, or it was finalised meanwhile."""
        ownership = self.services.ownership
        assert ownership is not None
        if await ownership.claim(session_id) != ownership.replica_id:
            return
        try:
            fresh = await self.repo.get_session(session_id)
            if fresh is not None and fresh.state in ("live", "finalizing"):
                log.info("taking over an orphaned session", extra={"session_id": session_id})
                await self._recover(fresh)
        finally:
            await ownership.release(session_id)

    async def _recovery_job(self, ctx: JobContext) -> None:
        """RECOVERY_JOB_KIND on a worker: the same takeover, holding the session's ownership
        key (with this worker's heartbeat) while it recovers."""
        if self.services.ownership is not None:
            await self._take_over(ctx.job_id)
            return
        row = await self.repo.get_session(ctx.job_id)
        if row is not None and row.state in ("live", "finalizing"):
            await self._recover(row)

    async def watch_orphans(self) -> None:
        """With replicas: take over sessions whose owner died, every `takeover_check_s`."""
        while True:
            await asyncio.sleep(self.settings.cluster.takeover_check_s)
            try:
                await self.recover_orphans()
            except Exception:
                log.exception("orphan check failed")

    async def _recover(self, row: SessionRow) -> None:
        hooks = self.services.hooks
        session_id = row.id
        try:
            recording = None
            if hooks.recover_recording is not None:
                recording = await asyncio.to_thread(
                    hooks.recover_recording, self.session_dir(session_id), self.settings
                )
            events = await self.repo.list_events(session_id)
            last_t = max((e["t"] for e in events), default=0.0)
            duration = recording.duration_s if recording is not None else last_t
            has_recording = bool(recording is not None and recording.path is not None)
            extra = dict(row.extra or {})
            extra["recovered"] = True
            await self.repo.update_session(
                session_id,
                state="finalizing",
                recovered=True,
                ended_at=datetime.now(UTC),
                duration_s=round(max(duration, last_t), 3),
                has_recording=has_recording,
                extra=extra,
            )
            # A recovery that ran before and died after writing its closing events (a
            # redelivered job) does not write them twice.
            closed = any(e["type"] == "state" and e.get("state") == "completed" for e in events)
            seq = await self.repo.max_seq(session_id)
            if hooks.build_report is not None:
                await hooks.build_report(self, session_id, session=None)
            now_t = round(max(duration, last_t), 3)
            completed = StateEvent(t=now_t, state="completed", recovered=True)
            closing_events = [
                to_wire(
                    report_ready(session_id, now_t, has_recording=has_recording),
                    session_id,
                    seq + 1,
                ),
                to_wire(completed, session_id, seq + 2),
            ]
            if not closed:
                await self.repo.add_events(closing_events)
            await self.repo.update_session(
                session_id, state="completed", has_report=hooks.build_report is not None
            )
            # Listeners on other replicas (watching the dead owner's session) hear the end.
            for closing in closing_events if not closed else []:
                self.services.bus.publish(session_id, closing)
            log.info("recovered session", extra={"session_id": session_id})
        except Exception as exc:
            log.exception("recovery failed", extra={"session_id": session_id})
            await self.repo.update_session(
                session_id, state="failed", reason=f"recovery_failed: {type(exc).__name__}: {exc}"
            )

    # --- shutdown ------------------------------------------------------------------------
    async def shutdown(self, timeout: float = 30.0) -> None:
        """End every live session and wait for its finalisation, then cancel what is left.
        The shared stages stay open for the jobs still running: `close_stages` closes them
        once those have stopped."""
        for session_id in list(self.sessions):
            self.request_end(session_id, "server_shutdown")
        tasks = list(self._finalizing.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.warning("cancelling %s after the shutdown timeout", task.get_name())
                task.cancel()
        for task in list(self._background):
            task.cancel()

    async def close_stages(self) -> None:
        """Close what the hooks share between sessions and jobs (the analysers, the Pose
        worker, the critic's client); after `shutdown` and after the job runner stopped, or an
        upload still being analysed would fail on a closed stage instead of being resumed."""
        for close in self.services.hooks.on_shutdown:
            try:
                await close()
            except Exception:
                log.exception("a stage failed to close")

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _waiting_too_many(
    waiting: Iterable[CreatedSession], code: ErrorCode, message: str
) -> CoachError:
    """A refused creation, to retry once the first of `waiting` expires."""
    wait = min(c.deadline for c in waiting) - time.monotonic()
    return CoachError(code, message, retry_after_s=max(1, math.ceil(wait)))


def report_ready(session_id: str, t: float, *, has_recording: bool) -> ReportReadyEvent:
    """`recording_url` is null where no recording was kept (no video came), as the session's
    and the report's own `recording_url` say."""
    urls: dict[str, str | None] = {**artefact_urls(session_id)}
    if not has_recording:
        urls["recording_url"] = None
    return ReportReadyEvent.model_validate({"t": t, **urls})


def artefact_urls(session_id: str) -> dict[str, str]:
    base = f"/api/sessions/{session_id}"
    return {"report_url": f"{base}/report", "recording_url": f"{base}/recording.webm"}
