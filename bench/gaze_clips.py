"""Gaze on real footage, frame by frame: the live path against stretches labelled by eye.

    .venv/bin/python -m bench.gaze_clips [--calibration-s 0 3] [--upload]

Replays every clip of tests/fixtures/gaze_photos.py `GAZE_CLIPS` through `FaceAnalyzer` in
tracking mode (as a live session runs it, one frame after another at the clip's own rate) and
a session's `GazeTracker` (blink hold; calibration over the first seconds looking at the
camera unless `--calibration-s 0`, as an upload runs), default `Settings` otherwise. Prints,
per labelled stretch, how many of its frames read its label and what the others read; for a
`down` stretch, how long after its first frame the first `down` came; for a `blink`, whether
any of its frames left the direction before it. `unclear` stretches are shown, not scored.
Then when the `eye_contact` cue turned on and off (its condition and hysteresis as a session
runs them, `cue_hold_s`).

`--upload`: instead, each clip written out as an MP4 and analysed by the upload flow's own scan
(`scan_video` with `upload_stages`, `upload.sample_fps` frames a second, no calibration: an
upload learns none): the stretches count the analysed frames only; `--calibration-s` is not
used.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.fixtures.gaze_photos import GAZE_CLIPS, GazeClip, replay_clip, scan_clip_as_upload


def report(
    clip: GazeClip,
    directions: Mapping[int, str | None],
    fps: float,
    cue_changes: Sequence[tuple[float, str]],
) -> dict[str, list[int]]:
    """Prints the clip's table (`directions`: by frame index, the frames analysed); returns
    per scored label [frames read so, frames]."""
    print(f"| {clip.name} stretch | label | frames | read as label | the others read | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    scored: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for first, last, label, _note in clip.stretches:
        frames = [i for i in sorted(directions) if first <= i <= last]
        said = [directions[i] for i in frames]
        expected = "camera" if label == "blink" else label  # a blink keeps the look before it
        hits = sum(d == expected for d in said)
        others = collections.Counter("no face" if d is None else d for d in said if d != expected)
        extra = ""
        if label == "down":
            first_down = next((i for i in frames if directions[i] == "down"), None)
            extra = (
                "never"
                if first_down is None
                else f"first `down` {(first_down - first) / fps:.2f} s after its start"
            )
        elif label == "blink":
            extra = "held" if hits == len(said) else "left the direction before it"
        if label != "unclear":
            scored[label][0] += hits
            scored[label][1] += len(said)
        other_text = ", ".join(f"{k} {v}" for k, v in others.most_common()) or "-"
        share = "-" if label == "unclear" else f"{hits}/{len(said)}"
        print(f"| {first}-{last} | {label} | {len(said)} | {share} | {other_text} | {extra} |")
    cue = ", ".join(f"{state} at {t:.2f} s (frame {round(t * fps)})" for t, state in cue_changes)
    print(f"\n`eye_contact` cue: {cue or 'never on'}")
    return scored


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration-s", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--upload", action="store_true", help="the upload flow's scan")
    args = parser.parse_args(argv)
    for calibration_s in [0.0] if args.upload else args.calibration_s:
        path = (
            "upload (no calibration)" if args.upload else f"live, calibration {calibration_s:g} s"
        )
        print(f"\n## {path}\n")
        total: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
        for clip in GAZE_CLIPS:
            if args.upload:
                with tempfile.TemporaryDirectory() as folder:
                    scan = scan_clip_as_upload(clip, Path(folder))
                learnt = "never" if scan.learnt_at is None else f"at {scan.learnt_at:.2f} s"
                print(f"baseline learnt {learnt}\n")
                table = report(clip, scan.directions, scan.fps, scan.cue)
            else:
                replay = replay_clip(clip, calibration_s)
                table = report(clip, dict(enumerate(replay.directions)), replay.fps, replay.cue)
            for label, (hits, frames) in table.items():
                total[label][0] += hits
                total[label][1] += frames
            print()
        print(
            "frames read as their label: "
            + ", ".join(f"{k} {h}/{n}" for k, (h, n) in sorted(total.items()))
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
