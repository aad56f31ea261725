"""Calibration: per-label thresholds fitted from a few labelled examples (`actionzs calibrate`).

Raw CLIP scores drift and cluster, so no one threshold suits every label. From examples of each
label (clips or moments, positive and negative, see `examples`), each is scored as `classify`
scores windows, a threshold per label is fitted (`fit`) on the very value events are found on,
its precision and recall estimated on examples held out of the fit, and the thresholds written to
a file (`actionzs.thresholds`) that `classify`, `scan`, `report` and `search` take with `--thresholds`.
"""

from .examples import Example, read_examples
from .calibrate import LabelReport, calibrate, example_values
from .fit import Fitted, HeldOut, fit_threshold, held_out
from ..thresholds import Thresholds, read_thresholds

__all__ = [
    "Example", "Fitted", "HeldOut", "LabelReport", "Thresholds", "calibrate", "example_values", "fit_threshold", "held_out",
    "read_examples", "read_thresholds",
]
