"""Still images, read as one-frame videos."""

from __future__ import annotations

import numpy as np

from ..errors import VideoDecodeError
from ..frames import FrameSize, resize_dims
from ..sampling import Timeline
from .reader import Reader

#: Files read as still images, whatever backend is asked for.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def rgb_like_transformers(image):
    """`image` as RGB exactly as transformers' zero-shot image pipeline makes it: upright by its EXIF
    orientation and converted to RGB (`image_utils.load_image`; alpha is dropped there), then a
    colour marked transparent (a palette or grey PNG's tRNS, which PIL keeps as an RGB colour) made
    white, as the image processors' `convert_to_rgb` does (CLIP's and SigLIP's `do_convert_rgb`; a
    processor without it, such as X-CLIP's, would keep that colour)."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image).convert("RGB")
    if image.info.get("transparency") is not None:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    return image


class ImageReader(Reader):
    """A still image as a one-frame video, in RGB as transformers' image pipeline sees it (see
    `rgb_like_transformers`); an int or pair `size` is reached with PIL's bicubic resize."""

    average_fps = 1.0
    reopen_after_fork = False  # a picture in memory, no decoder

    def __init__(self, image):
        from PIL import Image

        self._image = rgb_like_transformers(image)
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
