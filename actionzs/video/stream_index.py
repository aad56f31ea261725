"""What the container says of a file's video, read by demuxing its packets (FFmpeg, through PyAV)
and decoding nothing: which stream is the video, how many frames it presents and when.

This is the truth every backend is held to. A full FFmpeg decode presents the default video stream's
frames in presentation order at their presentation times, after the container's edit list; the
packets give the same count and times without decoding them. A backend that finds other frames
(more of them, another stream's, frames it would misorder) is refused for the file, and every
backend that agrees reports the container's times, variable frame rates included.
"""

from __future__ import annotations

import logging
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import VideoDecodeError
from ..sampling import Timeline

log = logging.getLogger(__name__)

#: Container formats whose packets carry presentation times. Others (AVI, raw streams) give each
#: packet a slot at the stream's nominal rate, so their frames are spaced evenly at that rate.
_UNTIMED_FORMATS = frozenset({"avi", "h264", "hevc", "m4v", "mjpeg", "rawvideo", "image2", "png_pipe", "jpeg_pipe"})
#: The MP4 family (FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" demuxer).
MP4_FORMAT = "mov"
#: Frame rates a stream may plausibly claim; past these a header is wrong and times cannot come
#: from it.
MIN_FPS, MAX_FPS = 1e-3, 1000.0


@dataclass(frozen=True, repr=False)
class StreamIndex:
    """The default video stream of a file as its packets describe it.

    `stream` is the stream's position among the file's streams and `video_streams` how many
    (real, not cover pictures) video streams there are. `pts` are the frames' presentation times in
    `time_base` units, in presentation order (discarded by the edit list: not there); `timed` says
    whether they are real (else evenly spaced at `average_fps`). `keyframe_pts` are the keyframes'
    times, `reordered` whether frames are stored out of presentation order (B-frames), `damaged`
    whether demuxing met damage (a corrupt or cut packet): some listed frames may not decode.
    `listed` is the frame count the header states (0: none), which damage or a cut may leave short.
    """

    path: str
    format_name: str
    stream: int
    video_streams: int
    codec: str
    width: int
    height: int
    time_base: Fraction
    pts: np.ndarray
    keyframe_pts: np.ndarray
    timed: bool
    reordered: bool
    timeline: Timeline
    damaged: bool = False
    listed: int = 0

    @property
    def num_frames(self) -> int:
        return self.timeline.num_frames

    @property
    def average_fps(self) -> float:
        return self.num_frames / self.timeline.duration

    @property
    def demuxer(self) -> str:
        """FFmpeg's name for the container format ("mov" for the whole MP4 family, "avi", ...)."""
        return _demuxer(self.format_name)

    @property
    def seekable(self) -> bool:
        """Whether a seek lands where a full decode would have been: every frame has a time of its
        own, and nothing is damaged (past damage, a decoder started at another keyframe conceals
        it with other pictures than a full decode shows). Of the containers without times, AVI
        numbers its packets, and without B-frames (`timed`) that number is each frame's place,
        which its index seeks to and the decoder hands back, as long as the file holds every
        frame its header lists: past a lost chunk, reading on numbers the packets after it one
        lower than a seek by the index does (measured: every frame after the damage wrong). Raw
        streams number nothing."""
        if not self.timed or self.damaged:
            return False
        if self.demuxer == "avi":
            return self.listed == self.num_frames
        return self.demuxer not in _UNTIMED_FORMATS

    @property
    def mp4_family(self) -> bool:
        return self.demuxer == MP4_FORMAT

    @property
    def unaccounted(self) -> int:
        """Frames a container that numbers its frames by position (AVI) lists in its header but
        does not hold: lost to damage or a cut, at times it cannot tell."""
        if self.demuxer not in _UNTIMED_FORMATS:
            return 0  # elsewhere a header's count may include frames an edit list hides
        return max(0, self.listed - self.num_frames)

    def __repr__(self) -> str:
        return (
            f"StreamIndex({self.path!r}, stream={self.stream} of {self.video_streams}, {self.codec}, "
            f"frames={self.num_frames}, timed={self.timed}, reordered={self.reordered})"
        )


def _demuxer(format_name: str) -> str:
    return format_name.split(",")[0]


def default_stream(container):
    """The container's default video stream: the first flagged default, else the first; cover
    pictures (album art) are not video. None when there is none."""
    import av

    attached = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & attached]
    if not videos:
        return None, 0
    flagged = [s for s in videos if s.disposition & av.stream.Disposition.default]
    return (flagged or videos)[0], len(videos)


def index_stream(path: str) -> StreamIndex | None:
    """The file's `StreamIndex`; None when FFmpeg cannot open the file at all (a backend may still
    read it: nothing then holds it to anything). `VideoDecodeError` for a file FFmpeg opens that
    has no video to read: no video stream, or only a cover picture."""
    try:
        import av
    except ImportError:
        return None
    try:
        container = av.open(path, metadata_errors="ignore")
    except Exception as exc:  # not a container FFmpeg knows
        log.debug("%s: FFmpeg cannot open it: %s", path, exc)
        return None
    with container:
        stream, count = default_stream(container)
        if stream is None:
            if container.streams.video:
                raise VideoDecodeError(path, "no video stream: only a cover picture (album art), as in an audio file")
            raise VideoDecodeError(path, "no video stream (audio only, or not a video)")
        codec = stream.codec_context.name or "unknown"
        packets = _packets(container, stream)
        return _index(path, container.format.name, stream, count, codec, packets)


def header_seconds(path: str) -> float:
    """How long the container's header says the file plays, in seconds, read without demuxing
    (for a progress estimate); 0 for a still image or a file FFmpeg cannot open."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as container:
            return max(0.0, float(container.duration or 0) / av.time_base)
    except Exception:  # anything FFmpeg cannot open has no duration to estimate
        return 0.0


@dataclass(frozen=True)
class _Packets:
    """The stream's packets in file order (times in the stream's time base; `NO_TIME` for none);
    those the edit list discards and empty ones (no frame) are left out."""

    pts: np.ndarray
    keys: np.ndarray
    damaged: bool


NO_TIME = np.iinfo(np.int64).min


def _packets(container, stream) -> _Packets:
    pts, keys, damaged = [], [], False
    with _ffmpeg_errors() as complaints:
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:
                    continue
                pts.append(packet.pts if packet.pts is not None else packet.dts)
                keys.append(packet.is_keyframe)
                damaged = damaged or packet.is_corrupt
        except Exception as exc:  # damage or a cut: the packets before it are what the file holds
            log.debug("%s: demuxing stopped after %d packets: %s", container.name, len(pts), exc)
            damaged = True
    if complaints:  # the demuxer or a parser met data it could not make sense of
        log.debug("%s: FFmpeg, demuxing: %s", container.name, complaints[0][2].strip())  # (level, name, text)
        damaged = True
    ticks = np.array([NO_TIME if v is None else v for v in pts], np.int64)
    return _Packets(ticks, np.array(keys, bool), damaged)


_LOGGING_LOCK = threading.Lock()
_LOGGING_USERS = 0
_LOGGING_BEFORE: tuple = (None, False)  # PyAV's log level and the "libav" logger's state, to restore


@contextmanager
def _ffmpeg_errors():
    """The errors FFmpeg reports while this thread demuxes, as (level, name, text). PyAV keeps
    FFmpeg's log off unless asked; it is switched on for the demux alone, and what other threads'
    decoders report meanwhile is dropped, as it would have been. A level the user set is kept."""
    import av.logging

    global _LOGGING_USERS, _LOGGING_BEFORE
    libav = logging.getLogger("libav")
    with _LOGGING_LOCK:
        if _LOGGING_USERS == 0:
            _LOGGING_BEFORE = av.logging.get_level(), libav.disabled
            if _LOGGING_BEFORE[0] is None:
                av.logging.set_level(av.logging.ERROR)
                libav.disabled = True
        _LOGGING_USERS += 1
    try:
        with av.logging.Capture(local=True) as logs:
            yield logs
    finally:
        with _LOGGING_LOCK:
            _LOGGING_USERS -= 1
            if _LOGGING_USERS == 0 and _LOGGING_BEFORE[0] is None:
                av.logging.set_level(None)
                libav.disabled = _LOGGING_BEFORE[1]


def _index(path, format_name, stream, count, codec, packets: _Packets) -> StreamIndex:
    pts, keys = packets.pts, packets.keys
    if len(pts) == 0:
        raise VideoDecodeError(path, "no decodable video frames")
    time_base = stream.time_base or Fraction(1, 1)
    # Times are real where every packet has one of its own. A container without times of its own
    # (AVI) numbers its packets in order, which is their time only in a stream without B-frames.
    reordered = bool(np.any(np.diff(pts) < 0))
    untimed = np.any(pts == NO_TIME) or len(np.unique(pts)) < len(pts)
    rate = None
    if _demuxer(format_name) in _UNTIMED_FORMATS:
        rate = _nominal_fps(path, stream)  # packets are numbered at the header's rate: it must be sane
        if reordered or stream.codec_context.has_b_frames:
            untimed, reordered = True, True
    if not untimed:
        order = np.argsort(pts, kind="stable")
        seconds = (pts[order] - pts[order][0]) * float(time_base)
        if len(seconds) > 1 and not np.all(np.diff(np.round(seconds, 6)) > 0):
            raise VideoDecodeError(path, "frames less than a microsecond apart: the stream's times cannot be right")
        seconds = np.round(seconds, 6)
        keyframes = np.flatnonzero(keys[order])
        timeline = Timeline(seconds, _duration(seconds, stream), _skipped(seconds), keyframes)
        keyframe_pts = np.sort(pts[keys])
        presented = pts[order]
    else:
        # Packets are counted in file order, which is the frames' order only without B-frames.
        keyframes = None if reordered else np.flatnonzero(keys)
        steady = Timeline.constant_rate(len(pts), rate or _nominal_fps(path, stream))
        timeline = Timeline(steady.pts_seconds, steady.duration, keyframes=keyframes)
        presented = np.arange(len(pts), dtype=np.int64)
        keyframe_pts = np.flatnonzero(keys).astype(np.int64)  # frame numbers
        time_base = Fraction(1, 1)
    return StreamIndex(
        path, format_name, stream.index, count, codec, stream.codec_context.width, stream.codec_context.height,
        time_base, presented, keyframe_pts, not untimed, reordered, timeline, packets.damaged, int(stream.frames or 0),
    )


#: A stream is steady when this share of its frame intervals lies within half an interval of the
#: typical one; in a steady stream a step of over 1.5 intervals means frames are missing.
STEADY_SHARE = 0.95


def _skipped(seconds: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The stretches a steady stream has no frames for (damage the demuxer skipped, or frames a
    recorder dropped), from the frame after the last one before to the first one after."""
    if len(seconds) < 10:
        return ()
    steps = np.diff(seconds)
    typical = float(np.median(steps))
    steady = np.mean(np.abs(steps - typical) <= 0.5 * typical) >= STEADY_SHARE
    if not (typical > 0 and steady):
        return ()  # a variable frame rate: long steps are its own
    jumps = np.flatnonzero(steps > 1.5 * typical)
    return tuple((round(float(seconds[i] + typical), 6), float(seconds[i + 1])) for i in jumps)


def _duration(seconds: np.ndarray, stream) -> float:
    """From the first frame's start to the last frame's end: the last frame lasts as long as the
    frames before it typically did (their median gap), else the nominal frame time. (Packet
    durations are no help: in decoding order they are not the frames' display times.)"""
    gaps = np.diff(seconds)
    typical = float(np.median(gaps[gaps > 0])) if np.any(gaps > 0) else 0.0
    if typical > 0:
        frame_time = typical
    else:
        rate = stream.average_rate or stream.base_rate
        frame_time = 1 / float(rate) if rate and MIN_FPS <= float(rate) <= MAX_FPS else 0.04
    return round(float(seconds[-1]) + frame_time, 6)


def _nominal_fps(path: str, stream) -> float:
    """The rate frames of a container without times are shown at, from its header."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else math.nan
    if not MIN_FPS <= fps <= MAX_FPS:
        raise VideoDecodeError(
            path, f"the stream claims {fps:g} frames per second and carries no frame times, so its times are unknown"
        )
    return fps


def agreed_timeline(name: str, reader, index: StreamIndex) -> Timeline:
    """The timeline `reader` (backend `name`) reads the file by: the container's, when the reader
    finds the same frames; `VideoDecodeError` when it would read others."""
    own = reader.timeline.num_frames
    reason = reader.cannot_read(index)
    if reason is None and index.video_streams > 1 and not reader.chooses_stream:
        reason = f"the file has {index.video_streams} video streams and {name} cannot choose the default one"
    if reason is None and own > index.num_frames:
        reason = f"{name} finds {own} frames where the container presents {index.num_frames} (an edit list?)"
    if reason is None and reader.container_times and own > 1:
        theirs = index.timeline.pts_seconds[:own]
        tolerance = 0.5 / max(index.average_fps, reader.average_fps)
        worst = float(np.max(np.abs(reader.timeline.pts_seconds - theirs)))
        if worst > tolerance:
            reason = f"{name}'s frame times differ from the container's by up to {worst:.3g} s"
    if reason is not None:
        raise VideoDecodeError(index.path, f"{reason}; it would read wrong frames")
    if own < index.num_frames:  # frames past the end do not decode: a cut file
        log.info("%s: %d of the %d frames the container lists decode", index.path, own, index.num_frames)
        keys = index.timeline.keyframes
        kept = None if keys is None else keys[keys < own]
        return Timeline(index.timeline.pts_seconds[:own], index.timeline.end_of(own - 1), (), kept)
    return index.timeline
