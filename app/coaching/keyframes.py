"""Keyframes for the report: the best and the worst moment of each category, drawn with the
landmarks and a caption.

`KeyframePicker` is a frame observer (`observe(analysis, image)`, called on the event loop for
every analysed frame): it keeps only the current best and worst candidate per category and copies
(downscaled) an image only when a candidate is replaced, so it costs microseconds on most frames.

Crash safety: the picker also persists its candidates to `<session_dir>/keyframes/` (a raw
JPEG and a JSON sidecar with the landmarks, per candidate), throttled to one write batch every
`keyframe_persist_s` and done in a worker thread, never on the loop. Recovery after a crash
loads them with `load_candidates`, so a recovered report still shows keyframes with landmarks.
(We chose this over extracting frames from the recovered recording: the recording carries no
landmarks and re-running the analysers at recovery would cost far more than a few small files.)

Drawing (`render_keyframe`) happens once, at report time, in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json
import logging
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.coaching.messages import (
    KEYFRAME_CAPTIONS,
    KEYFRAME_CATEGORIES,
    KeyframeCategory,
    KeyframeReason,
)
from app.coaching.scoring import posture_value
from app.config import Settings
from app.frames import FrameAnalysis, Language
from app.media.images import downscale

log = logging.getLogger(__name__)

Kind = Literal["best", "worst"]
KINDS: tuple[Kind, ...] = ("best", "worst")


@dataclass(frozen=True, slots=True)
class Rating:
    good: bool  # passes the category's live-cue thresholds
    quality: float  # higher is better; ranks candidates within the category
    reason: KeyframeReason


@dataclass(frozen=True, slots=True)
class Candidate:
    category: KeyframeCategory
    kind: Kind
    t: float
    quality: float
    reason: KeyframeReason
    image: np.ndarray  # BGR uint8, already downscaled; never mutated after creation
    face_landmarks: np.ndarray | None  # N x 2, in `image` pixels
    pose_landmarks: np.ndarray | None


@dataclass(frozen=True, slots=True)
class ReportKeyframe:
    """A candidate drawn for the report: the report JSON's `keyframes` item."""

    t: float
    image: str  # data URL
    caption: str
    category: KeyframeCategory
    kind: Kind

    def as_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "image": self.image,
            "caption": self.caption,
            "category": self.category,
            "kind": self.kind,
        }


# A frame looking away is captioned with where it looks (`gaze_direction`) where that is known.
EYE_AWAY_REASONS: dict[str, KeyframeReason] = {
    "down": "eye_down",
    "up": "eye_up",
    "left": "eye_side",
    "right": "eye_side",
    "closed": "eye_closed",
}


# --- rating one frame --------------------------------------------------------------------------
def rate_frame(a: FrameAnalysis, settings: Settings) -> dict[KeyframeCategory, Rating]:
    """How good this frame is for each category it can be judged on (pure, microseconds)."""
    out: dict[KeyframeCategory, Rating] = {}
    face = a.face
    if not face.found:
        # Less instructive than a visible face looking away, so it only wins "worst" when no
        # such frame exists (looking away ranks in [0, 0.2], a lost face at 0.25). Rated only
        # while the `face_lost` cue is on (a loss shorter than its hold is no moment), and
        # captioned as the cue said it: hidden in the frame, or out of it (`face_hidden`).
        if a.face_hidden is not None:
            reason: KeyframeReason = "face_hidden" if a.face_hidden else "face_lost"
            out["eye_contact"] = Rating(False, 0.25, reason)
    elif face.gaze_on_camera is not None:
        yaw = (face.yaw_deg or 0.0) / settings.cues.eye_contact_max_yaw_deg
        pitch = (face.pitch_deg or 0.0) / settings.cues.eye_contact_max_pitch_deg
        angle = math.hypot(yaw, pitch)
        if face.gaze_on_camera:
            out["eye_contact"] = Rating(True, 1.0 - 0.5 * min(1.0, angle), "eye_good")
        else:
            away = EYE_AWAY_REASONS.get(face.gaze_direction or "", "eye_away")
            out["eye_contact"] = Rating(False, 0.2 * (1.0 - min(1.0, angle / 3)), away)

    pose = a.pose
    head_tilt = face.roll_deg if face.roll_deg is not None else pose.head_tilt_deg
    value = posture_value(pose.shoulder_tilt_deg, head_tilt, a.sway, settings)
    if value is not None:
        deviations = [
            abs(x) / (2 * limit)
            for x, limit in (
                (pose.shoulder_tilt_deg, settings.cues.shoulder_tilt_max_deg),
                (head_tilt, settings.cues.head_tilt_max_deg),
                (a.sway, settings.cues.sway_max),
            )
            if x is not None
        ]
        quality = 1.0 - min(1.0, sum(deviations) / len(deviations))
        good = value >= 1.0
        out["posture"] = Rating(good, quality, "posture_good" if good else "posture_tilted")

    activity = a.gesture.activity
    if activity is not None or pose.found:
        lo, hi = settings.cues.gesture_min_activity, settings.cues.gesture_excess_activity
        act = activity or 0.0
        hands = a.gesture.hands_visible
        if act > hi:
            out["gestures"] = Rating(False, 0.5 * max(0.0, 1.0 - (act - hi) / hi), "gesture_excess")
        elif act >= lo and hands > 0:
            # Prefer both hands in view, then livelier (still within range) movement.
            out["gestures"] = Rating(
                True, 0.6 + 0.2 * min(hands, 2) / 2 + 0.2 * act / hi, "gesture_good"
            )
        else:
            out["gestures"] = Rating(False, 0.55 + 0.05 * act / max(lo, 1e-6), "gesture_none")
    return out


# --- the observer ------------------------------------------------------------------------------
def _scaled(points: np.ndarray | None, sx: float, sy: float) -> np.ndarray | None:
    if points is None or len(points) == 0:
        return None
    arr = np.asarray(points, dtype=np.float32)
    arr = arr[:, :2] if arr.ndim == 2 else arr.reshape(-1, 2)  # N x 2 or N x 3 (with depth)
    return arr * np.array([sx, sy], dtype=np.float32)


class KeyframePicker:
    """Keeps the best and the worst candidate per category; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        directory: Path | None = None,
        *,
        persist_every_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.directory = directory
        self.persist_every_s = (
            settings.report.keyframe_persist_s if persist_every_s is None else persist_every_s
        )
        self._slots: dict[tuple[KeyframeCategory, Kind], Candidate] = {}
        self._dirty: set[tuple[KeyframeCategory, Kind]] = set()
        self._last_persist = -math.inf  # the first candidates reach disk at once
        self._pending: asyncio.Future[None] | None = None
        self.replacements = 0  # how often an image was copied (cost accounting)

    def observe(self, analysis: FrameAnalysis, image: np.ndarray) -> None:
        ratings = rate_frame(analysis, self.settings)
        for category, rating in ratings.items():
            kind: Kind = "best" if rating.good else "worst"
            current = self._slots.get((category, kind))
            if current is not None and (
                rating.quality <= current.quality
                if kind == "best"
                else rating.quality >= current.quality
            ):
                continue
            self._replace(category, kind, rating, analysis, image)
        if self._dirty and self.directory is not None:
            self._maybe_persist()

    def _replace(
        self,
        category: KeyframeCategory,
        kind: Kind,
        rating: Rating,
        a: FrameAnalysis,
        image: np.ndarray,
    ) -> None:
        small = downscale(image, self.settings.report.keyframe_max_side)
        sx = small.shape[1] / max(1, a.width)
        sy = small.shape[0] / max(1, a.height)
        self._slots[(category, kind)] = Candidate(
            category=category,
            kind=kind,
            t=round(a.t, 3),
            quality=rating.quality,
            reason=rating.reason,
            image=small,
            face_landmarks=_scaled(a.face.landmarks, sx, sy),
            pose_landmarks=_scaled(a.pose.landmarks, sx, sy),
        )
        self._dirty.add((category, kind))
        self.replacements += 1

    def candidates(self) -> list[Candidate]:
        """The current candidates in report order (category, then best before worst)."""
        return [self._slots[k] for k in _ordered_keys(self._slots)]

    # --- persistence (crash safety) ----------------------------------------------------------
    def _maybe_persist(self) -> None:
        now = time.monotonic()
        if now - self._last_persist < self.persist_every_s:
            return
        if self._pending is not None and not self._pending.done():
            return  # one write at a time; the dirty set waits for the next turn
        self._start_persist(now)

    def _start_persist(self, now: float) -> None:
        assert self.directory is not None
        batch = [self._slots[k] for k in self._dirty]
        self._dirty.clear()
        self._last_persist = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # used outside an event loop (tools): write inline
            persist_candidates(self.directory, batch)
            return
        self._pending = loop.run_in_executor(None, persist_candidates, self.directory, batch)
        self._pending.add_done_callback(_log_write_failure)

    async def flush(self) -> None:
        """Wait for the write in flight, then persist whatever changed since (for tests and
        for a clean shutdown)."""
        await self.aclose()
        if self._dirty and self.directory is not None:
            batch = [self._slots[k] for k in self._dirty]
            self._dirty.clear()
            await asyncio.to_thread(persist_candidates, self.directory, batch)

    async def aclose(self) -> None:
        """Wait for the write in flight, so nothing writes into the directory afterwards."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(Exception):  # already logged by the done callback
                await pending


def _log_write_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not persist keyframe candidates", exc_info=future.exception())


def _ordered_keys(
    slots: dict[tuple[KeyframeCategory, Kind], Any],
) -> list[tuple[KeyframeCategory, Kind]]:
    return [(c, k) for c in KEYFRAME_CATEGORIES for k in KINDS if (c, k) in slots]


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def persist_candidates(directory: Path, batch: list[Candidate]) -> None:
    """Write each candidate as `<category>-<kind>.jpg` + `.json` (atomic renames, so a crash
    leaves either the old or the new pair readable)."""
    directory.mkdir(parents=True, exist_ok=True)
    for c in batch:
        ok, jpeg = cv2.imencode(".jpg", c.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            continue
        stem = f"{c.category}-{c.kind}"
        meta = {
            "category": c.category,
            "kind": c.kind,
            "t": c.t,
            "quality": c.quality,
            "reason": c.reason,
            "face_landmarks": None
            if c.face_landmarks is None
            else np.round(c.face_landmarks, 1).tolist(),
            "pose_landmarks": None
            if c.pose_landmarks is None
            else np.round(c.pose_landmarks, 1).tolist(),
        }
        # Image first, then the sidecar: a sidecar always points at a complete image.
        _atomic_write(directory / f"{stem}.jpg", jpeg.tobytes())
        _atomic_write(directory / f"{stem}.json", json.dumps(meta).encode())


def load_candidates(directory: Path) -> list[Candidate]:
    """Candidates persisted by a picker (crash recovery). Unreadable pairs are skipped."""
    found: dict[tuple[KeyframeCategory, Kind], Candidate] = {}
    for category in KEYFRAME_CATEGORIES:
        for kind in KINDS:
            meta_path = directory / f"{category}-{kind}.json"
            image_path = directory / f"{category}-{kind}.jpg"
            if not (meta_path.is_file() and image_path.is_file()):
                continue
            try:
                meta = json.loads(meta_path.read_text("utf-8"))
                image = cv2.imdecode(
                    np.frombuffer(image_path.read_bytes(), np.uint8), cv2.IMREAD_COLOR
                )
                if image is None or meta.get("reason") not in KEYFRAME_CAPTIONS:
                    raise ValueError("unreadable keyframe")
                found[(category, kind)] = Candidate(
                    category=category,
                    kind=kind,
                    t=float(meta["t"]),
                    quality=float(meta["quality"]),
                    reason=meta["reason"],
                    image=image,
                    face_landmarks=_array_or_none(meta.get("face_landmarks")),
                    pose_landmarks=_array_or_none(meta.get("pose_landmarks")),
                )
            except (ValueError, KeyError, TypeError, OSError):
                log.warning("skipping unreadable keyframe %s", meta_path)
    return [found[k] for k in _ordered_keys(found)]


def _array_or_none(value: Any) -> np.ndarray | None:
    if not value:
        return None
    return np.asarray(value, dtype=np.float32).reshape(-1, 2)


# --- fonts -------------------------------------------------------------------------------------
CJK_FONT_PATHS: tuple[str, ...] = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian/Ubuntu fonts-noto-cjk
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch, Fedora
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/System/Library/Fonts/AppleSDGothicNeo.ttc",
)
KO_TTC_INDEX = 1  # Noto Sans CJK collections: 0 JP, 1 KR, 2 SC, 3 TC


@dataclass(frozen=True, slots=True)
class CaptionFont:
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    cjk: bool  # draws Hangul; without it captions fall back to English (ASCII)
    path: str | None


def draws_hangul(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> bool:
    """True when the font has real Hangul glyphs: two different syllables give two different,
    non-empty bitmaps (a font without them draws the same .notdef box, "tofu", for both)."""
    try:
        a, b = font.getmask("가"), font.getmask("나")
    except (UnicodeEncodeError, OSError):
        return False
    if a.size[0] == 0 or a.size[1] == 0:
        return False
    return a.size != b.size or bytes(a) != bytes(b)


def _fc_match() -> str | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        answer = subprocess.run(
            ["fc-match", "-f", "%{file}", "Noto Sans CJK KR:lang=ko"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip() or None


@functools.cache
def find_cjk_font(override: str | None = None) -> str | None:
    """Path of a font that draws Hangul: the configured one, a known path, or fontconfig's
    answer (checked, since fc-match answers *some* font even when no CJK font exists)."""
    candidates = [override] if override else []
    candidates += list(CJK_FONT_PATHS)
    for path in [*candidates, _fc_match()]:
        if not path or not Path(path).is_file():
            continue
        try:
            font = _load_truetype(path, 24)
        except OSError:
            continue
        if draws_hangul(font):
            return path
    return None


def _load_truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    if path.lower().endswith(".ttc"):
        try:
            return ImageFont.truetype(path, size, index=KO_TTC_INDEX)
        except OSError:
            pass
    return ImageFont.truetype(path, size)


def caption_font(size: int, override: str | None = None) -> CaptionFont:
    path = find_cjk_font(override)
    if path is not None:
        return CaptionFont(_load_truetype(path, size), True, path)
    # Pillow's bundled font (Latin only): captions are drawn in English.
    return fallback_caption_font(size)


def fallback_caption_font(size: int) -> CaptionFont:
    return CaptionFont(ImageFont.load_default(size), False, None)


# --- drawing -----------------------------------------------------------------------------------
# MediaPipe Pose (33 points): shoulders, arms, torso, hips.
POSE_EDGES: tuple[tuple[int, int], ...] = (
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
    (11, 23),
    (12, 24),
    (23, 24),
    (7, 8),
)
COLORS: dict[Kind, tuple[int, int, int]] = {"best": (46, 204, 113), "worst": (255, 140, 0)}


def format_clock(t: float) -> str:
    total = max(0, int(t))
    return f"{total // 60}:{total % 60:02d}"


def caption_text(c: Candidate, language: Language) -> str:
    return f"{KEYFRAME_CAPTIONS[c.reason][language]} · {format_clock(c.t)}"


def _ascii_caption(c: Candidate) -> str:
    return f"{KEYFRAME_CAPTIONS[c.reason]['en']} - {format_clock(c.t)}"


def draw_keyframe(
    c: Candidate,
    language: Language,
    font_override: str | None = None,
    fonts: Callable[[int], CaptionFont] | None = None,
) -> Image.Image:
    """The candidate's image with its landmarks and caption drawn on it (RGB)."""
    rgb = Image.fromarray(np.ascontiguousarray(c.image[:, :, ::-1]))
    overlay = Image.new("RGBA", rgb.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    color = COLORS[c.kind]
    w, h = rgb.size
    if c.face_landmarks is not None:
        for x, y in c.face_landmarks:
            draw.point((float(x), float(y)), fill=(*color, 170))
    if c.pose_landmarks is not None:
        pts = c.pose_landmarks
        radius = max(2, w // 160)
        if len(pts) >= 33:
            for i, j in POSE_EDGES:
                draw.line(
                    [(float(pts[i][0]), float(pts[i][1])), (float(pts[j][0]), float(pts[j][1]))],
                    fill=(*color, 200),
                    width=max(2, w // 240),
                )
        for x, y in pts:
            if 0 <= x < w and 0 <= y < h:
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*color, 220))

    size = max(14, h // 18)
    font = fonts(size) if fonts is not None else caption_font(size, font_override)
    text = caption_text(c, language)
    if not font.cjk and not text.isascii():
        text = _ascii_caption(c)  # no Hangul glyphs: English rather than boxes
    pad = size // 2
    bar_h = size + 2 * pad
    draw.rectangle((0, h - bar_h, w, h), fill=(0, 0, 0, 165))
    draw.rectangle((0, h - bar_h, max(4, w // 80), h), fill=(*color, 255))
    draw.text(
        (pad + max(4, w // 80), h - bar_h + pad), text, font=font.font, fill=(255, 255, 255, 255)
    )
    return Image.alpha_composite(rgb.convert("RGBA"), overlay).convert("RGB")


def render_keyframe(
    c: Candidate, language: Language, font_override: str | None = None, quality: int = 82
) -> ReportKeyframe:
    """Draw and JPEG-encode one candidate (CPU: call it in a worker thread)."""
    image = draw_keyframe(c, language, font_override)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality, optimize=True)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return ReportKeyframe(
        t=c.t,
        image=f"data:image/jpeg;base64,{data}",
        caption=caption_text(c, language),
        category=c.category,
        kind=c.kind,
    )
