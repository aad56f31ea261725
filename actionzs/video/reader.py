"""What a decoding backend provides; `Video` adds validation, ordering, chunking, locking and forks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..frames import FrameSize
from ..sampling import Timeline


class Reader(ABC):
    """One open decoder of one file, used by one `Video` (never from two threads at once).

    A backend is constructed as `cls(path, strict=...)` and must guarantee:

    - `timeline` is the truth: one entry per frame that really decodes (a header's count is
      checked, not trusted) with that frame's start time, from 0; constant-rate times only where
      the container has none to give. `width` and `height` are the decoded frame size and
      `average_fps` the stream's average frame rate. Where FFmpeg can index the file
      (`StreamIndex`), the reader is held to it (`stream_index.agreed_timeline`): a reader that
      finds more frames, another stream's or times of its own that differ is refused for the
      file, and one that agrees gets the container's timeline in place of its own.
    - `read(indices, size)` returns exactly the frames at `indices` (sorted, unique, each inside
      the timeline: `Video` checks that first), never a neighbour, as uint8 RGB [N, H, W, 3] at
      `resize_dims(height, width, size)`. A frame past the true end is a `FrameIndexError`; any
      other exception means decoding failed.
    - With `strict=True` (what "auto" asks, where another backend may read the file exactly) it
      refuses a file it might read wrongly, rather than guess.

    An open that fails raises `VideoDecodeError` with a short reason, `ImportError` when the
    decoding library is not installed, or the decoder's own exception (its message becomes the
    reason).
    """

    width: int
    height: int
    average_fps: float
    timeline: Timeline
    #: False for a reader that holds no decoder state a forked child could not use (a picture in
    #: memory); a `Video` then keeps it in the child instead of opening its own.
    reopen_after_fork: ClassVar[bool] = True
    #: Whether it reads the container's default video stream (see `stream_index.default_stream`)
    #: of a file with several; one that cannot choose is refused for such files.
    chooses_stream: ClassVar[bool] = False
    #: Whether it is constructed with the file's `StreamIndex` (`cls(path, strict=..., index=...)`).
    takes_index: ClassVar[bool] = False
    #: Whether `timeline` holds the container's own times (checked against the index), rather than
    #: times of the reader's making.
    container_times: bool = False

    @abstractmethod
    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        """Frames at the sorted, unique `indices`, uint8 RGB [N, H, W, 3] at `size`."""

    def use_timeline(self, timeline: Timeline, average_fps: float, timed: bool) -> None:
        """Read by the container's `timeline` from now on (it agrees with the reader's own);
        `timed` says whether its times are the container's (else evenly spaced)."""
        self.timeline, self.average_fps = timeline, average_fps

    def cannot_read(self, index) -> str | None:
        """Why this reader would read the file `index` describes wrongly, or None."""
        return None

    def rest(self) -> None:
        """Nobody will read for a while: stop any decoding ahead (the next read may cost more)."""

    def close(self) -> None:
        """Release the decoder; the reader is not used again."""
