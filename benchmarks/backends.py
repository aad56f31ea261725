"""What holding every backend to the container costs, and how the backends compare.

Side by side, in one process, runs interleaved: reading the container's index (demuxing every
packet, decoding nothing), opening a video with each backend (the index included), and reading
one frame per second at the encoder's size (224) with each. On a generated H.264 clip of
`--minutes` minutes (GOP 50, 25 fps, 320x180) and, when given, on files of your own.

    python benchmarks/backends.py [--minutes 10] [--repeat 3] [FILE ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _bench import Series, add_run_options, loadavg, table, timed  # noqa: E402

from actionzs import sampling  # noqa: E402
from actionzs.video import AVAILABLE_BACKENDS, open_video  # noqa: E402
from actionzs.video.stream_index import index_stream  # noqa: E402


def generated_clip(folder: Path, minutes: float) -> Path:
    """A plain H.264 MP4, GOP 50 at 25 fps, 320x180, changing colour every frame."""
    import av

    path = folder / f"{minutes:g} min.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "50"}
        picture = np.zeros((180, 320, 3), np.uint8)
        for i in range(round(minutes * 60 * 25)):
            picture[..., 0], picture[..., 1] = i % 256, (i // 256) % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_at_one_fps(path: Path, backend: str) -> int:
    with open_video(path, backend) as video:
        sample = sampling.at_fps(video.timeline, 1.0)
        return sum(len(batch) for batch in video.iter_frames(sample.indices, 224))


def measure(path: Path, repeat: int, quiet_wait: float) -> list[list[str]]:
    index = Series("index")
    opens = {name: Series(name) for name in AVAILABLE_BACKENDS}
    reads = {name: Series(name) for name in AVAILABLE_BACKENDS}
    refused = {}
    for _ in range(repeat):
        timed(index, lambda: index_stream(str(path)), quiet_wait)
        for name in AVAILABLE_BACKENDS:
            if name in refused:
                continue
            try:
                timed(opens[name], lambda: open_video(path, name).close(), quiet_wait)
                timed(reads[name], lambda: read_at_one_fps(path, name), quiet_wait)
            except Exception as exc:  # refused for this file (e.g. decord on B-frames outside MP4)
                refused[name] = str(exc)[:80]
    frames = index_stream(str(path)).num_frames
    rows = [[f"{path.name}: index ({frames} frames)", f"{index.best.wall:.3f}", index.walls(), ""]]
    for name in AVAILABLE_BACKENDS:
        if name in refused:
            rows.append([f"  {name}", "refused", refused[name], ""])
            continue
        rows.append([f"  open {name}", f"{opens[name].best.wall:.3f}", opens[name].walls(), ""])
        ratio = reads[name].best.wall / reads["pyav"].best.wall if reads["pyav"].runs else float("nan")
        rows.append([f"  1 fps read {name}", f"{reads[name].best.wall:.3f}", reads[name].walls(), f"{ratio:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0)
    add_run_options(parser, repeat=3, quiet_wait=5.0)
    args = parser.parse_args()
    print(f"load average before: {loadavg()}")
    with tempfile.TemporaryDirectory() as folder:
        paths = [generated_clip(Path(folder), args.minutes), *args.files]
        rows = sum((measure(p, args.repeat, args.quiet_wait) for p in paths), [])
    print(table(rows, ["what", "best s", "runs (s)", "read / pyav"]))
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
