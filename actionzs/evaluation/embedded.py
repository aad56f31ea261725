"""Each clip's embeddings, made once: from a library index (`--index`, no decoding), from a folder
of stored embeddings (`--save-embeddings DIR`: written on the first run, read on the next), or
by decoding the videos. Every prompt variant is then scored from these."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path


def failure_record(video: str, exc: Exception) -> dict:
    """{"video", "error"}: what a video that failed leaves in the results."""
    return {"video": video, "error": getattr(exc, "reason", None) or str(exc)}


def stored_path(folder: str | os.PathLike, video: str, encoder, run) -> Path:
    """Where a clip's embeddings are kept in `folder`: named for the video, with a hash of its real
    path, size, modification time, the model's fingerprint and the sampling, so a changed video,
    another model or other sampling is a new file, never a stale one."""
    info = os.stat(video)
    what = json.dumps([os.path.realpath(video), info.st_size, info.st_mtime_ns, encoder.fingerprint,
                       encoder.sampling(run), run.segments and [run.window, run.stride]])
    digest = hashlib.sha1(what.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Path(folder) / f"{Path(video).stem[:80]}-{digest}.npz"


def _stored(folder: str | None, video: str, encoder, run):
    """The stored embeddings of `video` in `folder`, or None (none kept, or unreadable: made again)."""
    if not folder:
        return None
    try:
        path = stored_path(folder, video, encoder, run)
        return encoder.embeddings_type.load(path) if path.is_file() else None
    except (OSError, ValueError):  # a missing video is reported when it is embedded
        return None


def embeddings_of(classifier, videos: list[str], index: str | None = None, store: str | None = None,
                  labels=None) -> Iterator[tuple[str, object]]:
    """`(video, embeddings or error)` for each video, in order, made with the classifier's options;
    each is decoded at most once.

    With `index`, the stored frames of the library (`labels`, any label set, is what the library
    scores them with on the way); with `store`, embeddings kept there by an earlier run are read
    and new ones written."""
    if index:
        from ..library import Library

        for video, outcome in Library(index, classifier=classifier).classify(labels, videos):
            yield video, outcome if isinstance(outcome, Exception) else outcome.embeddings
        return
    encoder, run = classifier.encoder, classifier.options
    kept = [_stored(store, v, encoder, run) for v in videos]
    inputs = [k if k is not None else v for v, k in zip(videos, kept)]
    for video, was_kept, (_, outcome) in zip(videos, kept, classifier.embed_each(inputs)):
        if store and was_kept is None and not isinstance(outcome, Exception):
            outcome.save(stored_path(store, video, encoder, run))
        yield video, outcome

