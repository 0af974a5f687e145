"""RateCap: the analysed-rate cap, in the frames' arrival times."""

from __future__ import annotations

import itertools
import random
import time

from app.live.mailbox import RateCap


def _admitted(
    cap: RateCap, arrivals: list[float], preferred: list[bool] | None = None
) -> list[bool]:
    """Each frame's answer; asking `would_admit` first (as the decode loop does for a frame it
    may leave undecoded) gives the same answer and changes none."""
    answers = []
    for t, p in zip(arrivals, preferred or [False] * len(arrivals), strict=True):
        peek = [cap.would_admit(t, preferred=p) for _ in range(2)]
        answer = cap.admit(t, preferred=p)
        assert peek == [answer, answer], (t, peek, answer)
        answers.append(answer)
    return answers


def test_a_source_at_the_cap_is_never_thinned_whatever_its_jitter() -> None:
    rng = random.Random(7)
    # 15 fps, each frame up to 45 % of an interval early or late
    arrivals = [i / 15 + rng.uniform(-0.03, 0.03) for i in range(900)]
    arrivals.sort()
    assert all(_admitted(RateCap(15.0), arrivals))


def test_over_the_cap_the_surplus_is_skipped_evenly() -> None:
    arrivals = [i / 30 for i in range(300)]  # 10 s at 30 fps, cap 15
    admitted = _admitted(RateCap(15.0), arrivals)
    assert 150 <= sum(admitted) <= 152  # 15 a second, plus the bucket's spare token
    # every other frame, not bursts: no two skipped in a row
    assert not any(not a and not b for a, b in itertools.pairwise(admitted))


def test_a_burst_after_a_pause_gets_two_frames_then_the_rate() -> None:
    cap = RateCap(10.0)
    assert cap.admit(0.0)
    # three frames arrive together after a second's silence
    assert _admitted(cap, [1.0, 1.0, 1.0]) == [True, True, False]
    assert not cap.admit(1.05)  # half a token
    assert cap.admit(1.1)


def test_a_frame_looked_at_late_does_not_make_the_next_one_early() -> None:
    """Frames at the cap, each asked about after a real wait of 0 to 1.5 frame intervals (an
    analysis running long): all admitted, as their arrival times are what counts."""
    rng = random.Random(3)
    cap = RateCap(15.0)
    start = time.monotonic()
    answers = []
    for i in range(24):
        arrived = start + i / 15
        time.sleep(max(0.0, arrived + rng.uniform(0.0, 0.1) - time.monotonic()))
        answers.append(cap.admit(arrived))
    assert all(answers)


def test_over_the_cap_preferred_frames_go_first_whatever_the_phase() -> None:
    """A layered VP9 stream at 15 fps: every other frame a reference (decoded anyway,
    `preferred`), the others droppable (decoded only when admitted). Over the cap the
    admitted frames are the references, from either phase of the cap, at the cap's rate; an
    unpreferred run of the same stream may land on the droppable ones (both decoded then)."""
    arrivals = [i / 15 for i in range(300)]  # 20 s
    for rate in (12.5, 10.0, 7.5):
        for phase in (0, 1):
            preferred = [(i + phase) % 2 == 0 for i in range(300)]
            admitted = _admitted(RateCap(rate), arrivals, preferred)
            # at the cap's rate: its spare tokens and 0.75 of a token early at most
            assert rate * 20 <= sum(admitted) <= rate * 20 + 2.75, (rate, phase, sum(admitted))
            references = sum(a for a, p in zip(admitted, preferred, strict=True) if p)
            assert references >= min(150, rate * 20) - 1, (rate, phase, references)
    # unpreferred, one of the phases admits the droppable frames at 7.5 fps: 300 decodes
    admitted = _admitted(RateCap(7.5), arrivals)
    by_phase = [sum(admitted[phase::2]) for phase in (0, 1)]  # references at phase, phase + 2..
    assert min(by_phase) <= 2, by_phase


def test_preferred_frames_alone_are_still_capped() -> None:
    arrivals = [i / 30 for i in range(300)]  # 10 s at 30 fps, cap 15
    admitted = _admitted(RateCap(15.0), arrivals, [True] * 300)
    assert 150 <= sum(admitted) <= 153
    assert not any(not a and not b for a, b in itertools.pairwise(admitted))


def test_at_twice_the_cap_jitter_does_not_let_droppable_frames_back_in() -> None:
    """A 30 fps layered camera at the 15 fps cap, arrivals jittered by up to 5 ms, starting
    on either layer: the droppable frames stay out (half a token early let 13 % in when the
    stream started on a droppable frame)."""
    rng = random.Random(1)
    arrivals = sorted(i / 30 + rng.uniform(-0.005, 0.005) for i in range(3000))
    for first_droppable in (True, False):
        preferred = [(i % 2 == 0) != first_droppable for i in range(3000)]
        admitted = _admitted(RateCap(15.0), arrivals, preferred)
        droppable_in = sum(a for a, p in zip(admitted, preferred, strict=True) if not p)
        assert droppable_in <= 3, (first_droppable, droppable_in)
        assert 1500 <= sum(admitted) <= 1503
