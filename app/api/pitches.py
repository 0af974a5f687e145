"""REST routes of the pitches: create one, read its takes with their scores and figures, compare
two takes, delete it with all its takes. (A take is created with `POST /api/sessions` and the
pitch's `pitch_id` and token.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import ManagerDep, PitchRowDep
from app.live import pitches
from app.schemas import (
    PITCH_ERRORS,
    PITCH_LINKS,
    Pitch,
    PitchCreate,
    PitchCreated,
    TakeComparison,
    error_responses,
)

router = APIRouter(prefix="/api/pitches", tags=["pitches"])

SessionIdQuery = Query(min_length=1, max_length=200, description="A take's `session_id`")


@router.post(
    "",
    status_code=201,
    response_model=PitchCreated,
    responses={
        201: {"description": "The new pitch and its token", "links": PITCH_LINKS},
        **error_responses(400, 422, 429),
    },
)
async def create_pitch(request: Request, manager: ManagerDep, body: PitchCreate) -> PitchCreated:
    """A pitch to rehearse in takes. Its `token` opens the pitch and every take of it."""
    client = request.client.host if request.client else "unknown"
    row, token = await pitches.create_pitch(
        manager,
        title=body.title,
        language=body.language,
        target_duration_s=body.target_duration_s,
        client=client,
    )
    return PitchCreated(
        pitch_id=row.id,
        token=token,
        title=row.title,
        language=body.language,
        target_duration_s=row.target_duration_s,
        created_at=row.created_at,
    )


@router.get("/{pitch_id}", response_model=Pitch, responses=PITCH_ERRORS)
async def get_pitch(pitch: PitchRowDep, manager: ManagerDep) -> Pitch:
    """The pitch and its takes in order, each with its scores and figures (from its report;
    `null` where not measured or while it has none)."""
    return Pitch.model_validate(
        {
            "pitch_id": pitch.id,
            "title": pitch.title,
            "language": pitch.language,
            "target_duration_s": pitch.target_duration_s,
            "created_at": pitch.created_at,
            "takes": await pitches.list_takes(manager, pitch),
        }
    )


@router.get(
    "/{pitch_id}/compare",
    response_model=TakeComparison,
    # 404 also `take_not_found`: a session that is not a take of this pitch;
    # 409 `take_not_completed`: either take is not completed yet
    responses={**PITCH_ERRORS, **error_responses(409)},
)
async def compare_takes(
    pitch: PitchRowDep,
    manager: ManagerDep,
    a: Annotated[str, SessionIdQuery],
    b: Annotated[str, SessionIdQuery],
) -> TakeComparison:
    """Two completed takes of the pitch side by side, and the change from `a` to `b`."""
    return TakeComparison.model_validate(await pitches.compare_takes(manager, pitch, a, b))


@router.delete(
    "/{pitch_id}",
    status_code=204,
    response_class=Response,
    # 409 `session_active`: a take could not be ended in time (try again)
    responses={
        204: {"description": "The pitch and all its takes are gone"},
        **PITCH_ERRORS,
        **error_responses(409),
    },
)
async def delete_pitch(pitch: PitchRowDep, manager: ManagerDep) -> Response:
    """Delete the pitch, its takes, their recordings and reports. A take still live is ended
    first, as `POST /api/sessions/{id}/end` would."""
    await pitches.delete_pitch(manager, pitch)
    return Response(status_code=204)
