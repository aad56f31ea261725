"""A bounded producer thread: decoding and preprocessing of the next batch overlap encoding of this one.

One thread works through a list of videos in turn, so the next video's frames decode while this
one's last batch is encoded. The queue holds at most `depth` batches, so memory stays bounded however
long the video is, and every wait on the decoder is bounded in time: a decoder that stalls becomes an
error, not a hang.
`ordered_map` spreads the decoding over several threads, and `mapped_empty` gives the batches
handed between threads memory of their own, so they cannot fragment the allocator's heaps.
"""

from __future__ import annotations

import math
import mmap
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import TypeVar

import torch

from .errors import VideoDecodeError

T = TypeVar("T")
R = TypeVar("R")
#: Seconds one decoder call (opening a file, or one batch of frames) may take before it is an error.
DECODE_TIMEOUT = 300.0
#: How long an abandoned producer may take to finish the batch it holds.
FINISH_SECONDS = 30.0


def mapped_empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor in a memory mapping of its own, returned to the system when freed.

    For batches handed from the decoding thread to the encoding one: allocated by malloc, such a
    buffer would come from the decoding thread's heap once glibc has raised its mmap threshold (it
    does after each large free), and heaps that one thread fills and another empties fragment, so
    hours of video would cost hundreds of MB. Fixing malloc's threshold instead would map every
    large tensor the encoder makes and nearly double its time.
    """
    count = math.prod(shape)
    itemsize = torch.empty((), dtype=dtype).element_size()
    if count == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    return torch.frombuffer(mmap.mmap(-1, count * itemsize), dtype=dtype).view(tuple(shape))


#: What `prefetch_each` yields for a source once all its items have been made.
END = object()


def prefetch_each(
    sources: Sequence[Callable[[], Iterable[T]]],
    names: Sequence[str],
    timeout: float,
    depth: int = 2,
    meanwhile: Callable[[], object] | None = None,
) -> Iterator[tuple[int, object]]:
    """The items of several sources, made one source after another by one background thread.

    The thread starts source k+1 (opens the next video, decodes its first frames) as soon as it has
    made source k's last item, while the consumer is still working on that one. Yields `(k, item)`
    for each item, then `(k, END)`, or `(k, error)` when source k failed: the others go on. A source
    that yields nothing for `timeout` seconds gets a `VideoDecodeError` naming `names[k]`; the stalled
    thread (a daemon) is left behind and a fresh one goes on with source k+1. `meanwhile` runs in the
    consumer's thread once the producer has started (e.g. encoding the labels).
    """
    start = 0
    while start < len(sources):
        stalled = yield from _produce_from(sources, start, timeout, depth, meanwhile)
        if stalled is None:
            return
        yield stalled, VideoDecodeError(names[stalled], f"decoding stalled: no frames for {timeout:g} s")
        start, meanwhile = stalled + 1, None


def _produce_from(sources, start: int, timeout: float, depth: int, meanwhile) -> Generator[tuple, None, int | None]:
    """`prefetch_each` from source `start` on, by one thread; returns the source it stalled on, if any."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        for k in range(start, len(sources)):
            items = None
            try:
                items = sources[k]()
                for item in items:
                    if not put((k, item)):
                        return
                outcome = END
            except BaseException as exc:  # handed to the consumer, which yields or raises it
                outcome = exc
            finally:
                close = getattr(items, "close", None)  # a generator abandoned early runs its cleanup now
                if close is not None:
                    close()
            if not put((k, outcome)) or not (outcome is END or isinstance(outcome, Exception)):
                return

    worker = threading.Thread(target=produce, name="actionzs-decode", daemon=True)
    worker.start()
    awaited, stalled = start, False
    try:
        if meanwhile is not None:
            meanwhile()
        while awaited < len(sources):
            try:
                k, item = box.get(timeout=timeout)
            except queue.Empty:
                stalled = True
                return awaited
            if item is END or isinstance(item, BaseException):
                if not (item is END or isinstance(item, Exception)):
                    raise item  # e.g. SystemExit in a source: stop everything
                awaited = k + 1
            yield k, item
        return None
    finally:
        stop.set()  # a producer still running stops at its next hand-over
        if not stalled:
            # Let it finish the batch in hand (e.g. after Ctrl-C), so no decoder is still running
            # while the interpreter shuts down; a stalled one is left behind as a daemon.
            worker.join(timeout=min(timeout, FINISH_SECONDS))


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

