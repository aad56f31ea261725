"""The local executor: `embed_video`'s steps for a list of videos, decoding overlapped with encoding.

Decoding threads open each video, plan it and make its preprocessed batches (`stream.prefetch_each`:
bounded queues, every wait bounded in time); the caller's thread encodes the batches and assembles
the embeddings. The next video decodes while this one is encoded; with `decode_workers` N, N videos
of a list decode at once, or, for a single video, N of its independent reads (`Plan.chunks`), each
by a decoder of its own. Results are those of `embed_video`, video for video.

Progress: each batch carries the time of the last frame read for it, and once it is encoded the
`progress` hook hears `(video, seconds done, video's duration)`, in the caller's thread.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from operator import itemgetter

from .embed import Embeddings, Opener, source_name
from .errors import TimelineChanged, naming
from .heap import release_free_memory
from .options import RunOptions, check_count
from .stream import DECODE_TIMEOUT, END, ordered_map, prefetch_each
from .video import Video

#: Marks the end of batches of a plan found out of date (a damaged video): a new plan follows.
REPLAN = object()

#: The progress hook: (video, seconds of it done, its duration in seconds).
Progress = Callable[[str, float, float], None]


class _Timed:
    """A batch and the time of the last frame read for it: how far into its video it goes."""

    __slots__ = ("batch", "seconds")

    def __init__(self, batch, seconds: float):
        self.batch, self.seconds = batch, seconds


class _Watched:
    """A video whose reads note the time of the latest frame they gave: what a plan's batches
    reached, without the plan knowing (every other attribute is the video's own)."""

    def __init__(self, video: Video):
        self._video = video
        self.seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self._video, name)

    def iter_frames(self, *args, **kwargs) -> Iterator:
        for frames in self._video.iter_frames(*args, **kwargs):
            self._note(frames)
            yield frames

    def get_frames(self, *args, **kwargs):
        frames = self._video.get_frames(*args, **kwargs)
        self._note(frames)
        return frames

    def _note(self, frames) -> None:
        if len(frames.pts_seconds):
            self.seconds = max(self.seconds, float(frames.pts_seconds.max()))


def _timed(batches: Iterator, watched: _Watched) -> Iterator[_Timed]:
    for batch in batches:
        yield _Timed(batch, watched.seconds)


class LocalExecutor:
    """Runs the per-video step in this process: decoding in `decode_workers` threads, encoding in
    the caller's; a decoder call (open, or one batch) that takes over `decode_timeout` seconds fails
    that video with a `VideoDecodeError` and the others go on."""

    def __init__(self, decode_workers: int = 1, decode_timeout: float = DECODE_TIMEOUT):
        check_count("decode_workers", decode_workers)
        self.decode_workers = decode_workers
        self.decode_timeout = decode_timeout

    def embed_each(
        self,
        sources: Sequence,
        encoder,
        run: RunOptions,
        opener: Opener,
        batch_size: int,
        meanwhile: Callable[[], object] | None = None,
        progress: Progress | None = None,
    ) -> Iterator[Embeddings | Exception]:
        """Each source's embeddings, or the error that stopped it, in order. `meanwhile` runs in
        this thread while the first video opens and its first frames decode; `progress` hears how
        far each video is as each of its batches is encoded."""
        # Decode workers take whole videos when there are several, else the reads of the one.
        workers, split = (self.decode_workers, 1) if len(sources) > 1 else (1, self.decode_workers)
        opened: dict[int, Video] = {}  # each source's open video, set and read in its decoding thread
        made = [
            functools.partial(self._decoded, source, encoder, run, opener, batch_size, split, opened, k)
            for k, source in enumerate(sources)
        ]

        def rest(k: int) -> None:  # source k's batches wait for the encoder: its decoder should too
            if k in opened:
                opened[k].rest()

        stream = prefetch_each(
            made, [source_name(s) for s in sources], self.decode_timeout, meanwhile=meanwhile, workers=workers, on_wait=rest
        )
        with closing(stream):
            for _, items in itertools.groupby(stream, key=itemgetter(0)):
                try:
                    yield _encoded(encoder, (item for _, item in items), progress)
                except Exception as exc:  # this video's failure; the others go on
                    yield exc

    @staticmethod
    def _decoded(source, encoder, run, opener, batch_size, split, opened, k) -> Iterator:
        """What a decoding thread makes of one source: (plan, name), then the plan's batches; after
        damage is found, `REPLAN` and the same again over the frames that decode."""
        with opener(source) as video:
            opened[k] = video
            try:
                while True:
                    with naming(video.path):  # options this video cannot be sampled with: refused before decoding
                        plan = encoder.plan(video.timeline, run)
                    yield plan, video.path, video.duration
                    chunks = plan.chunks(batch_size) if split > 1 else None
                    try:
                        if chunks is None or len(chunks) <= 1:
                            watched = _Watched(video)
                            yield from _timed(plan.batches(watched, encoder.preprocessor, batch_size), watched)
                        else:
                            yield from _split_reads(plan, chunks, video.path, opener, encoder.preprocessor, split)
                        return
                    except TimelineChanged:
                        if split > 1:  # another decoder found it: this one learns the same, alone
                            split = 1
                            video.keep_decodable()
                    yield REPLAN
            finally:
                del opened[k]


def _split_reads(plan, chunks, path: str, opener: Opener, preprocess, workers: int) -> Iterator:
    """The plan's independent reads on `workers` threads, in order, each thread with a decoder of
    its own on the file."""
    local, videos, lock = threading.local(), [], threading.Lock()

    def read(chunk) -> _Timed:
        if not hasattr(local, "video"):
            local.video = opener(path)
            with lock:
                videos.append(local.video)
        watched = _Watched(local.video)
        batch = plan.read(watched, chunk, preprocess)
        local.video.rest()  # its next read is further on: it seeks there anyway
        return _Timed(batch, watched.seconds)

    try:
        yield from ordered_map(read, chunks, workers)
    finally:
        for video in videos:
            video.close()


def _encoded(encoder, items: Iterator, progress: Progress | None) -> Embeddings:
    """Encode one video's batches as they arrive (see `LocalExecutor._decoded`) and assemble them."""
    first = next(items)
    if isinstance(first, Exception):
        raise first
    plan, path, duration = first
    encoded = []
    for item in items:
        if item is END:  # return now: the next item is the next video's, maybe not made yet
            break
        if isinstance(item, Exception):
            raise item
        if item is REPLAN:  # the next item is the new plan; what was encoded is of the old one
            plan, path, duration = next(items)
            encoded = []
            continue
        encoded.append(encoder.encode(item.batch))
        release_free_memory()
        if progress is not None:
            progress(path, min(item.seconds, duration), duration)
    return plan.finish(encoded, path)
