"""The bounded producer: order kept, errors raised in the consumer, stalls bounded in time."""

from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from actionzs.errors import VideoDecodeError
from actionzs.mapped import mapped_empty
from actionzs.stream import END, bounded_call, ordered_map, prefetch, prefetch_each


def test_items_arrive_in_order():
    assert list(prefetch(iter(range(50)), "v.mp4", timeout=5)) == list(range(50))


def test_producer_error_is_raised_in_the_consumer():
    def items():
        yield 1
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for item in prefetch(items(), "v.mp4", timeout=5):
            got.append(item)
    assert got == [1]


def test_a_stalled_producer_is_an_error_naming_the_file_within_the_timeout():
    release = threading.Event()

    def items():
        yield 1
        release.wait(30)  # a decoder that hangs
        yield 2

    started = time.monotonic()
    with pytest.raises(VideoDecodeError, match="stalled") as info:
        list(prefetch(items(), "cam3.mp4", timeout=0.5))
    release.set()
    assert info.value.path == "cam3.mp4"
    assert time.monotonic() - started < 5


def test_the_producer_stops_when_the_consumer_does():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    stream = prefetch(items(), "v.mp4", timeout=5, depth=2)
    assert next(stream) == 0
    stream.close()
    time.sleep(0.3)
    assert len(made) < 10  # bounded by the queue, not the length of the input


def test_meanwhile_runs_in_the_consumer_while_the_producer_works():
    produced = threading.Event()
    seen = []

    def items():
        produced.set()
        yield 1

    def meanwhile():
        seen.append((threading.current_thread() is threading.main_thread(), produced.wait(timeout=5)))

    assert list(prefetch(items(), "v.mp4", timeout=5, meanwhile=meanwhile)) == [1]
    assert seen == [(True, True)]  # in this thread, once, and the producer had started meanwhile


def test_bounded_call_returns_or_times_out():
    assert bounded_call(lambda: 42, "v.mp4", timeout=5) == 42
    with pytest.raises(VideoDecodeError, match="stalled"):
        bounded_call(lambda: time.sleep(3), "slow.mp4", timeout=0.3)


def test_prefetch_each_gives_every_source_in_order_and_goes_on_past_a_failure():
    def failing():
        yield "b1"
        raise ValueError("b broke")

    sources = [lambda: iter(["a1", "a2"]), failing, lambda: iter([]), lambda: iter(["d1"])]
    got = list(prefetch_each(sources, ["a", "b", "c", "d"], timeout=5))
    assert [(k, item) for k, item in got if not isinstance(item, Exception)] == [
        (0, "a1"), (0, "a2"), (0, END), (1, "b1"), (2, END), (3, "d1"), (3, END)
    ]
    errors = [(k, str(item)) for k, item in got if isinstance(item, Exception)]
    assert errors == [(1, "b broke")]
    assert [k for k, _ in got] == sorted(k for k, _ in got)


def test_the_next_source_starts_while_the_consumer_still_works_on_this_one():
    second_started = threading.Event()

    def second():
        second_started.set()
        yield "b"

    stream = prefetch_each([lambda: iter(["a"]), second], ["a", "b"], timeout=5)
    assert next(stream) == (0, "a")
    # The consumer is still busy with source 0's item; the producer has already begun source 1.
    assert second_started.wait(timeout=5)
    assert list(stream) == [(0, END), (1, "b"), (1, END)]


def test_several_workers_make_sources_at_once_and_yield_them_in_order():
    both_running = threading.Barrier(2, timeout=5)

    def source(name):
        def make():
            both_running.wait()  # passes only when two sources are being made at the same time
            yield name
        return make

    got = list(prefetch_each([source("a"), source("b"), lambda: iter(["c"])], ["a", "b", "c"], timeout=5, workers=2))
    assert got == [(0, "a"), (0, END), (1, "b"), (1, END), (2, "c"), (2, END)]


def test_workers_run_at_most_their_number_of_sources_ahead_of_the_consumer():
    started, lock = [], threading.Lock()

    def source(k):
        def make():
            with lock:
                started.append(k)
            yield k
        return make

    stream = prefetch_each([source(k) for k in range(8)], [str(k) for k in range(8)], timeout=5, workers=2)
    assert next(stream) == (0, 0)
    time.sleep(0.3)  # the threads have had time to run ahead as far as they may
    assert sorted(started) == [0, 1, 2]  # the consumer is at source 0: sources 1 and 2 may start, 3 not
    assert [k for k, item in stream if item is not END] == list(range(1, 8))


def test_on_wait_is_told_when_a_sources_items_back_up():
    waits = []
    stream = prefetch_each([lambda: iter(range(6))], ["a"], timeout=5, depth=2, on_wait=waits.append)
    assert next(stream) == (0, 0)
    time.sleep(0.3)  # the producer fills the box and has to wait for the consumer
    assert waits and set(waits) == {0}
    assert [item for _, item in stream] == [1, 2, 3, 4, 5, END]


def test_on_wait_is_not_called_while_the_consumer_keeps_up():
    waits = []
    release = threading.Event()

    def slow():
        for i in range(4):
            release.wait(0.05)  # slower than the consumer
            yield i

    assert [item for _, item in prefetch_each([slow], ["a"], timeout=5, depth=2, on_wait=waits.append)] == [0, 1, 2, 3, END]
    assert waits == []


def test_many_sources_cost_no_memory_per_source_once_read():
    """A scan may list 100,000 files: what is kept per source must go once it has been read."""
    import tracemalloc

    count = 20_000
    tracemalloc.start()
    try:
        seen = sum(1 for _, item in prefetch_each([lambda: iter([1])] * count, ["v"] * count, timeout=5) if item is END)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 10 * 2**20  # a bounded queue per source kept to the end would be about 80 MB


def test_a_stalled_source_with_several_workers_fails_alone():
    release = threading.Event()

    def hanging():
        release.wait(30)
        yield "b"

    sources = [lambda: iter(["a"]), hanging, lambda: iter(["c"]), lambda: iter(["d"])]
    started = time.monotonic()
    got = list(prefetch_each(sources, ["a", "b", "c", "d"], timeout=0.5, workers=2))
    release.set()
    assert [(k, item) for k, item in got if not isinstance(item, Exception)] == [
        (0, "a"), (0, END), (2, "c"), (2, END), (3, "d"), (3, END)
    ]
    assert [(k, type(item).__name__) for k, item in got if isinstance(item, Exception)] == [(1, "VideoDecodeError")]
    assert time.monotonic() - started < 5


def test_a_stalled_source_is_an_error_naming_it_and_the_rest_still_run():
    release = threading.Event()

    def hanging():
        yield "b1"
        release.wait(30)
        yield "b2"

    started = time.monotonic()
    got = list(prefetch_each([lambda: iter(["a"]), hanging, lambda: iter(["c"])], ["a.mp4", "b.mp4", "c.mp4"], timeout=0.5))
    release.set()
    assert got[:3] == [(0, "a"), (0, END), (1, "b1")]
    k, error = got[3]
    assert k == 1 and isinstance(error, VideoDecodeError) and error.path == "b.mp4" and "stalled" in str(error)
    assert got[4:] == [(2, "c"), (2, END)]
    assert time.monotonic() - started < 5


def test_a_hanging_decoder_does_not_hang_the_classifier(monkeypatch, tmp_path):
    """Through the classifier: a decoder that never returns becomes a VideoDecodeError."""
    import numpy as np
    import torch

    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.models import FrameEncoder, ScoreHead
    from actionzs.testing import write_clip
    from actionzs.video import Video

    class Encoder(FrameEncoder):
        name, texts_normalised = "test", True
        head = ScoreHead(scale=1.0)

        class preprocessor:
            decode_size = None

            def __call__(self, frames):
                return torch.from_numpy(np.ascontiguousarray(frames)).float()

        preprocessor = preprocessor()

        def embed_frames(self, pixels):
            return torch.nn.functional.normalize(torch.ones(len(pixels), 4), dim=-1)

        def embed_texts(self, texts):
            return torch.nn.functional.normalize(torch.ones(len(texts), 4), dim=-1)

    clip = write_clip(tmp_path / "a.mp4", 20, average_fps=10, width=64, height=48)
    release = threading.Event()
    def hanging(self, *args, **kwargs):  # a generator, like the real one: it hangs once read
        release.wait(30)
        yield from ()

    monkeypatch.setattr(Video, "iter_frames", hanging)
    classifier = ZeroShotVideoClassifier(Encoder(), decode_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(VideoDecodeError, match="stalled") as info:
        classifier(str(clip), candidate_labels=["a", "b"])
    release.set()
    assert info.value.path == str(clip)
    assert time.monotonic() - started < 10


_HEAP_AFTER_A_LARGE_FREE = """
import ctypes, sys
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "prefetch":
    from actionzs.stream import prefetch
    list(prefetch(iter([1]), "v.mp4", timeout=5))
big = np.ones(16 * 2**20, np.uint8)  # freeing a mapped 16 MB buffer makes glibc raise its threshold
del big
before = libc.mallinfo2().hblkhd
tensor = np.ones(8 * 2**20, np.uint8)  # e.g. an activation inside the encoder
print(libc.mallinfo2().hblkhd - before >= 8 * 2**20)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or platform.libc_ver()[1] < "2.33",
    reason="glibc's malloc (mallinfo2) only",
)
def test_streaming_leaves_mallocs_own_settings_alone():
    """glibc serves large buffers from its heaps once a large free has raised its threshold; the
    encoder's tensors need that (mapping each one nearly doubles its time), so streaming frames
    must not change it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def mapped(mode: str) -> str:
        run = subprocess.run([sys.executable, "-c", _HEAP_AFTER_A_LARGE_FREE, mode], env=env,
                             capture_output=True, text=True, check=True)
        return run.stdout.strip()

    assert mapped("plain") == "False"
    assert mapped("prefetch") == "False"


def _mapping_at(address: int) -> tuple[int, int] | None:
    for line in Path("/proc/self/maps").read_text().splitlines():
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= address < end:
            return start, end
    return None


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_batches_handed_between_threads_have_a_mapping_of_their_own():
    """What the decoding thread makes and the encoding thread frees never touches malloc's heaps,
    so it cannot fragment them; it is unmapped when the last view of it goes."""
    batch = mapped_empty((32, 3, 224, 224), torch.float32)
    start, end = _mapping_at(batch.data_ptr())
    assert start == batch.data_ptr() and end - start >= batch.numel() * 4
    row = batch[5]
    del batch
    gc.collect()
    row.fill_(1.0)  # a view keeps the mapping alive
    del row
    gc.collect()
    assert _mapping_at(start) is None or _mapping_at(start) != (start, end)
    assert mapped_empty((0, 3), torch.float32).shape == (0, 3)


def test_preprocessed_batches_are_mapped_and_equal_to_plain_conversion():
    from actionzs.preprocess import FramePreprocessor

    class Processor:
        size = {"shortest_edge": 8}
        crop_size = {"height": 8, "width": 8}
        do_center_crop = True
        image_mean, image_std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]

    frames = np.random.default_rng(0).integers(0, 256, (4, 8, 12, 3), dtype=np.uint8)
    got = FramePreprocessor(Processor())(frames)
    if Path("/proc/self/maps").exists():
        assert _mapping_at(got.data_ptr())[0] == got.data_ptr()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)[..., 2:10].float() / 255
    expected = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    torch.testing.assert_close(got, expected)


def test_ordered_map_keeps_order_with_bounded_work_in_flight():
    lock, running, most = threading.Lock(), [0], [0]

    def slow(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02 * (i % 3))  # later items often finish first
        with lock:
            running[0] -= 1
        return i * i

    started = []
    results = []
    for value in ordered_map(slow, (started.append(i) or i for i in range(20)), workers=3):
        results.append(value)
        assert len(started) - len(results) <= 3 + 1  # never more than workers + 1 items taken ahead
    assert results == [i * i for i in range(20)]
    assert most[0] <= 3


def test_ordered_map_raises_the_error_in_order_and_stops_early():
    done = []

    def work(i: int) -> int:
        if i == 2:
            raise ValueError("item 2 is bad")
        done.append(i)
        return i

    got = []
    with pytest.raises(ValueError, match="item 2 is bad"):
        for value in ordered_map(work, range(100), workers=2):
            got.append(value)
    assert got == [0, 1]
    assert len(done) < 10  # the rest was cancelled, not run


def test_a_producer_abandoned_by_its_consumer_runs_its_cleanup():
    cleaned = threading.Event()

    def items():
        try:
            for i in range(1000):
                yield i
        finally:
            cleaned.set()  # e.g. the decode workers' pool shut down and their decoders closed

    source = items()  # still referenced here, as by a caller's local variable: not freed, not closed
    with pytest.raises(RuntimeError):
        for item in prefetch(source, "v.mp4", timeout=5):
            if item == 3:
                raise RuntimeError("the encoder failed")
    assert cleaned.wait(timeout=5)

