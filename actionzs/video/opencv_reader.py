"""The OpenCV backend: it reads forward and seeks only where a seek proves exact."""

from __future__ import annotations

import logging
import os

import numpy as np

from ..errors import FrameIndexError, VideoDecodeError
from ..frames import FrameSize, resize_dims
from ..sampling import Timeline
from .image_reader import too_many_pixels
from .reader import Reader

log = logging.getLogger(__name__)


class OpenCVReader(Reader):
    """Reads forward with `grab`, retrieving only wanted frames; seeks only where it verifies.

    It never guesses (a header's frame count and every seek are checked), so `strict` changes
    nothing; and it decodes only when asked, so it needs no rest.
    """

    #: Jump ahead by seeking when the next wanted frame is more than this many frames away.
    SEEK_GAP = 48

    def __init__(self, path: str, *, strict: bool = False):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own warnings would flood stderr
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        import cv2

        self._cv2 = cv2
        self._path = path
        self._cap = None
        self._pos = 0
        self._seek_ok = True
        self._timed = False  # whether frames are checked against the container's times
        self._open()
        self._origin = self._first_time()
        cap = self._cap
        average_fps = cap.get(cv2.CAP_PROP_FPS)
        if not average_fps > 0 or not np.isfinite(average_fps):
            raise VideoDecodeError(path, f"the stream reports a frame rate of {average_fps}")
        self.average_fps = float(average_fps)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        refused = too_many_pixels(self.width, self.height, "frames")
        if refused:  # before counting frames decodes one (an image bomb renamed .mp4 opens here)
            self.close()
            raise VideoDecodeError(path, refused)
        num_frames = self._true_frame_count(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        if num_frames == 0:
            raise VideoDecodeError(path, "no decodable video frames")
        self.timeline = Timeline.constant_rate(num_frames, self.average_fps)

    def _open(self):
        if self._cap is not None:
            self._cap.release()
        cap = self._cv2.VideoCapture(self._path, self._cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise VideoDecodeError(self._path, "not a readable video (OpenCV could not open it)")
        self._cap, self._pos = cap, 0
        return cap

    def use_timeline(self, timeline: Timeline, average_fps: float, timed: bool) -> None:
        super().use_timeline(timeline, average_fps, timed)
        self._timed = timed

    def _first_time(self) -> float:
        """The time OpenCV gives the first frame (AVI starts its count at 1): times are from it."""
        origin = self._cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000 if self._cap.grab() else 0.0
        self._open()
        return origin

    def _frame_time_matches(self, index: int) -> bool:
        """Whether the frame just grabbed is shown at frame `index`'s time (the container's, once
        the timeline is set; the header's rate before)."""
        seconds = self._cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000 - self._origin
        timeline = getattr(self, "timeline", None)
        if timeline is None or index >= timeline.num_frames:
            return abs(seconds - index / self.average_fps) < 0.5 / self.average_fps
        pts = timeline.pts_seconds
        gaps = [pts[index] - pts[index - 1]] if index > 0 else []
        gaps += [pts[index + 1] - pts[index]] if index + 1 < len(pts) else [timeline.duration - pts[index]]
        return abs(seconds - pts[index]) < 0.5 * min(gaps)

    def _true_frame_count(self, claimed: int) -> int:
        """The header's count if its last frame decodes at the right time, else a counted one."""
        if 0 < claimed < 10**8:
            self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, claimed - 1)
            if self._cap.grab() and self._frame_time_matches(claimed - 1) and not self._cap.grab():
                self._open()
                return claimed
            log.info("%s: header claims %d frames; counting the frames that decode", self._path, claimed)
        self._open()
        count = 0
        while self._cap.grab():
            count += 1
        self._open()
        return count

    def _seek(self, index: int) -> bool:
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, index)
        if self._cap.grab() and self._frame_time_matches(index):
            self._pos = index + 1
            return True
        self._seek_ok = False  # this file does not seek exactly (variable frame rate, broken index)
        self._open()
        return False

    def _grab(self, index: int) -> None:
        if index < self._pos:
            self._open()
        if self._seek_ok and self._timed and index - self._pos > self.SEEK_GAP and self._seek(index):
            return
        while self._pos <= index:
            if not self._cap.grab():
                raise FrameIndexError(self._path, f"frame {index} does not decode (stream ended at {self._pos})")
            self._pos += 1
        if self._timed and not self._frame_time_matches(index):  # one before it did not decode
            seconds = self._cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000 - self._origin
            raise VideoDecodeError(
                self._path, f"frame {index} does not decode: OpenCV delivers the frame shown at {seconds:.3f} s in its place"
            )

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        height, width = resize_dims(self.height, self.width, size)
        out = np.empty((len(indices), height, width, 3), np.uint8)
        for slot, index in enumerate(indices.tolist()):
            self._grab(index)
            ok, bgr = self._cap.retrieve()
            if not ok:
                raise VideoDecodeError(self._path, f"frame {index} could not be retrieved")
            if bgr.shape[:2] != (height, width):
                shrink = height * width < bgr.shape[0] * bgr.shape[1]
                interp = self._cv2.INTER_AREA if shrink else self._cv2.INTER_CUBIC
                bgr = self._cv2.resize(bgr, (width, height), interpolation=interp)
            self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB, dst=out[slot])
        return out

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
