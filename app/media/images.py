"""Picture helpers every stage shares: the one size rule (`fit_within`), the one downscale, the
upright turn of a rotated video frame, and JPEG encoding.

`fit_within` rounds each side to the nearest pixel. Flooring instead loses a pixel to float
error on the bound side (1366x768 into 1280x720 floored to 1280x718); the recordings, the
analysis frames and the keyframes all use this one rule, so a picture scaled by one stage has
the size another stage expects.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np


def fit_within(
    width: int, height: int, max_width: int, max_height: int, *, even: bool = False
) -> tuple[int, int]:
    """(width, height) scaled to fit `max_width` x `max_height`: same aspect ratio, never
    upscaled, each side rounded to the nearest pixel. `even`: both sides rounded down to an
    even number (VP9's 4:2:0 chroma needs them), at least 2."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    scale = min(1.0, max_width / width, max_height / height)
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    if even:
        out_w, out_h = max(2, out_w - out_w % 2), max(2, out_h - out_h % 2)
    return out_w, out_h


def downscale(image: np.ndarray, max_side: int, *, copy: bool = True) -> np.ndarray:
    """`image` with its longest side at most `max_side` (never upscaled; INTER_AREA). A picture
    that already fits comes back as a copy, or as itself with `copy=False`."""
    height, width = image.shape[:2]
    size = fit_within(width, height, max_side, max_side)
    if size == (width, height):
        return image.copy() if copy else image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def quarter_turns(rotation: float) -> int:
    """A display rotation (degrees counter-clockwise) as quarter turns, 0-3."""
    return round(rotation / 90) % 4


def upright(image: np.ndarray, rotation: float) -> np.ndarray:
    """A decoded picture turned the way its container says to show it. Phones record portrait
    video as landscape frames plus a display matrix; `rotation` is that matrix's
    counter-clockwise angle (PyAV's `VideoFrame.rotation`), taken to the nearest quarter turn.
    Without this, a phone video is analysed lying on its side: no face, or a 90-degree tilt."""
    quarter = quarter_turns(rotation)
    if quarter == 0:
        return image
    turn = (cv2.ROTATE_90_COUNTERCLOCKWISE, cv2.ROTATE_180, cv2.ROTATE_90_CLOCKWISE)[quarter - 1]
    return cv2.rotate(image, turn)


def jpeg_base64(image: np.ndarray, quality: int = 85) -> str:
    """A BGR image as JPEG in plain base64 (no `data:` prefix). CPU work: run it in a thread."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return base64.b64encode(buffer.tobytes()).decode("ascii")


def jpeg_data_url(image: np.ndarray, max_side: int, quality: int) -> str:
    """`data:image/jpeg;base64,...` of a BGR image, downscaled first. CPU work: run it in a
    thread."""
    return "data:image/jpeg;base64," + jpeg_base64(downscale(image, max_side, copy=False), quality)


def jpeg_data_urls(images: list[np.ndarray], max_side: int, quality: int) -> list[str]:
    return [jpeg_data_url(image, max_side, quality) for image in images]
