"""Turn per-window label scores into events: smooth, threshold, bridge short gaps, drop short runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .sampling import Span


@dataclass(frozen=True)
class EventOptions:
    """How windows become events.

    smooth: moving-average length in windows (1 = none). threshold: a window is "on" when its
    smoothed value reaches it. measure: "score" (probability) or "similarity" (raw cosine).
    max_gap: runs separated by at most this many seconds merge. min_duration: shorter events drop.
    """

    smooth: int = 1
    threshold: float = 0.5
    measure: str = "score"
    max_gap: float = 0.0
    min_duration: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.smooth, int) or self.smooth < 1:
            raise InvalidInputError(f"event smoothing must be a whole number of windows >= 1, got {self.smooth!r}")
        if self.measure not in ("score", "similarity"):
            raise InvalidInputError(f"event measure must be 'score' or 'similarity', got {self.measure!r}")
        for name in ("threshold", "max_gap", "min_duration"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInputError(f"event {name} must be a finite number, got {value!r}")
        if self.max_gap < 0 or self.min_duration < 0:
            raise InvalidInputError(f"max_gap and min_duration must not be negative (got {self.max_gap}, {self.min_duration})")


def moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """Centred moving average along axis 0 [W, M]; edges average over the windows that exist."""
    if length <= 1:
        return values
    kernel = np.ones(length)
    pad = (length - 1) // 2, length // 2
    sums = np.apply_along_axis(lambda v: np.convolve(np.pad(v, pad), kernel, mode="valid"), 0, values)
    counts = np.convolve(np.pad(np.ones(len(values)), pad), kernel, mode="valid")[:, None]
    return sums / counts


def window_cells(spans: list[Span], duration: float) -> np.ndarray:
    """The time each window stands for: windows that overlap split the overlap in the middle (for
    equal windows, halfway between their centres; a clipped last window still starts where it does)."""
    starts = np.array([s.start_seconds for s in spans])
    ends = np.array([s.end_seconds for s in spans])
    bounds = np.concatenate([[0.0], (starts[1:] + ends[:-1]) / 2, [duration]])
    return np.stack([bounds[:-1], bounds[1:]], axis=1)


def find_events(
    spans: list[Span], values: np.ndarray, names: list[str], duration: float, options: EventOptions = EventOptions()
) -> list[dict]:
    """Events [{"label", "start", "end", "score"}] in time order, from window values [W, M].

    An event's score is the mean unsmoothed value over the windows inside it.
    """
    cells = window_cells(spans, duration)
    smoothed = moving_average(values, options.smooth)
    prefix = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0, dtype=np.float64)])
    events = []
    for m, name in enumerate(names):
        runs: list[list[int]] = []  # [first window, last window]
        for w in np.flatnonzero(smoothed[:, m] >= options.threshold).tolist():
            if runs and cells[w, 0] - cells[runs[-1][1], 1] <= options.max_gap + 1e-9:
                runs[-1][1] = w
            else:
                runs.append([w, w])
        for first, last in runs:
            start, end = float(cells[first, 0]), float(cells[last, 1])
            if end - start + 1e-9 >= options.min_duration:
                score = float((prefix[last + 1, m] - prefix[first, m]) / (last + 1 - first))
                events.append({"label": name, "start": start, "end": end, "score": score})
    return sorted(events, key=lambda e: (e["start"], -e["score"]))
