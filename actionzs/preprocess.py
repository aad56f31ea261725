"""A checkpoint's image preprocessing (resize, centre crop, rescale, normalise) on batches with torch.

It reads the settings of the checkpoint's own transformers image processor, so the tensors equal what
that processor makes of the same decoded frames. The resize is the processor's own method (PIL's
resize with its filter for a PIL image processor, torchvision's for a torchvision one): frames are
asked of the video at `decode_size`, a `Resize`, so they are decoded at full size and resized that
way a read at a time; the decoders' own scaling gives other pixels. Frames of any other size are
resized here the same way. A batch lives in a memory mapping of its own (`mapped.mapped_empty`): it
is made in the decoding thread and freed in the encoding one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .frames import Resize
from .mapped import mapped_empty


def _field(size, key: str):
    if size is None:
        return None
    if isinstance(size, Mapping):
        return size.get(key)
    return getattr(size, key, None)


def processor_backend(image_processor) -> str:
    """"torchvision" for an image processor that works on torch tensors with torchvision (transformers'
    torchvision backend, or a "Fast" processor of transformers 4), else "pil" (PIL and NumPy)."""
    backend = getattr(image_processor, "backend", None)
    if backend in ("pil", "torchvision"):
        return backend
    return "torchvision" if type(image_processor).__name__.endswith("Fast") else "pil"


class FramePreprocessor:
    """Turns uint8 frames [N, H, W, 3] into model input float [N, 3, h, w] like `image_processor`."""

    def __init__(self, image_processor):
        ip = image_processor
        self.backend = processor_backend(ip)
        self.do_resize = bool(getattr(ip, "do_resize", True))
        size = getattr(ip, "size", None)
        if _field(size, "shortest_edge"):
            target: int | tuple[int, int] = int(_field(size, "shortest_edge"))
        elif _field(size, "height") and _field(size, "width"):
            target = (int(_field(size, "height")), int(_field(size, "width")))
        else:
            raise ValueError(f"unsupported image processor size setting: {size!r}")
        #: What to ask the video for: frames at the processor's size, resized as it resizes.
        self.decode_size: Resize | None = (
            Resize(target, self.backend, getattr(ip, "resample", None)) if self.do_resize else None
        )
        crop = getattr(ip, "crop_size", None)
        self.crop = (int(_field(crop, "height")), int(_field(crop, "width"))) if getattr(ip, "do_center_crop", False) else None
        self.scale = float(getattr(ip, "rescale_factor", 1 / 255)) if getattr(ip, "do_rescale", True) else 1.0
        self.normalize = bool(getattr(ip, "do_normalize", True))
        self.mean = torch.tensor(ip.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(ip.image_std, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        if self.decode_size is not None:
            frames = self.decode_size(np.asarray(frames))  # the same array when the video resized them
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        if self.crop is not None:
            x = _centre_crop(x, *self.crop, self.backend)  # still uint8: a quarter of the bytes
        x = mapped_empty(x.shape, torch.float32).copy_(x)  # one float copy, then in place
        x.mul_(self.scale)
        if self.normalize:
            x.sub_(self.mean).div_(self.std)
        return x

    def __repr__(self) -> str:
        return f"FramePreprocessor(decode_size={self.decode_size}, crop={self.crop})"


def _centre_crop(x: torch.Tensor, crop_h: int, crop_w: int, backend: str = "pil") -> torch.Tensor:
    """Centre crop with transformers' rounding; pads with zeros where the frame is smaller, the odd
    pixel of padding before the picture for PIL processors (`image_transforms.center_crop`) and after
    it for torchvision ones."""
    height, width = x.shape[-2:]
    if height < crop_h or width < crop_w:
        pad_h, pad_w = max(crop_h - height, 0), max(crop_w - width, 0)
        top, left = (pad_h - pad_h // 2, pad_w - pad_w // 2) if backend == "pil" else (pad_h // 2, pad_w // 2)
        x = F.pad(x, (left, pad_w - left, top, pad_h - top))
        height, width = x.shape[-2:]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return x[..., top : top + crop_h, left : left + crop_w]
