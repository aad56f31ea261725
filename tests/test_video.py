"""Decoding tests: true metadata and exactly the frames asked for, proved on generated clips whose
pixels carry their own frame index, and checked on the sample footage folder when it is present."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from actionzs import sampling
from actionzs.errors import FrameIndexError, VideoDecodeError
from actionzs.frames import FrameBatch
from actionzs.testing import draw_frame, read_index, read_scene, write_clip
from actionzs.video import MAX_CHUNK_FRAMES, Video, image_video, open_video
from actionzs.video.capture import STDERR

from helpers_video import BACKENDS, decode_first, encode, indices_of, run_in_fork

pytest.importorskip("av")  # writing the test clips needs PyAV

FPS = 25.0
WIDTH, HEIGHT = 160, 120

# name: (write_clip arguments, frame count)
CLIPS = {
    "h264": (dict(codec="h264"), 100),  # B-frames on, keyframe every 24
    "h264-gop50": (dict(codec="h264", gop=50), 120),  # long GOP: OpenCV seeks must land exactly
    "mpeg4": (dict(codec="mpeg4"), 100),
    "mjpeg": (dict(codec="mjpeg"), 100),
}


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "decord":
        pytest.importorskip("decord")
    return request.param


@pytest.fixture(scope="module")
def clip_paths(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    suffix = {"h264": ".mp4", "mpeg4": ".avi", "mjpeg": ".avi"}
    return {
        name: write_clip(folder / f"{name}{suffix[kwargs['codec']]}", count, average_fps=FPS, width=WIDTH, height=HEIGHT, **kwargs)
        for name, (kwargs, count) in CLIPS.items()
    }


@pytest.fixture(params=list(CLIPS))
def clip(request, clip_paths) -> tuple[Path, int]:
    return clip_paths[request.param], CLIPS[request.param][1]


@pytest.fixture(scope="module")
def gop50(clip_paths) -> Path:
    return clip_paths["h264-gop50"]


def assert_exact(batch: FrameBatch, video: Video, wanted) -> None:
    """The batch holds exactly the frames `wanted`, in that order, with their indices and times."""
    wanted = [int(i) for i in wanted]
    assert isinstance(batch, FrameBatch)
    assert batch.data.dtype == np.uint8
    assert batch.data.shape[0] == len(wanted)
    assert indices_of(batch.data) == wanted
    assert batch.indices.tolist() == wanted
    assert np.array_equal(batch.pts_seconds, video.timeline.pts_seconds[wanted])


# -- metadata ------------------------------------------------------------------------------------


def test_metadata(clip, backend):
    path, count = clip
    video = open_video(path, backend)
    assert video.backend == backend
    assert video.num_frames == count
    assert video.average_fps == pytest.approx(FPS)
    assert video.duration == pytest.approx(count / FPS, abs=1e-5)
    assert (video.width, video.height) == (WIDTH, HEIGHT)
    assert video.timeline.pts_seconds == pytest.approx(np.arange(count) / FPS, abs=1e-5)
    info, keys = video.info(), video.timeline.keyframes
    assert info == {
        "path": str(path),
        "backend": backend,
        "num_frames": count,
        "fps": pytest.approx(FPS),
        "duration": pytest.approx(count / FPS, abs=1e-5),
        "width": WIDTH,
        "height": HEIGHT,
        "keyframes": None if keys is None else len(keys),
        "keyframe_interval_seconds": None if keys is None or len(keys) < 2 else pytest.approx(
            float(np.median(np.diff(video.timeline.pts_seconds[keys]))), abs=1e-6),
    }
    assert f"frames={count}" in repr(video)


def test_auto_backend_is_pyav(clip_paths):
    video = open_video(clip_paths["h264"])
    assert video.backend == "pyav"
    assert video.num_frames == 100


def test_accepts_pathlike_and_str(clip_paths):
    path = clip_paths["mjpeg"]
    assert open_video(str(path), "opencv").path == str(path)
    assert open_video(path, "opencv").path == str(path)


def test_unknown_backend_is_rejected(clip_paths):
    with pytest.raises(ValueError, match="backend must be one of"):
        open_video(clip_paths["h264"], "ffmpeg")


# -- exact frames --------------------------------------------------------------------------------


def test_every_frame_in_order(clip, backend):
    path, count = clip
    video = open_video(path, backend)
    assert_exact(video.get_frames(range(count)), video, range(count))


def test_reverse_order_and_duplicates(clip, backend):
    path, count = clip
    video = open_video(path, backend)
    wanted = [count - 1, 0, 5, 5, count - 1, count // 2, 2, 2, 1, 0]
    assert_exact(video.get_frames(wanted), video, wanted)
    backwards = list(range(count - 1, -1, -7))
    assert_exact(video.get_frames(np.array(backwards)), video, backwards)


def test_sampler_indices(clip, backend):
    path, _ = clip
    video = open_video(path, backend)
    for sample in (sampling.uniform(video.timeline, 8), sampling.at_fps(video.timeline, 3)):
        batch = video.get_frames(sample.indices)
        assert_exact(batch, video, sample.indices)
        assert np.array_equal(batch.pts_seconds, sample.pts_seconds)


@pytest.mark.parametrize(
    "name",
    [
        "opencv",
        "decord",
    ],
)
def test_sample_time_exactly_at_a_frame_start_picks_that_frame(clip_paths, name):
    if name == "decord":
        pytest.importorskip("decord")
    video = open_video(clip_paths["h264"], name)
    # 2.5 fps on 25 fps: step centres 0.2, 0.6, 1.0, ... s are the starts of frames 5, 15, 25, ...
    assert sampling.at_fps(video.timeline, 2.5).indices.tolist() == list(range(5, 100, 10))
    assert video.timeline.frame_at([0.6, 1.4, 3.8]).tolist() == [15, 35, 95]


def test_uniform_per_window_indices(clip, backend):
    """Overlapping windows give repeated and non-monotonic indices, as segment scoring asks for."""
    path, _ = clip
    video = open_video(path, backend)
    spans = sampling.windows(video.duration, 1.6, 0.8)
    assert len(spans) >= 4
    wanted = np.concatenate([sampling.uniform(video.timeline, 4, s.start_seconds, s.end_seconds).indices for s in spans])
    assert len(np.unique(wanted)) < len(wanted)  # the windows overlap, so frames repeat
    assert_exact(video.get_frames(wanted), video, wanted)


def test_far_apart_indices_in_a_long_gop(gop50, backend):
    """Gaps longer than OpenCV's seek threshold (48 frames) and jumps back: seeks must be exact."""
    video = open_video(gop50, backend)
    for wanted in ([0, 60, 119], [119], [50], [49, 99], [1, 51, 101], [110, 5, 110, 60]):
        assert_exact(video.get_frames(wanted), video, wanted)


def test_random_index_sets(clip, backend):
    path, count = clip
    video = open_video(path, backend)
    rng = np.random.default_rng(7)
    for _ in range(12):
        wanted = rng.integers(0, count, size=int(rng.integers(1, 9)))
        assert_exact(video.get_frames(wanted), video, wanted)


def test_repeated_calls_on_one_video_stay_exact(gop50, backend):
    video = open_video(gop50, backend)
    for wanted in ([100], [3], [100, 101], [0], [119, 118, 117]):
        assert_exact(video.get_frames(wanted), video, wanted)


def test_frames_stay_exact_when_the_decoder_rests_between_reads(gop50, backend):
    video = open_video(gop50, backend)
    for wanted in ([10, 20], [30, 31, 75], [5], [110, 119]):
        assert_exact(video.get_frames(wanted), video, wanted)
        video.rest()
    video.close()
    video.rest()  # harmless once closed


def test_a_decoder_that_cannot_rest_reads_on(gop50, monkeypatch):
    video = open_video(gop50, "opencv")

    def broken():
        raise RuntimeError("seek failed")

    monkeypatch.setattr(video._reader, "rest", broken)
    video.rest()  # only advice: no error
    assert_exact(video.get_frames([7, 8]), video, [7, 8])


def _rss_mb() -> float:
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status")
def test_a_resting_decord_reader_does_not_decode_ahead_into_memory(tmp_path):
    """decord goes on decoding frames nobody asked for while it is idle; `rest` stops that."""
    pytest.importorskip("decord")
    path = write_clip(tmp_path / "long.mp4", 1500, average_fps=25, width=320, height=240, gop=250)

    def growth_while_idle(rest: bool) -> float:
        video = open_video(path, "decord")
        video.get_frames(range(0, 800, 25), size=224)
        if rest:
            video.rest()
        before = _rss_mb()
        time.sleep(1.0)
        grown = _rss_mb() - before
        video.close()
        return grown

    if growth_while_idle(rest=False) < 60:
        pytest.skip("decord did not decode ahead within a second here (busy machine?)")
    assert growth_while_idle(rest=True) < 30


def test_pixels_are_the_drawn_picture(clip_paths, backend):
    """Not only the index: the whole picture is close to what was encoded (lossless-ish settings)."""
    video = open_video(clip_paths["h264"], backend)
    batch = video.get_frames([0, 42])
    for frame, index in zip(batch.data, [0, 42]):
        expected = draw_frame(index, WIDTH, HEIGHT).astype(np.int16)
        assert np.abs(frame.astype(np.int16) - expected).mean() < 4
        assert read_scene(frame) == 0


def test_empty_index_list(clip_paths, backend):
    video = open_video(clip_paths["h264"], backend)
    batch = video.get_frames([])
    assert batch.data.shape == (0, HEIGHT, WIDTH, 3)
    assert len(batch.indices) == len(batch.pts_seconds) == 0
    assert video.get_frames([], size=64).data.shape == (0, 64, 85, 3)


@pytest.mark.parametrize("bad", [[1.0, 2.0], [[1, 2]], ["a"]])
def test_non_integer_indices_are_a_type_error(clip_paths, bad):
    video = open_video(clip_paths["mjpeg"], "opencv")
    with pytest.raises(TypeError, match="flat sequence of integers"):
        video.get_frames(bad)


# -- size ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, shape",
    [
        (64, (64, 85)),  # an int is the shortest side; 64 * 160 / 120 = 85.3 -> 85
        (224, (224, 298)),  # upscaling
        ((48, 80), (48, 80)),  # (height, width)
        ((100, 100), (100, 100)),  # aspect not kept
        ((120, 160), (120, 160)),  # the native size
    ],
)
def test_size(clip_paths, backend, size, shape):
    video = open_video(clip_paths["h264-gop50"], backend)
    wanted = [119, 5, 77, 5]
    batch = video.get_frames(wanted, size=size)
    assert batch.data.shape == (len(wanted), *shape, 3)
    assert indices_of(batch.data) == wanted
    assert [read_scene(frame) for frame in batch.data] == [0] * len(wanted)
    # Asking at another size afterwards still gives the native size.
    assert video.get_frames([1]).data.shape == (1, HEIGHT, WIDTH, 3)


def test_size_on_every_codec(clip, backend):
    path, count = clip
    video = open_video(path, backend)
    batch = video.get_frames([count - 1, 0], size=96)
    assert batch.data.shape == (2, 96, 128, 3)
    assert indices_of(batch.data) == [count - 1, 0]


def test_size_too_small_is_rejected(clip_paths):
    video = open_video(clip_paths["h264"], "opencv")
    with pytest.raises(ValueError, match="empty picture"):
        video.get_frames([0], size=(0, 10))


# -- iter_frames ---------------------------------------------------------------------------------


def test_iter_frames_chunks(clip_paths, backend):
    video = open_video(clip_paths["h264"], backend)
    wanted = [9, 1, 1, 50, 99, 0, 3, 72, 72, 10]
    batches = list(video.iter_frames(wanted, chunk=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert [b.indices.tolist() for b in batches] == [wanted[0:4], wanted[4:8], wanted[8:]]
    for batch in batches:
        assert indices_of(batch.data) == batch.indices.tolist()
        assert np.array_equal(batch.pts_seconds, video.timeline.pts_seconds[batch.indices])


def test_iter_frames_default_chunk_and_size(clip_paths, backend):
    video = open_video(clip_paths["h264"], backend)
    wanted = list(range(0, 100, 1)) + list(range(99, 79, -1))  # 120 frames
    batches = list(video.iter_frames(wanted, size=32))
    assert [len(b) for b in batches] == [MAX_CHUNK_FRAMES] * 3 + [120 - 3 * MAX_CHUNK_FRAMES]
    assert all(b.data.shape[1:] == (32, 42, 3) for b in batches)
    assert [i for b in batches for i in indices_of(b.data)] == wanted


def test_iter_frames_is_lazy_and_validates_first(clip_paths):
    video = open_video(clip_paths["h264"], "opencv")
    with pytest.raises(FrameIndexError):
        next(iter(video.iter_frames([0, 1, 100])))


# -- variable frame rate -------------------------------------------------------------------------

# 30 frames 0.1 s apart, a burst of 30 frames 0.02 s apart, then 20 frames 0.2 s apart.
VFR_TIMES = np.round(np.concatenate([np.arange(30) * 0.1, 3.0 + np.arange(30) * 0.02, 3.6 + np.arange(20) * 0.2]), 3)


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("vfr") / "vfr.mp4", len(VFR_TIMES), frame_times=VFR_TIMES.tolist())


def on_screen(times) -> np.ndarray:
    """The index of the frame really on screen at each time."""
    return np.searchsorted(VFR_TIMES, np.asarray(times) + 1e-9, side="right") - 1


def test_vfr_timeline_is_the_real_frame_times_with_decord(vfr_clip):
    pytest.importorskip("decord")
    video = open_video(vfr_clip, "decord")
    assert video.num_frames == len(VFR_TIMES)
    assert video.timeline.pts_seconds == pytest.approx(VFR_TIMES, abs=1e-6)
    assert VFR_TIMES[-1] < video.duration <= VFR_TIMES[-1] + 0.25


def test_vfr_at_fps_picks_the_frame_on_screen_at_the_real_time(vfr_clip):
    pytest.importorskip("decord")
    video = open_video(vfr_clip, "decord")
    sample = sampling.at_fps(video.timeline, 2)
    times = (np.arange(int(np.ceil(video.duration * 2))) + 0.5) / 2
    expected = list(dict.fromkeys(on_screen(times).tolist()))  # duplicates dropped, order kept
    assert sample.indices.tolist() == expected
    # The burst (frames 30..59 within 0.6 s) gives few samples; the slow start gives one per 0.5 s.
    assert sample.indices.tolist()[:6] == [2, 7, 12, 17, 22, 27]
    batch = video.get_frames(sample.indices)
    assert indices_of(batch.data) == expected
    assert batch.pts_seconds == pytest.approx(VFR_TIMES[expected], abs=1e-6)


def test_vfr_uniform_samples_by_time(vfr_clip):
    pytest.importorskip("decord")
    video = open_video(vfr_clip, "decord")
    sample = sampling.uniform(video.timeline, 6)
    centres = (np.arange(6) + 0.5) * video.duration / 6
    assert sample.indices.tolist() == on_screen(centres).tolist()
    assert indices_of(video.get_frames(sample.indices).data) == sample.indices.tolist()


@pytest.mark.parametrize("name", ["opencv", "pyav"])
def test_vfr_times_are_the_containers_on_every_backend(vfr_clip, name):
    """OpenCV gives no per-frame times of its own: it is held to the container's index and reads by
    those times; frames by index are exact (seeks that do not verify are dropped)."""
    video = open_video(vfr_clip, name)
    assert video.num_frames == len(VFR_TIMES)
    assert video.timeline.pts_seconds == pytest.approx(VFR_TIMES, abs=1e-6)
    assert video.average_fps == pytest.approx(len(VFR_TIMES) / video.duration)
    wanted = [79, 0, 45, 30, 59, 60, 79, 1]
    assert indices_of(video.get_frames(wanted).data) == wanted


# -- frame index errors --------------------------------------------------------------------------


@pytest.mark.parametrize("wanted, shown", [([100], 100), ([-1], -1), ([0, 5, 250], 250), ([3, -7, 200], -7)])
def test_index_outside_the_video(clip_paths, backend, wanted, shown):
    video = open_video(clip_paths["h264"], backend)
    with pytest.raises(FrameIndexError) as info:
        video.get_frames(wanted)
    assert type(info.value) is FrameIndexError
    assert isinstance(info.value, IndexError) and isinstance(info.value, VideoDecodeError)
    assert info.value.path == str(clip_paths["h264"])
    assert f"frame index {shown} is outside the 100 frames" in str(info.value)
    # The video is still usable afterwards.
    assert indices_of(video.get_frames([99, 0]).data) == [99, 0]


def test_last_frame_is_inside(clip_paths, backend):
    video = open_video(clip_paths["h264"], backend)
    assert indices_of(video.get_frames([video.num_frames - 1]).data) == [99]


# -- still images --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return draw_frame(1234, WIDTH, HEIGHT, scene=2)


@pytest.mark.parametrize("suffix", [".png", ".PNG", ".bmp"])
def test_lossless_image_file_is_a_one_frame_video(tmp_path, picture, suffix):
    from PIL import Image

    path = tmp_path / f"still{suffix}"
    Image.fromarray(picture).save(path, format="PNG" if suffix.lower() == ".png" else "BMP")
    video = open_video(path)
    assert video.backend == "image"
    assert (video.num_frames, video.average_fps, video.duration) == (1, 1.0, 1.0)
    assert (video.width, video.height) == (WIDTH, HEIGHT)
    batch = video.get_frames([0, 0])
    assert np.array_equal(batch.data, np.stack([picture, picture]))
    assert batch.indices.tolist() == [0, 0]
    assert batch.pts_seconds.tolist() == [0.0, 0.0]
    small = video.get_frames([0], size=60)
    assert small.data.shape == (1, 60, 80, 3)
    assert read_index(small.data[0]) == 1234 and read_scene(small.data[0]) == 2
    assert sampling.uniform(video.timeline, 8).indices.tolist() == [0] * 8
    with pytest.raises(FrameIndexError, match="outside the 1 frames"):
        video.get_frames([1])


def test_jpeg_and_rgba_images(tmp_path, picture):
    from PIL import Image

    Image.fromarray(picture).save(tmp_path / "still.jpg", quality=95)
    Image.fromarray(np.dstack([picture, np.full(picture.shape[:2], 128, np.uint8)])).save(tmp_path / "alpha.png")
    for name in ("still.jpg", "alpha.png"):
        video = open_video(tmp_path / name)
        frame = video.get_frames([0]).data[0]
        assert frame.shape == (HEIGHT, WIDTH, 3)
        assert read_index(frame) == 1234 and read_scene(frame) == 2


def test_image_video_from_array_and_pil(picture):
    from PIL import Image

    from_array = image_video(picture)
    assert from_array.path == "<image>"
    assert from_array.backend == "image"
    assert np.array_equal(from_array.get_frames([0]).data[0], picture)
    from_pil = image_video(Image.fromarray(picture), name="frame.png")
    assert from_pil.path == "frame.png"
    assert np.array_equal(from_pil.get_frames([0, 0]).data, np.stack([picture, picture]))
    assert from_pil.get_frames([0], size=(30, 40)).data.shape == (1, 30, 40, 3)
    rgba = np.dstack([picture, np.zeros(picture.shape[:2], np.uint8)])
    assert np.array_equal(image_video(rgba).get_frames([0]).data[0], picture)
    grey = Image.fromarray(picture[..., 0])
    assert image_video(grey).get_frames([0]).data.shape == (1, HEIGHT, WIDTH, 3)


@pytest.mark.parametrize(
    "array", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8)]
)
def test_image_video_rejects_bad_arrays(array):
    with pytest.raises(VideoDecodeError, match="uint8") as info:
        image_video(array, name="bad")
    assert info.value.path == "bad"


def test_image_video_rejects_other_types():
    with pytest.raises(TypeError, match="expected a path, PIL image or uint8 array"):
        image_video([[1, 2, 3]])


# -- processes and threads -----------------------------------------------------------------------


def _frames_in_child(video: Video, wanted: list[int]) -> list[int]:
    return indices_of(video.get_frames(wanted).data)


def test_video_used_in_a_forked_child(gop50, backend):
    video = open_video(gop50, backend)
    assert indices_of(video.get_frames([10, 70]).data) == [10, 70]  # used in the parent first
    wanted = [100, 3, 3, 60]
    assert run_in_fork(_frames_in_child, video, wanted, timeout=10) == wanted
    assert indices_of(video.get_frames([5, 100]).data) == [5, 100]  # the parent's decoder is intact


def _collect_then_read(video: Video, wanted: list[int]) -> list[int]:
    gc.collect()  # frees the forgotten Video and with it a decoder whose threads live in the parent
    return indices_of(video.get_frames(wanted).data)


def test_forked_child_frees_a_forgotten_video_without_hanging(gop50, backend):
    forgotten = open_video(gop50, backend)
    forgotten.get_frames([100])
    forgotten.cycle = forgotten  # only the cycle collector frees it, at any moment, in any process
    del forgotten
    video = open_video(gop50, backend)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # keep the cycle alive until the child collects it
    try:
        assert run_in_fork(_collect_then_read, video, [100, 3], timeout=10) == [100, 3]
    finally:
        if gc_was_enabled:
            gc.enable()


def test_forked_while_another_thread_reads(gop50, backend):
    video = open_video(gop50, backend)
    stop = threading.Event()

    def keep_reading():
        while not stop.is_set():
            video.get_frames([0, 119])

    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        results = [run_in_fork(_frames_in_child, video, [60, 7], timeout=10) for _ in range(3)]
    finally:
        stop.set()
        reader.join()
    assert results == [[60, 7]] * 3


NO_SIDE_EFFECTS_AT_IMPORT = """
import sys
import numpy as np
import actionzs.video
from actionzs.video import capture
loaded = {"torch", "decord", "cv2"} & set(sys.modules)
assert not loaded, f"importing actionzs.video loaded {sorted(loaded)}"
assert not capture._HOOK_UNREGISTERED.locked(), "the fork hook was registered at import"
actionzs.video.image_video(np.zeros((4, 4, 3), np.uint8))
assert capture._HOOK_UNREGISTERED.locked(), "the first Video did not register the fork hook"
"""


def test_importing_loads_no_decoder_and_the_first_video_registers_the_fork_hook():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-c", NO_SIDE_EFFECTS_AT_IMPORT]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_decoder_output_is_kept_off_the_terminal_without_serialising_decoders(capfd):
    said = {}
    both_inside = threading.Barrier(2)

    def decoder(name: str) -> None:
        with STDERR.capture() as text:
            both_inside.wait(timeout=5)  # a capture that serialised decoders would break this barrier
            os.write(2, f"decoder {name} complains\n".encode())
            both_inside.wait(timeout=5)
        said[name] = text

    threads = [threading.Thread(target=decoder, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert set(said) == {"a", "b"}
    for text in said.values():  # each call sees what was printed while it ran
        assert "decoder a complains" in text[0] and "decoder b complains" in text[0]
    os.write(2, b"after the decoders\n")
    err = capfd.readouterr().err
    assert "after the decoders" in err and "complains" not in err  # fd 2 is the terminal's again


def test_reading_a_closed_video_is_a_clear_error(gop50, backend):
    with open_video(gop50, backend) as video:
        video.get_frames([10])
    with pytest.raises(VideoDecodeError, match="closed") as info:
        video.get_frames([10])
    assert info.value.path == str(gop50)


def test_one_video_from_many_threads(gop50, backend):
    video = open_video(gop50, backend)
    barrier = threading.Barrier(6)

    def work(seed: int) -> bool:
        if seed < 6:
            barrier.wait(timeout=10)  # start the first six together
        rng = np.random.default_rng(seed)
        wanted = rng.integers(0, 120, size=8).tolist()
        size = (None, 64, (48, 64))[seed % 3]
        batch = video.get_frames(wanted, size=size)
        return indices_of(batch.data) == wanted and batch.indices.tolist() == wanted

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(work, range(24)))
    assert all(results)


def test_many_videos_from_many_threads(clip_paths, backend):
    def work(name: str) -> bool:
        video = open_video(clip_paths[name], backend)
        wanted = [video.num_frames - 1, 0, video.num_frames // 2]
        return indices_of(video.get_frames(wanted).data) == wanted

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, list(CLIPS) * 2))


# -- the sample footage folder (skipped where absent) -------------------------------------------

# Frame counts are what a full decode yields (see ../shared/videos/README.md).
FOOTAGE = {
    "bikes.mp4": (250, 25.0, 640, 272),
    "carphone_pristine.mp4": (120, 30000 / 1001, 176, 144),
    "bigbuckbunny.mp4": (132, 25.0, 1280, 720),
    "Megamind.avi": (270, 24000 / 1001, 720, 528),
}
H264_FOOTAGE = ["bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4"]


def footage(shared_videos: Path, name: str) -> Path:
    path = shared_videos / name
    if not path.is_file():
        pytest.skip(f"{name} is not in {shared_videos}")
    return path


def test_every_sample_file_opens(shared_videos):
    paths = sorted(p for p in shared_videos.iterdir() if p.suffix.lower() not in {".md", ".txt"})
    assert paths
    for path in paths:
        video = open_video(path)
        assert video.num_frames > 0 and video.average_fps > 0 and video.duration > 0, path
        last = video.get_frames([video.num_frames - 1]).data
        assert last.shape == (1, video.height, video.width, 3), path


def open_footage(path: Path, backend: str):
    """The sample file opened with `backend`; decord is refused for Megamind.avi (B-frames in AVI,
    where its random access returns wrong frames) and the test skips."""
    if backend == "decord" and path.name == "Megamind.avi":
        with pytest.raises(VideoDecodeError, match="decord misplaces frames of mpeg4 streams with B-frames"):
            open_video(path, backend)
        pytest.skip("decord is refused for this file")
    return open_video(path, backend)


@pytest.mark.parametrize("name", list(FOOTAGE))
def test_sample_metadata(shared_videos, name, backend):
    frames, fps, width, height = FOOTAGE[name]
    video = open_footage(footage(shared_videos, name), backend)
    assert video.num_frames == frames
    assert video.average_fps == pytest.approx(fps, rel=1e-4)
    assert (video.width, video.height) == (width, height)
    assert video.duration == pytest.approx(frames / fps, rel=1e-3)


@pytest.mark.parametrize("name", list(FOOTAGE))
def test_sample_first_middle_last(shared_videos, name, backend):
    video = open_footage(footage(shared_videos, name), backend)
    n = video.num_frames
    batch = video.get_frames([0, n // 2, n - 1])
    assert batch.data.shape == (3, video.height, video.width, 3)
    assert batch.data.std() > 5  # real pictures, not blank frames
    small = video.get_frames([n - 1, 0], size=112)
    assert small.data.shape[1] == 112 or small.data.shape[2] == 112


def test_megamind_every_backend_that_opens_it_gives_the_full_decodes_frames(shared_videos):
    """B-frames in AVI (packed MPEG-4): decord's random access returns other frames (9 of 12 random
    picks measured), so it is refused; PyAV and OpenCV return what a full decode presents."""
    import av

    path = footage(shared_videos, "Megamind.avi")
    with av.open(str(path)) as container:
        truth = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    wanted = [269, 3, 4, 5, 100, 101, 57, 0]
    for name in ("pyav", "opencv"):
        video = open_video(path, name)
        assert video.num_frames == len(truth) == 270
        np.testing.assert_allclose(video.timeline.pts_seconds, np.arange(270) / video.average_fps, atol=1e-6)
        frames = video.get_frames(wanted).data
        assert all(np.array_equal(frame, truth[i]) for frame, i in zip(frames, wanted)), name


@pytest.mark.parametrize("name", H264_FOOTAGE)
def test_sample_decord_and_opencv_agree(shared_videos, name):
    pytest.importorskip("decord")
    path = footage(shared_videos, name)
    by_decord, by_opencv = open_video(path, "decord"), open_video(path, "opencv")
    n = by_decord.num_frames
    wanted = [n - 1, 0, 1, n // 3, n // 2, n - 2]
    a = by_decord.get_frames(wanted).data.astype(np.int16)
    b = by_opencv.get_frames(wanted).data.astype(np.int16)
    for i in range(len(wanted)):
        assert np.abs(a[i] - b[i]).mean() < 3, (name, wanted[i])


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def megamind_truth(shared_videos) -> list[np.ndarray]:
    """Frames 0..269 of Megamind.avi from a sequential PyAV decode, at 1/4 size to keep memory low."""
    return [frame[::4, ::4] for frame in decode_first(footage(shared_videos, "Megamind.avi"), 270)]


MEGAMIND_WANTED = [0, 1, 90, 134, 135, 200, 268, 269]


def test_megamind_opencv_frames_are_the_decoded_frames(shared_videos, megamind_truth):
    video = open_video(footage(shared_videos, "Megamind.avi"), "opencv")
    batch = video.get_frames(MEGAMIND_WANTED)
    for frame, index in zip(batch.data, MEGAMIND_WANTED):
        assert _mean_diff(frame[::4, ::4], megamind_truth[index]) < 1, index


def test_megamind_default_backend_frames_are_the_decoded_frames(shared_videos, megamind_truth):
    pytest.importorskip("decord")
    video = open_video(footage(shared_videos, "Megamind.avi"))
    batch = video.get_frames(MEGAMIND_WANTED)
    for frame, index in zip(batch.data, MEGAMIND_WANTED):
        assert _mean_diff(frame[::4, ::4], megamind_truth[index]) < 1, index


# -- B-frames where decord's seeking is wrong ----------------------------------------------------

BFRAME_CLIPS = {
    # name: (file name, PyAV codec, options)
    "mpeg4-bframes-avi": ("bf.avi", "mpeg4", {"bf": "2", "g": "12", "qscale": "2"}),
    "h264-bframes-avi": ("h264.avi", "libx264", {"bf": "3", "g": "24", "crf": "18"}),
    "mpeg4-bframes-mkv": ("bf.mkv", "mpeg4", {"bf": "2", "g": "12", "qscale": "2"}),
}


@pytest.fixture(scope="module", params=list(BFRAME_CLIPS))
def bframe_clip(request, tmp_path_factory) -> Path:
    name, codec, options = BFRAME_CLIPS[request.param]
    return encode(tmp_path_factory.mktemp("bframes") / name, 100, codec=codec, options=options)


BFRAME_WANTED = [10, 50, 99, 40, 41, 0]


def test_bframe_clips_with_opencv_are_exact(bframe_clip):
    video = open_video(bframe_clip, "opencv")
    assert video.num_frames == 100
    assert indices_of(video.get_frames(BFRAME_WANTED).data) == BFRAME_WANTED
    assert indices_of(video.get_frames(range(100)).data) == list(range(100))


def test_bframe_clips_with_the_default_backend_are_exact(bframe_clip):
    pytest.importorskip("decord")
    video = open_video(bframe_clip)
    assert video.num_frames == 100
    assert indices_of(video.get_frames(BFRAME_WANTED).data) == BFRAME_WANTED
