"""Image helpers for keyframes: a cheap downscale on the event loop (called rarely, on the
frames the scheduler keeps), and the JPEG encoding that runs in a worker thread."""

from __future__ import annotations

import base64

import cv2
import numpy as np


def downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    """A copy of `image` whose longest side is at most `max_side` (never upscaled)."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image.copy()
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def jpeg_data_url(image: np.ndarray, max_side: int, quality: int) -> str:
    """`data:image/jpeg;base64,...` of a BGR image, downscaled first. CPU work: run it in a
    thread."""
    small = downscale(image, max_side) if max(image.shape[:2]) > max_side else image
    ok, buffer = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.tobytes()).decode("ascii")


def jpeg_data_urls(images: list[np.ndarray], max_side: int, quality: int) -> list[str]:
    return [jpeg_data_url(image, max_side, quality) for image in images]
