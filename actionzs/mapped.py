"""Memory for the batches handed between threads: a mapping of their own, returned when freed."""

from __future__ import annotations

import math
import mmap
from collections.abc import Sequence

import torch


def mapped_empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor in a memory mapping of its own, returned to the system when freed.

    For batches handed from the decoding thread to the encoding one: allocated by malloc, such a
    buffer would come from the decoding thread's heap once glibc has raised its mmap threshold (it
    does after each large free), and heaps that one thread fills and another empties fragment, so
    hours of video would cost hundreds of MB. Fixing malloc's threshold instead would map every
    large tensor the encoder makes and nearly double its time.
    """
    count = math.prod(shape)
    if count == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    return torch.frombuffer(mmap.mmap(-1, count * dtype.itemsize), dtype=dtype).view(tuple(shape))
