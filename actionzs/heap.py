"""Giving the C heap's free pages back to the system while a long video is embedded.

Each encoder batch allocates and frees hundreds of megabytes of temporaries (activations, decoded
frames, pixel tensors) of many sizes. glibc's malloc keeps what is freed inside its heap for reuse,
and with the mix of sizes that free space fragments: memory in use stays flat, but the heap, and the
process's resident size with it, grows with the length of the video (with CLIP ViT-B/32 in float32,
about +110 MB per 20 minutes of footage at 1 frame/s, the whole of it free space). `malloc_trim`
returns every whole free page to the system; doing it at most every `INTERVAL_SECONDS` bounds the
growth at the cost of a few milliseconds and the page faults of refilling the trimmed pages, once in
that interval. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time

#: The least time between two trims: enough for the trims to cost nothing measurable.
INTERVAL_SECONDS = 10.0

_lock = threading.Lock()
_last = time.monotonic()


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory(interval_seconds: float = INTERVAL_SECONDS) -> bool:
    """Returns the heap's free pages to the system if the last time was `interval_seconds` ago or
    more; says whether it did. Safe from any thread."""
    global _last
    trim = _malloc_trim()
    if trim is None:
        return False
    with _lock:
        now = time.monotonic()
        if now - _last < interval_seconds:
            return False
        _last = now
    trim(0)
    return True
