"""Open a video (or a still image), read its true metadata and decode exactly the frames asked for.

Backends: decord (default: it indexes every packet on open, so counts and timestamps are real) and
OpenCV (fallback and alternative: reads forward, seeks only where a seek proves exact). Frames are
decoded at the size asked for by the decoder itself and read in bounded chunks, so memory depends on
the chunk, never on the length of the file.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import FrameIndexError, VideoDecodeError
from .frames import FrameBatch, FrameSize, resize_dims
from .sampling import Timeline

log = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "opencv")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"}
)
#: Containers where decord's random access is exact. In others (AVI, MKV, ...) it misplaces frames
#: of streams with B-frames (dmlc/decord#195, #252), so "auto" tries OpenCV first there.
DECORD_EXACT_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".3gp"})
#: Upper bound on the decoded bytes held by one chunk (frames at the requested size).
CHUNK_BYTES = 64 * 2**20
MAX_CHUNK_FRAMES = 32


class _Reader(Protocol):
    """What a backend provides; `Video` adds validation, ordering, chunking and locking."""

    name: str
    width: int
    height: int
    fps: float
    timeline: Timeline

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        """Frames at the sorted, unique `indices`, uint8 RGB [N, H, W, 3] at `size`."""

    def rest(self) -> None:
        """Nobody will read for a while: stop any decoding ahead (the next read may cost more)."""

    def close(self) -> None: ...


def _stream_pts(starts: np.ndarray, fps: float) -> np.ndarray:
    """Frame times from the container, from 0, when they are sane; else `_InconsistentTiming`.

    Sane means finite, strictly increasing and spanning roughly what the frame rate implies; some
    AVI files carry garbage here (decord reports -3.8e17 s for many frames of such files).
    """
    pts = np.asarray(starts, np.float64)
    nominal = np.arange(len(pts)) / fps
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


_DECODER_CLUES = {
    "cannot find video stream": "no video stream (audio only, or not a video)",
    "Error reading": "not a container the decoder recognises",
    "Failed to measure duration": "broken stream metadata (no duration or frame count)",
    "av_read_frame failed": "the file ends early or is damaged (truncated?)",
}


def _decoder_message(exc: BaseException) -> str:
    """A decoder's error as one short line, without its source-file prefix."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    message = lines[-1] if lines else type(exc).__name__
    message = re.sub(r"^\[[\d:]+\]\s+\S+:\d+:\s*", "", message)
    for clue, meaning in _DECODER_CLUES.items():
        if clue in message:
            return meaning
    return message[:200]


def _missing_mp4_index(path: str, said: str) -> bool:
    """An MP4/MOV file (it starts with an `ftyp` box) whose index the demuxer could not find: a
    recording cut off before it was finished. Any other file named .mp4 gets the same complaint."""
    if "moov atom not found" not in said:
        return False
    with open(path, "rb") as handle:
        return handle.read(12)[4:8] == b"ftyp"


class _StderrSink:
    """Decoder libraries print warnings straight to file descriptor 2 ("moov atom not found", source
    paths and line numbers); while any decoder call runs, fd 2 goes to one temporary file instead of
    the user's terminal. Reference-counted, so decoders in several threads still run at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._file = None
        self._saved = -1

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """The list yielded holds, once the block ends, what was printed meanwhile (by this call,
        or by another decoder running at the same time); it also goes to the debug log."""
        with self._lock:
            if not self._users:
                sys.stderr.flush()
                self._file = tempfile.TemporaryFile()
                self._saved = os.dup(2)
                os.dup2(self._file.fileno(), 2)
            self._users += 1
            fd = self._file.fileno()
            start = os.lseek(fd, 0, os.SEEK_END)
        said: list[str] = []
        try:
            yield said
        finally:
            with self._lock:
                text = os.pread(fd, os.lseek(fd, 0, os.SEEK_END) - start, start).decode("utf-8", "replace").strip()
                self._users -= 1
                if not self._users:
                    self._restore()
            if text:
                said.append(text)
                log.debug("decoder output: %s", text[-2000:])

    def _restore(self) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()
        self._file, self._saved = None, -1

    def after_fork_in_child(self) -> None:
        """A thread of the parent may have been capturing at the fork: give the child its stderr back."""
        if self._users:
            self._restore()
        self.__init__()


_STDERR = _StderrSink()


class _DecordReader:
    """decord: indexes every packet on open, so counts and times are real; `strict` refuses files
    whose frame times are garbage (decord returns wrong frames for those)."""

    name = "decord"

    def __init__(self, path: str, strict: bool = False):
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
        fps = float(reader.get_avg_fps())
        if not fps > 0:
            raise VideoDecodeError(path, f"the stream reports a frame rate of {fps}")
        self.fps = fps
        spans = reader.get_frame_timestamp(np.arange(num_frames))
        try:
            pts = _stream_pts(spans[:, 0], fps)
        except _InconsistentTiming as exc:
            if strict:
                raise VideoDecodeError(path, f"{exc}; decord misorders frames in such files") from None
            log.debug("%s: %s; using constant-rate times", path, exc)
            pts = np.arange(num_frames) / fps
        last = float(spans[-1, 1] - spans[-1, 0])
        frame_time = last if 0 < last < 10 / fps else 1 / fps
        self.timeline = Timeline(pts, round(float(pts[-1] + frame_time), 6))
        self._readers[(self.height, self.width)] = reader

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


class _OpenCVReader:
    """Reads forward with `grab`, retrieving only wanted frames; seeks only where it verifies."""

    name = "opencv"
    #: Jump ahead by seeking when the next wanted frame is more than this many frames away.
    SEEK_GAP = 48

    def __init__(self, path: str):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own warnings would flood stderr
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        import cv2

        self._cv2 = cv2
        self._path = path
        self._cap = None
        self._pos = 0
        self._seek_ok = True
        cap = self._open()
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps > 0 or not np.isfinite(fps):
            raise VideoDecodeError(path, f"the stream reports a frame rate of {fps}")
        self.fps = float(fps)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        num_frames = self._true_frame_count(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        if num_frames == 0:
            raise VideoDecodeError(path, "no decodable video frames")
        self.timeline = Timeline.constant_rate(num_frames, self.fps)

    def _open(self):
        if self._cap is not None:
            self._cap.release()
        cap = self._cv2.VideoCapture(self._path, self._cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise VideoDecodeError(self._path, "not a readable video (OpenCV could not open it)")
        self._cap, self._pos = cap, 0
        return cap

    def _frame_time_matches(self, index: int) -> bool:
        seconds = self._cap.get(self._cv2.CAP_PROP_POS_MSEC) / 1000
        return abs(seconds - index / self.fps) < 0.5 / self.fps

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
        if self._seek_ok and index - self._pos > self.SEEK_GAP and self._seek(index):
            return
        while self._pos <= index:
            if not self._cap.grab():
                raise FrameIndexError(self._path, f"frame {index} does not decode (stream ended at {self._pos})")
            self._pos += 1

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

    def rest(self) -> None:
        pass  # OpenCV decodes only when asked

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _ImageReader:
    """A still image as a one-frame video; resizing uses PIL bicubic, as transformers' processors do."""

    name = "image"
    fps = 1.0

    def __init__(self, image, path: str):
        from PIL import Image

        self._image = image.convert("RGB")
        self._path = path
        self._resample = Image.Resampling.BICUBIC
        self.width, self.height = self._image.size
        self.timeline = Timeline.constant_rate(1, self.fps)

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        height, width = resize_dims(self.height, self.width, size)
        image = self._image if (width, height) == self._image.size else self._image.resize((width, height), self._resample)
        return np.repeat(np.asarray(image)[None], len(indices), axis=0)

    def rest(self) -> None:
        pass

    def close(self) -> None:
        pass


def _check_path(path: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        reason = "broken symbolic link" if os.path.islink(path) else "no such file"
        raise VideoDecodeError(path, reason) from None
    except OSError as exc:
        raise VideoDecodeError(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise VideoDecodeError(path, "is a directory, not a video file")
    if not stat.S_ISREG(info.st_mode):
        raise VideoDecodeError(path, "is not a regular file")
    if info.st_size == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoDecodeError(path, "permission denied")


def _open_image(path: str) -> _ImageReader:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return _ImageReader(image, path)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise VideoDecodeError(path, f"not a readable image ({exc})") from None


def _open_reader(path: str, backend: str) -> _Reader:
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return _open_image(path)
    if backend == "auto":
        exact = Path(path).suffix.lower() in DECORD_EXACT_SUFFIXES
        order = ("decord", "opencv") if exact else ("opencv", "decord")
    else:
        order = (backend,)
    reasons = []
    for name in order:
        said: list[str] = []
        try:
            with _STDERR.capture() as said:
                return _DecordReader(path, strict=backend == "auto") if name == "decord" else _OpenCVReader(path)
        except VideoDecodeError as exc:
            reasons.append(f"{name}: {exc.reason}")
        except ImportError:
            reasons.append(f"{name}: not installed")
        except Exception as exc:  # decoders raise assorted errors on bad data; all mean "cannot open"
            if _missing_mp4_index(path, " ".join(said)):
                reasons.append(f"{name}: the MP4 index (moov atom) is missing: the file is truncated or was never finished")
            else:
                reasons.append(f"{name}: {_decoder_message(exc)}")
    raise VideoDecodeError(path, "not a readable video (" + "; ".join(reasons) + ")")


#: Videos open in this process, so that a forked child can take them over (see `_after_fork_in_child`).
_LIVE_VIDEOS: weakref.WeakSet = weakref.WeakSet()
#: Decoders a forked child inherited from its parent. Freeing one waits for decoder threads that
#: exist only in the parent, so the child would hang, even when `gc` frees a forgotten Video.
_INHERITED_READERS: list = []


def _after_fork_in_child() -> None:
    """Locks another thread of the parent held at the fork stay held forever in the child: take
    fresh ones. Pin every inherited decoder; each Video opens its own on its next read."""
    _STDERR.after_fork_in_child()
    for video in list(_LIVE_VIDEOS):
        _INHERITED_READERS.append(video._reader)
        video._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Video:
    """An open video: true metadata, and exact frames by index. Use `open_video` to make one.

    One `Video` serialises its own reads with a lock and reopens its decoder in a forked child, so a
    decoder is never shared between threads or processes; for parallel work open one per worker.
    """

    def __init__(self, reader: _Reader, path: str, backend: str):
        self._reader = reader
        self._requested_backend = backend
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        self.path = path
        _LIVE_VIDEOS.add(self)

    @property
    def backend(self) -> str:
        """The backend actually in use: "decord", "opencv" or "image"."""
        return self._reader.name

    @property
    def timeline(self) -> Timeline:
        return self._reader.timeline

    @property
    def num_frames(self) -> int:
        return self._reader.timeline.num_frames

    @property
    def fps(self) -> float:
        return self._reader.fps

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        return self._reader.timeline.duration

    @property
    def width(self) -> int:
        return self._reader.width

    @property
    def height(self) -> int:
        return self._reader.height

    def info(self) -> dict:
        """Metadata as a plain dict (what `actionzs probe --json` prints)."""
        return {
            "path": self.path,
            "backend": self.backend,
            "num_frames": self.num_frames,
            "fps": round(self.fps, 6),
            "duration": round(self.duration, 6),
            "width": self.width,
            "height": self.height,
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
        height, width = resize_dims(self.height, self.width, size)
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
        with self._lock:
            if self._closed:
                raise VideoDecodeError(self.path, "the video was closed; open it again to read frames")
            if os.getpid() != self._pid and self._reader.name != "image":  # forked: use a decoder of our own
                self._reader = _open_reader(self.path, self._reader.name)
                self._pid = os.getpid()
            try:
                with _STDERR.capture():
                    return self._reader.read(indices, size)
            except FrameIndexError:
                raise
            except Exception as exc:
                if self._requested_backend != "auto" or self._reader.name != "decord":
                    raise VideoDecodeError(self.path, f"decoding failed: {_decoder_message(exc)}") from None
                log.warning("%s: decord failed while reading (%s); switching to OpenCV", self.path, _decoder_message(exc))
                self._reader = self._fallback_reader()
                with _STDERR.capture():
                    return self._reader.read(indices, size)

    def _fallback_reader(self) -> _Reader:
        try:
            with _STDERR.capture():
                reader = _OpenCVReader(self.path)
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(self.path, f"decoding failed: {_decoder_message(exc)}") from None
        if reader.timeline.num_frames < self.num_frames:
            log.warning("%s: only %d of %d frames decode with OpenCV", self.path, reader.timeline.num_frames, self.num_frames)
        return reader

    def rest(self) -> None:
        """Tell the decoder that no frames will be asked for a while, so it stops decoding ahead
        (decord does, into memory, while idle); the next read may start from a keyframe."""
        with self._lock:
            if self._closed or os.getpid() != self._pid:
                return
            try:
                with _STDERR.capture():
                    self._reader.rest()
            except Exception as exc:  # advice only: a decoder that cannot rest reads on as before
                log.debug("%s: the decoder could not rest: %s", self.path, _decoder_message(exc))

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
            f"Video({self.path!r}, backend={self.backend}, frames={self.num_frames}, fps={self.fps:.3f}, "
            f"duration={self.duration:.3f}s, size={self.width}x{self.height})"
        )


def open_video(path: str | os.PathLike, backend: str = "auto") -> Video:
    """Open a video file (or a still image, as a one-frame video) and read its true metadata.

    `backend` is "auto" (decord, else OpenCV), "decord" or "opencv". Raises `VideoDecodeError`
    naming the file and the reason when it cannot be read.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    path = os.fspath(path)
    _check_path(path)
    return Video(_open_reader(path, backend), path, backend)


def image_video(image, name: str = "<image>") -> Video:
    """A PIL image or uint8 array [H, W, 3] as a one-frame video."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (3, 4):
            raise VideoDecodeError(name, f"an image array must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        image = Image.fromarray(image[..., :3])
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a path, PIL image or uint8 array, got {type(image).__name__}")
    return Video(_ImageReader(image, name), name, "image")
