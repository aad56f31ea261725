"""The bounded producer: order kept, errors raised in the consumer, stalls bounded in time."""

from __future__ import annotations

import threading
import time

import pytest

from actionzs.errors import VideoDecodeError
from actionzs.stream import bounded_call, prefetch


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


def test_bounded_call_returns_or_times_out():
    assert bounded_call(lambda: 42, "v.mp4", timeout=5) == 42
    with pytest.raises(VideoDecodeError, match="stalled"):
        bounded_call(lambda: time.sleep(3), "slow.mp4", timeout=0.3)


def test_a_hanging_decoder_does_not_hang_the_classifier(monkeypatch, tmp_path):
    """Through the classifier: a decoder that never returns becomes a VideoDecodeError."""
    import numpy as np
    import torch

    from actionzs.classifier import ZeroShotVideoClassifier
    from actionzs.models.base import ScoreHead
    from actionzs.testing import write_clip
    from actionzs.video import Video

    class Encoder:
        name, frames_per_clip, texts_normalised = "test", None, True
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

    clip = write_clip(tmp_path / "a.mp4", 20, fps=10, width=64, height=48)
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
