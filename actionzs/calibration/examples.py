"""Labelled examples to calibrate from: which clips or moments show a label, and which do not.

Three spellings, all giving `Example`s:

- a CSV file with the header `path,label,start,end,positive`: `start`/`end` in seconds give a
  moment (both empty: the whole clip), `positive` is 1 (or empty, true, yes) or 0 (false, no);
  `start`, `end` and `positive` columns may be left out;
- a YAML file holding a list of mappings with those keys;
- a folder with a sub-folder per label holding its positive clips, and optionally
  `<label>/negatives/` with clips where it does not happen.

Paths are relative to the examples file (or folder). The label `none` marks a clip where none of
the labels happens (a sub-folder `none/` too): a negative for every label. A positive of one label
is a negative of the others, unless it is listed as a positive of them too; a negative (positive
0) counts for its own label only.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

#: The label of examples where none of the labels happens.
NONE = "none"
#: The largest examples file read.
EXAMPLES_BYTES = 16 * 2**20
_COLUMNS = ("path", "label", "start", "end", "positive")
_TRUE, _FALSE = {"", "1", "true", "yes", "y"}, {"0", "false", "no", "n"}


@dataclass(frozen=True)
class Example:
    """A clip, or the moment [start_seconds, end_seconds) of one, that shows `label` (`positive`)
    or does not; `where` says where it was given, for messages."""

    path: str
    label: str
    positive: bool = True
    start_seconds: float | None = None
    end_seconds: float | None = None
    where: str = ""

    @property
    def moment(self) -> tuple[str, float | None, float | None]:
        return (self.path, self.start_seconds, self.end_seconds)


def read_examples(source: str | os.PathLike) -> list[Example]:
    """The examples of a CSV or YAML file or of a folder (see the module's text), each naming an
    existing file; anything else is an `InvalidInputError` naming the file (and line) and why."""
    source = Path(source)
    if source.is_dir():
        examples = _from_folder(source)
    elif not source.exists():
        raise InvalidInputError(f"{source}: no such examples file or folder")
    elif source.suffix.lower() == ".csv":
        examples = _from_csv(source)
    elif source.suffix.lower() in (".yaml", ".yml"):
        examples = _from_yaml(source)
    else:
        raise InvalidInputError(f"{source}: examples must be a .csv or .yaml file or a folder of <label>/ folders")
    if not examples:
        raise InvalidInputError(f"{source}: holds no examples")
    for example in examples:
        if not os.path.isfile(example.path):
            raise InvalidInputError(f"{example.where}: {example.path}: no such file")
    return examples


def _from_folder(folder: Path) -> list[Example]:
    from ..scan import find_videos

    examples = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        negatives = sub / "negatives"
        held = set(find_videos([str(negatives)], images=True)[0]) if negatives.is_dir() else set()
        for path in find_videos([str(sub)], images=True)[0]:
            negative = path in held
            examples.append(Example(path, sub.name, sub.name == NONE or not negative, where=path))
    return examples


def _from_csv(path: Path) -> list[Example]:
    from ..textfile import read_text_file

    rows = csv.DictReader(io.StringIO(read_text_file(path, "an examples file", EXAMPLES_BYTES)))
    header = [name.strip() for name in rows.fieldnames or []]
    if "path" not in header or "label" not in header:
        raise InvalidInputError(f"{path}: the first line must name the columns, at least path,label (of {','.join(_COLUMNS)})")
    unknown = set(header) - set(_COLUMNS)
    if unknown:
        raise InvalidInputError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; the columns are {','.join(_COLUMNS)}")
    rows.fieldnames = header
    return [_example(path, f"{path} line {rows.line_num}", row) for row in rows if any((v or "").strip() for v in row.values())]


def _from_yaml(path: Path) -> list[Example]:
    from ..config import read_yaml

    data = read_yaml(path, "an examples file", EXAMPLES_BYTES)
    if not isinstance(data, list):
        raise InvalidInputError(f"{path}: examples must be a list of mappings with {', '.join(_COLUMNS)}")
    examples = []
    for number, item in enumerate(data, 1):
        where = f"{path} example {number}"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{where}: must be a mapping with {', '.join(_COLUMNS)}, got {item!r}")
        unknown = set(map(str, item)) - set(_COLUMNS)
        if unknown:
            raise InvalidInputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; the keys are {', '.join(_COLUMNS)}")
        examples.append(_example(path, where, {k: "" if v is None else str(v) for k, v in item.items()}))
    return examples


def _example(source: Path, where: str, row: dict) -> Example:
    """One example from a row of text fields (a missing field is empty)."""
    field = {name: (row.get(name) or "").strip() for name in _COLUMNS}
    if not field["path"] or not field["label"]:
        raise InvalidInputError(f"{where}: needs a path and a label")
    if field["positive"].lower() not in _TRUE | _FALSE:
        raise InvalidInputError(f"{where}: positive must be 1 or 0, got {field['positive']!r}")
    start, end = (_seconds(where, name, field[name]) for name in ("start", "end"))
    if (start is None) != (end is None):
        raise InvalidInputError(f"{where}: give both start and end (a moment), or neither (the whole clip)")
    if start is not None and not end > start:
        raise InvalidInputError(f"{where}: end ({end:g} s) must be after start ({start:g} s)")
    path = Path(field["path"]).expanduser()
    path = path if path.is_absolute() else source.parent / path
    positive = field["positive"].lower() in _TRUE
    return Example(os.fspath(path), field["label"], positive, start, end, where)


def _seconds(where: str, name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InvalidInputError(f"{where}: {name} must be a number of seconds >= 0, got {text!r}")
    return value


def truth(examples: list[Example], labels: list[str]) -> tuple[list[tuple], dict[str, np.ndarray]]:
    """The distinct moments of `examples`, and per label of `labels` each moment's role: 1 a
    positive, 0 a negative, -1 not an example of it (see the module's text). A label without a
    positive or a negative, or a moment both, is an `InvalidInputError`."""
    moments = list(dict.fromkeys(e.moment for e in examples))
    position = {m: k for k, m in enumerate(moments)}
    roles = {}
    for label in labels:
        role = np.full(len(moments), -1, np.int8)
        for e in examples:  # negatives of every label: none, and the positives of other labels
            if e.label == NONE or (e.label != label and e.positive):
                role[position[e.moment]] = 0
        mine = [e for e in examples if e.label == label]
        shown = {e.moment for e in mine if e.positive}
        for e in mine:
            if not e.positive and e.moment in shown:
                raise InvalidInputError(f"{e.where}: this {_named(e)} is both a positive and a negative of {label!r}")
        for e in mine:
            role[position[e.moment]] = 1 if e.positive else 0
        if not (role == 1).any():
            raise InvalidInputError(f"label {label!r} has no positive examples: add clips or moments that show it")
        if not (role == 0).any():
            raise InvalidInputError(
                f"label {label!r} has no negative examples: add clips where it does not happen (positive 0, the label "
                f"{NONE!r}, or examples of other labels)"
            )
        roles[label] = role
    return moments, roles


def _named(example: Example) -> str:
    if example.start_seconds is None:
        return "clip"
    return f"moment ({example.start_seconds:g}-{example.end_seconds:g} s)"
