"""A bounded producer thread: decoding and preprocessing of the next batch overlap encoding of this one.

One thread works through a list of videos in turn, so the next video's frames decode while this
one's last batch is encoded. The queue holds at most `depth` batches, so memory stays bounded however
long the video is, and every wait on the decoder is bounded in time: a decoder that stalls becomes an
error, not a hang.
`ordered_map` spreads the decoding over several threads. Nothing here needs torch, so `probe`
can bound its decoder calls without loading it.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import TypeVar

from .errors import VideoDecodeError

T = TypeVar("T")
R = TypeVar("R")
#: Seconds one decoder call (opening a file, or one batch of frames) may take before it is an error.
DECODE_TIMEOUT = 300.0
#: How long an abandoned producer may take to finish the batch it holds.
FINISH_SECONDS = 30.0


#: What `prefetch_each` yields for a source once all its items have been made.
END = object()


def prefetch_each(
    sources: Sequence[Callable[[], Iterable[T]]],
    names: Sequence[str],
    timeout: float,
    depth: int = 2,
    meanwhile: Callable[[], object] | None = None,
    workers: int = 1,
    on_wait: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, object]]:
    """The items of several sources, made by background threads and yielded source by source.

    Each source is made by one thread from start to end; a thread starts the next source (opens the
    next video, decodes its first frames) as soon as it has made its last item, while the consumer
    still works on that one. With `workers` threads, that many sources are made at once. Yields
    `(k, item)` for each item, then `(k, END)`, or `(k, error)` when source k failed: the others go
    on. A source that yields nothing for `timeout` seconds gets a `VideoDecodeError` naming
    `names[k]`; its thread (a daemon) is left behind and a fresh one takes its place. `meanwhile`
    runs in the consumer's thread once the threads have started (e.g. encoding the labels). At most
    `depth` items of a source wait, and no source beyond the consumer's by more than `workers` starts.
    `on_wait(k)` runs in a producer's thread when source k's items are not taken as fast as they come,
    before it waits: the moment to tell a decoder to stop decoding ahead.
    """
    pool = _Producers(sources, depth, workers, on_wait)
    try:
        if meanwhile is not None:
            meanwhile()
        for k in range(len(sources)):
            box = pool.reached(k)
            while True:
                try:
                    item = box.get(timeout=timeout)
                except queue.Empty:
                    pool.abandon(k)
                    yield k, VideoDecodeError(names[k], f"decoding stalled: no frames for {timeout:g} s")
                    break
                if isinstance(item, BaseException) and not isinstance(item, Exception):
                    raise item  # e.g. SystemExit in a source: stop everything
                if item is END or isinstance(item, Exception):
                    pool.finished(k)
                    yield k, item
                    break
                yield k, item
    finally:
        pool.stop(min(timeout, FINISH_SECONDS))


class _Producers:
    """The threads of `prefetch_each`: each claims the next source, makes it into that source's box
    (a bounded queue, made when first needed and dropped once read: a scan may list 100,000 files)."""

    def __init__(self, sources: Sequence[Callable[[], Iterable]], depth: int, workers: int, on_wait):
        self.sources, self.depth, self.workers, self.on_wait = sources, depth, workers, on_wait
        self._boxes: dict[int, queue.Queue] = {}
        self._changed = threading.Condition()
        self._next = 0  # the next source to claim
        self._reached = 0  # the source the consumer reads now
        self._stopped = False
        self._abandoned: set[int] = set()
        self._working: dict[threading.Thread, int] = {}
        self._threads = [self._start() for _ in range(min(workers, len(sources)))]

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._work, name="actionzs-decode", daemon=True)
        thread.start()
        return thread

    def _box(self, k: int) -> queue.Queue:
        with self._changed:
            box = self._boxes.get(k)
            if box is None:
                box = queue.Queue(maxsize=self.depth)
                if k not in self._abandoned:  # a late put for an abandoned source goes nowhere
                    self._boxes[k] = box
            return box

    def reached(self, k: int) -> queue.Queue:
        """The consumer reads source k now: later ones may start; returns k's box."""
        with self._changed:
            self._reached = k
            self._changed.notify_all()
        return self._box(k)

    def finished(self, k: int) -> None:
        with self._changed:
            self._boxes.pop(k, None)

    def abandon(self, k: int) -> None:
        """Source k stalled: its thread is left to itself, a new one takes its place."""
        with self._changed:
            self._abandoned.add(k)
            self._boxes.pop(k, None)  # with what it made so far
        self._threads.append(self._start())

    def stop(self, finish: float) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
            stalled = {thread for thread, k in self._working.items() if k in self._abandoned}
        # Let threads finish the batch in hand (e.g. after Ctrl-C), so no decoder is still running
        # while the interpreter shuts down; a stalled one is left behind as a daemon.
        for thread in self._threads:
            if thread not in stalled:
                thread.join(timeout=finish)

    def _claim(self) -> int | None:
        with self._changed:
            while not self._stopped and self._next < len(self.sources):
                if self._next <= self._reached + self.workers:
                    self._next += 1
                    self._working[threading.current_thread()] = self._next - 1
                    return self._next - 1
                self._changed.wait()
            return None

    def _put(self, k: int, item) -> bool:
        if self._stopped or k in self._abandoned:
            return False
        box = self._box(k)
        try:
            box.put_nowait(item)
            return True
        except queue.Full:
            if self.on_wait is not None:
                self.on_wait(k)
        while not self._stopped and k not in self._abandoned:
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        while (k := self._claim()) is not None:
            items, outcome = None, END
            try:
                items = self.sources[k]()
                for item in items:
                    if not self._put(k, item):
                        outcome = None  # stopped, or abandoned as stalled
                        break
            except BaseException as exc:  # handed to the consumer, which yields or raises it
                outcome = exc
            finally:
                close = getattr(items, "close", None)  # a generator abandoned early runs its cleanup now
                if close is not None:
                    close()
            if outcome is not None:
                self._put(k, outcome)
            if not (outcome is None or outcome is END or isinstance(outcome, Exception)):
                return


def prefetch(
    items: Iterable[T], path: str, timeout: float, depth: int = 2, meanwhile: Callable[[], object] | None = None
) -> Iterator[T]:
    """Yield `items` (produced in a background thread), raising the producer's errors here.

    `prefetch_each` for one source: a stall becomes a `VideoDecodeError` naming `path`.
    """
    with closing(prefetch_each([lambda: items], [path], timeout, depth, meanwhile)) as stream:
        for _, item in stream:
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


def bounded_call(fn: Callable[[], T], path: str, timeout: float) -> T:
    """Run `fn` in a helper thread and wait at most `timeout` seconds (opening a file can hang too)."""

    def once() -> Iterator[T]:
        yield fn()

    return next(prefetch(once(), path, timeout, depth=1))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, name: str = "actionzs-decode") -> Iterator[R]:
    """`map(fn, items)` on `workers` threads, in order, with at most `workers + 1` results in flight.

    Closing the iterator cancels what has not started and waits for what has.
    """
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

