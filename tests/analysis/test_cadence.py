"""The load-following Pose cadence: a step controller with hysteresis and a dwell time."""

from __future__ import annotations

from app.analysis.cadence import PoseCadence


def feed(
    cadence: PoseCadence, latency_ms: float, start: float, seconds: float, fps: float = 30.0
) -> float:
    """Frames at `fps` with one latency for `seconds`; returns the time after the last."""
    t = start
    for _ in range(round(seconds * fps)):
        cadence.observe(latency_ms, t)
        t += 1.0 / fps
    return t


def test_light_load_keeps_the_configured_cadence() -> None:
    cadence = PoseCadence(least=2, most=4, high_ms=50.0)
    feed(cadence, 25.0, 0.0, 30.0)
    assert cadence.every == 2
    assert cadence.steps == 0


def test_high_latency_steps_up_one_step_per_dwell_to_the_most() -> None:
    cadence = PoseCadence(least=2, most=4, high_ms=50.0, dwell_s=2.0)
    t = feed(cadence, 120.0, 0.0, 2.5)
    assert cadence.every == 3  # one step: the dwell holds the next one back
    t = feed(cadence, 120.0, t, 2.0)
    assert cadence.every == 4
    feed(cadence, 120.0, t, 20.0)
    assert cadence.every == 4  # never beyond `most`
    assert cadence.steps == 2


def test_latency_between_the_thresholds_holds_the_cadence() -> None:
    cadence = PoseCadence(least=2, most=4, high_ms=50.0, dwell_s=1.0)
    t = feed(cadence, 100.0, 0.0, 3.5)
    assert cadence.every == 4
    feed(cadence, 40.0, t, 30.0)  # below high, above low (25): no flapping
    assert cadence.every == 4


def test_load_gone_steps_back_down_to_the_least() -> None:
    cadence = PoseCadence(least=2, most=4, high_ms=50.0, dwell_s=1.0)
    t = feed(cadence, 100.0, 0.0, 3.5)
    assert cadence.every == 4
    feed(cadence, 10.0, t, 5.0)
    assert cadence.every == 2


def test_a_single_slow_frame_does_not_move_the_cadence() -> None:
    cadence = PoseCadence(least=2, most=4, high_ms=50.0, dwell_s=1.0)
    t = feed(cadence, 20.0, 0.0, 3.0)
    cadence.observe(400.0, t)  # one GC pause or a slow keyframe
    feed(cadence, 20.0, t + 0.03, 3.0)
    assert cadence.every == 2
    assert cadence.steps == 0


def test_equal_bounds_turn_adaptation_off() -> None:
    cadence = PoseCadence(least=3, most=3, high_ms=50.0)
    feed(cadence, 500.0, 0.0, 10.0)
    assert cadence.every == 3
    assert cadence.latency_ms is not None and cadence.latency_ms > 400


def test_past_the_rarest_pose_the_analysis_rate_falls_then_comes_back() -> None:
    cadence = PoseCadence(least=2, most=3, high_ms=50.0, dwell_s=1.0, fps=15.0, fps_least=10.0)
    seen = [(cadence.every, cadence.analysis_fps)]
    t = 0.0
    for _ in range(6):
        t = feed(cadence, 200.0, t, 1.05)
        seen.append((cadence.every, cadence.analysis_fps))
    # Pose rarer first, then fewer frames, one step a dwell, never below the least
    assert seen == [(2, 15.0), (3, 15.0), (3, 12.5), (3, 10.0), (3, 10.0), (3, 10.0), (3, 10.0)]
    back = []
    for _ in range(5):
        t = feed(cadence, 5.0, t, 1.05)
        back.append((cadence.every, cadence.analysis_fps))
    assert back[-1] == (2, 15.0)
    assert back.index((3, 15.0)) < back.index((2, 15.0))  # the rate comes back before Pose
    assert cadence.steps == 6


def test_the_rate_stays_without_a_least_rate() -> None:
    for cadence in (
        PoseCadence(least=2, most=4, high_ms=50.0, fps=15.0),
        PoseCadence(least=2, most=4, high_ms=50.0, fps=15.0, fps_least=15.0),
    ):
        feed(cadence, 500.0, 0.0, 20.0)
        assert (cadence.every, cadence.analysis_fps) == (4, 15.0)


def test_stepping_back_waits_for_the_relax_time() -> None:
    cadence = PoseCadence(least=2, most=3, high_ms=50.0, dwell_s=1.0, relax_s=5.0)
    t = feed(cadence, 200.0, 0.0, 1.5)  # one step, at 1 s
    assert cadence.every == 3
    t = feed(cadence, 5.0, t, 3.0)  # light again for 3 s, but within 5 s of that step
    assert cadence.every == 3
    feed(cadence, 5.0, t, 2.0)  # past 6 s
    assert cadence.every == 2
    assert cadence.steps == 2


def test_the_floor_is_the_last_level_over_the_target_and_only_while_frames_are_analysed() -> None:
    cadence = PoseCadence(
        least=2, most=3, high_ms=50.0, dwell_s=1.0, fps=15.0, fps_least=10.0, relax_s=5.0
    )
    t = feed(cadence, 120.0, 0.0, 2.5)
    assert cadence.every == 3 and not cadence.at_floor(t)  # Pose rarer, all frames still
    t = feed(cadence, 120.0, t, 2.0)
    assert cadence.analysis_fps == 10.0
    assert cadence.at_floor(t)
    assert not cadence.at_floor(t + 6.0)  # nothing analysed for 6 s: no reading of now
    t = feed(cadence, 40.0, t, 3.0)  # within the target (below high_ms), the level held
    assert cadence.analysis_fps == 10.0 and not cadence.at_floor(t)
    t = feed(cadence, 120.0, t, 3.0)
    assert cadence.at_floor(t)


def test_a_cadence_with_one_level_has_no_floor_to_reach() -> None:
    cadence = PoseCadence(least=3, most=3, high_ms=50.0)
    t = feed(cadence, 500.0, 0.0, 10.0)
    assert not cadence.at_floor(t)
