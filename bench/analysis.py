"""Analysis benchmark: per-stage cost and what each speed choice costs in accuracy.

    PYTHONPATH=. python bench/analysis.py [--fps 15] [--markdown]

Runs the per-session `FrameAnalyzer` over the labelled clip (tests/fixtures/clips.py) for
analysis sizes 640/480/320 (longest side) x Pose every 1st/2nd/3rd frame, single-threaded, and
reports the median per-stage time, the mean per-frame cost, and accuracy against the clip's
ground truth and against the full-quality run (640, Pose every frame). Hands is timed alone, on
the same frames, to show what adding it would cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis.face import FaceAnalyzer
from app.analysis.pipeline import FrameAnalyzer, downscale_rgb
from app.analysis.pose import PoseGraphs
from app.config import Settings
from app.frames import FrameAnalysis, VideoFrame
from tests.fixtures.clips import LabelledFrame, labelled_clip
from tests.fixtures.real_photos import REAL_PHOTO_CASES

SIZES = (640, 480, 320)
POSE_EVERY = (1, 2, 3)
SETTLE = 2


@dataclass
class Row:
    side: int
    pose_every: int
    graphs: str  # "own": a tracking Pose graph per session; "shared": static-image PoseGraphs
    face_ms: float
    pose_ms: float  # median over frames where Pose ran
    frame_ms: float  # mean of resize + face + pose + gesture over all frames
    face_found_acc: float
    eye_contact_acc: float
    roll_mae: float
    tilt_err_p95: float  # |shoulder tilt - reference run|, degrees
    wrist_err_p95: float  # wrist position vs reference run, in shoulder widths
    real_photos: str


def settled(clip: list[LabelledFrame]) -> list[int]:
    keep, run = [], 0
    for i, f in enumerate(clip):
        run = run + 1 if i and clip[i - 1].segment == f.segment else 0
        if run >= SETTLE:
            keep.append(i)
    return keep


def run_clip(
    settings: Settings, clip: list[LabelledFrame], graphs: str = "own"
) -> list[FrameAnalysis]:
    shared = PoseGraphs(1) if graphs == "shared" else None
    analyzer = FrameAnalyzer(settings, pose_graphs=shared)
    try:
        return [
            analyzer.analyze(VideoFrame(f.index, f.t, np.asarray(f.image), time.monotonic()))
            for f in clip
        ]
    finally:
        analyzer.close()
        if shared is not None:
            shared.close()


def real_photo_score(side: int) -> str:
    right = 0
    for case in REAL_PHOTO_CASES:
        rgb, _ = downscale_rgb(case.load(), side)
        analyzer = FaceAnalyzer(Settings(), static_images=True)
        try:
            obs = analyzer.analyze(rgb)
        finally:
            analyzer.close()
        right += obs.found and obs.gaze_on_camera is case.eye_contact
    return f"{right}/{len(REAL_PHOTO_CASES)}"


def hands_ms(clip: list[LabelledFrame], side: int) -> float:
    import mediapipe as mp

    hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1)
    times = []
    try:
        for f in clip[::3]:
            rgb, _ = downscale_rgb(np.asarray(f.image), side)
            start = time.perf_counter()
            hands.process(rgb)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        hands.close()
    return statistics.median(times)


def wrist_error(a: FrameAnalysis, ref: FrameAnalysis) -> float | None:
    errs = []
    for w, r in zip(a.pose.wrists, ref.pose.wrists, strict=True):
        if w is not None and r is not None and ref.pose.landmarks is not None:
            shoulder = float(np.hypot(*(ref.pose.landmarks[11] - ref.pose.landmarks[12])))
            errs.append(np.hypot((w[0] - r[0]) * a.width, (w[1] - r[1]) * a.height) / shoulder)
    return max(errs) if errs else None


def evaluate(
    side: int,
    every: int,
    clip: list[LabelledFrame],
    ref: list[FrameAnalysis] | None,
    graphs: str = "own",
) -> tuple[Row, list[FrameAnalysis]]:
    results = run_clip(Settings(analysis_max_side=side, pose_every=every), clip, graphs)
    keep = settled(clip)
    present = [i for i in keep if clip[i].face_present is not None]
    found_acc = np.mean([results[i].face.found == clip[i].face_present for i in present])
    eye = [i for i in keep if clip[i].eye_contact is not None]
    eye_acc = np.mean([results[i].face.gaze_on_camera is clip[i].eye_contact for i in eye])
    rolls = [
        abs(results[i].face.roll_deg - clip[i].roll_deg)  # type: ignore[operator]
        for i in keep
        if clip[i].label == "rotated" and results[i].face.roll_deg is not None
    ]
    tilt_errs, wrist_errs = [], []
    if ref is not None:
        for i in keep:
            a, r = results[i].pose, ref[i].pose
            if a.shoulder_tilt_deg is not None and r.shoulder_tilt_deg is not None:
                tilt_errs.append(abs(a.shoulder_tilt_deg - r.shoulder_tilt_deg))
            e = wrist_error(results[i], ref[i])
            if e is not None:
                wrist_errs.append(e)
    pose_runs = [r.timings_ms["pose"] for k, r in enumerate(results) if k % every == 0]
    row = Row(
        side=side,
        pose_every=every,
        graphs=graphs,
        face_ms=statistics.median(r.timings_ms["face"] for r in results),
        pose_ms=statistics.median(pose_runs),
        frame_ms=float(np.mean([sum(r.timings_ms.values()) for r in results])),
        face_found_acc=float(found_acc),
        eye_contact_acc=float(eye_acc),
        roll_mae=float(np.mean(rolls)) if rolls else float("nan"),
        tilt_err_p95=float(np.percentile(tilt_errs, 95)) if tilt_errs else 0.0,
        wrist_err_p95=float(np.percentile(wrist_errs, 95)) if wrist_errs else 0.0,
        real_photos="",
    )
    return row, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--sides", default=",".join(map(str, SIZES)))
    parser.add_argument("--every", default=",".join(map(str, POSE_EVERY)))
    parser.add_argument(
        "--graphs", default="own", help="own,shared: Pose graph per session / shared static"
    )
    args = parser.parse_args()
    sides = [int(x) for x in args.sides.split(",")]
    cadences = [int(x) for x in args.every.split(",")]
    modes = args.graphs.split(",")
    cv2.setNumThreads(1)
    clip = labelled_clip(fps=args.fps)
    run_clip(Settings(), clip[:30])  # warm up model loading and caches
    # The reference: the first side, Pose on every frame on a graph of its own.
    reference: list[FrameAnalysis] = evaluate(sides[0], 1, clip, None)[1]
    rows: list[Row] = []
    for side in sides:
        photos = real_photo_score(side)
        for graphs in modes:
            for every in cadences:
                row, _results = evaluate(side, every, clip, reference, graphs)
                row.real_photos = photos
                rows.append(row)
                print(f"done {side} {graphs} every {every}: {row.frame_ms:.1f} ms", file=sys.stderr)
    hands = {side: hands_ms(clip, side) for side in sides}

    print(f"Clip: {len(clip)} frames at {args.fps:g} fps; accuracy on settled frames.\n")
    print(
        "| side | pose graph | pose every | face ms | pose ms (when run) | mean ms/frame "
        "| face found | eye contact (clip) | roll MAE deg | shoulder tilt err p95 deg "
        "| wrist err p95 (shoulder w) | real photos eye contact |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.side} | {r.graphs} | {r.pose_every} | {r.face_ms:.1f} | {r.pose_ms:.1f} "
            f"| {r.frame_ms:.1f} | {r.face_found_acc:.1%} | {r.eye_contact_acc:.1%} "
            f"| {r.roll_mae:.2f} | {r.tilt_err_p95:.2f} | {r.wrist_err_p95:.3f} "
            f"| {r.real_photos} |"
        )
    print(
        "\nMediaPipe Hands alone (median ms): "
        + ", ".join(f"{s}: {m:.1f}" for s, m in hands.items())
    )


if __name__ == "__main__":
    main()
