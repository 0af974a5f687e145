"""End -> `report_ready` for whole sessions: the recorder's flush, the transcript, the critic's
last window and summary, and the report (scores, charts, keyframes) together.

A real `SessionManager` (SQLite, event writer, recorder, critic, keyframe picker) takes a
session of 1, 5 or 10 minutes at 15 fps 640x480, fed faster than real time with synthetic
timestamps: every frame goes to the recorder (paced so its bounded queue never drops) and the
session carries the event volume of a live rehearsal (metrics at 5 Hz, cues). Then the session
is ended and the time until `report_ready` is measured.

    .venv/bin/python -m bench.end_to_ready --minutes 1 5 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.live.session import metrics_event  # noqa: E402
from app.wiring import default_hooks  # noqa: E402
from tests.fixtures.clips import Segment, labelled_clip  # noqa: E402
from tests.support.manager import running_manager  # noqa: E402

FPS = 15.0


async def one_session(minutes: float) -> dict[str, float]:
    frames = labelled_clip(FPS, (Segment("frontal", 4.0), Segment("rotated", 4.0, roll_deg=18)))
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), log_json=False, min_free_disk_mb=0)
        async with running_manager(settings) as manager:
            session, _token, _ = await manager.create(
                title="bench", language="en", critique_interval_s=20.0, client="bench"
            )
            await session.attach()
            await manager.go_live(session)  # as the first frame would
            analyzer = default_hooks(settings).make_analyzer(settings)
            analyses = [
                await asyncio.to_thread(analyzer.analyze, _video_frame(f)) for f in frames[:60]
            ]
            analyzer.close()
            recorder = session.recorder
            assert recorder is not None  # default_hooks record every session
            n = int(minutes * 60 * FPS)
            started = time.monotonic()
            for i in range(n):
                t = i / FPS
                # The encoder thread's queue has no awaitable "has room": poll it.
                while recorder.queue_depth > 40:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                session.submit_frame(frames[i % len(frames)].image, t, time.monotonic())
                if i % 3 == 0:  # metrics at 5 Hz of media time, as a live session sends them
                    metrics = metrics_event(analyses[i % len(analyses)])
                    await session.emit(metrics.model_copy(update={"t": t}))
            feed_s = time.monotonic() - started
            sub = manager.services.bus.subscribe(session.id, 10_000)
            ended = time.monotonic()
            manager.request_end(session.id, "ended")
            while True:
                event = await sub.get()
                if event is None or event["type"] == "report_ready":
                    break
            ready_s = time.monotonic() - ended
            await session.finalized.wait()
            size = (manager.session_dir(session.id) / "recording.webm").stat().st_size
    return {"ready_s": ready_s, "feed_s": feed_s, "mb": size / 1e6, "frames": n}


def _video_frame(f):  # type: ignore[no-untyped-def]
    from app.frames import VideoFrame

    return VideoFrame(f.index, f.t, np.ascontiguousarray(f.image), time.monotonic())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 5.0, 10.0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print("| session | end -> report_ready s (median) | feed x real time | recording MB |")
    print("| --- | --- | --- | --- |")
    for minutes in args.minutes:
        runs = [asyncio.run(one_session(minutes)) for _ in range(args.runs)]
        ready = statistics.median(r["ready_s"] for r in runs)
        speed = statistics.median(minutes * 60 / r["feed_s"] for r in runs)
        mb = statistics.median(r["mb"] for r in runs)
        print(f"| {minutes:g} min | {ready:.2f} | {speed:.1f} | {mb:.1f} |", flush=True)


if __name__ == "__main__":
    main()
