"""Decompression bombs: images (also one named .mp4) declaring more pixels than PIL's limit
(`PIL.Image.MAX_IMAGE_PIXELS`) are a `VideoDecodeError` naming the file, the size and the limit,
refused from the header before any pixel is decoded; the CLI exits 1 without a traceback. The limit
is read, never set: a program that raises it or turns it off (None) gets what it asked for."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from actionzs.errors import VideoDecodeError
from actionzs.testing import draw_frame
from actionzs.video import image_video, open_video

from helpers_cli import FAST, run_cli

LIMIT = f"{Image.MAX_IMAGE_PIXELS:,}-pixel limit (PIL.Image.MAX_IMAGE_PIXELS)"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: Path, width: int, height: int, *, rows: int = 1) -> Path:
    """A grey PNG declaring `width` x `height` pixels whose data holds only `rows` zero rows (a few
    bytes: the header alone is the bomb; `rows=height` makes a whole image of zeros, compressed)."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    data = b"".join(compressor.compress(row) for _ in range(rows)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def refused(path: Path, backend: str = "auto") -> VideoDecodeError:
    with pytest.raises(VideoDecodeError) as info:
        open_video(path, backend)
    error = info.value
    assert type(error) is VideoDecodeError and error.path == str(path)
    return error


@pytest.fixture
def no_filter_left_behind():
    """The process's warning filters are the same after the test as before it."""
    before = list(warnings.filters)
    yield
    assert warnings.filters == before


def test_bomb_over_twice_the_limit(tmp_path, no_filter_left_behind):
    # PIL itself raises DecompressionBombError here (it gives only the pixel count)
    error = refused(png_bomb(tmp_path / "bomb.png", 100_000, 100_000))
    assert error.reason == f"image of 10,000,000,000 pixels is larger than the {LIMIT}"


def test_bomb_between_the_limit_and_twice_it(tmp_path, no_filter_left_behind):
    # PIL only warns here and would go on to decode 100 million pixels: refused, and no warning shown
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        error = refused(png_bomb(tmp_path / "bomb.png", 10_000, 10_000))
    assert error.reason == f"image of 10000 x 10000 pixels is larger than the {LIMIT}"
    assert [w for w in shown if issubclass(w.category, Image.DecompressionBombWarning)] == []


def test_the_limit_is_pils_own_read_each_time(tmp_path, monkeypatch, no_filter_left_behind):
    path = tmp_path / "small.png"
    Image.fromarray(draw_frame(7, 40, 30)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert refused(path).reason == "image of 40 x 30 pixels is larger than the 1,000-pixel limit (PIL.Image.MAX_IMAGE_PIXELS)"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1200)  # the limit itself is allowed
    assert open_video(path).get_frames([0]).data.shape == (1, 30, 40, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # the check turned off
    assert open_video(png_bomb(tmp_path / "bomb.png", 10_000, 10_000)).width == 10_000


def test_an_image_in_memory_is_not_checked():
    """A PIL image or array the caller already holds is used as it is (nothing is left to decode)."""
    assert image_video(np.zeros((2, 3, 3), np.uint8)).get_frames([0]).data.shape == (1, 2, 3, 3)


@pytest.mark.parametrize("backend", ["auto", "opencv", "decord"])
def test_bomb_named_mp4_is_a_clean_error(tmp_path, backend):
    if backend == "decord":
        pytest.importorskip("decord")
    for width, rows in ((100_000, 1), (10_000, 1), (10_000, 10_000)):  # header only, and a whole one of zeros
        error = refused(png_bomb(tmp_path / f"bomb {width} {rows}.mp4", width, width, rows=rows), backend)
        assert "not a readable video" in error.reason or LIMIT in error.reason, error.reason


def test_video_frames_over_the_limit_are_refused(tmp_path, monkeypatch):
    """OpenCV reads a PNG named .mp4 as a one-frame video; its frames get the images' limit."""
    path = tmp_path / "still.mp4"
    Image.fromarray(draw_frame(7, 40, 30)).save(path, format="PNG")
    assert open_video(path, "opencv").width == 40
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for backend in ("auto", "opencv"):
        assert "frames of 40 x 30 pixels are larger than the 1,000-pixel limit" in refused(path, backend).reason


@pytest.mark.parametrize("name", ["bomb.png", "bomb.mp4"])
def test_cli_reports_a_bomb_without_a_traceback(capsys, tmp_path, clip_dir, name):
    path = png_bomb(tmp_path / name, 10_000, 10_000)
    code, out, err = run_cli(capsys, "classify", path, "--model", clip_dir, "-l", "running", "-l", "jumping", *FAST)
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}: ")
    assert "10000 x 10000 pixels" in err or "not a readable video" in err, err
    code, out, err = run_cli(capsys, "probe", path)
    assert code == 1 and "Traceback" not in err and f"error: {path}: " in err
