"""The original Pitching engine's upload flow (paths and shapes fixed by its front end).

Every path answers with and without its trailing slash, without a redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse

from app.api.deps import UploadsDep
from app.schemas import (
    RANGE_ANSWERS,
    RANGE_REQUEST,
    UPLOAD_LINKS,
    UploadAccepted,
    UploadDeleted,
    UploadFeedback,
    error_responses,
)
from app.security import REPORT_HEADERS

router = APIRouter(prefix="/api/video", tags=["upload"])

F = TypeVar("F", bound=Callable[..., Any])


FILE_ERRORS = error_responses(404, 409, 422)


def both_forms(method: str, path: str, **kwargs: Any) -> Callable[[F], F]:
    """Register `path` with and without a trailing slash (the second hidden from the schema)."""
    bare = path.rstrip("/")

    def register(fn: F) -> F:
        router.add_api_route(bare + "/", fn, methods=[method], **kwargs)
        router.add_api_route(bare, fn, methods=[method], include_in_schema=False, **kwargs)
        return fn

    return register


@both_forms(
    "POST",
    "/receive-video/",
    response_model=UploadAccepted,
    responses={
        200: {"description": "The upload was accepted; its analysis runs", "links": UPLOAD_LINKS},
        **error_responses(400, 413, 422, 503),
    },
    # The body is parsed as a stream (never held in memory), so FastAPI cannot infer it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "video": {"type": "string", "format": "binary"},
                        },
                        "required": ["file"],
                    }
                }
            },
        }
    },
)
async def receive_video(
    request: Request,
    uploads: UploadsDep,
    language: Annotated[Literal["ko", "en"], Query()] = "ko",
) -> UploadAccepted:
    length = request.headers.get("content-length")
    video_id, text = await uploads.receive(
        request.stream(),
        request.headers.get("content-type", ""),
        int(length) if length and length.isdigit() else None,
        language,
    )
    return UploadAccepted(video_id=video_id, message=text)


# `{video_id:path}` takes the rest of the path, so the optional trailing slash and anything
# malformed (`../x`, an encoded slash) reach the handler and get the service's 404, rather than
# falling through to another route.
@router.get(
    "/video-send-feedback/{video_id:path}",
    response_model=UploadFeedback,
    responses=error_responses(404, 422),
)
async def video_send_feedback(video_id: str, uploads: UploadsDep) -> dict[str, Any]:
    return await uploads.feedback(video_id.removesuffix("/"))


@router.delete(
    "/delete_files/{video_id:path}",
    response_model=UploadDeleted,
    responses=error_responses(404, 422),
)
async def delete_files(video_id: str, uploads: UploadsDep) -> UploadDeleted:
    video_id = video_id.removesuffix("/")
    text = await uploads.delete(video_id)
    return UploadDeleted(video_id=video_id, message=text)


@both_forms(
    "GET",
    "/recording/{video_id}/",
    response_class=FileResponse,
    responses={**error_responses(404, 409, 422), **RANGE_ANSWERS},
    openapi_extra=RANGE_REQUEST,
)
async def upload_recording(video_id: str, uploads: UploadsDep) -> FileResponse:
    path = await uploads.artefact(video_id, "recording")
    return FileResponse(path, media_type="video/webm", filename=f"{video_id}.webm")


@both_forms(
    "GET",
    "/report/{video_id}/",
    response_class=FileResponse,
    responses={
        **error_responses(404, 409, 422),
        200: {"description": "The report JSON", "content": {"application/json": {}}},
    },
)
async def upload_report(video_id: str, uploads: UploadsDep) -> FileResponse:
    path = await uploads.artefact(video_id, "report")
    return FileResponse(path, media_type="application/json")


@both_forms(
    "GET",
    "/report/{video_id}/html/",
    response_class=FileResponse,
    responses={
        **error_responses(404, 409, 422),
        200: {"description": "The report page", "content": {"text/html": {}}},
    },
)
async def upload_report_html(video_id: str, uploads: UploadsDep) -> FileResponse:
    path = await uploads.artefact(video_id, "report_html")
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)
