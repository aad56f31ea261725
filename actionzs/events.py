"""Turn per-window label scores into events: smooth, threshold, bridge short gaps, drop short runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sampling import Span
from .schema import check_fields, default


@dataclass(frozen=True)
class EventOptions:
    """How windows become events.

    Each field's type, unit, range, default and meaning is declared once in `actionzs.schema`:
    `smooth` is a moving-average length in windows (1 = none), a window is "on" when its smoothed
    `measure` ("score", the probability, or "similarity", the raw cosine) reaches `threshold`, runs
    at most `max_gap` seconds apart merge, and events shorter than `min_duration` seconds drop.
    """

    smooth: int = default("smooth")
    threshold: float = default("threshold")
    measure: str = default("measure")
    max_gap: float = default("max_gap")
    min_duration: float = default("min_duration")

    def __post_init__(self) -> None:
        check_fields(self, "events")


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
