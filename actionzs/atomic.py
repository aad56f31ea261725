"""Atomic file writes: a temporary file in the target's folder, then a rename over the target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Yield a file to write; on success it replaces `path` whole, on error `path` is untouched.

    The file gets the permissions a plain `open` would give it, and nothing else is left behind.
    A target that exists and is not a regular file (`/dev/null`, a pipe) is written to directly:
    renaming over it would replace the device or pipe itself.
    """
    path = Path(path)
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    if path.exists() and not path.is_file():
        with open(path, mode, **text) as handle:
            yield handle
        return
    # The temporary name starts with the target's (at most 64 bytes of it), so that a legal name of
    # up to 255 bytes still leaves room for the random part.
    fd, tmp = tempfile.mkstemp(prefix=f".{os.fsdecode(os.fsencode(path.name)[:64])}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path) as handle:
        handle.write(text)
