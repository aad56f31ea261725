"""The library's store: one SQLite file holding the catalog of files and their frame embeddings.

SQLite is transactional, needs nothing installed or started, and in WAL mode lets searches read
while an `index` run writes. Each file is written in a transaction of its own (its catalog row and
all its vectors, or nothing), so a killed run loses at most the files it was embedding, and the
next run carries on. Only one writer runs at a time: `WriterLock` holds an exclusive lock on
`<index>.lock` for the whole run, so a second `index` waits or fails cleanly.

Paths are stored relative to the folder holding the index, so the index moves with its library.
Vectors are float16 (half the bytes, a cosine changes by < 1e-3), in row chunks of `CHUNK_ROWS`
frames, stored after the small columns (SQLite reads a row's columns in order, so the frame times
are read without walking the vectors' pages): no blob nears SQLite's size limit, and a single row is read without the rest
(`Connection.blobopen`). Nothing is pickled; every array is plain little-endian bytes whose length
is checked against the frame count before use.

A file that is not an actionzs index, a damaged one, or one from a newer schema is refused with
an `InvalidInputError` naming it, and never written.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embeddings import FrameEmbeddings
from ..errors import InvalidInputError

#: `PRAGMA application_id` of an actionzs index ("aczs"): tells it from other SQLite files.
APPLICATION_ID = 0x61637A73
#: `PRAGMA user_version`: the schema this code writes. A newer one is refused, never rewritten.
SCHEMA_VERSION = 1
#: Frames per stored chunk of vectors (4 MiB at 512 dimensions in float16).
CHUNK_ROWS = 4096
#: How long a statement waits for another connection's write lock before failing, in seconds.
BUSY_TIMEOUT_SECONDS = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('video', 'image')),
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    duration_seconds REAL,
    frames INTEGER NOT NULL DEFAULT 0,
    gaps TEXT NOT NULL DEFAULT '[]',
    version INTEGER NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE INDEX files_by_hash ON files (content_hash);
CREATE TABLE vectors (
    file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    first_row INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    frame_indices BLOB NOT NULL,
    pts_seconds BLOB NOT NULL,
    vectors BLOB NOT NULL,
    PRIMARY KEY (file_id, first_row)
);
"""


@dataclass(frozen=True)
class FileEntry:
    """A file as found on disk: its path relative to the index's folder ("/"-separated), size,
    modification time and content hash (see `content_hash`)."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str


@dataclass(frozen=True)
class StoredFile:
    """A file as the catalog holds it. `status` is "ok" (its vectors are stored) or "failed"
    (`error` says why; it is tried again next run); `version` is the store's generation when it
    was written, which tells a neighbour index built earlier whether it changed since."""

    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    kind: str
    status: str
    error: str | None
    duration_seconds: float | None
    frames: int
    gaps: list
    version: int


class LibraryStore:
    """One index file, opened for reading, or for writing (`writable`) by the holder of its
    `WriterLock`; `create` makes a new one where none exists."""

    def __init__(self, path: str | os.PathLike, *, writable: bool = False, create: bool = False):
        self.path = Path(path)
        self.root = self.path.resolve().parent
        self._settings: dict = {}
        exists = self.path.exists()
        if exists:
            _check_header(self.path)
        elif not create:
            raise InvalidInputError(f"{self.path}: no such index (build one with `actionzs index`)")
        mode = "rwc" if create else "rw" if writable else "ro"
        uri = f"file:{urllib.parse.quote(os.fspath(self.path.absolute()))}?mode={mode}"
        try:
            self._db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.Error as exc:
            raise InvalidInputError(f"{self.path}: cannot open the index ({exc})") from None
        try:
            with self._guarded():
                self._db.execute("PRAGMA foreign_keys = ON")
                if not exists:
                    self._create()
                self._check_identity()
                if writable or create:
                    self._db.execute("PRAGMA synchronous = NORMAL")  # durable in WAL mode except on power loss
        except BaseException:
            self._db.close()
            raise

    # -- opening: what the file is ------------------------------------------------------------

    def _pragma(self, name: str) -> int:
        return int(self._db.execute(f"PRAGMA {name}").fetchone()[0])

    def _create(self) -> None:
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(  # one transaction: a half-made index is never left
            f"BEGIN IMMEDIATE; {_SCHEMA} INSERT INTO settings VALUES ('generation', '0');"
            f" PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        )

    def _check_identity(self) -> None:
        if self._pragma("application_id") != APPLICATION_ID:
            raise InvalidInputError(f"{self.path}: not an actionzs index (a SQLite database of something else); left as it is")
        version = self._pragma("user_version")
        if version > SCHEMA_VERSION:
            raise InvalidInputError(
                f"{self.path}: an index of schema version {version}, made by a newer actionzs (this one reads up to "
                f"{SCHEMA_VERSION}); left as it is"
            )

    def _guarded(self):
        return _Guarded(self.path)

    # -- settings: who built the index, and how -------------------------------------------------

    def settings(self) -> dict:
        """The model, fingerprint, sampling and dim the index was built with ({} before the first
        file); read once, as they never change once recorded."""
        if not self._settings:
            with self._guarded():
                rows = dict(self._db.execute("SELECT key, value FROM settings WHERE key NOT IN ('generation', 'neighbours')"))
            self._settings = {key: json.loads(value) for key, value in rows.items()}
        return dict(self._settings)

    def claim(self, settings: dict) -> None:
        """Record `settings` (model, fingerprint, sampling, dim) in a new index; for one that has
        them, refuse other ones, saying which model and sampling built it."""
        held = self.settings()
        if not held:
            with self._write():
                self._db.executemany(
                    "INSERT INTO settings VALUES (?, ?)", [(k, json.dumps(v, sort_keys=True)) for k, v in settings.items()]
                )
            return
        self.check_model(settings.get("model"), settings.get("fingerprint"))
        if held.get("sampling") != settings.get("sampling"):
            raise InvalidInputError(
                f"{self.path}: the index samples frames with {held.get('sampling')}, not {settings.get('sampling')}; "
                "use its sampling, or another index"
            )

    def check_model(self, model: str, fingerprint: str) -> None:
        """Refuse a model other than the one the index was built with (any, for an empty index),
        naming both."""
        held = self.settings()
        if held and held.get("fingerprint") != fingerprint:
            raise InvalidInputError(
                f"{self.path}: the index was built with the model {held.get('model')!r} ({held.get('fingerprint')}), "
                f"not {model!r} ({fingerprint}); use that model, or another index"
            )

    @property
    def generation(self) -> int:
        """Counts the changes to the stored vectors: equal generations hold equal vectors."""
        with self._guarded():
            return int(self._db.execute("SELECT value FROM settings WHERE key = 'generation'").fetchone()[0])

    def neighbour_state(self) -> dict | None:
        """What the saved neighbour index holds (see `library.Library`), or None."""
        with self._guarded():
            row = self._db.execute("SELECT value FROM settings WHERE key = 'neighbours'").fetchone()
        return None if row is None else json.loads(row[0])

    def set_neighbour_state(self, state: dict) -> None:
        """Record what the saved neighbour index holds; the vectors did not change, so neither does
        the generation."""
        with self._guarded():
            self._db.execute("INSERT OR REPLACE INTO settings VALUES ('neighbours', ?)", (json.dumps(state),))

    # -- the catalog ------------------------------------------------------------------------------

    def files(self, status: str | None = None) -> list[StoredFile]:
        """The catalog, ordered by path; only files of `status` ("ok", "failed") if given."""
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        with self._guarded():
            rows = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files {where} ORDER BY path", args).fetchall()
        return [_stored_file(row) for row in rows]

    def file(self, path: str) -> StoredFile | None:
        """The catalog row of `path` (relative, as stored), or None."""
        with self._guarded():
            row = self._db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else _stored_file(row)

    def put(self, entry: FileEntry, kind: str, embeddings: FrameEmbeddings) -> None:
        """Store a file's embeddings (replacing what its path held), in one transaction."""
        vectors = np.ascontiguousarray(embeddings.vectors, dtype="<f2")
        indices = np.ascontiguousarray(embeddings.indices, dtype="<i8")
        times = np.ascontiguousarray(embeddings.pts_seconds, dtype="<f8")
        with self._write() as version:
            file_id = self._upsert(entry, kind, "ok", None, embeddings.duration, len(vectors), embeddings.gaps, version)
            self._db.execute("DELETE FROM vectors WHERE file_id = ?", (file_id,))
            self._db.executemany(
                "INSERT INTO vectors VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (file_id, first, len(vectors[first : first + CHUNK_ROWS]), indices[first : first + CHUNK_ROWS].tobytes(),
                     times[first : first + CHUNK_ROWS].tobytes(), vectors[first : first + CHUNK_ROWS].tobytes())
                    for first in range(0, len(vectors), CHUNK_ROWS)
                ),
            )

    def put_failure(self, entry: FileEntry, kind: str, reason: str) -> None:
        """Record that a file failed (it is tried again by the next run), dropping any vectors it had."""
        with self._write() as version:
            file_id = self._upsert(entry, kind, "failed", reason, None, 0, [], version)
            self._db.execute("DELETE FROM vectors WHERE file_id = ?", (file_id,))

    def move(self, file_id: int, entry: FileEntry) -> None:
        """A stored file found under another path with the same content: keep its vectors."""
        with self._write():
            self._db.execute("DELETE FROM files WHERE path = ? AND id != ?", (entry.path, file_id))
            self._db.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ? WHERE id = ?", (entry.path, entry.size, entry.mtime_ns, file_id)
            )

    def touch(self, file_id: int, entry: FileEntry) -> None:
        """A stored file whose time changed but not its content: note the new time only."""
        with self._write():
            self._db.execute("UPDATE files SET mtime_ns = ? WHERE id = ?", (entry.mtime_ns, file_id))

    def remove(self, file_ids: list[int]) -> None:
        """Drop files from the catalog, with their vectors."""
        if file_ids:
            with self._write():
                self._db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in file_ids])

    def _upsert(self, entry: FileEntry, kind: str, status: str, error: str | None, duration: float | None,
                frames: int, gaps: list, version: int) -> int:
        row = self._db.execute(
            "INSERT INTO files (path, size, mtime_ns, content_hash, kind, status, error, duration_seconds, frames, gaps,"
            " version, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " content_hash = excluded.content_hash, kind = excluded.kind, status = excluded.status, error = excluded.error,"
            " duration_seconds = excluded.duration_seconds, frames = excluded.frames, gaps = excluded.gaps,"
            " version = excluded.version, indexed_at = excluded.indexed_at RETURNING id",
            (entry.path, entry.size, entry.mtime_ns, entry.content_hash, kind, status, error, duration, frames,
             json.dumps(gaps), version, time.time()),
        ).fetchone()
        return int(row[0])

    def _write(self):
        return _Transaction(self)

    # -- vectors ----------------------------------------------------------------------------------

    def embeddings(self, stored: StoredFile) -> FrameEmbeddings:
        """A stored file's frame embeddings, float32, as the classifier scores them."""
        import torch  # converts float16 three times as fast as numpy

        vectors = self._vectors(stored)
        indices, times = self.timeline(stored)
        if len(vectors) != stored.frames or len(indices) != stored.frames:
            raise InvalidInputError(f"{self.path}: {stored.path} holds {len(vectors)} frames, its catalog row says {stored.frames}")
        settings = self.settings()
        return FrameEmbeddings(
            vectors=torch.from_numpy(vectors).float().numpy(), indices=indices, pts_seconds=times, duration=float(stored.duration_seconds),
            model=settings["model"], source=os.fspath(self.root / stored.path), sampling=settings["sampling"],
            fingerprint=settings["fingerprint"], gaps=stored.gaps,
        )

    def _vectors(self, stored: StoredFile) -> np.ndarray:
        """A stored file's float16 vectors [frames, dim]."""
        dim = self.dim
        with self._guarded():
            chunks = self._db.execute(
                "SELECT rows, vectors FROM vectors WHERE file_id = ? ORDER BY first_row", (stored.id,)
            ).fetchall()
        if not chunks:
            return np.empty((0, dim), np.float16)
        return np.concatenate([_array(self.path, v, "<f2", rows * dim) for rows, v in chunks]).reshape(-1, dim)

    def timeline(self, stored: StoredFile) -> tuple[np.ndarray, np.ndarray]:
        """A stored file's frame indices and times (seconds), without its vectors."""
        with self._guarded():
            chunks = self._db.execute(
                "SELECT rows, frame_indices, pts_seconds FROM vectors WHERE file_id = ? ORDER BY first_row", (stored.id,)
            ).fetchall()
        if not chunks:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        return (np.concatenate([_array(self.path, i, "<i8", rows) for rows, i, _ in chunks]),
                np.concatenate([_array(self.path, t, "<f8", rows) for rows, _, t in chunks]))

    def vector_rows(self, file_id: int, rows: np.ndarray) -> np.ndarray:
        """float32 vectors of some rows of one file, read without the rest of its vectors."""
        dim = self.dim
        width = 2 * dim
        out = np.empty((len(rows), dim), np.float32)
        with self._guarded():
            for slot, row in enumerate(np.asarray(rows).tolist()):
                first = row - row % CHUNK_ROWS
                (rowid,) = self._db.execute(
                    "SELECT rowid FROM vectors WHERE file_id = ? AND first_row = ?", (file_id, first)
                ).fetchone() or (None,)
                if rowid is None:
                    raise InvalidInputError(f"{self.path}: no stored row {row} of file {file_id}")
                with self._db.blobopen("vectors", "vectors", rowid, readonly=True) as blob:
                    blob.seek((row - first) * width)
                    out[slot] = np.frombuffer(blob.read(width), "<f2")
        return out

    def all_vectors(self, files: list[StoredFile] | None = None) -> Iterator[tuple[StoredFile, np.ndarray]]:
        """Each stored file (of `files`, else all that are ok) with its float16 vectors [frames, dim],
        file by file (for building a neighbour index without the whole library in memory twice)."""
        for stored in self.files("ok") if files is None else files:
            yield stored, self._vectors(stored)

    @property
    def dim(self) -> int:
        return int(self.settings()["dim"])

    # -- closing ----------------------------------------------------------------------------------

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> LibraryStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_FILE_COLUMNS = "id, path, size, mtime_ns, content_hash, kind, status, error, duration_seconds, frames, gaps, version"


def _stored_file(row) -> StoredFile:
    return StoredFile(*row[:10], json.loads(row[10]), row[11])


def _array(path: Path, data: bytes, dtype: str, count: int) -> np.ndarray:
    array = np.frombuffer(data, dtype)
    if len(array) != count:
        raise InvalidInputError(f"{path}: a stored array holds {len(array)} values, not the {count} its row says (damaged)")
    return array


def _check_header(path: Path) -> None:
    """Refuse a folder, an unreadable file, an empty one and one that is not SQLite's."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except IsADirectoryError:
        raise InvalidInputError(f"{path}: is a folder, not an index file") from None
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read the index ({exc.strerror or exc})") from None
    if not head:
        raise InvalidInputError(f"{path}: an empty file, not an actionzs index; left as it is")
    if head != _SQLITE_MAGIC:
        raise InvalidInputError(f"{path}: not an actionzs index (not a SQLite file); left as it is")


class _Guarded:
    """Turns SQLite's errors about the file (damaged, unreadable, locked too long) into an
    `InvalidInputError` naming the index."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if isinstance(exc, sqlite3.Error):
            raise InvalidInputError(f"{self.path}: the index cannot be read or written ({exc})") from None
        return False


class _Transaction:
    """One write: BEGIN IMMEDIATE ... COMMIT, the generation counted up once; yields the new
    generation (the version of what is written). Rolled back on any error."""

    def __init__(self, store: LibraryStore):
        self.store = store

    def __enter__(self) -> int:
        db = self.store._db
        with self.store._guarded():
            db.execute("BEGIN IMMEDIATE")
            try:
                return int(db.execute(
                    "UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation' RETURNING value"
                ).fetchone()[0])
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def __exit__(self, kind, exc, tb) -> bool:
        db = self.store._db
        with self.store._guarded():
            db.execute("ROLLBACK" if kind else "COMMIT")
        return False


def content_hash(path: str | os.PathLike, size: int) -> str:
    """What tells a file's content: its size and the BLAKE2 hash of its first and last MiB. A
    renamed or moved file keeps it (and is not embedded again); an edit almost always changes it."""
    import hashlib

    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(2**20))
        if size > 2 * 2**20:
            handle.seek(size - 2**20)
        digest.update(handle.read(2**20))
    return digest.hexdigest()


class WriterLock:
    """The one writer of an index: an exclusive `flock` on `<index>.lock`, held for a whole run.
    A second run waits for it (`wait`, saying so once via `waiting`) or fails cleanly."""

    def __init__(self, index_path: str | os.PathLike, *, wait: bool = False, waiting=None):
        self.path = Path(f"{os.fspath(index_path)}.lock")
        self.wait = wait
        self.waiting = waiting
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InvalidInputError(f"{self.path}: cannot create the index's lock file ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            if not self.wait:
                os.close(fd)
                raise InvalidInputError(
                    f"{self.path.with_suffix('')}: another `actionzs index` run is writing this index; wait for it to finish"
                ) from None
            if self.waiting is not None:
                self.waiting(f"{self.path.with_suffix('')}: another run is writing this index; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
