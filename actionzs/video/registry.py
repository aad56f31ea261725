"""Backends by name, the order "auto" tries them in, and opening a file with the first that can.

A backend is a `Reader` subclass registered under a name; `open_video(path, name)` constructs it
as `cls(path, strict=False)`, and "auto" as `cls(path, strict=True)` for each backend of the file's
`AUTO_ORDER` in turn until one opens it. Every backend that opens a file FFmpeg can index is held
to the container's `StreamIndex` before it is used (`stream_index.agreed_timeline`). A backend is added from outside the package with
`register_backend`, e.g. `register_backend("pyav", PyAVReader, auto_suffixes=[".mkv"], auto_rank=0)`.
Registering is meant for start-up, before videos are opened from several threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import VideoDecodeError
from .capture import STDERR
from .decord_reader import DecordReader
from .messages import decoder_message, missing_mp4_index
from .opencv_reader import OpenCVReader
from .pyav_reader import PyAVReader
from .reader import Reader
from .stream_index import StreamIndex, agreed_timeline

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"}
)
#: Containers where decord's random access is exact (when it agrees with the container's index).
#: In others (AVI, MKV, ...) it misplaces frames of streams with B-frames (dmlc/decord#195, #252),
#: and of H.264 in AVI with none, so "auto" tries it last there.
DECORD_EXACT_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".3gp"})

#: Every backend by name, in the order `backend_names` lists them.
AVAILABLE_BACKENDS: dict[str, type[Reader]] = {"decord": DecordReader, "pyav": PyAVReader, "opencv": OpenCVReader}

#: The key of `AUTO_ORDER` that stands for every suffix without an order of its own.
OTHER_SUFFIXES = "*"
#: The backends "auto" tries, first to last, by lower-case file suffix (`OTHER_SUFFIXES` for the
#: rest). A file opens with the first that can; a read that fails later switches to the next one
#: after it that can. Still images (`IMAGE_SUFFIXES`) never reach a backend. PyAV comes first
#: everywhere: it decodes only the frames a sampling plan needs (seeking, and dropping unwanted
#: frames no other frame refers to), with 26-57 % less CPU than decord on every benchmark clip and
#: as fast or faster end to end (benchmarks/README.md, decode_less.py).
AUTO_ORDER: dict[str, list[str]] = {
    **{suffix: ["pyav", "decord", "opencv"] for suffix in sorted(DECORD_EXACT_SUFFIXES)},
    OTHER_SUFFIXES: ["pyav", "opencv", "decord"],
}

_RESERVED = ("auto", "image")  # what to try, and what reads still images


def video_suffixes() -> frozenset[str]:
    """The suffixes a folder scan lists as videos: the common containers, and every suffix a
    registered backend was given a place in auto's order for."""
    return VIDEO_SUFFIXES | (AUTO_ORDER.keys() - {OTHER_SUFFIXES})


def backend_names() -> tuple[str, ...]:
    """The names `open_video` accepts: "auto", then each registered backend."""
    return ("auto", *AVAILABLE_BACKENDS)


def register_backend(
    name: str, cls: type[Reader], *, auto_suffixes: Iterable[str] = (), auto_rank: int | None = None
) -> None:
    """Make `cls` the backend called `name` (replacing one of that name, if any).

    "auto" tries it for the files whose suffix is in `auto_suffixes` (`OTHER_SUFFIXES`: every
    suffix without an order of its own; a suffix new to `AUTO_ORDER` starts from that order), at
    place `auto_rank` of each of those orders (0 is first; by default it goes last).
    """
    if name in _RESERVED:
        raise ValueError(f"{name!r} cannot name a backend: {' and '.join(map(repr, _RESERVED))} are reserved")
    if not (isinstance(cls, type) and issubclass(cls, Reader)):
        raise TypeError(f"a backend must be a subclass of actionzs.video.Reader, got {cls!r}")
    AVAILABLE_BACKENDS[name] = cls
    for suffix in auto_suffixes:
        order = AUTO_ORDER.setdefault(suffix.lower(), list(AUTO_ORDER[OTHER_SUFFIXES]))
        if name in order:
            order.remove(name)
        order.insert(len(order) if auto_rank is None else auto_rank, name)


def auto_order(path: str, after: str | None = None) -> list[str]:
    """The backends "auto" tries for `path`, in order; with `after`, those that come after it."""
    order = AUTO_ORDER.get(Path(path).suffix.lower(), AUTO_ORDER[OTHER_SUFFIXES])
    if after is None:
        return list(order)
    return list(order[order.index(after) + 1 :]) if after in order else []


def open_reader(
    path: str, names: Sequence[str], index: StreamIndex | None, *, strict: bool
) -> tuple[str, Reader]:
    """The first of the backends `names` that opens `path` and agrees with its `index` (None:
    FFmpeg could not index it), and its name; when none can, a `VideoDecodeError` with every
    backend's reason. The reader's timeline is then the container's."""
    reasons = []
    for name in names:
        cls = AVAILABLE_BACKENDS.get(name)
        if cls is None:
            reasons.append(f"{name}: not a registered backend")
            continue
        reader = None
        try:
            with STDERR.capture():
                reader = cls(path, strict=strict, index=index) if cls.takes_index else cls(path, strict=strict)
                if index is not None:
                    reader.use_timeline(agreed_timeline(name, reader, index), index.average_fps, index.timed)
                return name, reader
        except VideoDecodeError as exc:
            reasons.append(f"{name}: {exc.reason}")
        except ImportError:
            reasons.append(f"{name}: not installed")
        except Exception as exc:  # decoders raise assorted errors on bad data; all mean "cannot open"
            reasons.append(f"{name}: {decoder_message(exc)}")
        if reader is not None:
            reader.close()
    if missing_mp4_index(path):  # one reason for all: no decoder can read samples it cannot find
        raise VideoDecodeError(
            path, "not a readable video: the MP4 index (moov atom) is missing or cut short: the file is truncated or was never finished"
        )
    raise VideoDecodeError(path, "not a readable video (" + "; ".join(reasons) + ")")
