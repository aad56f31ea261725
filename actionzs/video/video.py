"""`Video`: one open file, with true metadata and exact frames by index, read in bounded chunks."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import FrameIndexError, TimelineChanged, VideoDecodeError
from ..frames import FrameBatch, FrameSize, Resize, resize_dims
from ..sampling import Timeline, merged_spans
from .capture import STDERR, track
from .messages import decoder_message, spans_text
from .pyav_reader import PyAVReader
from .reader import Reader
from .registry import auto_order, open_reader
from .stream_index import StreamIndex

log = logging.getLogger(__name__)

#: Upper bound on the decoded bytes held by one chunk (frames at the requested size).
CHUNK_BYTES = 64 * 2**20
MAX_CHUNK_FRAMES = 32


class Video:
    """An open video: true metadata, and exact frames by index. Use `open_video` to make one.

    One `Video` serialises its own reads with a lock and reopens its decoder in a forked child, so a
    decoder is never shared between threads or processes; for parallel work open one per worker.
    Opened by "auto", it switches to the next backend of auto's order when a read fails.

    When a read fails with no backend left to try, and FFmpeg decodes the file except for some
    frames (damage in the middle), the video keeps the frames that decode: its `timeline` then
    holds only those, its `gaps` say which stretches of time are missing, and the read raises
    `TimelineChanged` so that whatever was planned from the old timeline is planned again.
    """

    def __init__(self, reader: Reader, path: str, backend: str, *, auto: bool = False, index: StreamIndex | None = None):
        self._reader = reader
        self._index = index
        self._timeline = reader.timeline
        self._kept: np.ndarray | None = None  # each frame's index in the reader's timeline, once frames are lost
        self._backend = backend
        self._auto = auto
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self.path = path
        track(self)

    @property
    def backend(self) -> str:
        """The backend actually in use: "decord", "pyav", "opencv", "image" or a registered one."""
        return self._backend

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    @property
    def num_frames(self) -> int:
        return self._timeline.num_frames

    @property
    def average_fps(self) -> float:
        """The stream's own average frame rate (not the rate frames are sampled at)."""
        return self._reader.average_fps

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        return self._timeline.duration

    @property
    def width(self) -> int:
        return self._reader.width

    @property
    def height(self) -> int:
        return self._reader.height

    def info(self) -> dict:
        """Metadata as a plain dict (what `actionzs probe --json` prints; its "fps" is `average_fps`).
        `keyframes` counts the frames the container flags as keyframes and
        `keyframe_interval_seconds` is the median time between them, what `--keyframes` and
        `--snap-to-keyframes` work with (None where the container does not tell them, or for
        `keyframe_interval_seconds` with fewer than two)."""
        keys = self._timeline.keyframes
        times = None if keys is None else self._timeline.pts_seconds[keys]
        return {
            "path": self.path,
            "backend": self.backend,
            "num_frames": self.num_frames,
            "fps": round(self.average_fps, 6),
            "duration": round(self.duration, 6),
            "width": self.width,
            "height": self.height,
            "keyframes": None if keys is None else len(keys),
            "keyframe_interval_seconds": None if times is None or len(times) < 2 else round(float(np.median(np.diff(times))), 6),
        }

    def get_frames(self, indices: Sequence[int] | np.ndarray, size: FrameSize | None = None) -> FrameBatch:
        """Frames at `indices`, in the order asked (duplicates allowed), at `size` (see `FrameSize`)."""
        batches = list(self.iter_frames(indices, size, chunk=len(indices) or 1))
        if len(batches) == 1:
            return batches[0]
        height, width = resize_dims(self.height, self.width, size)
        if not batches:
            empty = np.empty(0, np.int64)
            return FrameBatch(np.empty((0, height, width, 3), np.uint8), empty, empty.astype(np.float64))
        return FrameBatch(
            np.concatenate([b.data for b in batches]),
            np.concatenate([b.indices for b in batches]),
            np.concatenate([b.pts_seconds for b in batches]),
        )

    def iter_frames(
        self, indices: Sequence[int] | np.ndarray, size: FrameSize | None = None, chunk: int = MAX_CHUNK_FRAMES
    ) -> Iterator[FrameBatch]:
        """Yield the frames at `indices` in order, in batches of at most `chunk` frames."""
        indices = self._validate(indices)
        # A `Resize` is decoded at the video's own size, then resized a read at a time.
        height, width = resize_dims(self.height, self.width, None if isinstance(size, Resize) else size)
        per_read = max(1, min(chunk, MAX_CHUNK_FRAMES, CHUNK_BYTES // (height * width * 3)))
        for start in range(0, len(indices), chunk):
            wanted = indices[start : start + chunk]
            unique, where = np.unique(wanted, return_inverse=True)
            parts = [self._read(unique[i : i + per_read], size) for i in range(0, len(unique), per_read)]
            frames = np.concatenate(parts)[where]
            yield FrameBatch(frames, wanted, self.timeline.pts_seconds[wanted])

    def _validate(self, indices) -> np.ndarray:
        indices = np.asarray(indices)
        if indices.ndim != 1 or (len(indices) and not np.issubdtype(indices.dtype, np.integer)):
            raise TypeError(f"{self.path}: frame indices must be a flat sequence of integers")
        indices = indices.astype(np.int64)
        bad = indices[(indices < 0) | (indices >= self.num_frames)]
        if len(bad):
            raise FrameIndexError(
                self.path, f"frame index {int(bad[0])} is outside the {self.num_frames} frames that decode"
            )
        return indices

    def _read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        if isinstance(size, Resize):  # decoders scale otherwise than image processors: resize here
            return size(self._decode(indices, None))
        return self._decode(indices, size)

    def _decode(self, indices: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
        with self._lock:
            if self._closed:
                raise VideoDecodeError(self.path, "the video was closed; open it again to read frames")
            if os.getpid() != self._pid and self._reader.reopen_after_fork:  # forked: use a decoder of our own
                self._backend, self._reader = open_reader(self.path, [self._backend], self._index, strict=False)
                self._pid = os.getpid()
            while True:
                try:
                    with STDERR.capture():
                        return self._reader.read(indices if self._kept is None else self._kept[indices], size)
                except Exception as exc:  # `indices` are inside the timeline: any failure is damage
                    reason = decoder_message(exc)
                    switched, why_not = self._switch_backend(reason)
                    if switched:
                        continue
                    if self._keep_decodable(f"{reason}; then {why_not}" if why_not else reason):
                        raise TimelineChanged(self.path, list(self._timeline.gaps)) from None

    def _switch_backend(self, reason: str) -> tuple[bool, str | None]:
        """After a read failed for `reason`, take the next backend of auto's order that opens the
        file; (False, why none could) when the video was not opened by auto or none is left."""
        later = auto_order(self.path, after=self._backend) if self._auto else []
        if not later:
            return False, None
        try:
            backend, reader = open_reader(self.path, later, self._index, strict=True)
        except VideoDecodeError as exc:
            return False, exc.reason
        log.warning("%s: %s failed while reading (%s); switching to %s", self.path, self._backend, reason, backend)
        if reader.timeline.num_frames < self._reader.timeline.num_frames:
            log.warning(
                "%s: only %d of %d frames decode with %s", self.path, reader.timeline.num_frames, self.num_frames, backend
            )
            self._timeline = reader.timeline
        self._reader.close()
        self._backend, self._reader = backend, reader
        return True, None

    def keep_decodable(self) -> bool:
        """Find with FFmpeg which frames decode and keep only those; whether the timeline changed
        (its `gaps` then say what is missing). For a damaged file, before planning its reads."""
        with self._lock:
            return self._keep_decodable(None)

    def _keep_decodable(self, reason: str | None) -> bool:
        """Find with FFmpeg which frames decode, after a read no backend could make (`reason`) or
        before any (None), and keep those; whether the timeline changed. The frames are read with
        FFmpeg unless they are a first stretch the backend in use reads anyway. Nothing to ask
        FFmpeg, nothing decodes, frames lost a second time, or a chosen backend that fails where
        FFmpeg does not: `VideoDecodeError`."""
        failed = f"decoding failed: {reason}" if reason else "decoding failed"
        if self._index is None or self._kept is not None:
            raise VideoDecodeError(self.path, failed) from None
        try:
            with STDERR.capture():
                reader = PyAVReader(self.path, index=self._index)
                kept = reader.decodable()
        except Exception as exc:
            raise VideoDecodeError(self.path, f"{failed}; then {decoder_message(exc)}") from None
        full, before = self._index.timeline, self.num_frames
        if len(kept) == 0 or (reason and len(kept) == full.num_frames and not self._auto and self._backend != "pyav"):
            reader.close()  # nothing decodes; or everything does, and the chosen backend failed
            hint = "no frame decodes" if len(kept) == 0 else 'backend "pyav" or "auto" reads this file'
            raise VideoDecodeError(self.path, f"{failed} ({hint})") from None
        first_stretch = np.array_equal(kept, np.arange(len(kept))) and len(kept) <= self._reader.timeline.num_frames
        if reason is None and first_stretch:
            reader.close()  # the backend in use reads these as they are
        else:
            self._reader.close()
            if self._backend != "pyav":
                log.warning("%s: %s cannot read it (%s); reading with pyav", self.path, self._backend, reason or "damaged")
            self._backend, self._reader = "pyav", reader
            self._kept = None if first_stretch else kept
        if len(kept) == full.num_frames:
            self._timeline = full
            return before != full.num_frames
        lost = np.setdiff1d(np.arange(full.num_frames), kept)
        gaps = merged_spans([*full.gaps, *_runs(lost, full)])
        keys = None if full.keyframes is None else np.flatnonzero(np.isin(kept, full.keyframes))
        self._timeline = Timeline(full.pts_seconds[kept], round(full.end_of(kept[-1]), 6), tuple(gaps), keys)
        log.warning(
            "%s: %d of %d frames do not decode (damaged or cut); using the %d that do; missing: %s",
            self.path, len(lost), full.num_frames, len(kept), spans_text(gaps),
        )
        return True

    def rest(self) -> None:
        """Tell the decoder that no frames will be asked for a while, so it stops decoding ahead
        (decord does, into memory, while idle); the next read may start from a keyframe."""
        with self._lock:
            if self._closed or os.getpid() != self._pid:
                return
            try:
                with STDERR.capture():
                    self._reader.rest()
            except Exception as exc:  # advice only: a decoder that cannot rest reads on as before
                log.debug("%s: the decoder could not rest: %s", self.path, decoder_message(exc))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._reader.close()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Video({self.path!r}, backend={self.backend}, frames={self.num_frames}, "
            f"average_fps={self.average_fps:.3f}, duration={self.duration:.3f}s, size={self.width}x{self.height})"
        )


def _runs(lost: np.ndarray, timeline: Timeline) -> list[tuple[float, float]]:
    """The stretches of time [start, end) of runs of consecutive lost frames."""
    runs = np.split(lost, np.flatnonzero(np.diff(lost) > 1) + 1)
    return [(round(float(timeline.pts_seconds[run[0]]), 6), round(timeline.end_of(run[-1]), 6)) for run in runs]

