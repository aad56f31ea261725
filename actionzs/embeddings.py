"""Embeddings with their timestamps: the storable result of the expensive stage.

Scoring a new label set, re-windowing or indexing a library later needs only these, never the
video again. `save`/`load` use a single .npz file, written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .atomic import atomic_file


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
        """Read a file written by `save`."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            kind = meta.pop("kind", None)
            if kind != cls.kind:
                raise ValueError(f"{path}: holds {kind!r} embeddings, not {cls.kind!r}")
            unknown = set(meta) - set(cls._meta)
            if unknown:
                raise ValueError(f"{path}: unknown fields {', '.join(sorted(unknown))} (made by a newer actionzs?)")
            return cls(**{k: data[k] for k in cls._arrays}, **meta)


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
