"""One `Settings` with every tunable. Built once in the lifespan and injected."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COACH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite+aiosqlite under data_dir
    retention_days: float = 30.0  # finished sessions older than this are deleted; <= 0: keep
    retention_sweep_s: float = 3600.0  # how often the retention sweep runs

    # --- live analysis -------------------------------------------------------------------
    analysis_fps: float = 15.0  # cap on analysed frames a second per session
    analysis_max_side: int = 640  # frames are analysed at most this large (longest side)
    pose_every: int = 2  # run Pose on every Nth analysed frame (face runs on every one)
    metrics_hz: float = 5.0
    cue_hold_s: float = 1.5
    sway_window_s: float = 4.0
    analysis_threads: int = 4  # executor threads shared by the sessions' analysers

    # cue thresholds
    eye_contact_max_yaw_deg: float = 20.0
    eye_contact_max_pitch_deg: float = 18.0
    eye_contact_max_iris_offset: float = 0.22
    head_tilt_max_deg: float = 12.0
    shoulder_tilt_max_deg: float = 8.0
    too_close_face_ratio: float = 0.45
    too_far_face_ratio: float = 0.09
    gesture_none_after_s: float = 8.0
    gesture_excess_activity: float = 3.0
    gesture_min_activity: float = 0.15
    sway_max: float = 0.12

    # --- limits --------------------------------------------------------------------------
    max_frame_bytes: int = 2 * 1024 * 1024
    max_frame_width: int = 1920
    max_frame_height: int = 1080
    max_frame_pixels: int = 1920 * 1080
    max_audio_message_s: float = 1.0
    max_session_s: float = 2 * 3600.0
    max_concurrent_sessions: int = 16
    max_fps_in: float = 60.0  # frames a second accepted per session; more are dropped
    reconnect_grace_s: float = 30.0
    ws_max_message_bytes: int = 8 * 1024 * 1024  # above this the socket is closed (1009)
    ws_send_queue: int = 256  # events buffered per listener before it is dropped
    session_create_per_minute: int = 30  # per client address
    min_free_disk_mb: int = 500

    # --- recording -----------------------------------------------------------------------
    recording_max_width: int = 1280
    recording_max_height: int = 720
    recording_queue: int = 120  # frames buffered for the encoder before dropping
    recording_segment_s: float = 10.0
    vp9_cpu_used: int = 8
    vp9_threads: int = 2
    vp9_bitrate: int = 1_000_000

    # --- report --------------------------------------------------------------------------
    keyframe_max_side: int = 480  # keyframe images are stored at most this large
    keyframe_persist_s: float = 5.0  # keyframe candidates reach disk at most this often
    report_font_path: str | None = None  # a font with Hangul for captions; default: searched

    # --- critic --------------------------------------------------------------------------
    critique_interval_s: float = 20.0
    vlm_base_url: str | None = None
    vlm_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("COACH_VLM_API_KEY", "OPENAI_API_KEY")
    )
    vlm_model: str = "gpt-4o-mini"
    vlm_timeout_s: float = 20.0
    vlm_max_images: int = 4
    vlm_image_max_side: int = 768
    vlm_concurrency: int = 4
    vlm_max_calls_per_session: int = 200
    vlm_max_images_per_session: int = 800

    # --- upload flow ---------------------------------------------------------------------
    upload_max_bytes: int = 500 * 1024 * 1024
    upload_max_duration_s: float = 30 * 60.0
    upload_sample_fps: float = 5.0
    upload_max_feedbacks: int = 10

    # --- transport -----------------------------------------------------------------------
    ice_servers: list[str] = Field(default_factory=list)
    public_base_url: str | None = None  # used for ws_url/offer_url; default from the request
    cors_origins: list[str] = Field(default_factory=list)  # default: same origin only

    # --- scale-out -----------------------------------------------------------------------
    redis_url: str | None = None
    jobs: Literal["inprocess", "celery"] = "inprocess"

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'coach.db').resolve()}"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"
