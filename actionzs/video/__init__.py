"""Open a video (or a still image), read its true metadata and decode exactly the frames asked for.

The truth is what FFmpeg's full decode presents of the container's default video stream: its
frames, in order, at their presentation times. `stream_index` reads that from the packets without
decoding, and every backend is held to it. Backends: PyAV (first: FFmpeg's own decode, exact with
variable frame rates, edit lists, several streams and B-frames in any container, decoding only the
frames a plan needs), decord (next for MP4: fast random access), OpenCV (reads forward, seeks only
where a seek proves exact), and any added with `register_backend`. "auto" tries them in the order
`AUTO_ORDER` gives for the file's suffix. Frames are decoded at the size asked for by the decoder itself (a
`frames.Resize` at full size, then resized as an image processor resizes) and read in bounded
chunks, so memory depends on the chunk, never on the length of the file.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import numpy as np

from ..errors import VideoDecodeError
from .image_reader import IMAGE_SUFFIXES, ImageReader, open_image, too_many_pixels
from .messages import spans_text
from .reader import Reader
from .registry import (
    AUTO_ORDER,
    AVAILABLE_BACKENDS,
    DECORD_EXACT_SUFFIXES,
    OTHER_SUFFIXES,
    VIDEO_SUFFIXES,
    auto_order,
    backend_names,
    open_reader,
    register_backend,
    video_suffixes,
)
from .stream_index import StreamIndex, header_seconds, index_stream
from .video import CHUNK_BYTES, MAX_CHUNK_FRAMES, Video

log = logging.getLogger(__name__)

__all__ = [
    "AUTO_ORDER",
    "AVAILABLE_BACKENDS",
    "CHUNK_BYTES",
    "DECORD_EXACT_SUFFIXES",
    "IMAGE_SUFFIXES",
    "MAX_CHUNK_FRAMES",
    "OTHER_SUFFIXES",
    "VIDEO_SUFFIXES",
    "video_suffixes",
    "Reader",
    "StreamIndex",
    "header_seconds",
    "Video",
    "auto_order",
    "backend_names",
    "image_video",
    "check_path",
    "open_video",
    "register_backend",
]


def check_path(path: str) -> None:
    """That `path` is a file a decoder can be asked to open (a UTF-8 name, a readable, non-empty
    regular file); else a `VideoDecodeError` saying why. The CLI checks its inputs with it before
    any model loads; `open_video` checks again."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # OpenCV crashes the process on such a name, decord refuses it
        raise VideoDecodeError(path, "the file name is not valid UTF-8, which the decoders cannot open; rename the file") from None
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


def open_video(path: str | os.PathLike, backend: str = "auto") -> Video:
    """Open a video file (or a still image, as a one-frame video) and read its true metadata.

    `backend` is one of `backend_names()`: "auto" (the first of the file's `auto_order` that opens
    it exactly), "decord", "pyav", "opencv" or a registered one; a backend that would read other
    frames than the container presents is refused for the file. Raises `VideoDecodeError`
    naming the file and the reason when it cannot be read.
    """
    names = backend_names()
    if backend not in names:
        raise ValueError(f"backend must be one of {', '.join(names)}; got {backend!r}")
    path = os.fspath(path)
    check_path(path)
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return Video(open_image(path), path, "image")
    auto = backend == "auto"
    index = index_stream(path)
    refused = index and too_many_pixels(index.width, index.height, "frames")  # an image bomb named .mp4
    if refused:
        raise VideoDecodeError(path, refused)
    name, reader = open_reader(path, auto_order(path) if auto else [backend], index, strict=auto)
    refused = too_many_pixels(reader.width, reader.height, "frames")  # what FFmpeg could not index
    if refused:
        reader.close()
        raise VideoDecodeError(path, refused)
    video = Video(reader, path, name, auto=auto, index=index)
    said = False
    if index is not None and index.damaged:  # a cut or corrupt packet: find what decodes first
        try:
            said = video.keep_decodable()  # it names the gaps when it drops frames
        except BaseException:
            video.close()
            raise
    if video.timeline.gaps and not said:
        log.warning("%s: a steady stream with no frames at %s (damaged, or frames dropped when recorded)",
                    path, spans_text(video.timeline.gaps))
    if index is not None and index.unaccounted:
        log.warning("%s: its header lists %d frames, %d of them missing from the file (damaged or cut; "
                    "where cannot be told)", path, index.listed, index.unaccounted)
    return video


def image_video(image, name: str = "<image>") -> Video:
    """A PIL image or uint8 array [H, W, 3] as a one-frame video."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (3, 4):
            raise VideoDecodeError(name, f"an image array must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        image = Image.fromarray(image[..., :3])
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a path, PIL image or uint8 array, got {type(image).__name__}")
    return Video(ImageReader(image), name, "image")
