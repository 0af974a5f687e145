from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from tests.support.server import ThreadServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        log_json=False,
        log_level="WARNING",
        reconnect_grace_s=2.0,
        min_free_disk_mb=0,
        # A slow CI machine can push the analysis to its floor, where a test's next session
        # would be refused; tests/live/test_load.py turns the refusal on where it is tested.
        refuse_at_floor=False,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[ThreadServer]:
    with ThreadServer(settings) as srv:
        yield srv
