"""Batch scans: find the videos, skip those already done, append one whole JSON line per video.

The results file is the scan's memory: `--resume` reads it back, keeps every finished record,
drops error records (those files are tried again) and any torn last line, then carries on, but only
into a file whose records were made with the same settings (`provenance`): records of other labels
or another model would otherwise mix with the new ones unseen.
"""

from __future__ import annotations

import errno
import fcntl
import fnmatch
import glob
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .atomic import atomic_write
from .errors import InvalidInputError
from .output import json_line
from .provenance import SCHEMA_VERSION, differences
from .video import IMAGE_SUFFIXES, video_suffixes


def find_videos(inputs: Iterable[str], images: bool = False) -> tuple[list[str], list[str]]:
    """(videos, problems): files under each folder (recursive, by extension; with `images` still
    images too; a linked folder is entered once, so a link loop is not followed), glob matches, and
    files named directly; a file reached by several paths (links, a folder listed twice) is listed
    once, under the first. `problems` lists inputs that matched nothing."""
    suffixes = video_suffixes() | (IMAGE_SUFFIXES if images else frozenset())
    found: dict[str, str] = {}  # real path -> the path first seen
    problems = []
    for item in inputs:
        if os.path.isdir(item):
            matches = _videos_under(item, suffixes)
        elif "**" in item:
            matches = _recursive_glob(item)
        elif glob.has_magic(item):
            matches = sorted(p for p in glob.glob(item) if not os.path.isdir(p))
        else:
            matches = [item]  # named directly: a missing or unreadable file gets its own error record
        if not matches:
            problems.append(f"{item}: no videos found")
        for path in matches:
            found.setdefault(os.path.realpath(path), path)
    return list(found.values()), problems


def _files_under(folder: str) -> Iterator[str]:
    """Every file below `folder`, entering each real folder once (links followed, loops not)."""
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back to a folder already walked
            dirs.clear()
            continue
        seen.add(real)
        yield from (os.path.join(root, f) for f in files)


def _videos_under(folder: str, suffixes: frozenset[str]) -> list[str]:
    return sorted(p for p in _files_under(folder) if Path(p).suffix.lower() in suffixes)


def _recursive_glob(pattern: str) -> list[str]:
    """The files a `**` glob matches (`**` is any number of folders), walked as `_files_under`
    walks: `glob.glob` would follow a link loop to the kernel's limit, once per way round."""
    parts = pattern.split(os.sep)
    fixed = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = os.sep.join(parts[:fixed]) or (os.sep if pattern.startswith(os.sep) else ".")
    wanted = parts[fixed:]
    found = []
    for path in _files_under(base):
        rest = os.path.relpath(path, base).split(os.sep)
        if _matches(rest, wanted):
            found.append(path if parts[:fixed] else os.path.relpath(path))
    return sorted(found)


def _matches(names: list[str], parts: list[str]) -> bool:
    """Whether path components `names` match glob components `parts`, `**` standing for any number."""
    if not parts:
        return not names
    if parts[0] == "**":
        return any(_matches(names[i:], parts[1:]) for i in range(len(names) + 1))
    return bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and _matches(names[1:], parts[1:])


class SettingsMismatch(InvalidInputError):
    """`--resume` into a file whose records were made with other settings."""


class ResultsLog:
    """An append-only JSON-lines file where each record is written whole, or not at all.

    The file is locked (an exclusive `flock`) while a scan writes it: a second scan into the same
    file fails cleanly instead of doubling every record. `resume` reads it back first, and refuses
    a file that is not a scan's results (a classify JSON, a video): it would be rewritten. With
    `settings` (a `provenance.settings_block`) it also refuses, as `check_settings` does, a file
    whose finished records were made with others. Nothing in the file changes before the first
    `write`: a scan refused or stopped before it leaves the file as it was.
    """

    def __init__(self, path: str | os.PathLike, resume: bool, settings: dict | None = None):
        self.path = Path(path)
        self.done: set[str] = set()
        self.held: dict[str | None, dict | None] = {}  # the finished records' settings, by their hash
        self._rewrite: str | None = None  # the file without error records and torn lines, written before the first record
        if not resume and self.path.exists() and self.path.stat().st_size:
            raise FileExistsError(f"{self.path} already exists: pass --resume to continue that scan, or remove it")
        self._fd = self._open_locked()
        if resume:
            try:
                self._recover()
                if settings is not None:
                    self.check_settings(settings)
            except BaseException:
                os.close(self._fd)
                raise

    def check_settings(self, settings: dict) -> None:
        """Raise `SettingsMismatch`, naming what differs, unless every finished record was made with
        `settings` (those not known yet, None, aside)."""
        for held in self.held.values():
            found = differences(held, settings)
            if found:
                raise SettingsMismatch(
                    f"{self.path}: its records were made with other settings ({'; '.join(found)}); resuming would "
                    "mix them with these. Resume with the same settings, give another -o, or pass --force-settings "
                    "to add records made with these (each record keeps its own settings)"
                )

    def _open_locked(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:  # replaced by another scan's resume meanwhile
                raise BlockingIOError
        except BlockingIOError:
            os.close(fd)
            raise InvalidInputError(f"{self.path}: another scan is writing this file; wait for it or choose another -o") from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _recover(self) -> None:
        with open(self._fd, "rb", closefd=False) as handle:
            text = handle.read().decode("utf-8", errors="replace")
        if text and not text.startswith(_RECORD_START):
            raise InvalidInputError(
                f"{self.path}: not a scan's results (it does not start with a record of this tool); "
                "--resume would rewrite it: give another -o"
            )
        lines = text.splitlines(keepends=True)
        kept = []
        for line in lines:
            try:
                record = json.loads(line) if line.endswith("\n") else None
            except json.JSONDecodeError:
                record = None
            if _is_record(record) and _newer(record):
                raise InvalidInputError(
                    f"{self.path}: written by a newer actionzs (records of schema {record['schema_version']}; this "
                    f"version writes {SCHEMA_VERSION}); resume with that version, or give another -o"
                )
            if _is_record(record) and "error" not in record and record["video"] not in self.done:
                self.done.add(record["video"])
                settings = record.get("settings")
                self.held.setdefault(settings.get("hash") if isinstance(settings, dict) else None, settings)
                kept.append(line)
        if len(kept) != len(lines):
            self._rewrite = "".join(kept)

    def _settle(self) -> None:
        """Write the recovered file (finished records only) in place of the old one, once."""
        atomic_write(self.path, self._rewrite)
        self._rewrite = None
        old, self._fd = self._fd, self._open_locked()  # the new file, locked before the old is let go
        os.close(old)

    def write(self, record: dict) -> None:
        """Append `record` as one line, made durable; a write that fails or is cut short (a full
        disk) is undone, so the file still ends with a whole record, and is an OSError naming it."""
        if self._rewrite is not None:
            self._settle()
        data = json_line(record).encode("utf-8")
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
            os.fsync(self._fd)
        except OSError as exc:
            os.ftruncate(self._fd, end)
            raise OSError(exc.errno, f"cannot write a record ({exc.strerror}); the file ends with the last whole one",
                          str(self.path)) from None

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: How every line `ResultsLog.write` makes begins (a result's and an error's first key is the video).
_RECORD_START = '{"video": '


def _is_record(record) -> bool:
    """A line this tool writes: a mapping naming its video, with a result or an error."""
    return isinstance(record, dict) and isinstance(record.get("video"), str) and ("labels" in record or "error" in record)


def _newer(record: dict) -> bool:
    """Whether a record has a layout this version does not know."""
    version = record.get("schema_version")
    return isinstance(version, int) and version > SCHEMA_VERSION
