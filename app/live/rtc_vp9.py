"""VP9 from WebRTC peers, passed to the session as it came: analysed and recorded like the
WebSocket's `VP91` frames, not decoded and encoded again.

aiortc (1.16) negotiates VP8 and H.264 only, and its receiver decodes every frame in its own
thread; the contract's recording is VP9, so a WebRTC picture was decoded, converted and
encoded to VP9 again, the recorder's encode being the largest share of the server's CPU a
frame (BENCHMARKS.md, section Capacity). With VP9 negotiated, the frames go on as the client
encoded them: `install()` adds VP9 (profile 0, what browsers send by default) to aiortc's
codecs, a depayloader for its RTP payload descriptor (RFC 9628), and a receiver "decoder" that
hands the assembled frame on undecoded (`RtpVp9Frame`); the session decodes it in its own
backlog (app/live/session.py, `submit_vp9`).

Only the base spatial layer is kept (a peer sending several layers of one picture, SVC, gives
the smallest one: the page asks for one layer, `L1T1`). Temporal layers need nothing: every
frame decodes in order.

Process-wide, like app/live/jitter.py; aiortc's private names it replaces are checked first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import aiortc.codecs
import aiortc.rtcpeerconnection
import aiortc.rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters

from app.live import jitter
from app.media.vp9 import parse_vp9_rtp

log = logging.getLogger(__name__)

MIME_TYPE: Final = "video/VP9"
PAYLOAD_TYPE: Final = 103  # after aiortc's own dynamic types (97-102); the offer's wins
CLOCK_RATE: Final = 90_000
TIME_BASE: Final = Fraction(1, CLOCK_RATE)

_aiortc_depayload = aiortc.codecs.depayload
_aiortc_get_decoder = aiortc.codecs.get_decoder
_aiortc_compatible = aiortc.rtcpeerconnection.is_codec_compatible


@dataclass(frozen=True, slots=True)
class RtpVp9Frame:
    """One VP9 frame of a WebRTC track, as the peer encoded it (what its track's `recv()`
    gives when VP9 is negotiated)."""

    data: bytes
    pts: int  # the RTP timestamp, counted from the track's first frame (aiortc's mapping)
    after_loss: bool  # packets were dropped before it: its reference may be gone
    time_base: Fraction = TIME_BASE


def vp9_depayload(payload: bytes) -> bytes:
    descriptor, body = parse_vp9_rtp(payload)
    return b"" if descriptor.spatial_id else body


class Vp9PassThrough(Decoder):
    """aiortc's receiver calls this in its decoder thread with each assembled frame."""

    def decode(self, encoded_frame: JitterFrame) -> list[RtpVp9Frame]:  # type: ignore[override]
        if not encoded_frame.data:
            return []  # padding, or a higher spatial layer alone
        return [
            RtpVp9Frame(
                data=encoded_frame.data,
                pts=encoded_frame.timestamp,
                after_loss=jitter.after_loss(encoded_frame),
            )
        ]


def _is_vp9(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower() == MIME_TYPE.lower()


def _depayload(codec: RTCRtpCodecParameters, payload: bytes) -> bytes:
    return vp9_depayload(payload) if _is_vp9(codec) else _aiortc_depayload(codec, payload)


def _get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    return Vp9PassThrough() if _is_vp9(codec) else _aiortc_get_decoder(codec)


def _compatible(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters) -> bool:
    """aiortc's rule, and VP9 only in profile 0 (8-bit 4:2:0; an offer's profile 2 is 10-bit)."""
    if _is_vp9(a) and _is_vp9(b):
        return all(str(c.parameters.get("profile-id", "0")) == "0" for c in (a, b)) and (
            a.clockRate == b.clockRate
        )
    return _aiortc_compatible(a, b)


def _codecs() -> list[RTCRtpCodecParameters]:
    feedback = [
        RTCRtcpFeedback(type="nack"),
        RTCRtcpFeedback(type="nack", parameter="pli"),
        RTCRtcpFeedback(type="goog-remb"),
    ]
    return [
        RTCRtpCodecParameters(
            mimeType=MIME_TYPE,
            clockRate=CLOCK_RATE,
            payloadType=PAYLOAD_TYPE,
            rtcpFeedback=feedback,
            parameters={"profile-id": "0"},
        ),
        RTCRtpCodecParameters(
            mimeType="video/rtx",
            clockRate=CLOCK_RATE,
            payloadType=PAYLOAD_TYPE + 1,
            parameters={"apt": PAYLOAD_TYPE},
        ),
    ]


def _fits_this_aiortc() -> bool:
    taken = {c.payloadType for c in aiortc.codecs.CODECS["video"] if not _is_vp9(c)}
    return (
        callable(getattr(aiortc.rtcrtpreceiver, "depayload", None))
        and callable(getattr(aiortc.rtcrtpreceiver, "get_decoder", None))
        and callable(getattr(aiortc.rtcpeerconnection, "is_codec_compatible", None))
        and not taken & {PAYLOAD_TYPE, PAYLOAD_TYPE + 1}
    )


def installed() -> bool:
    return any(_is_vp9(c) for c in aiortc.codecs.CODECS["video"])


def install(enabled: bool = True) -> None:
    """Offer VP9 to WebRTC peers from now on (False: take it away again, VP8 and H.264 only)."""
    video = aiortc.codecs.CODECS["video"]
    video[:] = [c for c in video if not _is_vp9(c) and c.parameters.get("apt") != PAYLOAD_TYPE]
    if not enabled:
        return
    if not _fits_this_aiortc():
        log.warning("this aiortc does not look like the one VP9 was added to: VP8 only")
        return
    video.extend(_codecs())
    aiortc.rtcrtpreceiver.depayload = _depayload  # type: ignore[attr-defined]
    aiortc.rtcrtpreceiver.get_decoder = _get_decoder  # type: ignore[attr-defined]
    aiortc.rtcpeerconnection.is_codec_compatible = _compatible  # type: ignore[attr-defined]
