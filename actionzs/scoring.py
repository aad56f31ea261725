"""From embeddings and label vectors to ranked scores, for a whole clip and for each time window."""

from __future__ import annotations

import numpy as np
import torch

from .embeddings import FrameEmbeddings
from .models.base import ScoreHead
from .sampling import Span, frames_in

POOLINGS = ("mean", "max")


def pool(vectors: np.ndarray, ranges: np.ndarray, pooling: str = "mean") -> torch.Tensor:
    """Unit-length pooled vectors [S, D], one per [first, last) range of rows of `vectors` [T, D].

    "mean" averages the frame embeddings (the strong zero-shot default); "max" takes each
    dimension's maximum. Means use float64 prefix sums, so overlapping windows cost O(T + S), not
    O(T * S); the sums run along contiguous memory (transposed), which is several times faster.
    """
    if pooling == "mean":
        prefix = np.zeros((vectors.shape[1], len(vectors) + 1))
        np.cumsum(np.ascontiguousarray(vectors.T), axis=1, dtype=np.float64, out=prefix[:, 1:])
        first, last = ranges[:, 0], ranges[:, 1]
        pooled = torch.from_numpy(((prefix[:, last] - prefix[:, first]) / (last - first)).T.astype(np.float32))
    elif pooling == "max":
        pooled = torch.from_numpy(np.stack([vectors[a:b].max(axis=0) for a, b in ranges.tolist()]))
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def pooled_frames(
    embeddings: FrameEmbeddings, spans: list[Span] | None, pooling: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Unit-length pooled vectors of the whole clip [1, D] and of each span [S, D]; they depend on
    the frames and the windows only, so callers can keep them for every new label set."""
    vectors = np.asarray(embeddings.vectors, np.float32)
    if pooling == "mean":
        whole = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    else:
        whole = pool(vectors, np.array([[0, len(vectors)]]), pooling)[0].numpy()
    whole = torch.from_numpy(whole[None] / max(float(np.linalg.norm(whole)), 1e-12))
    if spans is None:
        return whole, None
    return whole, pool(vectors, frames_in(embeddings.pts_seconds, spans), pooling)


def ranked_rows(names: list[str], scores: torch.Tensor, similarity: torch.Tensor, top_k: int | None = None) -> list[list[dict]]:
    """For each row of `scores` / `similarity` [S, M]: [{"label", "score", "similarity"}] sorted by
    score (ties keep label order), cut to `top_k`. One sort for all rows."""
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, : top_k or None]
    top_scores = torch.gather(scores, 1, order).tolist()
    top_sims = torch.gather(similarity.float(), 1, order).tolist()
    return [
        [{"label": names[i], "score": score, "similarity": sim} for i, score, sim in zip(row, row_scores, row_sims)]
        for row, row_scores, row_sims in zip(order.tolist(), top_scores, top_sims)
    ]


def ranked(names: list[str], similarity: torch.Tensor, head: ScoreHead, top_k: int | None = None) -> list[dict]:
    """[{"label", "score", "similarity"}] for one clip's similarity [M], scored by `head`, best first."""
    row = similarity.float().unsqueeze(0)
    return ranked_rows(names, head.probabilities(row), row, top_k)[0]
