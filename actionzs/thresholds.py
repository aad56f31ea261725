"""The thresholds file: per-label thresholds with the model and measure they hold for.

    model: openai/clip-vit-base-patch32     # as named when calibrated
    fingerprint: 3f2a...                     # the model's weights; another model is refused
    measure: score                           # what the thresholds apply to: score or similarity
    labels: [fall, running, none of these]   # the candidates scored together (a softmax depends on them)
    templates: ["a video of {}."]            # the prompt templates the labels were embedded with
    thresholds: {fall: 0.41, running: 0.37}
    held_out: {fall: {precision: 1.0, recall: 0.8, positives: 5, negatives: 9}, ...}   # for people

Written by `actionzs calibrate`, read (with YAML's safe loader, no aliases) by `EventOptions` and
`actionzs search`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from .errors import InvalidInputError

#: The largest thresholds file read.
THRESHOLDS_BYTES = 2**20
_KEYS = ("model", "fingerprint", "measure", "labels", "templates", "thresholds", "held_out")


@dataclass(frozen=True)
class Thresholds:
    """Per-label thresholds on `measure` ("score" or "similarity") for the model with
    `fingerprint`; `labels` are the candidates they were scored among and `templates` the prompt
    templates their texts were embedded with (empty: not recorded, not checked), `held_out` the
    estimated precision and recall of each, `source` the file they were read from."""

    model: str
    fingerprint: str
    measure: str
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    templates: tuple[str, ...] = ()
    held_out: dict[str, dict] = field(default_factory=dict)
    source: str = "thresholds"

    def to_yaml(self) -> str:
        import yaml

        data = {
            "model": self.model, "fingerprint": self.fingerprint, "measure": self.measure, "labels": list(self.labels),
            **({"templates": list(self.templates)} if self.templates else {}), "thresholds": {k: float(v) for k, v in self.thresholds.items()}, "held_out": self.held_out,
        }
        head = "# per-label thresholds from `actionzs calibrate`; use with --thresholds FILE\n"
        return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def check(self, encoder, names: list[str], templates: tuple[str, ...] | None = None) -> None:
        """Refuse a scoring these thresholds do not hold for: another model than `encoder`, other
        prompt `templates` than those calibrated with, none of `names` calibrated, or, for a
        softmax score (which compares the candidates), other candidates than those calibrated with."""
        if encoder.fingerprint != self.fingerprint:
            raise InvalidInputError(
                f"{self.source}: calibrated with the model {self.model!r} ({self.fingerprint}), not {encoder.name!r} "
                f"({encoder.fingerprint}); calibrate again with this model"
            )
        if templates is not None and self.templates and tuple(templates) != self.templates:
            raise InvalidInputError(
                f"{self.source}: calibrated with the prompt template(s) {' | '.join(self.templates)}, not "
                f"{' | '.join(templates)}; give the same --template, or calibrate again with these"
            )
        if not set(names) & set(self.thresholds):
            raise InvalidInputError(
                f"{self.source}: has thresholds for {', '.join(self.thresholds)}, none of the labels given "
                f"({', '.join(names)})"
            )
        if self.measure == "score" and encoder.head.activation == "softmax" and set(names) != set(self.labels):
            raise InvalidInputError(
                f"{self.source}: its thresholds are on a softmax score over the labels {', '.join(self.labels)}, and a "
                f"softmax over other labels ({', '.join(names)}) is another scale; use those labels, or calibrate with "
                "--measure similarity"
            )


    def kept_moments(self, encoder, queries: list, found: list[list], templates: tuple[str, ...] | None = None) -> list[list]:
        """Search results `found` (per query, its `Moment`s) without the moments of a text query
        named like a calibrated label whose `measure` (a moment's best frame's similarity, or its
        score) is below that label's threshold; other queries' moments are kept. Checked as
        `check` does, on the labels the text queries name."""
        from .prompts import parse_label

        names = [parse_label(q.text).name if q.text is not None else None for q in queries]
        if not any(names):
            raise InvalidInputError(f"{self.source}: thresholds apply to text queries, and none was given")
        self.check(encoder, [name for name in names if name], templates)
        return [
            [m for m in moments if name not in self.thresholds or getattr(m, self.measure) >= self.thresholds[name]]
            for name, moments in zip(names, found)
        ]


def read_thresholds(path: str | os.PathLike) -> Thresholds:
    """The thresholds file at `path`; anything else is an `InvalidInputError` naming it and why."""
    from .config import read_yaml

    path = os.fspath(path)
    data = read_yaml(path, "a thresholds file", THRESHOLDS_BYTES)
    if not isinstance(data, dict) or "thresholds" not in data:
        raise InvalidInputError(f"{path}: not a thresholds file (a mapping with thresholds:, written by `actionzs calibrate`)")
    unknown = set(map(str, data)) - set(_KEYS)
    if unknown:
        raise InvalidInputError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; a thresholds file has {', '.join(_KEYS)}")
    for key in ("model", "fingerprint", "measure"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InvalidInputError(f"{path}: {key} must be a text, got {data.get(key)!r}")
    if data["measure"] not in ("score", "similarity"):
        raise InvalidInputError(f"{path}: measure must be score or similarity, got {data['measure']!r}")
    thresholds = data["thresholds"]
    if not isinstance(thresholds, dict) or not thresholds:
        raise InvalidInputError(f"{path}: thresholds must map each label to a number, got {thresholds!r}")
    for label, value in thresholds.items():
        if not isinstance(label, str):
            raise InvalidInputError(f"{path}: {label!r} is not a label name; quote it (\"{label}\": ...)")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInputError(f"{path}: the threshold of {label!r} must be a number, got {value!r}")
    labels = data.get("labels", list(thresholds))
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise InvalidInputError(f"{path}: labels must be a list of label names, got {labels!r}")
    templates = data.get("templates", [])
    if not isinstance(templates, list) or not all(isinstance(t, str) for t in templates):
        raise InvalidInputError(f"{path}: templates must be a list of prompt templates, got {templates!r}")
    held = data.get("held_out") or {}
    if not isinstance(held, dict):
        raise InvalidInputError(f"{path}: held_out must be a mapping, got {held!r}")
    return Thresholds(
        data["model"], data["fingerprint"], data["measure"], tuple(labels), {k: float(v) for k, v in thresholds.items()},
        tuple(templates), held, source=path,
    )
