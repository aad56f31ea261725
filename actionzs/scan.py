"""Batch scans: find the videos, skip those already done, append one whole JSON line per video.

The results file is the scan's memory: `--resume` reads it back, keeps every finished record,
drops error records (those files are tried again) and any torn last line, then carries on.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from pathlib import Path

from .atomic import atomic_write
from .output import json_line
from .video import video_suffixes


def find_videos(inputs: Iterable[str]) -> tuple[list[str], list[str]]:
    """(videos, problems): files under each folder (recursive, by extension), glob matches, and
    files named directly; `problems` lists inputs that matched nothing."""
    found: dict[str, None] = {}
    problems = []
    for item in inputs:
        if os.path.isdir(item):
            suffixes = video_suffixes()
            matches = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in suffixes and not p.is_dir())
        elif glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item, recursive=True) if not os.path.isdir(p))
        else:
            matches = [item]  # named directly: a missing or unreadable file gets its own error record
        if not matches:
            problems.append(f"{item}: no videos found")
        found.update(dict.fromkeys(matches))
    return list(found), problems


class ResultsLog:
    """An append-only JSON-lines file where each record is written whole with one `write` call."""

    def __init__(self, path: str | os.PathLike, resume: bool):
        self.path = Path(path)
        self.done: set[str] = set()
        if resume and self.path.exists():
            self._recover()
        elif self.path.exists() and self.path.stat().st_size:
            raise FileExistsError(f"{self.path} already exists: pass --resume to continue that scan, or remove it")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _recover(self) -> None:
        kept = []
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True):
            try:
                record = json.loads(line) if line.endswith("\n") else None
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict) and "video" in record and "error" not in record and record["video"] not in self.done:
                self.done.add(record["video"])
                kept.append(line)
        atomic_write(self.path, "".join(kept))

    def write(self, record: dict) -> None:
        data = json_line(record).encode("utf-8")
        written = os.write(self._fd, data)
        if written != len(data):  # regular files take a whole write; anything else is an I/O error
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
