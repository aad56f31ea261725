"""Still images, read as one-frame videos."""

from __future__ import annotations

import re
import threading
import warnings

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


#: Serialises the warning filter `open_image` sets while PIL reads a header (the filter list is
#: the process's own: two threads changing it at once could leave one of their filters behind).
_WARNINGS_LOCK = threading.Lock()


def pixel_limit() -> int | None:
    """The most pixels an image may have: PIL's own `Image.MAX_IMAGE_PIXELS`, read each time (a
    program may change it; None turns the check off)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else int(limit)


def too_many_pixels(width: int, height: int, what: str = "image") -> str | None:
    """Why an image (`what`="image") or a video's frames ("frames") of `width` x `height` are
    refused (more pixels than PIL's decompression-bomb limit), or None."""
    limit = pixel_limit()
    if limit is None or max(width, 1) * max(height, 1) <= limit:
        return None
    verb = "is" if what == "image" else "are"
    return f"{what} of {width} x {height} pixels {verb} larger than the {limit:,}-pixel limit (PIL.Image.MAX_IMAGE_PIXELS)"


def open_image(path: str) -> ImageReader:
    """The image file at `path`, decoded at once (the file is not kept open). An image declaring
    more pixels than PIL's limit is refused from its header, before any pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            # PIL warns above its limit and raises above twice it; both are refused, naming the size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            refused = too_many_pixels(*image.size)
            if refused:
                raise VideoDecodeError(path, refused)
            image.load()
            return ImageReader(image)
    except Image.DecompressionBombError as exc:
        raise VideoDecodeError(path, _bomb_reason(exc)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise VideoDecodeError(path, f"not a readable image ({exc})") from None


def _bomb_reason(exc: Exception) -> str:
    """PIL's DecompressionBombError said the way `too_many_pixels` says it (PIL gives no size)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    count = f"{int(found.group(1)):,} pixels" if found else "its size"
    limit = pixel_limit()
    return f"image of {count} is larger than the {limit or 0:,}-pixel limit (PIL.Image.MAX_IMAGE_PIXELS)"
