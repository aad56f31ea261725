"""Still images, read as one-frame videos."""

from __future__ import annotations

import numpy as np

from ..errors import VideoDecodeError
from ..frames import FrameSize, resize_dims
from ..sampling import Timeline
from .reader import Reader

#: Files read as still images, whatever backend is asked for.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


class ImageReader(Reader):
    """A still image as a one-frame video; resizing uses PIL bicubic, as transformers' processors do."""

    average_fps = 1.0
    reopen_after_fork = False  # a picture in memory, no decoder

    def __init__(self, image):
        from PIL import Image

        self._image = image.convert("RGB")
        self._resample = Image.Resampling.BICUBIC
        self.width, self.height = self._image.size
        self.timeline = Timeline.constant_rate(1, self.average_fps)

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        height, width = resize_dims(self.height, self.width, size)
        image = self._image if (width, height) == self._image.size else self._image.resize((width, height), self._resample)
        return np.repeat(np.asarray(image)[None], len(indices), axis=0)


def open_image(path: str) -> ImageReader:
    """The image file at `path`, decoded at once (the file is not kept open)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return ImageReader(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise VideoDecodeError(path, f"not a readable image ({exc})") from None
