"""Pooling frame embeddings over windows: both mean strategies equal the plain per-window mean."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionzs import sampling, scoring


def reference(vectors: np.ndarray, ranges: np.ndarray, pooling: str) -> np.ndarray:
    rows = [getattr(vectors[a:b].astype(np.float64), pooling)(axis=0) for a, b in ranges.tolist()]
    pooled = np.stack(rows)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def ranges_for(count: int, window: float, stride: float) -> np.ndarray:
    return sampling.frames_in(np.arange(count) + 0.5, sampling.windows(float(count), window, stride))


CASES = {
    "overlapping": (300, 7.0, 3.0),
    "gaps between windows": (300, 2.0, 5.0),
    "one frame each": (50, 1.0, 1.0),
    "one window over all": (120, 120.0, 1.0),
    "clipped last window": (101, 10.0, 10.0),
}


@pytest.mark.parametrize("limit", [0, 10**9], ids=["prefix sums", "direct sums"])
@pytest.mark.parametrize("case", list(CASES))
def test_mean_pooling_equals_the_mean_of_each_window(monkeypatch, case, limit):
    monkeypatch.setattr(scoring, "DIRECT_SUM_LIMIT", limit)
    count, window, stride = CASES[case]
    vectors = np.random.default_rng(count).standard_normal((count, 32)).astype(np.float32) + 0.5
    ranges = ranges_for(count, window, stride)
    pooled = scoring.pool(vectors, ranges, "mean")
    assert pooled.dtype == torch.float32 and pooled.shape == (len(ranges), 32)
    np.testing.assert_allclose(pooled.numpy(), reference(vectors, ranges, "mean"), atol=1e-6, rtol=0)


def test_the_strategy_follows_the_total_window_length(monkeypatch):
    used = []
    for name in ("_direct_means", "_prefix_means"):
        real = getattr(scoring, name)
        monkeypatch.setattr(scoring, name, lambda *a, _real=real, _name=name: used.append(_name) or _real(*a))
    vectors = np.ones((100, 4), np.float32)
    scoring.pool(vectors, ranges_for(100, 2.0, 1.0))  # 2 frames per window: summed directly
    scoring.pool(vectors, ranges_for(100, 100.0, 0.01)[:1].repeat(200, axis=0))  # 200 x 100 frames
    assert used == ["_direct_means", "_prefix_means"]


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_an_empty_range_pools_to_a_row_of_nan_and_the_others_are_unchanged(pooling):
    vectors = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    ranges = np.array([[0, 2], [2, 2], [2, 5]])
    pooled = scoring.pool(vectors, ranges, pooling)
    assert torch.isnan(pooled[1]).all() and not torch.isnan(pooled[[0, 2]]).any()
    assert torch.equal(pooled[[0, 2]], scoring.pool(vectors, ranges[[0, 2]], pooling))
    assert torch.isnan(scoring.pool(vectors, np.array([[3, 3]]), pooling)).all()


def test_max_pooling_and_unknown_pooling():
    vectors = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    ranges = ranges_for(60, 6.0, 2.0)
    np.testing.assert_allclose(scoring.pool(vectors, ranges, "max").numpy(), reference(vectors, ranges, "max"), atol=1e-6)
    with pytest.raises(ValueError, match="pooling must be one of mean, max"):
        scoring.pool(vectors, ranges, "median")
