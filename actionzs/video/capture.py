"""What decoders do to the whole process: they print to file descriptor 2 (captured here while
they run), and their threads do not survive a fork (a forked child takes over here).

The fork hook is registered on first use, by the first capture or the first `Video`, not at import:
a child forked before either has nothing to take over.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class StderrSink:
    """Decoder libraries print warnings straight to file descriptor 2 ("moov atom not found", source
    paths and line numbers); while any decoder call runs, fd 2 goes to one temporary file instead of
    the user's terminal. Reference-counted, so decoders in several threads still run at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._file = None
        self._saved = -1

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """The list yielded holds, once the block ends, what was printed meanwhile (by this call,
        or by another decoder running at the same time); it also goes to the debug log."""
        _watch_forks()
        with self._lock:
            if not self._users:
                sys.stderr.flush()
                self._file = tempfile.TemporaryFile()
                self._saved = os.dup(2)
                os.dup2(self._file.fileno(), 2)
            self._users += 1
            fd = self._file.fileno()
            start = os.lseek(fd, 0, os.SEEK_END)
        said: list[str] = []
        try:
            yield said
        finally:
            with self._lock:
                text = os.pread(fd, os.lseek(fd, 0, os.SEEK_END) - start, start).decode("utf-8", "replace").strip()
                self._users -= 1
                if not self._users:
                    self._restore()
            if text:
                said.append(text)
                log.debug("decoder output: %s", text[-2000:])

    def _restore(self) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()
        self._file, self._saved = None, -1

    def after_fork_in_child(self) -> None:
        """A thread of the parent may have been capturing at the fork: give the child its stderr back."""
        if self._users:
            self._restore()
        self.__init__()


STDERR = StderrSink()

#: Videos open in this process, so that a forked child can take them over (see `_after_fork_in_child`).
_LIVE_VIDEOS: weakref.WeakSet = weakref.WeakSet()
#: Decoders a forked child inherited from its parent. Freeing one waits for decoder threads that
#: exist only in the parent, so the child would hang, even when `gc` frees a forgotten Video.
_INHERITED_READERS: list = []
#: Taken, and never released, by the one call that registers the fork hook. A non-blocking
#: acquire is the test, so no thread ever waits on it (nor a child forked at that moment).
_HOOK_UNREGISTERED = threading.Lock()
#: How long a fork waits for another thread's read of one video to end, in seconds: a decoder
#: forked in the middle of a call (OpenCV's) can leave the child's decoders waiting forever.
FORK_WAIT_SECONDS = 5.0
#: The locks of the videos whose reads `_before_fork` stopped, released again after the fork.
_HELD_FOR_FORK: list = []


def _watch_forks() -> None:
    """Register `_after_fork_in_child` with the interpreter, once (a forked child inherits both
    the hook and the taken lock)."""
    if _HOOK_UNREGISTERED.acquire(blocking=False):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


def _before_fork() -> None:
    """Let no read of an open video be inside a decoder at the fork: take each video's lock (a
    read in another thread finishes first; one that takes over `FORK_WAIT_SECONDS` is left)."""
    for video in list(_LIVE_VIDEOS):
        lock = video._lock
        if lock.acquire(timeout=FORK_WAIT_SECONDS):
            _HELD_FOR_FORK.append(lock)


def _after_fork_in_parent() -> None:
    while _HELD_FOR_FORK:
        _HELD_FOR_FORK.pop().release()


def track(video) -> None:
    """Remember an open `Video`, so that a forked child takes it over."""
    _watch_forks()
    _LIVE_VIDEOS.add(video)


def _after_fork_in_child() -> None:
    """Locks another thread of the parent held at the fork stay held forever in the child: take
    fresh ones. Pin every inherited decoder; each Video opens its own on its next read."""
    STDERR.after_fork_in_child()
    _HELD_FOR_FORK.clear()
    for video in list(_LIVE_VIDEOS):
        _INHERITED_READERS.append(video._reader)
        video._lock = threading.Lock()

