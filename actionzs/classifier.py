"""ZeroShotVideoClassifier: wires sampling, decoding, encoding and scoring for one call.

Like a transformers pipeline it splits each video into preprocess (open, validate, plan the frames),
forward (embed frames, each once, cached per video) and postprocess (score labels, segments, events).
Embeddings are kept per video, so a new label set or new windows cost no decoding and no image
encoding.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import cached_property
from operator import itemgetter

import numpy as np
import torch

from . import sampling
from .embeddings import ClipEmbeddings, FrameEmbeddings
from .errors import InvalidInputError
from .events import find_events
from .models import DEFAULT_MODEL, Encoder, load_encoder
from .options import RunOptions, check_count
from .prompts import Label, TextEmbeddingCache, parse_labels
from .scoring import pooled_frames, ranked, ranked_rows
from .stream import DECODE_TIMEOUT, END, mapped_empty, ordered_map, prefetch_each
from .video import Video, image_video, open_video


@dataclass
class VideoResult:
    """Everything one video's run produced; `to_dict` is what the CLI writes as JSON.

    With segments on, `window_spans` [S, 2] (seconds), `window_scores` and `window_similarity`
    [S, M] (labels in `label_names` order) hold the per-window results as arrays; `segments` is
    the same as ranked dicts, built on first use.
    """

    video: str
    duration: float
    model: str
    labels: list[dict]
    events: list[dict] | None = None
    label_names: list[str] = field(default_factory=list, repr=False)
    window_spans: np.ndarray | None = field(default=None, repr=False)
    window_scores: np.ndarray | None = field(default=None, repr=False)
    window_similarity: np.ndarray | None = field(default=None, repr=False)
    top_k: int | None = field(default=None, repr=False)
    embeddings: FrameEmbeddings | ClipEmbeddings | None = field(default=None, repr=False)

    @cached_property
    def segments(self) -> list[dict] | None:
        """[{"start", "end", "labels": [{"label", "score", "similarity"}, ...]}] per window."""
        if self.window_spans is None:
            return None
        rows = ranked_rows(
            self.label_names, torch.from_numpy(self.window_scores), torch.from_numpy(self.window_similarity), self.top_k
        )
        return [
            {"start": round(start, 3), "end": round(end, 3), "labels": row}
            for (start, end), row in zip(self.window_spans.tolist(), rows)
        ]

    def to_dict(self) -> dict:
        out = {"video": self.video, "duration": round(self.duration, 3), "model": self.model, "labels": self.labels}
        if self.window_spans is not None:
            out["segments"], out["events"] = self.segments, self.events
        return out


Embeddings = FrameEmbeddings | ClipEmbeddings


@dataclass
class _Plan:
    """One video's work, made in the decoding thread: `batches` are decoded and preprocessed there,
    `encode` runs on each in the caller's thread, `finish` turns what it returned into embeddings."""

    key: tuple | None
    batches: Iterator[torch.Tensor]
    encode: Callable[[torch.Tensor], object]
    finish: Callable[[list], Embeddings]


@dataclass(frozen=True)
class _Same:
    """Stands for a video listed earlier in the same call (same file, same plan): embedded once."""

    position: int


def _name(video) -> str:
    if isinstance(video, (str, os.PathLike)):
        return os.fspath(video)
    return getattr(video, "source", "<image>")


def _raised(outcome):
    """A result as is; an error (a failed video's outcome) raised."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class ZeroShotVideoClassifier:
    """Ranks free-text labels for whole videos and for time windows, without training on them.

    Call it like a transformers pipeline: `clf(video, candidate_labels=[...])`. `video` is a path, a
    list of paths, a PIL image or uint8 array (a one-frame video), or stored embeddings.
    """

    def __init__(
        self,
        encoder: Encoder,
        options: RunOptions | None = None,
        *,
        batch_size: int = 32,
        backend: str = "auto",
        decode_workers: int = 1,
        decode_timeout: float = DECODE_TIMEOUT,
        cache_videos: int = 32,
    ):
        check_count("decode_workers", decode_workers)
        self.encoder = encoder
        self.options = options or RunOptions()
        self.batch_size = batch_size
        self.backend = backend
        self.decode_workers = decode_workers
        self.decode_timeout = decode_timeout
        self.texts = TextEmbeddingCache(encoder)
        self._text_lock = threading.Lock()
        self._embedded: OrderedDict[tuple, FrameEmbeddings | ClipEmbeddings] = OrderedDict()
        self._pooled_cache: OrderedDict[tuple, tuple] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_videos = cache_videos

    @property
    def model(self) -> str:
        return self.encoder.name

    # -- the transformers-style entry point -------------------------------------------------------

    def __call__(self, videos, candidate_labels=None, **options):
        """Scores for one video (a list of {"label", "score", "similarity"}, best first), or with
        `segments=True` a dict with "labels", "segments" and "events"; a list of videos gives a list.

        Keyword options override the classifier's for this call: fps, num_frames, window, stride,
        pooling, hypothesis_template, top_k, segments, events.
        """
        if isinstance(videos, (list, tuple)):
            return [self.format(r) for r in self.classify_many(videos, candidate_labels, **options)]
        return self.format(self.classify(videos, candidate_labels, **options))

    @staticmethod
    def format(result: VideoResult) -> list[dict] | dict:
        """The transformers-style view of a result: the ranked list, or a dict when segments are on."""
        if result.window_spans is None:
            return result.labels
        return {"labels": result.labels, "segments": result.segments, "events": result.events}

    def classify_many(self, videos: Sequence, candidate_labels, **options) -> list[VideoResult]:
        """`classify` for each video, raising the first error; labels and options are validated once,
        before any decoding. `classify_each` goes on past failures and yields results as they come."""
        with closing(self.classify_each(videos, candidate_labels, **options)) as outcomes:
            return [_raised(outcome) for _, outcome in outcomes]

    def classify_each(self, videos: Iterable, candidate_labels, **options) -> Iterator[tuple[object, VideoResult | Exception]]:
        """`(video, result)` for each video in order, as each is done; a video that fails gives
        `(video, error)` and the others go on. The next video decodes while this one is encoded, so
        many short clips cost little more than their encoding. Labels and options are validated here,
        before any decoding."""
        labels, run = self.prepare(candidate_labels, **options)
        return self._classified(list(videos), labels, run)

    def classify(self, video, candidate_labels, **options) -> VideoResult:
        """One video's clip ranking and, with segments on, its segments and events."""
        labels, run = self.prepare(candidate_labels, **options)
        return self.classify_prepared(video, labels, run)

    def classify_prepared(self, video, labels: list[Label], run: RunOptions) -> VideoResult:
        """`classify` with labels and options from `prepare`; the result keeps its embeddings."""
        [(_, outcome)] = self._classified([video], labels, run)
        return _raised(outcome)

    def _classified(self, videos: list, labels: list[Label], run: RunOptions) -> Iterator[tuple[object, VideoResult | Exception]]:
        # Closed explicitly: an error's traceback would otherwise keep the decoding thread alive.
        with closing(self._embed_each(videos, run, meanwhile=self.label_encoding(labels, run))) as embedded:
            for video, outcome in zip(videos, embedded):
                if not isinstance(outcome, Exception):
                    try:
                        outcome = self.score(outcome, labels, run)
                    except Exception as exc:  # this video's failure; the others go on
                        outcome = exc
                yield video, outcome

    def embed(self, video, **options) -> Embeddings:
        """The (cached) embeddings a run with these options scores: frames for frame encoders, one
        feature set per span (whole video, then windows) for clip encoders such as X-CLIP."""
        return self.embeddings_for(video, self.options.updated(**options))

    # -- preprocess: labels and options, validated before any decoding ---------------------------

    def prepare(self, candidate_labels, **options) -> tuple[list[Label], RunOptions]:
        """Parsed labels and this call's options (the classifier's, overridden by `options`)."""
        return parse_labels(candidate_labels), self.options.updated(**options)

    # -- forward: video -> embeddings (each frame once, cached per video) ------------------------

    def embeddings_for(self, video, run: RunOptions, meanwhile: Callable[[], object] | None = None) -> Embeddings:
        """The embeddings `run` scores: stored ones as given, else from the cache or the video.

        `meanwhile` runs while the video opens and its first frames decode."""
        [outcome] = self._embed_each([video], run, meanwhile)
        return _raised(outcome)

    def _embed_each(self, videos: list, run: RunOptions, meanwhile: Callable[[], object] | None = None) -> Iterator[Embeddings | Exception]:
        """Each video's embeddings, or the error that stopped it, in order. One thread decodes the
        videos in turn (`prefetch_each`) while this one encodes; a file listed twice is embedded once."""
        keys = [self._cache_key(video, run) for video in videos]
        # Decode workers take whole videos when there are several, else the batches of the one.
        workers, split = (self.decode_workers, 1) if len(videos) > 1 else (1, self.decode_workers)
        opened: dict[int, Video] = {}  # each source's open video, set and read in its producer thread
        first: dict[tuple, int] = {}
        same = [first.setdefault(key, k) if key is not None else k for k, key in enumerate(keys)]
        last_use = {position: k for k, position in enumerate(same)}
        sources = [
            functools.partial(self._source, video, key, run, split, opened, k)
            if same[k] == k else functools.partial(iter, [_Same(same[k])])
            for k, (video, key) in enumerate(zip(videos, keys))
        ]
        held: dict[int, Embeddings | Exception] = {}

        def rest(k: int) -> None:  # source k's batches wait for the encoder: its decoder should too
            if k in opened:
                opened[k].rest()

        stream = prefetch_each(
            sources, [_name(v) for v in videos], self.decode_timeout, meanwhile=meanwhile, workers=workers, on_wait=rest
        )
        with closing(stream):
            for k, items in itertools.groupby(stream, key=itemgetter(0)):
                try:
                    outcome = self._collect(item for _, item in items)
                except Exception as exc:  # this video's failure; the others go on
                    outcome = exc
                if isinstance(outcome, _Same):
                    outcome = held[outcome.position]
                if last_use.get(k, k) > k:
                    held[k] = outcome
                for position in [p for p in held if last_use[p] <= k]:
                    del held[position]
                yield outcome

    def _source(self, video, key: tuple | None, run: RunOptions, split: int, opened: dict[int, Video], k: int) -> Iterator:
        """What the decoding thread makes of one video: its embeddings when they are known (stored or
        cached), else its plan followed by its preprocessed batches. While open, the video is
        `opened[k]`."""
        if isinstance(video, (FrameEmbeddings, ClipEmbeddings)):
            self._check_embeddings(video)
            yield video
            return
        cached = None
        if key is not None:
            with self._cache_lock:
                if key in self._embedded:
                    self._embedded.move_to_end(key)
                    cached = self._embedded[key]
        if cached is not None:
            yield cached
            return
        with self._open(video) as current:
            opened[k] = current
            try:
                if self.encoder.frames_per_clip is None:
                    plan = self._frame_plan(current, run, key, split)
                else:
                    plan = self._clip_plan(current, run, key)
                yield plan
                yield from plan.batches
            finally:
                del opened[k]

    def _collect(self, items: Iterator) -> Embeddings | _Same:
        """Encode one video's batches as they arrive (see `_source`) and remember the result."""
        first = next(items)
        if isinstance(first, Exception):
            raise first
        if not isinstance(first, _Plan):
            return first
        encoded = []
        for item in items:
            if item is END:  # return now: the next item is the next video's, maybe not made yet
                break
            if isinstance(item, Exception):
                raise item
            encoded.append(first.encode(item))
        embeddings = first.finish(encoded)
        if first.key is not None:
            with self._cache_lock:
                self._embedded[first.key] = embeddings
                while len(self._embedded) > self._cache_videos:
                    self._embedded.popitem(last=False)
        return embeddings

    def _check_embeddings(self, embeddings: FrameEmbeddings | ClipEmbeddings) -> None:
        if embeddings.model != self.model:
            raise InvalidInputError(f"{embeddings.source}: embeddings are from {embeddings.model!r}, not {self.model!r}")

    def _cache_key(self, video, run: RunOptions) -> tuple | None:
        if not isinstance(video, (str, os.PathLike)):
            return None
        try:
            info = os.stat(video)
        except OSError:
            return None  # opening reports the problem
        plan = ("clips", run.segments and (run.window, run.stride)) if self.encoder.frames_per_clip else self._sampling(run)
        return (os.path.realpath(video), info.st_size, info.st_mtime_ns, self.backend, plan)

    def _open(self, video) -> Video:
        if isinstance(video, (str, os.PathLike)):
            return open_video(os.fspath(video), self.backend)
        if isinstance(video, Video):
            raise InvalidInputError("pass the video's path, not an open Video (each run opens its own decoder)")
        return image_video(video)

    @staticmethod
    def _sampling(run: RunOptions) -> tuple:
        if run.segments or run.num_frames is None:
            return ("fps", float(run.fps))
        return ("uniform", int(run.num_frames))

    def _frame_plan(self, video: Video, run: RunOptions, key: tuple | None, split: int) -> _Plan:
        kind, value = self._sampling(run)
        timeline = video.timeline
        sample = sampling.at_fps(timeline, value) if kind == "fps" else sampling.uniform(timeline, value)
        # A frame sampled twice (uniform sampling of a short video) is embedded once and counted twice.
        unique, where = np.unique(sample.indices, return_inverse=True)
        path, duration = video.path, video.duration

        def finish(encoded: list) -> FrameEmbeddings:
            vectors = np.concatenate(encoded)[where]
            return FrameEmbeddings(vectors, sample.indices, sample.pts_seconds, duration, self.model, path, {kind: value})

        return _Plan(key, self._frame_batches(video, unique, split), lambda pixels: self.encoder.embed_frames(pixels).cpu().numpy(), finish)

    def _frame_batches(self, video: Video, indices: np.ndarray, workers: int) -> Iterator[torch.Tensor]:
        """Preprocessed batches of the frames at `indices`, in order. With several workers, each batch
        is read by one of them, every worker with a decoder of its own on the file."""
        preprocess = self.encoder.preprocessor
        size = preprocess.decode_size
        if workers == 1 or video.backend == "image" or len(indices) <= self.batch_size:
            for frames in video.iter_frames(indices, size, chunk=self.batch_size):
                yield preprocess(frames.data)
            return
        local, opened, lock = threading.local(), [], threading.Lock()

        def read(chunk: np.ndarray) -> torch.Tensor:
            if not hasattr(local, "video"):
                local.video = open_video(video.path, self.backend)
                with lock:
                    opened.append(local.video)
            frames = local.video.get_frames(chunk, size).data
            local.video.rest()  # its next batch is further on: it seeks there anyway
            return preprocess(frames)

        chunks = [indices[i : i + self.batch_size] for i in range(0, len(indices), self.batch_size)]
        try:
            yield from ordered_map(read, chunks, workers)
        finally:
            for worker_video in opened:
                worker_video.close()

    def _clip_spans(self, duration: float, run: RunOptions) -> list[sampling.Span]:
        whole = [sampling.Span(0.0, duration)]
        return whole + sampling.windows(duration, run.window, run.stride) if run.segments else whole

    def _clip_plan(self, video: Video, run: RunOptions, key: tuple | None) -> _Plan:
        """Each span sampled to exactly `frames_per_clip` frames. Spans are encoded in the order the
        decoder reaches their last frame, so the file is read once, front to back; a frame shared by
        overlapping spans is decoded and preprocessed once and held only while a later span needs it."""
        frames = self.encoder.frames_per_clip
        spans = self._clip_spans(video.duration, run)
        per_span = np.stack([sampling.uniform(video.timeline, frames, s.start_seconds, s.end_seconds).indices for s in spans])
        order = np.argsort(per_span.max(axis=1), kind="stable")
        clips_per_batch = max(1, self.batch_size // frames)
        preprocess = self.encoder.preprocessor
        path, duration = video.path, video.duration

        def batches():
            held: dict[int, torch.Tensor] = {}
            for start in range(0, len(order), clips_per_batch):
                wanted = per_span[order[start : start + clips_per_batch]]
                remaining = per_span[order[start:]]
                new = np.unique(remaining[remaining <= wanted.max()])  # all the decoder passes on the way
                new = new[~np.isin(new, list(held))]
                for chunk in video.iter_frames(new, preprocess.decode_size, chunk=self.batch_size):
                    held.update(zip(chunk.indices.tolist(), preprocess(chunk.data)))
                frame_shape = next(iter(held.values())).shape
                batch = mapped_empty((wanted.size, *frame_shape), torch.float32)  # handed to the encoding thread
                torch.stack([held[i] for i in wanted.ravel().tolist()], out=batch)
                yield batch.view(*wanted.shape, *frame_shape)
                needed = set(per_span[order[start + clips_per_batch :]].ravel().tolist())
                held = {i: x for i, x in held.items() if i in needed}

        def finish(features: list) -> ClipEmbeddings:
            back = np.argsort(order)  # encoded in decoder order, stored in span order
            return ClipEmbeddings(
                np.array([[s.start_seconds, s.end_seconds] for s in spans]),
                torch.cat([f["video"] for f in features]).cpu().numpy()[back],
                torch.cat([f["visual"] for f in features]).cpu().numpy()[back],
                per_span, duration, self.model, path,
            )

        return _Plan(key, batches(), self.encoder.embed_clips, finish)

    # -- postprocess: embeddings + label vectors -> ranked labels, segments, events ---------------

    def score(self, embeddings: FrameEmbeddings | ClipEmbeddings, labels: list[Label], run: RunOptions) -> VideoResult:
        """Rank `labels` for the clip and, with segments on, each window; find events."""
        text = self._label_vectors(labels, run)
        names = [label.name for label in labels]
        if isinstance(embeddings, FrameEmbeddings):
            spans = sampling.windows(embeddings.duration, run.window, run.stride) if run.segments else None
            whole, pooled = self._pooled(embeddings, spans, run)
            clip, windows = (whole @ text.T)[0], (None if pooled is None else pooled @ text.T)
        else:
            spans, clip, windows = self._clip_similarity(embeddings, text, run)
        head = self.encoder.head
        result = VideoResult(
            embeddings.source, embeddings.duration, self.model, ranked(names, clip, head, run.top_k),
            label_names=names, top_k=run.top_k, embeddings=embeddings,
        )
        if spans is None:
            return result
        result.window_spans = np.array([[s.start_seconds, s.end_seconds] for s in spans])
        result.window_similarity = windows.numpy()
        result.window_scores = head.probabilities(windows).numpy()
        values = result.window_similarity if run.events.measure == "similarity" else result.window_scores
        result.events = find_events(spans, values, names, embeddings.duration, run.events)
        return result

    def label_encoding(self, labels: list[Label], run: RunOptions) -> Callable[[], torch.Tensor]:
        """Encodes (and caches) the label texts when called: the `meanwhile` of `embeddings_for`, so
        the text encoder runs while the first frames decode instead of after the last are encoded."""
        return lambda: self._label_vectors(labels, run)

    def _label_vectors(self, labels: list[Label], run: RunOptions) -> torch.Tensor:
        with self._text_lock:
            return self.texts.embed_labels(labels, run.hypothesis_template)

    def _pooled(self, embeddings: FrameEmbeddings, spans, run: RunOptions):
        """Pooled clip and window vectors, kept per (embeddings, windows, pooling): a new label set
        on the same video costs two matrix products."""
        key = (id(embeddings), spans and (run.window, run.stride), run.pooling)
        with self._cache_lock:
            held = self._pooled_cache.get(key)
            if held is not None and held[0]() is embeddings:
                self._pooled_cache.move_to_end(key)
                return held[1]
        pooled = pooled_frames(embeddings, spans, run.pooling)
        with self._cache_lock:
            self._pooled_cache[key] = (weakref.ref(embeddings), pooled)
            while len(self._pooled_cache) > self._cache_videos:
                self._pooled_cache.popitem(last=False)
        return pooled

    def _clip_similarity(self, embeddings: ClipEmbeddings, text: torch.Tensor, run: RunOptions):
        stored = [sampling.Span(float(a), float(b)) for a, b in embeddings.spans]
        spans = self._clip_spans(embeddings.duration, run)
        if stored != spans:
            raise InvalidInputError(
                f"{embeddings.source}: clip embeddings were made for other windows; embed again with these options"
            )
        features = {"video": torch.from_numpy(embeddings.video), "visual": torch.from_numpy(embeddings.visual)}
        step = max(1, self.batch_size)
        sims = torch.cat([
            self.encoder.similarity({k: v[i : i + step] for k, v in features.items()}, text).cpu()
            for i in range(0, len(spans), step)
        ])
        return (spans[1:] if run.segments else None), sims[0], (sims[1:] if run.segments else None)

    def __repr__(self) -> str:
        return f"ZeroShotVideoClassifier({self.encoder!r}, {self.options})"


def pipeline(
    model: str = DEFAULT_MODEL,
    device=None,
    dtype="auto",
    *,
    batch_size: int = 32,
    backend: str = "auto",
    decode_workers: int = 1,
    **options,
) -> ZeroShotVideoClassifier:
    """Load `model` (hub id or local checkpoint directory) and return a ready classifier.

    `decode_workers` > 1 decodes that many videos of a list at once, or the batches of a single
    video, each with its own decoder: worth it when the encoder outruns one decoder (a GPU, or many
    cores). `options` set the defaults of every call (see `RunOptions`): fps, num_frames, window,
    stride, pooling, hypothesis_template, top_k, segments, events.
    """
    run = RunOptions().updated(**options)  # validate before the (slow) model load
    check_count("decode_workers", decode_workers)
    encoder = load_encoder(model, device, dtype)
    return ZeroShotVideoClassifier(encoder, run, batch_size=batch_size, backend=backend, decode_workers=decode_workers)


__all__ = ["VideoResult", "ZeroShotVideoClassifier", "pipeline"]
