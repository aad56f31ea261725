"""Evaluating trimmed clips: embed each clip once, score every prompt variant from the embeddings,
and measure top-1, top-5, mean class accuracy, per-class accuracy and the confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..errors import ActionzsError
from . import metrics
from .ablation import Variant, labels_for, variants as prompt_variants
from .datasets import Dataset
from .embedded import embeddings_of, failure_record


def evaluate_clips(classifier, dataset: Dataset, templates: tuple[str, ...], descriptions: dict[str, str] | None = None, *,
                   index: str | None = None, store: str | None = None,
                   on_failure: Callable[[str, Exception], dict] = failure_record) -> dict:
    """The trimmed-clip metrics of `dataset` under each prompt variant of `templates` (and
    `descriptions`, {class: description}), each clip embedded once with the classifier's options
    (from the library `index`, or kept in the folder `store`). A clip that fails is recorded by
    `on_failure` (default: its error) under "failures" and left out. The classifier's progress
    hook sees each clip as it is embedded."""
    descriptions = descriptions or {}
    variants = prompt_variants(tuple(templates), bool(descriptions))
    failures: list[dict] = []
    embedded = embeddings_of(classifier, [path for path, _ in dataset.clips], index, store,
                             labels=labels_for(dataset.classes, {}, variants[0]))
    videos, scores = similarities(classifier, embedded, dataset.classes, variants, descriptions,
                                  lambda video, exc: failures.append(on_failure(video, exc)))
    if not videos:
        raise ActionzsError(f"none of the {len(dataset.clips)} clips could be evaluated"
                            + (f" ({failures[0]['video']}: {failures[0]['error']})" if failures else ""))
    return {**report(dataset, videos, scores, variants), "failures": failures}


def similarities(classifier, embedded: Iterable[tuple[str, object]], classes: list[str], variants: list[Variant],
                 descriptions: dict[str, str], on_failure: Callable[[str, Exception], None]) -> tuple[list[str], np.ndarray]:
    """(videos scored, cosine similarities [variants, videos, classes]): each video's features are
    made once, then each variant costs one product with its label vectors. A video that failed is
    passed to `on_failure` and left out."""
    encoder, run = classifier.encoder, classifier.options
    texts = [classifier.texts.embed_labels(labels_for(classes, descriptions, v), v.templates) for v in variants]
    videos, rows = [], []
    for video, embeddings in embedded:
        if isinstance(embeddings, Exception):
            on_failure(video, embeddings)
            continue
        try:
            features = encoder.features(embeddings, run)
            rows.append(np.stack([encoder.similarity(features, text)[0].numpy() for text in texts]))
        except Exception as exc:  # this video's failure; the others go on
            on_failure(video, exc)
            continue
        videos.append(video)
    shape = (len(variants), 0, len(classes))
    return videos, np.stack(rows, axis=1) if rows else np.zeros(shape, np.float32)


def report(dataset: Dataset, videos: list[str], scores: np.ndarray, variants: list[Variant]) -> dict:
    """The metrics of the headline (last) variant, the ablation table over all variants, and each
    clip's prediction. Scores rank as the model's probabilities do (the head is monotone in the cosine)."""
    truth_of = dict(dataset.clips)
    truth = np.array([truth_of[v] for v in videos], dtype=np.int64)
    classes = dataset.classes
    ablation = [{"variant": v.name, "templates": list(v.templates), "descriptions": v.descriptions,
                 **metrics.summary(s, truth)} for v, s in zip(variants, scores)]
    headline = scores[-1]
    predicted = metrics.predictions(headline)
    confusion = metrics.confusion_matrix(truth, predicted, len(classes))
    accuracy = metrics.per_class_accuracy(confusion)
    ranks = metrics.ranks(headline, truth)
    return {
        "variant": variants[-1].name,
        **{k: ablation[-1][k] for k in ("top1", "top5", "mean_class_accuracy")},
        "clips": len(videos),
        "classes": classes,
        "per_class": [{"class": c, "clips": int(confusion[k].sum()), "accuracy": _number(accuracy[k])}
                      for k, c in enumerate(classes)],
        "confusion": confusion.tolist(),
        "most_confused": most_confused(confusion, classes),
        "ablation": ablation,
        "predictions": [{"video": v, "class": classes[t], "predicted": classes[p], "rank": int(r) + 1}
                        for v, t, p, r in zip(videos, truth, predicted, ranks)],
    }


def most_confused(confusion: np.ndarray, classes: list[str], count: int = 10) -> list[dict]:
    """The `count` most frequent mistakes, {"class", "predicted", "clips"}, most clips first (then
    in class order): which classes the prompts fail to separate."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:count]
    pairs = [np.unravel_index(k, off.shape) for k in order]
    return [{"class": classes[t], "predicted": classes[p], "clips": int(off[t, p])} for t, p in pairs if off[t, p] > 0]


def _number(value: float) -> float | None:
    """A float for JSON: NaN (no clips) as null."""
    return None if np.isnan(value) else float(value)
