"""Decoded frames with their timestamps, and the arithmetic of frame sizes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: A requested frame size: an int is the shortest side (aspect kept), a pair is (height, width).
FrameSize = int | tuple[int, int]


def resize_dims(height: int, width: int, size: FrameSize | None) -> tuple[int, int]:
    """(height, width) after resizing to `size`, with the rounding transformers' image processors use."""
    if size is None:
        return height, width
    if isinstance(size, tuple):
        out_h, out_w = size
    else:
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        out_h, out_w = (new_long, new_short) if width <= height else (new_short, new_long)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"frame size {size!r} gives an empty picture from {width}x{height}")
    return out_h, out_w


@dataclass(frozen=True, repr=False)
class FrameBatch:
    """RGB frames `data` (uint8 [N, H, W, 3]) with their frame `indices` and `pts_seconds`."""

    data: np.ndarray
    indices: np.ndarray
    pts_seconds: np.ndarray

    def __post_init__(self) -> None:
        if self.data.ndim != 4 or self.data.shape[-1] != 3 or self.data.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [N, H, W, 3], got {self.data.dtype} {self.data.shape}")
        if not len(self.data) == len(self.indices) == len(self.pts_seconds):
            raise ValueError(
                f"{len(self.data)} frames but {len(self.indices)} indices and {len(self.pts_seconds)} timestamps"
            )

    def __len__(self) -> int:
        return len(self.data)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        span = f"{self.pts_seconds[0]:.3f}..{self.pts_seconds[-1]:.3f}s" if len(self) else "empty"
        return f"FrameBatch(frames={len(self)}, size={tuple(self.data.shape[1:3])}, {span})"
