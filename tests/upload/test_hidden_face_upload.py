"""An upload of a presenter who bows over notes until FaceMesh loses the face (issue 20): the
upload flow's own scan (`scan_video` with the upload's stages) and its critique windows
(`critique_moments` with the rules critic) say the face is hidden in the frame, as the live
`face_lost` cue and critic do, not "stay centred in the frame"."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.coaching.critic import RulesCritic
from app.coaching.window_metrics import window_metrics
from app.config import Settings
from app.upload.feedback import critique_moments
from tests.fixtures.gaze_photos import moving_photo_frames
from tests.fixtures.videos import scan_upload, write_images_mp4


def test_an_uploads_critique_of_a_bowed_head_asks_for_the_head_up(
    tmp_path: Path, settings: Settings
) -> None:
    """2 s facing the camera (the astronaut), then 3 s bowed steeply under a cap's brim
    (mkr_studio1, a real photo), both moving with sensor noise, written as an H.264 upload."""
    frames = moving_photo_frames("astronaut", 30, 0, seed=1) + moving_photo_frames(
        "mkr_studio1", 45, 30, seed=2
    )
    path = write_images_mp4(tmp_path / "bow.mp4", frames, fps=15)
    scan = scan_upload(path, tmp_path, duration_hint_s=5.0)
    (on,) = [tr for tr in scan.transitions if tr.cue == "face_lost" and tr.state == "on"]
    assert on.hidden is True
    # the analyses the critique windows sum carry what the cue said on its lost frames
    after = [a for a in scan.analyses if a.t >= on.t]
    assert after and all(not a.face.found and a.face_hidden is True for a in after)
    assert window_metrics(scan.analyses)["face_hidden_share"] == 1.0

    texts, events = asyncio.run(
        critique_moments(
            RulesCritic(settings),
            scan.moments,
            scan.analyses,
            settings,
            video_id="bow",
            language="en",
        )
    )
    gaze = [i for e in events for i in e.items if i.category == "gaze" and i.severity == "warn"]
    assert gaze and all("lift your head" in i.suggestion for i in gaze), gaze
    assert not any("Stay centred" in i.suggestion for e in events for i in e.items)
    # and the upload's feedback cards carry it
    said = [text["recommendations"] for card in texts for text in card.values()]
    assert any("lift your head" in s for s in said) and not any("Stay centred" in s for s in said)
