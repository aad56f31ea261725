"""The C heap's free pages go back to the system while a video is embedded, at most every interval."""

from __future__ import annotations

import ctypes
import os

import pytest

from actionzs import embed, executor, heap
from actionzs.classifier import ZeroShotVideoClassifier
from actionzs.embed import Opener, embed_video
from actionzs.models import load_encoder
from actionzs.options import RunOptions
from actionzs.testing import write_clip

glibc = pytest.mark.skipif(heap._malloc_trim() is None, reason="the C library has no malloc_trim")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@glibc
def test_at_most_one_release_per_interval():
    assert heap.release_free_memory(0.0)
    assert not heap.release_free_memory(3600.0)
    assert heap.release_free_memory(0.0)


@glibc
def test_free_pages_inside_the_heap_go_back_to_the_system():
    """Every other block freed leaves holes that malloc keeps inside its heap (the last block still in
    use, nothing at the top to give back): the release hands those pages to the system."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 96 * 1024, 400  # below malloc's mmap threshold: from the heap
    blocks = [libc.malloc(size) for _ in range(count)]
    assert all(blocks)
    try:
        for block in blocks:
            ctypes.memset(block, 1, size)  # resident
        for block in blocks[:-1:2]:
            libc.free(block)
        before = _rss_bytes()
        assert heap.release_free_memory(0.0)
        given_back = before - _rss_bytes()
        freed = size * len(blocks[:-1:2])
        assert given_back >= freed // 2, f"{given_back / 2**20:.1f} MiB of {freed / 2**20:.1f} MiB freed"
    finally:
        for block in blocks[1::2]:
            libc.free(block)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(write_clip(tmp_path_factory.mktemp("heap") / "a.mp4", 40, average_fps=10))


def test_each_encoded_batch_may_release(monkeypatch, clip_dir, clip):
    """Both ways of embedding a video, the plain function and the executor, offer a release after
    every batch (the interval decides whether it happens)."""
    calls = []
    for module in (embed, executor):
        monkeypatch.setattr(module, "release_free_memory", lambda: calls.append(1) or False)
    encoder = load_encoder(str(clip_dir), dtype="float32")
    run = RunOptions(fps=2.0)  # 4 s at 2 frames/s: 8 frames, batches of 3
    embed_video(clip, encoder, run, Opener(), batch_size=3)
    assert len(calls) == 3
    ZeroShotVideoClassifier(encoder, run, batch_size=3).embed(clip)
    assert len(calls) == 6
