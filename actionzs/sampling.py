"""Pure functions from a video's timeline to frame indices and timestamps; nothing here decodes.

A `Timeline` holds each frame's presentation time, so variable-frame-rate files sample at real
times. Frames are picked by time: the frame shown at time t is the last one whose pts <= t.

What a sampler makes is bounded by what the video can give, checked before anything is built: a
rate above the video's own samples each frame once at a cost of its frames, not of rate x duration,
and no video gives more than `MAX_WINDOWS` windows or `MAX_FRAMES` sampled frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import VideoOptionsError

#: The most windows one video is scored in. 24 hours of video at a 0.1 s stride is 864,000; every
#: window costs a pooled vector, a score per label and a Python object, so a million windows is
#: already gigabytes with a large label set, and a finer layout is almost surely a mistake.
MAX_WINDOWS = 1_000_000
#: The most frames one video's embeddings are made of: frames sampled by a frame encoder, or
#: spans x frames per clip for a clip encoder (X-CLIP). 24 hours at 10 frames per second is
#: 864,000, and each one is a model forward and a stored vector (a million 1024-d vectors: 4 GB).
MAX_FRAMES = 1_000_000


def _count(n: float) -> str:
    """A count for a message: 5,000,000 in full, astronomically large ones as 1.0e+300."""
    return f"{int(n):,}" if n < 1e15 else f"{n:.1e}"


@dataclass(frozen=True, repr=False)
class Timeline:
    """Presentation times of every frame (seconds from the first frame) and the stream's duration;
    `gaps` are stretches [start, end) whose frames the file lists but that do not decode;
    `keyframes` the sorted indices of the frames the container flags as keyframes (None: unknown)."""

    pts_seconds: np.ndarray
    duration: float
    gaps: tuple[tuple[float, float], ...] = ()
    keyframes: np.ndarray | None = None

    def __post_init__(self) -> None:
        pts = self.pts_seconds
        if pts.ndim != 1 or len(pts) == 0:
            raise ValueError(f"a timeline needs at least one frame time, got shape {pts.shape}")
        if np.any(np.diff(pts) < 0):
            raise ValueError("frame times must not decrease")
        if not self.duration > pts[-1] - 1e-9:
            raise ValueError(f"duration {self.duration} ends before the last frame at {pts[-1]}")

    @classmethod
    def constant_rate(cls, num_frames: int, average_fps: float) -> Timeline:
        """The timeline of `num_frames` frames spaced 1/average_fps apart (a stream's own rate);
        a single frame (a still image) is its own keyframe."""
        still = np.zeros(1, np.int64) if num_frames == 1 else None
        return cls(np.arange(num_frames) / average_fps, num_frames / average_fps, keyframes=still)

    @property
    def num_frames(self) -> int:
        return len(self.pts_seconds)

    def frame_at(self, seconds: np.ndarray) -> np.ndarray:
        """Index of the frame on screen at each time (clamped to the first and last frame)."""
        idx = np.searchsorted(self.pts_seconds, np.asarray(seconds, np.float64) + 1e-9, side="right") - 1
        return np.clip(idx, 0, self.num_frames - 1)

    def end_of(self, index: int) -> float:
        """When frame `index` stops being shown: the next frame's time, or the end of the video."""
        return float(self.pts_seconds[index + 1]) if index + 1 < self.num_frames else self.duration

    def __repr__(self) -> str:
        return f"Timeline(frames={self.num_frames}, duration={self.duration:.3f}s)"


@dataclass(frozen=True, repr=False)
class Sample:
    """Frame `indices` chosen by a sampler and those frames' `pts_seconds`."""

    indices: np.ndarray
    pts_seconds: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"Sample(frames={len(self)}, indices={self.indices[:6].tolist()}{'...' if len(self) > 6 else ''})"


@dataclass(frozen=True)
class Span:
    """A stretch of time [start_seconds, end_seconds)."""

    start_seconds: float
    end_seconds: float

    def __post_init__(self) -> None:
        if not self.end_seconds > self.start_seconds:
            raise ValueError(f"span end {self.end_seconds} must be after its start {self.start_seconds}")


def _span(timeline: Timeline, start: float, end: float | None) -> tuple[float, float]:
    end = timeline.duration if end is None else min(end, timeline.duration)
    if not 0 <= start < end:
        raise ValueError(f"span [{start}, {end}) is empty or outside the video (0..{timeline.duration:.3f}s)")
    return start, end


def part(timeline: Timeline, start: float = 0.0, end: float | None = None) -> tuple[float, float]:
    """The part [start, end) of the video that a run with `start`/`end` (seconds of the video's own
    time; None: its end) covers, an end past the video's cut to it. A start at or past the end is a
    `VideoOptionsError` naming both, raised before anything is sampled."""
    stop = timeline.duration if end is None else min(end, timeline.duration)
    if not start < stop:
        raise VideoOptionsError(
            f"--start {start:g} s is at or past the end of the video ({timeline.duration:g} s)" if start >= timeline.duration
            else f"--start {start:g} s is not before --end {stop:g} s"
        )
    return start, stop


def part_of(run) -> dict:
    """The part of the video a run's options (`start`, `end`) ask for, as embeddings record it:
    {} for the whole video, so embeddings of whole videos read as they always have."""
    return {**({"start": float(run.start)} if run.start else {}), **({"end": float(run.end)} if run.end is not None else {})}


def keyframes_in(timeline: Timeline, start: float = 0.0, end: float | None = None) -> Sample:
    """`keyframes` with times in [start, end); none there is a `VideoOptionsError`."""
    sample = keyframes(timeline)
    if start <= 0 and end is None:
        return sample
    stop = timeline.duration if end is None else end
    inside = (sample.pts_seconds >= start - 1e-9) & (sample.pts_seconds < stop - 1e-9)
    if not inside.any():
        raise VideoOptionsError(f"no keyframe lies between {start:g} s and {stop:g} s; use --fps")
    return Sample(sample.indices[inside], sample.pts_seconds[inside])


def snapped(timeline: Timeline, indices: np.ndarray, snap_seconds: float, start: float = 0.0,
            end: float | None = None) -> np.ndarray:
    """Each frame of `indices` replaced by the keyframe nearest it in time (the earlier of two as
    near) when that keyframe lies within `snap_seconds` of it and inside [start, end); the others
    kept. A keyframe needs no other frame decoded, so a frame snapped to one costs a seek and one
    decode instead of the decode of its GOP up to it. Order is kept: a frame between two others
    snaps no further than they do. 0 seconds, or a timeline whose keyframes are unknown, keeps
    every frame (exact frames are within any tolerance)."""
    keys = timeline.keyframes
    if not snap_seconds > 0 or keys is None or not len(keys):
        return indices
    stop = timeline.duration if end is None else end
    key_pts = timeline.pts_seconds[keys]
    inside = (key_pts >= start - 1e-9) & (key_pts < stop - 1e-9)
    if not inside.any():
        return indices
    keys, key_pts = keys[inside], key_pts[inside]
    pts = timeline.pts_seconds[indices]
    after = np.minimum(np.searchsorted(key_pts, pts, side="left"), len(keys) - 1)
    before = np.maximum(after - 1, 0)
    nearest = np.where(np.abs(key_pts[before] - pts) <= np.abs(key_pts[after] - pts), before, after)
    near = np.abs(key_pts[nearest] - pts) <= snap_seconds + 1e-9
    return np.where(near, keys[nearest], indices).astype(np.int64)


def _at_times(timeline: Timeline, times: np.ndarray, snap_seconds: float, start: float, end: float) -> Sample:
    indices = snapped(timeline, timeline.frame_at(times).astype(np.int64), snap_seconds, start, end)
    return Sample(indices, timeline.pts_seconds[indices])


def uniform(timeline: Timeline, num: int, start: float = 0.0, end: float | None = None, snap_seconds: float = 0.0) -> Sample:
    """`num` frames at the centres of `num` equal sub-spans of [start, end) (TSN-style); with
    `snap_seconds`, each moved to a keyframe that near (`snapped`), a frame taken twice counting twice."""
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    if num > MAX_FRAMES:
        raise VideoOptionsError(f"{_count(num)} frames per span are more than the {MAX_FRAMES:,} allowed")
    start, end = _span(timeline, start, end)
    step = (end - start) / num
    return _at_times(timeline, start + step * (np.arange(num) + 0.5), snap_seconds, start, end)


def at_fps(timeline: Timeline, rate: float, start: float = 0.0, end: float | None = None, snap_seconds: float = 0.0) -> Sample:
    """One frame per 1/rate seconds over [start, end), taken at the centre of each 1/rate step
    (of the part of the last step that lies before `end`); with `snap_seconds`, each moved to a
    keyframe that near (`snapped`), at the keyframe's own time.

    Rates above the video's own frame rate are allowed and repeat no frame: duplicates are dropped
    (several steps snapped to one keyframe take it once). Only steps next to a frame change can
    bring a new frame, so when there are more steps than frames only those are looked at: the cost
    is that of the frames, whatever the rate. More than `MAX_FRAMES` sampled frames are a
    `VideoOptionsError`.
    """
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"rate must be a positive number of frames per second, got {rate}")
    start, end = _span(timeline, start, end)
    steps = (end - start) * rate
    if not steps < 2**53:  # finer than float64 times can tell apart
        raise VideoOptionsError(f"{end - start:g} s cannot be sampled at {rate:g} fps: too many steps to count")
    count = max(1, math.ceil(steps - 1e-9))
    first, last = timeline.frame_at(np.array([start, end])).tolist()  # the frames on screen at the ends
    if count <= 3 * (last - first) + 3:
        chosen = np.arange(count)
    else:
        # The first step whose centre shows frame i (first < i <= last), found from its start time,
        # with the steps either side against rounding; the first and last steps (the last is short).
        onset = timeline.pts_seconds[first + 1 : last + 1] - 1e-9
        k = np.ceil((onset - start) * rate - 0.5).astype(np.int64)
        edges = np.array([0, count - 2, count - 1], np.int64)
        chosen = np.unique(np.clip(np.concatenate([edges, k - 1, k, k + 1]), 0, count - 1))
    step_starts = start + chosen / rate
    step_ends = np.minimum(step_starts + 1 / rate, end)  # the last step may be cut short by `end`
    sample = _at_times(timeline, (step_starts + step_ends) / 2, snap_seconds, start, end)
    keep = np.concatenate([[True], np.diff(sample.indices) != 0])
    if keep.sum() > MAX_FRAMES:
        raise VideoOptionsError(
            f"sampling at {rate:g} fps takes {_count(keep.sum())} frames over {end - start:g} s, more than the "
            f"{MAX_FRAMES:,} allowed; use a lower fps (--fps)"
        )
    return Sample(sample.indices[keep], sample.pts_seconds[keep])


def keyframes(timeline: Timeline) -> Sample:
    """Every keyframe of the stream at its own time: for hours of footage, a decode of a few hundred
    frames that need no other. A window without a keyframe is scored from no frame (`frames_in` with
    `borrow` off): it is reported frameless, never given a keyframe seconds away. A timeline whose
    keyframes are unknown (the container could not be indexed) is a `VideoOptionsError`."""
    if timeline.keyframes is None or not len(timeline.keyframes):
        raise VideoOptionsError(
            "keyframe sampling needs the container's keyframe flags, which this video does not give; use --fps"
        )
    if len(timeline.keyframes) > MAX_FRAMES:
        raise VideoOptionsError(
            f"{len(timeline.keyframes):,} keyframes are more than the {MAX_FRAMES:,} frames allowed; use --fps"
        )
    indices = timeline.keyframes.astype(np.int64)
    return Sample(indices, timeline.pts_seconds[indices])


def window_count(duration: float, length: float, stride: float) -> float:
    """How many spans `windows` makes (give or take one to float rounding), without making them;
    a float, since a tiny stride can make more than an int64 holds."""
    def ceil(x: float) -> float:
        return math.ceil(x) if math.isfinite(x) else x

    # The last span is the first that reaches the end, or the last that starts before it.
    last = min(ceil((duration - 1e-9 - length) / stride), ceil((duration - 1e-9) / stride) - 1)
    return 1 + max(0, last)


def check_windows(duration: float, length: float, stride: float) -> float:
    """The number of windows (see `window_count`); more than `MAX_WINDOWS` is a `VideoOptionsError`."""
    count = window_count(duration, length, stride)
    if count > MAX_WINDOWS:
        raise VideoOptionsError(_too_many_windows(duration, length, stride, count))
    return count


def _too_many_windows(duration: float, length: float, stride: float, count: float) -> str:
    return (
        f"window {length:g} s every {stride:g} s makes {_count(count)} windows over {duration:g} s, "
        f"more than the {MAX_WINDOWS:,} allowed; use a longer stride (--stride)"
    )


def windows(duration: float, length: float, stride: float, start: float = 0.0) -> list[Span]:
    """Spans of `length` seconds every `stride` seconds over [start, duration); the last is clipped.
    (`duration` is where the spans end: the video's end, or the end of the part of it a run covers.)

    A video shorter than one window gives the single span [0, duration). A stride longer than the
    window leaves gaps between spans, and no span starts at or after the end. More than
    `MAX_WINDOWS` spans are a `VideoOptionsError`, raised before any is made.
    """
    if not length > 0 or not stride > 0:
        raise ValueError(f"window length and stride must be positive, got length={length} stride={stride}")
    if start:
        return [Span(start + s.start_seconds, start + s.end_seconds) for s in windows(duration - start, length, stride)]
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    count = check_windows(duration, length, stride)
    # The starts as the running sum 0, stride, 2 stride, ... (float by float, as a loop adds them),
    # a few more than the count (which float rounding may put off by one), cut at the first span
    # that reaches the end or the first start at the end.
    starts = np.cumsum(np.full(int(count) + 2, stride))
    starts = np.concatenate([[0.0], starts[:-1]])
    ends = np.minimum(starts + length, duration)
    last = np.flatnonzero((ends >= duration - 1e-9) | (starts + stride >= duration - 1e-9))
    if not len(last):  # cannot happen after the check: a stride that stops advancing
        raise VideoOptionsError(_too_many_windows(duration, length, stride, count + 1))
    stop = int(last[0]) + 1
    return [Span(start, end) for start, end in zip(starts[:stop].tolist(), ends[:stop].tolist())]


def merged_spans(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of time spans [start, end), as sorted spans that neither overlap nor touch."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def frames_in(sample_pts: np.ndarray, spans: list[Span], borrow: bool = True) -> np.ndarray:
    """For each span, the [first, last) positions in the sorted `sample_pts` that fall inside it.

    A span holding no sampled frame borrows the one nearest its centre (the first of equals), so
    every span has a score; with `borrow` off it keeps its empty range (first == last), for
    samplers whose frames do not stand for the time around them (keyframes: the nearest may be
    seconds away). Found by bisection, so the cost is that of the spans and frames, not of their
    product.
    """
    starts = np.array([s.start_seconds for s in spans])
    ends = np.array([s.end_seconds for s in spans])
    first = np.searchsorted(sample_pts, starts - 1e-9, side="left")
    last = np.searchsorted(sample_pts, ends - 1e-9, side="left")
    empty = last <= first
    if borrow and np.any(empty):
        centres = (starts[empty] + ends[empty]) / 2
        after = np.minimum(np.searchsorted(sample_pts, centres, side="left"), len(sample_pts) - 1)
        before = np.searchsorted(sample_pts, sample_pts[np.maximum(after - 1, 0)], side="left")  # first of its equals
        closer = np.abs(sample_pts[before] - centres) <= np.abs(sample_pts[after] - centres)
        nearest = np.where(closer, before, after)
        first[empty], last[empty] = nearest, nearest + 1
    return np.stack([first, last], axis=1)
