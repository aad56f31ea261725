"""Writers of the hostile files that no other helper makes, and the ground truth a file holds.

Used by tests/hostile.py; the tests of each fix can import them too. Every writer uses PyAV (or
plain bytes), so nothing outside the repository is needed. `truth()` is what a player shows: the
default video stream decoded start to end by PyAV, going on past a packet that fails.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from actionzs.testing import draw_frame, read_index


# -- ground truth ----------------------------------------------------------------------------------


@dataclass
class Truth:
    """The frames a full decode of a file's default video stream presents."""

    times: list[float]  # presentation time of each frame, seconds from the first one
    indices: list[int]  # the index drawn into each frame (draw_frame), as read back
    packets: int  # packets with data in the stream
    errors: int  # packets (or demuxer reads) that failed
    width: int
    height: int
    last_duration: float  # how long the last frame is shown
    frames: list[np.ndarray]  # the pictures (RGB, as displayed)
    #: Frames whose picture depends on how the decoder runs (one thread or several): damage the
    #: decoder hides by guessing, so no picture of them is the true one.
    concealed: frozenset[int] = frozenset()

    @property
    def count(self) -> int:
        return len(self.times)

    @property
    def span(self) -> float:
        return self.times[-1] - self.times[0] if self.times else 0.0

    def has_gap(self) -> bool:
        """Whether frames are missing: a packet failed, a packet gave no frame, or the time between
        two frames is well over the usual."""
        if self.errors or self.count < self.packets:
            return True
        steps = np.diff(self.times)
        return len(steps) > 1 and bool(np.max(steps) > 1.5 * np.median(steps))


def default_video_stream(container):
    """The stream a player shows: the first video stream marked default, else the first video
    stream; cover art (an attached picture) is not a video stream. None when there is none."""
    import av

    videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    marked = [s for s in videos if s.disposition & av.stream.Disposition.default]
    return (marked or videos or [None])[0]


def truth(path: str | Path, *, quarter_turns: int = 0, keep_frames: bool = False) -> Truth:
    """Decode the default video stream of `path` with PyAV, every packet in order, and say what
    it presents. `quarter_turns` turns each picture counter-clockwise (a rotation tag's display).
    With `keep_frames`, the pictures too, and which of them are concealed damage: the stream is
    decoded a second time on one thread, and a frame whose picture differs has none that is true."""
    told = _decoded(path, quarter_turns, keep_frames, threads=None)
    if keep_frames:
        single = _decoded(path, quarter_turns, keep_frames, threads=1).frames
        told.concealed = frozenset(
            i for i, (a, b) in enumerate(zip(told.frames, single)) if not np.array_equal(a, b)
        )
    return told


def _decoded(path: str | Path, quarter_turns: int, keep_frames: bool, threads: int | None) -> Truth:
    """`truth` by one decode: on FFmpeg's own choice of threads, or on `threads`."""
    import av

    times, indices, frames = [], [], []
    packets = errors = 0
    last_duration = 0.0
    with av.open(str(path)) as container:
        stream = default_video_stream(container)
        if stream is None:
            raise ValueError(f"{path}: no video stream")
        if threads is not None:
            stream.thread_count = threads
        rate = float(stream.average_rate or stream.base_rate or 25)
        first = None
        try:
            for packet in container.demux(stream):
                packets += packet.size > 0
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    errors += 1
                    continue
                for frame in decoded:
                    seconds = float(frame.time if frame.time is not None else len(times) / rate)
                    first = seconds if first is None else first
                    picture = np.rot90(frame.to_ndarray(format="rgb24"), quarter_turns)
                    times.append(seconds - first)
                    indices.append(read_index(picture))
                    if keep_frames:
                        frames.append(np.ascontiguousarray(picture))
                    last_duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
                    size = picture.shape[1], picture.shape[0]
        except av.error.FFmpegError:
            errors += 1
    if not times:
        raise ValueError(f"{path}: no frame decodes")
    if not last_duration:
        steps = np.diff(times)
        last_duration = float(np.median(steps)) if len(steps) else 1 / rate
    return Truth(times, indices, packets, errors, size[0], size[1], last_duration, frames)


def packet_count(path: str | Path) -> int:
    """Packets with data in the default video stream (what an index of the file promises)."""
    import av

    with av.open(str(path)) as container:
        return sum(packet.size > 0 for packet in container.demux(default_video_stream(container)))


# -- videos ----------------------------------------------------------------------------------------


def remux_with_edit_list(source: str | Path, target: str | Path, hidden_frames: int) -> Path:
    """Copy an MP4 moving every timestamp `hidden_frames` frames earlier: the muxer writes an edit
    list that starts the presentation at 0, so the first frames are in the file (and must be
    decoded, as references) but are never shown, as `ffmpeg -ss ... -c copy` makes them."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        shift = round(hidden_frames / stream.average_rate / stream.time_base)
        for packet in src.demux(stream):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = out
            dst.mux(packet)
    return Path(target)


def write_two_video_streams(path: str | Path, *, small: tuple[int, int, int] = (32, 24, 5),
                            large: tuple[int, int, int] = (160, 120, 20), fps: int = 10) -> Path:
    """A file with two H.264 streams: first a small one (width, height, frames) that is not
    marked default, then a large one marked default. Frame i of the small stream shows 1000 + i."""
    import av

    with av.open(str(path), "w") as container:
        streams = []
        for (width, height, count), default in ((small, False), (large, True)):
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"bf": "0", "g": "10"}
            stream.disposition = av.stream.Disposition.default if default else av.stream.Disposition(0)
            streams.append((stream, count, 0 if default else 1000))
        for i in range(max(count for _, count, _ in streams)):
            for stream, count, first in streams:
                if i < count:
                    picture = draw_frame(first + i, stream.width, stream.height)
                    for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                        container.mux(packet)
        for stream, _, _ in streams:
            for packet in stream.encode():
                container.mux(packet)
    return Path(path)


def write_audio_with_cover(path: str | Path, *, seconds: float = 1.0) -> Path:
    """An audio file with cover art: .mp3 (MP3 with an ID3 picture, PNG) or .m4a (AAC with a
    `covr` picture, JPEG). The picture is a video stream marked `attached_pic`: one frame, no time."""
    import av
    from PIL import Image

    path = Path(path)
    m4a = path.suffix == ".m4a"
    buffer = io.BytesIO()
    Image.fromarray(draw_frame(7, 64, 64)).save(buffer, format="JPEG" if m4a else "PNG")
    rate = 44100
    with av.open(str(path), "w", format="mp4" if m4a else None) as container:
        audio = container.add_stream("aac" if m4a else "libmp3lame", rate=rate)
        audio.layout = "mono"
        cover = container.add_stream("mjpeg" if m4a else "png", rate=1)
        cover.width = cover.height = 64
        cover.pix_fmt = "yuvj420p" if m4a else "rgb24"
        cover.disposition = av.stream.Disposition.attached_pic
        packet = av.Packet(buffer.getvalue())
        packet.stream, packet.pts, packet.dts, packet.time_base = cover, 0, 0, Fraction(1, 1)
        container.mux(packet)
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def claim_frame_rate_mkv(source: str | Path, target: str | Path, nanoseconds_per_frame: int = 1) -> Path:
    """Copy a Matroska file with its track's DefaultDuration (the frame rate its header claims) set
    to `nanoseconds_per_frame`; each block keeps its own, true, timestamp."""
    data = bytearray(Path(source).read_bytes())
    at = data.find(b"\x23\xe3\x83")  # the DefaultDuration element
    assert at > 0 and data[at + 3] & 0x80, "no DefaultDuration with a one-byte size"
    length = data[at + 3] & 0x7F
    data[at + 4 : at + 4 + length] = nanoseconds_per_frame.to_bytes(length, "big")
    Path(target).write_bytes(bytes(data))
    return Path(target)


def damage_middle(source: str | Path, target: str | Path, size: int = 4096, seed: int = 0) -> Path:
    """Copy a file with `size` random bytes written over the middle of its media data (for an
    MP4, the middle of its `mdat` box, so the index stays whole)."""
    data = bytearray(Path(source).read_bytes())
    start, length = 0, len(data)
    mdat = data.find(b"mdat")
    if Path(source).suffix == ".mp4" and mdat >= 4:
        start, length = mdat - 4, struct.unpack(">I", data[mdat - 4 : mdat])[0]
    middle = start + length // 2 - size // 2
    data[middle : middle + size] = np.random.default_rng(seed).bytes(size)
    Path(target).write_bytes(bytes(data))
    return Path(target)


# -- bombs -----------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def write_png_bomb(path: str | Path, side: int = 20_000) -> Path:
    """A valid 1-bit PNG of side x side black pixels (400 million at the default) in about 50 KB."""
    row = 1 + (side + 7) // 8  # filter byte, then the bits
    pixels = zlib.compress(bytes(row * side), 9)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")
    Path(path).write_bytes(data)
    return Path(path)


def write_npz_bomb(path: str | Path, megabytes: int = 1024, frames: int = 3) -> Path:
    """A FrameEmbeddings .npz whose metadata describes `frames` frames but whose `vectors` member
    inflates to `megabytes` MiB of zeros (about 1 KB on disk per MiB): a zip bomb. The zip is
    valid (sizes and CRCs right); it is written without ever holding the inflated data."""
    chunk = bytes(1 << 20)
    dim = 1024
    rows = megabytes * (1 << 20) // (4 * dim)
    header = _npy_header(np.dtype("<f4"), (rows, dim))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = [deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)]
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every MiB
    body += [block] * megabytes
    body.append(deflate.flush())
    crc = zlib.crc32(header)
    for _ in range(megabytes):
        crc = zlib.crc32(chunk, crc)
    members = [("vectors.npy", b"".join(body), crc, len(header) + megabytes * len(chunk), 8)]
    small = {
        "indices": np.arange(frames, dtype=np.int64),
        "pts_seconds": np.arange(frames, dtype=np.float64),
        "meta": np.array(json.dumps({"kind": "frames", "duration": float(frames), "model": "m", "source": "bomb.mp4",
                                     "sampling": {}, "fingerprint": None})),
    }
    for name, array in small.items():
        buffer = io.BytesIO()
        np.save(buffer, array)
        raw = buffer.getvalue()
        members.append((f"{name}.npy", raw, zlib.crc32(raw), len(raw), 0))
    Path(path).write_bytes(_zip(members))
    return Path(path)


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    text = repr({"descr": dtype.str, "fortran_order": False, "shape": shape}).encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) + padding + 1) + text + b" " * padding + b"\n"


def _zip(members: Sequence[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip of (name, stored bytes, crc32, inflated size, method: 0 stored, 8 deflated) members."""
    out, central = bytearray(), bytearray()
    for name, stored, crc, size, method in members:
        encoded = name.encode()
        offset = len(out)
        fields = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, len(stored), size)
        out += b"PK\x03\x04" + fields + struct.pack("<HH", len(encoded), 0) + encoded + stored
        central += (b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, offset)
                    + encoded)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + end)


# -- odd still images --------------------------------------------------------------------------------


def odd_images(folder: str | Path) -> dict[str, tuple[Path, np.ndarray | None]]:
    """Still images in the modes and sizes that catch readers out, by name: (path, the RGB picture
    a viewer shows where it differs from a plain `convert("RGB")`, else None)."""
    from PIL import Image

    folder = Path(folder)
    picture = draw_frame(1234, 160, 120, scene=2)
    grey = picture.mean(axis=-1).astype(np.uint8)
    made: dict[str, tuple[Path, np.ndarray | None]] = {}

    def save(name, image, shown=None, **options):
        image.save(folder / name, **options)
        made[name] = (folder / name, shown)

    save("one pixel.png", Image.fromarray(picture[:1, :1]))
    save("odd 7x5.png", Image.fromarray(picture[:5, :7]))
    save("greyscale.png", Image.fromarray(grey))
    save("grey alpha.png", Image.fromarray(grey).convert("LA"))
    rgba = np.dstack([picture, np.full(grey.shape, 128, np.uint8)])
    save("half transparent.png", Image.fromarray(rgba, "RGBA"))
    save("palette.png", Image.fromarray(picture).convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    palette = Image.fromarray(picture).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette transparent.png", palette, transparency=0)
    # 16 bits a sample: a viewer shows the top 8 bits, but transformers' zero-shot-image pipeline
    # (load_image: a plain convert("RGB")) clips at 255, and parity with that pipeline is the rule
    save("grey 16-bit.png", Image.fromarray(grey.astype(np.uint16) * 257))
    import cv2

    cv2.imwrite(str(folder / "rgb 16-bit.png"), picture[..., ::-1].astype(np.uint16) * 257)
    made["rgb 16-bit.png"] = (folder / "rgb 16-bit.png", None)
    save("cmyk.jpg", Image.fromarray(picture).convert("CMYK"), quality=95)
    image = Image.fromarray(picture)
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to display
    save("exif rotated.jpg", image, np.rot90(picture, -1), exif=exif, quality=95)
    return made
