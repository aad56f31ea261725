"""ZeroShotVideoClassifier: the public entry point, composing the stages for each call.

Like a transformers pipeline each video goes through preprocess (labels and options validated
before any decoding), forward (its embeddings: stored ones as given, else from the cache, else made
by the executor running the per-video step) and postprocess (label texts against the embeddings:
ranking, windows, events). Embeddings are kept per video file, and the label-independent part of
scoring per embeddings, so a new label set or new windows cost no decoding and no image encoding.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing

import numpy as np
import torch

from .cache import LRUCache, file_key
from .embed import Embeddings, Opener, source_name
from .embeddings import StoredEmbeddings
from .errors import SingleLabelWarning
from .events import find_events
from .executor import LocalExecutor
from .models import DEFAULT_MODEL, Encoder, Features, load_encoder
from .options import RunOptions, check_count
from .prompts import Label, TextEmbeddingCache, parse_labels, single_label_warning
from .results import VideoResult
from .sampling import Span
from .scoring import ranked
from .stream import DECODE_TIMEOUT


def _raised(outcome):
    """A result as is; an error (a failed video's outcome) raised."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def _caller_level() -> int:
    """The `stacklevel` that points a warning at the first frame outside actionzs (the user's line,
    whichever entry point they called)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def _events(spans: list[Span], values: np.ndarray, names: list[str], duration: float, options) -> list[dict]:
    """`find_events` over the part of the video the windows cover (the whole video, or the part a
    run's start/end asked for: windows begin at its start and the last reaches its end), in the
    video's own times: events never reach outside the part."""
    start, end = spans[0].start_seconds, spans[-1].end_seconds
    if start == 0 and end == duration:
        return find_events(spans, values, names, duration, options)
    shifted = [Span(s.start_seconds - start, s.end_seconds - start) for s in spans]
    found = find_events(shifted, values, names, end - start, options)
    return [{**event, "start": event["start"] + start, "end": event["end"] + start} for event in found]


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
        executor=None,
        progress: Callable[[str, float, float], None] | None = None,
    ):
        check_count("batch_size", batch_size)
        self.encoder = encoder
        self.options = options or RunOptions()
        self.batch_size = batch_size
        self.opener = Opener(backend)
        # What runs the per-video step: this process's threads, or another engine with the same
        # `embed_each` (the Ray engine's actors).
        self.executor = executor if executor is not None else LocalExecutor(decode_workers, decode_timeout)
        # Told `(video, seconds done, its duration)` as the local executor encodes each batch, and
        # as each video's embeddings are ready (the only report other engines give); None: silent.
        self.progress = progress
        self.texts = TextEmbeddingCache(encoder)
        self._text_lock = threading.Lock()
        self._last_labels: tuple[object, torch.Tensor | None] = (None, None)
        self._embedded = LRUCache(cache_videos)
        self._features = LRUCache(cache_videos)

    @property
    def model(self) -> str:
        return self.encoder.name

    @property
    def backend(self) -> str:
        return self.opener.backend

    @property
    def decode_workers(self) -> int:
        return self.executor.decode_workers

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
        self._check_thresholds(labels, run)
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

    def embed_each(self, videos: Iterable, **options) -> Iterator[tuple[object, Embeddings | Exception]]:
        """`(video, embeddings)` for each video in order, as each is done (the next decoding while
        this one is encoded); a video that fails gives `(video, error)` and the others go on."""
        videos = list(videos)
        run = self.options.updated(**options)
        with closing(self._embed_each(videos, run)) as embedded:
            yield from zip(videos, embedded)

    # -- preprocess: labels and options, validated before any decoding ---------------------------

    def prepare(self, candidate_labels, **options) -> tuple[list[Label], RunOptions]:
        """Parsed labels and this call's options (the classifier's, overridden by `options`); a
        thresholds file (`events.thresholds`) checked against this model and these labels."""
        labels, run = parse_labels(candidate_labels), self.options.updated(**options)
        self._check_thresholds(labels, run)
        warning = single_label_warning(labels, self.encoder.head, run, python=True)
        if warning:
            warnings.warn(warning, SingleLabelWarning, stacklevel=_caller_level())
        return labels, run

    def _check_thresholds(self, labels: list[Label], run: RunOptions) -> None:
        if run.segments and run.events.calibrated is not None:
            run.events.calibrated.check(self.encoder, [label.name for label in labels], run.hypothesis_template)

    # -- forward: video -> embeddings (each frame once, cached per video) ------------------------

    def embeddings_for(self, video, run: RunOptions, meanwhile: Callable[[], object] | None = None) -> Embeddings:
        """The embeddings `run` scores: stored ones as given, else from the cache or the video.

        `meanwhile` runs while the video opens and its first frames decode."""
        with closing(self._embed_each([video], run, meanwhile)) as embedded:
            return _raised(next(embedded))

    def _embed_each(self, videos: list, run: RunOptions, meanwhile: Callable[[], object] | None = None) -> Iterator[Embeddings | Exception]:
        """Each video's embeddings, or the error that stopped it, in order: stored embeddings (once
        checked) and cached ones as they are, the rest made by the executor, a file listed twice
        embedded once."""
        sampling = json.dumps(self.encoder.sampling(run), sort_keys=True)
        keys = [file_key(video, self.opener.backend, sampling) for video in videos]
        known: dict[int, Embeddings | Exception] = {}
        first: dict[tuple, int] = {}  # key -> the position that embeds it
        for k, (video, key) in enumerate(zip(videos, keys)):
            if isinstance(video, StoredEmbeddings):
                known[k] = self._checked(video)
            elif key is not None and key not in first and (cached := self._embedded.get(key)) is not None:
                known[k] = cached
            if key is not None and k not in known:
                first.setdefault(key, k)
        todo = [k for k in range(len(videos)) if k not in known and (keys[k] is None or first[keys[k]] == k)]
        last_use = {first[key]: k for k, key in enumerate(keys) if key in first}
        if not todo and meanwhile is not None:
            meanwhile()
        made = self.executor.embed_each(
            [videos[k] for k in todo], self.encoder, run, self.opener, self.batch_size, meanwhile, progress=self.progress
        )
        held: dict[int, Embeddings | Exception] = {}
        with closing(made):
            for k, key in enumerate(keys):
                if k in known:
                    outcome = known.pop(k)
                elif key is not None and first[key] != k:
                    outcome = held[first[key]]
                else:
                    outcome = next(made)
                    if key is not None and not isinstance(outcome, Exception):
                        self._embedded.put(key, outcome)
                if key in first and last_use[first[key]] > k:
                    held[first[key]] = outcome
                for position in [p for p in held if last_use[p] <= k]:
                    del held[position]
                if self.progress is not None and not isinstance(outcome, Exception):
                    self.progress(source_name(videos[k]), outcome.duration, outcome.duration)
                yield outcome

    def _checked(self, embeddings: StoredEmbeddings) -> Embeddings | Exception:
        try:
            self.encoder.check(embeddings)
        except Exception as exc:  # this input's failure; the others go on
            return exc
        return embeddings

    # -- postprocess: embeddings + label vectors -> ranked labels, segments, events ---------------

    def score(self, embeddings: Embeddings, labels: list[Label], run: RunOptions) -> VideoResult:
        """Rank `labels` for the clip and, with segments on, each window; find events."""
        text = self._label_vectors(labels, run)
        names = [label.name for label in labels]
        features = self.features(embeddings, run)
        clip, windows = self.encoder.similarity(features, text)
        head = self.encoder.head
        found = dict(
            video=embeddings.source, duration=embeddings.duration, model=self.model, gaps=list(embeddings.gaps),
            labels=ranked(names, clip, head, run.top_k), label_names=names, top_k=run.top_k, embeddings=embeddings,
        )
        if features.spans is None:
            return VideoResult(**found)
        similarity = windows.numpy()
        scores = head.probabilities(windows).numpy()
        values = similarity if run.events.measure == "similarity" else scores
        return VideoResult(
            **found,
            events=_events(features.spans, values, names, embeddings.duration, run.events),
            thresholds=run.events.described(names),
            window_spans=np.array([[s.start_seconds, s.end_seconds] for s in features.spans]),
            window_scores=scores,
            window_similarity=similarity,
        )

    def features(self, embeddings: Embeddings, run: RunOptions) -> Features:
        """The encoder's label-independent features of `embeddings` under `run`, kept per
        (embeddings, windows, pooling): a new label set on the same video costs two matrix products."""
        key = (id(embeddings), run.segments and (run.window, run.stride), run.pooling)
        held = self._features.get(key)
        if held is not None and held[0]() is embeddings:
            return held[1]
        features = self.encoder.features(embeddings, run)
        self._features.put(key, (weakref.ref(embeddings), features))
        return features

    def label_encoding(self, labels: list[Label], run: RunOptions) -> Callable[[], torch.Tensor]:
        """Encodes (and caches) the label texts when called: the `meanwhile` of `embeddings_for`, so
        the text encoder runs while the first frames decode instead of after the last are encoded."""
        return lambda: self._label_vectors(labels, run)

    def _label_vectors(self, labels: list[Label], run: RunOptions) -> torch.Tensor:
        """The label vectors, the last set kept: a batch scores every video with the same labels."""
        key = (tuple(labels), run.hypothesis_template)
        with self._text_lock:
            if self._last_labels[0] != key:
                self._last_labels = (key, self.texts.embed_labels(labels, run.hypothesis_template))
            return self._last_labels[1]

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
    check_count("batch_size", batch_size)
    encoder = load_encoder(model, device, dtype)
    return ZeroShotVideoClassifier(encoder, run, batch_size=batch_size, backend=backend, decode_workers=decode_workers)


__all__ = ["VideoResult", "ZeroShotVideoClassifier", "pipeline"]
