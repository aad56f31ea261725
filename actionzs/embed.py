"""The per-video step: one video in, its embeddings out, as a plain function.

`embed_video` opens the video, asks the encoder for its plan (which frames, in which batches),
decodes and preprocesses the batches, encodes them and assembles the embeddings, in this thread and
this process. Its arguments pickle (a path, the options, an encoder loaded by name pickles as the
reference that loads it again, an `Opener`), so the same call runs in another process. The local
executor (`executor.py`) runs the same steps split over a decoding thread and the caller's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .embeddings import ClipEmbeddings, FrameEmbeddings
from .errors import InvalidInputError, TimelineChanged, naming
from .heap import release_free_memory
from .options import RunOptions
from .video import Video, image_video, open_video

Embeddings = FrameEmbeddings | ClipEmbeddings


@dataclass(frozen=True)
class Opener:
    """Opens what a user passed as a video: a path with the `backend` named here, or a PIL image or
    uint8 array as a one-frame video. Holds only the backend's name, so it pickles."""

    backend: str = "auto"

    def __call__(self, source) -> Video:
        if isinstance(source, (str, os.PathLike)):
            return open_video(os.fspath(source), self.backend)
        if isinstance(source, Video):
            raise InvalidInputError("pass the video's path, not an open Video (each run opens its own decoder)")
        return image_video(source)


def source_name(source) -> str:
    """How a source is named in results and messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "source", "<image>")


def embed_video(source, encoder, run: RunOptions, opener: Opener = Opener(), batch_size: int = 32) -> Embeddings:
    """The embeddings of one video (`FrameEmbeddings` or `ClipEmbeddings`, as the encoder's family
    makes them): each planned frame decoded once, at most `batch_size` frames in memory at a time."""
    with opener(source) as video:
        while True:
            with naming(video.path):  # options this video cannot be sampled with: refused before decoding
                plan = encoder.plan(video.timeline, run)
            try:
                encoded = []
                for batch in plan.batches(video, encoder.preprocessor, batch_size):
                    encoded.append(encoder.encode(batch))
                    release_free_memory()
            except TimelineChanged:  # damage found: plan again over the frames that decode (once:
                continue  # a video drops frames only once, a second failure is a VideoDecodeError)
            return plan.finish(encoded, video.path)
