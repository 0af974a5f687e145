"""Is anybody in the middle of the frame? MediaPipe's selfie segmentation, asked only on the
frames where FaceMesh finds no face, so `face_lost` can tell a presenter whose face is hidden
(head bowed over notes, turned to a screen) from a frame with nobody in it (an empty room, a
covered camera, a cut to another scene).

Why a segmentation model: Pose's detector starts from the head, so it loses most steep bows
as FaceMesh does; a segmentation model labels every pixel with no detector in front of it,
and sees the back of a bowed head, a turned head, the shoulders. Its landscape model (144 x 256,
in the pinned mediapipe wheel) costs about 5 ms a 640 x 480 frame here, and only on frames
without a face. Measured on real photos and the test clips (bench/face_hidden.py): the face-lost
photos (steep bows, heads turned away) cover 0.5-0.99 of the frame's middle, a presenter walking
out 0.1-0.3 as the face leaves, an empty room or a dark frame 0, a presenter standing so far
back that FaceMesh misses them 0-0.26.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# the frame's middle, as a share of its width on each side: a presenter in the frame stands
# there, one leaving it is at an edge
MIDDLE_FROM = 0.2
MIDDLE_TO = 0.8
# a pixel is the person's where the model's confidence is above this
PERSON_CONFIDENCE = 0.5


class PersonSegmenter:
    """One selfie-segmentation graph, built on first use (most sessions never lose the face).
    Not thread-safe: one call at a time."""

    def __init__(self) -> None:
        self._graph: Any = None

    def middle_share(self, rgb: np.ndarray) -> float:
        """The share of the frame's middle (`MIDDLE_FROM`..`MIDDLE_TO` of its width, full
        height) that a person covers. `rgb`: H x W x 3 uint8 RGB, contiguous."""
        if self._graph is None:
            import mediapipe as mp  # heavy import, kept out of module import time

            self._graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
        mask = self._graph.process(rgb).segmentation_mask
        width = mask.shape[1]
        middle = mask[:, int(MIDDLE_FROM * width) : int(MIDDLE_TO * width)]
        if middle.size == 0:  # a frame a pixel or two wide has no middle to stand in
            return 0.0
        return float(np.count_nonzero(middle > PERSON_CONFIDENCE)) / middle.size

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
