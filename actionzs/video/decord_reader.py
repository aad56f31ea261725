"""The decord backend: it indexes every packet on open, so frame counts and times are real."""

from __future__ import annotations

import logging

import numpy as np

from ..errors import VideoDecodeError
from ..frames import FrameSize, resize_dims
from ..sampling import Timeline
from .reader import Reader

log = logging.getLogger(__name__)

#: Codecs decord reads wrongly from AVI even without B-frames: a read past the first keyframes
#: gives frames of an earlier GOP (H.264, a keyframe every 30 frames: frame 40 came back as frame
#: 10, 100 as 10). HEVC is refused with it untried (FFmpeg does not write HEVC into AVI, so no
#: clip could be made). MPEG-4 Part 2 in AVI reads right.
SEEKS_WRONG_IN_AVI = frozenset({"h264", "hevc"})


def _stream_pts(starts: np.ndarray, average_fps: float) -> np.ndarray:
    """Frame times from the container, from 0, when they are sane; else `_InconsistentTiming`.

    Sane means finite, strictly increasing and spanning roughly what the frame rate implies; some
    AVI files carry garbage here (decord reports -3.8e17 s for many frames of such files).
    """
    pts = np.asarray(starts, np.float64)
    nominal = np.arange(len(pts)) / average_fps
    if len(pts) < 2:
        return nominal
    span, expected = pts[-1] - pts[0], nominal[-1]
    if np.all(np.isfinite(pts)) and np.all(np.diff(pts) > 0) and 0.5 * expected <= span <= 2 * expected:
        # decord hands out float32 seconds (0.6 s arrives as 0.6000000238): round to microseconds
        # so a time exactly at a frame's start picks that frame.
        return np.round(pts - pts[0], 6)
    raise _InconsistentTiming(f"frame timestamps are inconsistent (span {span:.3g} s for {len(pts)} frames)")


class _InconsistentTiming(ValueError):
    """The container's frame times are garbage; decord's frame order cannot be trusted either."""


class DecordReader(Reader):
    """decord: indexes every packet on open, so counts and times are real; `strict` refuses files
    whose frame times are garbage (decord returns wrong frames for those)."""

    def __init__(self, path: str, *, strict: bool = False):
        import decord

        self._decord = decord
        self._path = path
        self._readers: dict[tuple[int, int], object] = {}
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        num_frames = len(reader)
        if num_frames <= 0:
            raise VideoDecodeError(path, "no decodable video frames")
        self.height, self.width = reader[0].shape[:2]
        reader.seek(0)
        average_fps = float(reader.get_avg_fps())
        if not average_fps > 0:
            raise VideoDecodeError(path, f"the stream reports a frame rate of {average_fps}")
        self.average_fps = average_fps
        spans = reader.get_frame_timestamp(np.arange(num_frames))
        try:
            pts = _stream_pts(spans[:, 0], average_fps)
            self.container_times = True
        except _InconsistentTiming as exc:
            if strict:
                raise VideoDecodeError(path, f"{exc}; decord misorders frames in such files") from None
            log.debug("%s: %s; using constant-rate times", path, exc)
            pts = np.arange(num_frames) / average_fps
        last = float(spans[-1, 1] - spans[-1, 0])
        frame_time = last if 0 < last < 10 / average_fps else 1 / average_fps
        self.timeline = Timeline(pts, round(float(pts[-1] + frame_time), 6))
        self._readers[(self.height, self.width)] = reader

    def cannot_read(self, index) -> str | None:
        if index.reordered and not index.mp4_family:
            return f"decord misplaces frames of {index.codec} streams with B-frames outside MP4 (use pyav)"
        if index.demuxer == "avi" and index.codec in SEEKS_WRONG_IN_AVI:
            return f"decord seeks to the wrong frames in {index.codec} AVI files (use pyav)"
        return None

    def _reader(self, size: FrameSize | None):
        dims = resize_dims(self.height, self.width, size)
        if dims not in self._readers:
            height, width = dims
            self._readers[dims] = self._decord.VideoReader(
                self._path, ctx=self._decord.cpu(0), width=width, height=height, num_threads=1
            )
        return self._readers[dims]

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        # The reader stays where the batch ended, so the next batch decodes on from there instead
        # of seeking back to a keyframe (X-CLIP's overlapping spans: 8 % of a call).
        return self._reader(size).get_batch(indices.tolist()).asnumpy()

    def rest(self) -> None:
        # An idle decord reader goes on decoding frames nobody asked for into memory (hundreds of
        # MB within seconds, up to the rest of the file); a seek to the start stops that. The next
        # read then decodes from the keyframe before its first frame.
        for reader in self._readers.values():
            reader.seek(0)

    def close(self) -> None:
        self._readers.clear()
