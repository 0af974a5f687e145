"""Gaze on real photos: the live face analyser against faces labelled by eye (issue 20).

    .venv/bin/python -m bench.gaze [--split tune|heldout]
        [--round first-two|third|fourth|fifth|first-five|sixth|seventh|eighth|ninth|tenth|
         eleventh]
        [--no-per-photo]

Runs `FaceAnalyzer` (static-image mode, default `Settings`) on every photo of
tests/fixtures/gaze_photos.py and prints, per split, the confusion of `gaze_on_camera` against
the label and camera vs not-camera precision and recall; then a direction confusion if the
observation carries one (`gaze_direction` or `direction`); then, per photo, the raw numbers; and
for the tune split, per label, the measurements a vertical-gaze rule could use.

Measurements computed here from the 478 FaceMesh landmarks (image coordinates, both eyes
averaged; "across" is the eye line's normal, pointing image-down):
- `open`: lid gap (159-145, 386-374) / eye width (corner to corner).
- `ear`: the six-point eye aspect ratio (two lid gaps over twice the width).
- `lid`: where the iris centre sits between the lids, 0 = upper lid, 1 = lower lid.
- `drop`: iris centre below the corner line, in eye widths (+ = lower in the image).
- `upper`: upper lid above the corner line, in eye widths (it falls as the eyes look down).
Photos whose sources are not installed or downloaded are listed and skipped.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from app.analysis.face import FaceAnalyzer
from app.config import Settings
from app.frames import FaceObservation
from tests.fixtures.gaze_photos import (
    EIGHTH_ROUND,
    ELEVENTH_ROUND,
    FIFTH_ROUND,
    FOUND_AFTER_THE_RULES,
    FOURTH_ROUND,
    GAZE_PHOTOS,
    LABELS,
    NINTH_ROUND,
    SEVENTH_ROUND,
    SIXTH_ROUND,
    TENTH_ROUND,
    THIRD_ROUND,
    GazePhoto,
    MissingPhotoSource,
    fetch_commands,
    load_rgb,
)

# (outer, inner, top, bottom, iris, top2, bottom2) per eye; "right" is the presenter's own.
EYES = (
    (33, 133, 159, 145, 468, 158, 153),
    (263, 362, 386, 374, 473, 385, 380),
)
EAR_POINTS = ((33, 160, 158, 133, 153, 144), (263, 387, 385, 362, 380, 373))
LANDMARKS_WITH_IRIS = 478


@dataclass(frozen=True, slots=True)
class EyeMeasures:
    openness: float
    ear: float
    lid_position: float
    iris_drop: float
    upper_lid: float


@dataclass(frozen=True, slots=True)
class Result:
    photo: GazePhoto
    observation: FaceObservation
    eyes: EyeMeasures | None
    centred: bool | None  # the face found is the one the crop is centred on
    direction: str | None  # the analyser's own direction, where it reports one


def _one_eye(xy: np.ndarray, eye: tuple[int, ...], ear_idx: tuple[int, ...]) -> EyeMeasures:
    outer, inner, top, bottom, iris, _, _ = eye
    a, b = xy[outer], xy[inner]
    width = float(np.linalg.norm(b - a))
    if width < 1e-6:
        raise ValueError("zero-width eye")
    along = (b - a) / width
    if along[0] < 0:
        along = -along
    across = np.array([-along[1], along[0]])  # image-down for an upright face
    mid = (a + b) / 2
    t = float((xy[top] - mid) @ across)
    bt = float((xy[bottom] - mid) @ across)
    i = float((xy[iris] - mid) @ across)
    gap = bt - t
    p1, p2, p3, p4, p5, p6 = (xy[k] for k in ear_idx)
    ear = float(np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (
        2 * float(np.linalg.norm(p1 - p4))
    )
    return EyeMeasures(
        openness=float(np.linalg.norm(xy[top] - xy[bottom])) / width,
        ear=ear,
        lid_position=(i - t) / gap if abs(gap) > 1e-6 else float("nan"),
        iris_drop=i / width,
        upper_lid=-t / width,
    )


def eye_measures(landmarks: np.ndarray) -> EyeMeasures | None:
    """Both eyes' measures averaged, from N x 2 (or N x 3) landmarks; None without irises."""
    if len(landmarks) < LANDMARKS_WITH_IRIS:
        return None
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2]
    try:
        eyes = [_one_eye(xy, e, p) for e, p in zip(EYES, EAR_POINTS, strict=True)]
    except ValueError:
        return None
    return EyeMeasures(
        *(
            float(np.mean([getattr(e, f) for e in eyes]))
            for f in ("openness", "ear", "lid_position", "iris_drop", "upper_lid")
        )
    )


def _direction(observation: FaceObservation) -> str | None:
    for attr in ("gaze_direction", "direction"):
        value = getattr(observation, attr, None)
        if value is not None:
            return str(getattr(value, "value", value))
    return None


def _centred(observation: FaceObservation, shape: tuple[int, ...]) -> bool | None:
    if observation.bbox is None:
        return None
    x, y, w, h = observation.bbox
    cx, cy = (x + w / 2) / shape[1], (y + h / 2) / shape[0]
    return 0.25 <= cx <= 0.75 and 0.2 <= cy <= 0.8


def run(photos: Iterable[GazePhoto]) -> tuple[list[Result], list[tuple[GazePhoto, str]]]:
    analyzer = FaceAnalyzer(Settings(), static_images=True)
    results: list[Result] = []
    skipped: list[tuple[GazePhoto, str]] = []
    try:
        for photo in photos:
            try:
                rgb = load_rgb(photo)
            except MissingPhotoSource as exc:
                skipped.append((photo, str(exc)))
                continue
            observation = analyzer.analyze(rgb)
            eyes = (
                eye_measures(observation.landmarks) if observation.landmarks is not None else None
            )
            results.append(
                Result(
                    photo,
                    observation,
                    eyes,
                    _centred(observation, rgb.shape),
                    _direction(observation),
                )
            )
    finally:
        analyzer.close()
    return results, skipped


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f} ({num}/{den})" if den else "n/a (0/0)"


def _print_confusion(split: str, results: Sequence[Result]) -> None:
    print(f"\n## {split}: {len(results)} faces - on_camera vs label (no face = not on camera)")
    print(f"{'label':<8} {'n':>3} {'on':>4} {'off':>4} {'none':>5}")
    for label in LABELS:
        rows = [r for r in results if r.photo.label == label]
        if not rows:
            continue
        on = sum(r.observation.gaze_on_camera is True for r in rows)
        off = sum(r.observation.gaze_on_camera is False for r in rows)
        none = sum(not r.observation.found for r in rows)
        print(f"{label:<8} {len(rows):>3} {on:>4} {off:>4} {none:>5}")
    cam = [r.photo.label == "camera" for r in results]
    pred = [r.observation.gaze_on_camera is True for r in results]
    tp = sum(c and p for c, p in zip(cam, pred, strict=True))
    fp = sum(p and not c for c, p in zip(cam, pred, strict=True))
    fn = sum(c and not p for c, p in zip(cam, pred, strict=True))
    tn = sum(not c and not p for c, p in zip(cam, pred, strict=True))
    print(f"camera:     precision {_ratio(tp, tp + fp)}  recall {_ratio(tp, tp + fn)}")
    print(f"not camera: precision {_ratio(tn, tn + fn)}  recall {_ratio(tn, tn + fp)}")
    if not any(r.direction is not None for r in results):
        print("direction: the analyser reports none yet")
        return
    # unambiguous faces; one with no face found has no direction: a miss in its label's recall
    directed = [r for r in results if not r.photo.ambiguous]
    seen = sorted({r.direction for r in directed if r.direction is not None})
    print("direction (unambiguous faces): label -> " + ", ".join(seen) + ", no face")
    for label in LABELS:
        rows = [r for r in directed if r.photo.label == label]
        if rows:
            counts = " ".join(f"{sum(r.direction == d for r in rows):>4}" for d in seen)
            missing = sum(r.direction is None for r in rows)
            hits = sum(r.direction == label for r in rows)
            print(f"{label:<8} {counts} {missing:>4}   recall {_ratio(hits, len(rows))}")
    for label in LABELS:
        predicted = [r for r in directed if r.direction == label]
        if predicted:
            hits = sum(r.photo.label == label for r in predicted)
            print(f"precision {label:<7} {_ratio(hits, len(predicted))}")


def _fmt(value: float | None, spec: str = "6.1f") -> str:
    return format(value, spec) if value is not None else " " * (int(spec[0]) - 1) + "-"


def _print_photos(results: Sequence[Result]) -> None:
    print(
        "\n## per photo (yaw/pitch deg; iris x/y as app.analysis.face; open, ear, lid, drop, "
        "upper as in this module's docstring; ctr: face found is the centred one)"
    )
    print(
        f"{'name':<19} {'split':<7} {'label':<7}{'?':1} {'on':>3} {'yaw':>6} {'pitch':>6} "
        f"{'irisx':>6} {'irisy':>6} {'open':>5} {'ear':>5} {'lid':>5} {'drop':>6} {'upper':>6}"
        f" {'ctr':>3} dir"
    )
    for r in results:
        o, e = r.observation, r.eyes
        on = "-" if o.gaze_on_camera is None else ("Y" if o.gaze_on_camera else "n")
        ix, iy = o.iris_offset if o.iris_offset is not None else (None, None)
        ctr = "-" if r.centred is None else ("ok" if r.centred else "OFF")
        print(
            f"{r.photo.name:<19} {r.photo.split:<7} {r.photo.label:<7}"
            f"{'~' if r.photo.ambiguous else ' '} {on:>3} {_fmt(o.yaw_deg)} {_fmt(o.pitch_deg)} "
            f"{_fmt(ix, '6.2f')} {_fmt(iy, '6.2f')} "
            f"{_fmt(e.openness if e else None, '5.2f')} {_fmt(e.ear if e else None, '5.2f')} "
            f"{_fmt(e.lid_position if e else None, '5.2f')} "
            f"{_fmt(e.iris_drop if e else None, '6.3f')} {_fmt(e.upper_lid if e else None, '6.3f')}"
            f" {ctr:>3} {r.direction or '-'}"
        )


def _summary(values: list[float]) -> str:
    if not values:
        return f"{'-':>19}"
    return f"{statistics.median(values):6.2f} [{min(values):5.2f},{max(values):5.2f}]"


def _print_stats(split: str, results: Sequence[Result]) -> None:
    print(f"\n## {split}: per label, median [min, max] over the faces found")
    fields = ("pitch", "irisy", "open", "ear", "lid", "drop", "upper")
    print(f"{'label':<8} {'n':>2} " + " ".join(f"{f:>19}" for f in fields))
    for label in LABELS:
        rows = [r for r in results if r.photo.label == label and r.eyes is not None]
        if not rows:
            continue
        cols: dict[str, list[float]] = {f: [] for f in fields}
        for r in rows:
            o, e = r.observation, r.eyes
            assert e is not None
            if o.pitch_deg is not None:
                cols["pitch"].append(o.pitch_deg)
            if o.iris_offset is not None:
                cols["irisy"].append(o.iris_offset[1])
            cols["open"].append(e.openness)
            cols["ear"].append(e.ear)
            cols["lid"].append(e.lid_position)
            cols["drop"].append(e.iris_drop * 10)  # shown x10 to fit the column
            cols["upper"].append(e.upper_lid * 10)
        print(f"{label:<8} {len(rows):>2} " + " ".join(_summary(cols[f]) for f in fields))
    print("(drop and upper shown x10)")


def main(argv: Sequence[str] | None = None) -> int:
    rounds = {
        "third": set(THIRD_ROUND),
        "fourth": set(FOURTH_ROUND),
        "fifth": set(FIFTH_ROUND),
        "sixth": set(SIXTH_ROUND),
        "seventh": set(SEVENTH_ROUND),
        "eighth": set(EIGHTH_ROUND),
        "ninth": set(NINTH_ROUND),
        "tenth": set(TENTH_ROUND),
        "eleventh": set(ELEVENTH_ROUND),
    }
    later = set().union(*rounds.values())
    rounds["first-five"] = set(GAZE_PHOTOS) - set(FOUND_AFTER_THE_RULES)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tune", "heldout"))
    parser.add_argument(
        "--round",
        choices=("first-two", *rounds),
        help="only the first two rounds' faces, or only a later round's (each held out whole), "
        "or the first five (the rules of 2026-12-06 were set on them)",
    )
    parser.add_argument("--no-per-photo", dest="per_photo", action="store_false")
    args = parser.parse_args(argv)
    photos = [
        p
        for p in GAZE_PHOTOS
        if (args.split is None or p.split == args.split)
        and (
            args.round is None
            or (p not in later if args.round == "first-two" else p in rounds[args.round])
        )
    ]
    results, skipped = run(photos)
    if skipped:
        print(f"skipped {len(skipped)} photos whose package is missing:")
        for reason in sorted({why for _, why in skipped}):
            print(f"  {reason}")
        print("all sources: " + " && ".join(fetch_commands()))
    for split in ("tune", "heldout"):
        part = [r for r in results if r.photo.split == split]
        if part:
            _print_confusion(split, part)
    if args.per_photo:
        _print_photos(results)
    tune = [r for r in results if r.photo.split == "tune"]
    if tune:
        _print_stats("tune", tune)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
