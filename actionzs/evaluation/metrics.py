"""Accuracy of trimmed-clip classification, from a score matrix [clips, classes] and the true class
of each clip: top-k accuracy, per-class and mean class accuracy, the confusion matrix."""

from __future__ import annotations

import numpy as np


def ranks(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The rank (0 = best) of each clip's true class among its scores [N, C], ties broken as
    `predictions` breaks them (the first class wins), so top-1 and the confusion matrix agree."""
    true_scores = scores[np.arange(len(truth)), truth][:, None]
    before = np.arange(scores.shape[1])[None, :] < truth[:, None]
    return (scores > true_scores).sum(axis=1) + ((scores == true_scores) & before).sum(axis=1)


def top_k_accuracy(scores: np.ndarray, truth: np.ndarray, k: int) -> float:
    """The fraction of clips whose true class is among their `k` best-scored."""
    if len(truth) == 0:
        return float("nan")
    return float(np.mean(ranks(scores, truth) < k))


def predictions(scores: np.ndarray) -> np.ndarray:
    """Each clip's best-scored class (the first of a tie)."""
    return scores.argmax(axis=1)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[t, p]: clips of true class t predicted as p."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (truth, predicted), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class: the diagonal over the row sums (NaN for a class with no clips)."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def mean_class_accuracy(confusion: np.ndarray) -> float:
    """The mean of the per-class accuracies over the classes that have clips: each class counts the
    same however many clips it has (UCF101's and HMDB51's second headline figure)."""
    accuracy = per_class_accuracy(confusion)
    present = ~np.isnan(accuracy)
    return float(accuracy[present].mean()) if present.any() else float("nan")


def summary(scores: np.ndarray, truth: np.ndarray, top: tuple[int, ...] = (1, 5)) -> dict:
    """top-k accuracies (k capped at the number of classes) and mean class accuracy."""
    confusion = confusion_matrix(truth, predictions(scores), scores.shape[1])
    out = {f"top{k}": top_k_accuracy(scores, truth, min(k, scores.shape[1])) for k in top}
    out["mean_class_accuracy"] = mean_class_accuracy(confusion)
    return out
