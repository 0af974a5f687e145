"""Where a session's audio chunks go on its media clock (`AudioClock`): a backlog the network
held up fills the time it was held up for whatever its pace, a pause in sending skips ahead,
and no chunk is laid over another (the recorder would drop the overlap)."""

from __future__ import annotations

import itertools

import pytest

from app.live.session import AUDIO_CATCH_UP_WINDOW_S, AudioClock

CHUNK_S = 0.1


def placed(arrivals: list[float]) -> list[float]:
    """Each 100 ms chunk's start, given the time each arrived (its end, on the arrival clock)."""
    clock = AudioClock("s")
    return [clock.place(a - CHUNK_S, CHUNK_S) for a in arrivals]


def stalled(rate: float, stall_from: float = 10.0, released: float = 12.0) -> list[float]:
    """300 chunks sent in real time; those due after `stall_from` are held until `released`,
    then drain at `rate` times real time until caught up."""
    arrivals = []
    for i in range(300):
        sent = CHUNK_S * (i + 1)
        late = sent > stall_from
        arrivals.append(max(sent, released + (sent - stall_from) / rate) if late else sent)
    return arrivals


def assert_no_overlap(starts: list[float]) -> None:
    for a, b in itertools.pairwise(starts):
        assert b >= a + CHUNK_S - 1e-9, (a, b)


@pytest.mark.parametrize("rate", [1.2, 1.5, 1.9, 3.0, 1000.0])
def test_a_held_up_backlog_fills_its_time_at_any_pace(rate: float) -> None:
    """Before, a burst's chunks were laid over one another (dropped); a first mend filled it
    only when it drained faster than twice real time and otherwise left the rest of the take's
    audio ~2 s ahead of its video."""
    starts = placed(stalled(rate))
    assert_no_overlap(starts)
    for i, start in enumerate(starts):
        assert start == pytest.approx(CHUNK_S * i, abs=1e-6), (i, start)


def test_a_pause_in_sending_skips_ahead_with_silence_between() -> None:
    """The client sent nothing from 5 s to 7.5 s (a reconnect, a muted tab), then goes on in
    real time: after a window of arrivals that do not catch up, the track follows the arrival
    clock again; the chunks of that window stay where they were laid, nothing overlaps."""
    arrivals = [CHUNK_S * (i + 1) for i in range(50)]
    arrivals += [7.5 + CHUNK_S * (i + 1) for i in range(100)]
    starts = placed(arrivals)
    assert_no_overlap(starts)
    window = int(AUDIO_CATCH_UP_WINDOW_S / CHUNK_S) + 2
    for a, start in list(zip(arrivals, starts, strict=True))[50 + window :]:
        assert start == pytest.approx(a - CHUNK_S, abs=1e-6)


def test_a_client_far_ahead_of_time_is_put_back() -> None:
    """More audio than time passes (60 s sent in one go): after 5 s ahead, back to arrival."""
    starts = placed([1.0] * 600)
    assert max(starts) < 6.0
