"""`Library`: a folder of videos and images indexed once, then searched and re-labelled.

`add` embeds each new or changed file's frames once (at `fps`, 1 a second by default) and stores
them with their times (`store.LibraryStore`); files already stored are recognised by path, size and
time, a renamed or copied one by its content hash, and neither is embedded again. `search` finds
the moments nearest a text, an image or a stored moment (the nearest frames by cosine similarity,
merged per file into moments); `classify` scores new labels against the stored frames as the
classifier scores a video, with no decoding and no image encoding.

Nearest frames come from an exact search below `neighbours.FAISS_THRESHOLD` vectors and from a
FAISS index above it, saved as `<index>.neighbours` by each `add` and brought up to date in memory
when a search finds files changed since (the catalog's versions say which).
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..embeddings import FrameEmbeddings
from ..errors import ActionzsError, InvalidInputError, VideoDecodeError
from ..models import DEFAULT_MODEL
from ..options import RunOptions
from ..results import VideoResult
from .catalog import Update, file_kind, plan_update
from .moments import Hit, Moment, end_of, merge_hits
from .store import LibraryStore, StoredFile, WriterLock, content_hash

log = logging.getLogger(__name__)

#: Frames asked of the neighbour index per moment wanted: adjacent frames of one moment all
#: match, so more frames than moments are needed (doubled until enough moments are found).
FRAMES_PER_MOMENT = 10


def frame_ids(file_id: int, count: int) -> np.ndarray:
    """The neighbour index's ids of a stored file's `count` frames: the file's id in the high 32
    bits, the frame's row in the low ones (a hit's id is split back so)."""
    return (file_id << 32) | np.arange(count, dtype=np.int64)


@dataclass
class IndexReport:
    """What one `Library.add` did: files embedded, unchanged, found moved or copied (not
    embedded again), failed (path -> reason), and pruned; seconds of footage embedded."""

    embedded: list[str] = field(default_factory=list)
    unchanged: int = 0
    moved: int = 0
    copied: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    pruned: int = 0
    gone: int = 0
    footage_seconds: float = 0.0


@dataclass(frozen=True)
class Query:
    """One thing to search for: a text, an image (a path, PIL image or array), or a stored
    moment (`like` = (video path, seconds)). `name` is how results name it."""

    text: str | None = None
    image: object = None
    like: tuple[str, float] | None = None

    @property
    def name(self) -> str:
        if self.text is not None:
            return self.text
        if self.like is not None:
            return f"like {self.like[0]}@{self.like[1]:g}"
        return os.fspath(self.image) if isinstance(self.image, (str, os.PathLike)) else "<image>"


class Library:
    """An index of videos and images at `path` (one SQLite file, see `store`).

    `model` is the model that embeds (hub id or checkpoint folder); None takes the one the index
    was built with (or the default for a new index). A classifier made elsewhere can be given
    instead (`classifier`); options not given (fps, backend, ...) are the classifier's. `executor`
    runs the per-video step of the classifier it loads (default: this process's `LocalExecutor`;
    `actionzs.ray_executor.RayExecutor` for Ray actors); this process alone writes the index.
    """

    def __init__(self, path: str | os.PathLike, model: str | None = None, *, classifier=None, fps: float | None = None,
                 keyframes: bool | None = None, snap_to_keyframes: float | None = None, backend: str = "auto",
                 decode_workers: int = 1, batch_size: int = 32, device=None, dtype="auto", executor=None):
        self.path = Path(path)
        self._model = model
        self._classifier = classifier
        self._loading = {"backend": backend, "decode_workers": decode_workers, "batch_size": batch_size,
                         "device": device, "dtype": dtype, "executor": executor}
        self._fps = fps
        self._keyframes = keyframes
        self._snap = snap_to_keyframes
        self._neighbours: dict[bool, tuple[int, object]] = {}  # exact or not -> (generation, index) last searched

    # -- the model ------------------------------------------------------------------------------

    @property
    def classifier(self):
        """The classifier that embeds and scores (loaded on first use)."""
        if self._classifier is None:
            from ..classifier import ZeroShotVideoClassifier
            from ..models import load_encoder

            model = self._model or self._built_with().get("model") or DEFAULT_MODEL
            loading = self._loading
            encoder = load_encoder(model, loading["device"], loading["dtype"])
            self._classifier = ZeroShotVideoClassifier(
                encoder, RunOptions(), batch_size=loading["batch_size"], backend=loading["backend"],
                decode_workers=loading["decode_workers"], executor=loading["executor"],
            )
        return self._classifier

    def _built_with(self) -> dict:
        if not self.path.exists():
            return {}
        with LibraryStore(self.path) as store:
            return store.settings()

    def _settings(self, run) -> dict:
        """What the index records of how its vectors were made; refuses a clip encoder."""
        encoder = self.classifier.encoder
        if encoder.embeddings_type is not FrameEmbeddings:
            raise InvalidInputError(
                f"{encoder.name}: a clip encoder (X-CLIP) conditions its text on each clip, so its embeddings are not "
                "an index a text can search; index with a frame encoder (CLIP, SigLIP)"
            )
        dim = int(encoder.embed_texts(["a"]).shape[-1])
        model = encoder.name
        if os.path.isdir(model):  # a checkpoint folder: found again from any working directory
            model = os.path.abspath(model)
        return {"model": model, "fingerprint": encoder.fingerprint, "sampling": encoder.sampling(run), "dim": dim}

    def _run(self):
        """The options of embedding for the index, the same for every file: frames at fps (snapped
        to keyframes within `snap_to_keyframes` seconds, or exact), or the stream's keyframes; for
        an existing index, what it was built with unless given."""
        built = self._built_with().get("sampling", {})
        fps = built.get("fps") if self._fps is None else self._fps
        keyframes = bool(built.get("keyframes")) if self._keyframes is None else self._keyframes
        snap = float(built.get("snap_to_keyframes", 0.0)) if self._snap is None else self._snap
        # Checked before any model loads: the classifier's own options where one was given, else the defaults it gets.
        options = self._classifier.options if self._classifier is not None else RunOptions()
        return options.updated(fps=fps, keyframes=keyframes, snap_to_keyframes=snap, segments=True)

    # -- adding files -----------------------------------------------------------------------------

    def add(self, paths: str | os.PathLike | Iterable[str | os.PathLike], *, prune: bool = False, wait: bool = False,
            progress: Callable[[str, float, str | None], None] | None = None, planned: Callable[[Update], None] | None = None) -> IndexReport:
        """Embed the new and changed videos and images of `paths` (files, folders searched
        recursively, globs; see `scan.find_videos`) and store them; retry files that failed
        before; with `prune`, drop files that are gone from the disk. One writer at a time: another
        run waits (`wait`) or fails. `progress(path, seconds, error)` is called as each file is
        done (error: None, or why it failed), `planned` once with the plan."""
        from ..scan import find_videos

        inputs = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
        found, problems = find_videos(inputs, images=True)
        for problem in problems:
            log.warning("%s", problem)
        if not found:
            raise InvalidInputError(f"no videos or images found in {', '.join(inputs)}")
        run = self._run()
        report = IndexReport()
        with WriterLock(self.path, wait=wait, waiting=log.warning), LibraryStore(self.path, writable=True, create=True) as store:
            store.claim(self._settings(run))
            update = plan_update(store, found)
            if planned is not None:
                planned(update)
            report.unchanged, report.gone = update.unchanged, len(update.gone)
            for path, reason in update.unreadable.items():
                report.failed[path] = reason
            for stored, entry in update.moved:
                store.move(stored.id, entry)
            for stored, entry in update.touched:
                store.touch(stored.id, entry)
            for stored, entry in update.copied:
                store.put(entry, stored.kind, store.embeddings(stored))
            report.moved, report.copied = len(update.moved), len(update.copied)
            if prune:
                store.remove([stored.id for stored in update.gone])
                report.pruned = len(update.gone)
            sources = [source for source, _ in update.embed]
            entries = dict(update.embed)
            for source, outcome in self.classifier.embed_each(sources, fps=run.fps, keyframes=run.keyframes,
                                                                snap_to_keyframes=run.snap_to_keyframes, segments=True):
                entry = entries[source]
                reason = _reason(outcome) if isinstance(outcome, Exception) else None
                if reason is not None:
                    store.put_failure(entry, file_kind(source), reason)
                    report.failed[source] = reason
                    seconds = 0.0
                else:
                    store.put(entry, file_kind(source), outcome)
                    report.embedded.append(source)
                    seconds = float(outcome.duration)
                    report.footage_seconds += seconds
                if progress is not None:
                    progress(source, seconds, reason)
            self._saved_neighbours(store)
        return report

    # -- searching --------------------------------------------------------------------------------

    def search(self, queries: Query | str | list[Query | str], *, top_k: int = 20, window_seconds: float = 2.0,
               videos: str | None = None, hypothesis_template=None, exact: bool = False) -> list[list[Moment]]:
        """The `top_k` best moments for each query (a text, or a `Query`), best first: hits of one
        file less than `window_seconds` apart are one moment. `videos` (a glob on the stored
        path) searches only those files, exactly. All queries share one pass over the index.
        A text's moments are scored by the model's head over the texts given, as classify scores
        labels (SigLIP: each its own probability; CLIP: a softmax that compares them, 1 for one
        text); an image's or a moment's score is its similarity."""
        queries = [q if isinstance(q, Query) else Query(text=q) for q in (queries if isinstance(queries, list) else [queries])]
        if not queries:
            raise InvalidInputError("nothing to search for: give a text, an image or a moment")
        if top_k < 1:
            raise InvalidInputError(f"top_k must be at least 1, got {top_k}")
        if not window_seconds >= 0:
            raise InvalidInputError(f"the window must be >= 0 seconds, got {window_seconds}")
        with LibraryStore(self.path) as store:
            files = {f.id: f for f in store.files("ok")}
            if videos is not None:
                files = {i: f for i, f in files.items() if fnmatch.fnmatchcase(f.path, videos)}
            if not files:
                return [[] for _ in queries]
            vectors = self._query_vectors(store, queries, hypothesis_template)
            if videos is not None:
                index = _exact_index(store, list(files.values()))
            else:
                index = self._current_neighbours(store, exact)
            return self._moments(store, files, index, queries, vectors, top_k, window_seconds)

    def _query_vectors(self, store: LibraryStore, queries: list[Query], templates) -> np.ndarray:
        """Unit vectors [Q, D] of the queries: texts by the text encoder (templates as in classify),
        images by the image encoder, moments read from the store."""
        rows = []
        for query in queries:
            if query.text is not None:
                rows.append(self._text_vector(store, query.text, templates))
            elif query.like is not None:
                rows.append(_stored_moment(store, *query.like))
            elif query.image is not None:
                rows.append(self._image_vector(store, query.image))
            else:
                raise InvalidInputError("a query needs a text, an image or a moment (like)")
        return np.stack(rows).astype(np.float32)

    def _text_vector(self, store: LibraryStore, text: str, templates) -> np.ndarray:
        from ..prompts import parse_labels

        if not text.strip():
            raise InvalidInputError("an empty query: give some words to search for")
        classifier = self._checked_classifier(store)
        run = classifier.options.updated(hypothesis_template=templates)
        [label] = parse_labels([text])
        return classifier.texts.embed_labels([label], run.hypothesis_template)[0].numpy()

    def _image_vector(self, store: LibraryStore, image) -> np.ndarray:
        classifier = self._checked_classifier(store)
        run = self._run()
        embeddings = classifier.embeddings_for(image, run)
        mean = embeddings.vectors.mean(axis=0)
        return mean / np.linalg.norm(mean)

    def _checked_classifier(self, store: LibraryStore):
        """The classifier, once its model is found to be the index's."""
        classifier = self.classifier
        store.check_model(classifier.encoder.name, classifier.encoder.fingerprint)
        return classifier

    def _moments(self, store, files, index, queries, vectors, top_k, window_seconds) -> list[list[Moment]]:
        total = sum(f.frames for f in files.values())
        wanted = min(total, FRAMES_PER_MOMENT * top_k)
        timelines: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def timeline(file_id: int):
            if file_id not in timelines:
                timelines[file_id] = store.timeline(files[file_id])
            return timelines[file_id]

        while True:
            similarity, ids = index.search(vectors, wanted)
            found = []
            for q in range(len(queries)):
                hits = []
                for value, frame in zip(similarity[q].tolist(), ids[q].tolist()):
                    file_id, row = frame >> 32, frame & 0xFFFFFFFF
                    if frame < 0 or file_id not in files:
                        continue
                    hits.append(Hit(file_id, row, float(timeline(file_id)[1][row]), value))
                found.append(merge_hits(hits, window_seconds))
            if wanted >= total or all(len(stretches) > top_k for stretches in found):
                break  # the last stretch may be cut by the frames asked for: one more than needed is kept
            wanted = min(total, wanted * 2)
        head = self.classifier.encoder.head
        results = []
        for q, stretches in enumerate(found):
            moments = []
            for stretch in stretches[:top_k]:
                stored = files[stretch.file_id]
                indices, times = timeline(stretch.file_id)
                best = stretch.best
                moments.append(Moment(
                    query=queries[q].name, video=os.fspath(store.root / stored.path), start_seconds=stretch.start_seconds,
                    end_seconds=end_of(stretch.last_hit_seconds, times, stored.duration_seconds), similarity=best.similarity,
                    score=_score(head, store, stored.id, best.row, queries, vectors, q, best.similarity), frame_seconds=best.pts_seconds,
                    frame_index=int(indices[best.row]), hits=stretch.hits,
                ))
            results.append(moments)
        return results

    def thumbnail(self, moment: Moment, path: str | os.PathLike) -> Moment:
        """Write the best frame of `moment` as a JPEG at `path`; the moment naming it (or as it
        is, with a warning, when its video cannot be read any more)."""
        from dataclasses import replace

        from PIL import Image

        from ..video import open_video

        try:
            with open_video(moment.video, self._loading["backend"]) as video:
                frame = video.get_frames([moment.frame_index]).data[0]
            Image.fromarray(frame).save(path, "JPEG", quality=90)
        except (ActionzsError, OSError) as exc:
            log.warning("%s: no thumbnail (%s)", moment.video, getattr(exc, "reason", None) or exc)
            return moment
        return replace(moment, thumbnail=os.fspath(path))

    # -- the neighbour index ----------------------------------------------------------------------

    @property
    def neighbours_path(self) -> Path:
        return Path(f"{os.fspath(self.path)}.neighbours")

    def _current_neighbours(self, store: LibraryStore, exact: bool):
        """The neighbour index of the stored vectors, kept for the next search of this object
        while nothing changes: exact when asked or for a small library, else the saved FAISS
        index brought up to date in memory."""
        generation = store.generation
        held = self._neighbours.get(exact)
        if held is not None and held[0] == generation:
            return held[1]
        index = _exact_index(store, store.files("ok")) if exact else _up_to_date(store, self.neighbours_path)[0]
        self._neighbours[exact] = (generation, index)
        return index

    def _saved_neighbours(self, store: LibraryStore) -> None:
        """After an `add`: the saved FAISS index brought up to date and saved (a small library
        has none: its search is exact)."""
        from .neighbours import FAISS_THRESHOLD

        files = store.files("ok")
        if sum(f.frames for f in files) < FAISS_THRESHOLD or _saved_is_current(store, self.neighbours_path, files):
            return
        index, state = _up_to_date(store, self.neighbours_path)
        index.save(self.neighbours_path)
        store.set_neighbour_state({**state, "digest": content_hash(self.neighbours_path, self.neighbours_path.stat().st_size)})

    # -- re-labelling -----------------------------------------------------------------------------

    def classify(self, candidate_labels, videos: Iterable[str] | None = None, **options) -> Iterator[tuple[str, VideoResult | Exception]]:
        """`(path, result)` for each stored file (or each of `videos`), as classifying the videos
        with these labels and options would give, from the stored frames: no decoding, no image
        encoding. A file that failed to index, or is not in the index, gives `(path, error)`."""
        classifier = self.classifier
        labels, run = classifier.prepare(candidate_labels, **options)
        with LibraryStore(self.path) as store:
            classifier = self._checked_classifier(store)
            held = store.settings().get("sampling")
            if classifier.encoder.sampling(run) != held:
                raise InvalidInputError(
                    f"{self.path}: the index holds frames sampled with {held}; these options need "
                    f"{classifier.encoder.sampling(run)} (use its fps, and --segments or no --num-frames)"
                )
            for path, stored in self._chosen(store, videos):
                if isinstance(stored, Exception):
                    yield path, stored
                    continue
                try:
                    yield path, classifier.score(store.embeddings(stored), labels, run)
                except ActionzsError as exc:  # this file's failure; the others go on
                    yield path, exc

    def _chosen(self, store: LibraryStore, videos: Iterable[str] | None) -> Iterator[tuple[str, StoredFile | Exception]]:
        if videos is None:
            chosen = [(os.fspath(store.root / f.path), f) for f in store.files()]
        else:
            chosen = [(v, store.file(_relative(store.root, v))) for v in videos]
        for path, stored in chosen:
            if stored is None:
                yield path, VideoDecodeError(path, f"not in the index {self.path}; add it with `actionzs index`")
            elif stored.status != "ok":
                yield path, VideoDecodeError(path, f"failed when indexed: {stored.error}")
            else:
                yield path, stored

    def files(self) -> list[StoredFile]:
        """The catalog: every file the index holds or failed to index, by path."""
        with LibraryStore(self.path) as store:
            return store.files()

    def __repr__(self) -> str:
        return f"Library({os.fspath(self.path)!r})"


def _reason(exc: Exception) -> str:
    if isinstance(exc, ActionzsError):
        return getattr(exc, "reason", None) or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _relative(root: Path, path: str | os.PathLike) -> str:
    """`path` as the index stores it: relative to the index's folder, "/"-separated."""
    return Path(os.path.relpath(os.path.abspath(path), root)).as_posix()


def _stored_moment(store: LibraryStore, video: str, seconds: float) -> np.ndarray:
    """The stored frame of `video` nearest `seconds`, as a query."""
    stored = store.file(_relative(store.root, video))
    if stored is None or stored.status != "ok":
        raise InvalidInputError(f"{video}: not in the index {store.path}; a moment to search like must be indexed")
    _, times = store.timeline(stored)
    if not 0 <= seconds <= stored.duration_seconds:
        raise InvalidInputError(f"{video}: {seconds:g} s is outside the video (0 to {stored.duration_seconds:.3f} s)")
    row = int(np.argmin(np.abs(times - seconds)))
    return store.vector_rows(stored.id, np.array([row]))[0]


def _score(head, store: LibraryStore, file_id: int, row: int, queries: list[Query], vectors: np.ndarray, q: int,
           similarity: float) -> float:
    """A text query's score: the model's head over the text queries given, for this frame (as
    classify scores labels: a softmax over one text is 1). An image or a moment has no head of
    its own (the checkpoint's scale and bias are fitted to texts): its score is its similarity."""
    texts = [k for k, query in enumerate(queries) if query.text is not None]
    if q not in texts:
        return similarity
    cosine = torch.from_numpy(vectors[texts] @ store.vector_rows(file_id, np.array([row]))[0])
    return float(head.probabilities(cosine[None])[0, texts.index(q)])


def _exact_index(store: LibraryStore, files: list[StoredFile]):
    from .neighbours import build_index

    ids, vectors = _stacked(store, files)
    return build_index(ids, vectors, exact=True)


def _stacked(store: LibraryStore, files: list[StoredFile]) -> tuple[np.ndarray, np.ndarray]:
    """The ids and float16 vectors of `files`, one array each."""
    ids, vectors = [], []
    for stored, held in store.all_vectors(files):
        ids.append(frame_ids(stored.id, len(held)))
        vectors.append(held)
    if not ids:
        return np.empty(0, np.int64), np.empty((0, store.dim), np.float16)
    return np.concatenate(ids), np.concatenate(vectors)


def _versions(files: list[StoredFile]) -> dict[str, list[int]]:
    """What a neighbour index of `files` holds: each file's version and frame count, by id."""
    return {str(f.id): [f.version, f.frames] for f in files}


def _saved_is_current(store: LibraryStore, saved: Path, files: list[StoredFile]) -> bool:
    """Whether the saved neighbour index is the one recorded, and holds `files` as they are."""
    state = store.neighbour_state()
    return (state is not None and state.get("files") == _versions(files) and saved.exists()
            and content_hash(saved, saved.stat().st_size) == state.get("digest"))


def _up_to_date(store: LibraryStore, saved: Path):
    """(index, state): the neighbour index of the store's vectors, and for a FAISS one what it
    holds ({"files": {id: [version, frames]}}; None for an exact one). The saved index is loaded
    when its digest is the one recorded; files changed since are removed and added again."""
    from .neighbours import FAISS_THRESHOLD, NeighbourIndex, build_index

    files = store.files("ok")
    if sum(f.frames for f in files) < FAISS_THRESHOLD:
        return _exact_index(store, files), None
    state = store.neighbour_state()
    index = None
    if state is not None and saved.exists() and content_hash(saved, saved.stat().st_size) == state.get("digest"):
        try:
            index = NeighbourIndex.load(saved)
        except InvalidInputError as exc:
            log.warning("%s; building it again from the stored vectors", exc)
    if index is None:
        ids, vectors = _stacked(store, files)
        return build_index(ids, vectors, exact=False), {"files": _versions(files)}
    held = {int(k): v for k, v in state["files"].items()}
    current = {f.id: f for f in files}
    stale = [file_id for file_id, (version, _) in held.items() if file_id not in current or current[file_id].version != version]
    if stale:
        index.remove(np.concatenate([frame_ids(i, held[i][1]) for i in stale]))
    fresh = [f for f in files if f.id not in held or f.id in stale]
    for stored, vectors in store.all_vectors(fresh):
        index.add(frame_ids(stored.id, len(vectors)), vectors)
    return index, {"files": _versions(files)}
