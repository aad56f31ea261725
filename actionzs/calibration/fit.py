"""Fitting one label's threshold from the values of its positive and negative examples, and
estimating how it does on examples it was not fitted on.

A threshold `t` calls an example on when its value is >= t. The candidates are the midpoints
between neighbouring distinct values (and the lowest value, everything on), so a threshold
between two clusters lies halfway between them: on examples a threshold separates, the one
found is the middle of the widest gap it can lie in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Folds of the held-out estimate at most; fewer when a label has fewer positives or negatives.
MAX_FOLDS = 5


@dataclass(frozen=True)
class Fitted:
    """A fitted threshold, its precision and recall on the examples it was fitted on, and whether
    it reaches the precision asked for (always True when none was)."""

    threshold: float
    precision: float
    recall: float
    reached: bool = True


def _counts(values: np.ndarray, positive: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives [C] of each candidate threshold."""
    on = values[None, :] >= candidates[:, None]
    return (on & positive).sum(axis=1), (on & ~positive).sum(axis=1)


def fit_threshold(values, positive, precision: float | None = None) -> Fitted:
    """The threshold on `values` [N] that best separates the examples where `positive` [N] is
    true: the one of highest F1 (ties: higher precision, then the lower threshold), or with
    `precision`, the lowest one whose precision reaches it (the most recall at that precision; if
    none reaches it, the one of highest precision, `reached` False). Needs at least one positive
    and one negative."""
    values = np.asarray(values, np.float64)
    positive = np.asarray(positive, bool)
    if not positive.any() or positive.all():
        raise ValueError("fitting a threshold needs positive and negative examples")
    distinct = np.unique(values)
    candidates = np.concatenate([distinct[:1], (distinct[1:] + distinct[:-1]) / 2])
    tp, fp = _counts(values, positive, candidates)
    called = np.maximum(tp + fp, 1)
    precisions = np.where(tp + fp > 0, tp / called, 0.0)
    recalls = tp / positive.sum()
    if precision is None:
        f1 = np.where(tp > 0, 2 * tp / (2 * tp + fp + (positive.sum() - tp)), 0.0)
        best = np.lexsort((candidates, -precisions, -f1))[0]
        reached = True
    else:
        good = np.flatnonzero(precisions >= precision - 1e-12)
        reached = len(good) > 0
        best = good[0] if reached else np.lexsort((-recalls, -precisions))[0]
    return Fitted(float(candidates[best]), float(precisions[best]), float(recalls[best]), reached)


@dataclass(frozen=True)
class HeldOut:
    """Precision and recall of thresholds fitted without the examples they are tried on, over
    `folds` folds (each example held out once); precision is None when no held-out example was
    called on."""

    precision: float | None
    recall: float
    folds: int


def held_out(values, positive, precision: float | None = None, folds: int = MAX_FOLDS, seed: int = 0) -> HeldOut | None:
    """Stratified k-fold estimate: each fold's examples judged by the threshold fitted on the
    others; k is `folds` at most and the count of positives or of negatives at least. None when a
    label has a single positive or negative (nothing can be held out)."""
    values = np.asarray(values, np.float64)
    positive = np.asarray(positive, bool)
    k = min(folds, int(positive.sum()), int((~positive).sum()))
    if k < 2:
        return None
    rng = np.random.default_rng(seed)
    fold = np.empty(len(values), int)
    for group in (np.flatnonzero(positive), np.flatnonzero(~positive)):
        fold[rng.permutation(group)] = np.arange(len(group)) % k
    called = np.zeros(len(values), bool)
    for f in range(k):
        train = fold != f
        fitted = fit_threshold(values[train], positive[train], precision)
        called[~train] = values[~train] >= fitted.threshold
    tp = int((called & positive).sum())
    calls = int(called.sum())
    return HeldOut(tp / calls if calls else None, tp / int(positive.sum()), k)
