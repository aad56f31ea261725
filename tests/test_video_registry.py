"""The backend registry, used the way a backend outside the package would be: registered by name,
opened by name and by "auto" in the order `AUTO_ORDER` gives, switched away from when it fails."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from actionzs.errors import VideoDecodeError
from actionzs.frames import FrameSize, resize_dims
from actionzs.sampling import Timeline
from actionzs.testing import draw_frame
from actionzs.video import (
    AUTO_ORDER,
    AVAILABLE_BACKENDS,
    OTHER_SUFFIXES,
    Reader,
    auto_order,
    backend_names,
    open_video,
    register_backend,
)

from helpers_video import indices_of, run_in_fork

#: Frame times of the toy clip: not constant-rate, so a test sees the reader's own timeline.
TOY_TIMES = [0.0, 0.1, 0.2, 0.5, 0.6, 1.0, 1.1, 1.2]
TOY_DURATION = 1.3


class ToyReader(Reader):
    """Serves frames drawn by `draw_frame` for a `.toy` file: JSON with the frame times, duration
    and size. It keeps the `strict` it was opened with, for the tests to see."""

    def __init__(self, path: str, *, strict: bool = False):
        spec = json.loads(Path(path).read_text())  # anything else is the decoder's own error
        self.strict = strict
        self.width, self.height = spec["width"], spec["height"]
        self.timeline = Timeline(np.asarray(spec["times"], np.float64), spec["duration"])
        self.average_fps = (self.timeline.num_frames - 1) / spec["times"][-1]

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        height, width = resize_dims(self.height, self.width, size)
        return np.stack([draw_frame(int(i), width, height) for i in indices])


class BrokenToyReader(ToyReader):
    """Opens a toy file, then fails on every read."""

    def read(self, indices: np.ndarray, size: FrameSize | None) -> np.ndarray:
        raise RuntimeError("toy decoder crashed")


@pytest.fixture
def registry():
    """Put the registry back as it was once the test is done, whatever it registered or reordered."""
    backends, order = dict(AVAILABLE_BACKENDS), {suffix: list(names) for suffix, names in AUTO_ORDER.items()}
    yield
    AVAILABLE_BACKENDS.clear()
    AVAILABLE_BACKENDS.update(backends)
    AUTO_ORDER.clear()
    AUTO_ORDER.update(order)


@pytest.fixture
def toy_file(tmp_path) -> Path:
    path = tmp_path / "clip.toy"
    path.write_text(json.dumps({"times": TOY_TIMES, "duration": TOY_DURATION, "width": 64, "height": 48}))
    return path


def test_a_backend_registered_from_outside_opens_by_name_and_by_auto(registry, toy_file):
    register_backend("toy", ToyReader, auto_suffixes=[".toy"], auto_rank=0)
    assert backend_names() == ("auto", "decord", "pyav", "opencv", "toy")
    assert AUTO_ORDER[".toy"] == ["toy", "pyav", "opencv", "decord"]  # a new suffix starts from the "*" order
    for backend, strict in (("toy", False), ("auto", True)):
        with open_video(toy_file, backend) as video:
            assert video.backend == "toy"
            assert video._reader.strict is strict  # auto asks a backend to refuse rather than guess
            assert video.timeline.pts_seconds.tolist() == TOY_TIMES
            assert (video.num_frames, video.duration, video.width, video.height) == (8, TOY_DURATION, 64, 48)
            wanted = [7, 0, 3, 3, 5]
            batch = video.get_frames(wanted)
            assert indices_of(batch.data) == batch.indices.tolist() == wanted
            assert batch.pts_seconds.tolist() == [TOY_TIMES[i] for i in wanted]
            assert video.get_frames([2], size=24).data.shape == (1, 24, 32, 3)


def test_the_registry_is_put_back_after_each_test():
    assert "toy" not in AVAILABLE_BACKENDS and ".toy" not in AUTO_ORDER


def test_auto_tries_backends_in_the_order_of_the_table(registry, toy_file):
    register_backend("toy", ToyReader, auto_suffixes=[".toy"])  # last, after the two that cannot read it
    assert auto_order("A.TOY") == ["pyav", "opencv", "decord", "toy"]
    assert auto_order("a.toy", after="opencv") == ["decord", "toy"]
    assert open_video(toy_file).backend == "toy"
    register_backend("toy2", ToyReader, auto_suffixes=[".toy"], auto_rank=0)
    assert open_video(toy_file).backend == "toy2"
    AUTO_ORDER[".toy"] = ["toy", "toy2"]
    assert open_video(toy_file).backend == "toy"


def test_changing_the_order_for_mp4_changes_the_backend_that_opens_it(registry, tmp_path):
    pytest.importorskip("av")  # writing the clip needs PyAV
    from actionzs.testing import write_clip

    path = write_clip(tmp_path / "clip.mp4", 10)
    assert open_video(path).backend == "pyav"  # the fastest exact backend, first for MP4 too
    AUTO_ORDER[".mp4"] = ["opencv", "pyav"]
    assert open_video(path).backend == "opencv"


def test_a_backend_for_every_other_suffix(registry, toy_file):
    register_backend("toy", ToyReader, auto_suffixes=[OTHER_SUFFIXES])
    assert AUTO_ORDER[OTHER_SUFFIXES][-1] == "toy" and "toy" not in AUTO_ORDER[".mp4"]
    assert auto_order("clip.unknown")[-1] == "toy"
    assert open_video(toy_file).backend == "toy"


def test_a_read_failure_under_auto_switches_to_the_next_backend_of_the_order(registry, toy_file, caplog):
    register_backend("toy", ToyReader)
    register_backend("broken", BrokenToyReader)
    AUTO_ORDER[".toy"] = ["broken", "toy"]
    video = open_video(toy_file)
    assert video.backend == "broken"
    with caplog.at_level(logging.WARNING, logger="actionzs"):
        assert indices_of(video.get_frames([6, 1]).data) == [6, 1]
    assert video.backend == "toy"
    assert "broken failed while reading (toy decoder crashed); switching to toy" in caplog.text


def test_a_read_failure_without_a_backend_to_switch_to_is_a_clear_error(registry, toy_file):
    register_backend("broken", BrokenToyReader)
    with pytest.raises(VideoDecodeError, match=r"decoding failed: toy decoder crashed$"):
        open_video(toy_file, "broken").get_frames([0])  # asked for by name: no switching
    AUTO_ORDER[".toy"] = ["broken"]
    with pytest.raises(VideoDecodeError, match=r"decoding failed: toy decoder crashed$"):
        open_video(toy_file).get_frames([0])  # nothing after it in auto's order
    AUTO_ORDER[".toy"] = ["broken", "opencv"]
    with pytest.raises(VideoDecodeError, match=r"crashed; then not a readable video \(opencv: "):
        open_video(toy_file).get_frames([0])  # the next one cannot open the file


def test_a_registered_backend_reopens_in_a_forked_child(registry, toy_file):
    register_backend("toy", ToyReader)
    video = open_video(toy_file, "toy")
    in_child = run_in_fork(lambda: (video.backend, indices_of(video.get_frames([4, 2]).data)), timeout=10)
    assert in_child == ("toy", [4, 2])


def test_unknown_backend_names_list_the_registered_ones(registry, toy_file):
    register_backend("toy", ToyReader)
    with pytest.raises(ValueError, match=r"backend must be one of auto, decord, pyav, opencv, toy; got 'ffmpeg'"):
        open_video(toy_file, "ffmpeg")
    AUTO_ORDER[".toy"] = ["missing", "toy"]
    assert open_video(toy_file).backend == "toy"  # a name in the table that is not registered is passed over
    AUTO_ORDER[".toy"] = ["missing"]
    with pytest.raises(VideoDecodeError, match="missing: not a registered backend"):
        open_video(toy_file)


def test_register_backend_rejects_reserved_names_and_non_readers(registry):
    for name in ("auto", "image"):
        with pytest.raises(ValueError, match="reserved"):
            register_backend(name, ToyReader)
    with pytest.raises(TypeError, match="subclass of actionzs.video.Reader"):
        register_backend("toy", object)
    assert backend_names() == ("auto", "decord", "pyav", "opencv")
