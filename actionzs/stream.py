"""A bounded producer thread: decoding and preprocessing of the next batch overlap encoding of this one.

The queue holds at most `depth` batches, so memory stays bounded however long the video is, and
every wait on the decoder is bounded in time: a decoder that stalls becomes an error, not a hang.
`ordered_map` spreads the decoding over several threads, and `fix_mmap_threshold` keeps the
batches handed between threads from fragmenting the allocator's heaps.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .errors import VideoDecodeError

T = TypeVar("T")
R = TypeVar("R")
_DONE = object()
#: Seconds one decoder call (opening a file, or one batch of frames) may take before it is an error.
DECODE_TIMEOUT = 300.0
#: How long an abandoned producer may take to finish the batch it holds.
FINISH_SECONDS = 30.0
#: Buffers at least this large (a batch of frames is several MB) get a memory mapping of their own.
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h


@functools.cache
def fix_mmap_threshold() -> bool:
    """Keep frame-sized buffers out of glibc's heaps; True when the setting was made.

    glibc raises its mmap threshold each time a large mapped buffer is freed; from then on batches
    of frames come from per-thread heaps, which fragment as the decoding thread allocates and the
    encoding thread frees, so hours of video cost hundreds of MB. A fixed threshold maps each such
    buffer and unmaps it when freed. A threshold the user set (MALLOC_MMAP_THRESHOLD_) is kept.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def prefetch(
    items: Iterable[T], path: str, timeout: float, depth: int = 2, meanwhile: Callable[[], object] | None = None
) -> Iterator[T]:
    """Yield `items` (produced in a background thread), raising the producer's errors here.

    `meanwhile` runs in the consumer's thread once the producer has started, before the first item
    is awaited: work that would otherwise wait for the pipeline to fill (e.g. encoding the labels).
    Raises `VideoDecodeError` naming `path` when the producer yields nothing for `timeout` seconds;
    the stalled producer (a daemon thread) is left to finish on its own.
    """
    fix_mmap_threshold()
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
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            put(exc)
        finally:
            close = getattr(items, "close", None)  # a generator abandoned early runs its cleanup now
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name=f"actionzs-decode:{path}", daemon=True)
    worker.start()
    stalled = False
    try:
        if meanwhile is not None:
            meanwhile()
        while True:
            try:
                item = box.get(timeout=timeout)
            except queue.Empty:
                stalled = True
                raise VideoDecodeError(path, f"decoding stalled: no frames for {timeout:g} s") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # a producer still running stops at its next hand-over
        if not stalled:
            # Let it finish the batch in hand (e.g. after Ctrl-C), so no decoder is still running
            # while the interpreter shuts down; a stalled one is left behind as a daemon.
            worker.join(timeout=min(timeout, FINISH_SECONDS))


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

