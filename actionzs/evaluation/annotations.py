"""Ground truth of untrimmed videos: which action happens when, read from THUMOS-style files or a
simple CSV.

- THUMOS-style: a folder of `<Class>_<set>.txt` files (or one such file), each line
  `video_name start_seconds end_seconds`; the class is the file name's part before the last `_`
  (`BaseballPitch_test.txt` -> "BaseballPitch"). `Ambiguous_*` files mark stretches THUMOS14 does
  not score: they are left out.
- CSV: `video,label,start,end` rows (a header line with those names is allowed), times in seconds.

Lines that cannot be used (not numbers, an end not after its start, negative times) are problems:
reported, skipped, the rest read. Overlapping instances of one label in one video are kept (each is
one to find) and noted, since they are often a slip.
"""

from __future__ import annotations

import csv
import glob
import io
import math
import os
from pathlib import Path

from ..errors import InvalidInputError
from ..textfile import read_text_file
from .datasets import LIST_FILE_BYTES
from .temporal import Instance


def _instance(where: str, video: str, label: str, start: str, end: str, problems: list[str]) -> Instance | None:
    try:
        start_seconds, end_seconds = float(start), float(end)
    except ValueError:
        problems.append(f"{where}: start and end must be numbers of seconds, got {start!r}, {end!r}; skipped")
        return None
    if not (math.isfinite(start_seconds) and math.isfinite(end_seconds)) or start_seconds < 0:
        problems.append(f"{where}: times must be finite and not negative, got {start!r}, {end!r}; skipped")
        return None
    if end_seconds <= start_seconds:
        problems.append(f"{where}: the interval {start_seconds:g}-{end_seconds:g} s ends before it starts; skipped")
        return None
    return Instance(video, label, start_seconds, end_seconds)


def _thumos_file(path: str, problems: list[str]) -> list[Instance]:
    label = os.path.basename(path).rsplit(".", 1)[0].rpartition("_")[0]
    if not label:
        raise InvalidInputError(f"{path}: not a THUMOS annotation file name (<Class>_<set>.txt)")
    instances = []
    text = read_text_file(path, "annotation file", LIST_FILE_BYTES)
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 3:
            problems.append(f"{path}:{number}: not 'video start end'; skipped")
            continue
        found = _instance(f"{path}:{number}", parts[0], label, parts[1], parts[2], problems)
        if found:
            instances.append(found)
    return instances


def _csv_file(path: str, problems: list[str]) -> list[Instance]:
    text = read_text_file(path, "annotation file", LIST_FILE_BYTES)
    instances = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not "".join(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and [c.lower() for c in cells] == ["video", "label", "start", "end"]:
            continue
        if len(cells) != 4 or not cells[0] or not cells[1]:
            problems.append(f"{path}:{number}: not 'video,label,start,end'; skipped")
            continue
        found = _instance(f"{path}:{number}", *cells, problems)
        if found:
            instances.append(found)
    return instances


def overlaps(instances: list[Instance]) -> list[str]:
    """A message for each pair of instances of one label in one video that overlap."""
    found = []
    groups: dict[tuple[str, str], list[Instance]] = {}
    for instance in instances:
        groups.setdefault((instance.video, instance.label), []).append(instance)
    for (video, label), group in sorted(groups.items()):
        group = sorted(group, key=lambda i: (i.start_seconds, i.end_seconds))
        for before, after in zip(group, group[1:]):
            if after.start_seconds < before.end_seconds:
                found.append(f"{video}: {label!r} instances {before.start_seconds:g}-{before.end_seconds:g} s and "
                             f"{after.start_seconds:g}-{after.end_seconds:g} s overlap; both kept")
    return found


def read_annotations(source: str | os.PathLike) -> tuple[list[Instance], list[str], list[str]]:
    """(instances, problems, notes) of a CSV file, a THUMOS-style file, or a folder of THUMOS-style
    files: problems are lines left out, notes what was read as the protocol wants but may surprise
    (Ambiguous files left out, overlapping instances kept)."""
    source = os.fspath(source)
    problems: list[str] = []
    notes: list[str] = []
    if os.path.isdir(source):
        files = sorted(glob.glob(os.path.join(glob.escape(source), "*.txt")))
        if not files:
            raise InvalidInputError(f"{source}: no THUMOS-style annotation files (<Class>_<set>.txt) in it")
        instances = []
        for path in files:
            if Path(path).name.lower().startswith("ambiguous_"):
                notes.append(f"{path}: Ambiguous stretches are not scored (as in THUMOS14); left out")
                continue
            instances += _thumos_file(path, problems)
    elif source.lower().endswith(".csv"):
        instances = _csv_file(source, problems)
    else:
        instances = _thumos_file(source, problems)
    if not instances:
        raise InvalidInputError(f"{source}: no usable annotations" + (f" ({problems[0]})" if problems else ""))
    return instances, problems, notes + overlaps(instances)
