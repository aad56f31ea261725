"""The exceptions actionzs raises: each names the file or option at fault and the reason."""

from __future__ import annotations

import os


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


class ModelLoadError(ActionzsError):
    """A checkpoint could not be loaded (missing offline, unsupported architecture, no safetensors)."""


class InvalidInputError(ActionzsError, ValueError):
    """Labels, options or inputs that are rejected before any decoding starts."""
