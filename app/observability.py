"""Prometheus metrics. One registry per app (tests run several apps in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CoachMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.live_sessions = Gauge(
            "coach_live_sessions", "Sessions created, live or finalizing", registry=r
        )
        self.frames_received = Counter("coach_frames_received", "Video frames received", registry=r)
        self.frames_analyzed = Counter("coach_frames_analyzed", "Video frames analysed", registry=r)
        self.frames_dropped = Counter(
            "coach_frames_dropped",
            "Frames not analysed (mailbox overwrite or rate limit)",
            registry=r,
        )
        self.bad_frames = Counter(
            "coach_bad_frames", "Frames refused as undecodable or too big", registry=r
        )
        self.analysis_seconds = Histogram(
            "coach_analysis_seconds",
            "Analysis time per frame",
            buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.event_latency_seconds = Histogram(
            "coach_event_latency_seconds",
            "Frame arrival to metrics event",
            buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.vlm_calls = Counter(
            "coach_vlm_calls", "Critic calls by outcome", ["outcome"], registry=r
        )
        self.recorder_queue_depth = Gauge(
            "coach_recorder_queue_depth",
            "Frames waiting for the encoders, all sessions",
            registry=r,
        )
        self.ws_slow_consumers = Counter(
            "coach_ws_slow_consumers", "Listeners dropped for not reading", registry=r
        )
        self.sessions_refused_at_floor = Counter(
            "coach_sessions_refused_at_floor",
            "New sessions refused (503 overloaded) while live analysis ran at its floor",
            registry=r,
        )
        self.pose_every = Gauge(
            "coach_pose_every",
            "Pose runs on one analysed frame in this many (rises under load)",
            registry=r,
        )
        self.analysis_fps = Gauge(
            "coach_analysis_fps",
            "Cap on analysed frames a second per session (falls under load, after Pose)",
            registry=r,
        )

    def bind_gauges(self, live: Callable[[], float], recorder_depth: Callable[[], float]) -> None:
        self.live_sessions.set_function(live)
        self.recorder_queue_depth.set_function(recorder_depth)
