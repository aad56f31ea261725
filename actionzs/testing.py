"""Synthetic clips and tiny checkpoints for tests, benchmarks and demos.

Clips carry their frame index in the pixels (a 4x4 grid of black/white cells in the top two thirds,
16 bits) and a "scene" colour in the bottom third, so a test can prove which frame came back and a
test encoder can tell scenes apart. Writing clips needs PyAV (`pip install av`); reading them back
needs nothing beyond numpy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

GRID_COLS, GRID_ROWS = 4, 4
INDEX_BITS = GRID_COLS * GRID_ROWS

#: Scene colours (RGB) by scene number; scene k fills the bottom third of its frames.
SCENE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 40, 40),
    (40, 200, 40),
    (40, 60, 220),
    (230, 200, 30),
    (200, 40, 200),
    (30, 200, 200),
)


def draw_frame(index: int, width: int, height: int, scene: int = 0) -> np.ndarray:
    """One RGB frame whose pixels encode `index` (16 bits) and `scene` (a colour band)."""
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"frame index {index} does not fit in {INDEX_BITS} bits")
    frame = np.empty((height, width, 3), np.uint8)
    code_height = height * 2 // 3
    for bit in range(INDEX_BITS):
        row, col = divmod(bit, GRID_COLS)
        y0, y1 = row * code_height // GRID_ROWS, (row + 1) * code_height // GRID_ROWS
        x0, x1 = col * width // GRID_COLS, (col + 1) * width // GRID_COLS
        frame[y0:y1, x0:x1] = 255 if (index >> bit) & 1 else 0
    frame[code_height:] = SCENE_COLOURS[scene % len(SCENE_COLOURS)]
    return frame


def read_index(frame: np.ndarray) -> int:
    """The frame index drawn by `draw_frame`, read from the centre of each cell (any frame size)."""
    height, width = frame.shape[:2]
    code_height = height * 2 // 3
    grey = frame[..., :3].astype(np.float32).mean(axis=-1)
    index = 0
    for bit in range(INDEX_BITS):
        row, col = divmod(bit, GRID_COLS)
        y = (2 * row + 1) * code_height // (2 * GRID_ROWS)
        x = (2 * col + 1) * width // (2 * GRID_COLS)
        if grey[y, x] > 127:
            index |= 1 << bit
    return index


def read_scene(frame: np.ndarray) -> int:
    """The scene number drawn by `draw_frame`: the nearest scene colour of the bottom band."""
    height = frame.shape[0]
    band = frame[height * 2 // 3 + (height // 6) // 2 :, :, :3].reshape(-1, 3).astype(np.float32)
    colour = np.median(band, axis=0)
    distances = np.linalg.norm(np.asarray(SCENE_COLOURS, np.float32) - colour, axis=1)
    return int(np.argmin(distances))


_CODECS = {
    # name: (container suffix, codec, pixel format, extra options)
    "h264": (".mp4", "libx264", "yuv420p", {"g": "24", "bf": "3", "crf": "18"}),
    "mpeg4": (".avi", "mpeg4", "yuv420p", {"g": "12", "qscale": "2"}),
    "mjpeg": (".avi", "mjpeg", "yuvj420p", {}),
}


def write_clip(
    path: str | os.PathLike,
    num_frames: int,
    *,
    average_fps: float = 25.0,
    width: int = 160,
    height: int = 120,
    codec: str = "h264",
    scenes: Callable[[int], int] | Sequence[int] | None = None,
    frame_times: Sequence[float] | None = None,
    gop: int | None = None,
) -> Path:
    """Encode a synthetic clip; frame i shows index i and scene `scenes(i)` (or `scenes[i]`).

    `frame_times` (seconds, increasing) gives each frame its own presentation time, which makes a
    variable-frame-rate file; without it frames are spaced 1/average_fps apart. `codec` is one of
    "h264" (B-frames on), "mpeg4" or "mjpeg".
    """
    import av

    suffix, codec_name, pix_fmt, options = _CODECS[codec]
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(suffix)
    rate = Fraction(average_fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec_name, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {**options, **({"g": str(gop)} if gop else {})}
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(num_frames):
            if callable(scenes):
                scene = scenes(i)
            elif scenes is not None:
                scene = scenes[i]
            else:
                scene = 0
            frame = av.VideoFrame.from_ndarray(draw_frame(i, width, height, scene), format="rgb24")
            if frame_times is not None:
                frame.pts = round(frame_times[i] * 1000)
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
