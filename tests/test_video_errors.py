"""Bad and unusual inputs: every failure is a VideoDecodeError (or FrameIndexError) that names the
file and the reason, never a decoder's own exception; odd but valid files decode exactly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from actionzs import sampling
from actionzs.errors import FrameIndexError, VideoDecodeError
from actionzs.testing import draw_frame, write_clip
from actionzs.video import open_video

from helpers_video import (
    BACKENDS,
    avi_header_counts,
    decode_all,
    encode,
    indices_of,
    patch_avi_frame_count,
    write_audio_only,
)

pytest.importorskip("av")  # writing the test files needs PyAV

ALL_BACKENDS = ("auto", *BACKENDS)


@pytest.fixture(params=ALL_BACKENDS)
def backend(request) -> str:
    if request.param == "decord":
        pytest.importorskip("decord")
    return request.param


@pytest.fixture(params=BACKENDS)
def decoder(request) -> str:
    """decord or opencv (not auto)."""
    if request.param == "decord":
        pytest.importorskip("decord")
    return request.param


def open_fails(path, backend: str = "auto", *reasons: str) -> VideoDecodeError:
    """open_video(path) must raise exactly VideoDecodeError naming the path and every reason."""
    with pytest.raises(VideoDecodeError) as info:
        open_video(path, backend)
    error = info.value
    assert type(error) is VideoDecodeError, f"{type(error).__name__} escaped: {error}"
    assert error.path == os.fspath(path)
    assert str(error).startswith(os.fspath(path) + ": ")
    for reason in reasons:
        assert reason in error.reason, error.reason
    return error


# -- not a file ----------------------------------------------------------------------------------


def test_missing_file(tmp_path, backend):
    open_fails(tmp_path / "nothing here.mp4", backend, "no such file")


def test_directory(tmp_path, backend):
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    open_fails(folder, backend, "is a directory")


def test_empty_file(tmp_path, backend):
    path = tmp_path / "empty.mp4"
    path.touch()
    open_fails(path, backend, "file is empty (0 bytes)")


def test_broken_symlink(tmp_path, backend):
    link = tmp_path / "link.mp4"
    link.symlink_to(tmp_path / "gone.mp4")
    open_fails(link, backend, "broken symbolic link")


def test_fifo_is_not_a_regular_file(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    open_fails(fifo, "auto", "is not a regular file")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read files without read permission")
def test_file_without_read_permission(tmp_path):
    path = write_clip(tmp_path / "private.mp4", 5)
    path.chmod(0)
    try:
        open_fails(path, "auto", "permission denied")
    finally:
        path.chmod(0o644)


def test_permission_denied_reason(tmp_path, monkeypatch):
    """The same check where the tests run as root: os.access says no, the reason says so."""
    path = write_clip(tmp_path / "private.mp4", 5)
    monkeypatch.setattr("actionzs.video.os.access", lambda p, mode: False)
    open_fails(path, "auto", "permission denied")


# -- not a video ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_random_bytes(tmp_path, backend, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    open_fails(path, backend, "not a readable video")


def test_random_bytes_reason_names_each_backend(tmp_path):
    pytest.importorskip("decord")
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    error = open_fails(path, "auto", "not a readable video")
    assert "decord: not a container the decoder recognises" in error.reason
    assert "opencv: not a readable video (OpenCV could not open it)" in error.reason


def test_text_file_renamed_mp4(tmp_path, backend):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 200)
    open_fails(path, backend, "not a readable video")


def test_image_bytes_in_an_image_suffix_that_lies(tmp_path):
    """A .png that holds text goes to the image reader, which says it is not a readable image."""
    path = tmp_path / "fake.png"
    path.write_text("not a picture")
    open_fails(path, "auto", "not a readable image")


@pytest.fixture(scope="module")
def picture() -> np.ndarray:
    return draw_frame(4321, 160, 120, scene=1)


@pytest.mark.parametrize("fmt, tolerance", [("PNG", 0.0), ("JPEG", 2.0)])
def test_image_renamed_mp4_is_a_one_frame_video_via_ffmpeg(tmp_path, picture, fmt, tolerance):
    """Documented behaviour: decord refuses a still image in a .mp4 name, FFmpeg (through PyAV)
    reads it as a one-frame video, so `auto` opens it with PyAV and gives the picture back."""
    from PIL import Image

    path = tmp_path / f"{fmt.lower()}-renamed.mp4"
    Image.fromarray(picture).save(path, format=fmt, quality=95)
    video = open_video(path)
    assert video.backend == "pyav"
    assert video.num_frames == 1
    assert (video.width, video.height) == (160, 120)
    frame = video.get_frames([0]).data[0]
    assert np.abs(frame.astype(np.int16) - picture).mean() <= tolerance
    assert indices_of([frame]) == [4321]
    with pytest.raises(FrameIndexError):
        video.get_frames([1])


def test_image_renamed_mp4_with_decord_is_refused(tmp_path, picture):
    pytest.importorskip("decord")
    from PIL import Image

    path = tmp_path / "png-renamed.mp4"
    Image.fromarray(picture).save(path, format="PNG")
    open_fails(path, "decord", "not a readable video", "decord:")


@pytest.mark.parametrize("name, codec", [("sound.m4a", "aac"), ("sound.mp4", "aac"), ("sound.mkv", "mp2")])
def test_audio_only_file(tmp_path, backend, name, codec):
    path = write_audio_only(tmp_path / name, codec)
    import av

    with av.open(str(path)) as container:  # the file is a valid audio file
        assert len(container.streams.audio) == 1 and len(container.streams.video) == 0
    # FFmpeg's index finds no video stream before any backend is tried: one message on every backend
    error = open_fails(path, backend)
    assert error.reason == "no video stream (audio only, or not a video)"


# -- truncated files -----------------------------------------------------------------------------

CLIP_FRAMES = 100


@pytest.fixture(scope="module")
def mp4s(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of one clip muxed twice: moov at the end (the default) and moov first (faststart)."""
    folder = tmp_path_factory.mktemp("whole")
    normal = encode(folder / "normal.mp4", CLIP_FRAMES, options={"g": "24", "bf": "3", "crf": "18"})
    fast = encode(
        folder / "fast.mp4",
        CLIP_FRAMES,
        options={"g": "24", "bf": "3", "crf": "18"},
        container_options={"movflags": "faststart"},
    )
    data = {"normal": normal.read_bytes(), "faststart": fast.read_bytes()}
    assert data["normal"].find(b"moov") > data["normal"].find(b"mdat")
    assert data["faststart"].find(b"moov") < data["faststart"].find(b"mdat")
    return data


def truncated(mp4s, layout: str, fraction: float, folder: Path) -> Path:
    data = mp4s[layout]
    path = folder / f"{layout}-{int(fraction * 100)}.mp4"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_mp4_with_index_at_the_end(tmp_path, mp4s, backend, fraction):
    path = truncated(mp4s, "normal", fraction, tmp_path)
    open_fails(path, backend, "not a readable video")


def test_truncated_faststart_mp4_before_the_frames(tmp_path, mp4s, backend):
    open_fails(truncated(mp4s, "faststart", 0.1, tmp_path), backend, "not a readable video")


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_faststart_mp4_decord_refuses(tmp_path, mp4s, fraction):
    pytest.importorskip("decord")
    path = truncated(mp4s, "faststart", fraction, tmp_path)
    open_fails(path, "decord", "the file ends early or is damaged (truncated?)")


@pytest.mark.parametrize("fraction", [0.5, 0.9])
@pytest.mark.parametrize("backend_name", ["auto", "opencv"])
def test_truncated_faststart_mp4_gives_the_frames_that_decode(tmp_path, mp4s, fraction, backend_name):
    """The index promises 100 frames; only some decode. The cut packet marks the file damaged, so
    FFmpeg finds on open which frames decode; where a B-frame lost at the cut leaves a gap OpenCV
    cannot skip, it hands over to PyAV (with a warning). Either way exactly those frames come back
    (the same as a full PyAV decode of the file)."""
    path = truncated(mp4s, "faststart", fraction, tmp_path)
    truth = decode_all(path)
    truth_indices = indices_of(truth)
    assert 0 < len(truth) < CLIP_FRAMES
    video = open_video(path, backend_name)
    # a lost frame before the end leaves frames only PyAV can read around
    assert video.backend in (("pyav",) if backend_name == "auto" else ("pyav", backend_name))
    assert video.num_frames == len(truth) <= CLIP_FRAMES
    frames = video.get_frames(range(video.num_frames)).data
    assert indices_of(frames) == truth_indices
    assert all(np.abs(a.astype(np.int16) - b).mean() < 1 for a, b in zip(frames, truth))
    # What decodes is the clip's own frames, in order: a prefix and then (B-frames lost at the cut) a
    # strictly increasing run of later frames.
    assert truth_indices[:10] == list(range(10))
    assert all(b > a for a, b in zip(truth_indices, truth_indices[1:]))
    backwards = list(range(video.num_frames - 1, -1, -5))
    assert indices_of(video.get_frames(backwards).data) == [truth_indices[i] for i in backwards]
    with pytest.raises(FrameIndexError) as info:
        video.get_frames([video.num_frames])
    assert type(info.value) is FrameIndexError


# -- headers that lie ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["mjpeg", "mpeg4"])
def test_avi_header_claiming_more_frames_than_it_holds(tmp_path, backend, codec):
    import cv2

    honest = write_clip(tmp_path / f"honest-{codec}.avi", 40, codec=codec)
    assert avi_header_counts(honest.read_bytes())[2:] == (40, 40)
    liar = tmp_path / f"liar-{codec}.avi"
    patch_avi_frame_count(honest, liar, 100)
    assert avi_header_counts(liar.read_bytes())[2:] == (100, 100)
    capture = cv2.VideoCapture(str(liar), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 100  # the lie reaches OpenCV
    capture.release()

    video = open_video(liar, backend)
    assert video.num_frames == 40
    assert video.duration == pytest.approx(40 / 25, abs=1e-5)
    assert indices_of(video.get_frames([39, 0, 20]).data) == [39, 0, 20]
    for past in ([40], [99], [0, 50]):
        with pytest.raises(FrameIndexError, match="outside the 40 frames") as info:
            video.get_frames(past)
        assert type(info.value) is FrameIndexError
    assert sampling.uniform(video.timeline, 8).indices.tolist() == [2, 7, 12, 17, 22, 27, 32, 37]


# -- unusual names -------------------------------------------------------------------------------


def test_very_long_file_name(tmp_path, decoder):
    path = write_clip(tmp_path / ("v" * 196 + ".mp4"), 12)
    assert len(path.name) == 200
    video = open_video(path, decoder)
    assert video.num_frames == 12
    assert indices_of(video.get_frames([11, 0]).data) == [11, 0]


@pytest.mark.parametrize("folder, name", [("with spaces", "my clip.mp4"), ("ünïcödé 日本", "動画 ñ é.mp4")])
def test_spaces_and_non_ascii_in_the_path(tmp_path, decoder, folder, name):
    (tmp_path / folder).mkdir()
    path = write_clip(tmp_path / folder / name, 12)
    video = open_video(path, decoder)
    assert video.path == str(path)
    assert indices_of(video.get_frames([6, 11, 0]).data) == [6, 11, 0]


def test_non_ascii_missing_path_is_named_in_the_error(tmp_path):
    path = tmp_path / "нет такого файла.mp4"
    error = open_fails(path, "auto", "no such file")
    assert "нет такого файла.mp4" in str(error)


# -- unusual but valid videos --------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["h264", "mpeg4", "mjpeg"])
def test_one_frame_video(tmp_path, decoder, codec):
    path = write_clip(tmp_path / f"one-{codec}", 1, codec=codec)
    video = open_video(path, decoder)
    assert video.num_frames == 1
    assert video.duration == pytest.approx(0.04, abs=1e-6)
    assert sampling.uniform(video.timeline, 4).indices.tolist() == [0, 0, 0, 0]
    assert sampling.at_fps(video.timeline, 1).indices.tolist() == [0]
    assert indices_of(video.get_frames([0, 0]).data) == [0, 0]
    with pytest.raises(FrameIndexError, match="outside the 1 frames"):
        video.get_frames([1])


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("tiny") / "tiny.mp4", 10, width=16, height=16)


def test_16x16_frames_with_auto_and_opencv_are_exact(tiny_clip):
    """decord cannot copy frames 16 pixels wide (its row padding); auto then switches to OpenCV."""
    for backend in ("auto", "opencv"):
        video = open_video(tiny_clip, backend)
        assert (video.width, video.height, video.num_frames) == (16, 16, 10)
        batch = video.get_frames([9, 0, 4, 4])
        assert batch.data.shape == (4, 16, 16, 3)
        assert indices_of(batch.data) == [9, 0, 4, 4]
        assert video.get_frames([3], size=8).data.shape == (1, 8, 8, 3)


def test_16x16_frames_with_decord_are_exact_or_a_clean_error(tiny_clip):
    pytest.importorskip("decord")
    video = open_video(tiny_clip, "decord")
    assert (video.width, video.height, video.num_frames) == (16, 16, 10)
    try:
        batch = video.get_frames([9, 0, 4])
    except VideoDecodeError as error:
        assert type(error) is VideoDecodeError
        assert error.reason.startswith("decoding failed: ")
    else:
        assert indices_of(batch.data) == [9, 0, 4]


@pytest.mark.parametrize("codec", ["mjpeg", "mpeg4"])
def test_odd_width_and_height(tmp_path, decoder, codec):
    # libx264 with 4:2:0 needs even sizes; MJPEG and MPEG-4 Part 2 take odd ones.
    path = write_clip(tmp_path / f"odd-{codec}", 12, width=161, height=121, codec=codec)
    video = open_video(path, decoder)
    assert (video.width, video.height) == (161, 121)
    batch = video.get_frames([11, 0, 5])
    assert batch.data.shape == (3, 121, 161, 3)
    assert indices_of(batch.data) == [11, 0, 5]
    assert video.get_frames([7], size=60).data.shape == (1, 60, 79, 3)
    assert indices_of(video.get_frames([7], size=60).data) == [7]


def test_portrait_frames(tmp_path, decoder):
    path = write_clip(tmp_path / "portrait.mp4", 12, width=120, height=160)
    video = open_video(path, decoder)
    assert (video.width, video.height) == (120, 160)
    batch = video.get_frames([11, 0, 5])
    assert batch.data.shape == (3, 160, 120, 3)
    assert indices_of(batch.data) == [11, 0, 5]
    small = video.get_frames([11, 2], size=64)  # the shortest side is the width
    assert small.data.shape == (2, 85, 64, 3)
    assert indices_of(small.data) == [11, 2]
    assert video.get_frames([3], size=(40, 30)).data.shape == (1, 40, 30, 3)


def test_portrait_small_size_with_auto_is_exact(tmp_path):
    """size=8 on portrait frames asks decord for 8-pixel-wide frames, which it cannot copy; auto
    must still return the right frames (from OpenCV)."""
    path = write_clip(tmp_path / "portrait.mp4", 12, width=120, height=160)
    video = open_video(path)
    batch = video.get_frames([11, 1], size=8)
    assert batch.data.shape == (2, 10, 8, 3)
    # 8x10 is too small to read 16 bits back reliably; compare with a fresh full-size decode shrunk
    full = open_video(path, "opencv").get_frames([11, 1], size=8).data
    assert np.abs(batch.data.astype(np.int16) - full).mean() < 8


# -- errors while reading ------------------------------------------------------------------------


def test_no_decoder_exception_escapes_while_reading(tmp_path, decoder):
    """Frames asked for past the end of a file whose header lies: a FrameIndexError, nothing else."""
    honest = write_clip(tmp_path / "honest.avi", 20, codec="mjpeg")
    liar = tmp_path / "liar.avi"
    patch_avi_frame_count(honest, liar, 60)
    video = open_video(liar, decoder)
    for wanted in ([20], [19, 25], [-1]):
        with pytest.raises(VideoDecodeError) as info:
            video.get_frames(wanted)
        assert type(info.value) is FrameIndexError
    assert indices_of(video.get_frames([19]).data) == [19]
