"""Temporal detection metrics for untrimmed video: average precision at a temporal IoU (tIoU), mAP
over classes and thresholds (the THUMOS14 protocol: tIoU 0.3 to 0.7), and event-level precision,
recall and F1.

Matching follows ActivityNet's `compute_average_precision_detection` (also used for THUMOS14 by
most published detectors): a class's detections are taken best score first; each is a true
positive when some ground-truth instance of that class in the same video, not matched yet, overlaps
it by at least the threshold (the most-overlapping such instance is taken), else a false positive,
so a duplicate detection of an instance already found is a false positive. AP is the area under
the interpolated precision-recall curve (VOC 2011's `interpolated_prec_rec`); mAP averages the
classes that have ground truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: The THUMOS14 thresholds.
THUMOS_TIOUS = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class Instance:
    """An action instance in a video: ground truth (score None) or a detection."""

    video: str
    label: str
    start_seconds: float
    end_seconds: float
    score: float | None = None


def tiou(start: float, end: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Temporal IoU of [start, end] with each of [starts, ends]: overlap over union."""
    overlap = np.clip(np.minimum(end, ends) - np.maximum(start, starts), 0.0, None)
    union = (end - start) + (ends - starts) - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap, dtype=float), where=union > 0)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the precision-recall curve with precision made monotone from the right (VOC 2011)."""
    mprecision = np.concatenate([[0.0], precision, [0.0]])
    mrecall = np.concatenate([[0.0], recall, [1.0]])
    mprecision = np.maximum.accumulate(mprecision[::-1])[::-1]
    steps = np.flatnonzero(mrecall[1:] != mrecall[:-1]) + 1
    return float(np.sum((mrecall[steps] - mrecall[steps - 1]) * mprecision[steps]))


def by_score(detections: Iterable[Instance]) -> list[Instance]:
    """Best score first; equal scores keep their given order."""
    return sorted(detections, key=lambda d: -d.score)


def matches(detections: Sequence[Instance], truth: Sequence[Instance], threshold: float) -> np.ndarray:
    """Whether each detection (in `by_score` order, one class) is a true positive at `threshold`."""
    by_video: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for video in {t.video for t in truth}:
        mine = [t for t in truth if t.video == video]
        by_video[video] = (np.array([t.start_seconds for t in mine]), np.array([t.end_seconds for t in mine]),
                           np.zeros(len(mine), dtype=bool))
    hits = np.zeros(len(detections), dtype=bool)
    for k, detection in enumerate(detections):
        if detection.video not in by_video:
            continue
        starts, ends, taken = by_video[detection.video]
        overlaps = tiou(detection.start_seconds, detection.end_seconds, starts, ends)
        for j in np.argsort(-overlaps, kind="stable"):
            if overlaps[j] < threshold:
                break
            if not taken[j]:
                taken[j] = hits[k] = True
                break
    return hits


def average_precision(detections: Sequence[Instance], truth: Sequence[Instance], threshold: float) -> float:
    """One class's AP at `threshold`; 0 when it has ground truth and no detection, NaN with no ground truth."""
    if not truth:
        return float("nan")
    if not detections:
        return 0.0
    hits = matches(by_score(detections), truth, threshold)
    true_positives = np.cumsum(hits)
    precision = true_positives / np.arange(1, len(hits) + 1)
    return interpolated_ap(precision, true_positives / len(truth))


def _by_label(instances: Iterable[Instance]) -> dict[str, list[Instance]]:
    grouped: dict[str, list[Instance]] = {}
    for instance in instances:
        grouped.setdefault(instance.label, []).append(instance)
    return grouped


def mean_average_precision(detections: Iterable[Instance], truth: Iterable[Instance],
                           thresholds: Sequence[float] = THUMOS_TIOUS) -> dict:
    """{"thresholds", "map" (one per threshold), "average_map", "per_class" {label: [AP per
    threshold]}, "classes_without_truth"}: mAP over the classes with ground truth; detections of
    other classes are counted apart (they cannot be scored)."""
    found, wanted = _by_label(detections), _by_label(truth)
    per_class = {label: [average_precision(found.get(label, []), wanted[label], t) for t in thresholds]
                 for label in sorted(wanted)}
    table = np.array(list(per_class.values())) if per_class else np.zeros((0, len(thresholds)))
    means = table.mean(axis=0) if len(table) else np.full(len(thresholds), np.nan)
    return {
        "thresholds": list(thresholds),
        "map": [float(v) for v in means],
        "average_map": float(means.mean()),
        "per_class": per_class,
        "classes_without_truth": sorted(set(found) - set(wanted)),
    }


def event_scores(detections: Iterable[Instance], truth: Iterable[Instance], threshold: float) -> dict:
    """Event-level precision, recall and F1 at one tIoU: detections matched to ground truth of
    their class as for AP (best score first, each instance once), counted over all classes."""
    found, wanted = _by_label(detections), _by_label(truth)
    hits = sum(int(matches(by_score(found[label]), wanted.get(label, []), threshold).sum()) for label in found)
    detected = sum(len(v) for v in found.values())
    total = sum(len(v) for v in wanted.values())
    precision = hits / detected if detected else 0.0
    recall = hits / total if total else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if total and precision + recall > 0 else 0.0
    return {"tiou": threshold, "true_positives": hits, "detections": detected, "ground_truth": total,
            "precision": precision, "recall": recall, "f1": f1}
