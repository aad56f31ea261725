"""What an `index` run must do: which files are new or changed, moved, copied, unchanged or gone.

Pure bookkeeping between the files found on disk and the store's catalog: a file whose path,
size and modification time are stored is unchanged; one whose time changed but not its content
hash is only noted; one whose content is stored under another path is moved (that path is gone)
or copied (it is still there), and neither is embedded again. Everything else, and every file that
failed before, is embedded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..video import IMAGE_SUFFIXES
from .store import FileEntry, LibraryStore, StoredFile, content_hash


@dataclass
class Update:
    """The plan of one run. `embed` holds (path as given, entry) pairs in the order found;
    `unreadable` maps a path to why it could not even be looked at (recorded as a failure)."""

    embed: list[tuple[str, FileEntry]] = field(default_factory=list)
    moved: list[tuple[StoredFile, FileEntry]] = field(default_factory=list)
    copied: list[tuple[StoredFile, FileEntry]] = field(default_factory=list)
    touched: list[tuple[StoredFile, FileEntry]] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    gone: list[StoredFile] = field(default_factory=list)
    unchanged: int = 0


def file_kind(path: str | os.PathLike) -> str:
    """"image" for a still image (indexed as one frame), else "video"."""
    return "image" if Path(path).suffix.lower() in IMAGE_SUFFIXES else "video"


def plan_update(store: LibraryStore, paths: list[str]) -> Update:
    """Compare `paths` (files found on disk) with the store's catalog."""
    update = Update()
    catalog = {f.path: f for f in store.files()}
    by_hash: dict[str, list[StoredFile]] = {}
    for stored in catalog.values():
        if stored.status == "ok":
            by_hash.setdefault(stored.content_hash, []).append(stored)
    on_disk = {path: os.path.exists(store.root / path) for path in catalog}
    seen: set[str] = set()
    for path in paths:
        relative = Path(os.path.relpath(os.path.abspath(path), store.root)).as_posix()
        if relative in seen:
            continue
        seen.add(relative)
        stored = catalog.get(relative)
        try:
            info = os.stat(path)
            if stored is not None and stored.status == "ok" and (stored.size, stored.mtime_ns) == (info.st_size, info.st_mtime_ns):
                update.unchanged += 1
                continue
            entry = FileEntry(relative, info.st_size, info.st_mtime_ns, content_hash(path, info.st_size))
        except OSError as exc:
            update.unreadable[path] = f"cannot read it ({exc.strerror or exc})"
            continue
        if stored is not None and stored.status == "ok" and stored.content_hash == entry.content_hash:
            update.touched.append((stored, entry))
            continue
        same = [s for s in by_hash.get(entry.content_hash, []) if s.path != relative]
        moved = next((s for s in same if not on_disk[s.path]), None)
        if moved is not None:
            update.moved.append((moved, entry))
            by_hash[entry.content_hash].remove(moved)
            on_disk[moved.path] = True  # taken: not gone, and not moved twice
        elif same:
            update.copied.append((same[0], entry))
        else:
            update.embed.append((path, entry))
    update.gone = [catalog[p] for p, there in on_disk.items() if not there]
    return update
