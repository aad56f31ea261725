"""Helpers shared by test_cli.py and test_reliability.py: running the CLI in-process and as a real
process, reading its outputs back, and writing the odd media files the bad-input tests need."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from actionzs.cli import main

#: Settings that keep every CLI run small: one template, few frames.
FAST = ["--template", "a video of {}.", "--num-frames", "4", "-q"]


# -- running the CLI ---------------------------------------------------------------------------------


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`actionzs ARGV` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()  # drop anything printed before
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def cli_command(*argv) -> list[str]:
    return [sys.executable, "-m", "actionzs", *map(str, argv)]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    return env


def _default_sigint() -> None:
    # A shell running pytest in the background starts it with SIGINT ignored, and children inherit
    # that; the Ctrl-C tests need the child to see SIGINT as a terminal would deliver it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(*argv, cwd=None, python_args=()) -> subprocess.Popen:
    """`python -m actionzs ARGV` as a child process (stdout and stderr piped, text mode)."""
    return subprocess.Popen(
        [sys.executable, *python_args, "-m", "actionzs", *map(str, argv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=cwd,
        preexec_fn=_default_sigint,
    )


def start_python(code: str, *argv, cwd=None) -> subprocess.Popen:
    """`python -c CODE ARGV` as a child process (for runs that need a hook installed first)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, argv)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=cwd,
        preexec_fn=_default_sigint,
    )


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """Wait until `path` holds at least `count` complete lines; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_bytes().count(b"\n")
            if lines >= count:
                return lines
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the process ended (exit {proc.returncode}) before {path} had {count} lines:\n{err}")
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    raise AssertionError(f"{path} did not reach {count} lines in {timeout} s")


def read_jsonl(path: Path) -> list[dict]:
    """Every line of a JSON-lines file, each required to be a whole JSON object ending in a newline."""
    data = Path(path).read_text(encoding="utf-8")
    assert data == "" or data.endswith("\n"), f"{path} ends in a partial line: {data[-80:]!r}"
    records = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{path}:{number} is not whole JSON ({exc}): {line[:120]!r}") from None
        assert isinstance(record, dict) and "video" in record, f"{path}:{number}: {line[:120]!r}"
        records.append(record)
    return records


def by_video(records: list[dict]) -> dict[str, dict]:
    """Records keyed by video; each video must appear exactly once."""
    videos = [r["video"] for r in records]
    duplicates = sorted({v for v in videos if videos.count(v) > 1})
    assert not duplicates, f"videos with more than one record: {duplicates}"
    return {r["video"]: r for r in records}


def tree(folder: Path) -> set[str]:
    """Every path under `folder` (relative), files and folders, hidden ones included."""
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*")}


# -- media files ---------------------------------------------------------------------------------------


def write_audio_only(path: Path, codec: str = "aac", seconds: float = 1.0) -> Path:
    """A file with one audio stream (a sine tone) and no video stream."""
    import av

    rate = 44100
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        step = 1024  # PyAV re-chunks and converts frames to what the encoder wants
        for start in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + step], format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def write_h264(path: Path, num_frames: int, *, fps: int = 10, width: int = 160, height: int = 120,
               faststart: bool = False, rotation: int | None = None) -> Path:
    """An H.264 .mp4 of `draw_frame` pictures; `faststart` puts the index (moov) before the data,
    `rotation` stores a display matrix (degrees counter-clockwise)."""
    from helpers_video import encode

    return encode(path, num_frames, fps=fps, width=width, height=height, rotation=rotation,
                  options={"g": "10", "bf": "0", "crf": "18"},
                  container_options={"movflags": "faststart"} if faststart else None)


def moov_before_mdat(path: Path) -> bool:
    data = Path(path).read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def truncated_copy(source: Path, target: Path, fraction: float) -> Path:
    data = Path(source).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * fraction)])
    return Path(target)


def avi_claiming_frames(source: Path, target: Path, claimed: int) -> int:
    """Copy an AVI with its header's frame counts (avih dwTotalFrames, video strh dwLength) set to
    `claimed`; returns the true count read from the header first (which proves the offsets)."""
    data = bytearray(Path(source).read_bytes())
    avih = data.find(b"avih")
    strh = data.find(b"strh")
    assert avih > 0 and strh > 0 and data[strh + 8 : strh + 12] == b"vids", "not an AVI with a video strh"
    total = struct.unpack_from("<I", data, avih + 24)[0]
    length = struct.unpack_from("<I", data, strh + 40)[0]
    assert total == length, (total, length)
    struct.pack_into("<I", data, avih + 24, claimed)
    struct.pack_into("<I", data, strh + 40, claimed)
    Path(target).write_bytes(bytes(data))
    return total


def decodable_frames(path: Path) -> list[int]:
    """The frame indices drawn in the frames a full PyAV decode of `path` gives (see `decode_all`)."""
    from actionzs.testing import read_index
    from helpers_video import decode_all

    return [read_index(frame) for frame in decode_all(path)]
