"""A face hidden in the frame or out of it: what `face_lost` tells the presenter (issue 20).

    .venv/bin/python -m bench.face_hidden [--frames 10]

When FaceMesh finds no face, the `face_lost` cue asks the presenter back into the frame, or,
where the face is hidden in it (`CueTransition.hidden`: Pose still sees their head and
shoulders well inside the frame, `PoseObservation.in_view`, or the face was last seen in the
middle of the frame, not at its edge), asks whether their head is down or turned away. This
runs the live analysers (tracking FaceMesh, the static-image Pose graphs live sessions share)
over:

- every labelled photo of tests/fixtures/gaze_photos.py whose source is here, `--frames`
  frames each, fitted into a 640x480 frame, swaying and rolling, with sensor noise
  (`moving_photo_frames`): per label, the photos whose face FaceMesh loses on at least half
  the frames, and of those the ones Pose sees in view on at least half of them; then each of
  those photos after the astronaut facing the camera, as a session sees a presenter bow or
  turn away, and what `face_lost` said; then each bowed or turned 6 s (the least share of the
  frame's middle the person segmentation covers on any frame, and its longest run under
  `PERSON_MIN_MIDDLE_SHARE`) and the empty room after it (the presenter has left), at 15, 5
  and 3 analysed frames a second: the lost frames the chain hands its observers as hidden,
  then out of view;
- the test clips' presenters (astronaut, Grace Hopper; tests/fixtures/clips.py) sliding out of
  the frame sideways, standing far back, and an empty room, with sensor noise: of the frames
  whose face is lost, how many read in view (each one would ask "head down?" of someone who
  is not in the frame), and what `face_lost` said when it turned on (through the live
  conditions and cue hold, `StageChain`);
- the same presenters facing the camera, then a cut to the empty room or to a covered camera
  (a dark frame with sensor noise): nobody left in the frame for the person segmentation
  (app/analysis/person.py) to see.

A photo's face is never found when FaceMesh loses it on every frame, so the photos measure
Pose's `in_view` alone; the clips measure both.
"""

from __future__ import annotations

import argparse
import collections
import itertools
from collections.abc import Sequence

import numpy as np

from app.analysis.conditions import PERSON_MIN_MIDDLE_SHARE
from app.analysis.person import PersonSegmenter
from app.config import Settings
from app.frames import FrameObserver
from tests.fixtures.clips import (
    LostFrames,
    Segment,
    SourceName,
    covered_camera_frames,
    labelled_clip,
    noisy_frames,
    replay_face_lost,
)
from tests.fixtures.gaze_photos import (
    GAZE_PHOTOS,
    LABELS,
    MissingPhotoSource,
    moving_photo_frames,
)

PRESENTERS: tuple[SourceName, ...] = ("astronaut", "grace_hopper")


def observe(
    frames: list[np.ndarray],
    settings: Settings,
    fps: float = 15.0,
    observers: Sequence[FrameObserver] = (),
) -> tuple[list[tuple[bool, bool]], list[bool | None]]:
    """(face found, in view) per frame and `hidden` of each `face_lost` turning on
    (tests/fixtures/clips.py `replay_face_lost`; `settings` must be the defaults)."""
    assert settings == Settings()
    return replay_face_lost(frames, fps, observers)


def middle_shares(frames: list[np.ndarray]) -> tuple[float, int]:
    """The least share of the frame's middle the person segmentation covers on any of the BGR
    `frames`, and the longest run of frames in a row under `PERSON_MIN_MIDDLE_SHARE`."""
    segmenter = PersonSegmenter()
    try:
        shares = [segmenter.middle_share(np.ascontiguousarray(f[:, :, ::-1])) for f in frames]
    finally:
        segmenter.close()
    under = [share < PERSON_MIN_MIDDLE_SHARE for share in shares]
    runs = [len(list(g)) for low, g in itertools.groupby(under) if low]
    return min(shares), max(runs, default=0)


def photos_table(settings: Settings, frames: int) -> None:
    lost: dict[str, list[str]] = collections.defaultdict(list)
    in_view: dict[str, list[str]] = collections.defaultdict(list)
    counted: collections.Counter[str] = collections.Counter()
    skipped = 0
    for number, photo in enumerate(GAZE_PHOTOS):
        try:
            images = moving_photo_frames(photo.name, frames, 0, seed=number)
        except MissingPhotoSource:
            skipped += 1
            continue
        counted[photo.label] += 1
        seen, _ = observe(images, settings)
        gone = [view for face, view in seen if not face]
        if len(gone) * 2 >= frames:
            lost[photo.label].append(photo.name)
            if sum(gone) * 2 >= len(gone):
                in_view[photo.label].append(photo.name)
    print(f"## Labelled photos, {frames} moving, noisy frames each ({skipped} not here)\n")
    print("| label | photos | face lost (>= half the frames) | of those, in view | in view |")
    print("| --- | --- | --- | --- | --- |")
    for label in LABELS:
        if counted[label]:
            names = ", ".join(in_view[label]) or "-"
            print(
                f"| {label} | {counted[label]} | {len(lost[label])} | "
                f"{len(in_view[label])} | {names} |"
            )
    print(
        "\nlost, not in view: "
        + ", ".join(n for label in LABELS for n in lost[label] if n not in in_view[label])
    )
    print("\nThe photos whose face is lost, each after 2 s of the astronaut facing the camera")
    print("(moving, noisy), 3 s of it: what `face_lost` said when it turned on\n")
    print("| photo | label | `face_lost` on: hidden |")
    print("| --- | --- | --- |")
    lost_photos = [(label, name) for label in LABELS for name in lost[label]]
    for label, name in lost_photos:
        switch = moving_photo_frames("astronaut", 30, 0, seed=1)
        switch += moving_photo_frames(name, 45, 30, seed=2)
        _, said = observe(switch, settings)
        print(f"| {name} | {label} | {said} |")
    print("\nThose photos 6 s each (moving, noisy): the least share of the frame's middle the")
    print("person segmentation covers on any frame, and the most frames in a row under")
    print("`PERSON_MIN_MIDDLE_SHARE`, at 15 a second\n")
    print("| photo | least middle share | most frames in a row under it |")
    print("| --- | --- | --- |")
    for _, name in lost_photos:
        least, run = middle_shares(moving_photo_frames(name, 90, 30, seed=2))
        print(f"| {name} | {least:.2f} | {run} |")
    print("\nEach bowed or turned 6 s, then 3 s of the empty room (the presenter has left; no")
    print("walk), the analysis keeping every frame, every 3rd or every 5th: the lost frames the")
    print("chain hands its observers (keyframes, critique windows) as hidden, and as out of view")
    print("(`FrameAnalysis.face_hidden`, `ConditionState.nobody_left`); None before the cue\n")
    print("| photo | analysed | `face_lost` on: hidden | lost frames in order: said, how many |")
    print("| --- | --- | --- | --- |")
    room = noisy_frames(labelled_clip(15, [Segment("empty", 3.0)]), 99)
    for _, name in lost_photos:
        switch = moving_photo_frames("astronaut", 30, 0, seed=1)
        switch += moving_photo_frames(name, 90, 30, seed=2) + room
        for every in (1, 3, 5):
            lost_frames = LostFrames()
            _, said = observe(switch[::every], settings, 15 / every, [lost_frames])
            runs = [(k, len(list(g))) for k, g in itertools.groupby(lost_frames.said)]
            told = ", ".join(f"{k}: {n}" for k, n in runs)
            print(f"| {name} | 1 in {every} | {said} | {told} |")


def clips_table(settings: Settings) -> None:
    print("\n## Leaving the frame (test clips, sensor noise sigma 2.5)\n")
    print("1 s facing the camera, 1.5 s walking out sideways, 3 s of empty room; the analysis")
    print("keeping every frame, every 3rd or every 5th (15, 5, 3 frames a second)\n")
    print("| presenter | analysed | frames | face lost | lost, in view | `face_lost` on: hidden |")
    print("| --- | --- | --- | --- | --- | --- |")
    seed = 0
    for source in PRESENTERS:
        clip = labelled_clip(
            15,
            [
                Segment("frontal", 1.0, source=source),
                Segment("out_of_frame", 1.5, source=source),
                Segment("empty", 3.0, source=source),
            ],
        )
        frames = noisy_frames(clip, seed)
        seed += 1
        for every in (1, 3, 5):
            seen, said = observe(frames[::every], settings, 15 / every)
            gone = [view for face, view in seen if not face]
            print(f"| {source} | 1 in {every} | {len(seen)} | {len(gone)} | {sum(gone)} | {said} |")
    print("\nStanding far back (FaceMesh finds no face), 3 s after 1 s facing the camera:\n")
    print("| presenter | scale | face lost | lost and read in view | `face_lost` on: hidden |")
    print("| --- | --- | --- | --- | --- |")
    for source, scale in (("astronaut", 0.6), ("grace_hopper", 0.35), ("grace_hopper", 0.3)):
        clip = labelled_clip(
            15,
            [
                Segment("frontal", 1.0, source=source),
                Segment("frontal", 3.0, scale=scale, source=source),
            ],
        )
        frames = noisy_frames(clip, seed)
        seed += 1
        seen, said = observe(frames, settings)
        gone = [view for face, view in seen if not face]
        print(f"| {source} | {scale} | {len(gone)} | {sum(gone)} | {said} |")
    print("\nNobody left in the frame, 3 s after 1 s facing the camera (no walk: a cut):\n")
    print("| presenter | then | `face_lost` on: hidden |")
    print("| --- | --- | --- |")
    dark = covered_camera_frames(45, seed)
    for source in PRESENTERS:
        facing = noisy_frames(labelled_clip(15, [Segment("frontal", 1.0, source=source)]), seed)
        empty = noisy_frames(labelled_clip(15, [Segment("empty", 3.0, source=source)]), seed)
        seed += 1
        for what, after in (("the empty room", empty), ("a covered camera (dark, noisy)", dark)):
            _, said = observe(facing + after, settings)
            print(f"| {source} | {what} | {said} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args()
    settings = Settings()
    photos_table(settings, args.frames)
    clips_table(settings)


if __name__ == "__main__":
    main()
