"""Labelled trimmed clips on disk: which file shows which class, in four layouts.

- `folders`: one sub-folder per class, its videos below it (any depth).
- `ucf101`: the UCF-101 folders with an official split file (`testlist01.txt`: `Class/v_...avi`
  per line; `trainlist01.txt` adds a class number), and `classInd.txt` (`1 ApplyEyeMakeup`) beside it.
- `hmdb51`: the HMDB51 folders with the official split files `<class>_test_split<N>.txt` (lines
  `video.avi F`, F = 1 training, 2 testing, 0 unused); the testing clips are evaluated.
- `csv`: `path,label` lines (a header line `path,label` is allowed), paths relative to the CSV file.

Class names become words for the prompts: CamelCase and underscores are split ("ApplyEyeMakeup" ->
"Apply Eye Makeup", "brush_hair" -> "brush hair"); for UCF101 and HMDB51 the spellings of the
shipped class lists (configs/datasets/) are used where the letters agree, so the prompts read as in
the CLIP paper. Problems (a class folder with no videos, a split line naming a missing file) are
collected, not raised: the clips that are there are evaluated and the problems reported.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from ..textfile import read_text_file

LAYOUTS = ("folders", "ucf101", "hmdb51", "csv")
#: The largest split, class-index or CSV file read.
LIST_FILE_BYTES = 64 * 2**20


@dataclass
class Dataset:
    """Clips as (path, class number) pairs, class names (as the prompts read them), and problems."""

    clips: list[tuple[str, int]]
    classes: list[str]
    problems: list[str] = field(default_factory=list)


def class_words(name: str) -> str:
    """"ApplyEyeMakeup" -> "Apply Eye Makeup", "brush_hair" -> "brush hair", "YoYo" -> "Yo Yo"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name.replace("_", " "))
    return " ".join(spaced.split())


def letters(name: str) -> str:
    """A name's letters and digits, lower case: how a class name is matched across spellings."""
    return re.sub(r"[\W_]+", "", name.casefold())


def shipped_classes(name: str) -> list[str]:
    """A class list shipped in configs/datasets/ (`ucf101`, `hmdb51`, `kinetics400`)."""
    from ..config import preset_dir

    path = preset_dir() / "datasets" / f"{name}_classes.txt"
    lines = [line.strip() for line in read_text_file(path, "class list", LIST_FILE_BYTES).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _spelled(folders: list[str], reference: str | None) -> list[str]:
    """Each class folder name as words, in the reference list's spelling where the letters agree."""
    known = {letters(c): c for c in shipped_classes(reference)} if reference else {}
    return [known.get(letters(f), class_words(f)) for f in folders]


def _videos_in(folder: Path) -> list[str]:
    from ..scan import find_videos

    return sorted(find_videos([os.fspath(folder)])[0])


def from_folders(root: str | os.PathLike, reference: str | None = None) -> Dataset:
    """One sub-folder per class (sorted by name); a class folder with no videos is a problem, and
    stays a candidate class."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidInputError(f"{root}: not a folder (the folders layout wants one sub-folder per class)")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InvalidInputError(f"{root}: no class folders in it (the folders layout wants one sub-folder per class)")
    clips, problems = [], []
    for number, folder in enumerate(folders):
        found = _videos_in(root / folder)
        if not found:
            problems.append(f"{root / folder}: class folder with no videos")
        clips += [(path, number) for path in found]
    return Dataset(clips, _spelled(folders, reference), problems)


def _read_lines(path: str | os.PathLike, what: str) -> list[str]:
    text = read_text_file(path, what, LIST_FILE_BYTES)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _listed(root: Path, entries: list[tuple[str, int]], split: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The entries whose file exists under `root`; the others are problems naming the split file."""
    clips, problems = [], []
    for relative, number in entries:
        path = root / relative
        if path.is_file():
            clips.append((os.fspath(path), number))
        else:
            problems.append(f"{split}: names {relative}, which is not in {root}")
    return clips, problems


def from_ucf101(root: str | os.PathLike, split: str | None) -> Dataset:
    """UCF-101: the clips of `split` (testlist0N.txt or trainlist0N.txt; `classInd.txt` beside it
    gives the classes); without a split, every clip of the class folders."""
    if split is None:
        return from_folders(root, "ucf101")
    root = Path(root)
    index_file = Path(split).parent / "classInd.txt"
    if not index_file.is_file():
        raise InvalidInputError(f"{split}: no classInd.txt beside it (the UCF101 split files come with one)")
    folders = []
    for line in _read_lines(index_file, "UCF101 class index"):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(folders) + 1:
            raise InvalidInputError(f"{index_file}: line {line!r} is not 'NUMBER ClassName' numbered from 1")
        folders.append(parts[1])
    number_of = {name: k for k, name in enumerate(folders)}
    entries, problems = [], []
    for line in _read_lines(split, "UCF101 split file"):
        relative = line.split()[0]
        folder = relative.replace("\\", "/").split("/")[0]
        if folder not in number_of:
            problems.append(f"{split}: {relative} is in no class of {index_file}")
            continue
        entries.append((relative, number_of[folder]))
    clips, missing = _listed(root, entries, split)
    return Dataset(clips, _spelled(folders, "ucf101"), problems + missing)


def from_hmdb51(root: str | os.PathLike, split: str | None) -> Dataset:
    """HMDB51: the testing clips (flag 2) of the split files; `split` is their folder (split 1) or a
    pattern such as `splits/*_test_split2.txt`. Without a split, every clip of the class folders."""
    if split is None:
        return from_folders(root, "hmdb51")
    root = Path(root)
    pattern = os.path.join(split, "*_test_split1.txt") if os.path.isdir(split) else split
    files = sorted(glob.glob(pattern))
    if not files:
        raise InvalidInputError(f"{split}: no HMDB51 split files (<class>_test_split<N>.txt) found")
    folders, entries, problems = [], [], []
    for path in files:
        match = re.fullmatch(r"(.+)_test_split\d+\.txt", os.path.basename(path))
        if not match:
            raise InvalidInputError(f"{path}: not an HMDB51 split file name (<class>_test_split<N>.txt)")
        folder = match.group(1)
        folders.append(folder)
        for line in _read_lines(path, "HMDB51 split file"):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in {"0", "1", "2"}:
                problems.append(f"{path}: line {line!r} is not 'video.avi 0|1|2'; skipped")
            elif parts[1] == "2":
                entries.append((f"{folder}/{parts[0]}", len(folders) - 1))
    clips, missing = _listed(root, entries, split)
    return Dataset(clips, _spelled(folders, "hmdb51"), problems + missing)


def from_csv(path: str | os.PathLike) -> Dataset:
    """`path,label` rows (paths relative to the CSV's folder); classes sorted by name."""
    text = read_text_file(path, "dataset CSV", LIST_FILE_BYTES)
    base = Path(path).parent
    rows, problems, seen = [], [], {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and [c.strip().lower() for c in row] == ["path", "label"]:
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"{path}: line {number} is not 'path,label'; skipped")
            continue
        if row[0].strip() in seen:
            problems.append(f"{path}: line {number} lists {row[0].strip()} again (line {seen[row[0].strip()]} is kept)")
            continue
        seen[row[0].strip()] = number
        rows.append((row[0].strip(), row[1].strip()))
    classes = sorted({label for _, label in rows})
    if not classes:
        raise InvalidInputError(f"{path}: no 'path,label' rows")
    number_of = {name: k for k, name in enumerate(classes)}
    clips, missing = _listed(base, [(p, number_of[label]) for p, label in rows], os.fspath(path))
    return Dataset(clips, classes, problems + missing)


def load_dataset(source: str | os.PathLike, layout: str, split: str | None = None) -> Dataset:
    """The clips of `source` in `layout` (see the module's docstring)."""
    if layout not in LAYOUTS:
        raise InvalidInputError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    if split is not None and layout in ("folders", "csv"):
        raise InvalidInputError(f"--split is for the ucf101 and hmdb51 layouts, not {layout}")
    if layout == "csv":
        found = from_csv(source)
    elif layout == "ucf101":
        found = from_ucf101(source, split)
    elif layout == "hmdb51":
        found = from_hmdb51(source, split)
    else:
        found = from_folders(source)
    return _once(found)


def _once(dataset: Dataset) -> Dataset:
    """Each file once, under its first class: a file listed twice (in two class folders through a
    link, twice in a list) is a problem, since one clip cannot count for two classes."""
    first: dict[str, tuple[str, int]] = {}
    clips, problems = [], list(dataset.problems)
    for path, number in dataset.clips:
        real = os.path.realpath(path)
        if real in first:
            kept, kept_number = first[real]
            problems.append(f"{path}: the same file as {kept}; counted once, as {dataset.classes[kept_number]!r}")
            continue
        first[real] = (path, number)
        clips.append((path, number))
    return Dataset(clips, dataset.classes, problems)
