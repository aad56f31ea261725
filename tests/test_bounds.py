"""Bounds by what the video can give, and what stored embeddings may inflate to.

Options inside the stated bounds can still ask a long video for more than is sane (a 0.001 s
stride over an hour is 3.6 million windows): such a run is refused per video, from its timeline,
before any frame is decoded, naming the file, the sizes and the bound; an fps above the video's own
costs its frames, never rate x duration. A stored `.npz` is untrusted input: a zip bomb, a member
whose declared size lies, a header that claims a huge array, a file that is not a zip at all are
all refused with the file named, in bounded memory and at once.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import actionzs
from actionzs import sampling
from actionzs.embeddings import MAX_INFLATION, SMALL_INFLATED, ClipEmbeddings, FrameEmbeddings
from actionzs.errors import InvalidInputError, VideoOptionsError
from actionzs.models.frame import FramePlan
from actionzs.models.xclip import ClipPlan
from actionzs.sampling import MAX_FRAMES, MAX_WINDOWS, Timeline, at_fps, frames_in, uniform, window_count, windows
from actionzs.testing import write_clip
from helpers_cli import FAST, read_jsonl, run_cli, subprocess_env

LABELS = ["running", "jumping"]
#: A 3-frame clip whose frames are 20 minutes apart: 3,600 s of video in a couple of KB.
LONG_TIMES = [0, 1200, 2400]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    path = write_clip(tmp_path_factory.mktemp("long") / "an hour.mp4", 3, frame_times=LONG_TIMES, width=32, height=32)
    assert path.stat().st_size < 10_000
    return path


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("short") / "short.mp4", 20, average_fps=10, width=32, height=32)


@pytest.fixture(scope="module")
def clf(clip_dir):
    return actionzs.pipeline(str(clip_dir), dtype="float32")


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any plan starts decoding."""
    def refuse(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(FramePlan, "batches", refuse)
    monkeypatch.setattr(ClipPlan, "batches", refuse)
    monkeypatch.setattr(FramePlan, "read", refuse)


def every_step(timeline: Timeline, rate: float, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """The sampler as it reads: the frame at the centre of every 1/rate step, duplicates dropped."""
    end = timeline.duration if end is None else min(end, timeline.duration)
    count = max(1, math.ceil((end - start) * rate - 1e-9))
    starts = start + np.arange(count) / rate
    indices = timeline.frame_at((starts + np.minimum(starts + 1 / rate, end)) / 2)
    return indices[np.concatenate([[True], np.diff(indices) != 0])]


# -- at_fps: a rate above the video's costs its frames -------------------------------------------------


def test_fps_far_above_the_video_rate_costs_the_frames_not_rate_times_duration():
    timeline = Timeline(np.array([0.0, 4e5, 8e5]), 1e6)  # 3 frames over 11.6 days
    at_fps(timeline, 1)  # warm up
    tracemalloc.start()
    started = time.perf_counter()
    sample = at_fps(timeline, 1000)  # 1e9 steps: 8 GB per float array if they were built
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert sample.indices.tolist() == [0, 1, 2] and sample.pts_seconds.tolist() == [0.0, 4e5, 8e5]
    assert elapsed < 1.0 and peak < 100_000, (elapsed, peak)


@pytest.mark.parametrize("seed", range(4))
def test_fps_above_the_video_rate_gives_what_every_step_gives(seed):
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(1, 40))
        gaps = rng.choice([0.0, 0.001, 1 / 30, 0.04, 0.5, float(rng.exponential(0.1))], n - 1)
        pts = np.concatenate([[0.0], np.cumsum(gaps)])
        timeline = Timeline(pts, pts[-1] + float(rng.choice([0.0, 0.04, 1.0])) or 0.04)
        rate = float(rng.choice([30.0, 100.0, 999.0, 1000.0, rng.uniform(1, 1000)]))
        start = float(rng.choice([0.0, rng.uniform(0, timeline.duration * 0.9)]))
        end = None if rng.random() < 0.5 else start + float(rng.uniform(1e-3, timeline.duration))
        assert at_fps(timeline, rate, start, end).indices.tolist() == every_step(timeline, rate, start, end).tolist()


def test_more_sampled_frames_than_allowed_are_refused_before_the_sample_is_kept():
    timeline = Timeline.constant_rate(MAX_FRAMES + 200_000, 25.0)  # 13.3 hours at 25 fps
    assert len(at_fps(timeline, 20)) <= MAX_FRAMES
    with pytest.raises(VideoOptionsError) as caught:
        at_fps(timeline, 25)
    message = str(caught.value)
    assert "sampling at 25 fps takes 1,200,000 frames over 48000 s" in message
    assert f"more than the {MAX_FRAMES:,} allowed" in message and "--fps" in message


def test_uniform_refuses_more_frames_than_allowed():
    with pytest.raises(VideoOptionsError, match=f"more than the {MAX_FRAMES:,} allowed"):
        uniform(Timeline.constant_rate(10, 25.0), 10**9)


# -- windows: a stated maximum count, checked before any is made --------------------------------------


@pytest.mark.parametrize(
    "duration, length, stride, count",
    [(5.0, 1e-6, 1e-6, "5,000,000"), (86_400.0, 0.01, 0.001, "86,399,991"), (3600.0, 2.0, 1e-300, "3.6e+303"),
     (1e6, 2.0, 1e-12, "1.0e+18")],
)
def test_too_many_windows_are_refused_at_once_naming_the_layout_and_the_bound(duration, length, stride, count):
    started = time.perf_counter()
    with pytest.raises(VideoOptionsError) as caught:
        windows(duration, length, stride)
    assert time.perf_counter() - started < 0.1  # counted, not built (a stride of 1e-300 used to loop for ever)
    assert str(caught.value) == (
        f"window {length:g} s every {stride:g} s makes {count} windows over {duration:g} s, "
        f"more than the {MAX_WINDOWS:,} allowed; use a longer stride (--stride)"
    )
    assert caught.value.path is None and caught.value.named("v.mp4").path == "v.mp4"
    assert str(caught.value.named("v.mp4")) == f"v.mp4: {caught.value.reason}"


def test_a_day_at_a_tenth_of_a_second_is_allowed():
    assert window_count(86_400.0, 2.0, 0.1) <= MAX_WINDOWS
    assert sampling.check_windows(86_400.0, 0.1, 0.1) == 864_000


@pytest.mark.parametrize("duration", [0.5, 1.0, 7.3, 10.0, 13.0, 300.0])
@pytest.mark.parametrize("length, stride", [(4.0, 2.0), (4.0, 4.0), (4.0, 3.0), (2.0, 4.0), (2.0, 5.0), (0.3, 0.1),
                                            (1.0, 1 / 3), (60.0, 30.0), (0.01, 0.001)])
def test_the_window_count_is_exact(duration, length, stride):
    assert window_count(duration, length, stride) == len(windows(duration, length, stride))


def test_windows_far_from_any_frame_borrow_the_nearest_at_the_cost_of_windows_plus_frames():
    rng = np.random.default_rng(0)
    pts = np.sort(rng.choice(np.round(rng.uniform(0, 10, 30), 1), 30))  # repeated times among them
    spans = windows(12.0, 0.05, 0.01)
    centres = np.array([(s.start_seconds + s.end_seconds) / 2 for s in spans])
    got = frames_in(pts, spans)
    empty = got[:, 1] - got[:, 0] == 1
    nearest = np.abs(pts[None, :] - centres[:, None]).argmin(axis=1)  # first of the closest, as before
    inside = [(pts >= s.start_seconds - 1e-9) & (pts < s.end_seconds - 1e-9) for s in spans]
    for k, span_inside in enumerate(inside):
        if not span_inside.any():
            assert empty[k] and got[k, 0] == nearest[k]
    # 200,000 empty windows over 20,000 frames: the distance matrix would be 32 GB.
    pts = np.arange(20_000) * 10.0
    spans = windows(2e5, 0.01, 1.0)
    started = time.perf_counter()
    got = frames_in(pts, spans)
    assert time.perf_counter() - started < 10 and got[1].tolist() == [0, 1] and got[6].tolist() == [1, 2]


# -- the per-video step: refused from the timeline, before any frame is read ----------------------------


def test_too_many_windows_fail_the_video_naming_it_before_decoding(clf, long_clip, no_decoding):
    with pytest.raises(VideoOptionsError) as caught:
        clf(str(long_clip), candidate_labels=LABELS, segments=True, window=0.01, stride=0.001)
    assert caught.value.path == str(long_clip)
    assert str(caught.value) == (
        f"{long_clip}: window 0.01 s every 0.001 s makes 3,599,991 windows over 3600 s, "
        f"more than the {MAX_WINDOWS:,} allowed; use a longer stride (--stride)"
    )


def test_fps_1000_on_a_long_video_reads_each_frame_once(clf, long_clip):
    started = time.perf_counter()
    embeddings = clf.embed(str(long_clip), fps=1000, segments=True)  # 3.6 million steps, 3 frames
    assert embeddings.indices.tolist() == [0, 1, 2] and embeddings.pts_seconds.tolist() == LONG_TIMES
    result = clf(str(long_clip), candidate_labels=LABELS, segments=True, fps=1000, window=60, stride=60)
    assert len(result["segments"]) == 60 and time.perf_counter() - started < 30


def test_a_batch_goes_on_past_a_video_refused_for_its_windows(clf, long_clip, short_clip, no_decoding, monkeypatch):
    outcomes = dict(clf.classify_each([str(long_clip)], LABELS, segments=True, window=0.01, stride=0.001))
    assert isinstance(outcomes[str(long_clip)], VideoOptionsError)
    monkeypatch.undo()  # decoding allowed again
    outcomes = dict(clf.classify_each([str(long_clip), str(short_clip)], LABELS, segments=True, window=0.01, stride=0.001))
    assert isinstance(outcomes[str(long_clip)], VideoOptionsError)
    assert len(outcomes[str(short_clip)].window_spans) == window_count(2.0, 0.01, 0.001)


def test_stored_embeddings_name_their_source_when_their_windows_are_too_many(clf, short_clip):
    stored = clf.embed(str(short_clip), fps=1, segments=True)
    huge = FrameEmbeddings(stored.vectors, stored.indices, stored.pts_seconds, 1e6, stored.model, "stored.mp4",
                           stored.sampling, stored.fingerprint)
    with pytest.raises(VideoOptionsError, match=r"^stored\.mp4: window 0\.01 s every 0\.001 s makes 999,999,991 windows"):
        clf(huge, candidate_labels=LABELS, segments=True, window=0.01, stride=0.001)


def test_xclip_counts_windows_times_frames_per_clip(xclip_dir, long_clip, no_decoding):
    clf = actionzs.pipeline(str(xclip_dir), dtype="float32")
    with pytest.raises(VideoOptionsError) as caught:  # 360,000 windows are allowed, 8 frames each are not
        clf(str(long_clip), candidate_labels=LABELS, segments=True, window=2, stride=0.01)
    assert str(caught.value) == (
        f"{long_clip}: 359,802 clips (the whole video, then window 2 s every 0.01 s) of 8 frames take 2,878,416 "
        f"frames over 3600 s, more than the {MAX_FRAMES:,} allowed; use a longer stride (--stride)"
    )
    with pytest.raises(VideoOptionsError, match="windows over 3600 s, more than the 1,000,000 allowed"):
        clf(str(long_clip), candidate_labels=LABELS, segments=True, window=0.01, stride=0.001)


# -- the command line: exit 2 naming the file, a scan goes on ------------------------------------------


def test_classify_exits_2_naming_the_file_and_the_bound(capsys, clip_dir, long_clip, short_clip):
    code, out, err = run_cli(capsys, "classify", long_clip, short_clip, "--model", clip_dir, "-l", "run", "-l", "jump",
                             "--segments", "--window", "0.01", "--stride", "0.001", "--format", "json", *FAST)
    assert code == 2 and "Traceback" not in err
    assert f"error: {long_clip}: window 0.01 s every 0.001 s makes 3,599,991 windows over 3600 s, more than the " \
           f"{MAX_WINDOWS:,} allowed; use a longer stride (--stride)" in err
    records = {r["video"]: r for r in json.loads(out)}
    assert "windows over 3600 s" in records[str(long_clip)]["error"] and "segments" in records[str(short_clip)]


def test_classify_exits_2_for_too_many_sampled_frames(capsys, clip_dir, short_clip, monkeypatch):
    monkeypatch.setattr(sampling, "MAX_FRAMES", 10)  # the short clip's 20 frames stand for a long video's millions
    code, out, err = run_cli(capsys, "classify", short_clip, "--model", clip_dir, "-l", "run", "-l", "jump",
                             "--segments", "--fps", "10", *FAST)
    assert code == 2 and "Traceback" not in err
    assert f"error: {short_clip}: sampling at 10 fps takes 20 frames over 2 s, more than the 10 allowed; " \
           "use a lower fps (--fps)" in err


def test_scan_records_the_refused_video_and_goes_on(capsys, tmp_path, clip_dir, long_clip, short_clip):
    folder = tmp_path / "videos"
    folder.mkdir()
    for clip in (long_clip, short_clip):
        (folder / clip.name).symlink_to(clip)
    output = tmp_path / "scan.jsonl"
    code, _, err = run_cli(capsys, "scan", folder, "-o", output, "--model", clip_dir, "-l", "run", "-l", "jump",
                           "--segments", "--window", "0.01", "--stride", "0.001", *FAST)
    records = {Path(r["video"]).name: r for r in read_jsonl(output)}
    assert code == 2 and "Traceback" not in err and "1 ok, 1 failed" in err
    assert records[long_clip.name]["error"].startswith("window 0.01 s every 0.001 s makes 3,599,991 windows over 3600 s")
    assert "segments" in records[short_clip.name]


def test_report_exits_2(capsys, tmp_path, clip_dir, long_clip):
    code, _, err = run_cli(capsys, "report", long_clip, "-o", tmp_path / "r.html", "--model", clip_dir,
                           "-l", "run", "-l", "jump", "--window", "0.01", "--stride", "0.001", *FAST)
    assert code == 2 and f"error: {long_clip}: window 0.01 s every 0.001 s" in err and not (tmp_path / "r.html").exists()


# -- stored embeddings: decompression caps -------------------------------------------------------------


def _zip(path: Path, members: dict[str, tuple[bytes, int, int, int]]) -> Path:
    """A zip of raw members: name -> (deflated bytes, declared size, CRC, method), written by hand
    so that a size can be declared that is not the true one."""
    local, central = b"", b""
    for name, (data, size, crc, method) in members.items():
        encoded = name.encode()
        header = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(encoded), 0)
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(encoded), 0, 0, 0, 0, 0, len(local)) + encoded
        local += header + encoded + data
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(local + central + end)
    return path


def _npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    import io

    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    return stream.getvalue()


def _deflated_zeros(header: bytes, zeros: int) -> tuple[bytes, int]:
    """A raw deflate stream of `header` then `zeros` zero bytes, made in well under a second for
    gigabytes (one fully flushed block of zeros repeated), and the CRC of what it inflates to."""
    block = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes(zeros % block)) + compressor.flush()
    crc, zero_block = zlib.crc32(header), bytes(block)
    for _ in range(zeros // block):
        crc = zlib.crc32(zero_block, crc)
    crc = zlib.crc32(bytes(zeros % block), crc)
    return head + piece * (zeros // block) + tail, crc


def _member(array: np.ndarray) -> tuple[bytes, int, int, int]:
    import io

    stream = io.BytesIO()
    np.lib.format.write_array(stream, array, allow_pickle=False)
    data = stream.getvalue()
    return data, len(data), zlib.crc32(data), 0


def _meta(**changes) -> np.ndarray:
    meta = {"kind": "frames", "duration": 2.0, "model": "m", "source": "v.mp4", "sampling": {"fps": 1.0},
            "fingerprint": None, **changes}
    return np.array(json.dumps(meta))


def _bomb(path: Path, rows: int, declared_rows: int | None = None) -> Path:
    """Stored frame embeddings whose vectors inflate to `rows` x 16 float32 zeros. The archive and
    the .npy header both declare `declared_rows` (the truth unless given)."""
    declared_rows = rows if declared_rows is None else declared_rows
    header = _npy_header((declared_rows, 16))
    data, crc = _deflated_zeros(header, rows * 64)
    return _zip(path, {
        "vectors.npy": (data, len(header) + declared_rows * 64, crc, 8),
        "indices.npy": _member(np.arange(1)), "pts_seconds.npy": _member(np.zeros(1)), "meta.npy": _member(_meta()),
    })


LOAD_LIMITED = """
import resource, sys, time
from actionzs.embeddings import FrameEmbeddings
from actionzs.errors import InvalidInputError
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
started = time.perf_counter()
try:
    FrameEmbeddings.load(sys.argv[1])
except InvalidInputError as exc:
    print("refused:", exc)
except MemoryError:
    print("out of memory")
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{time.perf_counter() - started:.3f} s, peak rss {peak} KiB")
"""


def _load_with_a_memory_limit(path: Path, limit: int) -> str:
    env = dict(subprocess_env(), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # The child reports its own peak since it started (its ru_maxrss would count pytest's, from the fork).
    done = subprocess.run([sys.executable, "-c", LOAD_LIMITED, str(path), str(limit)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """2.2 MB on disk, 2.25 GiB inflated: what used to be loaded (2.36 GB resident)."""
    path = _bomb(tmp_path_factory.mktemp("bomb") / "bomb.npz", 9 * 2**28 // 64)
    assert path.stat().st_size < 2_500_000
    return path


def test_a_zip_bomb_is_refused_from_its_declared_sizes_in_bounded_memory(bomb):
    with zipfile.ZipFile(bomb) as archive:  # a valid archive that inflates 1,000 times over
        declared = sum(info.file_size for info in archive.infolist())
        assert declared > 9 * 2**28
    with pytest.raises(InvalidInputError) as caught:
        FrameEmbeddings.load(bomb)
    size = bomb.stat().st_size
    assert str(caught.value) == (
        f"{bomb}: its arrays would inflate to {declared:,} bytes from {size:,} on disk, more than "
        f"the {max(SMALL_INFLATED, MAX_INFLATION * size):,} allowed ({MAX_INFLATION}x the file's size, or "
        f"{SMALL_INFLATED:,}); not reading a likely zip bomb"
    )
    out = _load_with_a_memory_limit(bomb, 1 << 30)  # 1 GiB of address space: the bomb needs 2.25
    assert out.startswith(f"refused: {bomb}: its arrays would inflate to"), out
    seconds, rss = float(out.split()[-6]), int(out.split()[-2])
    assert seconds < 1 and rss < 200_000, out


def test_a_member_that_inflates_past_its_declared_size_is_cut_off_and_refused(tmp_path):
    # Declares 1 MiB (so it passes the cap) but holds 512 MiB of zeros.
    path = _bomb(tmp_path / "liar.npz", 2**23, declared_rows=2**14)
    with pytest.raises(InvalidInputError, match=rf"^{path}: vectors\.npy: damaged or not an array \(Bad CRC-32"):
        FrameEmbeddings.load(path)
    out = _load_with_a_memory_limit(path, 1 << 30)
    assert out.startswith(f"refused: {path}: vectors.npy: damaged"), out
    assert int(out.split()[-2]) < 200_000, out


def test_a_header_claiming_a_huge_array_is_refused_before_anything_is_allocated(tmp_path):
    header = _npy_header((10**12, 512))  # 2 PB of float32
    data = header + bytes(64)
    members = {"vectors.npy": (data, len(data), zlib.crc32(data), 0), "meta.npy": _member(_meta())}
    path = _zip(tmp_path / "claims.npz", members)
    with pytest.raises(InvalidInputError) as caught:
        FrameEmbeddings.load(path)
    assert str(caught.value) == (
        f"{path}: vectors.npy: its header describes 2,048,000,000,000,000 bytes of data, but the archive declares 64"
    )


def test_a_member_shorter_than_its_header_says_is_refused(tmp_path):
    header = _npy_header((1000, 16))
    data = header + bytes(100)
    path = _zip(tmp_path / "short.npz", {"vectors.npy": (data, len(header) + 64_000, zlib.crc32(data), 0),
                                          "meta.npy": _member(_meta())})
    with pytest.raises(InvalidInputError, match=rf"^{path}: vectors\.npy: damaged or not an array"):
        FrameEmbeddings.load(path)


def test_python_objects_are_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "pickle.npz"
    vectors = np.empty(1, object)
    vectors[0] = Payload()
    np.savez(path, vectors=vectors, indices=np.arange(1), pts_seconds=np.zeros(1), meta=_meta())
    with pytest.raises(InvalidInputError, match=rf"^{path}: vectors\.npy: holds Python objects, which are never unpickled"):
        FrameEmbeddings.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.write_bytes(b""), "not a .npz (zip) archive, or a truncated one"),
        (lambda p: p.write_bytes(os.urandom(4096)), "not a .npz (zip) archive, or a truncated one"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p), "not a .npz (zip) archive"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: None, "no such file"),
        (lambda p: np.savez(p, a=np.zeros(3)), "has no 'meta' array, so it is not embeddings saved by actionzs"),
    ],
    ids=["empty", "random-bytes", "plain-npy", "folder", "fifo", "missing", "other-npz"],
)
def test_files_that_are_not_stored_embeddings(tmp_path, make, reason):
    path = tmp_path / "e.npz"
    make(path)
    with pytest.raises(InvalidInputError) as caught:
        FrameEmbeddings.load(path)
    assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)


@pytest.fixture(scope="module")
def stored(clf, short_clip, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stored") / "e.npz"
    clf.embed(str(short_clip), fps=2).save(path)
    return path


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_file_is_refused(stored, tmp_path, cut):
    data = stored.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(InvalidInputError, match=rf"^{path}: not stored embeddings: not a \.npz \(zip\) archive, or a truncated one"):
        FrameEmbeddings.load(path)


def test_a_damaged_member_is_refused(stored, tmp_path):
    data = bytearray(stored.read_bytes())
    with zipfile.ZipFile(stored) as archive:
        info = archive.getinfo("vectors.npy")
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)  # of the local header
    data[info.header_offset + 30 + name_length + extra_length + info.file_size - 1] ^= 0xFF  # the last byte of data
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=rf"^{path}: vectors\.npy: damaged or not an array \(Bad CRC-32"):
        FrameEmbeddings.load(path)


def test_stored_embeddings_still_round_trip_also_recompressed(stored, tmp_path, clf, short_clip):
    loaded = FrameEmbeddings.load(stored)
    made = clf.embed(str(short_clip), fps=2)
    assert np.array_equal(loaded.vectors, made.vectors) and loaded.sampling == made.sampling
    recompressed = tmp_path / "deflated.npz"
    with np.load(stored) as data:
        np.savez_compressed(recompressed, **{k: data[k] for k in data.files})
    assert np.array_equal(FrameEmbeddings.load(recompressed).vectors, made.vectors)
    with pytest.raises(InvalidInputError, match=r"holds 'frames' embeddings, not 'clips'"):
        ClipEmbeddings.load(stored)


@pytest.mark.parametrize(
    "meta, reason",
    [(np.array("not json"), "the meta array is not valid JSON"), (np.array("[" * 100_000), "the meta array is not valid JSON"),
     (np.array("[1]"), "not a JSON object"), (np.arange(3), "the meta array is not a JSON text"),
     (_meta(duration="long"), "the duration field is str, not int or float"), (_meta(duration=-1), "not a positive number"),
     (_meta(sampling=[1]), "the sampling field is list, not dict"), (_meta(extra=1), "unknown fields extra")],
    ids=["not-json", "deep", "list", "numbers", "duration-text", "duration-negative", "sampling-list", "unknown"],
)
def test_bad_metadata_is_refused_naming_the_file(tmp_path, meta, reason):
    path = tmp_path / "e.npz"
    np.savez(path, vectors=np.ones((1, 4), np.float32) / 2, indices=np.arange(1), pts_seconds=np.zeros(1), meta=meta)
    with pytest.raises(InvalidInputError) as caught:
        FrameEmbeddings.load(path)
    assert str(caught.value).startswith(f"{path}: ") and reason in str(caught.value)


def test_arrays_that_are_not_numbers_are_refused(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, vectors=np.array([["a", "b"]]), indices=np.arange(1), pts_seconds=np.zeros(1), meta=_meta())
    with pytest.raises(InvalidInputError, match=rf"^{path}: the vectors array holds <U1, not numbers"):
        FrameEmbeddings.load(path)
