"""Settings are grouped by concern, and every one is still its old environment variable."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings, flat_names


def _other_value(default: Any, annotation: Any) -> tuple[str, Any]:
    """An environment string for a value unlike the default, and the value it must parse to."""
    args = typing.get_args(annotation)
    if default is None and float in args:
        return "85.5", 85.5
    if typing.get_origin(annotation) is typing.Literal:
        choice = next(a for a in args if a != default)
        return str(choice), choice
    if isinstance(default, bool):
        return str(not default).lower(), not default
    if isinstance(default, int):
        return str(default + 3), default + 3
    if isinstance(default, float):
        return str(default + 0.25), default + 0.25
    if isinstance(default, Path):
        return "/tmp/elsewhere", Path("/tmp/elsewhere")
    if isinstance(default, list):
        return '["a", "b"]', ["a", "b"]
    return "http://example.test/x", "http://example.test/x"  # str and str | None


def test_every_flat_name_is_read_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings(_env_file=None)
    expected: dict[str, Any] = {}
    for flat, (group, name) in flat_names().items():
        model = getattr(defaults, group)
        info = type(model).model_fields[name]
        text, value = _other_value(getattr(model, name), info.annotation)
        if flat == "voice_vad_frame_ms":
            text, value = "30", 30  # webrtcvad's sizes only
        monkeypatch.setenv(f"COACH_{flat.upper()}", text)
        expected[flat] = value
    loaded = Settings(_env_file=None)
    for flat, (group, name) in flat_names().items():
        assert getattr(getattr(loaded, group), name) == expected[flat], flat
    assert len(expected) == 184  # 150 of the first release, none lost, + 10 asr_*, + 14 gaze_*,
    # + refuse_at_floor, floor_retry_after_s, rtc_frame_on_marker, decode_backlog/max_wait_s
    # rtc_vp9, face_processes, face_timeout_s, recording_audio_complexity, recorder_batch_s
    monkeypatch.setenv("COACH_VOICE_VAD_FRAME_MS", "25")
    with pytest.raises(ValueError, match="10, 20 or 30"):
        Settings(_env_file=None)


def test_flat_keywords_and_updated_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_VLM_MODEL", "from-env")
    monkeypatch.delenv("COACH_VLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fallback")
    settings = Settings(_env_file=None, pose_every=3, vlm_model="from-kwargs")
    assert settings.pose.every == 3
    assert settings.vlm.model == "from-kwargs"  # keywords win over the environment
    assert settings.vlm.api_key == "sk-fallback"  # OPENAI_API_KEY still works
    monkeypatch.setenv("COACH_WS_DECODE_BACKLOG", "7")  # the name before WebRTC shared it
    assert Settings(_env_file=None).limits.decode_backlog == 7
    assert settings.updated(ws_decode_max_wait_s=9.0).limits.decode_max_wait_s == 9.0
    assert Settings(_env_file=None, COACH_VLM_API_KEY="sk-kw").vlm.api_key == "sk-kw"
    changed = settings.updated(metrics_hz=1.0, log_json=False)
    assert (changed.cues.metrics_hz, changed.log.json_lines, changed.pose.every) == (1.0, False, 3)
    assert settings.cues.metrics_hz == 5.0  # the original is untouched
    # pydantic's own copy would set a stray `pose_every` attribute and change nothing
    assert settings.model_copy(update={"pose_every": 4}).pose.every == 4
    with pytest.raises(ValueError, match="every"):
        settings.model_copy(update={"pose_every": "often"})


def test_bad_values_are_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_ANALYSIS_FPS", "fast")
    with pytest.raises(ValueError, match="analysis_fps"):
        Settings(_env_file=None)
    monkeypatch.delenv("COACH_ANALYSIS_FPS")
    with pytest.raises(ValueError, match="every"):
        Settings(_env_file=None).pose.every = "often"  # type: ignore[assignment]


def test_the_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "coach.env"
    env.write_text("COACH_VLM_BASE_URL=http://vlm.test/v1\nCOACH_MAX_SESSION_S=60\n")
    monkeypatch.delenv("COACH_VLM_BASE_URL", raising=False)
    settings = Settings(_env_file=env)
    assert settings.vlm.base_url == "http://vlm.test/v1"
    assert settings.limits.max_session_s == 60.0
