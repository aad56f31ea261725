"""From embeddings and label vectors to ranked scores, for a whole clip and for each time window."""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .embeddings import FrameEmbeddings
from .sampling import Span, frames_in
from .schema import option

POOLINGS = option("pooling").allowed


@dataclass(frozen=True)
class ScoreHead:
    """The checkpoint's map from cosine similarity to scores.

    CLIP-style checkpoints: softmax over the candidates of `scale * cos` (scores sum to 1).
    SigLIP-style: `sigmoid(scale * cos + bias)` for each label on its own, as transformers does.
    """

    scale: float
    bias: float | None = None
    activation: str = "softmax"

    def logits(self, cosine: torch.Tensor) -> torch.Tensor:
        return cosine * self.scale + (self.bias or 0.0)

    def probabilities(self, cosine: torch.Tensor) -> torch.Tensor:
        logits = self.logits(cosine)
        return torch.sigmoid(logits) if self.activation == "sigmoid" else logits.softmax(dim=-1)


#: Mean pooling sums each window's frames directly unless the windows hold, in all, more than this
#: many times (frames + windows) frames; then float64 prefix sums, O(frames + windows), do less work.
DIRECT_SUM_LIMIT = 64


@functools.cache
def _acknowledge_sparse_csr_beta() -> None:
    """torch warns once per process that sparse CSR tensors are beta; the one product used here
    (window weights times dense rows) is stable, so take that warning here, not in users' output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        empty = torch.zeros(0, dtype=torch.int64)
        torch.sparse_csr_tensor(torch.zeros(2, dtype=torch.int64), empty, torch.zeros(0), size=(1, 1), check_invariants=False)


def pool(vectors: np.ndarray, ranges: np.ndarray, pooling: str = "mean") -> torch.Tensor:
    """Unit-length pooled vectors [S, D], one per [first, last) range of rows of `vectors` [T, D];
    an empty range (a window that holds no frame) is a row of NaN: nothing is made up for it.

    "mean" averages the frame embeddings (the strong zero-shot default); "max" takes each
    dimension's maximum.
    """
    empty = ranges[:, 1] <= ranges[:, 0]
    if empty.any():
        pooled = torch.full((len(ranges), vectors.shape[1]), float("nan"))
        if not empty.all():
            pooled[torch.from_numpy(~empty)] = pool(vectors, ranges[~empty], pooling)
        return pooled
    if pooling == "mean":
        counts = ranges[:, 1] - ranges[:, 0]
        if counts.sum() <= DIRECT_SUM_LIMIT * (len(vectors) + len(ranges)):
            pooled = _direct_means(vectors, ranges, counts)
        else:
            pooled = _prefix_means(vectors, ranges, counts)
    elif pooling == "max":
        pooled = torch.from_numpy(np.stack([vectors[a:b].max(axis=0) for a, b in ranges.tolist()]))
    else:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got {pooling!r}")
    return pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _direct_means(vectors: np.ndarray, ranges: np.ndarray, counts: np.ndarray) -> torch.Tensor:
    """One sparse product: a [S, T] matrix holding 1/count over each window's frames."""
    _acknowledge_sparse_csr_beta()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    columns = np.arange(offsets[-1]) + np.repeat(ranges[:, 0] - offsets[:-1], counts)
    weights = torch.from_numpy(np.repeat(1.0 / counts, counts).astype(np.float32))
    matrix = torch.sparse_csr_tensor(
        torch.from_numpy(offsets), torch.from_numpy(columns), weights, size=(len(ranges), len(vectors)), check_invariants=False
    )
    return matrix @ torch.from_numpy(np.ascontiguousarray(vectors, np.float32))


def _prefix_means(vectors: np.ndarray, ranges: np.ndarray, counts: np.ndarray) -> torch.Tensor:
    """Differences of float64 prefix sums; the sums run along contiguous memory (transposed)."""
    prefix = np.zeros((vectors.shape[1], len(vectors) + 1))
    np.cumsum(np.ascontiguousarray(vectors.T), axis=1, dtype=np.float64, out=prefix[:, 1:])
    return torch.from_numpy(((prefix[:, ranges[:, 1]] - prefix[:, ranges[:, 0]]) / counts).T.astype(np.float32))


def pooled_frames(
    embeddings: FrameEmbeddings, spans: list[Span] | None, pooling: str = "mean", borrow: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Unit-length pooled vectors of the whole clip [1, D] and of each span [S, D]; they depend on
    the frames and the windows only, so callers can keep them for every new label set. A span
    holding no frame borrows the nearest (`frames_in`), or with `borrow` off is a row of NaN."""
    vectors = np.asarray(embeddings.vectors, np.float32)
    if pooling == "mean":
        whole = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    else:
        whole = pool(vectors, np.array([[0, len(vectors)]]), pooling)[0].numpy()
    whole = torch.from_numpy(whole[None] / max(float(np.linalg.norm(whole)), 1e-12))
    if spans is None:
        return whole, None
    return whole, pool(vectors, frames_in(embeddings.pts_seconds, spans, borrow), pooling)


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
