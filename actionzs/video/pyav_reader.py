"""The PyAV backend: FFmpeg's own decode of the container's default stream, frames placed by time.

It reads what a full FFmpeg decode presents, so it is exact where other backends are not: variable
frame rates, edit lists, several video streams, B-frames in any container, codecs the other
backends lack (AV1). Each decoded frame is placed by its presentation time among the container's
(`StreamIndex`), so a seek that lands elsewhere, or a frame that does not decode, can never hand out
a neighbour. It seeks to the keyframe before a wanted frame when that skips decoding, and lets
the decoder drop the frames no other frame refers to unless they are wanted (FFmpeg's
`skip_frame`), which changes no frame it gives: it only leaves out pictures nothing is built on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from ..errors import VideoDecodeError
from ..frames import FrameSize, resize_dims
from .reader import Reader
from .stream_index import StreamIndex, index_stream

log = logging.getLogger(__name__)

#: Seeks tried, each to an earlier keyframe, before decoding from the start instead.
SEEK_TRIES = 3
#: Frames decoded past a wanted one before it counts as lost. Past damage a decoder can give
#: frames out of order; H.264 and HEVC reorder at most 16 frames.
REORDER_DEPTH = 16
#: Codecs whose decoder drops a frame at skip_frame "NONREF" only when no later frame can refer to
#: it (H.264's nal_ref_idc 0, the B-pictures of MPEG-1/2/4 Part 2). HEVC is not among them: its
#: "non-reference" pictures are so only within their temporal sub-layer, and higher ones may use them.
SKIPPING_CODECS = frozenset({"h264", "mpeg4", "mpeg2video", "mpeg1video"})


class PyAVReader(Reader):
    """Decodes the default video stream with FFmpeg; frames by presentation time, never guessed."""

    chooses_stream = True
    takes_index = True

    def __init__(
        self, path: str, *, strict: bool = False, index: StreamIndex | None = None, skip_unwanted: bool = True
    ):
        """`skip_unwanted=False` decodes every frame on the way to a wanted one (to measure what
        skipping saves; the frames given are the same)."""
        import av

        self._av = av
        self._path = path
        index = index or index_stream(path)
        if index is None:
            raise VideoDecodeError(path, "FFmpeg cannot open it")
        try:
            av.codec.Codec(index.codec, "r")
        except Exception:
            raise VideoDecodeError(path, f"{index.codec} video, which this FFmpeg cannot decode") from None
        self._index = index
        # Skipping needs packets placed by their own times: it is off where frames are counted
        # (untimed containers) and past damage (where a decoder's concealment may differ).
        self._plan = _Plan(skip_unwanted and index.seekable and index.codec in SKIPPING_CODECS)
        #: Frames given out by `read`; with `frames_decoded`, what each one cost.
        self.frames_delivered = 0
        self.timeline = index.timeline
        self.average_fps = index.average_fps
        self._container = None
        self._frames: Iterator | None = None
        self._pos = -1  # the last frame the decoder gave (its index), -1 before the first
        first = self._restart()
        self._rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360 // 90
        width, height = first.width, first.height
        self.width, self.height = (height, width) if self._rotation % 2 else (width, height)

    def _restart(self):
        """Decode from the start again; the first frame, which is frame 0."""
        if self._container is not None:
            self._container.close()
        self._container = self._av.open(self._path, metadata_errors="ignore")
        self._container.streams[self._index.stream].codec_context.thread_count = 1  # see `_decode`
        self._damage = _Damage()
        self._frames, self._pos, self._sought = self._decode(), -1, False
        self._ahead: dict = {}  # frames decoded past the one wanted, by index (only after damage)
        try:
            first = next(self._frames)
        except StopIteration:
            raise VideoDecodeError(self._path, "no decodable video frames") from None
        self._pending = first
        return first

    def _decode(self) -> Iterator:
        # Not a generator method: one would hold the reader, and a reader in a reference cycle is
        # freed by `gc` at any moment, in a forked child too. PyAV's containers are in cycles of
        # their own (container <-> stream): one decoding thread, so that freeing a codec there
        # never waits for threads that live only in the parent.
        stream = self._container.streams[self._index.stream]
        return _decoded(self._av, self._container, stream, self._damage, self._plan)

    @property
    def frames_decoded(self) -> int:
        """Frames the decoder has made so far (frames it skipped are not among them)."""
        return self._plan.decoded

    def _place(self, frame, counted: int) -> int | None:
        """The index of a decoded frame: by its time among the container's, or (a stream without
        times) by how many came before it; None for a frame the container does not present."""
        if not self._index.timed:
            return None if self._damage.seen else counted
        pts = frame.pts
        if pts is None:
            return None
        at = int(np.searchsorted(self._index.pts, pts))
        return at if at < len(self._index.pts) and self._index.pts[at] == pts else None

    def _next(self):
        """The next placed frame and its index, or (None, None) at the end of the stream."""
        while True:
            if self._pending is not None:
                frame, self._pending = self._pending, None
            else:
                frame = next(self._frames, None)
                if frame is None:
                    return None, None
            where = self._place(frame, self._pos + 1)
            if where is not None:
                return frame, where

    def _seek(self, index: int) -> None:
        """Put the decoder before frame `index` by the latest keyframe at or before it, or rewind."""
        keys = self._index.keyframe_pts
        if self._index.seekable and len(keys):
            target = self._index.pts[index]
            before = keys[keys <= target]
            stream = self._container.streams[self._index.stream]
            for key in before[::-1][:SEEK_TRIES]:
                try:
                    self._container.seek(int(key), stream=stream, backward=True, any_frame=False)
                except self._av.error.FFmpegError:
                    break
                stream.codec_context.flush_buffers()
                self._frames, self._pending, self._ahead = self._decode(), None, {}
                frame, where = self._next()
                if where is not None and where <= index:
                    self._pending, self._pos, self._sought = frame, where - 1, True
                    return
        self._restart()

    def _frame(self, index: int):
        """Decoded frame `index`; `VideoDecodeError` when it does not decode (`Video` has checked
        that the container presents it, so a frame that never comes is damage, not the end). A
        frame missed after a seek is decoded once more from the start, as a full decode would."""
        try:
            return self._decode_to(index)
        except VideoDecodeError:
            if not self._sought:
                raise
        self._restart()
        return self._decode_to(index)

    def _decode_to(self, index: int):
        if index in self._ahead:
            return self._ahead.pop(index)
        keys = self._index.keyframe_pts
        if index <= self._pos:
            self._seek(index)
        elif self._index.seekable and len(keys) and self._pos >= 0:
            key = keys[keys <= self._index.pts[index]]
            if len(key) and key[-1] > self._index.pts[self._pos]:
                self._seek(index)  # a keyframe lies between: start there instead of decoding through
        self._ahead = {i: f for i, f in self._ahead.items() if i > index}
        while True:
            frame, where = self._next()
            if where is None:
                raise VideoDecodeError(self._path, f"frame {index} does not decode (the stream ends before it)")
            self._pos = max(self._pos, where)
            if where == index:
                return frame
            if where > index:
                self._ahead[where] = frame
                if len(self._ahead) > REORDER_DEPTH:
                    raise VideoDecodeError(self._path, f"frame {index} does not decode (damaged data)")

    def decodable(self) -> np.ndarray:
        """The indices of the frames that really decode: one full decode from the start, with no
        frame converted (what a damaged file is left with)."""
        self._restart()
        found = []
        while True:
            frame, where = self._next()
            if where is None:
                break
            found.append(where)
            self._pos = max(self._pos, where)
        self._restart()
        return np.unique(np.array(found, np.int64))

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        height, width = resize_dims(self.height, self.width, size)
        decode_h, decode_w = (width, height) if self._rotation % 2 else (height, width)
        out = np.empty((len(indices), height, width, 3), np.uint8)
        self._plan.want(self._index.pts[indices] if len(indices) else ())
        try:
            for slot, index in enumerate(indices.tolist()):
                frame = self._frame(index)
                rgb = frame.to_ndarray(format="rgb24", width=decode_w, height=decode_h, interpolation="AREA")
                out[slot] = np.rot90(rgb, self._rotation) if self._rotation else rgb
                self.frames_delivered += 1
        finally:
            self._plan.want(())
        return out

    def close(self) -> None:
        self._frames = None
        if self._container is not None:
            self._container.close()
            self._container = None


class _Damage:
    """Whether a packet failed to decode since decoding (re)started."""

    seen = False


class _Plan:
    """The frames the current read wants, shared with the decoding generator (which must not hold
    the reader), and how many frames the decoder has made.

    A packet is decoded in full when its frame is wanted or lies past the last wanted one (a later
    read may want it, and the decoder may take packets a few frames ahead of what it gives); the
    others may be dropped when nothing refers to them. Any frame dropped so lies before the last
    frame read, so asking for it later goes back through a seek, as asking for any earlier frame does.
    """

    def __init__(self, skipping: bool):
        self.skipping = skipping
        self.wanted: frozenset[int] = frozenset()
        self.last = -(2**63)  # the last wanted pts; packets past it are decoded in full
        self.decoded = 0

    def want(self, pts) -> None:
        """Plan for the frames at `pts` (container times); none: decode every frame."""
        self.wanted = frozenset(int(t) for t in pts)
        self.last = max(self.wanted, default=-(2**63))

    def droppable(self, pts: int | None) -> bool:
        return self.skipping and pts is not None and pts < self.last and pts not in self.wanted


def _decoded(av, container, stream, damage: _Damage, plan: _Plan) -> Iterator:
    """The stream's frames in presentation order; a packet that does not decode is skipped, and
    one the plan can do without is left to the decoder to drop if nothing refers to it."""
    context, skip = stream.codec_context, None  # the context may keep a setting from before a seek
    try:
        for packet in container.demux(stream):
            pts = packet.pts if packet.pts is not None else packet.dts  # as the index has it
            needed = "NONREF" if plan.droppable(pts) else "DEFAULT"
            if needed != skip:
                context.skip_frame = skip = needed
            try:
                frames = packet.decode()
                plan.decoded += len(frames)
                yield from frames
            except av.error.FFmpegError as exc:
                log.debug("%s: a packet does not decode: %s", container.name, exc)
                damage.seen = True
    except av.error.FFmpegError as exc:  # demuxing stopped: damage or a cut
        log.debug("%s: demuxing stopped: %s", container.name, exc)
