"""Serving recordings over HTTP with `Range` support.

Starlette's `FileResponse` (>= 0.39, which the pinned FastAPI brings) already implements
byte ranges: `206` with `Content-Range` for one range, `multipart/byteranges` for several,
`416` with `Content-Range: bytes */size` for a range past the end, `400` for a malformed
header, and `If-Range` against the ETag. This module only fixes the content type and the
disposition, so every route serves recordings the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from starlette.responses import FileResponse

WEBM_MEDIA_TYPE: Final = "video/webm"


def webm_file_response(
    path: Path,
    *,
    download_name: str | None = "recording.webm",
    disposition: Literal["inline", "attachment"] = "inline",
) -> FileResponse:
    """A response streaming the WebM at `path`, honouring `Range` and `If-Range`.

    `inline` lets a `<video>` element play (and seek in) the file; the name is what a
    browser saves it as.
    """
    return FileResponse(
        path,
        media_type=WEBM_MEDIA_TYPE,
        filename=download_name,
        content_disposition_type=disposition,
    )
