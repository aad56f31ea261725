"""From embeddings and label vectors to ranked scores, for a whole clip and for each time window."""

from __future__ import annotations

import numpy as np
import torch

from .embeddings import FrameEmbeddings
from .models.base import ScoreHead
from .sampling import Span, frames_in

POOLINGS = ("mean", "max")


def pool(vectors: torch.Tensor, ranges: np.ndarray, pooling: str = "mean") -> torch.Tensor:
    """Unit-length pooled vectors [S, D], one per [first, last) range of rows of `vectors` [T, D].

    "mean" averages the frame embeddings (the strong zero-shot default); "max" takes each
    dimension's maximum. Means use prefix sums, so overlapping windows cost O(T + S), not O(T * S).
    """
    if pooling == "mean":
        prefix = torch.cat([vectors.new_zeros(1, vectors.shape[1]), vectors.double().cumsum(0).float()])
        first, last = torch.from_numpy(ranges[:, 0]), torch.from_numpy(ranges[:, 1])
        pooled = (prefix[last] - prefix[first]) / (last - first).unsqueeze(1)
    elif pooling == "max":
        pooled = torch.stack([vectors[a:b].max(dim=0).values for a, b in ranges.tolist()])
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def frame_similarity(
    embeddings: FrameEmbeddings, labels: torch.Tensor, spans: list[Span] | None, pooling: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cosine similarity of the whole clip [M] and of each span [S, M] with the label vectors [M, D]."""
    vectors = torch.from_numpy(np.ascontiguousarray(embeddings.vectors, np.float32))
    whole = pool(vectors, np.array([[0, len(vectors)]]), pooling)
    clip = (whole @ labels.T)[0]
    if spans is None:
        return clip, None
    windows = pool(vectors, frames_in(embeddings.pts_seconds, spans), pooling)
    return clip, windows @ labels.T


def ranked(names: list[str], similarity: torch.Tensor, head: ScoreHead, top_k: int | None = None) -> list[dict]:
    """[{"label", "score", "similarity"}] sorted by score (ties keep label order), cut to `top_k`."""
    scores = head.probabilities(similarity.float()).tolist()
    order = sorted(range(len(names)), key=lambda i: -scores[i])[: top_k or None]
    sims = similarity.tolist()
    return [{"label": names[i], "score": scores[i], "similarity": sims[i]} for i in order]
