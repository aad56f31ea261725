"""Decoded frames with their timestamps, the arithmetic of frame sizes, and resizing exactly as an
image processor does."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Resize:
    """A frame size (int: shortest side, pair: (height, width)) reached exactly the way a
    transformers image processor resizes: `backend` "pil" resizes each frame with PIL and the
    `resample` filter (a PIL filter number), as the PIL image processors do; "torchvision" calls
    torchvision's resize with antialiasing, as the torchvision ones do.

    Asked of a `Video`, frames are decoded at their own size and resized here, a read at a time:
    the decoders' own scaling (FFmpeg's, OpenCV's) gives other pixels.
    """

    size: int | tuple[int, int]
    backend: str = "pil"
    resample: object = 3  # PIL.Image.Resampling.BICUBIC; an int, a PIL filter or a torchvision mode

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames [N, H, W, 3] at this size (the same array when they already are)."""
        height, width = frames.shape[1:3]
        out_h, out_w = resize_dims(height, width, self.size)
        if (out_h, out_w) == (height, width) or not len(frames):
            return frames  # both processors' resizes are the identity there
        if self.backend == "torchvision":
            return self._torchvision(frames, out_h, out_w)
        return self._pil(frames, out_h, out_w)

    def _pil(self, frames: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        from PIL import Image

        # What transformers.image_transforms.resize does: the uint8 picture, PIL's resize, no reducing_gap.
        resample = _pil_filter(self.resample)
        out = np.empty((len(frames), out_h, out_w, 3), np.uint8)
        for slot, frame in enumerate(frames):
            out[slot] = np.asarray(Image.fromarray(frame).resize((out_w, out_h), resample=resample, reducing_gap=None))
        return out

    def _torchvision(self, frames: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
        import torch
        from torchvision.transforms.v2 import functional as tvF

        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        x = tvF.resize(x, [out_h, out_w], interpolation=_torchvision_mode(self.resample), antialias=True)
        return x.permute(0, 2, 3, 1).contiguous().numpy()


def _pil_filter(resample) -> int:
    """The PIL filter a PIL image processor uses for `resample` (bilinear when unset or unknown)."""
    from PIL import Image

    if resample is None:
        return Image.Resampling.BILINEAR
    if isinstance(resample, int):  # PIL's Resampling is an IntEnum
        return Image.Resampling(int(resample))
    try:
        from transformers.image_utils import torch_pil_interpolation_mapping

        return torch_pil_interpolation_mapping[resample]
    except (ImportError, KeyError, TypeError):
        return Image.Resampling.BILINEAR


def _torchvision_mode(resample):
    """The torchvision interpolation a torchvision image processor uses for `resample`."""
    from torchvision.transforms.v2 import InterpolationMode

    if resample is None:
        return InterpolationMode.BILINEAR
    if isinstance(resample, InterpolationMode):
        return resample
    from transformers.image_utils import PILImageResampling, pil_torch_interpolation_mapping

    return pil_torch_interpolation_mapping[PILImageResampling(int(resample))]


#: A requested frame size: an int is the shortest side (aspect kept), a pair is (height, width), a
#: `Resize` is a size reached exactly as an image processor reaches it.
FrameSize = int | tuple[int, int] | Resize


def resize_dims(height: int, width: int, size: FrameSize | None) -> tuple[int, int]:
    """(height, width) after resizing to `size`, with the rounding transformers' image processors use."""
    if isinstance(size, Resize):
        size = size.size
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
