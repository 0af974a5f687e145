"""Load shedding: the CPU reading is the edge of the world, so the tests feed it."""

from __future__ import annotations

import pytest

from app.api.errors import http_headers, http_status
from app.errors import CoachError
from app.live.load import LoadMonitor


def monitor(readings: list[float], limit: float | None = 80.0) -> LoadMonitor:
    values = iter(readings)
    m = LoadMonitor(limit, retry_after_s=7, window=3, sample_cpu=lambda: next(values))
    for _ in readings:
        m.sample_now()
    return m


def test_above_the_averaged_limit_new_sessions_get_503_overloaded_with_retry_after() -> None:
    with pytest.raises(CoachError) as refused:
        monitor([70, 95, 99, 97]).check()
    assert refused.value.code == "overloaded"
    assert refused.value.retry_after_s == 7
    assert http_status(refused.value) == 503
    assert http_headers(refused.value) == {"Retry-After": "7"}


def test_one_busy_sample_does_not_shed_and_no_limit_never_sheds() -> None:
    monitor([20, 30, 100]).check()  # mean 50
    monitor([100, 100, 100], limit=None).check()
    monitor([]).check()  # no reading yet
