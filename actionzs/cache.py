"""Small thread-safe caches the classifier keeps: embeddings per video file, features per embeddings."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable


class LRUCache:
    """At most `max_items` values, the least recently used dropped first; safe across threads."""

    def __init__(self, max_items: int):
        self.max_items = max_items
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        """The value under `key` (now the most recently used), or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


def file_key(video, *settings: Hashable) -> tuple | None:
    """What identifies a video file's embeddings: its real path, size and modification time, and
    the `settings` they were made with; None for what is not a readable path (an image in memory,
    or a file that opening will report as missing)."""
    if not isinstance(video, (str, os.PathLike)):
        return None
    try:
        info = os.stat(video)
    except OSError:
        return None
    return (os.path.realpath(video), info.st_size, info.st_mtime_ns, *settings)
