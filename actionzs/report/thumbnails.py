"""Small JPEG thumbnails of a video for its report: a filmstrip along the whole video and a keyframe
for each event, read through actionzs's own decoding, as data URIs so the page needs no other file.

Their number is bounded whatever the video's length or event count, so the page's size is too.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np

from ..errors import ActionzsError
from ..video import open_video

THUMB_HEIGHT = 96  # pixels, of a landscape frame (a portrait one is 96 pixels wide)
JPEG_QUALITY = 70
FILMSTRIP_MAX = 100  # thumbnails along the video
FILMSTRIP_SPACING_SECONDS = 1.0  # at least this far apart (a 30 s clip gets 30)
KEYFRAMES_MAX = 100  # events with a keyframe of their own; the others show the nearest thumbnail


def filmstrip_times(duration_seconds: float) -> list[float]:
    """The middles of equal slots along the video, at most FILMSTRIP_MAX of them."""
    count = min(FILMSTRIP_MAX, max(1, math.ceil(duration_seconds / FILMSTRIP_SPACING_SECONDS)))
    return [(k + 0.5) * duration_seconds / count for k in range(count)]


def keyframe_events(events: list[dict]) -> list[int]:
    """The indices of the best-scoring KEYFRAMES_MAX events (each gets a keyframe of its own), in order."""
    return sorted(sorted(range(len(events)), key=lambda k: -events[k]["score"])[:KEYFRAMES_MAX])


def nearest(times: list[float], moment: float) -> int:
    """The index of the time in `times` (sorted, non-empty) closest to `moment`."""
    k = int(np.searchsorted(times, moment))
    if k == len(times) or (k > 0 and moment - times[k - 1] <= times[k] - moment):
        k -= 1
    return k


def _jpeg_uri(frame: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnails(path: str, times: list[float], backend: str = "auto") -> tuple[list[str], str | None]:
    """(JPEG data URIs of the frames on screen at `times`, None), or ([], the reason) when the video
    cannot be read now (moved, damaged): a report still has its timeline and events without them."""
    if not times:
        return [], None
    try:
        with open_video(path, backend) as video:
            indices = video.timeline.frame_at(np.asarray(times))
            unique, where = np.unique(indices, return_inverse=True)
            size = THUMB_HEIGHT if video.width >= video.height else (round(THUMB_HEIGHT * video.height / video.width), THUMB_HEIGHT)
            frames = video.get_frames(unique, size=size).data
    except (ActionzsError, OSError) as exc:
        return [], getattr(exc, "reason", None) or str(exc)
    uris = [_jpeg_uri(frame) for frame in frames]
    return [uris[k] for k in np.ravel(where)], None
