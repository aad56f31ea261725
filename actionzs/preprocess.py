"""A checkpoint's image preprocessing (resize, centre crop, rescale, normalise) on batches with torch.

It reads the settings of the checkpoint's own transformers image processor, so the tensors equal what
that processor makes. Frames normally arrive already resized by the decoder (`decode_size`), which
leaves crop and normalisation; other sizes are resized here with antialiased bicubic interpolation.
A batch lives in a memory mapping of its own (`mapped.mapped_empty`): it is made in the decoding
thread and freed in the encoding one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .frames import FrameSize, resize_dims
from .mapped import mapped_empty


def _field(size, key: str):
    if size is None:
        return None
    if isinstance(size, Mapping):
        return size.get(key)
    return getattr(size, key, None)


class FramePreprocessor:
    """Turns uint8 frames [N, H, W, 3] into model input float [N, 3, h, w] like `image_processor`."""

    def __init__(self, image_processor):
        ip = image_processor
        self.do_resize = bool(getattr(ip, "do_resize", True))
        size = getattr(ip, "size", None)
        if _field(size, "shortest_edge"):
            self.decode_size: FrameSize | None = int(_field(size, "shortest_edge"))
        elif _field(size, "height") and _field(size, "width"):
            self.decode_size = (int(_field(size, "height")), int(_field(size, "width")))
        else:
            raise ValueError(f"unsupported image processor size setting: {size!r}")
        if not self.do_resize:
            self.decode_size = None
        crop = getattr(ip, "crop_size", None)
        self.crop = (int(_field(crop, "height")), int(_field(crop, "width"))) if getattr(ip, "do_center_crop", False) else None
        self.scale = float(getattr(ip, "rescale_factor", 1 / 255)) if getattr(ip, "do_rescale", True) else 1.0
        self.normalize = bool(getattr(ip, "do_normalize", True))
        self.mean = torch.tensor(ip.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(ip.image_std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        height, width = x.shape[-2:]
        target = resize_dims(height, width, self.decode_size)
        if target != (height, width):
            x = F.interpolate(x.float(), size=target, mode="bicubic", antialias=True, align_corners=False)
            x = x.round_().clamp_(0, 255)
        if self.crop is not None:
            x = _centre_crop(x, *self.crop)  # still uint8 when the decoder resized: a quarter of the bytes
        x = mapped_empty(x.shape, torch.float32).copy_(x)  # one float copy, then in place
        x.mul_(self.scale)
        if self.normalize:
            x.sub_(self.mean).div_(self.std)
        return x

    def __repr__(self) -> str:
        return f"FramePreprocessor(decode_size={self.decode_size}, crop={self.crop})"


def _centre_crop(x: torch.Tensor, crop_h: int, crop_w: int) -> torch.Tensor:
    """Centre crop with transformers' rounding; pads with zeros where the frame is smaller."""
    height, width = x.shape[-2:]
    if height < crop_h or width < crop_w:
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        height, width = x.shape[-2:]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return x[..., top : top + crop_h, left : left + crop_w]
