"""Turn per-window label scores into events: smooth, threshold, bridge short gaps, drop short runs.

A window is "on" for a label when its smoothed value (`EventOptions.measure`, smoothed over
`smooth` windows) reaches the label's threshold: its own from a thresholds file (`actionzs
calibrate`), else the one `threshold`. An event's score is the mean of those very smoothed values
over the event's on windows; the windows of a gap bridged by `max_gap` are part of the event's
time but not of its score. So every event's score is at least its threshold, and each event
names the threshold that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .sampling import Span
from .schema import check_fields, default


@dataclass(frozen=True)
class EventOptions:
    """How windows become events.

    Each field's type, unit, range, default and meaning is declared once in `actionzs.schema`:
    `smooth` is a moving-average length in windows (1 = none), a window is "on" when its smoothed
    `measure` ("score", the probability, or "similarity", the raw cosine) reaches `threshold` (or
    the label's own threshold from the `thresholds` file, see `actionzs.calibration`), runs at most
    `max_gap` seconds apart merge, and events shorter than `min_duration` seconds drop. A
    thresholds file is read here, so a bad one is refused before any decoding, and one made for
    another measure is refused too.
    """

    smooth: int = default("smooth")
    threshold: float = default("threshold")
    measure: str = default("measure")
    max_gap: float = default("max_gap")
    min_duration: float = default("min_duration")
    thresholds: str | None = default("thresholds")

    def __post_init__(self) -> None:
        check_fields(self, "events")
        calibrated = None
        if self.thresholds is not None:
            from .thresholds import read_thresholds

            calibrated = read_thresholds(self.thresholds)
            if calibrated.measure != self.measure:
                raise InvalidInputError(
                    f"{self.thresholds}: holds thresholds on {calibrated.measure}, but events are found on "
                    f"{self.measure}; give --measure {calibrated.measure} (events.measure), or calibrate with "
                    f"--measure {self.measure}"
                )
        object.__setattr__(self, "_calibrated", calibrated)  # not a field: it is what `thresholds` names

    @property
    def calibrated(self):
        """The `calibration.Thresholds` read from the `thresholds` file, or None."""
        return self._calibrated

    def threshold_of(self, label: str) -> float:
        """The threshold of `label`: its calibrated one, else the one `threshold`."""
        if self._calibrated is None:
            return self.threshold
        return self._calibrated.thresholds.get(label, self.threshold)

    def described(self, names: list[str]) -> dict:
        """What the events of labels `names` were thresholded with, as results record it:
        {"measure", "threshold", "labels": {label: its own threshold}} ("labels" only for the
        labels of `names` that have their own)."""
        out = {"measure": self.measure, "threshold": self.threshold}
        own = {name: self.threshold_of(name) for name in names if self._calibrated and name in self._calibrated.thresholds}
        return {**out, "labels": own} if own else out


def moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """Centred moving average along axis 0 [W, M]; edges average over the windows that exist.

    A frameless window (NaN: it held no frame) adds nothing to its neighbours' averages and
    stays NaN itself, so smoothing never makes up a value where nothing was seen."""
    if length <= 1:
        return values
    kernel = np.ones(length)
    pad = (length - 1) // 2, length // 2
    seen = ~np.isnan(values)
    everywhere = bool(seen.all())  # nothing frameless: the common case, on the re-labelling path

    def convolved(v: np.ndarray) -> np.ndarray:
        return np.convolve(np.pad(v, pad), kernel, mode="valid")

    sums = np.apply_along_axis(convolved, 0, values if everywhere else np.where(seen, values, 0.0))
    if (seen == seen[:, :1]).all():  # frameless windows are whole rows: one count serves every label
        counts = convolved(seen[:, 0].astype(np.float64))[:, None]
    else:
        counts = np.apply_along_axis(convolved, 0, seen.astype(np.float64))
    if everywhere:
        return sums / counts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen, sums / counts, np.nan)


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
    """Events [{"label", "start", "end", "score", "threshold"}] in time order, from window values [W, M].

    An event's score is the mean smoothed value over its on windows (those that reached
    `threshold`; a bridged gap's windows are left out), so it is never below `threshold`. A
    frameless window (NaN) is never on: an event can bridge it by `max_gap` like any other gap.
    """
    cells = window_cells(spans, duration)
    smoothed = moving_average(np.asarray(values, np.float64), options.smooth)
    events = []
    for m, name in enumerate(names):
        threshold = options.threshold_of(name)
        on = smoothed[:, m] >= threshold
        runs: list[list[int]] = []  # [first window, last window]
        for w in np.flatnonzero(on).tolist():
            if runs and cells[w, 0] - cells[runs[-1][1], 1] <= options.max_gap + 1e-9:
                runs[-1][1] = w
            else:
                runs.append([w, w])
        for first, last in runs:
            start, end = float(cells[first, 0]), float(cells[last, 1])
            if end - start + 1e-9 >= options.min_duration:
                counted = smoothed[first : last + 1, m][on[first : last + 1]]
                # The mean of values >= threshold is >= threshold; `max` keeps rounding from saying otherwise.
                score = max(float(counted.mean()), float(counted.min()))
                events.append({"label": name, "start": start, "end": end, "score": score, "threshold": threshold})
    return sorted(events, key=lambda e: (e["start"], -e["score"]))
