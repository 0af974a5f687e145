"""Decoding of client frames, with limits checked on the header before any pixel is decoded."""

from __future__ import annotations

import io
import warnings

import av
import cv2
import numpy as np
from PIL import Image

from app.config import Settings


class FrameRejected(Exception):
    """A frame that cannot be used. `code` is the stable error code for the `error` event."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}


def check_frame_bytes(size: int, settings: Settings) -> None:
    """`FrameRejected` for an encoded frame over `max_frame_bytes`."""
    if size > settings.limits.max_frame_bytes:
        raise FrameRejected(
            "bad_frame", f"frame of {size} bytes exceeds {settings.limits.max_frame_bytes}"
        )


def check_frame_size(width: int, height: int, settings: Settings) -> None:
    """`FrameRejected` for a picture over `max_frame_width` / `_height` / `_pixels`."""
    if (
        width > settings.limits.max_frame_width
        or height > settings.limits.max_frame_height
        or width * height > settings.limits.max_frame_pixels
    ):
        raise FrameRejected("bad_frame", f"frame of {width}x{height} exceeds the size limit")


def decode_frame(data: bytes, settings: Settings) -> np.ndarray:
    """JPEG/PNG/WebP bytes -> BGR uint8 image. Raises `FrameRejected`.

    The size limits are read from the header first, so a small file that claims huge dimensions
    (a decompression bomb) is refused before it allocates anything.
    """
    check_frame_bytes(len(data), settings)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = Image.open(io.BytesIO(data))
            fmt, (width, height) = header.format, header.size
    except Exception as exc:
        raise FrameRejected("bad_frame", f"not an image: {type(exc).__name__}") from None
    if fmt not in _ALLOWED_FORMATS:
        raise FrameRejected("bad_frame", f"unsupported image format {fmt}")
    check_frame_size(width, height, settings)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[0] != height or image.shape[1] != width:
        raise FrameRejected("bad_frame", "truncated or corrupt image data")
    return image


def video_frame_to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded WebRTC frame (usually yuv420p) as the BGR array the analysers take."""
    return frame.to_ndarray(format="bgr24")
