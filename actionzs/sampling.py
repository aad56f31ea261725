"""Pure functions from a video's timeline to frame indices and timestamps; nothing here decodes.

A `Timeline` holds each frame's presentation time, so variable-frame-rate files sample at real
times. Frames are picked by time: the frame shown at time t is the last one whose pts <= t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, repr=False)
class Timeline:
    """Presentation times of every frame (seconds from the first frame) and the stream's duration;
    `gaps` are stretches [start, end) whose frames the file lists but that do not decode."""

    pts_seconds: np.ndarray
    duration: float
    gaps: tuple[tuple[float, float], ...] = ()

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
        """The timeline of `num_frames` frames spaced 1/average_fps apart (a stream's own rate)."""
        return cls(np.arange(num_frames) / average_fps, num_frames / average_fps)

    @property
    def num_frames(self) -> int:
        return len(self.pts_seconds)

    def frame_at(self, seconds: np.ndarray) -> np.ndarray:
        """Index of the frame on screen at each time (clamped to the first and last frame)."""
        idx = np.searchsorted(self.pts_seconds, np.asarray(seconds, np.float64) + 1e-9, side="right") - 1
        return np.clip(idx, 0, self.num_frames - 1)

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


def _at_times(timeline: Timeline, times: np.ndarray) -> Sample:
    indices = timeline.frame_at(times)
    return Sample(indices.astype(np.int64), timeline.pts_seconds[indices])


def uniform(timeline: Timeline, num: int, start: float = 0.0, end: float | None = None) -> Sample:
    """`num` frames at the centres of `num` equal sub-spans of [start, end) (TSN-style)."""
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    start, end = _span(timeline, start, end)
    step = (end - start) / num
    return _at_times(timeline, start + step * (np.arange(num) + 0.5))


def at_fps(timeline: Timeline, rate: float, start: float = 0.0, end: float | None = None) -> Sample:
    """One frame per 1/rate seconds over [start, end), taken at the centre of each 1/rate step
    (of the part of the last step that lies before `end`).

    Rates above the video's own frame rate are allowed and repeat no frame: duplicates are dropped.
    """
    if not rate > 0 or not math.isfinite(rate):
        raise ValueError(f"rate must be a positive number of frames per second, got {rate}")
    start, end = _span(timeline, start, end)
    count = max(1, math.ceil((end - start) * rate - 1e-9))
    step_starts = start + np.arange(count) / rate
    step_ends = np.minimum(step_starts + 1 / rate, end)  # the last step may be cut short by `end`
    sample = _at_times(timeline, (step_starts + step_ends) / 2)
    keep = np.concatenate([[True], np.diff(sample.indices) != 0])
    return Sample(sample.indices[keep], sample.pts_seconds[keep])


def windows(duration: float, length: float, stride: float) -> list[Span]:
    """Spans of `length` seconds every `stride` seconds over [0, duration); the last is clipped.

    A video shorter than one window gives the single span [0, duration). A stride longer than the
    window leaves gaps between spans, and no span starts at or after the end.
    """
    if not length > 0 or not stride > 0:
        raise ValueError(f"window length and stride must be positive, got length={length} stride={stride}")
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    spans, start = [], 0.0
    while True:
        end = min(start + length, duration)
        spans.append(Span(start, end))
        start += stride
        if end >= duration - 1e-9 or start >= duration - 1e-9:
            return spans


def frames_in(sample_pts: np.ndarray, spans: list[Span]) -> np.ndarray:
    """For each span, the [first, last) positions in the sorted `sample_pts` that fall inside it.

    A span holding no sampled frame borrows the one nearest its centre, so every span has a score.
    """
    starts = np.array([s.start_seconds for s in spans])
    ends = np.array([s.end_seconds for s in spans])
    first = np.searchsorted(sample_pts, starts - 1e-9, side="left")
    last = np.searchsorted(sample_pts, ends - 1e-9, side="left")
    empty = last <= first
    if np.any(empty):
        centres = (starts[empty] + ends[empty]) / 2
        nearest = np.abs(sample_pts[None, :] - centres[:, None]).argmin(axis=1)
        first[empty], last[empty] = nearest, nearest + 1
    return np.stack([first, last], axis=1)
