"""Embeddings with their timestamps: the storable result of the expensive stage.

Scoring a new label set, re-windowing or indexing a library later needs only these, never the
video again. `save`/`load` use a single .npz file, written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _atomic_savez(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@dataclass(frozen=True, repr=False)
class FrameEmbeddings:
    """Unit-length embeddings of sampled frames (float32 [T, D]) with their frame indices and times.

    `sampling` records how the frames were chosen (e.g. {"fps": 1.0}); `duration` is the video's.
    """

    vectors: np.ndarray
    indices: np.ndarray
    pts_seconds: np.ndarray
    duration: float
    model: str
    source: str
    sampling: dict = field(default_factory=dict)

    kind = "frames"

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.vectors) == 0:
            raise ValueError(f"{self.source}: embeddings must be a non-empty [T, D] array, got {self.vectors.shape}")
        if not len(self.vectors) == len(self.indices) == len(self.pts_seconds):
            raise ValueError(f"{self.source}: {len(self.vectors)} vectors for {len(self.indices)} frames")
        if np.any(np.diff(self.pts_seconds) < 0):
            raise ValueError(f"{self.source}: frame times must be in increasing order")

    def __len__(self) -> int:
        return len(self.vectors)

    def save(self, path: str | os.PathLike) -> None:
        meta = {"kind": self.kind, "duration": self.duration, "model": self.model, "source": self.source, "sampling": self.sampling}
        _atomic_savez(path, {"vectors": self.vectors, "indices": self.indices, "pts_seconds": self.pts_seconds, "meta": np.array(json.dumps(meta))})

    @classmethod
    def load(cls, path: str | os.PathLike) -> FrameEmbeddings:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("kind") != cls.kind:
                raise ValueError(f"{path}: holds {meta.get('kind')!r} embeddings, not {cls.kind!r}")
            return cls(data["vectors"], data["indices"], data["pts_seconds"], meta["duration"], meta["model"], meta["source"], meta["sampling"])

    def __repr__(self) -> str:
        return (
            f"FrameEmbeddings({self.source!r}, frames={len(self)}, dim={self.vectors.shape[1]}, "
            f"duration={self.duration:.3f}s, model={self.model!r}, sampling={self.sampling})"
        )


@dataclass(frozen=True, repr=False)
class ClipEmbeddings:
    """Per-span clip features of a clip encoder (X-CLIP): one row per span [start, end) in seconds.

    `video` holds unit-length video embeddings [S, D]; `visual` the features the model conditions
    its text on [S, P, D]; `indices` the frames each span was built from [S, T].
    """

    spans: np.ndarray
    video: np.ndarray
    visual: np.ndarray
    indices: np.ndarray
    duration: float
    model: str
    source: str

    kind = "clips"

    def __post_init__(self) -> None:
        if not len(self.spans) == len(self.video) == len(self.visual) == len(self.indices) > 0:
            raise ValueError(f"{self.source}: clip features disagree in length or are empty")

    def __len__(self) -> int:
        return len(self.spans)

    def save(self, path: str | os.PathLike) -> None:
        meta = {"kind": self.kind, "duration": self.duration, "model": self.model, "source": self.source}
        arrays = {"spans": self.spans, "video": self.video, "visual": self.visual, "indices": self.indices}
        _atomic_savez(path, {**arrays, "meta": np.array(json.dumps(meta))})

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClipEmbeddings:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("kind") != cls.kind:
                raise ValueError(f"{path}: holds {meta.get('kind')!r} embeddings, not {cls.kind!r}")
            return cls(data["spans"], data["video"], data["visual"], data["indices"], meta["duration"], meta["model"], meta["source"])

    def __repr__(self) -> str:
        return f"ClipEmbeddings({self.source!r}, spans={len(self)}, duration={self.duration:.3f}s, model={self.model!r})"
