"""Helpers shared by the decoding tests: clips written with PyAV whose frames carry their own index,
ground-truth decodes, AVI header patching and running code in a forked child with a deadline."""

from __future__ import annotations

import multiprocessing
import queue
import struct
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from actionzs.testing import draw_frame, read_index

BACKENDS = ("decord", "pyav", "opencv")


def indices_of(frames) -> list[int]:
    """The frame index drawn into each decoded frame (works for any decoded size)."""
    return [read_index(frame) for frame in np.asarray(frames)]


def encode(
    path: str | Path,
    num_frames: int,
    *,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    width: int = 160,
    height: int = 120,
    fps: int = 25,
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    frame_times: Sequence[float] | None = None,
    grain: int = 0,
) -> Path:
    """Like actionzs.testing.write_clip, with any PyAV codec and container/codec options;
    `rotation` stores a display matrix (degrees counter-clockwise). `frame_times` (seconds) gives
    each frame its own pts in a 1/1000 time base (variable frame rate in any container); `grain`
    adds noise of up to that many levels to the scene band, which makes frames cost bytes the
    way real footage does (the index cells stay clean)."""
    import av

    path = Path(path)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = options or {}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(num_frames):
            picture = draw_frame(i, width, height)
            if grain:
                band = picture[height * 2 // 3 :].astype(np.int16)
                band += rng.integers(-grain, grain + 1, band.shape, dtype=np.int16)
                picture[height * 2 // 3 :] = np.clip(band, 0, 255)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = round(frame_times[i] * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_audio_only(path: str | Path, codec: str = "aac", seconds: float = 0.5) -> Path:
    """A file with one audio stream (a quiet tone) and no video stream."""
    import av

    path = Path(path)
    rate = 44100
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        frame_size = stream.codec_context.frame_size or 1024
        t = 0
        while t < seconds * rate:
            tone = (0.1 * np.sin(2 * np.pi * 440 * (t + np.arange(frame_size)) / rate)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = t
            for packet in stream.encode(frame):
                container.mux(packet)
            t += frame_size
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_all(path: str | Path) -> list[np.ndarray]:
    """Every frame a full, sequential PyAV decode yields (the ground truth), as RGB arrays. Like
    FFmpeg's own tools it goes on past a packet that does not decode (damage, a cut last packet);
    a file FFmpeg cannot open gives none."""
    import av

    frames = []
    try:
        container = av.open(str(path))
    except av.error.FFmpegError:
        return frames
    with container:
        try:
            for packet in container.demux(video=0):
                try:
                    frames.extend(frame.to_ndarray(format="rgb24") for frame in packet.decode())
                except av.error.FFmpegError:
                    continue
        except av.error.FFmpegError:  # demuxing stopped: the file ends here
            pass
    return frames


def decode_first(path: str | Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of a sequential PyAV decode."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def avi_header_counts(data: bytes) -> tuple[int, int, int, int]:
    """(avih offset, strh offset, avih dwTotalFrames, video strh dwLength) of an AVI file's bytes.

    Offsets are of the 4-byte chunk ids; a chunk's payload starts 8 bytes after its id, so
    MainAVIHeader.dwTotalFrames (payload +16) is at id+24 and AVIStreamHeader.dwLength (payload +32)
    at id+40.
    """
    avih = data.find(b"avih")
    strh = data.find(b"strh")
    assert avih > 0 and strh > 0 and data[strh + 8 : strh + 12] == b"vids", "not a video AVI"
    return avih, strh, struct.unpack_from("<I", data, avih + 24)[0], struct.unpack_from("<I", data, strh + 40)[0]


def patch_avi_frame_count(src: Path, dst: Path, claimed: int) -> None:
    """Copy an AVI, making its headers claim `claimed` frames (the frames themselves are unchanged)."""
    data = bytearray(src.read_bytes())
    avih, strh, _, _ = avi_header_counts(bytes(data))
    struct.pack_into("<I", data, avih + 24, claimed)
    struct.pack_into("<I", data, strh + 40, claimed)
    dst.write_bytes(bytes(data))


def run_in_fork(target: Callable, *args, timeout: float = 8.0) -> object:
    """Run target(*args) in a child started with the 'fork' method; return its result.

    Raises TimeoutError (after killing the child) when no result comes back in `timeout` seconds,
    and RuntimeError carrying the child's exception text when it raised.
    """
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def child():
        try:
            results.put(("ok", target(*args)))
        except BaseException as exc:  # report everything, the parent decides
            results.put(("error", f"{type(exc).__name__}: {exc}"))

    process = ctx.Process(target=child, daemon=True)
    process.start()
    try:
        status, value = results.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"the forked child gave no result in {timeout} s (hung)") from None
    else:
        process.join(5)  # a healthy child exits at once after handing over its result
    finally:
        if process.is_alive():
            process.kill()
            process.join()
        results.close()
    if status == "error":
        raise RuntimeError(value)
    return value
