"""The artefact store refuses paths outside it; the retention sweep deletes only what expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.config import Settings
from app.live.retention import sweep_expired
from app.store.files import InvalidArtefactPath, LocalArtefactStore
from tests.support.manager import running_manager

GOOD_ID = "Ab3_-xyzAb3_-xyzAb3_-xyz"


@pytest.mark.parametrize(
    "bad",
    [
        "..",
        ".",
        "_",
        "*",
        "a" * 10,
        "../" + "a" * 20,
        "a" * 20 + "/x",
        "a" * 19 + "*",
        "a" * 65,
        "",
        "a" * 20 + "\x00",
    ],
)
def test_bad_session_ids_never_become_paths(tmp_path: Path, bad: str) -> None:
    store = LocalArtefactStore(tmp_path / "sessions")
    with pytest.raises(InvalidArtefactPath):
        store.delete_session_files(bad)
    with pytest.raises(InvalidArtefactPath):
        store.path_for(bad, "report.json")


@pytest.mark.parametrize("bad", ["..", "../report.json", "a/b", ".hidden", "*", ""])
def test_bad_file_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidArtefactPath):
        LocalArtefactStore(tmp_path).path_for(GOOD_ID, bad)


def test_delete_removes_only_the_session_directory(tmp_path: Path) -> None:
    root = tmp_path / "sessions"
    store = LocalArtefactStore(root)
    target = store.path_for(GOOD_ID, "report.json")
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    other = root / ("Z" * 24)
    other.mkdir()
    assert store.delete_session_files(GOOD_ID) is True
    assert not target.parent.exists() and other.is_dir()
    assert store.delete_session_files(GOOD_ID) is False


def test_a_symlinked_session_directory_is_unlinked_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data.txt").write_text("keep")
    root = tmp_path / "sessions"
    root.mkdir()
    (root / GOOD_ID).symlink_to(outside, target_is_directory=True)
    assert LocalArtefactStore(root).delete_session_files(GOOD_ID) is True
    assert (outside / "data.txt").read_text() == "keep"


async def test_retention_sweep_deletes_expired_finished_sessions(settings: Settings) -> None:
    settings.storage.retention_days = 30
    now = datetime.now(UTC)
    async with running_manager(settings) as manager:
        ids: dict[str, str] = {}
        for name, state, age_days in (
            ("old", "completed", 40),
            ("old_failed", "failed", 31),
            ("recent", "completed", 2),
            ("old_live", "live", 40),
        ):
            session, _token, _ = await manager.create(
                title=name, language="en", critique_interval_s=None, client=name
            )
            manager.sessions.pop(session.id)  # as after a restart: only the row is left
            when = now - timedelta(days=age_days)
            await manager.repo.update_session(
                session.id, state=state, created_at=when, ended_at=when + timedelta(minutes=5)
            )
            directory = manager.session_dir(session.id)
            directory.mkdir(parents=True)
            (directory / "report.json").write_text("{}")
            ids[name] = session.id

        deleted = await sweep_expired(manager, now)
        assert sorted(deleted) == sorted([ids["old"], ids["old_failed"]])
        for name in ("old", "old_failed"):
            assert await manager.repo.get_session(ids[name]) is None
            assert not manager.session_dir(ids[name]).exists()
        for name in ("recent", "old_live"):
            assert await manager.repo.get_session(ids[name]) is not None
            assert (manager.session_dir(ids[name]) / "report.json").is_file()

        settings.storage.retention_days = 0  # retention off: nothing is ever swept
        assert await sweep_expired(manager, now + timedelta(days=999)) == []


async def test_sessions_never_started_are_failed_then_deletable(settings: Settings) -> None:
    settings.storage.retention_days = 30
    settings.limits.created_ttl_s = 3600
    now = datetime.now(UTC)
    async with running_manager(settings) as manager:
        ids: dict[str, str] = {}
        for name, age_h, keep_in_memory in (
            ("stale", 2, False),
            ("fresh", 0.5, False),
            ("held", 2, True),
        ):
            session, _token, _ = await manager.create(
                title=name, language="en", critique_interval_s=None, client=name
            )
            if not keep_in_memory:
                # as after a restart: only the row is left, no process times it
                manager.sessions.pop(session.id)
                entry = manager.created.pop(session.id)
                assert entry.expiry is not None
                entry.expiry.cancel()
            await manager.repo.update_session(session.id, created_at=now - timedelta(hours=age_h))
            ids[name] = session.id

        assert await sweep_expired(manager, now) == []  # nothing old enough to delete yet
        states = {n: (await manager.repo.get_session(i)) for n, i in ids.items()}
        assert states["stale"] is not None and states["stale"].state == "failed"
        assert states["stale"].reason == "never_started" and states["stale"].ended_at is not None
        # ended as at a deadline: with its one `state` event, for listeners and the log
        events = await manager.repo.list_events(ids["stale"])
        assert [(e["type"], e["state"], e["reason"]) for e in events] == [
            ("state", "failed", "never_started")
        ]
        assert states["fresh"] is not None and states["fresh"].state == "created"
        assert states["held"] is not None and states["held"].state == "created"

        # the failed one now expires like any finished session
        deleted = await sweep_expired(manager, now + timedelta(days=31))
        assert ids["stale"] in deleted and ids["held"] not in deleted
