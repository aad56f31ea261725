"""Evaluating untrimmed videos against temporal annotations: each video embedded once, its windows
scored for every prompt variant, the events found (`actionzs.events`, with the run's event
settings) taken as detections scored by the event's score, and measured by temporal mAP."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from ..errors import ActionzsError
from ..prompts import Label
from . import temporal
from .ablation import Variant, labels_for, variants as prompt_variants
from .datasets import class_words, letters
from .embedded import embeddings_of, failure_record
from .temporal import THUMOS_TIOUS, Instance


def evaluate_videos(classifier, truth: list[Instance], video_of: dict[str, str], labels: list[Label],
                    templates: tuple[str, ...], descriptions: dict[str, str] | None = None, *,
                    thresholds: tuple[float, ...] = THUMOS_TIOUS, event_tiou: float = 0.5,
                    index: str | None = None, store: str | None = None,
                    on_failure: Callable[[str, Exception], dict] = failure_record) -> dict:
    """Temporal metrics of the videos `video_of` ({file: its name in `truth`}, see `names_of` and
    `filed`) against `truth`, with `labels` as candidates, under each prompt variant of
    `templates` (and descriptions: `descriptions`, or the labels' own). The classifier's options
    must have segments on; its event settings make the detections. Each video is embedded once
    (from `index`, or kept in `store`); one that fails is recorded by `on_failure` under
    "failures", and its ground truth left out."""
    descriptions = descriptions or {}
    variants = prompt_variants(tuple(templates), bool(descriptions) or any(label.description for label in labels))
    failures: list[dict] = []
    paths = sorted(video_of)
    embedded = embeddings_of(classifier, paths, index, store, labels=labels)
    scored, found = detections(classifier, embedded, video_of, labels, variants, descriptions,
                               lambda video, exc: failures.append(on_failure(video, exc)))
    evaluated = {video_of[p] for p in scored}
    truth = [i for i in truth if i.video in evaluated]
    if not truth:
        raise ActionzsError("no video with ground truth could be evaluated"
                            + (f" ({failures[0]['video']}: {failures[0]['error']})" if failures else ""))
    return {"videos": len(scored), "candidates": [label.name for label in labels],
            **report(truth, found, variants, thresholds, event_tiou), "failures": failures}


def match_videos(found: list[str], root: str, instances: list[Instance]) -> tuple[dict[str, str], list[str]]:
    """({annotated video: file}, problems): an annotation names a file by its path relative to
    `root` or by its name, with or without the extension (THUMOS names `video_test_0000004`).
    Annotated videos with no file are problems (their instances are left out)."""
    names: dict[str, str] = {}
    for path in found:
        relative = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
        for name in (relative, os.path.splitext(relative)[0], Path(path).name, Path(path).stem):
            names.setdefault(name.replace(os.sep, "/"), path)
    files, problems = {}, []
    for video in sorted({i.video for i in instances}):
        path = names.get(video.replace("\\", "/"))
        if path is None:
            count = sum(i.video == video for i in instances)
            problems.append(f"annotations name video {video!r} ({count} instances), which is not in {root}; left out")
        else:
            files[video] = path
    return files, problems


def names_of(found: list[str], root: str, video_files: dict[str, str]) -> dict[str, str]:
    """{file: the name its detections are filed under}: the annotations' name for an annotated
    file, else its path under `root` (a video with no actions to find; the extension kept, so it
    cannot take an annotated video's name)."""
    names: dict[str, str] = {}
    for video, path in sorted(video_files.items()):  # a file annotated under two names is filed under the first
        names.setdefault(path, video)
    for path in found:
        if path not in names:
            relative = os.path.relpath(path, root) if os.path.isdir(root) else os.path.basename(path)
            names[path] = relative.replace(os.sep, "/")
    return names


def filed(instances: list[Instance], video_files: dict[str, str], video_of: dict[str, str]) -> list[Instance]:
    """The instances of videos that are there, each under its file's name (`names_of`)."""
    return [replace(i, video=video_of[video_files[i.video]]) for i in instances if i.video in video_files]


def candidates(instances: list[Instance], given: list[Label] | None) -> tuple[list[Label], list[Instance], list[str]]:
    """(candidate labels, instances relabelled with their names, problems). Without `given`, the
    annotations' labels as words ("BaseballPitch" -> "Baseball Pitch"); with it, each annotation
    label is matched to a candidate by its letters and digits, and labels that are no candidate are
    problems (their instances are left out: nothing could detect them)."""
    if given is None:
        names = {i.label: class_words(i.label) for i in instances}
        given = [Label(n) for n in sorted(set(names.values()))]
    else:
        by_key = {letters(label.name): label.name for label in given}
        names = {i.label: by_key.get(letters(i.label)) for i in instances}
    problems = [f"annotation label {label!r} ({sum(i.label == label for i in instances)} instances) is not a "
                f"candidate label; left out" for label, name in sorted(names.items()) if name is None]
    kept = [replace(i, label=names[i.label]) for i in instances if names[i.label] is not None]
    return given, kept, problems


def detections(classifier, embedded: Iterable[tuple[str, object]], video_of: dict[str, str], labels: list[Label],
               variants: list[Variant], descriptions: dict[str, str],
               on_failure: Callable[[str, Exception], None]) -> tuple[list[str], list[list[Instance]]]:
    """(videos scored, detections per variant): each video's events under each variant, named by
    the annotation's video name and scored by the event's score."""
    run = classifier.options
    classes = [label.name for label in labels]
    own = {label.name: label.description for label in labels if label.description}
    prompts = [(labels_for(classes, {**own, **descriptions} if v.descriptions else {}, v),
                run.updated(hypothesis_template=v.templates)) for v in variants]
    scored, found = [], [[] for _ in variants]
    for path, embeddings in embedded:
        if isinstance(embeddings, Exception):
            on_failure(path, embeddings)
            continue
        try:
            events = [classifier.score(embeddings, variant_labels, variant_run).events
                      for variant_labels, variant_run in prompts]
        except Exception as exc:  # this video's failure; the others go on
            on_failure(path, exc)
            continue
        scored.append(path)
        for into, video_events in zip(found, events):
            into += [Instance(video_of[path], e["label"], e["start"], e["end"], e["score"]) for e in video_events]
    return scored, found


def report(truth: list[Instance], found: list[list[Instance]], variants: list[Variant],
           thresholds: tuple[float, ...], event_tiou: float) -> dict:
    """mAP at each threshold and their average, per-class AP and event-level precision, recall and
    F1 of the headline (last) variant; average mAP of every variant (the ablation)."""
    results = [temporal.mean_average_precision(f, truth, thresholds) for f in found]
    headline = results[-1]
    return {
        "variant": variants[-1].name,
        "thresholds": list(thresholds),
        "map": headline["map"],
        "average_map": headline["average_map"],
        "per_class": headline["per_class"],
        "events": temporal.event_scores(found[-1], truth, event_tiou),
        "detections": len(found[-1]),
        "ground_truth": len(truth),
        "ablation": [{"variant": v.name, "templates": list(v.templates), "descriptions": v.descriptions,
                      "map": r["map"], "average_map": r["average_map"]} for v, r in zip(variants, results)],
    }
