"""From examples to thresholds: each example scored as `classify` scores windows, one threshold
fitted per label on the value events are found on, and its held-out precision and recall.

An example's value for a label is the highest smoothed value (`events.measure`, over `smooth`
windows, exactly as `find_events` compares it with the threshold) among the windows of its video
whose centre lies inside the example (the window nearest its middle when none does; every window
for a whole clip), frameless windows (keyframe sampling: no keyframe inside) left out: an example
with no other is not scored. So an example is called on at threshold t exactly when a window
centred in it is on at t: when events at t find the label there (before `min_duration` drops
short ones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..events import moving_average
from .examples import NONE, Example, truth
from .fit import fit_threshold, held_out
from ..thresholds import Thresholds

#: How far past a video's end (seconds) a moment may end: the end of its last frame is not always stated.
END_TOLERANCE_SECONDS = 0.5


@dataclass(frozen=True)
class LabelReport:
    """One label's calibration: its threshold, the examples it was fitted on, its precision and
    recall on them and held out (None when too few examples to hold any out), whether it
    reaches the precision asked for."""

    label: str
    threshold: float
    positives: int
    negatives: int
    precision: float
    recall: float
    held_out_precision: float | None
    held_out_recall: float | None
    folds: int
    reached: bool

    def to_dict(self) -> dict:
        held = {"precision": _rounded(self.held_out_precision), "recall": _rounded(self.held_out_recall), "folds": self.folds}
        return {"positives": self.positives, "negatives": self.negatives, **(held if self.folds else {"folds": 0})}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


#: What scores the examples' videos: (paths, labels) -> (path, VideoResult with segments, or the error) per path.
Scorer = Callable[[list[str], list], Iterable[tuple[str, object]]]


def scorer_of(classifier) -> Scorer:
    """The classifier's scoring of videos, with segments and every label: each video decoded and
    embedded once, the next while this one is encoded."""
    return lambda paths, labels: classifier.classify_each(paths, labels, segments=True, top_k=None)


def example_values(score_videos: Scorer, moments: list[tuple], labels, run) -> tuple[np.ndarray, dict[tuple, str]]:
    """Values [moments, labels] of each moment (path, start, end) for each label (see the
    module's text), NaN for moments that failed, and why each failed; each video is scored once
    by `score_videos` (`scorer_of(classifier)`, or a library's `classify` of its stored frames)."""
    paths = list(dict.fromkeys(m[0] for m in moments))
    values = np.full((len(moments), len(labels)), np.nan)
    failed: dict[tuple, str] = {}
    for path, outcome in score_videos(paths, labels):
        mine = [k for k, m in enumerate(moments) if m[0] == path]
        if isinstance(outcome, Exception):
            reason = getattr(outcome, "reason", None) or str(outcome)
            failed.update({moments[k]: reason for k in mine})
            continue
        window = outcome.window_similarity if run.events.measure == "similarity" else outcome.window_scores
        smoothed = moving_average(np.asarray(window, np.float64), run.events.smooth)
        centres = outcome.window_spans.mean(axis=1)
        for k in mine:
            _, start, end = moments[k]
            if start is None:
                chosen = np.ones(len(centres), bool)
            elif start >= outcome.duration or end > outcome.duration + END_TOLERANCE_SECONDS:
                failed[moments[k]] = f"the moment {start:g}-{end:g} s is not inside the video ({outcome.duration:.3f} s)"
                continue
            else:
                chosen = (centres >= start) & (centres <= end)
                if not chosen.any():
                    chosen[np.argmin(np.abs(centres - (start + end) / 2))] = True
            chosen &= ~outcome.frameless
            if not chosen.any():
                where = "the video" if start is None else f"the moment {start:g}-{end:g} s"
                failed[moments[k]] = (f"no frame was sampled inside {where} (no keyframe there); sample at a rate "
                                      "(--no-keyframes) or use a longer --window")
                continue
            values[k] = smoothed[chosen].max(axis=0)
    return values, failed


def calibrate(classifier, examples: list[Example], labels, run, *, background=(), precision: float | None = None,
              folds: int | None = None, score_videos: Scorer | None = None) -> tuple[Thresholds, list[LabelReport], dict[tuple, str]]:
    """Thresholds for `labels` (the `Label`s calibrated, each the label of some examples), scored
    by `classifier` (or `score_videos`, e.g. from a library's stored frames, with its encoder)
    among `labels` plus `background` (labels for "none of these": they compete in a softmax and
    get no threshold) under `run`'s sampling and events options; each label's report; the moments
    that failed, and why (the others are calibrated without them)."""
    from .fit import MAX_FOLDS

    names = [label.name for label in labels]
    extra = [label.name for label in background]
    known = set(names) | {NONE}
    unknown = sorted({e.label for e in examples} - known)
    if unknown:
        raise InvalidInputError(
            f"examples of unknown label(s) {', '.join(map(repr, unknown))}; the labels are {', '.join(names)} "
            f"(and {NONE!r} for none of them)"
        )
    clash = sorted(set(names) & set(extra))
    if clash or NONE in extra:
        raise InvalidInputError(f"background label(s) {', '.join(clash or [NONE])} clash with the labels calibrated")
    moments, roles = truth(examples, names)
    candidates = [*labels, *background]
    values, failed = example_values(score_videos or scorer_of(classifier), moments, candidates, run)
    ok = ~np.isnan(values[:, 0])
    if failed:  # the moments that failed drop out; each label must still have both kinds of example
        kept = [e for e in examples if e.moment not in failed]
        if not kept:
            raise InvalidInputError("no example could be scored")
        try:
            truth(kept, names)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (once the {len(failed)} that failed are left out)") from None
    thresholds, reports = {}, []
    for m, name in enumerate(names):
        used = ok & (roles[name] >= 0)
        v, positive = values[used, m], roles[name][used] == 1
        fitted = fit_threshold(v, positive, precision)
        estimate = held_out(v, positive, precision, folds or MAX_FOLDS)
        thresholds[name] = fitted.threshold
        reports.append(LabelReport(
            name, fitted.threshold, int(positive.sum()), int((~positive).sum()), fitted.precision, fitted.recall,
            estimate and estimate.precision, estimate and estimate.recall, estimate.folds if estimate else 0, fitted.reached,
        ))
    encoder = classifier.encoder
    made = Thresholds(
        encoder.name, encoder.fingerprint, run.events.measure, tuple(names + extra), thresholds,
        tuple(run.hypothesis_template), {r.label: r.to_dict() for r in reports},
    )
    return made, reports, failed
