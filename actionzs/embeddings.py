"""Embeddings with their timestamps: the storable result of the expensive stage.

Scoring a new label set, re-windowing or indexing a library later needs only these, never the
video again. `save`/`load` use a single .npz file, written atomically. `load` takes a file as
untrusted input: nothing in it is unpickled, and what its arrays may inflate to is checked before
any is read (see `MAX_INFLATION`), so a zip bomb is refused instead of filling the memory.
"""

from __future__ import annotations

import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .atomic import atomic_file
from .errors import InvalidInputError

#: How many times its size on disk a stored file's arrays may inflate to. actionzs stores them
#: uncompressed (1x), and float vectors barely deflate if someone recompresses them (about 1.1x,
#: 2x for vectors from bfloat16 models), while a zip bomb inflates about 1,000x.
MAX_INFLATION = 16
#: Whatever its ratio, a file may inflate to this much: small files are mostly metadata, which
#: deflates well, and 64 MiB harms no one.
SMALL_INFLATED = 64 * 2**20
#: Which .npy format versions are read: numpy writes 1.0, and 2.0 for headers over 64 KiB.
_NPY_VERSIONS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
#: The metadata fields' types, checked on load.
_META_TYPES = {
    "duration": (int, float), "model": str, "source": str, "sampling": dict, "fingerprint": (str, type(None)),
    "gaps": list,
}


class StoredEmbeddings:
    """Embeddings as stored: save/load of a dataclass of arrays (`_arrays`) and JSON-able metadata (`_meta`)."""

    kind: ClassVar[str]
    _arrays: ClassVar[tuple[str, ...]]
    _meta: ClassVar[tuple[str, ...]]

    def save(self, path: str | os.PathLike) -> None:
        """Write one .npz file atomically (no pickled objects inside)."""
        meta = {"kind": self.kind, **{k: getattr(self, k) for k in self._meta}}
        with atomic_file(path, "wb") as handle:
            np.savez(handle, **{k: getattr(self, k) for k in self._arrays}, meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Read a file written by `save`; anything else (not a zip, truncated, a zip bomb, arrays of
        the wrong kind) is an `InvalidInputError` naming the file and the reason."""
        path = os.fspath(path)
        arrays = read_npz(path, ("meta", *cls._arrays))
        if "meta" not in arrays:
            raise InvalidInputError(f"{path}: has no 'meta' array, so it is not embeddings saved by actionzs")
        meta = _metadata(path, arrays.pop("meta"))
        kind = meta.pop("kind", None)
        if kind != cls.kind:
            raise InvalidInputError(f"{path}: holds {kind!r} embeddings, not {cls.kind!r}")
        unknown = set(meta) - set(cls._meta)
        if unknown:
            raise InvalidInputError(f"{path}: unknown fields {', '.join(sorted(unknown))} (made by a newer actionzs?)")
        missing = [name for name in cls._arrays if name not in arrays]
        if missing:
            raise InvalidInputError(f"{path}: has no {', '.join(map(repr, missing))} array")
        for name, array in arrays.items():
            if array.dtype.kind not in "fiu":
                raise InvalidInputError(f"{path}: the {name} array holds {array.dtype}, not numbers")
        try:
            return cls(**arrays, **meta)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{path}: {exc}") from None


def read_npz(path: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `names` of the .npz file at `path` (those it has), read without unpickling anything and only
    after the sizes they declare are found plausible: at most `MAX_INFLATION` times the file's size
    on disk (or `SMALL_INFLATED`), each header agreeing with its declared size. Reading is bounded
    by the declared sizes, so a member that inflates past its own is cut off and refused."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise InvalidInputError(f"{path}: not a regular file")
        archive = zipfile.ZipFile(path)
    except InvalidInputError:
        raise
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except PermissionError:
        raise InvalidInputError(f"{path}: permission denied") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InvalidInputError(f"{path}: not stored embeddings: not a .npz (zip) archive, or a truncated one ({exc})") from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    with archive:
        stored = set(archive.namelist())
        members = {name: archive.getinfo(f"{name}.npy") for name in names if f"{name}.npy" in stored}
        declared = sum(m.file_size for m in members.values())
        allowed = max(SMALL_INFLATED, MAX_INFLATION * info.st_size)
        if declared > allowed:
            raise InvalidInputError(
                f"{path}: its arrays would inflate to {declared:,} bytes from {info.st_size:,} on disk, more than the "
                f"{allowed:,} allowed ({MAX_INFLATION}x the file's size, or {SMALL_INFLATED:,}); not reading a likely zip bomb"
            )
        return {name: _read_member(path, archive, member) for name, member in members.items()}


def _read_member(path: str, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray:
    where = f"{path}: {member.filename}"
    try:
        with archive.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            if version not in _NPY_VERSIONS:
                raise InvalidInputError(f"{where}: .npy format version {version[0]}.{version[1]} is not read")
            shape, _, dtype = _NPY_VERSIONS[version](stream)
            if dtype.hasobject:
                raise InvalidInputError(f"{where}: holds Python objects, which are never unpickled")
            size = math.prod(shape) * dtype.itemsize
            if stream.tell() + size != member.file_size:
                raise InvalidInputError(
                    f"{where}: its header describes {size:,} bytes of data, but the archive declares "
                    f"{member.file_size - stream.tell():,}"
                )
            stream.seek(0)
            array = np.lib.format.read_array(stream, allow_pickle=False)
            if stream.read(1):  # also makes zipfile check the CRC of all it read
                raise InvalidInputError(f"{where}: holds more data than its header describes")
            return array
    except InvalidInputError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, RuntimeError, NotImplementedError) as exc:
        raise InvalidInputError(f"{where}: damaged or not an array ({exc})") from None


def _metadata(path: str, array: np.ndarray) -> dict:
    """The JSON object stored as the `meta` array, with each field of the expected type."""
    if array.ndim != 0 or array.dtype.kind != "U":
        raise InvalidInputError(f"{path}: the meta array is not a JSON text")
    try:
        meta = json.loads(str(array[()]))
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{path}: the meta array is not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{path}: the meta array is not a JSON object")
    for name, kind in _META_TYPES.items():
        if name in meta and (not isinstance(meta[name], kind) or isinstance(meta[name], bool)):
            raise InvalidInputError(f"{path}: the {name} field is {type(meta[name]).__name__}, not {_type_names(kind)}")
    duration = meta.get("duration")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise InvalidInputError(f"{path}: the duration {duration!r} is not a positive number of seconds")
    for gap in meta.get("gaps", []):
        if not (isinstance(gap, list) and len(gap) == 2 and all(_seconds(t) for t in gap) and gap[0] < gap[1]):
            raise InvalidInputError(f"{path}: the gaps field holds {str(gap)[:40]}, not [start, end] seconds")
    return meta


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _type_names(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def _finite(source: str, values: np.ndarray) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{source}: embeddings hold non-finite values (NaN or infinity)")


@dataclass(frozen=True, repr=False)
class FrameEmbeddings(StoredEmbeddings):
    """Unit-length embeddings of sampled frames (float32 [T, D]) with their frame indices and times.

    `sampling` records how the frames were chosen (e.g. {"fps": 1.0}); `duration` is the video's;
    `model` names the model as the user did and `fingerprint` identifies its weights (see
    `models.fingerprint`): only an encoder with that fingerprint scores these vectors. `gaps` are
    the stretches of the video, [[start, end], ...] seconds, whose frames did not decode.
    """

    vectors: np.ndarray
    indices: np.ndarray
    pts_seconds: np.ndarray
    duration: float
    model: str
    source: str
    sampling: dict = field(default_factory=dict)
    fingerprint: str | None = None
    gaps: list = field(default_factory=list)

    kind = "frames"
    _arrays = ("vectors", "indices", "pts_seconds")
    _meta = ("duration", "model", "source", "sampling", "fingerprint", "gaps")

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise ValueError(f"{self.source}: embeddings must be a non-empty [T, D] array, got {self.vectors.shape}")
        if not len(self.vectors) == len(self.indices) == len(self.pts_seconds):
            raise ValueError(f"{self.source}: {len(self.vectors)} vectors for {len(self.indices)} frames")
        if np.any(np.diff(self.pts_seconds) < 0):
            raise ValueError(f"{self.source}: frame times must be in increasing order")
        _finite(self.source, self.vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    def __repr__(self) -> str:
        return (
            f"FrameEmbeddings({self.source!r}, frames={len(self)}, dim={self.vectors.shape[1]}, "
            f"duration={self.duration:.3f}s, model={self.model!r}, sampling={self.sampling})"
        )


@dataclass(frozen=True, repr=False)
class ClipEmbeddings(StoredEmbeddings):
    """Per-span clip features of a clip encoder (X-CLIP): one row per span [start, end) in seconds.

    `video` holds unit-length video embeddings [S, D]; `visual` the features the model conditions
    its text on [S, P, D]; `indices` the frames each span was built from [S, T]; `model`,
    `fingerprint` and `gaps` as for `FrameEmbeddings`.
    """

    spans: np.ndarray
    video: np.ndarray
    visual: np.ndarray
    indices: np.ndarray
    duration: float
    model: str
    source: str
    fingerprint: str | None = None
    gaps: list = field(default_factory=list)

    kind = "clips"
    _arrays = ("spans", "video", "visual", "indices")
    _meta = ("duration", "model", "source", "fingerprint", "gaps")

    def __post_init__(self) -> None:
        if not len(self.spans) == len(self.video) == len(self.visual) == len(self.indices) > 0:
            raise ValueError(f"{self.source}: clip features disagree in length or are empty")
        _finite(self.source, self.video)
        _finite(self.source, self.visual)

    def __len__(self) -> int:
        return len(self.spans)

    def __repr__(self) -> str:
        return f"ClipEmbeddings({self.source!r}, spans={len(self)}, duration={self.duration:.3f}s, model={self.model!r})"


def load_embeddings(path: str | os.PathLike) -> StoredEmbeddings:
    """Stored embeddings of whichever kind the file says it holds (frames or clip features), read as
    `StoredEmbeddings.load` reads them: never unpickled, anything else an `InvalidInputError`."""
    path = os.fspath(path)
    meta = read_npz(path, ("meta",)).get("meta")
    kind = _metadata(path, meta).get("kind") if meta is not None else None
    return {cls.kind: cls for cls in (FrameEmbeddings, ClipEmbeddings)}.get(kind, FrameEmbeddings).load(path)
