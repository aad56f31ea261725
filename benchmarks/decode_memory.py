"""Does the peak memory of decoding grow with the length of the video? Measure it.

Writes a 1280x720 H.264 clip of --seconds seconds and one --scale times longer (the short clip's
packets repeated, so it costs no encoding), then, for each clip and backend, in a fresh process so
that peak RSS belongs to that run alone: opens it with actionzs.open_video, samples one frame per
second with sampling.at_fps and iterates video.iter_frames(indices, size=224). Every frame read is
checked against the index drawn into it.

    python benchmarks/decode_memory.py [--seconds 60] [--scale 10] [--backends decord opencv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH, HEIGHT, FPS = 1280, 720, 25
SIZE = 224
REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB.

    On Linux the kernel's high-water mark of this address space (VmHWM), which starts afresh at
    exec; getrusage's ru_maxrss would carry over the parent's peak (the clip writer's) across
    fork and exec. Elsewhere, ru_maxrss.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    divisor = 2**20 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / divisor


def write_short(path: Path, seconds: float) -> int:
    """A low-motion 720p H.264 clip: frame i shows i in actionzs.testing's 16-cell code."""
    import av

    from actionzs.testing import draw_frame

    frames = round(seconds * FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # A keyframe every 10 s, like ordinary footage; no B-frames keeps repeating packets simple.
        stream.options = {"preset": "ultrafast", "crf": "28", "g": str(10 * FPS), "bf": "0"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(draw_frame(i, WIDTH, HEIGHT, scene=i // FPS % 6), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return frames


def write_repeated(short: Path, path: Path, times: int) -> None:
    """`short`'s packets `times` over, timestamps shifted: a long clip without encoding anything."""
    import av

    with av.open(str(path), "w") as target:
        out_stream, offset = None, 0
        for _ in range(times):
            with av.open(str(short)) as source:  # muxing consumes packets, so demux afresh each time
                in_stream = source.streams.video[0]
                if out_stream is None:
                    out_stream = target.add_stream_from_template(in_stream)
                last = 0
                for packet in source.demux(in_stream):
                    if not packet.size:
                        continue
                    last = max(last, packet.pts + packet.duration)
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = out_stream
                    target.mux(packet)
                offset += last


def child(path: str, backend: str, expected_period: int) -> None:
    """One measured run; prints a JSON line."""
    import numpy as np

    from actionzs import open_video, sampling
    from actionzs.frames import resize_dims
    from actionzs.testing import read_index

    baseline = peak_rss_mb()
    start = time.perf_counter()
    video = open_video(path, backend)
    opened = peak_rss_mb()
    indices = sampling.at_fps(video.timeline, 1).indices
    wrong = read = 0
    for batch in video.iter_frames(indices, size=SIZE):
        assert batch.data.shape[1:] == (*resize_dims(HEIGHT, WIDTH, SIZE), 3)
        got = np.array([read_index(frame) for frame in batch.data])
        wrong += int(np.sum(got != batch.indices % expected_period))
        read += len(batch)
    print(
        json.dumps(
            {
                "backend": video.backend,
                "frames": video.num_frames,
                "seconds": video.duration,
                "sampled": read,
                "wrong": wrong,
                "baseline_mb": baseline,
                "open_mb": opened,
                "peak_mb": peak_rss_mb(),
                "wall_s": time.perf_counter() - start,
            }
        )
    )


def measure(path: Path, backend: str, period: int) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(path), backend, str(period)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        raise SystemExit(f"{backend} on {path.name} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the short clip (default 60)")
    parser.add_argument("--scale", type=int, default=10, help="the long clip is this many times longer (default 10)")
    parser.add_argument("--backends", nargs="+", default=["decord", "opencv"], choices=["decord", "opencv"])
    parser.add_argument("--workdir", type=Path, help="keep the clips here instead of a temporary folder")
    parser.add_argument("--child", nargs=3, metavar=("PATH", "BACKEND", "PERIOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    with tempfile.TemporaryDirectory(prefix="decode-memory-") as scratch:
        folder = args.workdir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        short, long = folder / "short.mp4", folder / "long.mp4"
        began = time.perf_counter()
        period = write_short(short, args.seconds)
        write_repeated(short, long, args.scale)
        print(
            f"clips: {WIDTH}x{HEIGHT} H.264 {FPS} fps, {args.seconds:g} s and {args.seconds * args.scale:g} s "
            f"({short.stat().st_size / 2**20:.1f} MB, {long.stat().st_size / 2**20:.1f} MB), "
            f"written in {time.perf_counter() - began:.1f} s; sampling 1 fps at size={SIZE}\n"
        )
        header = f"{'backend':8} {'clip':>8} {'frames':>7} {'sampled':>8} {'wrong':>6} {'base MB':>8} {'open MB':>8} {'peak MB':>8} {'time s':>7}"
        print(header)
        print("-" * len(header))
        peaks = {}
        for backend in args.backends:
            for name, path in (("short", short), ("long", long)):
                r = measure(path, backend, period)
                peaks[backend, name] = r["peak_mb"]
                print(
                    f"{r['backend']:8} {r['seconds']:7.0f}s {r['frames']:7d} {r['sampled']:8d} {r['wrong']:6d} "
                    f"{r['baseline_mb']:8.0f} {r['open_mb']:8.0f} {r['peak_mb']:8.0f} {r['wall_s']:7.1f}"
                )
        print()
        for backend in args.backends:
            ratio = peaks[backend, "long"] / peaks[backend, "short"]
            print(f"{backend}: peak RSS long/short = {ratio:.2f} for a {args.scale}x longer clip")


if __name__ == "__main__":
    main()
