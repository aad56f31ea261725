"""`VideoResult`: everything one video's run produced, built whole and never changed after."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from .embeddings import ClipEmbeddings, FrameEmbeddings
from .scoring import ranked_rows


@dataclass(frozen=True)
class VideoResult:
    """One video's clip ranking and, with segments on, its windows and events; `to_dict` is what the
    CLI writes as JSON. `gaps` are the stretches [start, end] (seconds) whose frames did not
    decode, in a damaged file.

    With segments on, `window_spans` [S, 2] (seconds), `window_scores` and `window_similarity`
    [S, M] (labels in `label_names` order) hold the per-window results as arrays; `segments` is
    the same as ranked dicts, built on first use; a window that held no frame (keyframe sampling)
    has NaN rows there and is reported `frameless`. `thresholds` says what the events were
    thresholded with (`EventOptions.described`): each event's score is at least its threshold.
    """

    video: str
    duration: float
    model: str
    labels: list[dict]
    events: list[dict] | None = None
    thresholds: dict | None = None
    gaps: list = field(default_factory=list)
    label_names: list[str] = field(default_factory=list, repr=False)
    window_spans: np.ndarray | None = field(default=None, repr=False)
    window_scores: np.ndarray | None = field(default=None, repr=False)
    window_similarity: np.ndarray | None = field(default=None, repr=False)
    top_k: int | None = field(default=None, repr=False)
    embeddings: FrameEmbeddings | ClipEmbeddings | None = field(default=None, repr=False)

    @property
    def frameless(self) -> np.ndarray | None:
        """[S] whether each window held no frame (keyframe sampling: no keyframe inside it), so it
        has no scores (NaN rows); None with segments off."""
        if self.window_spans is None:
            return None
        return np.isnan(self.window_similarity).any(axis=1)

    @cached_property
    def segments(self) -> list[dict] | None:
        """[{"start", "end", "labels": [{"label", "score", "similarity"}, ...]}] per window; a
        window that held no frame is {"start", "end", "labels": [], "frameless": true}."""
        if self.window_spans is None:
            return None
        rows = ranked_rows(
            self.label_names, torch.from_numpy(self.window_scores), torch.from_numpy(self.window_similarity), self.top_k
        )
        return [
            {"start": round(start, 3), "end": round(end, 3), "labels": [], "frameless": True} if frameless
            else {"start": round(start, 3), "end": round(end, 3), "labels": row}
            for (start, end), row, frameless in zip(self.window_spans.tolist(), rows, self.frameless.tolist())
        ]

    def to_dict(self) -> dict:
        out = {"video": self.video, "duration": round(self.duration, 3), "model": self.model, "labels": self.labels}
        if self.gaps:  # stretches whose frames did not decode (a damaged file)
            out["gaps"] = [[round(a, 3), round(b, 3)] for a, b in self.gaps]
        if self.window_spans is not None:
            out["segments"], out["events"] = self.segments, self.events
            if self.thresholds is not None:
                out["thresholds"] = self.thresholds
        return out
