"""The WebRTC transport's signalling: the browser posts its offer, the server answers with a
complete SDP (ICE gathered, no trickle). Media and events then flow on the peer (app/live/rtc)."""

from __future__ import annotations

import logging
from typing import Annotated

from aiortc import RTCSessionDescription
from fastapi import APIRouter, Depends, Request

from app.api.deps import ManagerDep, SessionRowDep
from app.errors import CoachError
from app.live.rtc import RtcPeers
from app.schemas import SESSION_ERRORS, RtcAnswer, RtcOffer, error_responses

router = APIRouter(prefix="/api/sessions", tags=["webrtc"])
log = logging.getLogger(__name__)


def get_peers(request: Request) -> RtcPeers:
    peers: RtcPeers = request.app.state.rtc_peers
    return peers


PeersDep = Annotated[RtcPeers, Depends(get_peers)]


@router.post(
    "/{session_id}/offer",
    response_model=RtcAnswer,
    responses={**SESSION_ERRORS, **error_responses(400, 409, 503)},
)
async def offer(
    row: SessionRowDep, body: RtcOffer, manager: ManagerDep, peers: PeersDep
) -> RtcAnswer:
    # The offer is the session's first media: it claims the session for this replica and
    # makes it live, once the offer was accepted (a refused offer leaves it `created`).
    session = await manager.live_session(row)
    if not session.accepting_media:
        raise CoachError("session_not_live", f"The session is {session.state}.")
    if session.state == "created":
        manager.check_running_capacity(session)
    try:
        answer = await peers.answer(session, RTCSessionDescription(sdp=body.sdp, type=body.type))
    except Exception as exc:
        # aiortc rejects SDP it cannot parse or negotiate (no common codec, no ICE
        # credentials, no DTLS fingerprint) with ValueError, and broken lines with whatever
        # its parser meets: KeyError, IndexError, AssertionError, AttributeError... Each is
        # the client's offer, not a server fault (the peer is closed already).
        log.info("offer refused: %r", exc, extra={"session_id": session.id})
        await manager.let_go(session)  # with replicas, the next media may start it anywhere
        raise CoachError("bad_offer", f"The SDP offer was refused: {exc}") from None
    try:
        await manager.go_live(session)
    except CoachError:
        await peers.close_session(session.id, "session_ended")
        raise
    return RtcAnswer(sdp=answer.sdp, type="answer")
