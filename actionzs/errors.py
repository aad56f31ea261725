"""The exceptions actionzs raises: each names the file or option at fault and the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


class ActionzsError(Exception):
    """Base class of every error actionzs raises on purpose."""


class VideoDecodeError(ActionzsError):
    """A video (or image) could not be opened or read; `path` and `reason` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the two-argument form picklable across processes
        return (type(self), (self.path, self.reason))


class FrameIndexError(VideoDecodeError, IndexError):
    """Frames were asked for past the last frame that really decodes."""


class TimelineChanged(VideoDecodeError):
    """Frames the container lists turned out not to decode (damage in the middle of the file): the
    video now holds only the frames that do, so anything planned from its old timeline must be
    planned again. `gaps` are the missing stretches, in seconds."""

    def __init__(self, path: str | os.PathLike, gaps: list[tuple[float, float]]):
        self.gaps = gaps
        spans = ", ".join(f"{a:.3f}-{b:.3f} s" for a, b in gaps[:5]) + (" ..." if len(gaps) > 5 else "")
        super().__init__(path, f"frames at {spans} do not decode (damaged); plan again from the frames that do")

    def __reduce__(self):
        return (type(self), (self.path, self.gaps))


class ModelLoadError(ActionzsError):
    """A checkpoint could not be loaded (missing offline, unsupported architecture, no safetensors)."""


class InvalidInputError(ActionzsError, ValueError):
    """Labels, options or inputs that are rejected before any decoding starts."""


class VideoOptionsError(InvalidInputError):
    """Options a video cannot be sampled with: more windows or frames than are allowed for its
    length. Raised from its timeline, before any frame is read; `path` is None until the per-video
    step names the video (`named`), `reason` says why."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        super().__init__(reason if self.path is None else f"{self.path}: {reason}")

    def named(self, path: str | os.PathLike) -> VideoOptionsError:
        """This error naming the video at `path` (unchanged if it names one already)."""
        return self if self.path is not None else type(self)(self.reason, path)

    def __reduce__(self):  # picklable across processes, like VideoDecodeError
        return (type(self), (self.reason, self.path))


@contextmanager
def naming(path: str | os.PathLike) -> Iterator[None]:
    """A `VideoOptionsError` raised inside names the video at `path`."""
    try:
        yield
    except VideoOptionsError as exc:
        raise exc.named(path) from None


class SingleLabelWarning(UserWarning):
    """One candidate label under a softmax head: every score is 1.0 (see `prompts.single_label_warning`)."""
