"""Decoding less changes no frame: what the PyAV backend gives while its decoder drops the frames
nothing refers to is bit for bit what a full decode gives, and every backend that opens a file
gives the frames the samplers ask for.

The truth is a full single-threaded PyAV decode (`container.decode`), each frame converted as the
backend converts it. Each clip is written with PyAV: B-frames, an open GOP, a first frame whose
time is not 0, a variable frame rate, MPEG-4 Part 2 in AVI and MKV, and HEVC. Keyframe sampling
gives exactly the frames a full decode flags as keyframes, at their own times.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from actionzs import sampling
from actionzs.classifier import ZeroShotVideoClassifier
from actionzs.errors import InvalidInputError, VideoDecodeError, VideoOptionsError
from actionzs.events import EventOptions, window_cells
from actionzs.models import load_encoder
from actionzs.options import RunOptions
from actionzs.prompts import parse_labels
from actionzs.testing import read_index
from actionzs.video import open_video
from actionzs.video.pyav_reader import PyAVReader
from actionzs.video.stream_index import index_stream
from helpers_cli import run_cli
from helpers_video import BACKENDS, encode

av = pytest.importorskip("av")

FRAMES = 120
GOP = {"g": "30", "keyint_min": "30", "sc_threshold": "0"}
#: name -> (file name, codec, codec options, frame times or None)
CLIPS = {
    "h264 bf2 mp4": ("bf2.mp4", "libx264", {"bf": "2", **GOP}, None),
    "h264 bf3 mkv": ("bf3.mkv", "libx264", {"bf": "3", **GOP}, None),
    "h264 open gop": ("open gop.mkv", "libx264", {"bf": "3", **GOP, "x264-params": "open-gop=1"}, None),
    "h264 late start": ("late.mkv", "libx264", {"bf": "2", **GOP}, [1.5 + i / 25 for i in range(FRAMES)]),
    "h264 vfr": ("vfr.mkv", "libx264", {"bf": "3", **GOP}, list(np.cumsum([0.02 + 0.05 * (i % 3) for i in range(FRAMES)]) - 0.02)),
    "mpeg4 avi": ("mpeg4.avi", "mpeg4", {"bf": "2", "g": "30", "qscale": "3"}, None),
    "mpeg4 mkv": ("mpeg4.mkv", "mpeg4", {"bf": "2", "g": "30", "qscale": "3"}, None),
    "mpeg4 avi no b": ("mpeg4 no b.avi", "mpeg4", {"bf": "0", "g": "30", "qscale": "3"}, None),
    "h264 avi": ("h264.avi", "libx264", {"bf": "0", **GOP}, None),
    "hevc": ("hevc.mkv", "libx265", {"x265-params": "bframes=3:keyint=30:min-keyint=30:log-level=error"}, None),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("decode less")
    made = {}
    for name, (file, codec, options, times) in CLIPS.items():
        if codec not in av.codecs_available:
            continue
        made[name] = encode(folder / file, FRAMES, codec=codec, options=options, frame_times=times, grain=12)
    return made


def full_decode(path: Path, width: int, height: int) -> list[np.ndarray]:
    """Every frame of a full single-threaded decode, converted as the PyAV backend converts it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        return [
            frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
            for frame in container.decode(stream)
        ]


def index_sets(timeline: sampling.Timeline) -> dict[str, np.ndarray]:
    """What the samplers ask for: uniform, by rate, by rate snapped to keyframes, and windows'
    frames (runs with gaps between)."""
    spans = sampling.windows(timeline.duration, 1.0, 1.5)
    in_windows = np.concatenate([sampling.uniform(timeline, 6, s.start_seconds, s.end_seconds).indices for s in spans])
    return {
        "uniform": sampling.uniform(timeline, 8).indices,
        "fps": sampling.at_fps(timeline, 3.0).indices,
        "fps snapped": sampling.at_fps(timeline, 3.0, snap_seconds=0.3).indices,
        "windows": np.unique(in_windows),
        "every frame": np.arange(timeline.num_frames),
    }


def _opened(clips: dict, clip: str, backend: str):
    """The clip opened with `backend`, or None where the backend refuses it (it might read the
    file wrongly); skipped where this FFmpeg cannot write the clip."""
    if clip not in clips:
        pytest.skip(f"this FFmpeg cannot encode {CLIPS[clip][1]}")
    try:
        return open_video(clips[clip], backend)
    except VideoDecodeError:
        return None


@pytest.mark.parametrize("clip", CLIPS)
def test_pyav_frames_are_bit_identical_to_a_full_decode(clips, clip):
    if clip not in clips:
        pytest.skip(f"this FFmpeg cannot encode {CLIPS[clip][1]}")
    path = clips[clip]
    video = open_video(path, "pyav")
    truth = full_decode(path, video.width, video.height)
    assert video.num_frames == len(truth) == FRAMES
    for name, wanted in index_sets(video.timeline).items():
        batch = video.get_frames(wanted)
        same = [np.array_equal(frame, truth[i]) for frame, i in zip(batch.data, wanted.tolist())]
        assert all(same), f"{clip}, {name}: frames {wanted[~np.array(same)].tolist()} differ from the full decode"
    times = video.timeline.pts_seconds
    if CLIPS[clip][3] is not None:
        np.testing.assert_allclose(times, np.array(CLIPS[clip][3]) - CLIPS[clip][3][0], atol=1e-6)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_that_opens_a_clip_gives_the_sampled_frames(clips, clip, backend):
    video = _opened(clips, clip, backend)
    if video is None:
        return  # refused: the backend might read this file wrongly
    for name, wanted in index_sets(video.timeline).items():
        if name == "every frame":
            continue
        got = [read_index(frame) for frame in video.get_frames(wanted).data]
        assert got == wanted.tolist(), f"{backend}, {clip}, {name}"


def test_skipping_applies_where_it_is_exact_only(clips):
    """H.264 and MPEG-4 Part 2 in timed containers skip; HEVC and AVI (frames counted) do not."""
    skipping = {name: PyAVReader(str(path))._plan.skipping for name, path in clips.items()}
    assert skipping["h264 bf3 mkv"] and skipping["mpeg4 mkv"]
    assert not skipping["mpeg4 avi"] and skipping["mpeg4 avi no b"]
    if "hevc" in skipping:
        assert not skipping["hevc"]


@pytest.mark.parametrize("clip", ["mpeg4 avi no b", "h264 avi"])
def test_avi_without_b_frames_seeks_to_the_keyframe_before_each_wanted_frame(clips, clip):
    """AVI numbers its packets; without B-frames that number is the frame's place, so the reader
    seeks there (frames checked against the full decode above) and decodes what a seek saves."""
    index = index_stream(str(clips[clip]))
    wanted = np.array([25, 75, 80, 115])  # keyframes every 30 frames: 0, 30, 60, 90
    reader = PyAVReader(str(clips[clip]), index=index)
    reader.read(wanted, None)
    assert index.seekable and reader.frames_decoded == 26 + 16 + 5 + 26  # from 0, 60, on from 75, from 90
    reader.close()


def test_decord_is_refused_for_h264_in_avi_where_it_reads_an_earlier_gops_frames(clips):
    """Measured before the refusal: frames 30-119 of this clip came back as frames of the first GOP."""
    pytest.importorskip("decord")
    with pytest.raises(VideoDecodeError, match="decord seeks to the wrong frames in h264 AVI files"):
        open_video(clips["h264 avi"], "decord")
    assert open_video(clips["h264 avi"], "auto").backend == "pyav"


def test_one_frame_a_second_decodes_fewer_frames_per_frame_delivered(tmp_path):
    """25 fps, a keyframe every 50 frames, 3 B-frames: at 1 frame/s the decoder made 190 frames
    for 10 delivered without skipping and 107 with it (measured); asserted loosely."""
    path = encode(
        tmp_path / "gop50.mp4", 250, options={"bf": "3", "g": "50", "keyint_min": "50", "sc_threshold": "0"}, grain=20
    )
    index = index_stream(str(path))
    wanted = sampling.at_fps(index.timeline, 1.0).indices
    cost, frames = {}, {}
    for skip in (False, True):
        reader = PyAVReader(str(path), index=index, skip_unwanted=skip)
        frames[skip] = reader.read(wanted, None)
        cost[skip] = reader.frames_decoded / reader.frames_delivered
        reader.close()
    assert np.array_equal(frames[True], frames[False])
    assert cost[True] < 0.8 * cost[False], cost


# -- keyframe sampling ---------------------------------------------------------------------------


def full_decode_keyframes(path: Path) -> tuple[list[int], list[float]]:
    """The positions and times (seconds from the first frame) of the frames a full decode flags as
    keyframes."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(frame.pts, frame.key_frame) for frame in container.decode(stream)]
    first = frames[0][0]
    keys = [i for i, (_, key) in enumerate(frames) if key]
    return keys, [round((frames[i][0] - first) * float(stream.time_base), 6) for i in keys]


@pytest.mark.parametrize("clip", ["h264 bf2 mp4", "h264 open gop", "h264 late start", "h264 vfr", "mpeg4 mkv", "hevc"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_keyframe_sampling_gives_the_keyframes_at_their_own_times(clips, clip, backend):
    video = _opened(clips, clip, backend)
    if video is None:
        return  # refused: the backend might read this file wrongly
    keys, seconds = full_decode_keyframes(clips[clip])
    sample = sampling.keyframes(video.timeline)
    assert sample.indices.tolist() == keys and set(range(0, FRAMES, 30)) <= set(keys)
    np.testing.assert_allclose(sample.pts_seconds, seconds, atol=1e-6)
    assert [read_index(frame) for frame in video.get_frames(sample.indices).data] == keys


def test_windows_without_a_keyframe_are_frameless_not_borrowed(clips, clip_dir):
    """Keyframes every 1.2 s, windows of 0.5 s: a window is scored from the keyframes inside it
    (exactly their mean against the label texts) or, with none inside, reported frameless; nothing
    is borrowed, smoothing and events pass over frameless windows, and the record stays strict JSON."""
    path = clips["h264 late start"]
    _, seconds = full_decode_keyframes(path)
    classifier = ZeroShotVideoClassifier(load_encoder(str(clip_dir), dtype="float32"))
    labels = parse_labels(["a", "b"])
    events = EventOptions(measure="similarity", threshold=-1.0, smooth=3)  # every scored window is on
    options = dict(segments=True, keyframes=True, window=0.5, stride=0.5, top_k=None, events=events)
    result = classifier.classify(str(path), labels, **options)
    embeddings = classifier.embed(str(path), **options)
    texts = classifier.texts.embed_labels(labels, RunOptions().hypothesis_template).numpy()
    inside = [[k for k, t in enumerate(embeddings.pts_seconds) if start - 1e-9 <= t < end - 1e-9]
              for start, end in result.window_spans]
    assert np.allclose(embeddings.pts_seconds, seconds, atol=1e-6)
    assert result.frameless.tolist() == [not keys for keys in inside]
    assert 0 < result.frameless.sum() < len(inside) - 1
    for w, keys in enumerate(inside):
        segment = result.segments[w]
        if not keys:
            assert segment["labels"] == [] and segment["frameless"] is True
            continue
        pooled = embeddings.vectors[keys].mean(axis=0)
        np.testing.assert_allclose(result.window_similarity[w], texts @ (pooled / np.linalg.norm(pooled)), atol=1e-5)
        assert "frameless" not in segment and len(segment["labels"]) == 2
    # each run of scored windows is one event per label; none reaches into a frameless window's cell
    cells = window_cells([sampling.Span(*span) for span in result.window_spans.tolist()], result.duration)
    runs = np.flatnonzero(np.diff(np.concatenate([[0], (~result.frameless).astype(int), [0]])) == 1)
    assert len(result.events) == 2 * len(runs)
    for event in result.events:
        covered = (cells[:, 0] < event["end"] - 1e-9) & (cells[:, 1] > event["start"] + 1e-9)
        assert not result.frameless[covered].any()
    json.dumps(result.to_dict(), allow_nan=False)
    # sampled at a rate, the same windows borrow the nearest frame as before: none is frameless
    assert not classifier.classify(str(path), labels, **{**options, "keyframes": False, "fps": 0.5}).frameless.any()


def test_the_command_line_says_which_windows_were_frameless(capsys, clips, clip_dir):
    path = clips["h264 late start"]
    common = [path, "-l", "a", "-l", "b", "--model", clip_dir, "--keyframes", "--segments", "--window", "0.5",
              "--stride", "0.5", "--top-k", "2", "-q"]
    code, out, _ = run_cli(capsys, "classify", *common, "--format", "json", "-o", "-")
    assert code == 0
    segments = json.loads(out)[0]["segments"]
    frameless = [s for s in segments if s.get("frameless")]
    assert frameless and all(s["labels"] == [] for s in frameless)
    code, out, _ = run_cli(capsys, "classify", *common, "--format", "csv", "-o", "-")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(float(r["start"]), float(r["end"])) for r in rows if r["kind"] == "frameless"] == [
        (s["start"], s["end"]) for s in frameless]
    assert all(r["label"] and r["score"] for r in rows if r["kind"] == "segment")
    code, out, _ = run_cli(capsys, "classify", *common)
    assert f"windows: {len(frameless)} of {len(segments)} hold no sampled frame (no keyframe): not scored" in out


@pytest.mark.parametrize("clip", ["h264 bf2 mp4", "h264 open gop", "h264 late start", "h264 vfr", "mpeg4 mkv", "hevc"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_snapped_to_keyframes_are_keyframes_at_their_own_times_or_exact(clips, clip, backend):
    """Keyframes every 30 frames (1.2 s at 25 fps): at 2 frames/s with 0.3 s of tolerance, frames
    near a keyframe become it, at the time a full decode gives it, and the others stay as exact
    sampling has them; every backend delivers those frames."""
    video = _opened(clips, clip, backend)
    if video is None:
        return  # refused: the backend might read this file wrongly
    keys, seconds = full_decode_keyframes(clips[clip])
    exact = sampling.at_fps(video.timeline, 2.0)
    sample = sampling.at_fps(video.timeline, 2.0, snap_seconds=0.3)
    key_time = dict(zip(keys, seconds))
    moved = [i for i in sample.indices.tolist() if i not in exact.indices]
    assert moved and set(moved) <= set(keys)
    for i, t in zip(sample.indices.tolist(), sample.pts_seconds.tolist()):
        assert i in exact.indices or abs(t - key_time[i]) < 1e-6
    assert [read_index(frame) for frame in video.get_frames(sample.indices).data] == sample.indices.tolist()


def test_frames_snapped_to_keyframes_cost_one_decode_each(clips):
    """A frame snapped to a keyframe is a seek and that keyframe's decode: at 1 frame/s with 1 s of
    tolerance every frame of this 4.8 s clip goes to one of its 4 keyframes, decoded alone; exact,
    the same rate decodes GOPs up to each frame."""
    index = index_stream(str(clips["h264 bf2 mp4"]))
    cost = {}
    for snap in (0.0, 1.0):
        reader = PyAVReader(str(clips["h264 bf2 mp4"]), index=index)
        reader.read(sampling.at_fps(index.timeline, 1.0, snap_seconds=snap).indices, None)
        cost[snap] = (reader.frames_decoded, reader.frames_delivered)
        reader.close()
    assert cost[1.0] == (4, 4) and cost[0.0][1] == 5 and cost[0.0][0] > 2 * cost[0.0][1]


def test_a_frame_encoder_snaps_to_keyframes_and_records_it(clips, clip_dir, xclip_dir, capsys):
    """Snapped frames are embedded at the keyframes' own times and recorded with the tolerance;
    windows are scored as at a rate (none frameless); it refuses to go with keyframe sampling or a
    clip encoder, naming both."""
    path = clips["h264 vfr"]
    classifier = ZeroShotVideoClassifier(load_encoder(str(clip_dir), dtype="float32"), RunOptions(fps=2.0))
    exact = classifier.embed(str(path), segments=True)
    snapped = classifier.embed(str(path), segments=True, snap_to_keyframes=0.3)
    assert snapped.sampling == {"fps": 2.0, "snap_to_keyframes": 0.3} and exact.sampling == {"fps": 2.0}
    timeline = open_video(path, "pyav").timeline
    want = sampling.at_fps(timeline, 2.0, snap_seconds=0.3)
    assert snapped.indices.tolist() == want.indices.tolist() != exact.indices.tolist()
    np.testing.assert_allclose(snapped.pts_seconds, want.pts_seconds, atol=1e-9)
    kept = np.isin(snapped.indices, exact.indices)
    np.testing.assert_allclose(snapped.vectors[kept], exact.vectors[np.isin(exact.indices, snapped.indices)], atol=1e-6)
    result = classifier.classify(str(path), parse_labels(["a", "b"]), segments=True, snap_to_keyframes=0.3)
    assert not result.frameless.any() and len(result.segments) == len(sampling.windows(snapped.duration, 2.0, 1.0))
    with pytest.raises(InvalidInputError, match="with keyframes every keyframe is taken already"):
        classifier.embed(str(path), keyframes=True, snap_to_keyframes=0.3)
    xclip = ZeroShotVideoClassifier(load_encoder(str(xclip_dir), dtype="float32"))
    with pytest.raises(InvalidInputError, match="snapping to keyframes"):
        xclip.embed(str(path), snap_to_keyframes=0.3)
    code, out, _ = run_cli(capsys, "classify", path, "-l", "a", "-l", "b", "--model", clip_dir, "--segments",
                           "--snap-to-keyframes", "0.3", "--format", "json", "-o", "-", "-q")
    assert code == 0 and json.loads(out)[0]["settings"]["sampling"]["snap_to_keyframes"] == 0.3
    code, _, err = run_cli(capsys, "classify", path, "-l", "a", "--model", clip_dir, "--keyframes",
                           "--snap-to-keyframes", "0.3", "-q")
    assert code == 2 and "with keyframes every keyframe is taken already" in err and "Traceback" not in err


def test_keyframe_sampling_is_refused_where_keyframes_are_unknown():
    timeline = sampling.Timeline.constant_rate(50, 25.0)
    with pytest.raises(VideoOptionsError, match="keyframe"):
        sampling.keyframes(timeline)
    assert sampling.keyframes(sampling.Timeline.constant_rate(1, 25.0)).indices.tolist() == [0]  # a still image


def test_a_frame_encoder_embeds_the_keyframes_and_records_it(clips, clip_dir, xclip_dir):
    path = clips["h264 vfr"]
    keys, seconds = full_decode_keyframes(path)
    classifier = ZeroShotVideoClassifier(load_encoder(str(clip_dir), dtype="float32"), RunOptions(fps=2.0))
    by_rate = classifier.embed(str(path), segments=True)
    by_keys = classifier.embed(str(path), segments=True, keyframes=True)
    assert by_keys.sampling == {"keyframes": True} and by_rate.sampling == {"fps": 2.0}
    assert by_keys.indices.tolist() == keys
    np.testing.assert_allclose(by_keys.pts_seconds, seconds, atol=1e-6)
    result = classifier(str(path), candidate_labels=["a", "b"], segments=True, keyframes=True)
    assert len(result["segments"]) == len(sampling.windows(by_keys.duration, 2.0, 1.0))
    xclip = ZeroShotVideoClassifier(load_encoder(str(xclip_dir), dtype="float32"))
    with pytest.raises(InvalidInputError, match="keyframe sampling"):
        xclip.embed(str(path), keyframes=True)
